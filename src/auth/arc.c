/* SPDX-License-Identifier: MIT */
/*
 * arc: chain parsing, validation and sealing. The digests of every AMS and
 * AS are computed in arc_verify() from the message alone; what waits for
 * the DNS is one public-key operation per signature. Keys are looked up
 * once per selector and domain, whatever the number of sets using them.
 */
#include "auth/arc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "auth/dkim_private.h"

#define ARC_SIG_MAX 1024 /* bytes of a decoded b= */
#define ARC_MAX_KEYS (2 * ARC_MAX_INSTANCES)
#define ARC_BUF 65536 /* one canonicalized field */

enum { K_AAR = 0, K_AMS = 1, K_AS = 2 };
static const char *const kind_name[] = {"ARC-Authentication-Results", "ARC-Message-Signature",
					"ARC-Seal"};

/* The fields of a chain: per instance (1-based), per kind, the index in
 * the header list, or -1. */
struct arc_chain {
	int idx[ARC_MAX_INSTANCES + 1][3];
	int n;
	bool latest_cv_fail;
};

struct arc_sig {
	bool ready; /* tags fine and digest computed: waits for its key */
	bool ed25519;
	bool bh_ok;
	int key;    /* in keys[], -1 none */
	int result; /* 0 not known, 1 pass, 2 fail */
	bool temp;
	const char *why;
	unsigned char digest[32];
	unsigned char sig[ARC_SIG_MAX];
	size_t siglen;
};

struct arc_key {
	struct arc_req *q;
	struct resolver_req *rq;
	char name[RESOLVER_NAME_LEN];
	enum resolver_status status;
	bool done;
	char *rec;
	size_t reclen;
};

struct arc_req {
	struct dkim_vreq v; /* the message, the look-ups out, the kick */
	arc_cb cb;
	void *arg;
	struct arc_opts o;
	struct arc_chain ch;
	struct arc_sig ams[ARC_MAX_INSTANCES + 1], as[ARC_MAX_INSTANCES + 1];
	struct arc_key keys[ARC_MAX_KEYS];
	size_t nkeys;
	enum arc_result early; /* decided without keys (ARC_PASS: not decided) */
	char why[128];
	char domain[RESOLVER_NAME_LEN];
};

const char *arc_result_name(enum arc_result r)
{
	static const char *const names[] = {"none", "pass", "fail"};

	return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}

/* ---- structure -------------------------------------------------------------- */

static bool wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A decimal instance 1..ARC_MAX_INSTANCES, nothing else. */
static int instance_num(const char *s, size_t n)
{
	int v = 0;

	if (n == 0 || n > 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= ARC_MAX_INSTANCES ? v : -EINVAL;
}

int arc_aar_instance(const char *val, size_t len)
{
	size_t i = 0, st;

	while (i < len && wsp(val[i]))
		i++;
	if (i == len || val[i] != 'i')
		return -EINVAL;
	i++;
	while (i < len && wsp(val[i]))
		i++;
	if (i == len || val[i] != '=')
		return -EINVAL;
	i++;
	while (i < len && wsp(val[i]))
		i++;
	st = i;
	while (i < len && isdigit((unsigned char)val[i]))
		i++;
	int v = instance_num(val + st, i - st);
	while (i < len && wsp(val[i]))
		i++;
	if (v < 0 || i == len || val[i] != ';')
		return -EINVAL;
	return v;
}

static const char *field_value(const struct dkim_hdr *h, size_t *vlen)
{
	const char *v = h->p + h->nlen;

	while (*v != ':')
		v++;
	v++;
	*vlen = h->len - (size_t)(v - h->p);
	return v;
}

static const struct dkim_tag *tag_get(const struct dkim_tags *t, const char *name)
{
	return dkim_tags_get(t, name);
}

static bool tag_eq(const struct dkim_tag *t, const char *v)
{
	return t && t->vlen == strlen(v) && !strncasecmp(t->val, v, t->vlen);
}

/* Finds the ARC fields of hs and checks the structure of the chain. */
static int chain_parse(const struct dkim_hdr *hs, size_t nh, struct arc_chain *ch, char *why,
		       size_t whylen)
{
	bool any = false;

	memset(ch->idx, 0xff, sizeof(ch->idx));
	ch->n = 0;
	ch->latest_cv_fail = false;
	for (size_t j = 0; j < nh; j++) {
		int kind = -1, inst;
		for (int k = 0; k < 3; k++)
			if (dkim_hdr_is(&hs[j], kind_name[k], strlen(kind_name[k])))
				kind = k;
		if (kind < 0)
			continue;
		any = true;
		size_t vl;
		const char *v = field_value(&hs[j], &vl);
		if (kind == K_AAR) {
			inst = arc_aar_instance(v, vl);
		} else {
			struct dkim_tags tags;
			const struct dkim_tag *it;
			if (dkim_tags_parse(v, vl, &tags) < 0) {
				(void)str_fmt(why, whylen, "%s: bad tag list", kind_name[kind]);
				return -EBADMSG;
			}
			it = tag_get(&tags, "i");
			inst = it ? instance_num(it->val, it->vlen) : -EINVAL;
		}
		if (inst < 0) {
			(void)str_fmt(why, whylen, "%s: bad or missing i=", kind_name[kind]);
			return -EBADMSG;
		}
		if (ch->idx[inst][kind] >= 0) {
			(void)str_fmt(why, whylen, "%s: two for i=%d", kind_name[kind], inst);
			return -EBADMSG;
		}
		ch->idx[inst][kind] = (int)j;
		if (inst > ch->n)
			ch->n = inst;
	}
	if (!any)
		return 0;
	/* RFC 8617 5.2 step 2: the newest seal says the chain already failed */
	if (ch->n > 0 && ch->idx[ch->n][K_AS] >= 0) {
		struct dkim_tags tags;
		size_t vl;
		const char *v = field_value(&hs[ch->idx[ch->n][K_AS]], &vl);
		if (dkim_tags_parse(v, vl, &tags) == 0 && tag_eq(tag_get(&tags, "cv"), "fail")) {
			ch->latest_cv_fail = true;
			(void)str_copy(why, whylen, "the newest ARC-Seal says cv=fail");
			return -EBADMSG;
		}
	}
	for (int i = 1; i <= ch->n; i++) {
		for (int k = 0; k < 3; k++)
			if (ch->idx[i][k] < 0) {
				(void)str_fmt(why, whylen, "no %s for i=%d", kind_name[k], i);
				return -EBADMSG;
			}
		struct dkim_tags tags;
		size_t vl;
		const char *v = field_value(&hs[ch->idx[i][K_AS]], &vl);
		if (dkim_tags_parse(v, vl, &tags) < 0 ||
		    !tag_eq(tag_get(&tags, "cv"), i == 1 ? "none" : "pass")) {
			(void)str_fmt(why, whylen, "ARC-Seal i=%d: cv= is not %s", i,
				      i == 1 ? "none" : "pass");
			return -EBADMSG;
		}
	}
	return 0;
}

int arc_chain_check(const char *msg, size_t len, int *n, char *why, size_t whylen)
{
	struct dkim_hdr *hs = calloc(DKIM_MAX_HEADERS, sizeof(*hs));
	struct arc_chain *ch = calloc(1, sizeof(*ch));
	size_t ml = 0, nh = 0;
	char *m = dkim_crlf_dup(msg ? msg : "", msg ? len : 0, &ml);
	int rc = -ENOMEM;

	*n = 0;
	if (why && whylen)
		why[0] = '\0';
	if (!hs || !ch || !m)
		goto out;
	(void)dkim_split_header(m, ml, hs, &nh);
	rc = chain_parse(hs, nh, ch, why, whylen);
	*n = ch->n;
out:
	free(hs);
	free(ch);
	free(m);
	return rc;
}

/* ---- digests ------------------------------------------------------------------ */

static bool dns_value(const struct dkim_tag *t)
{
	if (!t || t->vlen == 0 || t->vlen >= RESOLVER_NAME_LEN - 80)
		return false;
	for (size_t k = 0; k < t->vlen; k++)
		if (!(isalnum((unsigned char)t->val[k]) || t->val[k] == '-' || t->val[k] == '.' ||
		      t->val[k] == '_'))
			return false;
	return true;
}

static bool num_value(const struct dkim_tag *t)
{
	if (!t || t->vlen == 0 || t->vlen > 18)
		return false;
	for (size_t k = 0; k < t->vlen; k++)
		if (!isdigit((unsigned char)t->val[k]))
			return false;
	return true;
}

/* The key of a signature: its index in q->keys, added if new. */
static int key_slot(struct arc_req *q, const struct dkim_tag *s, const struct dkim_tag *d)
{
	char name[RESOLVER_NAME_LEN];

	if (str_fmt(name, sizeof(name), "%.*s._domainkey.%.*s", (int)s->vlen, s->val, (int)d->vlen,
		    d->val) < 0)
		return -1;
	for (size_t i = 0; i < q->nkeys; i++)
		if (!strcasecmp(q->keys[i].name, name))
			return (int)i;
	if (q->nkeys == ARC_MAX_KEYS)
		return -1;
	(void)str_copy(q->keys[q->nkeys].name, sizeof(q->keys[0].name), name);
	q->keys[q->nkeys].q = q;
	return (int)q->nkeys++;
}

static void sig_fail(struct arc_sig *s, const char *why)
{
	s->result = 2;
	s->why = why;
}

/* The tag list of the field self; false (s failed) when it is bad. */
static bool sig_tags(struct arc_sig *s, const struct dkim_hdr *self, struct dkim_tags *tags)
{
	size_t vl;
	const char *v = field_value(self, &vl);

	if (dkim_tags_parse(v, vl, tags) < 0) {
		sig_fail(s, "bad tag list");
		return false;
	}
	return true;
}

/* A SHA-256 context for s's digest; NULL (s failed, temporarily) when
 * there is none. */
static EVP_MD_CTX *digest_begin(struct arc_sig *s)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		sig_fail(s, "out of memory");
		s->temp = true;
		return NULL;
	}
	return md;
}

/* Ends the digest into s->digest and frees md; fed is what feeding md
 * returned. false: s failed, temporarily. */
static bool digest_end(struct arc_sig *s, EVP_MD_CTX *md, int fed)
{
	unsigned dl = 0;
	bool ok = fed >= 0 && EVP_DigestFinal_ex(md, s->digest, &dl) == 1;

	EVP_MD_CTX_free(md);
	if (!ok) {
		sig_fail(s, "out of memory");
		s->temp = true;
	}
	return ok;
}

/* The tags common to AMS and AS: a=, b=, d=, s=, t=. */
static bool sig_common(struct arc_req *q, struct arc_sig *s, const struct dkim_tags *tags,
		       const struct dkim_tag **b)
{
	const struct dkim_tag *a = tag_get(tags, "a"), *d = tag_get(tags, "d"),
			      *sel = tag_get(tags, "s"), *t = tag_get(tags, "t");

	*b = tag_get(tags, "b");
	if (!a || !*b || !d || !sel) {
		sig_fail(s, "missing required tag");
		return false;
	}
	/* RFC 8617 4.1.3 and 4.1.2: rsa-sha256 is the one algorithm ARC has
	 * (no ed25519-sha256 yet: a receiver such as mailauth would not check
	 * it the way RFC 8463 does for DKIM) */
	if (!tag_eq(a, "rsa-sha256")) {
		sig_fail(s, "unknown algorithm");
		return false;
	}
	if (!dns_value(d) || !dns_value(sel)) {
		sig_fail(s, "bad d= or s=");
		return false;
	}
	if (t && !num_value(t)) {
		sig_fail(s, "bad t=");
		return false;
	}
	if (dkim_b64_decode((*b)->val, (*b)->vlen, s->sig, sizeof(s->sig), &s->siglen) < 0 ||
	    s->siglen == 0) {
		sig_fail(s, "bad b=");
		return false;
	}
	s->key = key_slot(q, sel, d);
	if (s->key < 0) {
		sig_fail(s, "key name too long");
		return false;
	}
	return true;
}

static void ams_prepare(struct arc_req *q, struct arc_sig *s, const struct dkim_hdr *hs, size_t nh,
			const struct dkim_hdr *self, const char *body, size_t blen, char *buf)
{
	struct dkim_tags tags;
	const struct dkim_tag *b, *bh, *c, *h, *l;
	char names[DKIM_MAX_H][DKIM_NAME_LEN], want[128], got[128];
	enum dkim_canon hc = DKIM_CANON_SIMPLE, bc = DKIM_CANON_SIMPLE;
	size_t nn = 0;
	int64_t limit = -1, avail = 0;
	EVP_MD_CTX *md;
	int fed;

	if (!sig_tags(s, self, &tags) || !sig_common(q, s, &tags, &b))
		return;
	bh = tag_get(&tags, "bh");
	c = tag_get(&tags, "c");
	h = tag_get(&tags, "h");
	l = tag_get(&tags, "l");
	if (!bh || !h) {
		sig_fail(s, "missing required tag");
		return;
	}
	if (c) {
		char cv[32];
		size_t o = 0;
		for (size_t k = 0; k < c->vlen && o + 1 < sizeof(cv); k++)
			if (!wsp(c->val[k]))
				cv[o++] = c->val[k];
		cv[o] = '\0';
		char *slash = strchr(cv, '/');
		if (slash)
			*slash++ = '\0';
		if (!strcasecmp(cv, "relaxed"))
			hc = DKIM_CANON_RELAXED;
		else if (strcasecmp(cv, "simple")) {
			sig_fail(s, "bad c=");
			return;
		}
		if (slash && !strcasecmp(slash, "relaxed"))
			bc = DKIM_CANON_RELAXED;
		else if (slash && strcasecmp(slash, "simple")) {
			sig_fail(s, "bad c=");
			return;
		}
	}
	if (l) {
		if (!num_value(l)) {
			sig_fail(s, "bad l=");
			return;
		}
		limit = strtoll(l->val, NULL, 10);
	}
	if (dkim_hlist_parse(h->val, h->vlen, names, DKIM_MAX_H, &nn) < 0 || nn == 0) {
		sig_fail(s, "bad h=");
		return;
	}
	for (size_t k = 0; k < nn; k++)
		if (!strcasecmp(names[k], "arc-seal")) {
			sig_fail(s, "h= names ARC-Seal");
			return;
		}
	if (!(md = digest_begin(s)))
		return;
	fed = dkim_feed_fields(md, hc, hs, nh, names, nn, buf, ARC_BUF);
	if (fed >= 0)
		fed = dkim_feed_self(md, hc, self->p, self->len, b->val, b->vlen, buf, ARC_BUF);
	if (!digest_end(s, md, fed))
		return;
	{
		size_t o = 0;
		for (size_t k = 0; k < bh->vlen && o + 1 < sizeof(want); k++)
			if (!wsp(bh->val[k]))
				want[o++] = bh->val[k];
		want[o] = '\0';
	}
	if (dkim_body_hash(bc, false, body, blen, limit, got, sizeof(got), &avail) < 0) {
		sig_fail(s, "bad bh=");
		return;
	}
	s->bh_ok = !strcmp(want, got) && (limit < 0 || avail >= limit);
	s->ready = true;
}

/* Feeds md the sets 1..upto (AAR, AMS, AS each), relaxed; the AS of upto
 * last, with its b= emptied and without its CRLF. */
static int seal_feed(EVP_MD_CTX *md, const struct dkim_hdr *hs, const struct arc_chain *ch,
		     int upto, const char *bval, size_t bvlen, char *buf)
{
	size_t bl;

	for (int i = 1; i <= upto; i++)
		for (int k = 0; k < 3; k++) {
			const struct dkim_hdr *f = &hs[ch->idx[i][k]];
			if (i == upto && k == K_AS)
				return dkim_feed_self(md, DKIM_CANON_RELAXED, f->p, f->len, bval,
						      bvlen, buf, ARC_BUF);
			if (dkim_canon_header(DKIM_CANON_RELAXED, f->p, f->len, buf, ARC_BUF, &bl) <
			    0)
				return -ENAMETOOLONG;
			EVP_DigestUpdate(md, buf, bl);
		}
	return 0;
}

static void as_prepare(struct arc_req *q, struct arc_sig *s, const struct dkim_hdr *hs, int inst,
		       char *buf)
{
	struct dkim_tags tags;
	const struct dkim_tag *b;
	EVP_MD_CTX *md;

	if (!sig_tags(s, &hs[q->ch.idx[inst][K_AS]], &tags))
		return;
	if (inst == q->ch.n) {
		const struct dkim_tag *d = tag_get(&tags, "d");
		if (d)
			(void)str_copyn(q->domain, sizeof(q->domain), d->val, d->vlen);
	}
	if (!sig_common(q, s, &tags, &b))
		return;
	if (tag_get(&tags, "h")) {
		sig_fail(s, "h= in an ARC-Seal");
		return;
	}
	if (!(md = digest_begin(s)) ||
	    !digest_end(s, md, seal_feed(md, hs, &q->ch, inst, b->val, b->vlen, buf)))
		return;
	s->bh_ok = true;
	s->ready = true;
}

/* ---- keys and the result ----------------------------------------------------- */

static void sig_check(struct arc_req *q, struct arc_sig *s)
{
	struct arc_key *k;
	EVP_PKEY *key = NULL;
	int bits = 0;
	bool testing = false;
	const char *why = "";

	if (s->result || !s->ready)
		return;
	k = &q->keys[s->key];
	if (!k->done || k->status == RESOLVER_TEMPFAIL) {
		s->temp = true;
		sig_fail(s, "key lookup failed");
		return;
	}
	if (k->status != RESOLVER_OK || !k->rec) {
		sig_fail(s, k->status == RESOLVER_OK ? "more than one key record" : "no key");
		return;
	}
	if (dkim_key_load(k->rec, k->reclen, s->ed25519, true, q->o.min_rsa_bits, &key, &bits,
			  &testing, &why) != DKIM_PASS) {
		sig_fail(s, why);
		return;
	}
	if (!s->bh_ok)
		sig_fail(s, "body hash mismatch");
	else if (!dkim_digest_verify(key, s->ed25519, s->digest, s->sig, s->siglen))
		sig_fail(s, "signature mismatch");
	else
		s->result = 1;
	EVP_PKEY_free(key);
}

static void deliver(void *req)
{
	struct arc_req *q = req;
	struct arc_outcome o = {
	    .result = q->early, .n = q->ch.n, .why = q->why, .domain = q->domain};
	int n = q->ch.n;

	if (q->early == ARC_PASS) {
		o.result = ARC_PASS;
		for (int i = 1; i <= n; i++) {
			sig_check(q, &q->ams[i]);
			sig_check(q, &q->as[i]);
		}
		if (q->ams[n].result != 1) {
			o.result = ARC_FAIL;
			o.tempfail = q->ams[n].temp;
			(void)str_fmt(q->why, sizeof(q->why), "ARC-Message-Signature i=%d: %s", n,
				      q->ams[n].why);
		}
		for (int i = n; o.result == ARC_PASS && i >= 1; i--)
			if (q->as[i].result != 1) {
				o.result = ARC_FAIL;
				o.tempfail = q->as[i].temp;
				(void)str_fmt(q->why, sizeof(q->why), "ARC-Seal i=%d: %s", i,
					      q->as[i].why);
			}
		o.oldest_pass = 0;
		for (int i = n - 1; i >= 1; i--)
			if (q->ams[i].result != 1) {
				o.oldest_pass = i + 1;
				break;
			}
	}
	if (o.result != ARC_FAIL)
		q->why[0] = '\0';
	q->cb(&o, q->arg);
	arc_cancel(q);
}

static void on_key(const struct resolver_result *res, void *arg)
{
	struct arc_key *k = arg;
	struct arc_req *q = k->q;

	k->rq = NULL;
	k->done = true;
	k->status = res->status;
	if (res->status == RESOLVER_OK && res->n == 0)
		k->status = RESOLVER_PERMFAIL;
	if (res->status == RESOLVER_OK && res->n == 1) {
		k->rec = malloc(res->rr[0].len + 1);
		if (k->rec) {
			memcpy(k->rec, res->rr[0].text, res->rr[0].len);
			k->rec[res->rr[0].len] = '\0';
			k->reclen = res->rr[0].len;
		} else {
			k->status = RESOLVER_TEMPFAIL;
		}
	}
	dkim_vreq_answered(&q->v);
}

void arc_cancel(struct arc_req *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nkeys; i++) {
		resolver_cancel(q->keys[i].rq);
		free(q->keys[i].rec);
	}
	dkim_vreq_close(&q->v);
	free(q);
}

int arc_verify(struct resolver *r, const struct arc_opts *opts, const char *msg, size_t len,
	       arc_cb cb, void *arg, struct arc_req **out)
{
	struct arc_req *q = NULL;
	const struct dkim_hdr *hs;
	char *buf = NULL;
	int rc = -EINVAL;

	if (out)
		*out = NULL;
	if (!r || !cb || (!msg && len))
		goto out;
	rc = -ENOMEM;
	q = calloc(1, sizeof(*q));
	buf = malloc(ARC_BUF);
	if (!q || !buf)
		goto out;
	q->cb = cb;
	q->arg = arg;
	if (opts)
		q->o = *opts;
	if ((rc = dkim_vreq_open(&q->v, r, msg, len, deliver, q)) < 0)
		goto out;
	hs = q->v.hs;
	q->early = ARC_PASS;
	if (chain_parse(hs, q->v.nh, &q->ch, q->why, sizeof(q->why)) < 0) {
		q->early = ARC_FAIL;
	} else if (q->ch.n == 0) {
		q->early = ARC_NONE;
	} else {
		for (int i = 1; i <= q->ch.n; i++) {
			ams_prepare(q, &q->ams[i], hs, q->v.nh, &hs[q->ch.idx[i][K_AMS]],
				    q->v.msg + q->v.body, q->v.len - q->v.body, buf);
			as_prepare(q, &q->as[i], hs, i, buf);
		}
	}
	for (size_t i = 0; q->early == ARC_PASS && i < q->nkeys; i++) {
		struct arc_key *k = &q->keys[i];
		if (resolver_query(r, k->name, RESOLVER_TXT, on_key, k, &k->rq) < 0) {
			k->done = true;
			k->status = RESOLVER_TEMPFAIL;
			continue;
		}
		q->v.pending++;
	}
	if ((rc = dkim_vreq_go(&q->v)) < 0)
		goto out;
	free(buf);
	if (out)
		*out = q;
	return 0;
out:
	free(buf);
	arc_cancel(q);
	return rc;
}

/* ---- sealing ------------------------------------------------------------------- */

static const char *const ams_default_headers[] = {
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "DKIM-Signature",
    NULL,
};

int arc_seal(const struct arc_seal_opts *o, const char *msg, size_t len, char **out)
{
	struct dkim_hdr *hs = NULL;
	struct arc_chain *ch = NULL;
	char *m = NULL, *buf = NULL, *aar = NULL, *ams = NULL, *as = NULL;
	char(*names)[DKIM_NAME_LEN] = NULL;
	size_t ml = 0, nh = 0, body, nn = 0, aarcap;
	char why[128], inst[8], t[24], bh[64], hval[DKIM_MAX_H * DKIM_NAME_LEN];
	const char *const *list;
	int64_t avail = 0;
	EVP_MD_CTX *md = NULL;
	int rc = -EINVAL, n;

	if (out)
		*out = NULL;
	if (!o || !out || !o->key || !o->domain || !o->selector || !o->authserv_id || !o->ar ||
	    (!msg && len) || dkim_key_is_ed25519(o->key))
		goto out;
	rc = -ENOMEM;
	hs = calloc(DKIM_MAX_HEADERS + 1, sizeof(*hs));
	ch = calloc(1, sizeof(*ch));
	names = calloc(DKIM_MAX_H, sizeof(*names));
	buf = malloc(ARC_BUF);
	md = EVP_MD_CTX_new();
	m = dkim_crlf_dup(msg ? msg : "", len, &ml);
	if (!hs || !ch || !names || !buf || !md || !m)
		goto out;
	/* slot 0 is left for our AAR, so that the AMS can see it */
	body = dkim_split_header(m, ml, hs + 1, &nh);
	if (chain_parse(hs + 1, nh, ch, why, sizeof(why)) < 0 && ch->latest_cv_fail) {
		rc = 0; /* RFC 8617 5.1.2: a failed chain is not sealed again */
		goto out;
	}
	n = ch->n + 1;
	if (n > ARC_MAX_INSTANCES) {
		rc = 0;
		goto out;
	}
	(void)str_fmt(inst, sizeof(inst), "%d", n);
	(void)str_fmt(t, sizeof(t), "%lld", (long long)(o->now ? o->now : time_now()));
	/* the ARC-Authentication-Results */
	rc = -ENOMEM;
	aarcap = strlen(o->authserv_id) + strlen(o->ar) + 64;
	aar = malloc(aarcap);
	if (!aar)
		goto out;
	rc = -ENAMETOOLONG;
	if (str_fmt(aar, aarcap, "ARC-Authentication-Results: i=%d; %s;%s%s\r\n", n, o->authserv_id,
		    o->no_fold ? " " : "\r\n\t", o->ar) < 0)
		goto out;
	hs[0].p = aar;
	hs[0].len = strlen(aar) - 2;
	hs[0].nlen = strlen("ARC-Authentication-Results");
	/* the ARC-Message-Signature: present fields of the list */
	list = o->headers ? o->headers : ams_default_headers;
	for (size_t i = 0; list[i]; i++) {
		size_t l = strlen(list[i]);
		for (size_t j = 1; j <= nh; j++)
			if (dkim_hdr_is(&hs[j], list[i], l)) {
				if (nn == DKIM_MAX_H || l >= DKIM_NAME_LEN)
					goto out;
				for (size_t c = 0; c <= l; c++)
					names[nn][c] = (char)tolower((unsigned char)list[i][c]);
				nn++;
			}
	}
	hval[0] = '\0';
	for (size_t i = 0, p = 0; i < nn; i++) {
		if (str_fmt(hval + p, sizeof(hval) - p, "%s%s", i ? ":" : "", names[i]) < 0)
			goto out;
		p += strlen(hval + p);
	}
	rc = dkim_body_hash(DKIM_CANON_RELAXED, false, m + body, ml - body, -1, bh, sizeof(bh),
			    &avail);
	if (rc < 0)
		goto out;
	rc = -EIO;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	rc = dkim_feed_fields(md, DKIM_CANON_RELAXED, hs, nh + 1, names, nn, buf, ARC_BUF);
	if (rc < 0)
		goto out;
	{
		const struct dkim_build_tag tags[] = {
		    {"a", "rsa-sha256"},
		    {"b", ""},
		    {"bh", bh},
		    {"c", "relaxed/relaxed"},
		    {"d", o->domain},
		    {"h", hval},
		    {"i", inst},
		    {"s", o->selector},
		    {"t", t},
		};
		rc =
		    dkim_build_signed_field(o->key, md, DKIM_CANON_RELAXED, "ARC-Message-Signature",
					    tags, ARRAY_LEN(tags), o->no_fold, &ams);
		if (rc < 0)
			goto out;
	}
	/* the ARC-Seal: the sets 1..n-1 as they are, then ours; a seal saying
	 * cv=fail covers its own set only (RFC 8617 5.1.1) */
	const char *cv = n == 1 ? "none" : o->chain == ARC_PASS ? "pass" : "fail";
	rc = -EIO;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	{
		size_t bl;
		for (int i = 1; strcmp(cv, "fail") && i < n; i++)
			for (int k = 0; k < 3; k++) {
				if (ch->idx[i][k] < 0)
					continue; /* a broken chain, sealed as cv=fail */
				const struct dkim_hdr *f = &hs[1 + ch->idx[i][k]];
				rc = dkim_canon_header(DKIM_CANON_RELAXED, f->p, f->len, buf,
						       ARC_BUF, &bl);
				if (rc < 0)
					goto out;
				EVP_DigestUpdate(md, buf, bl);
			}
		rc = dkim_canon_header(DKIM_CANON_RELAXED, aar, strlen(aar), buf, ARC_BUF, &bl);
		if (rc < 0)
			goto out;
		EVP_DigestUpdate(md, buf, bl);
		rc = dkim_canon_header(DKIM_CANON_RELAXED, ams, strlen(ams), buf, ARC_BUF, &bl);
		if (rc < 0)
			goto out;
		EVP_DigestUpdate(md, buf, bl);
	}
	{
		const struct dkim_build_tag tags[] = {
		    {"a", "rsa-sha256"}, {"b", ""},	     {"cv", cv}, {"d", o->domain},
		    {"i", inst},	 {"s", o->selector}, {"t", t},
		};
		rc = dkim_build_signed_field(o->key, md, DKIM_CANON_RELAXED, "ARC-Seal", tags,
					     ARRAY_LEN(tags), o->no_fold, &as);
		if (rc < 0)
			goto out;
	}
	{
		size_t la = strlen(as), lm = strlen(ams), lr = strlen(aar);
		rc = -ENOMEM;
		*out = malloc(la + lm + lr + 1);
		if (!*out)
			goto out;
		memcpy(*out, as, la);
		memcpy(*out + la, ams, lm);
		memcpy(*out + la + lm, aar, lr + 1);
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(hs);
	free(ch);
	free(names);
	free(buf);
	free(m);
	free(aar);
	free(ams);
	free(as);
	return rc;
}
