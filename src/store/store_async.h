/* SPDX-License-Identifier: MIT */
/*
 * store_async: the store, off the event loop.
 *
 * An SMTP worker's libevent loop must never block on the store (an fsync
 * takes milliseconds; a PostgreSQL round trip more). store_async runs one
 * thread with its own store connection. The loop submits jobs; the thread
 * runs them in order and posts completions back through a pipe; callbacks
 * run on the loop thread.
 *
 * Group commit: the thread takes every commit job waiting in the queue (up
 * to cfg->store.commit_batch) and commits them in one transaction with one
 * fsync. If a batch fails, each message is retried alone, so one bad
 * message cannot fail its neighbours. A callback with STORE_OK means the
 * message is durable; anything else means it is not stored at all.
 *
 * Lifetimes: the address string is copied; the struct store_message and
 * everything it points to must stay valid until the commit callback runs.
 * Every submitted job gets exactly one callback, also at shutdown.
 */
#ifndef MXG_STORE_ASYNC_H
#define MXG_STORE_ASYNC_H

#include <event2/event.h>

#include "core/config.h"
#include "core/metrics.h"
#include "store/store.h"

struct store_async;

typedef void (*store_async_lookup_cb)(int rc, const struct store_rcpt *r, void *arg);
typedef void (*store_async_commit_cb)(int rc, void *arg);
/* rep[0] is the address, rep[1] its network. */
typedef int (*store_async_fn)(struct store *st, void *arg);
typedef void (*store_async_call_cb)(int rc, void *arg);
typedef void (*store_async_rep_cb)(int rc, const struct store_reputation rep[2], void *arg);

struct store_async *store_async_new(struct event_base *base, const struct config *cfg,
				    struct metrics *m, char *err, size_t errlen);
/* Returns 0 when queued (the callback will run) or -ENOMEM. */
int store_async_lookup(struct store_async *sa, const char *address, store_async_lookup_cb cb,
		       void *arg) MXG_WUR;
int store_async_commit(struct store_async *sa, const struct store_message *msg,
		       store_async_commit_cb cb, void *arg) MXG_WUR;
/* Reputation of a client (keys from cidr_rep_keys). */
int store_async_reputation(struct store_async *sa, const char *ip, const char *net,
			   int64_t half_life, store_async_rep_cb cb, void *arg) MXG_WUR;
/* Counts one spam or ham verdict for a client; no callback. */
int store_async_reputation_record(struct store_async *sa, const char *ip, const char *net,
				  bool spam, int64_t half_life) MXG_WUR;
/* Runs fn(store, arg) on the store thread, in order with the other jobs,
 * then cb(rc, arg) on the loop (cb may be NULL: fire and forget; arg must
 * then stay valid until fn has run, or be owned and freed by fn). fn must
 * not block on anything but the store. Returns 0 or -ENOMEM. */
int store_async_call(struct store_async *sa, store_async_fn fn, store_async_call_cb cb,
		     void *arg) MXG_WUR;
/* Jobs submitted and not yet called back. */
size_t store_async_pending(const struct store_async *sa);
/* Finishes the queued jobs, runs their callbacks, stops the thread. */
void store_async_free(struct store_async *sa);

#endif
