/* SPDX-License-Identifier: MIT */
/*
 * store_private: what store.c shares with the backends, and nothing else
 * sees.
 *
 * A backend allocates its own connection struct that embeds struct store as
 * its FIRST member (so a struct store * converts to it), fills in ops and
 * implements every operation of store.h. store.c validates and normalises
 * the arguments (NULL checks, domain lower-cased, address syntax) before it
 * calls an op, so the backends share the same input rules; the backends
 * map their own errors to enum store_rc and describe them with
 * store_set_error().
 *
 * Callback walks (the *_list and *_search operations): a callback returning
 * a negative value stops the walk and that value is returned; a positive
 * value stops the walk and STORE_OK is returned. A callback must not call
 * back into the same struct store (backends may reuse cached statements).
 */
#ifndef MXG_STORE_PRIVATE_H
#define MXG_STORE_PRIVATE_H

#include <stdarg.h>

#include <math.h>

#include "store/store.h"
#include "store/store_bayes.h"
#include "store/store_dkim.h"
#include "store/store_dmarc.h"
#include "store/store_policy.h"
#include "store/store_quarantine.h"
#include "store/store_rel.h"

#define STORE_ERR_LEN 512

struct store_ops {
	const char *name;
	void (*close)(struct store *st);
	int (*migrate)(struct store *st);
	int (*schema_version)(struct store *st);
	int (*ping)(struct store *st);

	int (*account_ensure)(struct store *st, const char *account, int64_t *id);
	int (*domain_add)(struct store *st, const char *account, const char *domain);
	int (*domain_remove)(struct store *st, const char *domain);
	int (*domain_get)(struct store *st, const char *domain, struct store_domain *out);
	int (*domain_list)(struct store *st, store_domain_cb cb, void *arg);
	int (*domain_set_routes)(struct store *st, const char *domain,
				 const struct store_route *routes, size_t n);
	int (*domain_set_catchall)(struct store *st, const char *domain, const char *mailbox);
	int (*domain_set_require_tls)(struct store *st, const char *domain, bool on);
	int (*reputation_get)(struct store *st, const char *const *keys, size_t n, int64_t now,
			      int64_t half_life, struct store_reputation *out);
	int (*reputation_record)(struct store *st, const char *const *keys, size_t n, bool spam,
				 int64_t now, int64_t half_life);
	int (*reputation_set_action)(struct store *st, const char *key, enum store_rep_action a,
				     const char *note, int64_t now);
	int (*reputation_remove)(struct store *st, const char *key);
	int (*reputation_list)(struct store *st, int64_t now, int64_t half_life, store_rep_cb cb,
			       void *arg);

	int (*mailbox_add)(struct store *st, const char *address);
	int (*mailbox_remove)(struct store *st, const char *address);
	int (*mailbox_list)(struct store *st, const char *domain, store_mailbox_cb cb, void *arg);
	int (*alias_add)(struct store *st, const char *alias, const char *mailbox);
	int (*alias_remove)(struct store *st, const char *alias);
	int (*rcpt_lookup)(struct store *st, const char *address, struct store_rcpt *out);

	int (*messages_commit)(struct store *st, const struct store_message *const *msgs, size_t n);
	int (*queue_claim)(struct store *st, const char *owner, int64_t now, int64_t lease,
			   struct store_delivery *out, size_t max, size_t *n);
	int (*message_load)(struct store *st, int64_t message_id, void **data, size_t *len);
	int (*queue_record)(struct store *st, const struct store_outcome *o, size_t n);
	int (*queue_release)(struct store *st, const char *owner);
	int (*queue_release_node)(struct store *st, const char *node);
	int (*queue_list)(struct store *st, const char *queue_id, store_queue_cb cb, void *arg);
	int (*queue_retry)(struct store *st, const char *queue_id, int64_t now, size_t *n);
	int (*queue_delete)(struct store *st, const char *queue_id);
	int (*queue_count)(struct store *st, int64_t *n);

	int (*log_add)(struct store *st, const struct store_log_entry *e);
	int (*log_search)(struct store *st, const struct store_log_query *q, store_log_cb cb,
			  void *arg);

	/* features: each table is defined in the feature's header */
	const struct store_policy_ops *policy;
	const struct store_quarantine_ops *quarantine;
	const struct store_bayes_ops *bayes;
	const struct store_rel_ops *rel;
	const struct store_dkim_ops *dkim;
	const struct store_dmarc_ops *dmarc;
};

/* The common head every backend connection starts with. */
struct store {
	const struct store_ops *ops;
	char err[STORE_ERR_LEN];
};

/* Input rules shared by every public function (store.c): each returns
 * STORE_OK or STORE_INVALID with the error set. */
int store_invalid(struct store *st, const char *why);
bool store_text_ok(const char *s);
bool store_queue_id_ok(const char *qid);
int store_account_ok(struct store *st, const char *account);
/* A domain, checked and lower-cased into out. */
int store_norm_domain(struct store *st, const char *domain, char *out, size_t outlen);
/* An address, checked and rebuilt as local@domain (domain lower-cased). */
int store_norm_addr(struct store *st, const char *address, char *out, size_t outlen);

/* Records a description of the last error for store_last_error(). */
void store_set_error(struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies local into key, ASCII letters lower-cased (UTF-8 bytes untouched):
 * the form local parts are compared in. */
int store_local_key(const char *local, char *key, size_t keylen) MXG_WUR;

/* Maps a callback's return value to the walk's result (see above). */
static inline int store_cb_result(int cbrc)
{
	return cbrc < 0 ? cbrc : STORE_OK;
}

/* Backends. */
int store_sqlite_open(const char *path, int busy_timeout_ms, struct store **out, char *err,
		      size_t errlen) MXG_WUR;

/* A count that halves every half_life seconds since it was last written. */
static inline double store_rep_decay(double v, int64_t updated, int64_t now, int64_t half_life)
{
	if (v <= 0 || half_life <= 0 || now <= updated)
		return v;
	return v * exp2(-(double)(now - updated) / (double)half_life);
}

#endif
