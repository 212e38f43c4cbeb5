/* SPDX-License-Identifier: MIT */
/*
 * uribl: the registrable domains of a message's URLs against URI
 * blocklists (Spamhaus DBL, SURBL, URIBL style: the A record of
 * "domain.zone"; RFC 5782 section 2.3 for the conventions).
 *
 * Every [uribl ZONE] of the configuration (same keys as [dnsbl ZONE]:
 * weight, codes, symbol, server, allow) is asked for every domain, all at
 * once, through the worker's resolver. An answer in 127.0.0.0/8 is a
 * listing; the zone's codes map turns each code into a symbol and a weight
 * (unmapped codes: the zone's default symbol, URIBL_ZONE, and weight).
 * 127.255.255.x is a list's error code (queries refused, ...) and never a
 * listing: the zone is then reported as skipped, as are answers outside
 * 127/8. NXDOMAIN is "not listed"; a temporary failure is "skipped",
 * never "not listed".
 *
 * Limits: at most uribl.max_domains domains per message (the first ones
 * in document order; the result says how many were left out), domains in
 * uribl.allow_domains (or under them) are never asked, and the result
 * comes within uribl.budget of uribl_start(), always: zones late by then
 * are skipped and counted (M_DNSBL_TIMEOUTS, shared with dnsbl).
 *
 * Threads: uribl_domains() runs anywhere (it reads a parsed message, so on
 * the scanning thread); the rest on the worker's loop thread.
 *
 * Ownership: one uribl per worker; it keeps cfg, which must outlive it.
 * The domains given to uribl_start() are copied. A request belongs to the
 * caller until uribl_req_free(); its callback runs at most once, from the
 * loop, never from inside uribl_start() and never after uribl_req_free().
 * The result and its strings live until uribl_req_free().
 */
#ifndef MXG_SCAN_URIBL_H
#define MXG_SCAN_URIBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/util.h"
#include "mime/mime.h"
#include "net/resolver.h"
#include "scan/pipeline.h"

struct psl_ctx_st;
struct uribl;
struct uribl_req;

#define URIBL_DOMAIN_LEN 256
#define URIBL_MAX_DOMAINS 200 /* the maximum of uribl.max_domains */

struct uribl_hit {
	const char *zone;
	const char *symbol;
	const char *domain;
	uint32_t code; /* host byte order */
	double weight;
	bool allow;
};

struct uribl_skip {
	const char *zone;
	const char *domain;
	const char *why; /* "timeout", "SERVFAIL", "error code 127.255.255.254" */
};

struct uribl_result {
	double score; /* sum of the hit weights */
	size_t nhits;
	const struct uribl_hit *hits;
	size_t nskipped;
	const struct uribl_skip *skipped;
	size_t ndomains; /* domains asked */
	size_t nallowed; /* domains not asked: allowlisted */
	size_t nover;	 /* domains not asked: over uribl.max_domains */
	size_t nqueries; /* look-ups made (domains x zones) */
};

typedef void (*uribl_cb)(struct uribl_req *req, const struct uribl_result *res, void *arg);

/* Zones with their own "server" get their own resolver; the others use
 * res (not owned). why gets the reason on failure. */
int uribl_new(struct event_base *base, const struct config *cfg, struct resolver *res,
	      struct metrics *metrics, struct uribl **out, char *why, size_t whylen) MXG_WUR;
void uribl_free(struct uribl *u);

/* Starts the look-ups of domains (registrable domains, ASCII; duplicates
 * and bad names are dropped). Returns 0 and the request, or -EINVAL /
 * -ENOMEM (no callback then). With no zones, no domains, or
 * uribl.enabled = no, the empty result still comes through the callback. */
int uribl_start(struct uribl *u, const char *const *domains, size_t n, uribl_cb cb, void *arg,
		struct uribl_req **out) MXG_WUR;
const struct uribl_result *uribl_req_result(const struct uribl_req *req);
/* Cancels what is pending and frees req (NULL: no-op); allowed from its
 * own callback. */
void uribl_req_free(struct uribl_req *req);

/* The hits as scan symbols ("URIBL_DBL_SPAM", weight, "evil.example via
 * dbl.example"), one per symbol (the first domain named, "+N more").
 * Returns how many were written to out (at most max). */
size_t uribl_symbols(const struct uribl_result *r, struct scan_symbol *out, size_t max);

/* The distinct registrable domains (PSL, punycode) of the URLs of m, in
 * document order, into out (at most max). IP literals are skipped. */
size_t uribl_domains(const struct psl_ctx_st *psl, const struct mime_msg *m,
		     char (*out)[URIBL_DOMAIN_LEN], size_t max);

#endif
