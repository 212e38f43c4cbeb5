/* SPDX-License-Identifier: MIT */
/*
 * store: the one interface to mxguard's persistent state.
 *
 * Tenancy (account > domain > mailbox, aliases, catch-alls, routes), the
 * message queue (message bodies and per-recipient delivery state) and the
 * message log all live behind these functions. Two backends implement them
 * with the same schema and the same tests: SQLite (embedded default,
 * "sqlite:/path/file.db") and PostgreSQL (cluster, "postgresql://...").
 * Nothing here may assume one backend: no SQL, no file paths, no handles
 * leak through this header.
 *
 * Threading: a struct store is one connection. Use it from one thread at a
 * time; open one per thread or per process (never share across fork()).
 *
 * Results: every function returns STORE_OK (0) or a negative code:
 *   STORE_NOTFOUND  the thing asked for does not exist (a permanent answer)
 *   STORE_EXISTS    an add that collides with an existing row
 *   STORE_INVALID   the caller passed something malformed
 *   STORE_TEMPFAIL  the backend could not answer (I/O error, disk full,
 *                   lock time-out, connection lost). Callers turn it into a
 *                   4xx; it never means "not found" or "accept".
 * On STORE_TEMPFAIL inside a write, nothing of that call is kept.
 *
 * Strings passed in are copied; strings handed to callbacks live until the
 * callback returns. Addresses and domain names are stored lower-cased in
 * their domain part; local parts are matched case-insensitively (ASCII).
 * Times are Unix seconds.
 */
#ifndef MXG_STORE_H
#define MXG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND = -1,
	STORE_EXISTS = -2,
	STORE_INVALID = -3,
	STORE_TEMPFAIL = -4,
};

#define STORE_DOMAIN_LEN 256
#define STORE_ADDR_LEN 512 /* local@domain, UTF-8 */
#define STORE_REPLY_LEN 512
#define STORE_MAX_ROUTES 8
#define STORE_SCHEMA_VERSION 9

struct store;

/* Opens (and for SQLite creates) the store at url. err gets a reason. */
int store_open(const char *url, int busy_timeout_ms, struct store **out, char *err,
	       size_t errlen) MXG_WUR;
void store_close(struct store *st);
/* Brings the schema to STORE_SCHEMA_VERSION, one versioned migration at a
 * time, each in its own transaction. Idempotent. */
int store_migrate(struct store *st) MXG_WUR;
/* Current schema version, or a negative code. */
int store_schema_version(struct store *st);
/* A cheap round trip that proves the backend answers (readiness). */
int store_ping(struct store *st) MXG_WUR;
/* A short description of the last backend error, for logs. */
const char *store_last_error(struct store *st);

/* ---- tenancy ---------------------------------------------------------- */

struct store_route {
	char host[STORE_DOMAIN_LEN];
	uint16_t port;
};

struct store_domain {
	int64_t id;
	char name[STORE_DOMAIN_LEN];
	char account[128];
	char catchall[STORE_ADDR_LEN]; /* "" when none */
	struct store_route routes[STORE_MAX_ROUTES];
	size_t nroutes;	  /* tried in this order */
	bool require_tls; /* senders must use STARTTLS to reach this domain */
};

struct store_mailbox {
	int64_t id;
	char address[STORE_ADDR_LEN];
	char target[STORE_ADDR_LEN]; /* for aliases: the mailbox it points to; else "" */
};

typedef int (*store_domain_cb)(const struct store_domain *d, void *arg);
typedef int (*store_mailbox_cb)(const struct store_mailbox *m, void *arg);

/* Creates the account if it does not exist yet. */
int store_account_ensure(struct store *st, const char *account, int64_t *id) MXG_WUR;
int store_domain_add(struct store *st, const char *account, const char *domain) MXG_WUR;
/* Removes the domain with its mailboxes and aliases. Queued mail stays. */
int store_domain_remove(struct store *st, const char *domain) MXG_WUR;
int store_domain_get(struct store *st, const char *domain, struct store_domain *out) MXG_WUR;
int store_domain_list(struct store *st, store_domain_cb cb, void *arg) MXG_WUR;
/* Replaces the domain's routes with routes[0..n). */
int store_domain_set_routes(struct store *st, const char *domain, const struct store_route *routes,
			    size_t n) MXG_WUR;
/* Sets (mailbox != NULL, must exist in the domain) or clears the catch-all. */
int store_domain_set_catchall(struct store *st, const char *domain, const char *mailbox) MXG_WUR;

/* Whether senders must use TLS (STARTTLS) to deliver to the domain. */
int store_domain_set_require_tls(struct store *st, const char *domain, bool on) MXG_WUR;

/* The domain of address must exist (STORE_NOTFOUND otherwise). */
int store_mailbox_add(struct store *st, const char *address) MXG_WUR;
int store_mailbox_remove(struct store *st, const char *address) MXG_WUR;
/* Lists mailboxes and aliases (target set) of one domain, or all (NULL). */
int store_mailbox_list(struct store *st, const char *domain, store_mailbox_cb cb,
		       void *arg) MXG_WUR;
/* alias@domain -> an existing mailbox (any hosted domain). */
int store_alias_add(struct store *st, const char *alias, const char *mailbox) MXG_WUR;
int store_alias_remove(struct store *st, const char *alias) MXG_WUR;

enum store_rcpt_class {
	STORE_RCPT_LOCAL = 1,		/* a mailbox, alias or catch-all of a hosted domain */
	STORE_RCPT_UNKNOWN_MAILBOX = 2, /* hosted domain, no such mailbox: 550 5.1.1 */
	STORE_RCPT_FOREIGN_DOMAIN = 3,	/* not a hosted domain: 554 5.7.1 (no relay) */
};

struct store_rcpt {
	enum store_rcpt_class cls;
	int64_t domain_id;
	int64_t mailbox_id;	      /* the final mailbox after alias/catch-all */
	char mailbox[STORE_ADDR_LEN]; /* its address */
	bool require_tls;	      /* the domain refuses mail sent without TLS */
};

/* Classifies a recipient address. Returns STORE_OK with out->cls set, or
 * STORE_INVALID / STORE_TEMPFAIL. */
int store_rcpt_lookup(struct store *st, const char *address, struct store_rcpt *out) MXG_WUR;

/* ---- queue ------------------------------------------------------------ */

enum store_msg_flags {
	STORE_MSG_8BITMIME = 1 << 0,
	STORE_MSG_SMTPUTF8 = 1 << 1,
	STORE_MSG_DSN = 1 << 2,	  /* a delivery status notification we made */
	STORE_MSG_LOCAL = 1 << 3, /* made by mxguard itself (reports, notices) */
	STORE_MSG_OUTBOUND =
	    1 << 4, /* from a trusted relay (limits.allow_networks): ours to sign */
};

struct store_msg_rcpt {
	const char *address; /* as given in RCPT TO (domain lower-cased) */
	int64_t mailbox_id;  /* 0 for recipients outside hosted domains (DSNs) */
	bool tagged;	     /* gets the tagged copy (tagged_data) */
	/* > 0: held in the quarantine until then instead of queued */
	int64_t quarantine_until;
};

struct store_quarantine_info;

/* One accepted message, ready to commit. data is the complete message as
 * it will be delivered (our trace headers included), CRLF line endings,
 * not dot-stuffed. */
struct store_message {
	char queue_id[QUEUE_ID_LEN + 1];
	const char *sender; /* "" for the null sender */
	const char *client_addr;
	const char *helo;
	const char *tls; /* "TLSv1.3 TLS_AES_256_GCM_SHA384", or NULL/"" (clear text) */
	int64_t received_at;
	unsigned flags; /* enum store_msg_flags */
	const struct store_msg_rcpt *rcpts;
	size_t nrcpts;
	const void *data;
	size_t len;
	/* the copy for tagged recipients, queued as its own message */
	char tagged_queue_id[QUEUE_ID_LEN + 1];
	const void *tagged_data;
	size_t tagged_len;
	/* for quarantined recipients (store_quarantine.h) */
	const struct store_quarantine_info *quarantine;
};

/* Commits msgs[0..n) in one transaction and one fsync (group commit): the
 * message, its recipients (state queued, due now) and a "received" log row
 * per recipient. Tagged recipients are queued with the tagged copy under
 * tagged_queue_id; quarantined ones go to the quarantine with
 * quarantine->data ("quarantined" log row). All or nothing: on any error
 * none of them is stored. */
int store_messages_commit(struct store *st, const struct store_message *const *msgs,
			  size_t n) MXG_WUR;

/* One recipient claimed for delivery. */
struct store_delivery {
	int64_t rcpt_id;
	int64_t message_id;
	char queue_id[QUEUE_ID_LEN + 1];
	char sender[STORE_ADDR_LEN];
	char rcpt[STORE_ADDR_LEN];
	char domain[STORE_DOMAIN_LEN]; /* the domain part of rcpt */
	unsigned flags;
	int attempts; /* attempts made before this one */
	int64_t received_at;
	int64_t size;
};

/* Claims up to max due recipients (state queued, next attempt <= now,
 * lease expired or absent) for owner until now + lease. Rows claimed by a
 * crashed owner become due again when the lease runs out, so a claim is
 * at-least-once. Ordered by next attempt, then message. */
int store_queue_claim(struct store *st, const char *owner, int64_t now, int64_t lease,
		      struct store_delivery *out, size_t max, size_t *n) MXG_WUR;

/* Loads a message body (malloc'd; the caller frees it). */
int store_message_load(struct store *st, int64_t message_id, void **data, size_t *len) MXG_WUR;

enum store_outcome_kind {
	STORE_DELIVERED = 1,
	STORE_DEFERRED = 2, /* try again at next_attempt */
	STORE_BOUNCED = 3,  /* permanent failure or expiry: final */
};

struct store_outcome {
	int64_t rcpt_id;
	enum store_outcome_kind kind;
	int64_t next_attempt; /* STORE_DEFERRED only */
	const char *host;     /* "host:port" tried, or "" */
	const char *reply;    /* the remote reply or our reason */
};

/* Records outcomes in one transaction: recipient state, attempt count,
 * lease released, one message-log row each ("delivered", "deferred",
 * "bounced"). A message whose recipients are all final is removed from the
 * queue (its log rows stay). Returns STORE_OK or STORE_TEMPFAIL. */
int store_queue_record(struct store *st, const struct store_outcome *o, size_t n) MXG_WUR;

/* Releases leases held by owner without recording an attempt (shutdown). */
int store_queue_release(struct store *st, const char *owner) MXG_WUR;
/* Releases every lease of one node: owners named "node:...". A node calls
 * it when it (re)starts or after its delivery worker died, since no process
 * of that node can still be working on them; it makes those recipients due
 * at once instead of after the lease. */
int store_queue_release_node(struct store *st, const char *node) MXG_WUR;

struct store_queue_entry {
	char queue_id[QUEUE_ID_LEN + 1];
	char sender[STORE_ADDR_LEN];
	char rcpt[STORE_ADDR_LEN];
	const char *state; /* "queued", "delivered", "bounced" */
	int attempts;
	int64_t received_at;
	int64_t next_attempt;
	int64_t size;
	char last_reply[STORE_REPLY_LEN];
	bool leased;
};

typedef int (*store_queue_cb)(const struct store_queue_entry *e, void *arg);

/* Every recipient still in the queue, or only those of queue_id. */
int store_queue_list(struct store *st, const char *queue_id, store_queue_cb cb, void *arg) MXG_WUR;
/* Makes the queued recipients of queue_id (all, if NULL) due now. *n gets
 * how many. */
int store_queue_retry(struct store *st, const char *queue_id, int64_t now, size_t *n) MXG_WUR;
/* Removes a message from the queue without delivering it (logged). */
int store_queue_delete(struct store *st, const char *queue_id) MXG_WUR;
/* Number of recipients waiting for delivery (for metrics and tests). */
int store_queue_count(struct store *st, int64_t *n) MXG_WUR;

/* ---- IP reputation ---------------------------------------------------- */

/* Spam and ham verdicts counted per client address ("192.0.2.7") and per
 * network ("192.0.2.0/24", "2001:db8:1:2::/64"), decaying exponentially
 * with the caller's half-life, plus an operator's allow or block. */
enum store_rep_action {
	STORE_REP_NONE = 0,
	STORE_REP_ALLOW = 1,
	STORE_REP_BLOCK = 2,
};

#define STORE_REP_KEY_LEN 64

struct store_reputation {
	char key[STORE_REP_KEY_LEN];
	double spam, ham; /* decayed to `now` */
	enum store_rep_action action;
	char note[256];
	int64_t updated_at; /* 0: never seen */
};

typedef int (*store_rep_cb)(const struct store_reputation *r, void *arg);

/* Fills out[i] for keys[i] (all zero when unknown). */
int store_reputation_get(struct store *st, const char *const *keys, size_t n, int64_t now,
			 int64_t half_life, struct store_reputation *out) MXG_WUR;
/* Adds one spam (or ham) verdict to every key, decaying what was there. */
int store_reputation_record(struct store *st, const char *const *keys, size_t n, bool spam,
			    int64_t now, int64_t half_life) MXG_WUR;
/* Sets the operator's allow/block (STORE_REP_NONE clears it). */
int store_reputation_set_action(struct store *st, const char *key, enum store_rep_action a,
				const char *note, int64_t now) MXG_WUR;
int store_reputation_remove(struct store *st, const char *key) MXG_WUR;
int store_reputation_list(struct store *st, int64_t now, int64_t half_life, store_rep_cb cb,
			  void *arg) MXG_WUR;

/* ---- message log ------------------------------------------------------ */

struct store_log_entry {
	int64_t ts;
	const char *queue_id;
	const char *event; /* received, delivered, deferred, bounced, deleted, dsn, ... */
	const char *sender;
	const char *rcpt;
	const char *detail;
};

struct store_log_query {
	const char *queue_id; /* exact, or NULL */
	const char *sender;   /* substring, case-insensitive, or NULL */
	const char *rcpt;     /* substring, case-insensitive, or NULL */
	int64_t since;	      /* 0: no bound */
	size_t limit;	      /* 0: 1000 */
};

typedef int (*store_log_cb)(const struct store_log_entry *e, void *arg);

int store_log_add(struct store *st, const struct store_log_entry *e) MXG_WUR;
/* Oldest first. A callback returning non-zero stops the walk. */
int store_log_search(struct store *st, const struct store_log_query *q, store_log_cb cb,
		     void *arg) MXG_WUR;

/* Splits "local@domain" at the last '@'; domain is lower-cased into dom.
 * Returns STORE_INVALID for anything without both parts. */
int store_addr_split(const char *address, char *local, size_t locallen, char *dom,
		     size_t domlen) MXG_WUR;

#endif
