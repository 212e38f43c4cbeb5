/* SPDX-License-Identifier: MIT */
/*
 * metrics: counters shared by the master and every worker.
 *
 * The master maps one anonymous shared page before it forks, so workers
 * count with relaxed atomic adds and the http worker renders them in the
 * Prometheus text format. Nothing here allocates after metrics_new().
 * The worker table is written by the master only and read by /readyz.
 */
#ifndef MXG_METRICS_H
#define MXG_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum metric_id {
	M_SMTP_CONNECTIONS,
	M_SMTP_SESSIONS_ACTIVE, /* gauge */
	M_SMTP_SESSIONS_REFUSED,
	M_SMTP_PREGREET,
	M_SMTP_MESSAGES_ACCEPTED,
	M_SMTP_MESSAGES_REJECTED,
	M_SMTP_RCPTS_ACCEPTED,
	M_SMTP_RCPTS_REJECTED,
	M_SMTP_TEMPFAILS,
	M_SMTP_BYTES_ACCEPTED,
	M_SMTP_PROTOCOL_ERRORS,
	M_SMTP_TIMEOUTS,
	M_STORE_COMMITS,
	M_STORE_COMMITTED_MESSAGES,
	M_STORE_ERRORS,
	M_DELIVERY_ATTEMPTS,
	M_DELIVERY_DELIVERED,
	M_DELIVERY_DEFERRED,
	M_DELIVERY_BOUNCED,
	M_DELIVERY_DSN_CREATED,
	M_DELIVERY_QUEUE_SIZE, /* gauge, set by the delivery worker */
	M_WORKER_RESTARTS,
	M_SCAN_MESSAGES,
	M_SCAN_REJECTED,
	M_SCAN_TEMPFAILED,
	M_SCAN_TIMEOUTS,
	M_DNS_QUERIES,	     /* resolver requests */
	M_DNS_CACHE_HITS,    /* answered from the resolver cache */
	M_DNS_CACHE_MISSES,  /* sent, or joined a look-up in flight */
	M_DNS_TIMEOUTS,	     /* requests that ran out of time */
	M_DNSBL_CHECKS,	     /* client addresses checked */
	M_DNSBL_QUERIES,     /* zone look-ups */
	M_DNSBL_HITS,	     /* zones that listed the client */
	M_DNSBL_TIMEOUTS,    /* zones skipped for the budget */
	M_DNSBL_REJECTS,     /* checks whose score reached reject_score */
	M_AV_CLAMD_SCANS,    /* INSTREAM requests answered */
	M_AV_CLAMD_FOUND,    /* ... that named a threat */
	M_AV_CLAMD_ERRORS,   /* refused, garbage, ERROR replies, lost connections */
	M_AV_CLAMD_TIMEOUTS, /* no answer in av.clamd_timeout */
	M_AV_CLAMD_SKIPPED,  /* parts over av.clamd_max_stream, not sent */
	M_AV_YARA_SCANS,     /* buffers scanned by YARA and the hash lists */
	M_AV_YARA_FOUND,     /* YARA rule matches */
	M_AV_YARA_ERRORS,
	M_AV_YARA_TIMEOUTS,
	M_AV_HASH_FOUND,      /* hash list matches */
	M_AV_FILETYPE_HITS,   /* executables, macros, encrypted archives seen */
	M_AV_REJECTS,	      /* messages refused by the AV layer */
	M_AV_TEMPFAILS,	      /* messages deferred because an engine failed */
	M_AV_FAILURES_PASSED, /* engine failures let through (on_failure = pass) */
	M_POLICY_BLOCKED,     /* recipients refused by a block list */
	M_POLICY_TAGGED,      /* recipients given the tagged copy */
	M_POLICY_QUARANTINED, /* recipients whose copy went to the quarantine */
	M_POLICY_REJECTED,    /* messages refused at DATA for their SpamScore */
	M_QUARANTINE_EXPIRED, /* quarantine entries removed at the end of retention */
	M_QUARANTINE_HELD,    /* gauge, set by the delivery worker */
	M_COUNT
};

#define METRICS_MAX_WORKERS 64

enum worker_kind {
	WORKER_NONE = 0,
	WORKER_SMTP,
	WORKER_DELIVERY,
	WORKER_HTTP,
};

struct metrics_worker {
	int kind; /* enum worker_kind */
	int index;
	pid_t pid; /* 0 while not running */
	int64_t started;
	int64_t restarts;
};

struct metrics {
	int64_t counters[M_COUNT];
	/* open SMTP sessions per smtp worker index; the master zeroes a
	 * worker's count when it dies (M_SMTP_SESSIONS_ACTIVE is their sum) */
	int64_t smtp_active[METRICS_MAX_WORKERS];
	int64_t started;
	struct metrics_worker workers[METRICS_MAX_WORKERS];
	size_t nworkers;
};

/* Maps the shared page; fatal() if that fails (start-up only). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

static inline void metrics_add(struct metrics *m, enum metric_id id, int64_t delta)
{
	if (m)
		__atomic_add_fetch(&m->counters[id], delta, __ATOMIC_RELAXED);
}

static inline void metrics_set(struct metrics *m, enum metric_id id, int64_t v)
{
	if (m)
		__atomic_store_n(&m->counters[id], v, __ATOMIC_RELAXED);
}

static inline int64_t metrics_get(const struct metrics *m, enum metric_id id)
{
	return __atomic_load_n(&m->counters[id], __ATOMIC_RELAXED);
}

static inline void metrics_session_add(struct metrics *m, int worker, int64_t delta)
{
	if (m && worker >= 0 && worker < METRICS_MAX_WORKERS)
		__atomic_add_fetch(&m->smtp_active[worker], delta, __ATOMIC_RELAXED);
}

/* Open SMTP sessions on the whole node. */
int64_t metrics_sessions_active(const struct metrics *m);

/* Renders every counter in the Prometheus text exposition format into buf.
 * Returns the length written (truncated to len - 1 if it does not fit). */
size_t metrics_render(const struct metrics *m, char *buf, size_t len);

#endif
