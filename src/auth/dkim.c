/* SPDX-License-Identifier: MIT */
/*
 * dkim: verification. Everything that depends on the message alone (the
 * tag list, the body hash, the digest of the signed header fields) is done
 * in dkim_verify(); what is left for the key's arrival is one public-key
 * operation on a 32-byte digest.
 */
#include "auth/dkim.h"
#include "auth/dkim_private.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#define DKIM_SIG_MAX 1024 /* bytes of a decoded b= (RSA 8192) */
#define DKIM_KEY_MAX 2048 /* bytes of a decoded p= */

struct dkim_one {
	struct dkim_req *q;
	struct resolver_req *rq;
	bool done; /* a result is final */
	bool bh_ok;
	bool ed25519;
	unsigned char digest[32]; /* of the signed header data */
	unsigned char sig[DKIM_SIG_MAX];
	size_t siglen;
	bool strict_i_ok; /* i= is exactly d= (for t=s keys) */
	struct dkim_sig out;
	char why[96];
	char domain[RESOLVER_NAME_LEN];
	char selector[64];
	char algorithm[32];
	char identity[RESOLVER_NAME_LEN + 64];
};

struct dkim_req {
	struct dkim_vreq v; /* the message, the look-ups out, the kick */
	dkim_cb cb;
	void *arg;
	struct dkim_opts o;
	struct dkim_one one[DKIM_MAX_SIGNATURES];
	struct dkim_sig sigs[DKIM_MAX_SIGNATURES];
	size_t n;
};

const char *dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = {"pass",   "fail",	   "neutral",
					    "policy", "temperror", "permerror"};

	return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}

/* ---- tag lists ------------------------------------------------------------ */

static bool is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* Skips FWS ([*WSP CRLF] 1*WSP, and lone WSP) from i. */
static size_t skip_fws(const char *s, size_t len, size_t i)
{
	for (;;) {
		if (i < len && is_wsp(s[i])) {
			i++;
			continue;
		}
		if (i + 2 < len && s[i] == '\r' && s[i + 1] == '\n' && is_wsp(s[i + 2])) {
			i += 3;
			continue;
		}
		return i;
	}
}

int dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out)
{
	size_t i = 0;

	out->n = 0;
	while (i < len) {
		struct dkim_tag t;
		size_t vend;

		i = skip_fws(s, len, i);
		if (i == len)
			break; /* a final ";" may be followed by FWS only */
		if (!isalpha((unsigned char)s[i]))
			return -EINVAL;
		t.name = s + i;
		while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
			i++;
		t.nlen = (size_t)(s + i - t.name);
		i = skip_fws(s, len, i);
		if (i == len || s[i] != '=')
			return -EINVAL;
		i = skip_fws(s, len, i + 1);
		t.val = s + i;
		vend = i;
		while (i < len && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];
			if (c >= 0x21 && c <= 0x7e) {
				i++;
				vend = i;
				continue;
			}
			size_t j = skip_fws(s, len, i);
			if (j == i)
				return -EINVAL; /* not VALCHAR, not FWS */
			i = j;
		}
		t.vlen = vend - (size_t)(t.val - s);
		for (size_t k = 0; k < out->n; k++)
			if (out->t[k].nlen == t.nlen && !memcmp(out->t[k].name, t.name, t.nlen))
				return -EEXIST;
		if (out->n == DKIM_MAX_TAGS)
			return -E2BIG;
		out->t[out->n++] = t;
		if (i < len)
			i++; /* ";" */
	}
	return 0;
}

const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < tags->n; i++)
		if (tags->t[i].nlen == nl && !memcmp(tags->t[i].name, name, nl))
			return &tags->t[i];
	return NULL;
}

static bool tag_is(const struct dkim_tag *t, const char *v)
{
	return t && t->vlen == strlen(v) && !strncasecmp(t->val, v, t->vlen);
}

/* Copies a tag value without its whitespace. */
static int tag_copy_nows(const struct dkim_tag *t, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < t->vlen; i++) {
		char c = t->val[i];
		if (is_wsp(c) || c == '\r' || c == '\n')
			continue;
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* base64 (whitespace ignored, padding checked) into out. */
int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t outlen, size_t *used)
{
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i], v;
		if (is_wsp(c) || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -EINVAL;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == outlen)
				return -E2BIG;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (pad > 2 || (bits == 6) || (pad && (bits / 2) != pad))
		return -EINVAL;
	*used = o;
	return 0;
}

void dkim_b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* ---- canonicalization ----------------------------------------------------- */

int dkim_canon_header(enum dkim_canon c, const char *f, size_t len, char *out, size_t outlen,
		      size_t *outused)
{
	size_t o = 0, i = 0, colon;

	while (len >= 2 && f[len - 2] == '\r' && f[len - 1] == '\n')
		len -= 2;
	if (c == DKIM_CANON_SIMPLE) {
		if (len + 3 > outlen)
			return -ENAMETOOLONG;
		memcpy(out, f, len);
		memcpy(out + len, "\r\n", 3);
		*outused = len + 2;
		return 0;
	}
	colon = 0;
	while (colon < len && f[colon] != ':')
		colon++;
	/* the name, lower-cased, without the WSP before the colon */
	size_t nend = colon;
	while (nend > 0 && is_wsp(f[nend - 1]))
		nend--;
	if (nend + 4 > outlen)
		return -ENAMETOOLONG;
	for (i = 0; i < nend; i++)
		out[o++] = (char)tolower((unsigned char)f[i]);
	out[o++] = ':';
	/* the value: unfolded, WSP runs as one SP, none at either end */
	bool sp = false, any = false;
	for (i = colon + 1; i < len; i++) {
		char ch = f[i];
		if (ch == '\r' || ch == '\n')
			continue;
		if (is_wsp(ch)) {
			sp = true;
			continue;
		}
		if (o + 4 > outlen)
			return -ENAMETOOLONG;
		if (sp && any)
			out[o++] = ' ';
		sp = false;
		any = true;
		out[o++] = ch;
	}
	out[o++] = '\r';
	out[o++] = '\n';
	out[o] = '\0';
	*outused = o;
	return 0;
}

/* Feeds the canonical body to md, limit bytes at most (< 0: all). */
static int64_t body_canon_feed(enum dkim_canon c, const char *b, size_t len, int64_t limit,
			       EVP_MD_CTX *md)
{
	int64_t total = 0, blanks = 0;
	size_t i = 0;
	char line[1024];

#define EMIT(p, n)                                                                                 \
	do {                                                                                       \
		size_t n_ = (n);                                                                   \
		if (limit >= 0 && total + (int64_t)n_ > limit)                                     \
			n_ = (size_t)(limit > total ? limit - total : 0);                          \
		if (n_)                                                                            \
			EVP_DigestUpdate(md, (p), n_);                                             \
		total += (int64_t)(n);                                                             \
	} while (0)

	while (i < len) {
		size_t s = i, e;
		while (i < len && b[i] != '\n')
			i++;
		e = i;
		if (e > s && b[e - 1] == '\r')
			e--;
		if (i < len)
			i++;
		if (c == DKIM_CANON_RELAXED) {
			/* WSP runs to one SP, trailing WSP removed; done in pieces */
			size_t k = s, o = 0;
			bool sp = false;
			size_t end = e;
			while (end > s && is_wsp(b[end - 1]))
				end--;
			if (end == s) {
				blanks++;
				continue;
			}
			for (; blanks > 0; blanks--)
				EMIT("\r\n", 2);
			for (k = s; k < end; k++) {
				if (is_wsp(b[k])) {
					sp = true;
					continue;
				}
				if (o + 2 >= sizeof(line)) {
					EMIT(line, o);
					o = 0;
				}
				if (sp)
					line[o++] = ' ';
				sp = false;
				line[o++] = b[k];
			}
			EMIT(line, o);
			EMIT("\r\n", 2);
			continue;
		}
		if (e == s) {
			blanks++;
			continue;
		}
		for (; blanks > 0; blanks--)
			EMIT("\r\n", 2);
		EMIT(b + s, e - s);
		EMIT("\r\n", 2);
	}
	if (total == 0 && c == DKIM_CANON_SIMPLE)
		EMIT("\r\n", 2);
#undef EMIT
	return total;
}

int dkim_body_hash(enum dkim_canon c, bool sha1, const char *body, size_t len, int64_t limit,
		   char *b64, size_t b64len, int64_t *avail)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hl = 0;
	int rc = -ENOMEM;

	if (!md)
		goto out;
	if (EVP_DigestInit_ex(md, sha1 ? EVP_sha1() : EVP_sha256(), NULL) != 1)
		goto out;
	*avail = body_canon_feed(c, body, len, limit, md);
	if (EVP_DigestFinal_ex(md, h, &hl) != 1)
		goto out;
	if (b64len < 4 * ((hl + 2) / 3) + 1) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	dkim_b64_encode(h, hl, b64, b64len);
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

/* ---- the message ---------------------------------------------------------- */

char *dkim_crlf_dup(const char *msg, size_t len, size_t *outlen)
{
	char *m;
	size_t o = 0;

	if (len > (SIZE_MAX - 1) / 2)
		return NULL;
	m = malloc(len * 2 + 1);
	if (!m)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			m[o++] = '\r';
		m[o++] = msg[i];
	}
	m[o] = '\0';
	*outlen = o;
	return m;
}

/* Splits the header into fields; returns the offset of the body. */
size_t dkim_split_header(const char *m, size_t len, struct dkim_hdr *h, size_t *nh)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t s = i;
		if (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n') {
			i += 2; /* the empty line */
			break;
		}
		/* a field and its continuation lines */
		for (;;) {
			while (i < len && m[i] != '\n')
				i++;
			if (i < len)
				i++;
			if (i >= len || !is_wsp(m[i]))
				break;
		}
		size_t e = i;
		if (e >= s + 2 && m[e - 1] == '\n' && m[e - 2] == '\r')
			e -= 2;
		const char *colon = memchr(m + s, ':', e - s);
		if (!colon || n == DKIM_MAX_HEADERS)
			continue; /* not a field; ignored */
		h[n].p = m + s;
		h[n].len = e - s;
		h[n].nlen = (size_t)(colon - (m + s));
		while (h[n].nlen && is_wsp(h[n].p[h[n].nlen - 1]))
			h[n].nlen--;
		n++;
	}
	*nh = n;
	return i;
}

bool dkim_hdr_is(const struct dkim_hdr *h, const char *name, size_t nl)
{
	return h->nlen == nl && !strncasecmp(h->p, name, nl);
}

static void sig_set(struct dkim_one *s, enum dkim_result r, const char *why)
{
	if (s->done)
		return;
	s->done = true;
	s->out.result = r;
	(void)str_copy(s->why, sizeof(s->why), why);
}

static int64_t tag_num(const struct dkim_tag *t, bool *ok)
{
	int64_t v = 0;

	*ok = t && t->vlen > 0 && t->vlen <= 18;
	for (size_t i = 0; *ok && i < t->vlen; i++) {
		if (!isdigit((unsigned char)t->val[i]))
			*ok = false;
		else
			v = v * 10 + (t->val[i] - '0');
	}
	return v;
}

int dkim_hlist_parse(const char *v, size_t vlen, char (*names)[DKIM_NAME_LEN], size_t max,
		     size_t *nn)
{
	size_t k = 0;

	*nn = 0;
	while (k < vlen) {
		size_t st;
		while (k < vlen && (is_wsp(v[k]) || v[k] == '\r' || v[k] == '\n'))
			k++;
		st = k;
		while (k < vlen && v[k] != ':' && !is_wsp(v[k]) && v[k] != '\r' && v[k] != '\n')
			k++;
		if (k > st) {
			if (*nn == max || k - st >= DKIM_NAME_LEN)
				return -E2BIG;
			memcpy(names[*nn], v + st, k - st);
			names[(*nn)++][k - st] = '\0';
		}
		while (k < vlen && v[k] != ':')
			k++;
		if (k < vlen)
			k++;
	}
	return 0;
}

int dkim_feed_fields(EVP_MD_CTX *md, enum dkim_canon c, const struct dkim_hdr *hs, size_t nh,
		     char (*names)[DKIM_NAME_LEN], size_t nn, char *buf, size_t bufcap)
{
	bool *used = calloc(nh ? nh : 1, sizeof(*used));
	size_t bl;

	if (!used)
		return -ENOMEM;
	for (size_t nk = 0; nk < nn; nk++) {
		size_t nl = strlen(names[nk]);
		for (size_t j = nh; j-- > 0;) {
			if (used[j] || !dkim_hdr_is(&hs[j], names[nk], nl))
				continue;
			used[j] = true;
			if (dkim_canon_header(c, hs[j].p, hs[j].len, buf, bufcap, &bl) == 0)
				EVP_DigestUpdate(md, buf, bl);
			break;
		}
	}
	free(used);
	return 0;
}

int dkim_feed_self(EVP_MD_CTX *md, enum dkim_canon c, const char *field, size_t flen,
		   const char *bval, size_t bvlen, char *buf, size_t bufcap)
{
	/* the value and the FWS between "=" and it go */
	size_t pre = (size_t)(bval - field), post = pre + bvlen, eq = pre, tl, bl;
	char *tmp = malloc(flen + 1);

	if (!tmp)
		return -ENOMEM;
	while (eq > 0 && field[eq - 1] != '=')
		eq--;
	tl = eq + (flen - post);
	memcpy(tmp, field, eq);
	memcpy(tmp + eq, field + post, flen - post);
	if (dkim_canon_header(c, tmp, tl, buf, bufcap, &bl) == 0)
		EVP_DigestUpdate(md, buf, bl - 2);
	free(tmp);
	return 0;
}

/* Everything about one signature that needs no key. */
static void sig_prepare(struct dkim_req *q, struct dkim_one *s, const struct dkim_hdr *hs,
			size_t nh, size_t self, const char *body, size_t blen)
{
	struct dkim_tags tags;
	const struct dkim_hdr *sh = &hs[self];
	const char *val = sh->p + sh->nlen + 1;
	size_t vlen = sh->len - sh->nlen - 1;
	const struct dkim_tag *v, *a, *b, *bh, *c, *d, *h, *i, *l, *sel, *t, *x, *qq;
	enum dkim_canon hc = DKIM_CANON_SIMPLE, bc = DKIM_CANON_SIMPLE;
	int64_t now = q->o.now ? q->o.now : time_now(), limit = -1, tv = 0, xv = 0;
	bool ok;
	int rc;

	val = (const char *)memchr(sh->p, ':', sh->len) + 1;
	vlen = sh->len - (size_t)(val - sh->p);
	rc = dkim_tags_parse(val, vlen, &tags);
	if (rc < 0) {
		sig_set(s, DKIM_PERMERROR, rc == -EEXIST ? "duplicate tag" : "bad tag list");
		return;
	}
	v = dkim_tags_get(&tags, "v");
	a = dkim_tags_get(&tags, "a");
	b = dkim_tags_get(&tags, "b");
	bh = dkim_tags_get(&tags, "bh");
	c = dkim_tags_get(&tags, "c");
	d = dkim_tags_get(&tags, "d");
	h = dkim_tags_get(&tags, "h");
	i = dkim_tags_get(&tags, "i");
	l = dkim_tags_get(&tags, "l");
	sel = dkim_tags_get(&tags, "s");
	t = dkim_tags_get(&tags, "t");
	x = dkim_tags_get(&tags, "x");
	qq = dkim_tags_get(&tags, "q");
	if (d)
		(void)str_copyn(s->domain, sizeof(s->domain), d->val, d->vlen);
	if (sel)
		(void)str_copyn(s->selector, sizeof(s->selector), sel->val, sel->vlen);
	if (a)
		(void)str_copyn(s->algorithm, sizeof(s->algorithm), a->val, a->vlen);
	if (!v || !a || !b || !bh || !d || !h || !sel) {
		sig_set(s, DKIM_PERMERROR, "missing required tag");
		return;
	}
	if (!tag_is(v, "1")) {
		sig_set(s, DKIM_PERMERROR, "unknown version");
		return;
	}
	if (tag_is(a, "ed25519-sha256")) {
		s->ed25519 = true;
	} else if (!tag_is(a, "rsa-sha256")) {
		sig_set(s, DKIM_PERMERROR,
			tag_is(a, "rsa-sha1") ? "rsa-sha1 not accepted (RFC 8301)"
					      : "unknown algorithm");
		return;
	}
	if (qq && !tag_is(qq, "dns/txt")) {
		sig_set(s, DKIM_PERMERROR, "unknown query method");
		return;
	}
	if (c) {
		char cv[32];
		if (tag_copy_nows(c, cv, sizeof(cv)) < 0)
			goto badc;
		char *slash = strchr(cv, '/');
		if (slash)
			*slash++ = '\0';
		if (!strcasecmp(cv, "relaxed"))
			hc = DKIM_CANON_RELAXED;
		else if (strcasecmp(cv, "simple"))
			goto badc;
		if (slash && !strcasecmp(slash, "relaxed"))
			bc = DKIM_CANON_RELAXED;
		else if (slash && strcasecmp(slash, "simple"))
			goto badc;
	}
	/* d= a domain name; s= selector labels */
	for (size_t k = 0; k < d->vlen; k++)
		if (!(isalnum((unsigned char)d->val[k]) || d->val[k] == '-' || d->val[k] == '.' ||
		      d->val[k] == '_')) {
			sig_set(s, DKIM_PERMERROR, "bad d=");
			return;
		}
	for (size_t k = 0; k < sel->vlen; k++)
		if (!(isalnum((unsigned char)sel->val[k]) || sel->val[k] == '-' ||
		      sel->val[k] == '.' || sel->val[k] == '_')) {
			sig_set(s, DKIM_PERMERROR, "bad s=");
			return;
		}
	if (d->vlen == 0 || sel->vlen == 0 || d->vlen >= sizeof(s->domain) ||
	    sel->vlen >= sizeof(s->selector)) {
		sig_set(s, DKIM_PERMERROR, "bad d= or s=");
		return;
	}
	/* i= must be d= or a subdomain of it (RFC 6376 3.5) */
	if (i) {
		const char *at = memchr(i->val, '@', i->vlen);
		(void)str_copyn(s->identity, sizeof(s->identity), i->val, i->vlen);
		if (!at) {
			sig_set(s, DKIM_PERMERROR, "bad i=");
			return;
		}
		size_t il = i->vlen - (size_t)(at + 1 - i->val);
		const char *id = at + 1;
		s->strict_i_ok = il == d->vlen && !strncasecmp(id, d->val, il);
		if (!(s->strict_i_ok || (il > d->vlen && id[il - d->vlen - 1] == '.' &&
					 !strncasecmp(id + il - d->vlen, d->val, d->vlen)))) {
			sig_set(s, DKIM_PERMERROR, "i= not within d=");
			return;
		}
	} else {
		(void)str_fmt(s->identity, sizeof(s->identity), "@%s", s->domain);
		s->strict_i_ok = true;
	}
	if (l) {
		limit = tag_num(l, &ok);
		if (!ok) {
			sig_set(s, DKIM_PERMERROR, "bad l=");
			return;
		}
	}
	if (t) {
		tv = tag_num(t, &ok);
		if (!ok) {
			sig_set(s, DKIM_PERMERROR, "bad t=");
			return;
		}
	}
	if (x) {
		xv = tag_num(x, &ok);
		if (!ok || (t && xv < tv)) {
			sig_set(s, DKIM_PERMERROR, "bad x=");
			return;
		}
	}
	if (dkim_b64_decode(b->val, b->vlen, s->sig, sizeof(s->sig), &s->siglen) < 0 ||
	    s->siglen == 0) {
		sig_set(s, DKIM_PERMERROR, "bad b=");
		return;
	}
	/* h= must name From (RFC 6376 5.4) */
	{
		char names[DKIM_MAX_H][DKIM_NAME_LEN];
		size_t nn = 0;
		bool from = false;
		EVP_MD_CTX *md = NULL;
		char *buf = NULL;
		size_t bufcap = 65536;
		unsigned dl = 0;

		if (dkim_hlist_parse(h->val, h->vlen, names, DKIM_MAX_H, &nn) < 0) {
			sig_set(s, DKIM_PERMERROR, "h= too long");
			return;
		}
		for (size_t k = 0; k < nn; k++)
			if (!strcasecmp(names[k], "from"))
				from = true;
		if (!from) {
			sig_set(s, DKIM_PERMERROR, "h= does not sign From");
			return;
		}
		md = EVP_MD_CTX_new();
		buf = malloc(bufcap);
		if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
		    dkim_feed_fields(md, hc, hs, nh, names, nn, buf, bufcap) < 0 ||
		    dkim_feed_self(md, hc, sh->p, sh->len, b->val, b->vlen, buf, bufcap) < 0 ||
		    EVP_DigestFinal_ex(md, s->digest, &dl) != 1) {
			free(buf);
			EVP_MD_CTX_free(md);
			sig_set(s, DKIM_TEMPERROR, "out of memory");
			return;
		}
		free(buf);
		EVP_MD_CTX_free(md);
	}
	/* the body hash */
	{
		char want[128], got[128];
		int64_t avail = 0;
		if (tag_copy_nows(bh, want, sizeof(want)) < 0 ||
		    dkim_body_hash(bc, false, body, blen, limit, got, sizeof(got), &avail) < 0) {
			sig_set(s, DKIM_PERMERROR, "bad bh=");
			return;
		}
		s->bh_ok = !strcmp(want, got) && (limit < 0 || avail >= limit);
	}
	if (x && xv < now) {
		sig_set(s, DKIM_NEUTRAL, "signature expired");
		return;
	}
	if (t && tv > now + (q->o.clock_skew ? q->o.clock_skew : 300)) {
		sig_set(s, DKIM_NEUTRAL, "signature in the future");
		return;
	}
	return;
badc:
	sig_set(s, DKIM_PERMERROR, "bad c=");
}

/* ---- keys ------------------------------------------------------------------ */

enum dkim_result dkim_key_load(const char *rec, size_t len, bool ed25519, bool strict_i,
			       int min_bits, EVP_PKEY **keyp, int *bits, bool *testing,
			       const char **why)
{
	struct dkim_tags tags;
	const struct dkim_tag *v, *h, *k, *p, *st, *t;
	unsigned char der[DKIM_KEY_MAX];
	size_t derlen = 0;
	EVP_PKEY *key = NULL;
	int min = min_bits > 0 ? min_bits : DKIM_DEFAULT_MIN_RSA_BITS;

	*keyp = NULL;
	*bits = 0;
	*testing = false;
	if (dkim_tags_parse(rec, len, &tags) < 0) {
		*why = "bad key record";
		return DKIM_PERMERROR;
	}
	v = dkim_tags_get(&tags, "v");
	h = dkim_tags_get(&tags, "h");
	k = dkim_tags_get(&tags, "k");
	p = dkim_tags_get(&tags, "p");
	st = dkim_tags_get(&tags, "s");
	t = dkim_tags_get(&tags, "t");
	if (v && (v != &tags.t[0] || !(v->vlen == 5 && !memcmp(v->val, "DKIM1", 5)))) {
		*why = "key record version is not DKIM1";
		return DKIM_PERMERROR;
	}
	if (!p) {
		*why = "key record without p=";
		return DKIM_PERMERROR;
	}
	if (p->vlen == 0) {
		*why = "key revoked";
		return DKIM_PERMERROR;
	}
	if ((k && !tag_is(k, ed25519 ? "ed25519" : "rsa")) || (!k && ed25519)) {
		*why = "key type does not match a=";
		return DKIM_PERMERROR;
	}
	if (h) {
		bool sha256 = false;
		for (size_t i = 0; i < h->vlen;) {
			size_t j = i;
			while (j < h->vlen && h->val[j] != ':')
				j++;
			size_t a = i, b = j;
			while (a < b &&
			       (is_wsp(h->val[a]) || h->val[a] == '\r' || h->val[a] == '\n'))
				a++;
			while (b > a && (is_wsp(h->val[b - 1]) || h->val[b - 1] == '\r' ||
					 h->val[b - 1] == '\n'))
				b--;
			if (b - a == 6 && !strncasecmp(h->val + a, "sha256", 6))
				sha256 = true;
			i = j + 1;
		}
		if (!sha256) {
			*why = "key h= excludes sha256";
			return DKIM_PERMERROR;
		}
	}
	if (st) {
		bool email = false;
		for (size_t i = 0; i < st->vlen;) {
			size_t j = i;
			while (j < st->vlen && st->val[j] != ':')
				j++;
			if ((j - i == 1 && st->val[i] == '*') ||
			    (j - i == 5 && !strncasecmp(st->val + i, "email", 5)))
				email = true;
			i = j + 1;
		}
		if (!email) {
			*why = "key not for email (s=)";
			return DKIM_PERMERROR;
		}
	}
	if (t) {
		for (size_t i = 0; i < t->vlen; i++) {
			if (t->val[i] == 'y')
				*testing = true;
			if (t->val[i] == 's' &&
			    (i + 1 == t->vlen || t->val[i + 1] == ':' || is_wsp(t->val[i + 1])) &&
			    (i == 0 || t->val[i - 1] == ':' || is_wsp(t->val[i - 1])) &&
			    !strict_i) {
				*why = "key t=s and i= is a subdomain of d=";
				return DKIM_PERMERROR;
			}
		}
	}
	if (dkim_b64_decode(p->val, p->vlen, der, sizeof(der), &derlen) < 0 || derlen == 0) {
		*why = "bad p=";
		return DKIM_PERMERROR;
	}
	if (ed25519) {
		key = derlen == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32)
				   : NULL;
	} else {
		const unsigned char *pp = der;
		key = d2i_PUBKEY(NULL, &pp, (long)derlen);
		if (!key) {
			pp = der;
			key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &pp, (long)derlen);
		}
		if (key && EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
			EVP_PKEY_free(key);
			key = NULL;
		}
	}
	if (!key) {
		*why = "bad p=";
		return DKIM_PERMERROR;
	}
	*bits = EVP_PKEY_get_bits(key);
	if (!ed25519 && *bits < min) {
		EVP_PKEY_free(key);
		*why = "RSA key too small";
		return DKIM_POLICY;
	}
	*keyp = key;
	*why = "";
	return DKIM_PASS;
}

bool dkim_digest_verify(EVP_PKEY *key, bool ed25519, const unsigned char *digest,
			const unsigned char *sig, size_t siglen)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = NULL;
	bool ok;

	if (ed25519) {
		mc = EVP_MD_CTX_new();
		ok = mc && EVP_DigestVerifyInit(mc, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(mc, sig, siglen, digest, 32) == 1;
	} else {
		pc = EVP_PKEY_CTX_new(key, NULL);
		ok = pc && EVP_PKEY_verify_init(pc) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(pc, sig, siglen, digest, 32) == 1;
	}
	EVP_MD_CTX_free(mc);
	EVP_PKEY_CTX_free(pc);
	return ok;
}

static void key_check(struct dkim_req *q, struct dkim_one *s, const char *rec, size_t len)
{
	EVP_PKEY *key = NULL;
	const char *why = "";
	enum dkim_result r;

	r = dkim_key_load(rec, len, s->ed25519, s->strict_i_ok, q->o.min_rsa_bits, &key,
			  &s->out.key_bits, &s->out.testing, &why);
	if (r != DKIM_PASS) {
		sig_set(s, r, why);
		goto out;
	}
	if (s->done)
		goto out; /* expired or future: known without the key */
	if (!s->bh_ok) {
		sig_set(s, DKIM_FAIL, "body hash mismatch");
		goto out;
	}
	if (dkim_digest_verify(key, s->ed25519, s->digest, s->sig, s->siglen))
		sig_set(s, DKIM_PASS, "");
	else
		sig_set(s, DKIM_FAIL, "signature mismatch");
out:
	EVP_PKEY_free(key);
}

/* ---- the request ------------------------------------------------------------ */

static void deliver(void *req)
{
	struct dkim_req *q = req;
	struct dkim_outcome o = {q->n, q->sigs};

	for (size_t i = 0; i < q->n; i++) {
		struct dkim_one *s = &q->one[i];
		if (!s->done)
			sig_set(s, DKIM_TEMPERROR, "no answer");
		s->out.why = s->why;
		s->out.domain = s->domain;
		s->out.selector = s->selector;
		s->out.algorithm = s->algorithm;
		s->out.identity = s->identity;
		q->sigs[i] = s->out;
	}
	q->cb(&o, q->arg);
	dkim_cancel(q);
}

static void on_key(const struct resolver_result *res, void *arg)
{
	struct dkim_one *s = arg;
	struct dkim_req *q = s->q;

	s->rq = NULL;
	if (res->status == RESOLVER_TEMPFAIL) {
		sig_set(s, DKIM_TEMPERROR, "key lookup failed");
	} else if (res->status == RESOLVER_PERMFAIL || res->n == 0) {
		sig_set(s, DKIM_PERMERROR, "no key");
	} else if (res->n > 1) {
		sig_set(s, DKIM_PERMERROR, "more than one key record");
	} else {
		key_check(q, s, res->rr[0].text, res->rr[0].len);
	}
	dkim_vreq_answered(&q->v);
}

void dkim_cancel(struct dkim_req *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n; i++)
		resolver_cancel(q->one[i].rq);
	dkim_vreq_close(&q->v);
	free(q);
}

/* ---- the request shell, shared with arc.c ------------------------------------ */

static void vreq_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct dkim_vreq *v = arg;

	(void)fd;
	(void)what;
	if (v->pending == 0)
		v->deliver(v->req);
}

int dkim_vreq_open(struct dkim_vreq *v, struct resolver *r, const char *msg, size_t len,
		   void (*done)(void *req), void *req)
{
	v->deliver = done;
	v->req = req;
	v->hs = calloc(DKIM_MAX_HEADERS, sizeof(*v->hs));
	if (!v->hs)
		return -ENOMEM;
	v->msg = dkim_crlf_dup(msg ? msg : "", len, &v->len); /* bare LF becomes CRLF */
	if (!v->msg)
		return -ENOMEM;
	v->body = dkim_split_header(v->msg, v->len, v->hs, &v->nh);
	v->kick = evtimer_new(resolver_event_base(r), vreq_on_kick, v);
	return v->kick ? 0 : -ENOMEM;
}

int dkim_vreq_go(struct dkim_vreq *v)
{
	struct timeval zero = {0, 0};

	free(v->hs);
	v->hs = NULL;
	if (v->pending == 0 && evtimer_add(v->kick, &zero) < 0)
		return -ENOMEM;
	return 0;
}

void dkim_vreq_answered(struct dkim_vreq *v)
{
	if (--v->pending == 0)
		v->deliver(v->req);
}

void dkim_vreq_close(struct dkim_vreq *v)
{
	free(v->hs);
	if (v->kick)
		event_free(v->kick);
	free(v->msg);
}

int dkim_verify(struct resolver *r, const struct dkim_opts *opts, const char *msg, size_t len,
		dkim_cb cb, void *arg, struct dkim_req **out)
{
	struct dkim_req *q = NULL;
	const struct dkim_hdr *hs;
	int rc = -EINVAL;

	if (out)
		*out = NULL;
	if (!r || !cb || (!msg && len))
		goto out;
	rc = -ENOMEM;
	q = calloc(1, sizeof(*q));
	if (!q)
		goto out;
	q->cb = cb;
	q->arg = arg;
	if (opts)
		q->o = *opts;
	if ((rc = dkim_vreq_open(&q->v, r, msg, len, deliver, q)) < 0)
		goto out;
	hs = q->v.hs;
	for (size_t i = 0; i < q->v.nh && q->n < DKIM_MAX_SIGNATURES; i++) {
		if (!dkim_hdr_is(&hs[i], "DKIM-Signature", 14))
			continue;
		struct dkim_one *s = &q->one[q->n++];
		s->q = q;
		sig_prepare(q, s, hs, q->v.nh, i, q->v.msg + q->v.body, q->v.len - q->v.body);
	}
	for (size_t i = 0; i < q->n; i++) {
		struct dkim_one *s = &q->one[i];
		char name[RESOLVER_NAME_LEN];
		if (s->done)
			continue;
		if (str_fmt(name, sizeof(name), "%s._domainkey.%s", s->selector, s->domain) < 0) {
			sig_set(s, DKIM_PERMERROR, "key name too long");
			continue;
		}
		if (resolver_query(r, name, RESOLVER_TXT, on_key, s, &s->rq) < 0) {
			sig_set(s, DKIM_TEMPERROR, "cannot query");
			continue;
		}
		q->v.pending++;
	}
	if ((rc = dkim_vreq_go(&q->v)) < 0)
		goto out;
	if (out)
		*out = q;
	return 0;
out:
	dkim_cancel(q);
	return rc;
}
