/* SPDX-License-Identifier: MIT */
/*
 * dkim: DKIM signature verification (RFC 6376; RFC 8463 Ed25519; RFC 8301
 * algorithm and key-size rules), keys looked up through the worker's
 * resolver (TXT at selector._domainkey.domain).
 *
 * dkim_verify() takes a whole message (header, empty line, body; CRLF line
 * ends, bare LF is taken as CRLF). It parses every DKIM-Signature field
 * (at most DKIM_MAX_SIGNATURES, the rest are ignored), canonicalizes and
 * hashes the header fields and body at once, on the calling thread (CPU
 * work, fine on the loop for messages of usual size), then asks the DNS
 * for the keys in parallel; the signature check runs when a key arrives.
 *
 * Results, one per signature, in the order of the fields in the header:
 *   DKIM_PASS       the signature verifies;
 *   DKIM_FAIL       "body hash mismatch" or "signature mismatch";
 *   DKIM_NEUTRAL    expired (x=) or dated in the future (t=);
 *   DKIM_POLICY     verifiable but not acceptable: key under min_rsa_bits;
 *   DKIM_TEMPERROR  the key could not be fetched (DNS failure): 4xx;
 *   DKIM_PERMERROR  bad tag list (syntax, duplicate or missing required
 *                   tag), unknown algorithm, no key, revoked key (p=
 *                   empty), key record unusable (v=, k=, h=, s=, t=s).
 * A message without signatures yields n == 0 (RFC 8601 "none").
 *
 * Contract: the callback runs exactly once, from the event loop, unless
 * dkim_cancel() comes first. The outcome and its strings live during the
 * callback; the request and its copy of the message are freed after it
 * returns. dkim_cancel() is not allowed from inside the callback.
 *
 * The tag-list parser (RFC 6376 3.2) and the canonicalizations (3.4) are
 * exported for the unit tests and the fuzzer.
 */
#ifndef MXG_AUTH_DKIM_H
#define MXG_AUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "net/resolver.h"

enum dkim_result {
	DKIM_PASS = 0,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_POLICY,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

#define DKIM_MAX_SIGNATURES 8
#define DKIM_MAX_TAGS 32
#define DKIM_MAX_HEADERS 1024 /* header fields looked at */
#define DKIM_MAX_H 64	      /* names in h= */
#define DKIM_DEFAULT_MIN_RSA_BITS 1024

struct dkim_opts {
	int min_rsa_bits;   /* 0: DKIM_DEFAULT_MIN_RSA_BITS */
	int64_t now;	    /* seconds; 0: the clock (x=, t=) */
	int64_t clock_skew; /* seconds a t= may be in the future; 0: 300 */
};

struct dkim_sig {
	enum dkim_result result;
	const char *why;       /* "" on pass */
	const char *domain;    /* d= ("" if unreadable) */
	const char *selector;  /* s= */
	const char *algorithm; /* a= */
	const char *identity;  /* i= (or "@" d=) */
	int key_bits;	       /* 0 if no key was read */
	bool testing;	       /* the key says t=y */
};

struct dkim_outcome {
	size_t n;
	const struct dkim_sig *sigs;
};

struct dkim_req;
typedef void (*dkim_cb)(const struct dkim_outcome *o, void *arg);

/* Verifies every signature of msg[0..len) (copied). opts may be NULL.
 * 0 and the request in *out (if out), or -EINVAL / -ENOMEM (no callback). */
int dkim_verify(struct resolver *r, const struct dkim_opts *opts, const char *msg, size_t len,
		dkim_cb cb, void *arg, struct dkim_req **out) MXG_WUR;
void dkim_cancel(struct dkim_req *req);

/* "pass", "fail", "neutral", "policy", "temperror", "permerror" */
const char *dkim_result_name(enum dkim_result r);

/* ---- building blocks ---- */

/* One tag of a tag-list: name and value are slices of the input, the
 * value without its surrounding whitespace (inner FWS kept). */
struct dkim_tag {
	const char *name;
	size_t nlen;
	const char *val;
	size_t vlen;
};

struct dkim_tags {
	struct dkim_tag t[DKIM_MAX_TAGS];
	size_t n;
};

/* RFC 6376 3.2 tag-list, strictly: -EINVAL on a syntax error, -EEXIST on a
 * duplicate tag, -E2BIG over DKIM_MAX_TAGS. */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out) MXG_WUR;
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags, const char *name);

enum dkim_canon { DKIM_CANON_SIMPLE = 0, DKIM_CANON_RELAXED = 1 };

/* Canonicalizes one header field (raw, with its folding, with or without
 * its final CRLF) into out, with a final CRLF. -ENAMETOOLONG if short. */
int dkim_canon_header(enum dkim_canon c, const char *field, size_t len, char *out, size_t outlen,
		      size_t *outused) MXG_WUR;

/* The body hash: base64 of the SHA-256 (or SHA-1, sha1 true) of the
 * canonical body, of its first limit bytes when limit >= 0. body uses
 * CRLF (bare LF taken as CRLF). *avail gets the canonical length. */
int dkim_body_hash(enum dkim_canon c, bool sha1, const char *body, size_t len, int64_t limit,
		   char *b64, size_t b64len, int64_t *avail) MXG_WUR;

#endif
