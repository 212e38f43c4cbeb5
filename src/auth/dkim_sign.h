/* SPDX-License-Identifier: MIT */
/*
 * dkim_sign: DKIM signing (RFC 6376 section 5; rsa-sha256 and RFC 8463
 * ed25519-sha256) and key generation, for outbound mail and for the ARC
 * sealer (auth/arc).
 *
 * A struct dkim_key is a loaded private key (PEM: PKCS#1 "RSA PRIVATE
 * KEY" or PKCS#8; RSA of at least 1024 bits, or Ed25519). It is immutable
 * once loaded and may be shared by threads.
 *
 * dkim_sign() takes a whole message (header, empty line, body; bare LF is
 * taken as CRLF), hashes the body and the chosen header fields, and
 * returns the complete "DKIM-Signature: ..." field, folded at 78 columns,
 * with its final CRLF, in a malloc'd string the caller frees. It is pure
 * CPU work (one private-key operation), without I/O.
 *
 * Header fields signed: those of opts->headers (or of
 * dkim_sign_default_headers) present in the message, each as often as it
 * occurs. A listed name that is also in over_sign (default "From") is
 * named once more than it occurs (RFC 6376 8.15): a field of that name
 * added later breaks the signature.
 *
 * dkim_keygen() makes a new key: the PEM (PKCS#8) and the TXT record to
 * publish at SELECTOR._domainkey.DOMAIN ("v=DKIM1; k=rsa; p=..."), both
 * malloc'd.
 *
 * Errors: -EINVAL (bad arguments: no domain or selector, d=/s= with bytes
 * a domain cannot hold, a message without a From field), -ENOMEM, -EIO (the
 * crypto library refused), -ENOENT / -EACCES (key file), -EKEYREJECTED
 * (not a usable private key: unknown type, RSA under 1024 bits).
 */
#ifndef MXG_AUTH_DKIM_SIGN_H
#define MXG_AUTH_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dkim.h"
#include "core/util.h"

struct dkim_key;

enum dkim_key_type { DKIM_KEY_RSA2048 = 0, DKIM_KEY_ED25519 = 1 };

/* NULL-terminated. */
extern const char *const dkim_sign_default_headers[];

struct dkim_sign_opts {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	/* canonicalization; DKIM_CANON_RELAXED is what nearly every signer
	 * uses. canon_set false: relaxed/relaxed. */
	bool canon_set;
	enum dkim_canon header_canon, body_canon;
	const char *const *headers;   /* NULL-terminated; NULL: the default list */
	const char *const *over_sign; /* NULL: {"From"}; {NULL}: none */
	int64_t now;		      /* t=; 0: the clock */
	int64_t expire;		      /* seconds after t= for x=; 0: no x= */
	const char *identity;	      /* i=; NULL: none */
	bool no_fold;		      /* one line (tests) */
};

/* Loads a PEM private key from memory or from a file. why gets a reason. */
int dkim_key_from_pem(const char *pem, size_t len, struct dkim_key **out, char *why,
		      size_t whylen) MXG_WUR;
int dkim_key_load_file(const char *path, struct dkim_key **out, char *why, size_t whylen) MXG_WUR;
void dkim_key_free(struct dkim_key *k);
bool dkim_key_is_ed25519(const struct dkim_key *k);
int dkim_key_bits(const struct dkim_key *k);

/* Signs msg[0..len); *out gets "DKIM-Signature: ...\r\n" (free()). */
int dkim_sign(const struct dkim_key *k, const struct dkim_sign_opts *o, const char *msg, size_t len,
	      char **out) MXG_WUR;

/* A new key: *pem and *txt are malloc'd (free()). */
int dkim_keygen(enum dkim_key_type type, char **pem, char **txt) MXG_WUR;

#endif
