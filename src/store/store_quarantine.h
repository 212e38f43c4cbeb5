/* SPDX-License-Identifier: MIT */
/*
 * store_quarantine: messages held for a recipient instead of delivered.
 *
 * A message enters the quarantine in the same transaction that accepts it
 * (store_messages_commit with recipients whose quarantine_until is set),
 * so "250" means held as durably as queued. One entry is one (message,
 * recipient); the recipients of one message share one stored copy of the
 * message as received plus our trace headers, without any tagging.
 *
 * Release makes a new queued message of that copy for the entry's
 * recipient, unmodified, and marks the entry released; the entry and its
 * copy stay until they expire, so the dashboard can show what happened.
 * Expiry removes entries (held or released) whose time has come and every
 * copy no entry uses any more. Each step writes a message-log row.
 *
 * Queries are scoped: a filter on account, domain or recipient restricts
 * the walk (the API and dashboard always pass the caller's scope).
 */
#ifndef MXG_STORE_QUARANTINE_H
#define MXG_STORE_QUARANTINE_H

#include "store/store.h"

#define STORE_SUBJECT_LEN 256
#define STORE_REASON_LEN 256

/* What a quarantined message is held with (per message, at commit). */
struct store_quarantine_info {
	const void *data; /* the copy to keep (as received + trace headers) */
	size_t len;
	const char *subject;
	double score;
	const char *reason;  /* "spam", "virus: Eicar-Test-Signature", "dmarc", ... */
	const char *verdict; /* every symbol with its score and detail, one per line */
};

struct store_quarantine_entry {
	int64_t id;
	char queue_id[QUEUE_ID_LEN + 1];
	char rcpt[STORE_ADDR_LEN];
	char sender[STORE_ADDR_LEN];
	char subject[STORE_SUBJECT_LEN];
	char client_addr[64];
	char reason[STORE_REASON_LEN];
	char state[16]; /* "held", "released" */
	char released_to[QUEUE_ID_LEN + 1];
	double score;
	int64_t received_at;
	int64_t expires_at;
	int64_t size;
};

struct store_quarantine_query {
	const char *account;  /* exact account name, or NULL */
	const char *domain;   /* exact domain, or NULL */
	const char *rcpt;     /* exact recipient address, or NULL */
	const char *queue_id; /* exact, or NULL */
	const char *search;   /* substring of sender or subject, or NULL */
	bool held_only;	      /* leave out released entries */
	size_t limit;	      /* 0: 1000 */
};

typedef int (*store_quarantine_cb)(const struct store_quarantine_entry *e, void *arg);

/* Newest first. */
int store_quarantine_list(struct store *st, const struct store_quarantine_query *q,
			  store_quarantine_cb cb, void *arg) MXG_WUR;
/* One entry; with verdict and data non-NULL also its verdict text and the
 * held copy (malloc'd; the caller frees them). */
int store_quarantine_get(struct store *st, int64_t id, struct store_quarantine_entry *out,
			 char **verdict, void **data, size_t *len) MXG_WUR;
/* Queues the held copy for the entry's recipient under new_queue_id (a
 * fresh queue id) and marks the entry released by `by` (for the log).
 * STORE_NOTFOUND: no such entry; STORE_EXISTS: already released. */
int store_quarantine_release(struct store *st, int64_t id, const char *new_queue_id, const char *by,
			     int64_t now) MXG_WUR;
/* Removes an entry now (and its copy when no other entry uses it). */
int store_quarantine_delete(struct store *st, int64_t id, const char *by) MXG_WUR;
/* Removes every entry with expires_at <= now; *n gets how many. */
int store_quarantine_expire(struct store *st, int64_t now, size_t *n) MXG_WUR;
/* Entries still held (metrics). */
int store_quarantine_count(struct store *st, int64_t *n) MXG_WUR;

/* ---- for backends ------------------------------------------------------ */

struct store_quarantine_ops {
	int (*list)(struct store *st, const struct store_quarantine_query *q,
		    store_quarantine_cb cb, void *arg);
	int (*get)(struct store *st, int64_t id, struct store_quarantine_entry *out, char **verdict,
		   void **data, size_t *len);
	int (*release)(struct store *st, int64_t id, const char *new_queue_id, const char *by,
		       int64_t now);
	int (*remove)(struct store *st, int64_t id, const char *by);
	int (*expire)(struct store *st, int64_t now, size_t *n);
	int (*count)(struct store *st, int64_t *n);
};

#endif
