/* SPDX-License-Identifier: MIT */
/*
 * session: one inbound SMTP connection (RFC 5321, with RFC 1870 SIZE,
 * RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 6152 8BITMIME, RFC 6531
 * SMTPUTF8, RFC 2034 ENHANCEDSTATUSCODES, RFC 3207 STARTTLS).
 *
 * A table-driven state machine on a libevent bufferevent. All input passes
 * one bounded reader: a command line longer than smtp.max_line_length is
 * refused before its end arrives; DATA and BDAT content goes through the
 * smtp_data decoder into a buffer capped at smtp.max_message_size. Store
 * lookups and commits run on the worker's store_async thread; while one is
 * in flight the session stops parsing (pipelined input waits in the
 * buffer) and resumes in the completion callback.
 *
 * The session and its transaction are separate objects: RSET, a new
 * EHLO, the end of DATA/BDAT and every error path end the transaction
 * through smtp_tx_free() only.
 *
 * The 250 for a message is sent only after the store has committed it.
 */
#ifndef MXG_SMTP_SESSION_H
#define MXG_SMTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "auth/dkim_sign.h"
#include "core/config.h"
#include "core/metrics.h"
#include "net/cidr.h"
#include "net/resolver.h"
#include "scan/dnsbl.h"
#include "scan/pipeline.h"
#include "scan/uribl.h"
#include "smtp/limits.h"
#include "store/store_async.h"

struct smtp_session;

/* What every session of one worker shares; owned by the worker. */
struct smtp_env {
	struct event_base *base;
	const struct config *cfg;
	struct metrics *metrics;
	struct store_async *store;
	int nudge_wr;			/* written after each commit; -1 for none */
	SSL_CTX *tls;			/* STARTTLS offered when set (owned by the worker) */
	struct limits *limits;		/* per-client limits shared by the node */
	struct cidr_list allow;		/* limits.allow_networks: exempt from checks */
	struct cidr_list proxy_trusted; /* who may send a PROXY header */
	struct resolver *resolver;	/* the worker's DNS resolver and cache */
	struct dnsbl *dnsbl;		/* the worker's DNS lists */
	struct uribl *uribl;		/* the worker's URI lists (NULL: none) */
	struct dkim_key *arc_key;	/* [arc] sealing key (NULL: no sealing) */
	struct scan_pipeline *scan;	/* the worker's content checks */
	const struct psl_ctx_st *psl;	/* Public Suffix List (DMARC), or NULL */
	int worker;			/* index, for session ids */
	uint64_t next_sid;
	bool draining;		       /* finish transactions, take no new ones */
	struct smtp_session *sessions; /* every open session */
	size_t nsessions;
};

/* Starts a session on an accepted socket (takes ownership of fd). With
 * proxy set, the connection must open with a PROXY header from a trusted
 * balancer; the client it names is then used for every check and log. */
int smtp_session_start(struct smtp_env *env, int fd, const struct sockaddr *sa, socklen_t salen,
		       bool proxy);
/* Asks every session to close at its next idle point (SIGTERM drain). */
void smtp_env_drain(struct smtp_env *env);
/* Closes every session at once (end of the drain deadline). */
void smtp_env_close_all(struct smtp_env *env);

#endif
