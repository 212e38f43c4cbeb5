/* SPDX-License-Identifier: MIT */
/*
 * dnslist: the machinery shared by the DNS lists of client addresses
 * (dnsbl) and of URL domains (uribl): the zones of one configuration
 * section with their resolvers, and one fan-out of A look-ups under a
 * time budget whose answers are read through each zone's codes map
 * (RFC 5782).
 *
 * Zones: a zone with its own "server" gets its own resolver, shared by
 * the zones on the same server; the others use the worker's resolver.
 *
 * Answers: an A record in 127.0.0.0/8 is a listing. The zone's codes map
 * turns each code into a symbol and a weight (unmapped codes: the zone's
 * default symbol and weight); the same symbol twice in one answer counts
 * once, and at most max_codes symbols count per answer. 127.255.255.x is
 * a list's error code and, like an answer outside 127/8, never a listing:
 * an answer with error codes and no listing is a skip ("error code
 * 127.255.255.N"). A temporary failure is a skip with the resolver's
 * reason, NXDOMAIN is "not listed". Every look-up still out when the
 * budget runs out is cancelled and skipped as "timeout". Timeouts count
 * in M_DNSBL_TIMEOUTS, answers with a listing in M_DNSBL_HITS.
 *
 * A request reports to its owner (the dnsbl or uribl request) through
 * dnslist_ops, all from the event loop: hit and skip per look-up, finish
 * once when every look-up answered or the budget ran out, then deliver
 * once. The owner is released (ops->release) by dnslist_req_free(),
 * after deliver has returned when called from inside it. The reasons
 * passed to skip stay valid until then.
 *
 * Ownership: a dnslist keeps zones and cfg, which must outlive it, and
 * must outlive its requests; the worker's resolver is not owned.
 */
#ifndef MXG_SCAN_DNSLIST_H
#define MXG_SCAN_DNSLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/util.h"
#include "net/resolver.h"

#define DNSLIST_MAX_CODES 8 /* the largest max_codes */

struct dnslist;
struct dnslist_req;

struct dnslist_ops {
	/* a listing in ask's answer at zone cz: once per counted symbol */
	void (*hit)(void *owner, size_t ask, const struct config_dnsbl_zone *cz, const char *symbol,
		    uint32_t code, double weight);
	/* ask has no usable answer; why lives until the owner is released */
	void (*skip)(void *owner, size_t ask, const struct config_dnsbl_zone *cz, const char *why);
	/* all answered or the budget spent: once, before deliver */
	void (*finish)(void *owner);
	/* hands the result to the caller: once, from the loop */
	void (*deliver)(void *owner);
	/* frees the owner: once, from dnslist_req_free() */
	void (*release)(void *owner);
};

/* The zones of section ("dnsbl", "uribl": for messages). Returns 0, or a
 * negative errno with the reason in why. */
int dnslist_new(struct event_base *base, const struct config *cfg, const char *section,
		const struct config_dnsbl_zone *zones, size_t nzones, struct resolver *res,
		struct metrics *metrics, struct dnslist **out, char *why, size_t whylen) MXG_WUR;
void dnslist_free(struct dnslist *dl);
size_t dnslist_nzones(const struct dnslist *dl);
const struct config_dnsbl_zone *dnslist_zone(const struct dnslist *dl, size_t zone);

/* A request for nasks look-ups, the budget starting now. From here on
 * the owner is released through ops->release: by dnslist_req_free(), or
 * at once when this fails (-ENOMEM). */
int dnslist_req_new(struct dnslist *dl, const struct dnslist_ops *ops, void *owner, size_t nasks,
		    size_t max_codes, int64_t budget_ms, struct dnslist_req **out) MXG_WUR;
/* Asks the A record of name at zone, as look-up ask (< nasks, once). */
int dnslist_req_ask(struct dnslist_req *q, size_t ask, size_t zone, const char *name) MXG_WUR;
/* After the asks: with none out, finishes now and delivers from the loop. */
void dnslist_req_go(struct dnslist_req *q);
/* True once deliver has run and until dnslist_req_free(). */
bool dnslist_req_delivered(const struct dnslist_req *q);
/* Cancels what is out and releases the owner (NULL: no-op). Allowed from
 * deliver, then done when deliver returns; never twice. */
void dnslist_req_free(struct dnslist_req *q);

#endif
