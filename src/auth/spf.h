/* SPDX-License-Identifier: MIT */
/*
 * spf: Sender Policy Framework evaluation (RFC 7208), asynchronous, on the
 * worker's resolver (net/resolver.h) and its event loop.
 *
 * check_host() of RFC 7208 section 4 for one identity:
 *   spf_check()       the MAIL FROM identity (section 2.4); an empty
 *                     reverse-path is checked as postmaster@HELO;
 *   spf_check_helo()  the HELO identity (section 2.3).
 * Every mechanism (all, include, a, mx, ptr, ip4, ip6, exists) and
 * modifier (redirect, exp; unknown modifiers are ignored), the macros of
 * section 7 (with c, r, t only in explanations), the limits of section
 * 4.6.4 (10 terms that cause DNS look-ups, 2 void look-ups, 10 address
 * look-ups per mx and ptr), and the seven results of section 2.6.
 *
 * Contract:
 * - The callback runs exactly once per request, always from the event
 *   loop (never from inside spf_check()), unless the request is cancelled
 *   first with spf_cancel(). A DNS failure or a missed deadline is
 *   SPF_TEMPERROR (the caller answers 4xx), never "none" or "pass".
 * - The outcome and every string in it live only during the callback; the
 *   request is freed after the callback returns. spf_cancel() is not
 *   allowed from inside the callback.
 * - Everything is bounded: record size (RESOLVER_MAX_TEXT), terms per
 *   record (SPF_MAX_TERMS), include/redirect depth (bounded by the lookup
 *   limit), the whole evaluation by opts->timeout_ms.
 *
 * Pure helpers (no DNS) are exported for the unit tests and fuzzers:
 * spf_record_check() parses a record as the evaluator does, and
 * spf_macro_expand() expands a macro-string.
 */
#ifndef MXG_AUTH_SPF_H
#define MXG_AUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/util.h"
#include "net/resolver.h"

enum spf_result {
	SPF_NONE = 0,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

#define SPF_MAX_TERMS 128	/* terms in one record */
#define SPF_MAX_DNS_MECH 10	/* RFC 7208 4.6.4 */
#define SPF_MAX_VOID 2		/* RFC 7208 4.6.4 */
#define SPF_MAX_ADDR_LOOKUPS 10 /* per mx or ptr, RFC 7208 4.6.4 */
#define SPF_EXPLAIN_LEN 512	/* explanation kept, bytes */

struct spf_opts {
	int64_t timeout_ms;   /* whole evaluation; 0: 20000 (RFC 7208 4.6.4) */
	int max_dns_mech;     /* 0: SPF_MAX_DNS_MECH */
	int max_void;	      /* 0: SPF_MAX_VOID; -1: no limit */
	const char *receiver; /* %{r}: our host name; NULL: "unknown" */
	int64_t now;	      /* %{t}: 0 means the clock */
};

struct spf_outcome {
	enum spf_result result;
	const char *identity;	 /* "mailfrom" or "helo" */
	const char *domain;	 /* the domain checked */
	const char *mechanism;	 /* the term that matched, "" for none */
	const char *explanation; /* fail only: exp= text or the default */
	const char *problem;	 /* why a permerror/temperror, "" otherwise */
	unsigned dns_mech;	 /* terms that caused DNS look-ups */
	unsigned void_lookups;
	unsigned queries; /* DNS queries made */
};

struct spf_req;
typedef void (*spf_cb)(const struct spf_outcome *o, void *arg);

/* Checks the MAIL FROM identity mail_from ("" for the null reverse-path)
 * of a client at client (AF_INET or AF_INET6; IPv4-mapped IPv6 is taken
 * as IPv4) that said helo. opts may be NULL. Returns 0 and, if out is not
 * NULL, the request; or -EINVAL / -ENOMEM (no callback will come). */
int spf_check(struct resolver *r, const struct spf_opts *opts, const struct sockaddr *client,
	      const char *helo, const char *mail_from, spf_cb cb, void *arg,
	      struct spf_req **out) MXG_WUR;
/* Checks the HELO identity. */
int spf_check_helo(struct resolver *r, const struct spf_opts *opts, const struct sockaddr *client,
		   const char *helo, spf_cb cb, void *arg, struct spf_req **out) MXG_WUR;
/* The callback of req will not run; everything is freed. NULL: no-op. */
void spf_cancel(struct spf_req *req);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" */
const char *spf_result_name(enum spf_result r);

/* Parses an SPF record (which must start with "v=spf1") as the evaluator
 * does: 0 if it is well-formed, -EINVAL with why filled otherwise. */
int spf_record_check(const char *rec, size_t len, char *why, size_t whylen) MXG_WUR;

/* What the macros of RFC 7208 section 7 expand to. */
struct spf_macro_vars {
	const char *sender;   /* s: local-part@domain */
	const char *domain;   /* d: the current domain */
	const char *helo;     /* h */
	const char *receiver; /* r, NULL: "unknown" */
	const char *ptr;      /* p: validated name, NULL: "unknown" */
	const struct sockaddr *ip;
	int64_t now; /* t */
};

/* Expands the macro-string in[0..len) into out (terminated). explain:
 * an explain-string (c, r, t allowed, spaces kept). A domain-spec longer
 * than 253 bytes loses labels on the left (RFC 7208 7.3).
 * -EINVAL on a syntax error, -ENAMETOOLONG if out is short. */
int spf_macro_expand(const struct spf_macro_vars *v, const char *in, size_t len, bool explain,
		     char *out, size_t outlen) MXG_WUR;

#endif
