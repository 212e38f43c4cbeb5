/* SPDX-License-Identifier: MIT */
/*
 * resolver: asynchronous DNS look-ups for one worker's libevent loop, on
 * c-ares (RFC 1035 messages, RFC 2308 negative caching, RFC 3596 AAAA).
 *
 * One resolver per event_base (per worker); it is not thread-safe. c-ares
 * sockets are watched with libevent events and ares_process_fd() runs on
 * activity; one timer drives the c-ares retransmissions.
 *
 * Queries: A, AAAA, TXT, MX, PTR. Every request ends in exactly one call
 * of its callback, always from the event loop (never from inside
 * resolver_query(), never after resolver_cancel()), with:
 *   RESOLVER_OK        at least one record of the type asked;
 *   RESOLVER_PERMFAIL  NXDOMAIN, or the name exists without records of
 *                      that type (NODATA), or a malformed name;
 *   RESOLVER_TEMPFAIL  SERVFAIL, REFUSED, time-out, no server reachable,
 *                      over the in-flight cap, out of memory.
 * A request is answered within its time-out, whatever the servers do.
 *
 * Cache: answers (positive and negative) are kept for their TTL, capped
 * by max_ttl. A negative answer lives min(SOA TTL, SOA minimum) (RFC 2308
 * section 5) or negative_ttl when the server sent no SOA. Temporary
 * failures are never cached. The cache holds at most cache_size entries
 * (least recently used go first). Requests for a name and type already
 * being looked up join that look-up instead of sending another query.
 * The in-flight cap counts look-ups sent to the servers.
 *
 * Memory: the result and every pointer in it live only during the
 * callback; the request is freed by the resolver after its callback
 * returns, or by resolver_cancel(). Names in answers are bounded
 * (RESOLVER_MAX_RR records, RESOLVER_MAX_TEXT bytes of TXT per answer).
 * resolver_free() cancels whatever is still pending, without callbacks.
 */
#ifndef MXG_NET_RESOLVER_H
#define MXG_NET_RESOLVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "core/metrics.h"
#include "core/util.h"

struct resolver;
struct resolver_req;

enum resolver_type {
	RESOLVER_A = 1,
	RESOLVER_AAAA = 28,
	RESOLVER_TXT = 16,
	RESOLVER_MX = 15,
	RESOLVER_PTR = 12,
};

enum resolver_status {
	RESOLVER_OK = 0,
	RESOLVER_PERMFAIL = -1,
	RESOLVER_TEMPFAIL = -2,
};

#define RESOLVER_NAME_LEN 256  /* a domain name, terminated */
#define RESOLVER_MAX_RR 32     /* records kept per answer */
#define RESOLVER_MAX_TEXT 4096 /* TXT bytes kept per answer */
#define RESOLVER_MAX_SERVERS 8

struct resolver_opts {
	/* "host:port, [v6]:port, ..."; NULL or "": /etc/resolv.conf */
	const char *servers;
	int64_t timeout_ms;	 /* per request */
	int64_t cache_size;	 /* entries; 0 disables the cache */
	int64_t max_inflight;	 /* look-ups at the servers at once */
	int64_t negative_ttl;	 /* seconds, for a negative answer without SOA */
	int64_t max_ttl;	 /* seconds */
	struct metrics *metrics; /* NULL: none; counts M_DNS_* */
};

struct resolver_rr {
	uint32_t ttl;
	uint16_t pref;	      /* MX */
	struct in_addr a;     /* A */
	struct in6_addr aaaa; /* AAAA */
	const char *text;     /* TXT (strings joined), MX exchange, PTR name */
	size_t len;	      /* of text */
};

struct resolver_result {
	enum resolver_status status;
	enum resolver_type type;
	const char *name;
	const char *why; /* "NXDOMAIN", "NODATA", "SERVFAIL", "timeout" ... */
	bool nxdomain;	 /* PERMFAIL because the name does not exist */
	bool from_cache;
	bool truncated; /* more records than RESOLVER_MAX_RR / _TEXT */
	size_t n;
	const struct resolver_rr *rr;
};

typedef void (*resolver_cb)(const struct resolver_result *res, void *arg);

struct resolver_stats {
	uint64_t queries; /* requests made */
	uint64_t sent;	  /* look-ups sent to the servers */
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t joined; /* requests that joined a look-up in flight */
	uint64_t timeouts;
	uint64_t over_cap;
	size_t inflight;
	size_t cached;
};

/* c-ares process initialisation; once, at start-up, before any thread. */
int resolver_global_init(void) MXG_WUR;

/* A resolver on base. why gets the reason on failure (bad server list,
 * c-ares could not start). */
int resolver_new(struct event_base *base, const struct resolver_opts *o, struct resolver **out,
		 char *why, size_t whylen) MXG_WUR;
void resolver_free(struct resolver *r);

/* Starts a look-up of name (no trailing dot needed). Returns 0 and,
 * if out is not NULL, the request (valid until its callback returns or
 * it is cancelled), or a negative errno for bad arguments (no callback
 * will come). Over the in-flight cap, or on out of memory for the
 * look-up, the callback comes at once (from the loop) with TEMPFAIL. */
int resolver_query(struct resolver *r, const char *name, enum resolver_type type, resolver_cb cb,
		   void *arg, struct resolver_req **out) MXG_WUR;
/* The callback of req will not run; req is freed. NULL is a no-op. */
void resolver_cancel(struct resolver_req *req);

void resolver_get_stats(const struct resolver *r, struct resolver_stats *st);

/* The loop r runs on, for modules built on the resolver that must defer
 * their own callbacks to it (auth/spf, auth/dkim). */
struct event_base *resolver_event_base(const struct resolver *r);

/* The reversed form of an address (RFC 1035 3.5, RFC 3596 2.5), then
 * "." zone: "4.3.2.1.zone", or the 32 nibbles of an IPv6 address in
 * reverse order. zone NULL: in-addr.arpa or ip6.arpa (a PTR name).
 * -EAFNOSUPPORT for another family, -ENAMETOOLONG if out is short. */
int resolver_reverse_name(const struct sockaddr *sa, const char *zone, char *out,
			  size_t outlen) MXG_WUR;

#endif
