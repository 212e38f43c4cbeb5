/* SPDX-License-Identifier: MIT */
/*
 * fcrdns: forward-confirmed reverse DNS of a client address
 * (RFC 1912 section 2.1; the iprev method of RFC 8601 section 3).
 *
 * The PTR names of the client, then the A (IPv4 client) or AAAA (IPv6
 * client) records of each name, at most FCRDNS_MAX_NAMES of them, all in
 * parallel. The answer, as a status and a symbol to log and score:
 *   FCRDNS_CONFIRMED  a PTR name resolves back to the client  FCRDNS_OK
 *   FCRDNS_MISMATCH   PTR names, none resolves back           FCRDNS_MISMATCH
 *   FCRDNS_NO_PTR     no PTR at all (NXDOMAIN or NODATA)       FCRDNS_NO_PTR
 *   FCRDNS_TEMPFAIL   a look-up failed temporarily, or the     FCRDNS_TEMPFAIL
 *                     budget ran out, before any match
 * A TEMPFAIL is never a mismatch: it must not be scored as one.
 *
 * Ownership as in dnsbl.h: the request belongs to the caller until
 * fcrdns_req_free(); the callback runs at most once, from the loop,
 * within budget_ms; the result stays valid until fcrdns_req_free().
 */
#ifndef MXG_SCAN_FCRDNS_H
#define MXG_SCAN_FCRDNS_H

#include <sys/socket.h>

#include "core/util.h"
#include "net/resolver.h"

#define FCRDNS_MAX_NAMES 4

struct fcrdns_req;

enum fcrdns_status {
	FCRDNS_CONFIRMED,
	FCRDNS_MISMATCH,
	FCRDNS_NO_PTR,
	FCRDNS_TEMPFAIL,
};

struct fcrdns_result {
	enum fcrdns_status status;
	const char *symbol; /* FCRDNS_OK, FCRDNS_MISMATCH, FCRDNS_NO_PTR, FCRDNS_TEMPFAIL */
	const char *name;   /* confirmed name; or the first PTR name; else "" */
	const char *why;    /* for TEMPFAIL: "timeout", "SERVFAIL" ... ; else "" */
};

typedef void (*fcrdns_cb)(struct fcrdns_req *req, const struct fcrdns_result *res, void *arg);

int fcrdns_check(struct event_base *base, struct resolver *res, const struct sockaddr *client,
		 int64_t budget_ms, fcrdns_cb cb, void *arg, struct fcrdns_req **out) MXG_WUR;
/* The result once the callback has run, NULL before. */
const struct fcrdns_result *fcrdns_req_result(const struct fcrdns_req *req);
/* Cancels what is pending and frees req; allowed from its own callback. */
void fcrdns_req_free(struct fcrdns_req *req);

const char *fcrdns_symbol(enum fcrdns_status st);

#endif
