/* SPDX-License-Identifier: MIT */
/*
 * worker: what the master hands to each worker process it forks.
 *
 * A worker's main function receives a read-only context, runs until it is
 * told to stop (SIGTERM or SIGINT: stop taking new work, finish what is in
 * flight, exit 0), and returns the process exit code. The master has
 * already dropped privileges, bound the sockets and mapped the metrics
 * page; the worker opens its own store connection (never one inherited
 * through fork()). The listening sockets are non-blocking.
 */
#ifndef MXG_WORKER_H
#define MXG_WORKER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "core/config.h"
#include "core/metrics.h"

struct limits;

struct worker_ctx {
	const struct config *cfg;
	struct metrics *metrics;
	int index;	     /* smtp: 0..n-1 */
	const int *smtp_fds; /* smtp: this worker's listening sockets */
	size_t nsmtp_fds;
	size_t nsmtp_proxy_fds; /* smtp: the last ones of smtp_fds expect PROXY */
	int http_fd;		/* http: the listening socket */
	int nudge_rd;		/* delivery: becomes readable when new mail is queued */
	SSL_CTX *tls;		/* smtp: STARTTLS context, or NULL */
	struct limits *limits;	/* smtp: the node's per-client limits table */
	int nudge_wr;		/* smtp: write one byte (non-blocking) after a commit */
};

int smtp_worker_main(const struct worker_ctx *ctx);
int delivery_worker_main(const struct worker_ctx *ctx);
int http_worker_main(const struct worker_ctx *ctx);

#endif
