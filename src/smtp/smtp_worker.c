/* SPDX-License-Identifier: MIT */
/*
 * smtp_worker: the process that runs inbound SMTP sessions.
 *
 * One libevent loop; the listening sockets come from the master (one set
 * per worker, SO_REUSEPORT, so the kernel spreads connections and a
 * restarted worker takes over its predecessor's sockets and their backlog).
 * Store work runs on one store_async thread. SIGTERM drains: listeners are
 * closed, idle sessions get 421, transactions in flight finish, and the
 * worker exits when the last session is gone or the drain deadline passes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <libpsl.h>

#include "core/log.h"
#include "daemon/worker.h"
#include "smtp/session.h"
#include "store/store_async.h"

/* Longest a drain waits for transactions in flight before closing them. */
#define DRAIN_DEADLINE_S 30

struct smtp_worker {
	struct smtp_env env;
	struct evconnlistener *listeners[CONFIG_MAX_LISTEN * 2];
	struct listener_arg {
		struct smtp_worker *w;
		bool proxy;
	} args[CONFIG_MAX_LISTEN * 2];
	size_t nlisteners;
	struct event *sig_term, *sig_int, *tick;
	int64_t drain_started;
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct listener_arg *la = arg;
	int one = 1;

	(void)l;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);
	if (smtp_session_start(&la->w->env, fd, sa, (socklen_t)salen, la->proxy) < 0)
		log_err("accept", "reason=\"out of memory\"");
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	log_warn("accept_error", "reason=\"%s\"", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE) {
		/* Out of descriptors: stop accepting for a moment. */
		evconnlistener_disable(l);
		struct timeval tv = {1, 0};
		event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, on_accept_resume, l,
				&tv);
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_worker *w = arg;

	(void)fd;
	(void)what;
	if (!w->env.draining)
		return;
	if (w->env.nsessions == 0 && store_async_pending(w->env.store) == 0 &&
	    scan_pending(w->env.scan) == 0) {
		event_base_loopbreak(w->env.base);
		return;
	}
	if (time_now() - w->drain_started > DRAIN_DEADLINE_S) {
		log_warn("drain_deadline", "sessions=%zu", w->env.nsessions);
		smtp_env_close_all(&w->env);
		event_base_loopbreak(w->env.base);
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct smtp_worker *w = arg;

	(void)what;
	if (w->env.draining)
		return;
	log_info("draining", "signal=%d sessions=%zu", (int)sig, w->env.nsessions);
	for (size_t i = 0; i < w->nlisteners; i++) {
		evconnlistener_free(w->listeners[i]);
		w->listeners[i] = NULL;
	}
	w->nlisteners = 0;
	w->drain_started = time_now();
	smtp_env_drain(&w->env);
}

int smtp_worker_main(const struct worker_ctx *ctx)
{
	struct smtp_worker w;
	char err[512];
	int rc = 1;
	struct timeval tick = {0, 100 * 1000};

	memset(&w, 0, sizeof(w));
	signal(SIGPIPE, SIG_IGN);
	w.env.base = event_base_new();
	if (!w.env.base) {
		log_err("startup", "reason=\"event_base_new failed\"");
		return 1;
	}
	w.env.cfg = ctx->cfg;
	w.env.metrics = ctx->metrics;
	w.env.nudge_wr = ctx->nudge_wr;
	w.env.tls = ctx->tls;
	w.env.limits = ctx->limits;
	{
		const struct config *cfg = ctx->cfg;
		struct resolver_opts ro = {cfg->dns.servers,	  cfg->dns.timeout,
					   cfg->dns.cache_size,	  cfg->dns.max_inflight,
					   cfg->dns.negative_ttl, cfg->dns.max_ttl,
					   ctx->metrics};
		if (resolver_new(w.env.base, &ro, &w.env.resolver, err, sizeof(err)) < 0 ||
		    dnsbl_new(w.env.base, cfg, w.env.resolver, ctx->metrics, &w.env.dnsbl, err,
			      sizeof(err)) < 0) {
			log_err("startup", "reason=\"DNS: %s\"", err);
			goto out;
		}
	}
	/* the Public Suffix List for DMARC's organizational domains; without
	 * it DMARC is not evaluated (logged), everything else works */
	w.env.psl = psl_latest(NULL);
	if (!w.env.psl)
		log_warn("startup", "reason=\"no Public Suffix List: DMARC off\"");
	if (ctx->cfg->uribl.enabled && ctx->cfg->uribl.nzones > 0 &&
	    uribl_new(w.env.base, ctx->cfg, w.env.resolver, ctx->metrics, &w.env.uribl, err,
		      sizeof(err)) < 0) {
		log_err("startup", "reason=\"URI lists: %s\"", err);
		goto out;
	}
	/* ARC sealing: all of [arc] domain, selector and key, or nothing */
	if (ctx->cfg->arc.domain[0] && ctx->cfg->arc.selector[0] && ctx->cfg->arc.key[0] &&
	    dkim_key_load_file(ctx->cfg->arc.key, &w.env.arc_key, err, sizeof(err)) < 0) {
		log_err("startup", "reason=\"arc.key: %s\"", err);
		goto out;
	}
	w.env.scan = scan_pipeline_new(w.env.base, ctx->cfg, ctx->metrics, err, sizeof(err));
	if (!w.env.scan) {
		log_err("startup", "reason=\"content checks: %s\"", err);
		goto out;
	}
	if (cidr_list_parse(ctx->cfg->smtp.proxy_trusted, &w.env.proxy_trusted) < 0) {
		log_err("startup", "reason=\"smtp.proxy_trusted: bad list\"");
		goto out;
	}
	if (cidr_list_parse(ctx->cfg->limits.allow_networks, &w.env.allow) < 0) {
		log_err("startup", "reason=\"limits.allow_networks: bad list\"");
		goto out;
	}
	w.env.worker = ctx->index;
	w.env.store = store_async_new(w.env.base, ctx->cfg, ctx->metrics, err, sizeof(err));
	if (!w.env.store) {
		log_err("startup", "reason=\"store: %s\"", err);
		goto out;
	}
	for (size_t i = 0; i < ctx->nsmtp_fds; i++) {
		w.args[w.nlisteners].w = &w;
		w.args[w.nlisteners].proxy = i >= ctx->nsmtp_fds - ctx->nsmtp_proxy_fds;
		w.listeners[w.nlisteners] =
		    evconnlistener_new(w.env.base, on_accept, &w.args[w.nlisteners],
				       LEV_OPT_CLOSE_ON_FREE, -1, ctx->smtp_fds[i]);
		if (!w.listeners[w.nlisteners]) {
			log_err("startup", "reason=\"listener\"");
			goto out;
		}
		evconnlistener_set_error_cb(w.listeners[w.nlisteners], on_accept_error);
		w.nlisteners++;
	}
	w.sig_term = evsignal_new(w.env.base, SIGTERM, on_signal, &w);
	w.sig_int = evsignal_new(w.env.base, SIGINT, on_signal, &w);
	w.tick = event_new(w.env.base, -1, EV_PERSIST, on_tick, &w);
	if (!w.sig_term || !w.sig_int || !w.tick || evsignal_add(w.sig_term, NULL) < 0 ||
	    evsignal_add(w.sig_int, NULL) < 0 || event_add(w.tick, &tick) < 0) {
		log_err("startup", "reason=\"signal setup\"");
		goto out;
	}
	log_info("worker_ready", "kind=smtp index=%d listeners=%zu", ctx->index, w.nlisteners);
	event_base_dispatch(w.env.base);
	rc = 0;
out:
	for (size_t i = 0; i < w.nlisteners; i++)
		if (w.listeners[i])
			evconnlistener_free(w.listeners[i]);
	smtp_env_close_all(&w.env);
	/* Runs the last callbacks, which free the sessions marked dead. */
	scan_pipeline_free(w.env.scan);
	store_async_free(w.env.store);
	dnsbl_free(w.env.dnsbl);
	uribl_free(w.env.uribl);
	dkim_key_free(w.env.arc_key);
	psl_free((psl_ctx_t *)w.env.psl);
	resolver_free(w.env.resolver);
	if (w.sig_term)
		event_free(w.sig_term);
	if (w.sig_int)
		event_free(w.sig_int);
	if (w.tick)
		event_free(w.tick);
	event_base_free(w.env.base);
	log_info("worker_exit", "kind=smtp index=%d", ctx->index);
	return rc;
}
