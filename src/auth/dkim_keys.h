/* SPDX-License-Identifier: MIT */
/*
 * dkim_keys: DKIM keys of hosted domains, from the store to a signature.
 *
 * Key management (for the CLI and the API): dkim_keys_generate() makes a
 * key with dkim_keygen() (auth/dkim_sign.h) and stores it pending under a
 * selector (default "mxg" + yyyymm of now, UTC); the caller prints the TXT
 * record to publish at dkim_keys_record_name(). Activation, listing and
 * removal are the store's (store/store_dkim.h).
 *
 * Signing (for the delivery threads): a struct dkim_signer caches, per
 * domain, the parsed active key (or that there is none) for ttl seconds,
 * so the store is asked about a domain at most once per ttl and the PEM
 * is parsed once per key. dkim_signer_sign() picks the domain to sign
 * for: the RFC5322.From domain when it has an active key (so the
 * signature aligns for DMARC), else the envelope sender's domain, and
 * returns the DKIM-Signature field to put in front of the message.
 * A signer is shared by all delivery threads (one lock around the cache;
 * the signing itself runs outside it on a referenced key). Each caller
 * passes its own store connection.
 *
 * Errors: -EINVAL, -ENOMEM, a negative store code (store_dkim.h), or what
 * dkim_sign()/dkim_keygen() return.
 */
#ifndef MXG_AUTH_DKIM_KEYS_H
#define MXG_AUTH_DKIM_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dkim_sign.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_dkim.h"

#define DKIM_KEYS_TTL 300	 /* default cache lifetime, seconds */
#define DKIM_KEYS_CACHE_MAX 4096 /* domains cached */

/* "mxg" + yyyymm of t (UTC). */
void dkim_keys_default_selector(int64_t t, char *out, size_t outlen);
/* SELECTOR._domainkey.DOMAIN */
int dkim_keys_record_name(const char *domain, const char *selector, char *out,
			  size_t outlen) MXG_WUR;

/* Generates a key and stores it pending. selector NULL or "": the
 * default. *out (may be NULL) gets the stored key (its selector and
 * dns_record are what to publish). */
int dkim_keys_generate(struct store *st, const char *domain, const char *selector,
		       enum dkim_key_type type, int64_t now, struct store_dkim_key *out) MXG_WUR;

struct dkim_signer;

int dkim_signer_new(int64_t ttl, struct dkim_signer **out) MXG_WUR;
void dkim_signer_free(struct dkim_signer *s);

struct dkim_signed {
	char *field; /* "DKIM-Signature: ...\r\n" (free()), NULL when not signed */
	char domain[STORE_DOMAIN_LEN];
	char selector[STORE_DKIM_SELECTOR_LEN];
};

/* Signs msg[0..len) (header, empty line, body; CRLF) for the From
 * domain or the envelope sender's domain (sender may be "" or NULL), if
 * one has an active key. 0 with out->field NULL when neither has one.
 * A store that cannot answer is a negative code unless a cached answer
 * (even an old one) exists. */
int dkim_signer_sign(struct dkim_signer *s, struct store *st, const char *sender, const char *msg,
		     size_t len, int64_t now, struct dkim_signed *out) MXG_WUR;

/* The delivery worker's step: signs *body as dkim_signer_sign() does and,
 * if it was signed, replaces *body (malloc'd; freed here) with a copy
 * that starts with the DKIM-Signature field. A message that cannot be
 * signed (no header, crypto failure) stays as it is, logged with qid.
 * Negative only when the store could not say whether there is a key. */
int dkim_signer_prepend(struct dkim_signer *s, struct store *st, const char *sender, void **body,
			size_t *len, const char *qid) MXG_WUR;

/* Drops every cached key (after an operator's change, in tests). */
void dkim_signer_flush(struct dkim_signer *s);

#endif
