/* SPDX-License-Identifier: MIT */
/*
 * mime: the parser and the work list.
 *
 * Structure is found in one forward pass over lines. The state is the
 * current part, whether its header block is still being read, and a stack
 * of open boundaries (bounded by max_depth). A line that starts with "--"
 * is checked against every open boundary, innermost first (as Postfix's
 * mime_state does), so a lost inner boundary cannot hide the
 * outer one: the outer delimiter closes every part inside it. Bodies are
 * not copied: a part's body is a slice of the input.
 *
 * Then the work list: every part in creation order. Leaves are decoded;
 * decoding may create new parts (an encoded message/rfc822, uuencode
 * blocks, archive members, TNEF attachments), which are appended to the
 * same list and reached by the same loop. Nothing recurses.
 */
#include "mime/mime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/decode.h"
#include "mime/header.h"
#include "mime/mime_private.h"

/* The arena holds decoded bytes plus text, metadata and URLs around them. */
#define MIME_ARENA_OVERHEAD (32u * 1024 * 1024)
#define MIME_PATH_MAX 1024

void mime_limits_default(struct mime_limits *l)
{
	l->max_depth = MIME_DEF_MAX_DEPTH;
	l->max_parts = MIME_DEF_MAX_PARTS;
	l->max_headers = MIME_DEF_MAX_HEADERS;
	l->max_header_bytes = MIME_DEF_MAX_HEADER_BYTES;
	l->max_decoded = MIME_DEF_MAX_DECODED;
	l->max_archive_depth = MIME_DEF_MAX_ARCHIVE_DEPTH;
	l->max_archive_ratio = MIME_DEF_MAX_ARCHIVE_RATIO;
	l->max_archive_members = MIME_DEF_MAX_ARCHIVE_MEMBERS;
	l->max_urls = MIME_DEF_MAX_URLS;
}

int mime_limits_check(const struct mime_limits *l)
{
	if (l->max_depth < 1 || l->max_depth > 1000 || l->max_parts < 1 || l->max_parts > 100000 ||
	    l->max_headers < 1 || l->max_headers > 100000 || l->max_header_bytes < 1024 ||
	    l->max_header_bytes > 64u * 1024 * 1024 || l->max_decoded < 1024 ||
	    l->max_decoded > 4ull * 1024 * 1024 * 1024 || l->max_archive_depth > 32 ||
	    l->max_archive_ratio < 2 || l->max_archive_ratio > 100000 ||
	    l->max_archive_members > 100000 || l->max_urls > 100000)
		return -EINVAL;
	return 0;
}

struct mime_engine *mime_engine_new(const struct mime_limits *l, unsigned opts)
{
	struct mime_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	if (l)
		e->lim = *l;
	else
		mime_limits_default(&e->lim);
	e->opts = opts;
	if (mime_limits_check(&e->lim) < 0)
		goto fail;
	if (!(e->cs = mime_cs_new()))
		goto fail;
	if (!(e->scratch = calloc(e->lim.max_headers, sizeof(*e->scratch))))
		goto fail;
	if ((opts & MIME_OPT_ATTACH) && !(e->att = mime_attach_new()))
		goto fail;
	return e;
fail:
	mime_engine_free(e);
	return NULL;
}

void mime_engine_free(struct mime_engine *e)
{
	if (!e)
		return;
	mime_cs_free(e->cs);
	mime_attach_free(e->att);
	free(e->scratch);
	free(e);
}

/* ---- findings, parts, budget ------------------------------------------ */

void mime_finding_add(struct mime_msg *m, const char *name, const struct mime_part *where,
		      const char *detail)
{
	struct mime_slice path = where ? where->path : (struct mime_slice){"", 0};
	struct mime_finding *f;

	for (size_t i = 0; i < m->nfindings; i++)
		if (!strcmp(m->findings[i].name, name) && m->findings[i].path.len == path.len &&
		    !memcmp(m->findings[i].path.ptr, path.ptr, path.len))
			return;
	if (m->nfindings == MIME_MAX_FINDINGS)
		return;
	f = &m->findings[m->nfindings++];
	f->name = name;
	f->path = path;
	f->detail.ptr = "";
	f->detail.len = 0;
	if (detail) {
		char *d = arena_memdup(m->a, detail, strlen(detail));
		if (d) {
			f->detail.ptr = d;
			f->detail.len = strlen(d);
		}
	}
}

/* Appends s to a path under construction, replacing '/' in names. */
static size_t path_put(char *buf, size_t o, const char *s, size_t n, bool name)
{
	for (size_t i = 0; i < n && o < MIME_PATH_MAX - 1; i++) {
		char c = s[i];
		if ((unsigned char)c < 0x20 || (name && (c == '/' || c == '\\')))
			c = '_';
		buf[o++] = c;
	}
	return o;
}

struct mime_part *mime_part_new(struct mime_msg *m, struct mime_part *parent, enum mime_origin o,
				const char *name, size_t namelen)
{
	struct mime_part *p;
	char path[MIME_PATH_MAX];
	size_t pl = 0, nsib = 0;

	if (m->nparts >= m->e->lim.max_parts) {
		if (!m->parts_full)
			mime_finding_add(m, "MIME_TOO_MANY_PARTS", parent, NULL);
		m->parts_full = true;
		return NULL;
	}
	if (!(p = arena_zalloc(m->a, sizeof(*p)))) {
		if (!m->mem_full)
			mime_finding_add(m, "MIME_MEMORY_LIMIT", parent, NULL);
		m->mem_full = true;
		return NULL;
	}
	p->origin = o;
	p->index = (uint32_t)m->nparts;
	p->cte = MIME_CTE_7BIT;
	p->type.ptr = "text/plain";
	p->type.len = 10;
	if (parent) {
		for (struct mime_part *c = parent->first_child; c; c = c->next)
			nsib++;
		p->parent = parent;
		p->depth = parent->depth + 1;
		p->archive_depth = parent->archive_depth;
		pl = path_put(path, 0, parent->path.ptr, parent->path.len, false);
		if (pl)
			path[pl++] = '/';
		if (name) {
			/* a member: container's file name, then the member's (a
			 * member's own path already ends with its name) */
			if (parent->filename.len && parent->origin == MIME_FROM_MIME) {
				pl = path_put(path, pl, parent->filename.ptr, parent->filename.len,
					      true);
				if (pl < MIME_PATH_MAX - 1)
					path[pl++] = '/';
			}
			pl = path_put(path, pl, name, namelen, false);
		} else {
			char num[24];
			int k = snprintf(num, sizeof(num), "%zu", nsib + 1);
			pl = path_put(path, pl, num, (size_t)k, false);
		}
		if (parent->last_child)
			parent->last_child->next = p;
		else
			parent->first_child = p;
		parent->last_child = p;
	}
	p->path.ptr = arena_memdup(m->a, path, pl);
	p->path.len = pl;
	if (!p->path.ptr) {
		p->path.ptr = "";
		p->path.len = 0;
	}
	m->parts[m->nparts++] = p;
	return p;
}

size_t mime_budget_take(struct mime_msg *m, const struct mime_part *p, size_t n)
{
	uint64_t left = m->e->lim.max_decoded - m->decoded;

	if (n > left) {
		mime_finding_add(m, "MIME_DECODED_LIMIT", p, NULL);
		n = (size_t)left;
	}
	m->decoded += n;
	return n;
}

void mime_budget_return(struct mime_msg *m, size_t n)
{
	m->decoded -= n < m->decoded ? n : m->decoded;
}

/* ---- header blocks ---------------------------------------------------- */

static bool slice_eq(struct mime_slice s, const char *lit)
{
	size_t l = strlen(lit);
	return s.len == l && !strncasecmp(s.ptr, lit, l);
}

static bool slice_prefix(struct mime_slice s, const char *lit)
{
	size_t l = strlen(lit);
	return s.len >= l && !strncasecmp(s.ptr, lit, l);
}

static bool needs_decoding(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c >= 0x80 || c == '\r' || c == '\n' || c == '\t' ||
		    (c == '=' && i + 1 < n && v[i + 1] == '?'))
			return true;
	}
	return false;
}

static void note_cs(struct mime_part *p, unsigned f)
{
	if (f & MIME_CS_REPLACED)
		p->flags |= MIME_PF_CHARSET_REPLACED;
	if (f & MIME_CS_UNKNOWN)
		p->flags |= MIME_PF_CHARSET_UNKNOWN;
}

static enum mime_cte cte_parse(struct mime_slice v)
{
	static const struct {
		const char *name;
		enum mime_cte cte;
	} t[] = {{"7bit", MIME_CTE_7BIT},      {"8bit", MIME_CTE_8BIT},
		 {"binary", MIME_CTE_BINARY},  {"quoted-printable", MIME_CTE_QP},
		 {"base64", MIME_CTE_BASE64},  {"x-uuencode", MIME_CTE_UUENCODE},
		 {"x-uue", MIME_CTE_UUENCODE}, {"uuencode", MIME_CTE_UUENCODE}};
	size_t s = 0, e = v.len;

	while (s < e && (v.ptr[s] == ' ' || v.ptr[s] == '"'))
		s++;
	while (e > s && (v.ptr[e - 1] == ' ' || v.ptr[e - 1] == '"' || v.ptr[e - 1] == ';'))
		e--;
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (e - s == strlen(t[i].name) && !strncasecmp(v.ptr + s, t[i].name, e - s))
			return t[i].cte;
	return MIME_CTE_UNKNOWN;
}

const char *mime_cte_name(enum mime_cte cte)
{
	switch (cte) {
	case MIME_CTE_7BIT:
		return "7bit";
	case MIME_CTE_8BIT:
		return "8bit";
	case MIME_CTE_BINARY:
		return "binary";
	case MIME_CTE_QP:
		return "quoted-printable";
	case MIME_CTE_BASE64:
		return "base64";
	case MIME_CTE_UUENCODE:
		return "x-uuencode";
	case MIME_CTE_UNKNOWN:
		break;
	}
	return "unknown";
}

/* Turns the scratch header lines of p into its header list and reads the
 * MIME fields. */
static void headers_finish(struct mime_msg *m, struct mime_part *p, size_t nh, bool digest)
{
	struct mime_engine *e = m->e;
	struct mime_param params[MIME_HDR_MAX_PARAMS];
	size_t np;
	const struct mime_header *ct = NULL, *cte = NULL, *cd = NULL;
	unsigned f = 0;

	if (digest) {
		p->type.ptr = "message/rfc822";
		p->type.len = 14;
	}
	if (nh == 0)
		return;
	if (!(p->headers = arena_alloc(m->a, nh * sizeof(*p->headers)))) {
		mime_finding_add(m, "MIME_MEMORY_LIMIT", p, NULL);
		return;
	}
	for (size_t i = 0; i < nh; i++) {
		struct mime_header *h = &p->headers[i];
		const char *v = e->scratch[i].raw.ptr;
		size_t n = e->scratch[i].raw.len;

		*h = e->scratch[i];
		while (n && (*v == ' ' || *v == '\t')) {
			v++;
			n--;
		}
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
			n--;
		h->raw.ptr = v;
		h->raw.len = n;
		h->value = h->raw;
		if (needs_decoding(v, n) && mime_hdr_decode(e->cs, m->a, v, n, &h->value, &f) < 0)
			h->value = h->raw;
		if (!ct && slice_eq(h->name, "content-type"))
			ct = h;
		else if (!cte && slice_eq(h->name, "content-transfer-encoding"))
			cte = h;
		else if (!cd && slice_eq(h->name, "content-disposition"))
			cd = h;
	}
	p->nheaders = nh;
	if (ct) {
		struct mime_slice tok;
		const struct mime_slice *v;
		if (mime_hdr_params(e->cs, m->a, ct->raw.ptr, ct->raw.len, &tok, params,
				    ARRAY_LEN(params), &np, &f) == 0) {
			const char *slash = memchr(tok.ptr, '/', tok.len);
			if (slash && slash != tok.ptr && slash + 1 < tok.ptr + tok.len)
				p->type = tok;
			else
				mime_finding_add(m, "MIME_BAD_CONTENT_TYPE", p, NULL);
			if ((v = mime_hdr_param(params, np, "charset")))
				p->charset = *v;
			if ((v = mime_hdr_param(params, np, "boundary")))
				p->boundary = *v;
			if ((v = mime_hdr_param(params, np, "name")) && v->len)
				p->filename = *v;
		}
	}
	if (cd) {
		struct mime_slice tok;
		const struct mime_slice *v;
		if (mime_hdr_params(e->cs, m->a, cd->raw.ptr, cd->raw.len, &tok, params,
				    ARRAY_LEN(params), &np, &f) == 0) {
			p->disposition = tok;
			if ((v = mime_hdr_param(params, np, "filename")) && v->len)
				p->filename = *v;
		}
	}
	if (p->filename.len || slice_eq(p->disposition, "attachment"))
		p->flags |= MIME_PF_ATTACHMENT;
	if (cte) {
		p->cte = cte_parse(cte->value);
		if (p->cte == MIME_CTE_UNKNOWN)
			mime_finding_add(m, "MIME_BAD_CTE", p, NULL);
	}
	note_cs(p, f);
}

/* ---- the structure pass ----------------------------------------------- */

enum pstate { P_HDR, P_BODY, P_EPILOGUE };

struct bnd {
	struct mime_part *mp;
	const char *b;
	size_t len;
};

struct pctx {
	struct mime_msg *m;
	const char *d;
	size_t len;
	struct mime_part *top; /* the entity's root */
	struct mime_part *cur;
	enum pstate st;
	size_t nh, hbytes;
	bool hdr_over;
	struct bnd *stk;
	size_t nstk, maxstk;
};

static bool is_digest(const struct mime_part *parent)
{
	return parent && parent->kind == MIME_KIND_MULTIPART &&
	       slice_eq(parent->type, "multipart/digest");
}

static bool is_message_type(struct mime_slice t)
{
	return slice_eq(t, "message/rfc822") || slice_eq(t, "message/global");
}

static void set_extent(struct pctx *c, struct mime_part *p, size_t end)
{
	if (end < p->raw_off)
		end = p->raw_off;
	p->raw.ptr = c->d + p->raw_off;
	p->raw.len = end - p->raw_off;
	if (p->body_off > end || (p->flags & MIME_PF_NO_BODY)) {
		p->body.ptr = c->d + end;
		p->body.len = 0;
	} else {
		p->body.ptr = c->d + p->body_off;
		p->body.len = end - p->body_off;
	}
}

/* The header block of c->cur has ended; body starts at body_off. */
static void begin_body(struct pctx *c, size_t body_off, bool no_body)
{
	struct mime_msg *m = c->m;
	struct mime_part *p = c->cur;

	headers_finish(m, p, c->nh, is_digest(p->parent));
	c->nh = 0;
	c->hbytes = 0;
	c->hdr_over = false;
	p->body_off = body_off;
	if (no_body) {
		p->flags |= MIME_PF_NO_BODY;
		c->st = P_BODY;
		return;
	}
	if (slice_prefix(p->type, "multipart/")) {
		if (!p->boundary.len) {
			mime_finding_add(m, "MIME_NO_BOUNDARY", p, NULL);
		} else if (p->depth >= m->e->lim.max_depth || c->nstk >= c->maxstk) {
			mime_finding_add(m, "MIME_TOO_DEEP", p, NULL);
		} else {
			if (p->cte != MIME_CTE_7BIT && p->cte != MIME_CTE_8BIT &&
			    p->cte != MIME_CTE_BINARY)
				mime_finding_add(m, "MIME_BAD_CTE_DOMAIN", p, NULL);
			p->kind = MIME_KIND_MULTIPART;
			c->stk[c->nstk].mp = p;
			c->stk[c->nstk].b = p->boundary.ptr;
			c->stk[c->nstk].len = p->boundary.len;
			c->nstk++;
			c->st = P_EPILOGUE; /* the preamble is read like an epilogue */
			return;
		}
	} else if (is_message_type(p->type) &&
		   (p->cte == MIME_CTE_7BIT || p->cte == MIME_CTE_8BIT ||
		    p->cte == MIME_CTE_BINARY || p->cte == MIME_CTE_UNKNOWN)) {
		struct mime_part *child;
		if (p->depth >= m->e->lim.max_depth) {
			mime_finding_add(m, "MIME_TOO_DEEP", p, NULL);
		} else if ((child = mime_part_new(m, p, MIME_FROM_MIME, NULL, 0))) {
			p->kind = MIME_KIND_MESSAGE;
			child->raw_off = body_off;
			c->cur = child;
			c->st = P_HDR;
			return;
		}
	}
	c->st = P_BODY;
}

/* Closes cur and its ancestors below stop at offset end. */
static void close_to(struct pctx *c, struct mime_part *stop, size_t end, size_t line_off)
{
	if (c->st == P_HDR)
		begin_body(c, line_off, true);
	for (struct mime_part *p = c->cur; p && p != stop; p = p->parent) {
		set_extent(c, p, end);
		if (p == c->top)
			break;
	}
}

/* Which open boundary does the line (already known to start with "--")
 * delimit? RFC 2046 section 5.1.1: the boundary, maybe "--", then only
 * white space. A mere prefix match is not taken (boundaries b4 and b41). */
static int boundary_match(const struct pctx *c, const char *l, size_t n, bool *close)
{
	for (size_t k = c->nstk; k-- > 0;) {
		const struct bnd *b = &c->stk[k];
		size_t i;
		if (n < 2 + b->len || memcmp(l + 2, b->b, b->len) != 0)
			continue;
		i = 2 + b->len;
		*close = n >= i + 2 && l[i] == '-' && l[i + 1] == '-';
		if (*close)
			i += 2;
		while (i < n && (l[i] == ' ' || l[i] == '\t'))
			i++;
		if (i == n)
			return (int)k;
	}
	return -1;
}

/* Is the line "name:" (obsolete syntax: white space before the colon)? */
static size_t header_name_len(const char *l, size_t n)
{
	size_t i = 0, e;

	while (i < n && (unsigned char)l[i] > 32 && (unsigned char)l[i] < 127 && l[i] != ':')
		i++;
	e = i;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (e == 0 || i >= n || l[i] != ':')
		return 0;
	return e;
}

static void header_line(struct pctx *c, const char *l, size_t n, size_t ls)
{
	struct mime_msg *m = c->m;
	struct mime_engine *e = m->e;
	size_t nl;

	(void)ls;
	c->hbytes += n + 1;
	if (c->hdr_over)
		return;
	if (c->nh >= e->lim.max_headers || c->hbytes > e->lim.max_header_bytes) {
		mime_finding_add(m, "MIME_HEADER_LIMIT", c->cur, NULL);
		c->hdr_over = true;
		return;
	}
	if (l[0] == ' ' || l[0] == '\t') {
		if (c->nh) { /* continuation: the field extends to this line */
			struct mime_header *h = &e->scratch[c->nh - 1];
			h->raw.len = (size_t)(l + n - h->raw.ptr);
		}
		return;
	}
	nl = header_name_len(l, n);
	e->scratch[c->nh].name.ptr = l;
	e->scratch[c->nh].name.len = nl;
	{
		const char *colon = memchr(l + nl, ':', n - nl);
		e->scratch[c->nh].raw.ptr = colon + 1;
		e->scratch[c->nh].raw.len = (size_t)(l + n - (colon + 1));
	}
	c->nh++;
}

static void parse_entity(struct mime_msg *m, struct mime_part *top, const char *d, size_t len)
{
	struct pctx c = {.m = m, .d = d, .len = len, .top = top, .cur = top, .st = P_HDR};
	size_t pos = 0;

	c.maxstk = m->e->lim.max_depth;
	c.stk = arena_alloc(m->a, c.maxstk * sizeof(*c.stk));
	if (!c.stk) {
		mime_finding_add(m, "MIME_MEMORY_LIMIT", top, NULL);
		c.maxstk = 0;
	}
	top->raw_off = 0;
	/* an mbox "From " line before the header is not a header field */
	if (len > 5 && !memcmp(d, "From ", 5)) {
		const char *nl = memchr(d, '\n', len);
		pos = nl ? (size_t)(nl - d) + 1 : len;
		top->raw_off = pos;
	}
	while (pos < len) {
		const char *l = d + pos, *nlp = memchr(l, '\n', len - pos);
		size_t ls = pos, next = nlp ? (size_t)(nlp - d) + 1 : len;
		size_t n = (nlp ? (size_t)(nlp - l) : len - pos);
		bool close = false;
		int k;

		if (n && l[n - 1] == '\r')
			n--;
		if (c.nstk && n >= 2 && l[0] == '-' && l[1] == '-' &&
		    (k = boundary_match(&c, l, n, &close)) >= 0) {
			struct mime_part *mp = c.stk[k].mp, *child;
			size_t end = ls;
			if (end > 0 && d[end - 1] == '\n')
				end--;
			if (end > 0 && d[end - 1] == '\r')
				end--;
			close_to(&c, mp, end, ls);
			c.nstk = (size_t)k + 1;
			if (close) {
				c.nstk = (size_t)k;
				c.cur = mp;
				c.st = P_EPILOGUE;
			} else if ((child = mime_part_new(m, mp, MIME_FROM_MIME, NULL, 0))) {
				child->raw_off = next;
				c.cur = child;
				c.st = P_HDR;
			} else {
				c.cur = mp;
				c.st = P_EPILOGUE;
			}
			pos = next;
			continue;
		}
		if (c.st == P_HDR) {
			if (n == 0) {
				begin_body(&c, next, false);
			} else if ((l[0] == ' ' || l[0] == '\t') || header_name_len(l, n) > 0) {
				header_line(&c, l, n, ls);
			} else {
				/* not a header field: the body starts here */
				mime_finding_add(m, "MIME_BAD_HEADER", c.cur, NULL);
				begin_body(&c, ls, false);
				continue;
			}
		}
		pos = next;
	}
	if (c.st == P_HDR)
		begin_body(&c, len, true);
	if (c.nstk) {
		mime_finding_add(m, "MIME_BOUNDARY_UNCLOSED", c.stk[c.nstk - 1].mp, NULL);
		for (size_t k = 0; k < c.nstk; k++)
			c.stk[k].mp->flags |= MIME_PF_UNCLOSED;
	}
	for (struct mime_part *p = c.cur; p; p = p->parent) {
		set_extent(&c, p, len);
		if (p == top)
			break;
	}
}

/* ---- leaves ----------------------------------------------------------- */

int mime_part_set_text(struct mime_msg *m, struct mime_part *p, const char *bytes, size_t n,
		       const char *charset, size_t clen)
{
	unsigned f = 0;
	const char *u;
	size_t ulen;

	if (mime_cs_to_utf8(m->e->cs, charset, clen, bytes, n, m->a, &u, &ulen, &f) < 0) {
		mime_finding_add(m, "MIME_MEMORY_LIMIT", p, NULL);
		return -ENOMEM;
	}
	note_cs(p, f);
	if (f & MIME_CS_TRUNCATED)
		p->flags |= MIME_PF_TRUNCATED;
	p->text.ptr = u;
	p->text.len = ulen;
	p->flags |= MIME_PF_TEXT;
	return 0;
}

/* Decodes body into p->decoded within the budget. */
static void decode_body(struct mime_msg *m, struct mime_part *p)
{
	size_t want, got, used;
	unsigned f = 0;
	unsigned char *out;

	switch (p->cte) {
	case MIME_CTE_BASE64:
		want = p->body.len / 4 * 3 + 3;
		break;
	case MIME_CTE_QP:
	case MIME_CTE_UUENCODE:
		want = p->body.len;
		break;
	default:
		p->decoded = p->body;
		return;
	}
	got = mime_budget_take(m, p, want);
	if (!(out = arena_alloc(m->a, got + 1))) {
		mime_budget_return(m, got);
		mime_finding_add(m, "MIME_MEMORY_LIMIT", p, NULL);
		p->flags |= MIME_PF_TRUNCATED;
		return;
	}
	if (p->cte == MIME_CTE_BASE64) {
		used = mime_dec_base64(p->body.ptr, p->body.len, out, got, &f);
	} else if (p->cte == MIME_CTE_QP) {
		used = mime_dec_qp(p->body.ptr, p->body.len, out, got, &f);
	} else {
		struct mime_uu_block blk;
		used = 0;
		if (mime_dec_uu_find(p->body.ptr, p->body.len, 0, &blk))
			used = mime_dec_uu(p->body.ptr + blk.data_off, blk.data_end - blk.data_off,
					   out, got, &f);
		else
			f |= MIME_DEC_BROKEN;
	}
	out[used] = '\0';
	arena_shrink_last(m->a, out, got + 1, used + 1);
	mime_budget_return(m, got - used);
	if (f & MIME_DEC_BROKEN) {
		p->flags |= MIME_PF_BROKEN_ENCODING;
		mime_finding_add(m,
				 p->cte == MIME_CTE_BASE64 ? "MIME_BAD_BASE64"
				 : p->cte == MIME_CTE_QP   ? "MIME_BAD_QP"
							   : "MIME_BAD_UUENCODE",
				 p, NULL);
	}
	if ((f & MIME_DEC_TRUNCATED) || got < want)
		if (f & MIME_DEC_TRUNCATED)
			p->flags |= MIME_PF_TRUNCATED;
	p->decoded.ptr = (const char *)out;
	p->decoded.len = used;
}

/* uuencode blocks inside a text part become child parts. */
static void uu_children(struct mime_msg *m, struct mime_part *p)
{
	struct mime_uu_block blk;
	size_t from = 0;
	const char *t = p->decoded.ptr;

	while (from < p->decoded.len && mime_dec_uu_find(t, p->decoded.len, from, &blk)) {
		struct mime_part *c =
		    mime_part_new(m, p, MIME_FROM_UU, t + blk.name_off, blk.name_len);
		size_t got, used;
		unsigned f = 0;
		unsigned char *out;

		if (!c)
			return;
		c->filename.ptr = arena_memdup(m->a, t + blk.name_off, blk.name_len);
		c->filename.len = c->filename.ptr ? blk.name_len : 0;
		c->type.ptr = "application/octet-stream";
		c->type.len = 24;
		c->cte = MIME_CTE_UUENCODE;
		c->flags |= MIME_PF_ATTACHMENT;
		c->body.ptr = t + blk.data_off;
		c->body.len = blk.data_end - blk.data_off;
		c->raw = c->body;
		got = mime_budget_take(m, c, c->body.len);
		if (!(out = arena_alloc(m->a, got + 1))) {
			mime_budget_return(m, got);
			return;
		}
		used = mime_dec_uu(c->body.ptr, c->body.len, out, got, &f);
		mime_budget_return(m, got - used);
		if (f & MIME_DEC_BROKEN || blk.unterminated) {
			c->flags |= MIME_PF_BROKEN_ENCODING;
			mime_finding_add(m, "MIME_BAD_UUENCODE", c, NULL);
		}
		c->decoded.ptr = (const char *)out;
		c->decoded.len = used;
		c->kind = MIME_KIND_LEAF;
		from = blk.next;
	}
}

static void process_leaf(struct mime_msg *m, struct mime_part *p)
{
	unsigned opts = m->e->opts;
	bool text;

	if (p->origin == MIME_FROM_MIME)
		decode_body(m, p);
	if (p->origin == MIME_FROM_MIME && is_message_type(p->type) && p->kind == MIME_KIND_LEAF &&
	    p->decoded.ptr != p->body.ptr) {
		/* an encoded message/rfc822: parse what the encoding hid */
		struct mime_part *child;
		if (p->depth >= m->e->lim.max_depth) {
			mime_finding_add(m, "MIME_TOO_DEEP", p, NULL);
		} else if ((child = mime_part_new(m, p, MIME_FROM_MIME, NULL, 0))) {
			p->kind = MIME_KIND_MESSAGE;
			parse_entity(m, child, p->decoded.ptr, p->decoded.len);
			return;
		}
	}
	text = slice_prefix(p->type, "text/") && p->origin != MIME_FROM_ARCHIVE &&
	       p->origin != MIME_FROM_TNEF;
	if (text && (opts & MIME_OPT_TEXT)) {
		if (slice_eq(p->type, "text/html")) {
			p->flags |= MIME_PF_HTML;
			if (opts & MIME_OPT_URLS) {
				(void)mime_html_render(m, p, p->decoded.ptr, p->decoded.len);
			} else {
				(void)mime_part_set_text(m, p, p->decoded.ptr, p->decoded.len,
							 p->charset.ptr, p->charset.len);
			}
		} else {
			if (mime_part_set_text(m, p, p->decoded.ptr, p->decoded.len, p->charset.ptr,
					       p->charset.len) == 0 &&
			    (opts & MIME_OPT_URLS))
				(void)mime_url_scan_text(m, p, p->text.ptr, p->text.len);
			if (slice_eq(p->type, "text/plain") &&
			    memmem(p->decoded.ptr, p->decoded.len, "begin ", 6))
				uu_children(m, p);
		}
		if (p->flags & MIME_PF_CHARSET_REPLACED)
			mime_finding_add(m, "MIME_BAD_CHARSET", p, NULL);
		if (p->flags & MIME_PF_CHARSET_UNKNOWN)
			mime_finding_add(m, "MIME_UNKNOWN_CHARSET", p, NULL);
	}
	if ((opts & MIME_OPT_ATTACH) && (!text || (p->flags & MIME_PF_ATTACHMENT)) &&
	    p->decoded.len)
		(void)mime_attach_inspect(m, p);
}

int mime_parse(struct mime_engine *e, const char *data, size_t len, struct mime_msg **out)
{
	struct mime_msg *m;
	struct mime_part *root;
	uint64_t amax = e->lim.max_decoded * 2 + MIME_ARENA_OVERHEAD;
	int rc = -ENOMEM;

	*out = NULL;
	if (!(m = calloc(1, sizeof(*m))))
		goto out;
	m->e = e;
	if (amax > SIZE_MAX / 2)
		amax = SIZE_MAX / 2;
	if (!(m->a = arena_new((size_t)amax)) ||
	    !(m->parts = arena_alloc(m->a, e->lim.max_parts * sizeof(*m->parts))) ||
	    !(root = mime_part_new(m, NULL, MIME_FROM_MIME, NULL, 0))) {
		mime_msg_free(m);
		goto out;
	}
	if (memchr(data, '\0', len))
		mime_finding_add(m, "MIME_NUL_BYTES", root, NULL);
	parse_entity(m, root, data, len);
	for (size_t i = 0; i < m->nparts; i++)
		if (m->parts[i]->kind == MIME_KIND_LEAF)
			process_leaf(m, m->parts[i]);
	*out = m;
	rc = 0;
out:
	return rc;
}

void mime_msg_free(struct mime_msg *m)
{
	if (!m)
		return;
	arena_free(m->a);
	free(m);
}

const struct mime_part *mime_msg_root(const struct mime_msg *m)
{
	return m->parts[0];
}

size_t mime_msg_nparts(const struct mime_msg *m)
{
	return m->nparts;
}

const struct mime_part *mime_msg_part(const struct mime_msg *m, size_t i)
{
	return i < m->nparts ? m->parts[i] : NULL;
}

size_t mime_msg_nfindings(const struct mime_msg *m)
{
	return m->nfindings;
}

const struct mime_finding *mime_msg_finding(const struct mime_msg *m, size_t i)
{
	return i < m->nfindings ? &m->findings[i] : NULL;
}

int mime_msg_has_finding(const struct mime_msg *m, const char *name)
{
	for (size_t i = 0; i < m->nfindings; i++)
		if (!strcmp(m->findings[i].name, name))
			return 1;
	return 0;
}

const struct mime_header *mime_part_header(const struct mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->nheaders; i++)
		if (slice_eq(p->headers[i].name, name))
			return &p->headers[i];
	return NULL;
}

const struct mime_part *mime_part_next(const struct mime_part *p)
{
	if (p->first_child)
		return p->first_child;
	while (p) {
		if (p->next)
			return p->next;
		p = p->parent;
	}
	return NULL;
}
