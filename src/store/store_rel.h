/* SPDX-License-Identifier: MIT */
/*
 * store_rel: sender relationships (issue 7), the pairs (local mailbox,
 * outside address) learnt from behaviour.
 *
 * A pair counts two directions:
 *   outbound  messages our mailbox sent to the outside address;
 *   inbound   positive signals about mail from the outside address to the
 *             mailbox: the recipient released it from the quarantine, an
 *             operator imported the pair, ...
 * with the time it was first and last seen. scan/relationship.c turns
 * what is stored into scored symbols; this module only keeps counts.
 *
 * Keys: both addresses are checked like every store address and kept in
 * one canonical form, so that the spelling of a message never splits a
 * pair: ASCII letters lower-cased in the local part and the domain, and a
 * domain in Unicode (U-labels) converted to its A-label form (IDNA2008,
 * libidn2): "Bob@Bücher.Example" is "bob@xn--bcher-kva.example". The
 * local mailbox is not required to exist (history can be imported before
 * the mailbox is created); the caller passes the mailbox an alias
 * resolves to when it knows it.
 *
 * Returns: STORE_OK, STORE_NOTFOUND (no such pair), STORE_INVALID (bad
 * address, bad argument), STORE_TEMPFAIL (backend could not answer; never
 * to be read as "no relationship"). Walks follow store_private.h: a
 * callback returning < 0 stops and that value is returned, > 0 stops with
 * STORE_OK; callbacks must not call back into the store; the struct they
 * get lives until they return.
 */
#ifndef MXG_STORE_REL_H
#define MXG_STORE_REL_H

#include "store/store.h"

enum store_rel_dir {
	STORE_REL_OUTBOUND = 0, /* our mailbox wrote to the remote address */
	STORE_REL_INBOUND = 1,	/* a positive signal about mail from the remote */
};

/* At most this many remote addresses per store_rel_record() call. */
#define STORE_REL_MAX_BATCH 1000
/* Upper bound of store_rel_domains()'s max. */
#define STORE_REL_MAX_DOMAINS 5000

struct store_rel {
	char local[STORE_ADDR_LEN];
	char remote[STORE_ADDR_LEN];
	int64_t outbound;
	int64_t inbound;
	int64_t first_seen;
	int64_t last_seen;
};

/* The counts of a group of pairs (store_rel_domain_get). */
struct store_rel_counts {
	int64_t pairs;
	int64_t outbound;
	int64_t inbound;
	int64_t last_seen; /* 0 when pairs is 0 */
};

typedef int (*store_rel_cb)(const struct store_rel *r, void *arg);
/* A correspondent's domain (canonical form) with its most recent contact. */
typedef int (*store_rel_domain_cb)(const char *domain, int64_t last_seen, void *arg);

/* Canonical form of an address (see above) into out. */
int store_rel_addr_norm(struct store *st, const char *address, char *out, size_t outlen) MXG_WUR;
/* Canonical form of a domain (lower case, A-labels) into out. */
int store_rel_domain_norm(struct store *st, const char *domain, char *out, size_t outlen) MXG_WUR;

/* Counts one message (or signal) in direction dir between local and each
 * of the n remote addresses, at time now: a new pair starts with
 * first_seen = last_seen = now. One transaction: an invalid address makes
 * the whole call STORE_INVALID and nothing is counted. A remote given
 * twice counts twice. */
int store_rel_record(struct store *st, const char *local, enum store_rel_dir dir,
		     const char *const *remotes, size_t n, int64_t now) MXG_WUR;
/* One pair; STORE_NOTFOUND when it was never seen. */
int store_rel_get(struct store *st, const char *local, const char *remote,
		  struct store_rel *out) MXG_WUR;
/* The pairs of one mailbox, most recently seen first. */
int store_rel_list(struct store *st, const char *local, store_rel_cb cb, void *arg) MXG_WUR;
/* Sums over every pair between a mailbox of local_domain and an address
 * at remote_domain or one of its subdomains ("vendor.example" also counts
 * "mail.vendor.example"). Zero counts (STORE_OK) when there is none. */
int store_rel_domain_get(struct store *st, const char *local_domain, const char *remote_domain,
			 struct store_rel_counts *out) MXG_WUR;
/* The distinct remote domains that mailboxes of local's domain correspond
 * with, at most max (1..STORE_REL_MAX_DOMAINS): those of local itself
 * first, then its colleagues', each group most recent first. */
int store_rel_domains(struct store *st, const char *local, size_t max, store_rel_domain_cb cb,
		      void *arg) MXG_WUR;
/* Removes one pair (STORE_NOTFOUND if absent). */
int store_rel_remove(struct store *st, const char *local, const char *remote) MXG_WUR;
/* Removes every pair last seen before the time before; *n gets how many
 * (n may be NULL). */
int store_rel_expire(struct store *st, int64_t before, size_t *n) MXG_WUR;

/* ---- for backends ------------------------------------------------------ */

/* Arguments arrive checked and in canonical form; local_domain and the
 * remote domain are the parts after the '@'. */
struct store_rel_ops {
	int (*record)(struct store *st, const char *local, enum store_rel_dir dir,
		      const char *const *remotes, size_t n, int64_t now);
	int (*get)(struct store *st, const char *local, const char *remote, struct store_rel *out);
	int (*list)(struct store *st, const char *local, store_rel_cb cb, void *arg);
	int (*domain_get)(struct store *st, const char *local_domain, const char *remote_domain,
			  struct store_rel_counts *out);
	int (*domains)(struct store *st, const char *local, size_t max, store_rel_domain_cb cb,
		       void *arg);
	int (*remove)(struct store *st, const char *local, const char *remote);
	int (*expire)(struct store *st, int64_t before, size_t *n);
};

#endif
