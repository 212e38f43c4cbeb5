/* SPDX-License-Identifier: MIT */
/*
 * header: RFC 2047 (encoded words), RFC 2045 section 5 and RFC 822
 * (parameters, comments, quoted strings) and RFC 2231 (parameter value
 * continuations, charset and language). Real mail breaks all three:
 * encoded words inside quoted parameter values, encoded words split in the
 * middle of a multi-byte character, missing quotes, unbalanced comments.
 * Each case is read the way common mail clients read it.
 */
#include "mime/header.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "mime/decode.h"

#define COMMENT_MAX_DEPTH 16
#define RFC2231_MAX_SECTIONS 64

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Unfolds and trims into a fresh arena copy. */
static char *unfold(struct arena *a, const char *v, size_t n, size_t *outlen)
{
	char *d = arena_alloc(a, n + 1);
	size_t o = 0;

	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		d[o++] = v[i] == '\t' ? ' ' : v[i];
	}
	while (o && d[o - 1] == ' ')
		o--;
	size_t s = 0;
	while (s < o && d[s] == ' ')
		s++;
	if (s)
		memmove(d, d + s, o - s);
	o -= s;
	d[o] = '\0';
	*outlen = o;
	return d;
}

/* One encoded word "=?charset?X?text?=" at v[i..n): fills its parts. */
struct eword {
	size_t cs_off, cs_len, txt_off, txt_len, end;
	char enc;
};

static bool eword_parse(const char *v, size_t n, size_t i, struct eword *w)
{
	size_t j;

	if (i + 8 > n || v[i] != '=' || v[i + 1] != '?')
		return false;
	w->cs_off = i + 2;
	for (j = w->cs_off; j < n && v[j] != '?' && !is_ws(v[j]); j++)
		;
	if (j >= n || v[j] != '?' || j == w->cs_off || j + 3 >= n || v[j + 2] != '?')
		return false;
	w->cs_len = j - w->cs_off;
	/* RFC 2231 section 5: charset*language */
	for (size_t k = 0; k < w->cs_len; k++)
		if (v[w->cs_off + k] == '*') {
			w->cs_len = k;
			break;
		}
	w->enc = v[j + 1];
	if (w->enc != 'B' && w->enc != 'b' && w->enc != 'Q' && w->enc != 'q')
		return false;
	w->txt_off = j + 3;
	for (j = w->txt_off; j + 1 < n; j++) {
		if (v[j] == '?' && v[j + 1] == '=')
			break;
		if (v[j] == ' ' && (w->enc == 'Q' || w->enc == 'q'))
			return false;
	}
	if (j + 1 >= n)
		return false;
	w->txt_len = j - w->txt_off;
	w->end = j + 2;
	return true;
}

/* Appends src to the output d (capacity checked by the caller's sizing). */
static size_t put(char *d, size_t o, const char *s, size_t n)
{
	memcpy(d + o, s, n);
	return o + n;
}

static int flush_run(struct mime_cs *cs, struct arena *a, const char *csname, size_t cslen,
		     const unsigned char *raw, size_t rawlen, char *d, size_t *o, size_t cap,
		     unsigned *flags)
{
	const char *u;
	size_t ulen;

	if (!rawlen)
		return 0;
	if (mime_cs_to_utf8(cs, csname, cslen, (const char *)raw, rawlen, a, &u, &ulen, flags) < 0)
		return -ENOMEM;
	if (ulen > cap - *o)
		ulen = cap - *o;
	*o = put(d, *o, u, ulen);
	return 0;
}

int mime_hdr_decode(struct mime_cs *cs, struct arena *a, const char *v, size_t n,
		    struct mime_slice *out, unsigned *flags)
{
	size_t len, i = 0, o = 0, cap, rawlen = 0, pending_ws = 0;
	const char *run_cs = NULL;
	size_t run_cslen = 0;
	unsigned char *raw;
	char *u = unfold(a, v, n, &len), *d;
	bool prev_word = false;
	int rc = -ENOMEM;

	if (!u)
		return -ENOMEM;
	if (!memmem(u, len, "=?", 2)) {
		const char *c;
		size_t clen;
		if (mime_cs_utf8_clean(u, len, a, &c, &clen, flags) < 0)
			return -ENOMEM;
		if (c != u) /* 8-bit junk: read it as Windows-1252 like clients do */
			if (mime_cs_to_utf8(cs, NULL, 0, u, len, a, &c, &clen, flags) < 0)
				return -ENOMEM;
		out->ptr = c;
		out->len = clen;
		return 0;
	}
	cap = len * 4 + 16;
	if (!(d = arena_alloc(a, cap)) || !(raw = arena_alloc(a, len + 1)))
		return -ENOMEM;
	while (i < len) {
		struct eword w;
		if (u[i] == '=' && eword_parse(u, len, i, &w)) {
			unsigned f = 0;
			/* white space between two encoded words is dropped */
			if (!prev_word && pending_ws)
				o = put(d, o, u + i - pending_ws, pending_ws);
			pending_ws = 0;
			if (run_cs && (run_cslen != w.cs_len ||
				       strncasecmp(run_cs, u + w.cs_off, w.cs_len) != 0)) {
				if (flush_run(cs, a, run_cs, run_cslen, raw, rawlen, d, &o, cap,
					      flags) < 0)
					goto out;
				rawlen = 0;
			}
			run_cs = u + w.cs_off;
			run_cslen = w.cs_len;
			if (w.enc == 'B' || w.enc == 'b')
				rawlen += mime_dec_base64(u + w.txt_off, w.txt_len, raw + rawlen,
							  len - rawlen, &f);
			else
				rawlen += mime_dec_q(u + w.txt_off, w.txt_len, raw + rawlen,
						     len - rawlen, &f);
			i = w.end;
			prev_word = true;
			continue;
		}
		if (u[i] == ' ') {
			pending_ws++;
			i++;
			continue;
		}
		if (run_cs) {
			if (flush_run(cs, a, run_cs, run_cslen, raw, rawlen, d, &o, cap, flags) < 0)
				goto out;
			rawlen = 0;
			run_cs = NULL;
		}
		if (pending_ws)
			o = put(d, o, u + i - pending_ws, pending_ws);
		pending_ws = 0;
		prev_word = false;
		/* plain text up to the next space or encoded word */
		size_t j = i + 1;
		while (j < len && u[j] != ' ' && !(u[j] == '=' && j + 1 < len && u[j + 1] == '?'))
			j++;
		{
			const char *c;
			size_t clen;
			if (mime_cs_to_utf8(cs, NULL, 0, u + i, j - i, a, &c, &clen, flags) < 0)
				goto out;
			if (clen > cap - o)
				clen = cap - o;
			o = put(d, o, c, clen);
		}
		i = j;
	}
	if (run_cs && flush_run(cs, a, run_cs, run_cslen, raw, rawlen, d, &o, cap, flags) < 0)
		goto out;
	if (pending_ws && !prev_word)
		o = put(d, o, u + len - pending_ws, pending_ws);
	d[o < cap ? o : cap - 1] = '\0';
	{
		const char *c;
		size_t clen;
		if (mime_cs_utf8_clean(d, o, a, &c, &clen, flags) < 0)
			goto out;
		out->ptr = c;
		out->len = clen;
	}
	rc = 0;
out:
	return rc;
}

/* Skips white space and (nested) comments. */
static size_t skip_cfws(const char *v, size_t n, size_t i)
{
	while (i < n) {
		if (is_ws(v[i])) {
			i++;
		} else if (v[i] == '(') {
			int depth = 0;
			while (i < n) {
				if (v[i] == '\\' && i + 1 < n) {
					i += 2;
					continue;
				}
				if (v[i] == '(' && depth < COMMENT_MAX_DEPTH)
					depth++;
				else if (v[i] == ')' && --depth == 0) {
					i++;
					break;
				}
				i++;
			}
		} else {
			break;
		}
	}
	return i;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* A raw parameter before RFC 2231 assembly. */
struct rawparam {
	const char *name;
	size_t namelen; /* base name, lower case in scratch */
	int section;	/* -1: none */
	bool extended;	/* value is charset'lang'%XX */
	const char *val;
	size_t vallen;
};

static int pct_decode(const char *v, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '%' && i + 2 < n) {
			int h = -1, l = -1;
			char a = v[i + 1], b = v[i + 2];
			h = (a >= '0' && a <= '9')		   ? a - '0'
			    : (lower(a) >= 'a' && lower(a) <= 'f') ? lower(a) - 'a' + 10
								   : -1;
			l = (b >= '0' && b <= '9')		   ? b - '0'
			    : (lower(b) >= 'a' && lower(b) <= 'f') ? lower(b) - 'a' + 10
								   : -1;
			if (h >= 0 && l >= 0) {
				out[o++] = (unsigned char)(h << 4 | l);
				i += 2;
				continue;
			}
		}
		out[o++] = (unsigned char)v[i];
	}
	return (int)o;
}

/* Joins the sections of the parameter named like rp[first] and decodes. */
static int assemble(struct mime_cs *cs, struct arena *a, struct rawparam *rp, size_t nrp,
		    size_t first, struct mime_param *out, unsigned *flags)
{
	const char *csname = NULL;
	size_t cslen = 0, total = 0, o = 0;
	unsigned char *buf;
	bool any_ext = false;
	const char *u;
	size_t ulen;

	for (size_t i = first; i < nrp; i++)
		if (rp[i].namelen == rp[first].namelen &&
		    !memcmp(rp[i].name, rp[first].name, rp[first].namelen))
			total += rp[i].vallen;
	if (!(buf = arena_alloc(a, total + 1)))
		return -ENOMEM;
	/* sections in numeric order; each appears once */
	for (int sec = 0; sec < RFC2231_MAX_SECTIONS; sec++) {
		bool found = false;
		for (size_t i = first; i < nrp; i++) {
			const char *val;
			size_t vl;
			if (rp[i].section != sec || rp[i].namelen != rp[first].namelen ||
			    memcmp(rp[i].name, rp[first].name, rp[first].namelen))
				continue;
			found = true;
			val = rp[i].val;
			vl = rp[i].vallen;
			if (rp[i].extended) {
				any_ext = true;
				if (sec == 0) {
					const char *q1 = memchr(val, '\'', vl), *q2;
					if (q1 && (q2 = memchr(q1 + 1, '\'',
							       vl - (size_t)(q1 + 1 - val)))) {
						csname = val;
						cslen = (size_t)(q1 - val);
						vl -= (size_t)(q2 + 1 - val);
						val = q2 + 1;
					}
				}
				o += (size_t)pct_decode(val, vl, buf + o);
			} else {
				memcpy(buf + o, val, vl);
				o += vl;
			}
			break;
		}
		if (!found)
			break;
	}
	(void)any_ext;
	if (mime_cs_to_utf8(cs, csname, cslen, (const char *)buf, o, a, &u, &ulen, flags) < 0)
		return -ENOMEM;
	out->value.ptr = u;
	out->value.len = ulen;
	return 0;
}

int mime_hdr_params(struct mime_cs *cs, struct arena *a, const char *v, size_t n,
		    struct mime_slice *token, struct mime_param *params, size_t max,
		    size_t *nparams, unsigned *flags)
{
	struct rawparam rp[MIME_HDR_MAX_PARAMS * 2];
	size_t nrp = 0, i = 0, np = 0;
	char *tok = arena_alloc(a, n + 1);
	size_t tl = 0;

	*nparams = 0;
	if (!tok)
		return -ENOMEM;
	/* the token: everything up to ';' minus white space and comments */
	while (i < n && v[i] != ';') {
		size_t j = skip_cfws(v, n, i);
		if (j != i) {
			i = j;
			if (tl && memchr(tok, '/', tl) && tok[tl - 1] != '/') {
				/* "type/subtype junk": the rest is not the type */
				while (i < n && v[i] != ';')
					i++;
				break;
			}
			continue;
		}
		if (v[i] == '"') { /* not valid here; keep the content */
			i++;
			continue;
		}
		tok[tl++] = lower(v[i++]);
	}
	tok[tl] = '\0';
	token->ptr = tok;
	token->len = tl;
	while (i < n && nrp < ARRAY_LEN(rp)) {
		size_t ns, ne, vs, ve;
		struct rawparam *p;
		char *nm;
		bool quoted = false;

		if (v[i] == ';') {
			i++;
			continue;
		}
		i = skip_cfws(v, n, i);
		ns = i;
		while (i < n && v[i] != '=' && v[i] != ';' && !is_ws(v[i]) && v[i] != '(')
			i++;
		ne = i;
		i = skip_cfws(v, n, i);
		if (i >= n || v[i] != '=' || ne == ns) {
			while (i < n && v[i] != ';')
				i++;
			continue;
		}
		i = skip_cfws(v, n, i + 1);
		if (i < n && v[i] == '"') {
			/* quoted string: unescape into the arena */
			char *q = arena_alloc(a, n - i + 1);
			size_t ql = 0;
			if (!q)
				return -ENOMEM;
			i++;
			while (i < n && v[i] != '"') {
				if (v[i] == '\\' && i + 1 < n)
					i++;
				if (v[i] == '\r' || v[i] == '\n') {
					/* a fold inside quotes reads as one space */
					while (ql && (q[ql - 1] == ' ' || q[ql - 1] == '\t'))
						ql--;
					while (i + 1 < n && is_ws(v[i + 1]))
						i++;
					q[ql++] = ' ';
				} else {
					q[ql++] = v[i];
				}
				i++;
			}
			if (i < n)
				i++;
			q[ql] = '\0';
			vs = 0;
			ve = ql;
			quoted = true;
			p = &rp[nrp];
			p->val = q;
			p->vallen = ql;
		} else {
			vs = i;
			while (i < n && v[i] != ';')
				i++;
			ve = i;
			while (ve > vs && (is_ws(v[ve - 1])))
				ve--;
			/* a trailing comment after a token value */
			const char *par = memchr(v + vs, '(', ve - vs);
			if (par)
				ve = (size_t)(par - v);
			while (ve > vs && (is_ws(v[ve - 1])))
				ve--;
			p = &rp[nrp];
			p->val = v + vs;
			p->vallen = ve - vs;
		}
		(void)quoted;
		if (!(nm = arena_alloc(a, ne - ns + 1)))
			return -ENOMEM;
		for (size_t k = 0; k < ne - ns; k++)
			nm[k] = lower(v[ns + k]);
		nm[ne - ns] = '\0';
		p->name = nm;
		p->namelen = ne - ns;
		p->section = -1;
		p->extended = false;
		/* RFC 2231: name*, name*N, name*N* */
		if (p->namelen && nm[p->namelen - 1] == '*') {
			p->extended = true;
			p->namelen--;
		}
		{
			char *star = memchr(nm, '*', p->namelen);
			if (star) {
				int sec = 0;
				bool ok = star + 1 < nm + p->namelen;
				for (char *c = star + 1; c < nm + p->namelen; c++) {
					if (*c < '0' || *c > '9' || sec > 1000) {
						ok = false;
						break;
					}
					sec = sec * 10 + (*c - '0');
				}
				if (ok) {
					p->section = sec;
					p->namelen = (size_t)(star - nm);
				}
			} else if (p->extended) {
				p->section = 0;
			}
		}
		nrp++;
	}
	for (size_t k = 0; k < nrp && np < max; k++) {
		struct rawparam *p = &rp[k];
		bool seen = false;
		for (size_t j = 0; j < np; j++)
			if (params[j].name.len == p->namelen &&
			    !memcmp(params[j].name.ptr, p->name, p->namelen))
				seen = true;
		if (seen)
			continue; /* first occurrence (or the assembled sections) wins */
		params[np].name.ptr = p->name;
		params[np].name.len = p->namelen;
		if (p->section >= 0) {
			if (assemble(cs, a, rp, nrp, k, &params[np], flags) < 0)
				return -ENOMEM;
		} else if (mime_hdr_decode(cs, a, p->val, p->vallen, &params[np].value, flags) <
			   0) {
			return -ENOMEM;
		}
		np++;
	}
	*nparams = np;
	return 0;
}

const struct mime_slice *mime_hdr_param(const struct mime_param *params, size_t n, const char *name)
{
	size_t l = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (params[i].name.len == l && !memcmp(params[i].name.ptr, name, l))
			return &params[i].value;
	return NULL;
}
