/* SPDX-License-Identifier: MIT */
/*
 * delivery: the delivery worker (queue runner and SMTP client).
 *
 * The main thread owns the worker's store connection: it claims due
 * recipients, groups them by message and destination into jobs, hands the
 * jobs to a pool of delivery threads, and records what comes back (DSNs
 * first, then the outcomes, in one batch). Pool threads never write to the
 * store; each opens its own connection to load message bodies.
 *
 * A destination is the list of hosts a job goes to: a hosted domain's
 * routes, the relayhost, or the MX hosts of a foreign domain. At most
 * delivery.per_destination threads work on one destination at a time. A
 * thread that finishes a transaction keeps its connection and takes the
 * next job for the same destination after RSET; a connection idle for
 * DL_IDLE_MS is closed.
 *
 * Losing nothing: an outcome that cannot be recorded leaves the lease in
 * place; when it runs out the recipient is claimed again (at-least-once).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "auth/dkim_keys.h"
#include "auth/dmarc_report.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "daemon/worker.h"
#include "net/dns_mx.h"
#include "net/smtp_client.h"
#include "queue/dsn.h"
#include "store/store.h"
#include "store/store_quarantine.h"

#define DL_IDLE_MS 5000
#define DL_POLL_MS 1000
#define DL_QUEUE_COUNT_EVERY 10		/* seconds between M_DELIVERY_QUEUE_SIZE updates */
#define DL_QUARANTINE_EXPIRE_EVERY 3600 /* seconds between quarantine expiry runs */
#define DL_MAX_TRIES 10			/* addresses tried per job and attempt */
#define DL_KEY_LEN (STORE_MAX_ROUTES * (STORE_DOMAIN_LEN + 8) + 16)
#define DL_PEER_LEN 320

enum dl_mode {
	DL_ROUTES = 1, /* a hosted domain's routes, in order */
	DL_RELAY = 2,  /* delivery.relayhost */
	DL_MX = 3,     /* MX look-up of the recipient domain */
	DL_NOROUTE = 4 /* hosted, but no route configured: defer */
};

/* What the worker shares with its threads; read-only once they run. */
struct dl_env {
	const struct config *cfg;
	struct metrics *metrics;
	struct smtp_client_opts smtp;
	struct dns_opts dns;
	struct route_host {
		char host[STORE_DOMAIN_LEN];
		uint16_t port;
	} relay;
	bool has_relay;
	struct dkim_signer *signer; /* DKIM keys of hosted domains (locked inside) */
};

struct dl_rcpt {
	struct store_delivery d;
	enum store_outcome_kind kind;
	int64_t next_attempt;
	bool record; /* false: leave the lease to run out */
	char host[DL_PEER_LEN];
	char remote[STORE_DOMAIN_LEN]; /* the host name that answered, for DSNs */
	char status[16];	       /* enhanced status of a bounce */
	char reply[STORE_REPLY_LEN];
};

struct dl_dest {
	struct dl_dest *next;
	char key[DL_KEY_LEN];
	int active; /* threads working on it or holding a connection to it */
	int refs;   /* jobs queued or running */
};

struct dl_job {
	struct dl_job *next;
	struct dl_dest *dest;
	enum dl_mode mode;
	char domain[STORE_DOMAIN_LEN];
	struct store_route routes[STORE_MAX_ROUTES];
	size_t nroutes;
	int64_t message_id;
	struct dl_rcpt *rcpts;
	size_t nrcpts, cap;
	char *headers; /* the original header, when a DSN may be needed */
	size_t headers_len;
};

struct dl_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dl_job *head, *tail; /* queued, FIFO */
	size_t queued_rcpts;
	struct dl_job *done;
	struct dl_dest *dests;
	bool stopping;
	int wake_rd, wake_wr;
	const struct dl_env *env;
	pthread_t *threads;
	size_t nthreads;
};

struct dl_thread_state {
	struct dl_pool *pool;
	struct store *st;
	struct smtp_conn *conn;
	struct dl_dest *conn_dest;
};

/* ---- small helpers ------------------------------------------------------ */

static uint32_t rnd32(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)time_mono_us();
	return r;
}

/* now + min(retry_max, retry_min * 2^attempts), plus up to 10% jitter. */
static int64_t retry_at(const struct config *cfg, int64_t now, int attempts)
{
	int64_t delay = cfg->delivery.retry_min;

	for (int i = 0; i < attempts && delay < cfg->delivery.retry_max; i++)
		delay *= 2;
	if (delay > cfg->delivery.retry_max)
		delay = cfg->delivery.retry_max;
	if (delay >= 10)
		delay += (int64_t)(rnd32() % (uint32_t)(delay / 10 + 1));
	return now + delay;
}

static void free_job(struct dl_job *j)
{
	if (!j)
		return;
	free(j->rcpts);
	free(j->headers);
	free(j);
}

/* "name[ip]:port" -> "name" (or the ip when there is no name). */
static void peer_name(const char *peer, char *out, size_t len)
{
	const char *b = strchr(peer, '[');

	if (b == peer) {
		const char *e = strchr(peer, ']');

		(void)str_copyn(out, len, peer + 1, e ? (size_t)(e - peer - 1) : strlen(peer + 1));
	} else {
		(void)str_copyn(out, len, peer, b ? (size_t)(b - peer) : strcspn(peer, ":"));
	}
}

/* ---- pool --------------------------------------------------------------- */

static void dest_put_locked(struct dl_pool *p, struct dl_dest *d)
{
	if (d->refs > 0 || d->active > 0)
		return;
	for (struct dl_dest **pp = &p->dests; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			free(d);
			return;
		}
}

static struct dl_dest *dest_get_locked(struct dl_pool *p, const char *key)
{
	struct dl_dest *d;

	for (d = p->dests; d; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	(void)str_copy(d->key, sizeof(d->key), key);
	d->next = p->dests;
	p->dests = d;
	return d;
}

/* The next job this thread may run: one for the destination it holds a
 * connection to, else the oldest whose destination is under its limit. */
static struct dl_job *pick_locked(struct dl_pool *p, const struct dl_dest *held)
{
	int64_t limit = p->env->cfg->delivery.per_destination;
	struct dl_job **pp, *j = NULL;

	if (p->stopping)
		return NULL;
	if (held)
		for (pp = &p->head; *pp; pp = &(*pp)->next)
			if ((*pp)->dest == held) {
				j = *pp;
				goto found;
			}
	for (pp = &p->head; *pp; pp = &(*pp)->next)
		if ((*pp)->dest->active < limit) {
			j = *pp;
			j->dest->active++;
			goto found;
		}
	return NULL;
found:
	*pp = j->next;
	if (p->tail == j) {
		p->tail = NULL;
		for (struct dl_job *t = p->head; t; t = t->next)
			p->tail = t;
	}
	j->next = NULL;
	p->queued_rcpts -= j->nrcpts;
	return j;
}

/* Closes the thread's idle connection; called and returns with the lock. */
static void drop_conn_locked(struct dl_thread_state *t)
{
	struct dl_pool *p = t->pool;
	struct smtp_conn *c = t->conn;
	struct dl_dest *d = t->conn_dest;

	t->conn = NULL;
	t->conn_dest = NULL;
	if (c) {
		pthread_mutex_unlock(&p->mu);
		smtp_conn_close(c);
		pthread_mutex_lock(&p->mu);
	}
	if (d) {
		d->active--;
		dest_put_locked(p, d);
		/* a waiting thread may now be under this destination's limit */
		pthread_cond_broadcast(&p->cv);
	}
}

static void run_job(struct dl_thread_state *t, struct dl_job *j);

static void *pool_thread(void *arg)
{
	struct dl_thread_state *t = arg;
	struct dl_pool *p = t->pool;
	struct timespec idle_until = {0};

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct dl_job *j = pick_locked(p, t->conn_dest);

		if (!j) {
			if (p->stopping)
				break;
			if (t->conn) {
				struct timespec now;

				clock_gettime(CLOCK_MONOTONIC, &now);
				if (now.tv_sec > idle_until.tv_sec ||
				    (now.tv_sec == idle_until.tv_sec &&
				     now.tv_nsec >= idle_until.tv_nsec))
					drop_conn_locked(t);
				else
					(void)pthread_cond_timedwait(&p->cv, &p->mu, &idle_until);
			} else {
				pthread_cond_wait(&p->cv, &p->mu);
			}
			continue;
		}
		if (t->conn_dest && j->dest != t->conn_dest)
			drop_conn_locked(t); /* pick_locked counted us on j->dest */
		pthread_mutex_unlock(&p->mu);

		run_job(t, j);

		pthread_mutex_lock(&p->mu);
		if (t->conn) {
			t->conn_dest = j->dest; /* keeps its active count */
			clock_gettime(CLOCK_MONOTONIC, &idle_until);
			idle_until.tv_sec += DL_IDLE_MS / 1000;
		} else {
			t->conn_dest = NULL;
			j->dest->active--;
			pthread_cond_broadcast(&p->cv);
		}
		j->dest->refs--;
		dest_put_locked(p, j->dest);
		j->dest = NULL;
		j->next = p->done;
		p->done = j;
		if (write(p->wake_wr, "", 1) < 0) {
			/* the pipe is full: the main thread is awake anyway */
		}
	}
	drop_conn_locked(t);
	pthread_mutex_unlock(&p->mu);
	if (t->st)
		store_close(t->st);
	free(t);
	return NULL;
}

static int pool_start(struct dl_pool *p, const struct dl_env *env)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int fds[2], rc = 0;

	memset(p, 0, sizeof(*p));
	p->env = env;
	p->wake_rd = p->wake_wr = -1;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	p->wake_rd = fds[0];
	p->wake_wr = fds[1];
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->threads = calloc((size_t)env->cfg->delivery.threads, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	/* Threads start with every signal blocked: only the main thread
	 * takes SIGTERM/SIGINT (through its signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int64_t i = 0; i < env->cfg->delivery.threads; i++) {
		struct dl_thread_state *t = calloc(1, sizeof(*t));

		if (!t) {
			rc = -ENOMEM;
			break;
		}
		t->pool = p;
		rc = -pthread_create(&p->threads[p->nthreads], NULL, pool_thread, t);
		if (rc < 0) {
			free(t);
			break;
		}
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nthreads > 0)
		rc = 0; /* run with fewer threads rather than not at all */
	return rc;
}

/* Hands a job over; the pool owns it from here. */
static void pool_enqueue(struct dl_pool *p, struct dl_job *j, const char *key)
{
	pthread_mutex_lock(&p->mu);
	j->dest = dest_get_locked(p, key);
	if (!j->dest) {
		pthread_mutex_unlock(&p->mu);
		log_err("delivery", "msg=\"out of memory\" qid=%s", j->rcpts[0].d.queue_id);
		free_job(j); /* the leases run out; nothing is lost */
		return;
	}
	j->dest->refs++;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued_rcpts += j->nrcpts;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static struct dl_job *pool_take_done(struct dl_pool *p)
{
	struct dl_job *d;

	pthread_mutex_lock(&p->mu);
	d = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->mu);
	return d;
}

static size_t pool_queued(struct dl_pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	n = p->queued_rcpts;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* Stops taking jobs, waits for the running ones, drops the queued ones
 * (their leases are released by the caller). */
static void pool_stop(struct dl_pool *p)
{
	struct dl_job *j;

	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while ((j = p->head)) {
		p->head = j->next;
		free_job(j);
	}
	p->tail = NULL;
	while (p->dests) {
		struct dl_dest *d = p->dests;

		p->dests = d->next;
		free(d);
	}
}

static void pool_free(struct dl_pool *p)
{
	struct dl_job *j;

	while ((j = p->done)) {
		p->done = j->next;
		free_job(j);
	}
	free(p->threads);
	if (p->wake_rd >= 0)
		close(p->wake_rd);
	if (p->wake_wr >= 0)
		close(p->wake_wr);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

/* ---- one job on a pool thread ------------------------------------------- */

static void set_all(struct dl_job *j, enum smtp_verdict v, const struct smtp_reply *r,
		    const char *peer)
{
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct smtp_rcpt_result res = {.verdict = v, .reply = *r};
		struct dl_rcpt *x = &j->rcpts[i];

		x->kind = v == SMTP_OK	       ? STORE_DELIVERED
			  : v == SMTP_PERMFAIL ? STORE_BOUNCED
					       : STORE_DEFERRED;
		(void)smtp_reply_format(&res.reply, x->reply, sizeof(x->reply));
		(void)str_copy(x->host, sizeof(x->host), peer ? peer : "");
		(void)str_copy(x->status, sizeof(x->status), r->enh);
	}
}

static void set_results(struct dl_job *j, const struct smtp_rcpt_result *res, const char *peer)
{
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct dl_rcpt *x = &j->rcpts[i];

		x->kind = res[i].verdict == SMTP_OK	    ? STORE_DELIVERED
			  : res[i].verdict == SMTP_PERMFAIL ? STORE_BOUNCED
							    : STORE_DEFERRED;
		(void)smtp_reply_format(&res[i].reply, x->reply, sizeof(x->reply));
		(void)str_copy(x->host, sizeof(x->host), peer ? peer : "");
		(void)str_copy(x->status, sizeof(x->status), res[i].reply.enh);
		if (res[i].reply.code && peer)
			peer_name(peer, x->remote, sizeof(x->remote));
	}
}

/* The hosts to try, in order. */
static int job_hosts(const struct dl_env *env, struct dl_job *j, struct route_host *hosts,
		     size_t max, size_t *n, struct smtp_reply *why)
{
	struct dns_mx mx[DNS_MAX_MX];
	char reason[300];
	size_t nmx = 0;
	int rc;

	*n = 0;
	switch (j->mode) {
	case DL_ROUTES:
		for (size_t i = 0; i < j->nroutes && *n < max; i++) {
			(void)str_copy(hosts[*n].host, sizeof(hosts[0].host), j->routes[i].host);
			hosts[*n].port = j->routes[i].port ? j->routes[i].port : 25;
			(*n)++;
		}
		return 0;
	case DL_RELAY:
		hosts[0] = env->relay;
		*n = 1;
		return 0;
	case DL_NOROUTE:
		smtp_reply_set(why, 0, "4.3.5", "no route configured for %s", j->domain);
		return SMTP_TEMPFAIL;
	case DL_MX:
		break;
	}
	rc = dns_mx_lookup(&env->dns, j->domain, mx, ARRAY_LEN(mx), &nmx, reason, sizeof(reason));
	if (rc == DNS_PERMFAIL || rc == DNS_INVALID) {
		smtp_reply_set(why, 0, strstr(reason, "null MX") ? "5.1.10" : "5.1.2", "%s",
			       reason);
		return SMTP_PERMFAIL;
	}
	if (rc < 0) {
		smtp_reply_set(why, 0, "4.4.3", "%s", reason);
		return SMTP_TEMPFAIL;
	}
	for (size_t i = 0; i < nmx && *n < max; i++) {
		(void)str_copy(hosts[*n].host, sizeof(hosts[0].host), mx[i].host);
		hosts[*n].port = 25;
		(*n)++;
	}
	return 0;
}

/* Tries the hosts in order until one answers; fills the verdicts. */
static void deliver(struct dl_thread_state *t, struct dl_job *j, const char *stuffed,
		    size_t stuffed_len, int64_t size)
{
	const struct dl_env *env = t->pool->env;
	struct route_host hosts[DNS_MAX_MX > STORE_MAX_ROUTES ? DNS_MAX_MX : STORE_MAX_ROUTES];
	const char **addrs = calloc(j->nrcpts, sizeof(*addrs));
	struct smtp_rcpt_result *res = calloc(j->nrcpts, sizeof(*res));
	struct smtp_envelope envl = {0};
	struct smtp_reply last;
	size_t nhosts = 0, tries = 0;
	char lastpeer[DL_PEER_LEN] = "";
	int rc;

	smtp_reply_set(&last, 0, "4.4.1", "no host to deliver to");
	if (!addrs || !res) {
		smtp_reply_set(&last, 0, "4.3.0", "out of memory");
		set_all(j, SMTP_TEMPFAIL, &last, "");
		goto out;
	}
	rc = job_hosts(env, j, hosts, ARRAY_LEN(hosts), &nhosts, &last);
	if (rc > 0) {
		set_all(j, (enum smtp_verdict)rc, &last, "");
		goto out;
	}
	for (size_t i = 0; i < j->nrcpts; i++)
		addrs[i] = j->rcpts[i].d.rcpt;
	envl.sender = j->rcpts[0].d.sender;
	envl.rcpts = addrs;
	envl.nrcpts = j->nrcpts;
	envl.flags = ((j->rcpts[0].d.flags & STORE_MSG_8BITMIME) ? SMTP_ENV_8BITMIME : 0) |
		     ((j->rcpts[0].d.flags & STORE_MSG_SMTPUTF8) ? SMTP_ENV_SMTPUTF8 : 0);
	envl.stuffed = stuffed;
	envl.stuffed_len = stuffed_len;
	envl.size = size;

	/* A connection kept from the last job for this destination. */
	if (t->conn) {
		if (smtp_conn_rset(t->conn) == 0) {
			rc = smtp_conn_send(t->conn, &envl, res);
			(void)str_copy(lastpeer, sizeof(lastpeer), smtp_conn_peer(t->conn));
			if (rc == 0) {
				set_results(j, res, lastpeer);
				goto keep;
			}
		}
		smtp_conn_free(t->conn);
		t->conn = NULL;
	}
	for (size_t h = 0; h < nhosts && tries < DL_MAX_TRIES; h++) {
		struct dns_addr a[DNS_MAX_ADDRS];
		char reason[300];
		size_t na = 0;

		rc = dns_addr_lookup(&env->dns, hosts[h].host, hosts[h].port, a, ARRAY_LEN(a), &na,
				     reason, sizeof(reason));
		if (rc < 0) {
			smtp_reply_set(&last, 0, "4.4.3", "%s", reason);
			continue;
		}
		for (size_t k = 0; k < na && tries < DL_MAX_TRIES; k++) {
			struct smtp_conn *c = NULL;
			bool tls = true;

			tries++;
			(void)str_fmt(lastpeer, sizeof(lastpeer), "%s:%u", hosts[h].host,
				      hosts[h].port);
		again:
			rc = smtp_conn_open((const struct sockaddr *)&a[k].ss, a[k].len,
					    hosts[h].host, &env->smtp, tls, &c, &last);
			if (rc == SMTP_E_TLS && tls) {
				log_warn("delivery",
					 "qid=%s host=%s:%u msg=\"TLS failed, retrying "
					 "without TLS\"",
					 j->rcpts[0].d.queue_id, hosts[h].host, hosts[h].port);
				tls = false;
				goto again;
			}
			if (rc < 0)
				continue;
			(void)str_copy(lastpeer, sizeof(lastpeer), smtp_conn_peer(c));
			rc = smtp_conn_send(c, &envl, res);
			if (rc == 0) {
				set_results(j, res, lastpeer);
				t->conn = c;
				goto keep;
			}
			last = res[0].reply;
			smtp_conn_free(c);
		}
	}
	/* nobody answered */
	set_all(j, SMTP_TEMPFAIL, &last, lastpeer);
	goto out;
keep:
	if (t->conn && !smtp_conn_usable(t->conn)) {
		smtp_conn_free(t->conn);
		t->conn = NULL;
	}
out:
	free(addrs);
	free(res);
}

/* The header section of body, copied, for a DSN. */
static void keep_headers(struct dl_job *j, const char *body, size_t len)
{
	size_t n = 0;

	while (n < len && n < DSN_MAX_HEADERS) {
		const char *nl = memchr(body + n, '\n', len - n);

		if (!nl)
			break;
		n = (size_t)(nl - body) + 1;
		if (n + 1 < len && (body[n] == '\r' || body[n] == '\n'))
			break;
	}
	if (n == 0)
		n = len < DSN_MAX_HEADERS ? len : DSN_MAX_HEADERS;
	j->headers = malloc(n);
	if (j->headers) {
		memcpy(j->headers, body, n);
		j->headers_len = n;
	}
}

/* Turns verdicts into outcomes (retry time, expiry), logs, counts. */
static void finish_job(const struct dl_env *env, struct dl_job *j, int64_t now)
{
	const struct config *cfg = env->cfg;

	for (size_t i = 0; i < j->nrcpts; i++) {
		struct dl_rcpt *x = &j->rcpts[i];
		char q[STORE_REPLY_LEN + 8];
		const char *status = "delivered";

		if (!x->record)
			continue;
		if (x->kind == STORE_DEFERRED && now - x->d.received_at > cfg->delivery.lifetime) {
			char why[STORE_REPLY_LEN];

			(void)str_fmt(why, sizeof(why), "expired after %lld days: %s",
				      (long long)((now - x->d.received_at) / 86400), x->reply);
			(void)str_copy(x->reply, sizeof(x->reply), why);
			(void)str_copy(x->status, sizeof(x->status), "5.4.7");
			x->kind = STORE_BOUNCED;
		}
		if (x->kind == STORE_DEFERRED) {
			x->next_attempt = retry_at(cfg, now, x->d.attempts);
			status = "deferred";
			metrics_add(env->metrics, M_DELIVERY_DEFERRED, 1);
		} else if (x->kind == STORE_BOUNCED) {
			if (x->status[0] != '5')
				(void)str_copy(x->status, sizeof(x->status), "5.0.0");
			status = "bounced";
			metrics_add(env->metrics, M_DELIVERY_BOUNCED, 1);
		} else {
			metrics_add(env->metrics, M_DELIVERY_DELIVERED, 1);
		}
		metrics_add(env->metrics, M_DELIVERY_ATTEMPTS, 1);
		log_msg(x->kind == STORE_DELIVERED ? LOG_INFO : LOG_WARN, "delivery",
			"qid=%s rcpt=<%s> host=%s status=%s reply=%s attempts=%d delay_ms=%lld",
			x->d.queue_id, x->d.rcpt, x->host[0] ? x->host : "none", status,
			log_quote(q, sizeof(q), x->reply), x->d.attempts + 1,
			(long long)(time_now_ms() - x->d.received_at * 1000));
	}
}

static void run_job(struct dl_thread_state *t, struct dl_job *j)
{
	const struct dl_env *env = t->pool->env;
	void *body = NULL;
	char *stuffed = NULL, err[256];
	size_t len = 0, slen = 0;
	bool bounced = false;
	int rc;

	for (size_t i = 0; i < j->nrcpts; i++)
		j->rcpts[i].record = true;
	if (!t->st) {
		rc = store_open(env->cfg->store.url, (int)env->cfg->store.busy_timeout, &t->st, err,
				sizeof(err));
		if (rc < 0) {
			t->st = NULL;
			log_err("delivery", "qid=%s msg=\"store: %s\"", j->rcpts[0].d.queue_id,
				err);
			goto no_record;
		}
	}
	rc = store_message_load(t->st, j->message_id, &body, &len);
	if (rc < 0) {
		log_err("delivery", "qid=%s msg=\"cannot load the message: %s\" rc=%d",
			j->rcpts[0].d.queue_id, store_last_error(t->st), rc);
		if (rc == STORE_TEMPFAIL) {
			store_close(t->st); /* reconnect next time */
			t->st = NULL;
		}
		goto no_record;
	}
	/* DKIM: signed for a hosted From or sender domain with an active key,
	 * and only mail that leaves for a customer: from its relay or made by
	 * us. Mail from the Internet in a hosted domain's name is never
	 * signed, or a forgery would leave here with our signature. */
	if ((j->rcpts[0].d.flags & (STORE_MSG_OUTBOUND | STORE_MSG_LOCAL | STORE_MSG_DSN)) &&
	    dkim_signer_prepend(env->signer, t->st, j->rcpts[0].d.sender, &body, &len,
				j->rcpts[0].d.queue_id) < 0) {
		log_warn("delivery", "qid=%s msg=\"DKIM key look-up failed, retrying later\"",
			 j->rcpts[0].d.queue_id);
		goto no_record;
	}
	if (smtp_dot_stuff(body, len, &stuffed, &slen) < 0) {
		log_err("delivery", "qid=%s msg=\"out of memory\"", j->rcpts[0].d.queue_id);
		goto no_record;
	}
	deliver(t, j, stuffed, slen, (int64_t)len);
	finish_job(env, j, time_now());
	for (size_t i = 0; i < j->nrcpts; i++)
		if (j->rcpts[i].kind == STORE_BOUNCED)
			bounced = true;
	if (bounced && dsn_wanted(j->rcpts[0].d.sender, j->rcpts[0].d.flags))
		keep_headers(j, body, len);
	goto out;
no_record:
	/* the lease runs out and the recipients are claimed again */
	for (size_t i = 0; i < j->nrcpts; i++)
		j->rcpts[i].record = false;
out:
	free(body);
	free(stuffed);
}

/* ---- main thread: claim, group, record ---------------------------------- */

struct dl_worker {
	const struct worker_ctx *ctx;
	const struct config *cfg;
	struct dl_env env;
	struct store *st;
	struct dl_pool pool;
	char owner[300];
	struct store_delivery *claimed;
	struct store_outcome *outs;
	size_t outs_cap;
};

/* Where the recipients of domain go, and the destination key. Returns
 * STORE_OK or STORE_TEMPFAIL (leave the recipients leased). */
static int classify(struct dl_worker *w, const char *domain, struct dl_job *j, char *key,
		    size_t keylen)
{
	struct store_domain d;
	int rc = store_domain_get(w->st, domain, &d);
	size_t off;

	(void)str_copy(j->domain, sizeof(j->domain), domain);
	if (rc == STORE_OK) {
		if (d.nroutes == 0) {
			j->mode = DL_NOROUTE;
			return str_fmt(key, keylen, "noroute:%s", domain) < 0 ? STORE_INVALID
									      : STORE_OK;
		}
		j->mode = DL_ROUTES;
		j->nroutes = d.nroutes;
		memcpy(j->routes, d.routes, d.nroutes * sizeof(d.routes[0]));
		(void)str_copy(key, keylen, "routes:");
		for (size_t i = 0; i < d.nroutes; i++) {
			off = strlen(key);
			(void)str_fmt(key + off, keylen - off, "%s:%u,", d.routes[i].host,
				      d.routes[i].port);
		}
		return STORE_OK;
	}
	if (rc != STORE_NOTFOUND)
		return STORE_TEMPFAIL;
	if (w->env.has_relay) {
		j->mode = DL_RELAY;
		(void)str_fmt(key, keylen, "relay:%s:%u", w->env.relay.host, w->env.relay.port);
	} else {
		j->mode = DL_MX;
		(void)str_fmt(key, keylen, "mx:%s", domain);
	}
	return STORE_OK;
}

static int job_add_rcpt(struct dl_job *j, const struct store_delivery *d)
{
	if (j->nrcpts == j->cap) {
		size_t ncap = j->cap ? j->cap * 2 : 4;
		struct dl_rcpt *n = realloc(j->rcpts, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		j->rcpts = n;
		j->cap = ncap;
	}
	memset(&j->rcpts[j->nrcpts], 0, sizeof(j->rcpts[0]));
	j->rcpts[j->nrcpts].d = *d;
	j->nrcpts++;
	return 0;
}

/* Claims due recipients and queues them as jobs. Returns how many. */
static size_t claim(struct dl_worker *w, size_t max)
{
	struct dl_job **jobs = NULL;
	char(*keys)[DL_KEY_LEN] = NULL;
	size_t n = 0, njobs = 0;
	int64_t now = time_now();
	int rc;

	rc = store_queue_claim(w->st, w->owner, now, w->cfg->delivery.lease, w->claimed, max, &n);
	if (rc < 0) {
		log_err("delivery", "msg=\"claim failed: %s\" rc=%d", store_last_error(w->st), rc);
		metrics_add(w->ctx->metrics, M_STORE_ERRORS, 1);
		return 0;
	}
	if (n == 0)
		return 0;
	jobs = calloc(n, sizeof(*jobs));
	keys = calloc(n, sizeof(*keys));
	if (!jobs || !keys) {
		log_err("delivery", "msg=\"out of memory grouping %zu recipients\"", n);
		goto out; /* the leases run out */
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_delivery *d = &w->claimed[i];
		struct dl_job probe = {0}, *j = NULL;
		char key[DL_KEY_LEN];

		size_t k;

		/* one store look-up per domain and batch */
		for (k = 0; k < njobs; k++)
			if (strcmp(jobs[k]->domain, d->domain) == 0)
				break;
		if (k < njobs) {
			probe.mode = jobs[k]->mode;
			probe.nroutes = jobs[k]->nroutes;
			memcpy(probe.routes, jobs[k]->routes, sizeof(probe.routes));
			(void)str_copy(probe.domain, sizeof(probe.domain), d->domain);
			(void)str_copy(key, sizeof(key), keys[k]);
		} else if (classify(w, d->domain, &probe, key, sizeof(key)) != STORE_OK) {
			log_warn("delivery",
				 "qid=%s rcpt=<%s> msg=\"domain look-up failed, retrying later\"",
				 d->queue_id, d->rcpt);
			continue;
		}
		for (k = 0; k < njobs; k++)
			if (jobs[k]->message_id == d->message_id && strcmp(keys[k], key) == 0) {
				j = jobs[k];
				break;
			}
		if (!j) {
			j = malloc(sizeof(*j));
			if (!j)
				continue;
			*j = probe;
			j->message_id = d->message_id;
			jobs[njobs] = j;
			(void)str_copy(keys[njobs], DL_KEY_LEN, key);
			njobs++;
		}
		if (job_add_rcpt(j, d) < 0)
			log_err("delivery", "qid=%s msg=\"out of memory\"", d->queue_id);
	}
	for (size_t k = 0; k < njobs; k++) {
		if (jobs[k]->nrcpts == 0) {
			free_job(jobs[k]);
			continue;
		}
		pool_enqueue(&w->pool, jobs[k], keys[k]);
	}
out:
	free(jobs);
	free(keys);
	return n;
}

static int outs_reserve(struct dl_worker *w, size_t n)
{
	if (n <= w->outs_cap)
		return 0;
	struct store_outcome *o = realloc(w->outs, n * sizeof(*o));

	if (!o)
		return -ENOMEM;
	w->outs = o;
	w->outs_cap = n;
	return 0;
}

/* Queues the DSN for the bounced recipients of j. On failure they are not
 * recorded, so the bounce (and its DSN) happen again when the lease ends. */
static void job_dsn(struct dl_worker *w, struct dl_job *j)
{
	struct dsn_rcpt *dr = calloc(j->nrcpts, sizeof(*dr));
	struct dsn_report r = {0};
	char qid[QUEUE_ID_LEN + 1] = "";
	bool queued = false;
	size_t n = 0;
	int rc = STORE_TEMPFAIL;

	if (!dr)
		goto out;
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct dl_rcpt *x = &j->rcpts[i];

		if (!x->record || x->kind != STORE_BOUNCED)
			continue;
		dr[n].rcpt = x->d.rcpt;
		dr[n].status = x->status;
		dr[n].remote_mta = x->remote;
		dr[n].diagnostic = x->reply;
		n++;
	}
	rc = STORE_OK;
	if (n == 0)
		goto out;
	r.reporting_mta = w->cfg->node.hostname;
	r.queue_id = j->rcpts[0].d.queue_id;
	r.sender = j->rcpts[0].d.sender;
	r.flags = j->rcpts[0].d.flags;
	r.arrival = j->rcpts[0].d.received_at;
	r.now = time_now();
	r.headers = j->headers;
	r.headers_len = j->headers_len;
	r.rcpts = dr;
	r.nrcpts = n;
	rc = dsn_queue(w->st, &r, &queued, qid);
	if (rc < 0) {
		log_err("dsn", "qid=%s msg=\"cannot queue the DSN, bounce not recorded: %s\" rc=%d",
			r.queue_id, store_last_error(w->st), rc);
		metrics_add(w->ctx->metrics, M_STORE_ERRORS, 1);
	} else if (queued) {
		metrics_add(w->ctx->metrics, M_DELIVERY_DSN_CREATED, 1);
		log_info("dsn", "qid=%s dsn=%s to=<%s> recipients=%zu", r.queue_id, qid, r.sender,
			 n);
	}
out:
	if (rc < 0)
		for (size_t i = 0; i < j->nrcpts; i++)
			if (j->rcpts[i].kind == STORE_BOUNCED)
				j->rcpts[i].record = false;
	free(dr);
}

/* DSNs first, then every outcome in one transaction. */
static void record_done(struct dl_worker *w)
{
	struct dl_job *done = pool_take_done(&w->pool), *j;
	size_t n = 0, total = 0;
	int rc;

	if (!done)
		return;
	for (j = done; j; j = j->next)
		total += j->nrcpts;
	if (outs_reserve(w, total) < 0) {
		log_err("delivery", "msg=\"out of memory recording %zu outcomes\"", total);
		goto out;
	}
	for (j = done; j; j = j->next) {
		if (dsn_wanted(j->rcpts[0].d.sender, j->rcpts[0].d.flags))
			job_dsn(w, j);
		for (size_t i = 0; i < j->nrcpts; i++) {
			struct dl_rcpt *x = &j->rcpts[i];

			if (!x->record)
				continue;
			w->outs[n].rcpt_id = x->d.rcpt_id;
			w->outs[n].kind = x->kind;
			w->outs[n].next_attempt = x->next_attempt;
			w->outs[n].host = x->host;
			w->outs[n].reply = x->reply;
			n++;
		}
	}
	if (n == 0)
		goto out;
	rc = store_queue_record(w->st, w->outs, n);
	if (rc < 0) {
		log_err("delivery",
			"msg=\"cannot record %zu outcomes, they will be retried when the lease "
			"expires: %s\" rc=%d",
			n, store_last_error(w->st), rc);
		metrics_add(w->ctx->metrics, M_STORE_ERRORS, 1);
	}
out:
	while ((j = done)) {
		done = j->next;
		free_job(j);
	}
}

static void drain(int fd)
{
	char buf[256];

	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0) {
	}
}

static int env_init(struct dl_env *env, const struct worker_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	int rc;

	memset(env, 0, sizeof(*env));
	env->cfg = cfg;
	env->metrics = ctx->metrics;
	env->smtp.helo_name = cfg->node.hostname;
	env->smtp.connect_timeout_ms = (int)cfg->delivery.connect_timeout * 1000;
	env->smtp.timeout_ms = (int)cfg->delivery.timeout * 1000;
	env->dns.server = cfg->delivery.dns_server;
	env->dns.timeout_ms =
	    (int)(cfg->delivery.connect_timeout < 30 ? cfg->delivery.connect_timeout * 1000
						     : 30000);
	if (cfg->delivery.relayhost[0]) {
		const char *rh = cfg->delivery.relayhost;

		rc = parse_hostport(rh, env->relay.host, sizeof(env->relay.host), &env->relay.port);
		if (rc < 0) {
			size_t n = strlen(rh);

			/* "host" or "[host]" without a port */
			if (rh[0] == '[' && n > 2 && rh[n - 1] == ']')
				rc = str_copyn(env->relay.host, sizeof(env->relay.host), rh + 1,
					       n - 2);
			else
				rc = str_copy(env->relay.host, sizeof(env->relay.host), rh);
			env->relay.port = 25;
			if (rc < 0 || strchr(env->relay.host, ':')) {
				log_err("delivery", "msg=\"bad relayhost\" relayhost=%s", rh);
				return -EINVAL;
			}
		}
		env->has_relay = true;
	}
	if (smtp_tls_ctx_new(&env->smtp.tls_ctx) < 0)
		log_warn("delivery", "msg=\"no TLS context: delivering without STARTTLS\"");
	if (dkim_signer_new(DKIM_KEYS_TTL, &env->signer) < 0)
		return -ENOMEM;
	return 0;
}

/* The end of the quarantine's retention: every node runs it (each batch
 * is its own transaction, so two nodes at once only split the work). */
static void quarantine_expire(struct dl_worker *w, int64_t now)
{
	size_t n = 0;
	int rc = store_quarantine_expire(w->st, now, &n);

	if (rc != STORE_OK) {
		log_warn("quarantine", "msg=\"expiry failed, will retry\" rc=%d reason=\"%s\"", rc,
			 store_last_error(w->st));
		return;
	}
	metrics_add(w->ctx->metrics, M_QUARANTINE_EXPIRED, (int64_t)n);
	if (n)
		log_info("quarantine", "msg=\"expired\" entries=%zu", n);
}

static int signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int delivery_worker_main(const struct worker_ctx *ctx)
{
	struct dl_worker w;
	const struct config *cfg = ctx->cfg;
	char err[256];
	int sfd = -1, ret = 1, rc;
	int64_t last_expire = 0;
	int64_t last_count = 0, dmarc_at = time_now() - time_now() % 86400 + cfg->dmarc.report_hour;
	bool pool_up = false, dns_up = false, busy = false;

	memset(&w, 0, sizeof(w));
	w.ctx = ctx;
	w.cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	sfd = signals_fd();
	if (sfd < 0) {
		log_err("delivery", "msg=\"signalfd: %s\"", strerror(errno));
		goto out;
	}
	(void)str_fmt(w.owner, sizeof(w.owner), "%s:%ld", cfg->node.hostname, (long)getpid());
	rc = store_open(cfg->store.url, (int)cfg->store.busy_timeout, &w.st, err, sizeof(err));
	if (rc < 0) {
		w.st = NULL;
		log_err("delivery", "msg=\"cannot open the store: %s\"", err);
		goto out;
	}
	if (dns_mx_global_init() < 0) {
		log_err("delivery", "msg=\"cannot initialise c-ares\"");
		goto out;
	}
	dns_up = true;
	if (env_init(&w.env, ctx) < 0)
		goto out;
	w.claimed = calloc((size_t)cfg->delivery.batch, sizeof(*w.claimed));
	if (!w.claimed) {
		log_err("delivery", "msg=\"out of memory\"");
		goto out;
	}
	rc = pool_start(&w.pool, &w.env);
	pool_up = w.pool.wake_rd >= 0;
	if (rc < 0) {
		log_err("delivery", "msg=\"cannot start the delivery threads: %s\"", strerror(-rc));
		goto out;
	}
	log_info("delivery", "msg=\"started\" owner=%s threads=%zu per_destination=%lld", w.owner,
		 w.pool.nthreads, (long long)cfg->delivery.per_destination);

	for (;;) {
		struct pollfd pfd[3] = {
		    {.fd = sfd, .events = POLLIN},
		    {.fd = w.pool.wake_rd, .events = POLLIN},
		    {.fd = ctx->nudge_rd, .events = POLLIN},
		};
		size_t queued, room;
		int64_t now;

		if (poll(pfd, ctx->nudge_rd >= 0 ? 3 : 2, busy ? 0 : DL_POLL_MS) < 0 &&
		    errno != EINTR) {
			log_err("delivery", "msg=\"poll: %s\"", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			log_info("delivery", "msg=\"stopping: finishing the transactions in "
					     "flight\"");
			break;
		}
		if (ctx->nudge_rd >= 0 && (pfd[2].revents & POLLIN))
			drain(ctx->nudge_rd);
		if (pfd[1].revents & POLLIN)
			drain(w.pool.wake_rd);
		record_done(&w);

		/* Claim only what the pool can start soon: a lease must not
		 * run out while its job waits in our own queue. */
		queued = pool_queued(&w.pool);
		room =
		    queued < (size_t)cfg->delivery.batch ? (size_t)cfg->delivery.batch - queued : 0;
		busy = false;
		if (room > 0)
			busy = claim(&w, room) == room;

		now = time_now();
		if (now - last_count >= DL_QUEUE_COUNT_EVERY) {
			int64_t qn;

			last_count = now;
			if (store_queue_count(w.st, &qn) == STORE_OK)
				metrics_set(ctx->metrics, M_DELIVERY_QUEUE_SIZE, qn);
			if (store_quarantine_count(w.st, &qn) == STORE_OK)
				metrics_set(ctx->metrics, M_QUARANTINE_HELD, qn);
		}
		if (now - last_expire >= DL_QUARANTINE_EXPIRE_EVERY) {
			last_expire = now;
			quarantine_expire(&w, now);
		}
		/* DMARC aggregate reports: daily, and again soon if some failed;
		 * the store's claims keep them to one per domain and day */
		if (cfg->dmarc.reports && now >= dmarc_at) {
			struct dmarc_report_stats ds;

			dmarc_at = dmarc_report_daily(w.st, cfg, now, &ds) < 0 || ds.failed
				       ? now + 600
				       : dmarc_report_next(now + 1, cfg->dmarc.report_hour);
		}
	}
	ret = 0;
out:
	if (pool_up) {
		pool_stop(&w.pool);
		if (w.st)
			record_done(&w);
		pool_free(&w.pool);
	}
	if (w.st) {
		if (store_queue_release(w.st, w.owner) < 0)
			log_warn("delivery", "msg=\"cannot release leases; they will expire\"");
		store_close(w.st);
	}
	if (w.env.smtp.tls_ctx)
		smtp_tls_ctx_free(w.env.smtp.tls_ctx);
	dkim_signer_free(w.env.signer);
	if (dns_up)
		dns_mx_global_cleanup();
	free(w.claimed);
	free(w.outs);
	if (sfd >= 0)
		close(sfd);
	log_info("delivery", "msg=\"stopped\" rc=%d", ret);
	return ret;
}
