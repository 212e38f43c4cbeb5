/* SPDX-License-Identifier: MIT */
/*
 * sarules_scan.c: runs a compiled rule set on one message (see sarules.h).
 *
 * Texts, as SpamAssassin builds them:
 * - header: one string per target, every field of that name joined, each
 *   value followed by '\n' (Perl's $pms->get()).
 * - body: the Subject, then the text of every text part with runs of
 *   white space made one space and a blank line ending a paragraph; one
 *   paragraph per line.
 * - rawbody: the transfer-decoded text parts, line by line.
 * - uri: one URL per line.
 * - full: the message as received.
 * Line-mode texts are scanned once, joined with '\n', with Vectorscan in
 * multi-line mode (a superset of the per-line matches); every hit is then
 * confirmed by PCRE2 on its own line, so a pattern never matches across
 * two lines.
 */
#include "scan/sarules_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "scan/pipeline.h"

/* Bounds: a hostile message cannot make a regex run forever. */
#define SAR_MATCH_LIMIT 200000
#define SAR_DEPTH_LIMIT 20000
#define SAR_MAX_META_DEPTH 64
#define SAR_MAX_TEXT (8u * 1024 * 1024) /* per text kind */

int sar_buf_add(struct sar_buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(np = realloc(b->p, cap)))
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int text_line(struct sar_text *t)
{
	if (t->nlines == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		size_t *np = realloc(t->lines, cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		t->lines = np;
		t->cap = cap;
	}
	t->lines[t->nlines++] = t->b.len;
	return 0;
}

static void text_reset(struct sar_text *t)
{
	t->b.len = 0;
	if (t->b.p)
		t->b.p[0] = '\0';
	t->nlines = 0;
	t->built = false;
}

/* Ends the current line (if it has anything) and starts the next. */
static int text_newline(struct sar_text *t)
{
	if (t->nlines && t->lines[t->nlines - 1] == t->b.len)
		return 0; /* empty line: reuse it */
	if (t->b.len && sar_buf_add(&t->b, "\n", 1) < 0)
		return -ENOMEM;
	return text_line(t);
}

/* ---- headers ---------------------------------------------------------------- */

/* Display name and address of one address field value ("Name <a@b>",
 * "a@b (Name)", "a@b"): the first mailbox only, like SpamAssassin 3. */
static void split_addr(const char *v, size_t n, struct mime_slice *addr, struct mime_slice *name)
{
	const char *lt = memchr(v, '<', n), *gt, *e = v + n;

	addr->ptr = name->ptr = v;
	addr->len = name->len = 0;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	if (lt && (gt = memchr(lt, '>', (size_t)(e - lt)))) {
		const char *ns = v, *ne = lt;
		addr->ptr = lt + 1;
		addr->len = (size_t)(gt - lt - 1);
		while (ne > ns && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		if (ne > ns && *ns == '"' && ne[-1] == '"' && ne - ns >= 2) {
			ns++;
			ne--;
		}
		name->ptr = ns;
		name->len = (size_t)(ne - ns);
		return;
	}
	const char *paren = memchr(v, '(', (size_t)(e - v));
	const char *ae = paren ? paren : e;
	while (ae > v && (ae[-1] == ' ' || ae[-1] == '\t'))
		ae--;
	const char *comma = memchr(v, ',', (size_t)(ae - v));
	if (comma)
		ae = comma;
	addr->ptr = v;
	addr->len = (size_t)(ae - v);
	if (paren) {
		const char *pe = memchr(paren, ')', (size_t)(e - paren));
		name->ptr = paren + 1;
		name->len = pe ? (size_t)(pe - paren - 1) : (size_t)(e - paren - 1);
	}
}

static int add_field(struct sar_buf *out, const struct mime_header *h, enum sar_hmod mod)
{
	struct mime_slice a, nm;
	const char *p = mod == SAR_HM_RAW ? h->raw.ptr : h->value.ptr;
	size_t n = mod == SAR_HM_RAW ? h->raw.len : h->value.len;

	while (n && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	if (mod == SAR_HM_ADDR || mod == SAR_HM_NAME) {
		/* addresses and names: no trailing newline, one per line */
		split_addr(h->value.ptr, h->value.len, &a, &nm);
		p = mod == SAR_HM_ADDR ? a.ptr : nm.ptr;
		n = mod == SAR_HM_ADDR ? a.len : nm.len;
		if (out->len && sar_buf_add(out, "\n", 1) < 0)
			return -ENOMEM;
		return sar_buf_add(out, p, n);
	}
	if (sar_buf_add(out, p, n) < 0 || sar_buf_add(out, "\n", 1) < 0)
		return -ENOMEM;
	return 0;
}

static int fields_of(const struct mime_part *part, const char *name, enum sar_hmod mod,
		     struct sar_buf *out, bool *found)
{
	for (size_t i = 0; i < part->nheaders; i++) {
		const struct mime_header *h = &part->headers[i];
		if (h->name.len != strlen(name) || strncasecmp(h->name.ptr, name, h->name.len))
			continue;
		*found = true;
		if (add_field(out, h, mod) < 0)
			return -ENOMEM;
	}
	return 0;
}

int sar_header_text(struct sarules_scanner *s, const char *name, enum sar_hmod mod,
		    struct sar_buf *out, bool *found)
{
	const struct mime_part *root = mime_msg_root(s->msg);

	out->len = 0;
	if (sar_buf_add(out, "", 0) < 0)
		return -ENOMEM;
	*found = false;
	if (!root)
		return 0;
	if (!strcmp(name, "ALL")) {
		*found = root->nheaders > 0;
		if (mod == SAR_HM_RAW) {
			size_t n = root->body_off > root->raw_off ? root->body_off - root->raw_off
								  : root->raw.len;
			return sar_buf_add(out, root->raw.ptr,
					   n < root->raw.len ? n : root->raw.len);
		}
		for (size_t i = 0; i < root->nheaders; i++) {
			const struct mime_header *h = &root->headers[i];
			if (sar_buf_add(out, h->name.ptr, h->name.len) < 0 ||
			    sar_buf_add(out, ": ", 2) < 0 || add_field(out, h, mod) < 0)
				return -ENOMEM;
		}
		return 0;
	}
	if (!strcmp(name, "ToCc"))
		return fields_of(root, "To", mod, out, found) < 0 ||
			       fields_of(root, "Cc", mod, out, found) < 0
			   ? -ENOMEM
			   : 0;
	if (!strcmp(name, "MESSAGEID")) {
		static const char *const ids[] = {"Message-Id", "Resent-Message-Id",
						  "X-Message-Id"};
		for (size_t i = 0; i < ARRAY_LEN(ids); i++)
			if (fields_of(root, ids[i], mod, out, found) < 0)
				return -ENOMEM;
		return 0;
	}
	if (!strcmp(name, "EnvelopeFrom")) {
		if (s->envfrom) {
			*found = true;
			return sar_buf_add(out, s->envfrom, strlen(s->envfrom)) < 0 ||
				       sar_buf_add(out, "\n", 1) < 0
				   ? -ENOMEM
				   : 0;
		}
		return fields_of(root, "Return-Path", SAR_HM_ADDR, out, found);
	}
	return fields_of(root, name, mod, out, found);
}

/* ---- body texts --------------------------------------------------------------- */

/* Appends text with SpamAssassin's rendering: white space runs become one
 * space, a run holding two newlines ends the paragraph (the line). */
static int add_rendered(struct sar_text *t, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, nl = 0;
		while (j < n && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r' || p[j] == '\n' ||
				 p[j] == '\f' || p[j] == '\v')) {
			if (p[j] == '\n')
				nl++;
			j++;
		}
		if (j > i) {
			if (nl >= 2) {
				if (text_newline(t) < 0)
					return -ENOMEM;
			} else if (t->b.len && t->lines[t->nlines - 1] != t->b.len &&
				   sar_buf_add(&t->b, " ", 1) < 0) {
				return -ENOMEM;
			}
			i = j;
			continue;
		}
		while (j < n && !(p[j] == ' ' || p[j] == '\t' || p[j] == '\r' || p[j] == '\n' ||
				  p[j] == '\f' || p[j] == '\v'))
			j++;
		if (t->b.len + (j - i) > SAR_MAX_TEXT)
			return 0;
		if (sar_buf_add(&t->b, p + i, j - i) < 0)
			return -ENOMEM;
		i = j;
	}
	return 0;
}

static bool is_text_part(const struct mime_part *p)
{
	return p->kind == MIME_KIND_LEAF && p->origin == MIME_FROM_MIME &&
	       (p->flags & MIME_PF_TEXT) && p->type.len >= 5 && !strncmp(p->type.ptr, "text/", 5);
}

int sar_body_text(struct sarules_scanner *s, const struct sar_text **out)
{
	struct sar_text *t = &s->body;
	bool found;
	size_t n = mime_msg_nparts(s->msg);

	*out = t;
	if (t->built)
		return 0;
	text_reset(t);
	if (text_line(t) < 0 || sar_header_text(s, "Subject", SAR_HM_DECODED, &s->tmp, &found) < 0)
		return -ENOMEM;
	if (s->tmp.len && s->tmp.p[s->tmp.len - 1] == '\n')
		s->tmp.len--;
	if (add_rendered(t, s->tmp.p, s->tmp.len) < 0 || text_newline(t) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = mime_msg_part(s->msg, i);
		if (!is_text_part(p))
			continue;
		if (add_rendered(t, p->text.ptr, p->text.len) < 0 || text_newline(t) < 0)
			return -ENOMEM;
	}
	t->built = true;
	return 0;
}

static int rawbody_text(struct sarules_scanner *s)
{
	struct sar_text *t = &s->rawbody;
	size_t n = mime_msg_nparts(s->msg);

	text_reset(t);
	if (text_line(t) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = mime_msg_part(s->msg, i);
		const char *d, *e;
		if (!is_text_part(p))
			continue;
		d = p->decoded.ptr;
		e = d + p->decoded.len;
		while (d < e && t->b.len < SAR_MAX_TEXT) {
			const char *nl = memchr(d, '\n', (size_t)(e - d));
			size_t len = nl ? (size_t)(nl - d) : (size_t)(e - d);
			size_t keep = len;
			if (keep && d[keep - 1] == '\r')
				keep--;
			if (sar_buf_add(&t->b, d, keep) < 0 || text_newline(t) < 0)
				return -ENOMEM;
			d += len + (nl ? 1 : 0);
		}
	}
	t->built = true;
	return 0;
}

static int uri_text(struct sarules_scanner *s)
{
	struct sar_text *t = &s->uris;
	size_t n = mime_msg_nparts(s->msg);

	text_reset(t);
	if (text_line(t) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = mime_msg_part(s->msg, i);
		for (size_t u = 0; u < p->nurls && t->b.len < SAR_MAX_TEXT; u++) {
			const struct mime_url *url = &p->urls[u];
			if (memchr(url->url.ptr, '\n', url->url.len))
				continue;
			if (sar_buf_add(&t->b, url->url.ptr, url->url.len) < 0 ||
			    text_newline(t) < 0)
				return -ENOMEM;
		}
	}
	t->built = true;
	return 0;
}

/* ---- matching ------------------------------------------------------------------- */

int sar_pcre_count(struct sarules_scanner *sc, const struct sar_rule *r, const char *s, size_t len,
		   int max)
{
	PCRE2_SIZE off = 0;
	int n = 0;

	while (n < max && off <= len) {
		int rc = pcre2_match(r->re, (PCRE2_SPTR)s, len, off, 0, sc->md, sc->mctx);
		PCRE2_SIZE *ov;
		if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && rc != PCRE2_ERROR_PARTIAL)
			break; /* match limit, JIT stack: counted as no match */
		if (rc < 0)
			break;
		n++;
		ov = pcre2_get_ovector_pointer(sc->md);
		off = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
	}
	return n;
}

static int max_hits(const struct sar_rule *r)
{
	if (!(r->tflags & SAR_TF_MULTIPLE))
		return 1;
	return r->maxhits ? r->maxhits : 1000;
}

struct hs_ctx {
	struct sarules_scanner *s;
	const struct sar_set *set;
	const char *text;
	size_t len;
	const struct sar_text *lines; /* NULL: string mode */
};

static size_t line_of(const struct sar_text *t, size_t off)
{
	size_t lo = 0, hi = t->nlines;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (t->lines[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void confirm_line(struct hs_ctx *c, int32_t ri, size_t line)
{
	struct sarules_scanner *s = c->s;
	const struct sar_rule *r = &s->db->rules[ri];
	size_t start, end;
	int cap = max_hits(r), n;

	if ((size_t)s->seen[ri] > line)
		return;
	s->seen[ri] = (int32_t)line + 1;
	start = c->lines->lines[line];
	end = line + 1 < c->lines->nlines ? c->lines->lines[line + 1] - 1 : c->len;
	if (end < start)
		end = start;
	if (s->val[ri] < 0)
		s->val[ri] = 0;
	if (s->val[ri] >= cap)
		return;
	n = sar_pcre_count(s, r, c->text + start, end - start, cap - s->val[ri]);
	s->val[ri] += n;
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
		    unsigned int flags, void *arg)
{
	struct hs_ctx *c = arg;
	struct sarules_scanner *s = c->s;
	int32_t ri = c->set->rules[id];
	const struct sar_rule *r = &s->db->rules[ri];

	(void)from;
	(void)flags;
	if (s->val[ri] >= max_hits(r))
		return 0;
	if (c->lines) {
		size_t l1 = line_of(c->lines, to > 0 ? (size_t)to - 1 : 0);
		size_t l2 = line_of(c->lines, (size_t)to);
		confirm_line(c, ri, l1);
		if (l2 != l1)
			confirm_line(c, ri, l2);
		return 0;
	}
	if (r->hsmode == SAR_HS_EXACT && !(r->tflags & SAR_TF_MULTIPLE)) {
		s->val[ri] = 1;
		return 0;
	}
	if (s->seen[ri])
		return 0;
	s->seen[ri] = 1;
	s->val[ri] = sar_pcre_count(s, r, c->text, c->len, max_hits(r));
	return 0;
}

/* Runs one set over one text; line-mode when lines is given. */
static int run_set(struct sarules_scanner *s, const struct sar_set *set, const char *text,
		   size_t len, const struct sar_text *lines)
{
	struct hs_ctx c = {
	    .s = s, .set = set, .text = text ? text : "", .len = len, .lines = lines};

	for (size_t k = 0; k < set->nhs; k++)
		if (hs_scan(set->hs[k], c.text, (unsigned)len, 0, s->scratch, on_match, &c) !=
		    HS_SUCCESS)
			return -EIO;
	for (size_t i = 0; i < set->npcre; i++) {
		int32_t ri = set->pcre_only[i];
		const struct sar_rule *r = &s->db->rules[ri];
		if (lines) {
			for (size_t l = 0; l < lines->nlines && s->val[ri] < max_hits(r); l++)
				confirm_line(&c, ri, l);
		} else {
			s->val[ri] = sar_pcre_count(s, r, c.text, len, max_hits(r));
		}
	}
	return 0;
}

/* Rules with [if-unset: text] on a missing field match that text. */
static void apply_unset(struct sarules_scanner *s, const struct sar_set *set)
{
	for (size_t i = 0; i < set->n + set->npcre; i++) {
		int32_t ri = i < set->n ? set->rules[i] : set->pcre_only[i - set->n];
		const struct sar_rule *r = &s->db->rules[ri];
		if (r->has_unset)
			s->val[ri] =
			    sar_pcre_count(s, r, r->if_unset, strlen(r->if_unset), max_hits(r));
	}
}

static int scan_headers(struct sarules_scanner *s)
{
	const struct sarules_db *db = s->db;
	bool found;

	for (size_t t = 0; t < db->ntargets; t++) {
		const struct sar_target *tg = &db->targets[t];
		const struct sar_set *set = &db->hsets[t];
		if (!set->n && !set->npcre)
			continue;
		if (tg->mime) {
			/* mimeheader: each part's own field */
			size_t np = mime_msg_nparts(s->msg);
			for (size_t i = 0; i < np; i++) {
				const struct mime_part *p = mime_msg_part(s->msg, i);
				found = false;
				s->hdr.len = 0;
				if (sar_buf_add(&s->hdr, "", 0) < 0 ||
				    fields_of(p, tg->name, tg->mod, &s->hdr, &found) < 0)
					return -ENOMEM;
				if (found && run_set(s, set, s->hdr.p, s->hdr.len, NULL) < 0)
					return -EIO;
				for (size_t k = 0; k < set->n; k++)
					s->seen[set->rules[k]] = 0;
			}
			continue;
		}
		if (sar_header_text(s, tg->name, tg->mod, &s->hdr, &found) < 0)
			return -ENOMEM;
		if (run_set(s, set, s->hdr.p, s->hdr.len, NULL) < 0)
			return -EIO;
		if (!found)
			apply_unset(s, set);
	}
	return 0;
}

/* ---- values: regex hits, exists:, eval:, meta ------------------------------------ */

static int32_t rule_value(struct sarules_scanner *s, int32_t ri, int depth);

static int32_t meta_run(struct sarules_scanner *s, const struct sar_rule *r, int depth)
{
	size_t base = s->sp, sp = s->sp;
	double *st = s->stack;

	if (base + r->ncode + 1 > s->stackcap)
		return 0;
	for (size_t pc = 0; pc < r->ncode; pc++) {
		const struct sar_ins *in = &r->code[pc];
		double b;
		switch (in->op) {
		case SAR_OP_NUM:
			st[sp++] = in->num;
			break;
		case SAR_OP_RULE:
			s->sp = sp;
			st[sp++] = rule_value(s, in->arg, depth + 1);
			break;
		case SAR_OP_NOT:
			st[sp - 1] = st[sp - 1] != 0 ? 0 : 1;
			break;
		case SAR_OP_NEG:
			st[sp - 1] = -st[sp - 1];
			break;
		case SAR_OP_AND:
			if (st[sp - 1] == 0)
				pc = (size_t)in->arg - 1;
			else
				sp--;
			break;
		case SAR_OP_OR:
			if (st[sp - 1] != 0)
				pc = (size_t)in->arg - 1;
			else
				sp--;
			break;
		default:
			b = st[--sp];
			switch (in->op) {
			case SAR_OP_ADD:
				st[sp - 1] += b;
				break;
			case SAR_OP_SUB:
				st[sp - 1] -= b;
				break;
			case SAR_OP_MUL:
				st[sp - 1] *= b;
				break;
			case SAR_OP_DIV:
				st[sp - 1] = b != 0 ? st[sp - 1] / b : 0;
				break;
			case SAR_OP_GT:
				st[sp - 1] = st[sp - 1] > b;
				break;
			case SAR_OP_GE:
				st[sp - 1] = st[sp - 1] >= b;
				break;
			case SAR_OP_LT:
				st[sp - 1] = st[sp - 1] < b;
				break;
			case SAR_OP_LE:
				st[sp - 1] = st[sp - 1] <= b;
				break;
			case SAR_OP_EQ:
				st[sp - 1] = st[sp - 1] == b;
				break;
			case SAR_OP_NE:
				st[sp - 1] = st[sp - 1] != b;
				break;
			default:
				break;
			}
		}
	}
	s->sp = base;
	if (sp != base + 1)
		return 0;
	/* SpamAssassin: a meta hits when its expression is true (non-zero) */
	return st[base] > 0 || st[base] < 0 ? 1 : 0;
}

static int32_t rule_value(struct sarules_scanner *s, int32_t ri, int depth)
{
	const struct sar_rule *r = &s->db->rules[ri];
	int32_t v = s->val[ri];
	bool found;

	if (r->skip || r->test == SAR_T_NONE)
		return 0;
	if (r->test == SAR_T_REGEX) {
		int32_t hits = v > 0 ? v : 0;
		return r->negate ? (hits ? 0 : 1) : hits;
	}
	if (v >= 0)
		return v;
	if (v == -2 || depth > SAR_MAX_META_DEPTH)
		return 0; /* a cycle */
	s->val[ri] = -2;
	switch (r->test) {
	case SAR_T_EXISTS: {
		const struct sar_target *t = &s->db->targets[r->target];
		found = false;
		if (t->mime) {
			size_t np = mime_msg_nparts(s->msg);
			for (size_t i = 0; i < np && !found; i++)
				if (mime_part_header(mime_msg_part(s->msg, i), t->name))
					found = true;
		} else if (sar_header_text(s, t->name, SAR_HM_RAW, &s->tmp, &found) < 0) {
			found = false;
		}
		v = found ? 1 : 0;
		break;
	}
	case SAR_T_EVAL:
		v = sar_eval_run(s, r);
		break;
	case SAR_T_META:
		v = meta_run(s, r, depth);
		break;
	default:
		v = 0;
	}
	s->val[ri] = v;
	return v;
}

/* ---- the scanner --------------------------------------------------------------- */

int sarules_scanner_new(const struct sarules_db *db, struct sarules_scanner **out)
{
	struct sarules_scanner *s = calloc(1, sizeof(*s));
	size_t n = db->nrules ? db->nrules : 1, code = 16;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->db = db;
	for (size_t i = 0; i < db->nrules; i++)
		code += db->rules[i].ncode + 1;
	s->val = calloc(n, sizeof(*s->val));
	s->seen = calloc(n, sizeof(*s->seen));
	s->stack = calloc(code, sizeof(*s->stack));
	s->stackcap = code;
	s->md = pcre2_match_data_create(1, NULL);
	s->mctx = pcre2_match_context_create(NULL);
	if (!s->val || !s->seen || !s->stack || !s->md || !s->mctx)
		goto fail;
	pcre2_set_match_limit(s->mctx, SAR_MATCH_LIMIT);
	pcre2_set_depth_limit(s->mctx, SAR_DEPTH_LIMIT);
	for (size_t k = 0; k < SAR_NKINDS; k++)
		for (size_t c = 0; c < db->kinds[k].nhs; c++)
			if (hs_alloc_scratch(db->kinds[k].hs[c], &s->scratch) != HS_SUCCESS)
				goto fail;
	for (size_t t = 0; t < db->ntargets; t++)
		for (size_t c = 0; c < db->hsets[t].nhs; c++)
			if (hs_alloc_scratch(db->hsets[t].hs[c], &s->scratch) != HS_SUCCESS)
				goto fail;
	*out = s;
	return 0;
fail:
	sarules_scanner_free(s);
	return -ENOMEM;
}

void sarules_scanner_free(struct sarules_scanner *s)
{
	if (!s)
		return;
	hs_free_scratch(s->scratch);
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	free(s->val);
	free(s->seen);
	free(s->stack);
	free(s->body.b.p);
	free(s->body.lines);
	free(s->rawbody.b.p);
	free(s->rawbody.lines);
	free(s->uris.b.p);
	free(s->uris.lines);
	free(s->hdr.p);
	free(s->tmp.p);
	free(s);
}

int sarules_scan(struct sarules_scanner *s, const struct mime_msg *msg, const char *raw, size_t len,
		 const char *envfrom, sarules_hit_cb cb, void *arg)
{
	const struct sarules_db *db = s->db;
	const struct sar_text *body;
	int rc, hits = 0;

	s->msg = msg;
	s->raw = raw;
	s->rawlen = len;
	s->envfrom = envfrom;
	s->sp = 0;
	for (size_t i = 0; i < db->nrules; i++)
		s->val[i] = -1;
	memset(s->seen, 0, db->nrules * sizeof(*s->seen));
	text_reset(&s->body);
	text_reset(&s->rawbody);
	text_reset(&s->uris);

	if ((rc = scan_headers(s)) < 0)
		goto out;
	if (db->kinds[SAR_BODY].n + db->kinds[SAR_BODY].npcre) {
		if ((rc = sar_body_text(s, &body)) < 0 ||
		    (rc = run_set(s, &db->kinds[SAR_BODY], body->b.p, body->b.len, body)) < 0)
			goto out;
		memset(s->seen, 0, db->nrules * sizeof(*s->seen));
	}
	if (db->kinds[SAR_RAWBODY].n + db->kinds[SAR_RAWBODY].npcre) {
		if ((rc = rawbody_text(s)) < 0 ||
		    (rc = run_set(s, &db->kinds[SAR_RAWBODY], s->rawbody.b.p, s->rawbody.b.len,
				  &s->rawbody)) < 0)
			goto out;
		memset(s->seen, 0, db->nrules * sizeof(*s->seen));
	}
	if (db->kinds[SAR_URI].n + db->kinds[SAR_URI].npcre) {
		if ((rc = uri_text(s)) < 0 || (rc = run_set(s, &db->kinds[SAR_URI], s->uris.b.p,
							    s->uris.b.len, &s->uris)) < 0)
			goto out;
		memset(s->seen, 0, db->nrules * sizeof(*s->seen));
	}
	if (db->kinds[SAR_FULL].n + db->kinds[SAR_FULL].npcre &&
	    (rc = run_set(s, &db->kinds[SAR_FULL], raw, len, NULL)) < 0)
		goto out;
	for (size_t i = 0; i < db->nreport; i++) {
		const struct sar_rule *r = &db->rules[db->report[i]];
		if (rule_value(s, db->report[i], 0) > 0) {
			cb(arg, r->name, r->score, r->describe ? r->describe : "");
			hits++;
		}
	}
	rc = hits;
out:
	s->msg = NULL;
	s->raw = NULL;
	return rc;
}

/* ---- the pipeline check ------------------------------------------------------------ */

static int sar_shared_new(const struct config *cfg, struct metrics *m, void **shared, char *err,
			  size_t errlen)
{
	struct sarules_db *db = NULL;
	int rc;

	(void)m;
	*shared = NULL;
	if ((rc = sarules_db_load_config(cfg, &db, err, errlen)) < 0)
		return rc;
	if (db)
		log_info("sa_rules", "loaded=%zu skipped=%zu files=%zu ms=%lld",
			 sarules_db_nloaded(db), sarules_db_nskipped(db), sarules_db_nfiles(db),
			 (long long)(sarules_db_load_us(db) / 1000));
	*shared = db;
	return 0;
}

static void sar_shared_free(void *shared)
{
	sarules_db_free(shared);
}

static int sar_thread_init(const struct config *cfg, struct metrics *m, void *shared, void **state,
			   char *err, size_t errlen)
{
	struct sarules_scanner *s = NULL;

	(void)cfg;
	(void)m;
	*state = NULL;
	if (!shared)
		return 0;
	if (sarules_scanner_new(shared, &s) < 0) {
		(void)str_copy(err, errlen, "out of memory (SpamAssassin rules scanner)");
		return -ENOMEM;
	}
	*state = s;
	return 0;
}

static void sar_thread_free(void *state)
{
	sarules_scanner_free(state);
}

static void on_hit(void *arg, const char *name, double score, const char *describe)
{
	scan_ctx_symbol(arg, name, score, "%.200s", describe);
}

static void sar_run(void *state, struct scan_ctx *ctx)
{
	struct sarules_scanner *s = state;
	const struct scan_request *req = scan_ctx_request(ctx);
	int rc;

	if (!s || scan_ctx_refused(ctx))
		return;
	rc = sarules_scan(s, scan_ctx_mime(ctx), req->data, req->len,
			  req->sender ? req->sender : NULL, on_hit, ctx);
	if (rc < 0) {
		scan_ctx_symbol(ctx, "SA_RULES_FAIL", 0, "%s", strerror(-rc));
		log_warn("sa_rules_fail", "qid=%s reason=%s", req->qid ? req->qid : "-",
			 strerror(-rc));
	}
}

const struct scan_check sarules_check = {
    .name = "sarules",
    .shared_new = sar_shared_new,
    .shared_free = sar_shared_free,
    .thread_init_shared = sar_thread_init,
    .thread_free = sar_thread_free,
    .run = sar_run,
};
