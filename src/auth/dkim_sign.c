/* SPDX-License-Identifier: MIT */
/*
 * dkim_sign: the signer. The field is built once with a placeholder of the
 * signature's exact length, so that its folding is final; the hashed form
 * is that text without the placeholder (what a verifier sees once it has
 * emptied b=), and the signature is then written over the placeholder.
 */
#include "auth/dkim_sign.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/dkim_private.h"

#define SIGN_LINE 78		  /* fold before this column */
#define SIGN_FIELD_MAX 8192	  /* a built signature field */
#define SIGN_MAX_NAMES DKIM_MAX_H /* names in h= */

struct dkim_key {
	EVP_PKEY *pkey;
	bool ed25519;
	int bits;
};

const char *const dkim_sign_default_headers[] = {
    "From",	   "To",	 "Cc",		 "Subject",	 "Date",
    "Message-ID",  "Reply-To",	 "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "In-Reply-To", "References", NULL,
};

/* ---- keys ------------------------------------------------------------------ */

static int key_wrap(EVP_PKEY *pk, struct dkim_key **out, char *why, size_t whylen)
{
	struct dkim_key *k;
	int id = EVP_PKEY_get_base_id(pk);

	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
		(void)str_copy(why, whylen, "not an RSA or Ed25519 key");
		EVP_PKEY_free(pk);
		return -EKEYREJECTED;
	}
	if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pk) < 1024) {
		(void)str_copy(why, whylen, "RSA key under 1024 bits");
		EVP_PKEY_free(pk);
		return -EKEYREJECTED;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pk);
		return -ENOMEM;
	}
	k->pkey = pk;
	k->ed25519 = id == EVP_PKEY_ED25519;
	k->bits = EVP_PKEY_get_bits(pk);
	*out = k;
	return 0;
}

int dkim_key_from_pem(const char *pem, size_t len, struct dkim_key **out, char *why, size_t whylen)
{
	BIO *bio;
	EVP_PKEY *pk;

	*out = NULL;
	if (!pem || len > INT32_MAX)
		return -EINVAL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return -ENOMEM;
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!pk) {
		(void)str_copy(why, whylen, "no PEM private key");
		return -EKEYREJECTED;
	}
	return key_wrap(pk, out, why, whylen);
}

int dkim_key_load_file(const char *path, struct dkim_key **out, char *why, size_t whylen)
{
	FILE *f;
	char buf[16384];
	size_t n;
	int rc;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		rc = -errno;
		(void)str_fmt(why, whylen, "%s: %s", path, strerror(errno));
		return rc;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == sizeof(buf)) {
		(void)str_fmt(why, whylen, "%s: larger than a key", path);
		return -EKEYREJECTED;
	}
	rc = dkim_key_from_pem(buf, n, out, why, whylen);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

void dkim_key_free(struct dkim_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

bool dkim_key_is_ed25519(const struct dkim_key *k)
{
	return k->ed25519;
}

int dkim_key_bits(const struct dkim_key *k)
{
	return k->bits;
}

/* The signature of a SHA-256 digest: RSA PKCS#1 v1.5, or Ed25519 over the
 * digest (RFC 8463 section 3). */
static int sign_digest(const struct dkim_key *k, const unsigned char *dg, unsigned char *sig,
		       size_t *siglen)
{
	int rc = -EIO;

	if (k->ed25519) {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		if (mc && EVP_DigestSignInit(mc, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestSign(mc, sig, siglen, dg, 32) == 1)
			rc = 0;
		EVP_MD_CTX_free(mc);
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k->pkey, NULL);
		if (pc && EVP_PKEY_sign_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(pc, sig, siglen, dg, 32) == 1)
			rc = 0;
		EVP_PKEY_CTX_free(pc);
	}
	return rc;
}

/* ---- building a field ------------------------------------------------------ */

struct fbuf {
	char *p;
	size_t len, cap, col;
	bool fold;
	bool over;
};

static void fb_put(struct fbuf *f, const char *s, size_t n)
{
	if (f->len + n + 1 > f->cap) {
		f->over = true;
		return;
	}
	memcpy(f->p + f->len, s, n);
	f->len += n;
	f->p[f->len] = '\0';
	for (size_t i = 0; i < n; i++)
		f->col = s[i] == '\n' ? 0 : f->col + 1;
}

static void fb_fold(struct fbuf *f)
{
	fb_put(f, "\r\n\t", 3);
	f->col = 8;
}

/* A value that may break after a ':' (h=) or anywhere (b=, bh=). */
static void fb_value(struct fbuf *f, const char *v, size_t n, bool anywhere)
{
	size_t i = 0;

	while (i < n) {
		size_t room = f->col < SIGN_LINE ? SIGN_LINE - f->col : 0, take;
		if (!f->fold || n - i <= room) {
			fb_put(f, v + i, n - i);
			return;
		}
		if (anywhere) {
			take = room > 0 ? room : 1;
		} else {
			/* up to the last ':' that fits, or to the next one */
			take = 0;
			for (size_t j = i; j < n && j - i < room; j++)
				if (v[j] == ':')
					take = j - i + 1;
			if (take == 0) {
				size_t j = i;
				while (j < n && v[j] != ':')
					j++;
				take = j < n ? j - i + 1 : n - i;
			}
		}
		fb_put(f, v + i, take);
		i += take;
		if (i < n)
			fb_fold(f);
	}
}

int dkim_build_signed_field(const struct dkim_key *k, EVP_MD_CTX *md, enum dkim_canon c,
			    const char *name, const struct dkim_build_tag *tags, size_t n,
			    bool no_fold, char **out)
{
	struct fbuf f = {.cap = SIGN_FIELD_MAX, .fold = !no_fold};
	unsigned char sig[1024], dg[32];
	size_t siglen = k->ed25519 ? 64 : (size_t)EVP_PKEY_get_size(k->pkey), b64len, bs = 0,
	       be = 0, used = 0;
	char *b64 = NULL, *hashed = NULL, *canon = NULL;
	unsigned dl = 0;
	int rc = -ENOMEM;

	*out = NULL;
	if (siglen == 0 || siglen > sizeof(sig))
		return -EIO;
	b64len = 4 * ((siglen + 2) / 3);
	f.p = malloc(f.cap);
	b64 = malloc(b64len + 2);
	hashed = malloc(f.cap);
	canon = malloc(f.cap + 4);
	if (!f.p || !b64 || !hashed || !canon)
		goto out;
	memset(b64, 'A', b64len);
	b64[b64len] = '\0';
	fb_put(&f, name, strlen(name));
	fb_put(&f, ": ", 2);
	for (size_t i = 0; i < n; i++) {
		bool isb = !strcmp(tags[i].name, "b");
		const char *v = isb ? b64 : tags[i].val;
		size_t nl = strlen(tags[i].name), vl = strlen(v);
		if (i > 0) {
			fb_put(&f, ";", 1);
			/* the tag name and at least some of the value on this line */
			if (f.fold && f.col + 1 + nl + 1 + (isb ? 8 : vl) + 1 > SIGN_LINE)
				fb_fold(&f);
			else
				fb_put(&f, " ", 1);
		}
		fb_put(&f, tags[i].name, nl);
		fb_put(&f, "=", 1);
		if (isb)
			bs = f.len;
		fb_value(&f, v, vl, isb || !strcmp(tags[i].name, "bh"));
		if (isb)
			be = f.len;
	}
	if (f.over) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	/* what is hashed: the field without the b= value */
	memcpy(hashed, f.p, bs);
	memcpy(hashed + bs, f.p + be, f.len - be);
	if (dkim_canon_header(c, hashed, bs + (f.len - be), canon, f.cap + 4, &used) < 0) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = -EIO;
	if (EVP_DigestUpdate(md, canon, used - 2) != 1 || EVP_DigestFinal_ex(md, dg, &dl) != 1 ||
	    dl != 32)
		goto out;
	rc = sign_digest(k, dg, sig, &siglen);
	if (rc < 0)
		goto out;
	dkim_b64_encode(sig, siglen, b64, b64len + 2);
	/* over the placeholder, keeping its folds */
	for (size_t i = bs, j = 0; i < be && j < b64len; i++)
		if (f.p[i] != '\r' && f.p[i] != '\n' && f.p[i] != '\t' && f.p[i] != ' ')
			f.p[i] = b64[j++];
	fb_put(&f, "\r\n", 2);
	if (f.over) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	*out = f.p;
	f.p = NULL;
	rc = 0;
out:
	free(f.p);
	free(b64);
	free(hashed);
	free(canon);
	return rc;
}

/* ---- DKIM-Signature -------------------------------------------------------- */

static bool dns_chars(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

/* Appends name to names (lower case) if there is room. */
static int names_add(char (*names)[DKIM_NAME_LEN], size_t *nn, const char *name)
{
	size_t l = strlen(name);

	if (*nn == SIGN_MAX_NAMES || l == 0 || l >= DKIM_NAME_LEN)
		return -E2BIG;
	for (size_t i = 0; i <= l; i++)
		names[*nn][i] = (char)tolower((unsigned char)name[i]);
	(*nn)++;
	return 0;
}

int dkim_sign(const struct dkim_key *k, const struct dkim_sign_opts *o, const char *msg, size_t len,
	      char **out)
{
	static const char *const from_only[] = {"From", NULL};
	char *m = NULL, *buf = NULL;
	struct dkim_hdr *hs = NULL;
	char(*names)[DKIM_NAME_LEN] = NULL;
	size_t ml = 0, nh = 0, body, nn = 0;
	char bh[64], t[24], x[24], hval[SIGN_MAX_NAMES * DKIM_NAME_LEN], canon[32];
	const char *const *list, *const *over;
	enum dkim_canon hc = DKIM_CANON_RELAXED, bc = DKIM_CANON_RELAXED;
	int64_t avail = 0, now;
	EVP_MD_CTX *md = NULL;
	struct dkim_build_tag tags[12];
	size_t nt = 0;
	int rc = -EINVAL;

	if (out)
		*out = NULL;
	if (!k || !o || !out || (!msg && len) || !dns_chars(o->domain) || !dns_chars(o->selector))
		goto out;
	if (o->canon_set) {
		hc = o->header_canon;
		bc = o->body_canon;
	}
	list = o->headers ? o->headers : dkim_sign_default_headers;
	over = o->over_sign ? o->over_sign : from_only;
	now = o->now ? o->now : time_now();
	rc = -ENOMEM;
	m = dkim_crlf_dup(msg ? msg : "", len, &ml);
	hs = calloc(DKIM_MAX_HEADERS, sizeof(*hs));
	names = calloc(SIGN_MAX_NAMES, sizeof(*names));
	buf = malloc(65536);
	md = EVP_MD_CTX_new();
	if (!m || !hs || !names || !buf || !md)
		goto out;
	body = dkim_split_header(m, ml, hs, &nh);
	rc = -EINVAL;
	if (nh == 0)
		goto out;
	/* RFC 6376 5.4: From is the one field a signature must cover */
	{
		bool from = false;
		for (size_t j = 0; j < nh && !from; j++)
			from = dkim_hdr_is(&hs[j], "From", 4);
		if (!from)
			goto out;
	}
	/* every field of a listed name, once per occurrence; over-signed names
	 * once more */
	for (size_t i = 0; list[i]; i++) {
		size_t cnt = 0, l = strlen(list[i]);
		for (size_t j = 0; j < nh; j++)
			if (dkim_hdr_is(&hs[j], list[i], l))
				cnt++;
		for (size_t v = 0; over[v]; v++)
			if (!strcasecmp(over[v], list[i]))
				cnt++;
		for (size_t c = 0; c < cnt; c++)
			if (names_add(names, &nn, list[i]) < 0)
				goto out;
	}
	if (nn == 0)
		goto out;
	hval[0] = '\0';
	for (size_t i = 0, o2 = 0; i < nn; i++) {
		if (str_fmt(hval + o2, sizeof(hval) - o2, "%s%s", i ? ":" : "", names[i]) < 0)
			goto out;
		o2 += strlen(hval + o2);
	}
	rc = dkim_body_hash(bc, false, m + body, ml - body, -1, bh, sizeof(bh), &avail);
	if (rc < 0)
		goto out;
	rc = -EIO;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	rc = dkim_feed_fields(md, hc, hs, nh, names, nn, buf, 65536);
	if (rc < 0)
		goto out;
	(void)str_fmt(canon, sizeof(canon), "%s/%s",
		      hc == DKIM_CANON_RELAXED ? "relaxed" : "simple",
		      bc == DKIM_CANON_RELAXED ? "relaxed" : "simple");
	(void)str_fmt(t, sizeof(t), "%lld", (long long)now);
	(void)str_fmt(x, sizeof(x), "%lld", (long long)(now + o->expire));
	tags[nt++] = (struct dkim_build_tag){"v", "1"};
	tags[nt++] = (struct dkim_build_tag){"a", k->ed25519 ? "ed25519-sha256" : "rsa-sha256"};
	tags[nt++] = (struct dkim_build_tag){"c", canon};
	tags[nt++] = (struct dkim_build_tag){"d", o->domain};
	tags[nt++] = (struct dkim_build_tag){"s", o->selector};
	if (o->identity)
		tags[nt++] = (struct dkim_build_tag){"i", o->identity};
	tags[nt++] = (struct dkim_build_tag){"t", t};
	if (o->expire > 0)
		tags[nt++] = (struct dkim_build_tag){"x", x};
	tags[nt++] = (struct dkim_build_tag){"h", hval};
	tags[nt++] = (struct dkim_build_tag){"bh", bh};
	tags[nt++] = (struct dkim_build_tag){"b", ""};
	rc = dkim_build_signed_field(k, md, hc, "DKIM-Signature", tags, nt, o->no_fold, out);
out:
	EVP_MD_CTX_free(md);
	free(m);
	free(hs);
	free(names);
	free(buf);
	return rc;
}

/* ---- keygen ---------------------------------------------------------------- */

int dkim_keygen(enum dkim_key_type type, char **pem, char **txt)
{
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	unsigned char *der = NULL, raw[32];
	size_t derlen = 0, rawlen = sizeof(raw);
	char *p64 = NULL;
	BUF_MEM *bm = NULL;
	int rc = -EIO, l;

	*pem = NULL;
	*txt = NULL;
	if (type == DKIM_KEY_ED25519)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (type == DKIM_KEY_RSA2048)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		return -EINVAL;
	if (!pk)
		goto out;
	/* the public half: raw 32 bytes for Ed25519 (RFC 8463 4.2), the
	 * SubjectPublicKeyInfo for RSA */
	if (type == DKIM_KEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1)
			goto out;
		der = raw;
		derlen = rawlen;
	} else {
		l = i2d_PUBKEY(pk, &der);
		if (l <= 0)
			goto out;
		derlen = (size_t)l;
	}
	rc = -ENOMEM;
	p64 = malloc(4 * ((derlen + 2) / 3) + 2);
	if (!p64)
		goto out;
	dkim_b64_encode(der, derlen, p64, 4 * ((derlen + 2) / 3) + 2);
	size_t tl = strlen(p64) + 48;
	*txt = malloc(tl);
	if (!*txt)
		goto out;
	(void)str_fmt(*txt, tl, "v=DKIM1; k=%s; p=%s", type == DKIM_KEY_ED25519 ? "ed25519" : "rsa",
		      p64);
	bio = BIO_new(BIO_s_mem());
	if (!bio)
		goto out;
	rc = -EIO;
	if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	BIO_get_mem_ptr(bio, &bm);
	rc = -ENOMEM;
	*pem = malloc(bm->length + 1);
	if (!*pem)
		goto out;
	memcpy(*pem, bm->data, bm->length);
	(*pem)[bm->length] = '\0';
	rc = 0;
out:
	if (rc < 0) {
		free(*txt);
		*txt = NULL;
		free(*pem);
		*pem = NULL;
	}
	if (der != raw)
		OPENSSL_free(der);
	free(p64);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return rc;
}
