/* SPDX-License-Identifier: MIT */
/*
 * http_worker: health, readiness and metrics over HTTP (libmicrohttpd).
 *
 *   GET /healthz  200 {"status":"ok"} while the process answers
 *   GET /readyz   200 when the store answers and every worker runs,
 *                 503 with the reason otherwise
 *   GET /metrics  Prometheus text format
 * Anything else: 404/405 with a JSON reason. One polling thread, so the
 * single store connection is only ever used by one thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "core/log.h"
#include "core/util.h"
#include "daemon/worker.h"
#include "scan/av_clamd.h"
#include "store/store.h"

#define METRICS_BUF (64 * 1024)
#define READYZ_CLAMD_MS 1000 /* the PING's time-out */

struct http_worker {
	const struct worker_ctx *ctx;
	struct store *store;
	pthread_mutex_t lock; /* the store connection */
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
			       char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
	char *body = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (!body)
		return MHD_NO;
	return respond(conn, status, "application/json", body);
}

/* clamd answers PING ("ok"), or not ("down": not ready, unless engine
 * failures pass with a symbol), or is not configured ("off"). */
static const char *readyz_clamd(const struct config *cfg, const char **problem)
{
	char why[512];

	if (!cfg->av.clamd[0])
		return "off";
	if (av_clamd_ping(cfg->av.clamd,
			  cfg->av.clamd_timeout < READYZ_CLAMD_MS ? cfg->av.clamd_timeout
								  : READYZ_CLAMD_MS,
			  why, sizeof(why)) == 0)
		return "ok";
	if (strcmp(cfg->av.on_failure, "pass") != 0 && !*problem)
		*problem = "clamd not answering";
	return "down";
}

static enum MHD_Result readyz(struct http_worker *hw, struct MHD_Connection *conn)
{
	const struct metrics *m = hw->ctx->metrics;
	json_t *workers = json_array(), *j;
	const char *problem = NULL, *clamd;
	int rc;

	pthread_mutex_lock(&hw->lock);
	rc = hw->store ? store_ping(hw->store) : STORE_TEMPFAIL;
	pthread_mutex_unlock(&hw->lock);
	if (rc != STORE_OK)
		problem = "store not answering";
	clamd = readyz_clamd(hw->ctx->cfg, &problem);
	for (size_t i = 0; i < m->nworkers && i < METRICS_MAX_WORKERS; i++) {
		const struct metrics_worker *w = &m->workers[i];
		const char *kind = w->kind == WORKER_SMTP	? "smtp"
				   : w->kind == WORKER_DELIVERY ? "delivery"
								: "http";
		json_array_append_new(workers, json_pack("{s:s,s:i,s:I,s:b}", "kind", kind, "index",
							 w->index, "pid", (json_int_t)w->pid,
							 "running", w->pid > 0));
		if (w->pid <= 0 && !problem)
			problem = "a worker is not running";
	}
	j = json_pack("{s:s,s:s,s:s,s:o}", "status", problem ? "not ready" : "ready", "store",
		      rc == STORE_OK ? "ok" : "down", "clamd", clamd, "workers", workers);
	if (problem)
		json_object_set_new(j, "reason", json_string(problem));
	return respond_json(conn, problem ? 503 : 200, j);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct http_worker *hw = cls;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size) {
		*upload_data_size = 0; /* bodies are not used by these endpoints */
		return MHD_YES;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return respond_json(conn, 405, json_pack("{s:s}", "error", "method not allowed"));
	if (!strcmp(url, "/healthz"))
		return respond_json(conn, 200, json_pack("{s:s}", "status", "ok"));
	if (!strcmp(url, "/readyz"))
		return readyz(hw, conn);
	if (!strcmp(url, "/metrics")) {
		char *buf = malloc(METRICS_BUF);
		if (!buf)
			return MHD_NO;
		metrics_render(hw->ctx->metrics, buf, METRICS_BUF);
		return respond(conn, 200, "text/plain; version=0.0.4", buf);
	}
	return respond_json(conn, 404, json_pack("{s:s,s:s}", "error", "not found", "path", url));
}

int http_worker_main(const struct worker_ctx *ctx)
{
	struct http_worker hw = {.ctx = ctx};
	struct MHD_Daemon *d;
	char err[512];
	sigset_t set;
	int sig = 0;

	pthread_mutex_init(&hw.lock, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before MHD starts its thread */
	if (store_open(ctx->cfg->store.url, (int)ctx->cfg->store.busy_timeout, &hw.store, err,
		       sizeof(err)) != STORE_OK) {
		log_warn("startup", "reason=\"store: %s\" (readyz will say not ready)", err);
		hw.store = NULL;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0, NULL,
			     NULL, handle, &hw, MHD_OPTION_LISTEN_SOCKET, ctx->http_fd,
			     MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
			     MHD_OPTION_END);
	if (!d) {
		log_err("startup", "reason=\"cannot start the HTTP server\"");
		if (hw.store)
			store_close(hw.store);
		return 1;
	}
	log_info("worker_ready", "kind=http listen=%s", ctx->cfg->http.listen);
	while (sigwait(&set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT)) {
	}
	/* The listening socket is shared with the master and with the next
	 * generation of workers: take it back from MHD and only close our copy
	 * (MHD_stop_daemon alone would shut it down for every process). */
	{
		MHD_socket lfd = MHD_quiesce_daemon(d);
		if (lfd != MHD_INVALID_SOCKET)
			close(lfd);
	}
	MHD_stop_daemon(d);
	if (hw.store)
		store_close(hw.store);
	pthread_mutex_destroy(&hw.lock);
	log_info("worker_exit", "kind=http");
	return 0;
}
