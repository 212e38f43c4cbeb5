/* SPDX-License-Identifier: MIT */
/*
 * limits: per-client connection limits shared by every SMTP worker.
 *
 * One table in shared memory, mapped by the master before it forks, keyed
 * by client address (concurrent sessions, a token bucket for the
 * connection rate) and by client network, /24 for IPv4 and /64 for IPv6
 * (a token bucket). A process-shared robust mutex guards it: a worker
 * killed while holding it cannot wedge the others.
 *
 * Sessions are counted per worker, so when a worker dies the master clears
 * that worker's counts (limits_worker_reset) and no client is locked out
 * by sessions that no longer exist. The table has a fixed size; when it is
 * full of live entries a new client is let through (the global session cap
 * still applies) rather than refused for our lack of room.
 */
#ifndef MXG_SMTP_LIMITS_H
#define MXG_SMTP_LIMITS_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/util.h"

#define LIMITS_MAX_WORKERS 32

struct limits;

enum limits_verdict {
	LIMITS_OK = 0,
	LIMITS_IP_SESSIONS, /* too many concurrent sessions from the address */
	LIMITS_IP_RATE,	    /* connecting too fast */
	LIMITS_NET_RATE,    /* its network connects too fast */
};

/* Master, before fork: maps the table (fatal on failure). */
struct limits *limits_new(size_t entries);
void limits_free(struct limits *l);

/* A new connection: checks and, when allowed, counts it. */
enum limits_verdict limits_connect(struct limits *l, const struct config *cfg, int worker,
				   const struct sockaddr *sa);
/* The end of a session that limits_connect allowed. */
void limits_disconnect(struct limits *l, int worker, const struct sockaddr *sa);
/* Master: worker died; forget its sessions. */
void limits_worker_reset(struct limits *l, int worker);
const char *limits_verdict_name(enum limits_verdict v);

#endif
