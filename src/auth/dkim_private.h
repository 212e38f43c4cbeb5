/* SPDX-License-Identifier: MIT */
/*
 * dkim_private: the pieces of auth/dkim that the signer (auth/dkim_sign)
 * and ARC (auth/arc, RFC 8617) share with the verifier. Not for other
 * modules: the public interface is dkim.h.
 *
 * Contract: every struct dkim_hdr is a slice of the caller's message (a
 * CRLF copy made by dkim_crlf_dup); nothing here allocates except
 * dkim_crlf_dup (free() the result) and dkim_key_load (EVP_PKEY_free()).
 */
#ifndef MXG_AUTH_DKIM_PRIVATE_H
#define MXG_AUTH_DKIM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "auth/dkim.h"

/* One header field of a message. */
struct dkim_hdr {
	const char *p; /* the field, with its folding, without the final CRLF */
	size_t len;
	size_t nlen; /* of the name */
};

/* A copy of msg with bare LF made CRLF, NUL-terminated; NULL on ENOMEM. */
char *dkim_crlf_dup(const char *msg, size_t len, size_t *outlen);

/* Splits a CRLF message into at most DKIM_MAX_HEADERS fields (h must hold
 * that many); returns the offset of the body. */
size_t dkim_split_header(const char *m, size_t len, struct dkim_hdr *h, size_t *nh);
/* The field is named name (nl bytes, case-insensitive). */
bool dkim_hdr_is(const struct dkim_hdr *h, const char *name, size_t nl);

/* base64 (whitespace ignored, padding checked). -EINVAL, -E2BIG. */
int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t outlen,
		    size_t *used) MXG_WUR;
/* base64 of in; out must hold 4 * ((n + 2) / 3) + 2 (one spare byte). */
void dkim_b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen);

#define DKIM_NAME_LEN 80 /* a field name in h= */

/* The names of an h= value (a colon list, FWS allowed). -E2BIG past max
 * names or a name of DKIM_NAME_LEN or more. */
int dkim_hlist_parse(const char *v, size_t vlen, char (*names)[DKIM_NAME_LEN], size_t max,
		     size_t *nn) MXG_WUR;

/* Feeds md the fields named (each occurrence of a name taking the next
 * field of that name from the bottom up, RFC 6376 5.4.2; a name with no
 * field left adds nothing), canonicalized by c. buf is scratch. */
int dkim_feed_fields(EVP_MD_CTX *md, enum dkim_canon c, const struct dkim_hdr *hs, size_t nh,
		     char (*names)[DKIM_NAME_LEN], size_t nn, char *buf, size_t bufcap) MXG_WUR;

/* Feeds md a signature field (field[0..flen)) with its b= value (bval, a
 * slice of field) removed, canonicalized by c, without the final CRLF. */
int dkim_feed_self(EVP_MD_CTX *md, enum dkim_canon c, const char *field, size_t flen,
		   const char *bval, size_t bvlen, char *buf, size_t bufcap) MXG_WUR;

/* A DKIM key record (RFC 6376 3.6.1) checked for a signature of the given
 * algorithm: DKIM_PASS and the key in *key, or the result and why
 * (PERMERROR: unusable record; POLICY: RSA key under min_bits). strict_i
 * is whether the signature's i= equals d= (for t=s). *testing: t=y. */
enum dkim_result dkim_key_load(const char *rec, size_t len, bool ed25519, bool strict_i,
			       int min_bits, EVP_PKEY **key, int *bits, bool *testing,
			       const char **why);

/* Verifies sig over the 32-byte SHA-256 digest (RSA PKCS#1 v1.5, or
 * Ed25519 over the digest as RFC 8463 says). */
bool dkim_digest_verify(EVP_PKEY *key, bool ed25519, const unsigned char *digest,
			const unsigned char *sig, size_t siglen);

/* ---- verification requests (auth/dkim.c, auth/arc.c) ---- */

/* What a DKIM or an ARC verification request holds besides its
 * signatures: a CRLF copy of the message, its header fields while the
 * signatures are prepared, the key look-ups still out, and the kick that
 * delivers from the loop when none is. done(req) runs once, from the
 * loop, and frees the request (which closes the dkim_vreq). */
struct dkim_vreq {
	struct event *kick;
	void (*deliver)(void *req);
	void *req;
	char *msg; /* CRLF copy */
	size_t len;
	struct dkim_hdr *hs; /* DKIM_MAX_HEADERS; freed by dkim_vreq_go() */
	size_t nh, body;     /* fields in hs; offset of the body in msg */
	size_t pending;	     /* key look-ups out */
};

/* Copies msg (NULL if len is 0) as CRLF, splits its header and creates the
 * kick. -ENOMEM; v must be closed on failure too. */
int dkim_vreq_open(struct dkim_vreq *v, struct resolver *r, const char *msg, size_t len,
		   void (*done)(void *req), void *req) MXG_WUR;
/* Once the look-ups are out (pending counts them): frees the header
 * fields and, with no look-up out, delivers from the loop. -ENOMEM. */
int dkim_vreq_go(struct dkim_vreq *v) MXG_WUR;
/* One look-up answered: delivers after the last. */
void dkim_vreq_answered(struct dkim_vreq *v);
/* Frees what dkim_vreq_open() made (not the request; cancel the look-ups
 * first). */
void dkim_vreq_close(struct dkim_vreq *v);

/* ---- signing (auth/dkim_sign.c) ---- */

struct dkim_key;

/* One tag of a signature field to build; the tag named "b" gets the
 * signature, whatever its val. */
struct dkim_build_tag {
	const char *name;
	const char *val;
};

/* Builds "name: tag=val; ..." (folded at 78 columns unless no_fold; long
 * values break after a ':'), feeds md (SHA-256, already fed with the
 * signed fields) the field with an empty b= canonicalized by c without its
 * final CRLF, signs the digest with k and returns the field with the
 * signature and a final CRLF in *out (free()). */
int dkim_build_signed_field(const struct dkim_key *k, EVP_MD_CTX *md, enum dkim_canon c,
			    const char *name, const struct dkim_build_tag *tags, size_t n,
			    bool no_fold, char **out) MXG_WUR;

#endif
