/* SPDX-License-Identifier: MIT */
/*
 * store_dkim: DKIM signing keys per hosted domain (RFC 6376; issue 6).
 *
 * A domain has any number of keys, one per selector. A key is created
 * "pending" (its TXT record still has to be published at
 * SELECTOR._domainkey.DOMAIN), becomes "active" when an operator activates
 * it (the key outbound mail of the domain is signed with; at most one per
 * domain), and "retired" when another selector of the domain is activated
 * (kept so that its record stays listed until it is removed: mail signed
 * with it may still be in flight). Rotation is: add a new selector,
 * publish it, activate it, later remove the retired one.
 *
 * The private key is stored as PEM text (PKCS#8), the record as the TXT
 * value to publish. The store does not parse either; auth/dkim_keys does.
 * A key belongs to a hosted domain: naming a domain that is not hosted is
 * STORE_NOTFOUND, and removing the domain removes its keys.
 *
 * Results as in store.h. Strings in a struct handed to a callback live
 * until it returns.
 */
#ifndef MXG_STORE_DKIM_H
#define MXG_STORE_DKIM_H

#include "store/store.h"

#define STORE_DKIM_SELECTOR_LEN 64 /* a DNS label, terminated */
#define STORE_DKIM_ALG_LEN 32	   /* "rsa-sha256", "ed25519-sha256" */
#define STORE_DKIM_PEM_LEN 8192	   /* PEM private key, terminated */
#define STORE_DKIM_RECORD_LEN 2048 /* TXT value, terminated */

enum store_dkim_state {
	STORE_DKIM_PENDING = 0,
	STORE_DKIM_ACTIVE = 1,
	STORE_DKIM_RETIRED = 2,
};

struct store_dkim_key {
	char domain[STORE_DOMAIN_LEN];
	char selector[STORE_DKIM_SELECTOR_LEN];
	char algorithm[STORE_DKIM_ALG_LEN];
	enum store_dkim_state state;
	int64_t created_at;
	int64_t activated_at; /* 0: never active */
	char private_key[STORE_DKIM_PEM_LEN];
	char dns_record[STORE_DKIM_RECORD_LEN];
};

typedef int (*store_dkim_cb)(const struct store_dkim_key *k, void *arg);

/* Adds k (domain, selector, algorithm, private_key, dns_record; created_at
 * 0: now) as a pending key. STORE_EXISTS if the domain has that selector,
 * STORE_NOTFOUND if the domain is not hosted. */
int store_dkim_add(struct store *st, const struct store_dkim_key *k) MXG_WUR;
/* The keys of one domain (NULL: of every domain), by domain, then newest
 * first. */
int store_dkim_list(struct store *st, const char *domain, store_dkim_cb cb, void *arg) MXG_WUR;
/* Makes selector the domain's active key; the key active until then (if
 * another) becomes retired. Activating the active key is STORE_OK. */
int store_dkim_activate(struct store *st, const char *domain, const char *selector,
			int64_t now) MXG_WUR;
/* Removes one key (any state). STORE_NOTFOUND if there is none. */
int store_dkim_remove(struct store *st, const char *domain, const char *selector) MXG_WUR;
/* The active key of domain into *out; STORE_NOTFOUND when it has none (or
 * is not hosted). */
int store_dkim_active(struct store *st, const char *domain, struct store_dkim_key *out) MXG_WUR;

/* "pending", "active", "retired" */
const char *store_dkim_state_name(enum store_dkim_state s);

/* ---- for backends ------------------------------------------------------ */

struct store_dkim_ops {
	int (*add)(struct store *st, const struct store_dkim_key *k);
	int (*list)(struct store *st, const char *domain, store_dkim_cb cb, void *arg);
	int (*activate)(struct store *st, const char *domain, const char *selector, int64_t now);
	int (*remove)(struct store *st, const char *domain, const char *selector);
	int (*active)(struct store *st, const char *domain, struct store_dkim_key *out);
};

#endif
