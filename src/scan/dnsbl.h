/* SPDX-License-Identifier: MIT */
/*
 * dnsbl: DNS blocklists and allowlists for a client address (RFC 5782).
 *
 * Every [dnsbl ZONE] of the configuration is asked at once, in parallel,
 * as soon as dnsbl_check() runs (at connect): the A record of the
 * reversed address under the zone (IPv4 octets, IPv6 nibbles; an
 * IPv4-mapped IPv6 client is asked as IPv4). An answer in 127.0.0.0/8
 * is a listing; the zone's codes map turns each code into a symbol and a
 * weight (unmapped codes: the zone's default symbol and weight, once per
 * zone). 127.255.255.x is a list's error code (e.g. "queries from public
 * resolvers refused") and, like answers outside 127/8, never a listing:
 * the zone is then reported as skipped. NXDOMAIN is "not listed".
 *
 * The result comes within dnsbl.budget of dnsbl_check(), always: a zone
 * that has not answered by then (or failed temporarily) is skipped,
 * named in the result and counted in metrics (M_DNSBL_TIMEOUTS). The
 * score is the sum of the hit weights (allowlists weigh <= 0); reject is
 * set when the score is > 0 and reaches dnsbl.reject_score and no
 * allowlist listed the client; reject_zone names the blocklist with the
 * largest weight in the sum, for "554 5.7.1 ... blocked using ZONE".
 *
 * Ownership: one dnsbl per worker, on the worker's resolver; it keeps a
 * pointer to cfg, which must outlive it, and every request must be freed
 * before dnsbl_free() (and res freed after it). A request belongs to the caller
 * from dnsbl_check() until dnsbl_req_free(); its callback runs at most
 * once, from the event loop, never after dnsbl_req_free(). The result
 * (and every string in it) stays valid until dnsbl_req_free().
 */
#ifndef MXG_SCAN_DNSBL_H
#define MXG_SCAN_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/util.h"
#include "net/resolver.h"

struct dnsbl;
struct dnsbl_req;

#define DNSBL_MAX_HITS_PER_ZONE 8

struct dnsbl_hit {
	const char *zone;
	const char *symbol;
	uint32_t code; /* host byte order: 0x7f000002 is 127.0.0.2 */
	double weight;
	bool allow;
};

struct dnsbl_skip {
	const char *zone;
	const char *why; /* "timeout", "SERVFAIL", "error code 127.255.255.254" ... */
};

struct dnsbl_result {
	double score;
	bool reject;
	bool allowlisted;
	const char *reject_zone; /* when reject */
	size_t nhits;
	const struct dnsbl_hit *hits;
	size_t nskipped; /* zones without an answer in the budget */
	const struct dnsbl_skip *skipped;
	size_t nzones; /* zones asked */
};

typedef void (*dnsbl_cb)(struct dnsbl_req *req, const struct dnsbl_result *res, void *arg);

/* Zones with their own "server" get their own resolver; the others use
 * res (not owned). why gets the reason on failure. */
int dnsbl_new(struct event_base *base, const struct config *cfg, struct resolver *res,
	      struct metrics *metrics, struct dnsbl **out, char *why, size_t whylen) MXG_WUR;
void dnsbl_free(struct dnsbl *d);

/* Starts the look-ups for client (AF_INET or AF_INET6). Returns 0 and the
 * request, or a negative errno (bad family, out of memory; no callback).
 * With no zones, or dnsbl.enabled = no, the (empty) result still comes
 * through the callback from the loop. */
int dnsbl_check(struct dnsbl *d, const struct sockaddr *client, dnsbl_cb cb, void *arg,
		struct dnsbl_req **out) MXG_WUR;
/* The result once the callback has run, NULL before. */
const struct dnsbl_result *dnsbl_req_result(const struct dnsbl_req *req);
/* Cancels what is pending and frees req (NULL: no-op). Allowed from the
 * request's own callback; never twice. */
void dnsbl_req_free(struct dnsbl_req *req);

#endif
