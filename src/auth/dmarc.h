/* SPDX-License-Identifier: MIT */
/*
 * dmarc: DMARC verification (RFC 7489), asynchronous, on the worker's
 * resolver (net/resolver.h), with the organizational domain taken from the
 * Public Suffix List through libpsl.
 *
 * dmarc_check() takes the raw message (only its header is read) and what
 * SPF and DKIM already decided (struct dmarc_auth), and:
 *   1. finds the RFC5322.From domain: exactly one From field holding
 *      exactly one address, else DMARC_PERMERROR (RFC 7489 6.6.1; the
 *      caller may reject such a message);
 *   2. discovers the policy (6.6.3): TXT at _dmarc.<From domain>; if no
 *      DMARC record is there, TXT at _dmarc.<organizational domain>. Only
 *      TXT records starting "v=DMARC1" count; more than one is no policy;
 *      a record that fails the syntax of section 6.4 is no policy, except
 *      that a record whose only fault is p= (absent or invalid) but that
 *      has a rua= is taken as p=none (6.6.3 step 6);
 *   3. checks identifier alignment (3.1), relaxed (same organizational
 *      domain) or strict (same domain) as adkim= / aspf= say, for the SPF
 *      domain (only with SPF_PASS) and the d= of every passing signature;
 *   4. gives the published policy (sp= when the record came from the
 *      organizational domain and sp= is set, p= otherwise) and, on fail,
 *      the disposition after pct= sampling (6.6.4: a message not sampled
 *      gets the next weaker policy).
 *
 * Results: DMARC_PASS (an identifier aligned), DMARC_FAIL (a policy was
 * found and nothing aligned), DMARC_NONE (no policy), DMARC_TEMPERROR (a
 * DNS failure or time-out during discovery: the caller answers 4xx, never
 * "none"), DMARC_PERMERROR (the From field is unusable).
 *
 * Contract: the callback runs exactly once, from the event loop (never
 * from inside dmarc_check()), unless dmarc_cancel() comes first. The
 * outcome and its strings live during the callback; the request is freed
 * after it returns. dmarc_cancel() is not allowed from inside the
 * callback. The message and auth are read during dmarc_check() only (what
 * is needed is copied). The PSL context belongs to the caller and must
 * outlive the request; it is only read (libpsl look-ups are thread-safe).
 *
 * Pure helpers (no DNS) are exported for the unit tests and the fuzzer:
 * the record parser, the From field parser, the organizational domain and
 * the alignment test.
 */
#ifndef MXG_AUTH_DMARC_H
#define MXG_AUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/spf.h"
#include "core/util.h"
#include "net/resolver.h"

struct psl_ctx_st; /* libpsl's psl_ctx_t */

enum dmarc_result {
	DMARC_NONE = 0,
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR,
};

enum dmarc_policy {
	DMARC_POLICY_UNSET = 0, /* in a record: the tag is absent */
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

#define DMARC_DOMAIN_LEN 256 /* a domain name, terminated */
#define DMARC_MAX_DKIM 8     /* passing signatures looked at */
#define DMARC_MAX_FROM 4096  /* bytes of the unfolded From field */

/* A parsed record. The string fields are slices of the parsed text. */
struct dmarc_record {
	enum dmarc_policy p, sp;
	bool adkim_strict, aspf_strict; /* default relaxed */
	int pct;			/* 0..100, default 100 */
	uint32_t ri;			/* default 86400 */
	const char *rua, *ruf, *fo, *rf;
	size_t rua_len, ruf_len, fo_len, rf_len;
};

/* Parses a DMARC record (RFC 7489 6.3, 6.4; the tag-list of RFC 6376 3.2,
 * unknown tags ignored). Returns 0, or:
 *   -ENODATA          empty record;
 *   -EPROTONOSUPPORT  the first tag is not v=DMARC1;
 *   -EINVAL           a syntax error or a bad value of a known tag;
 *   -ENOENT           no p= (everything else valid and filled in).
 * A p= with a bad value is -EINVAL with the rest parsed as far as it
 * goes; use dmarc_record_parse()'s -ENOENT/-EINVAL only as "no policy". */
int dmarc_record_parse(const char *rec, size_t len, struct dmarc_record *out) MXG_WUR;

/* Parses the value of a From field (unfolded, without "From:"). Copies the
 * domain of the first address, lower-cased, without dots at either end,
 * into domain; *naddr gets the number of addresses in the field.
 * -EINVAL if no address with a usable domain is found, -ENAMETOOLONG if
 * it does not fit. */
int dmarc_from_domain(const char *value, size_t len, char *domain, size_t domlen,
		      size_t *naddr) MXG_WUR;

/* The organizational domain of domain (RFC 7489 3.2): the public suffix
 * and one more label; a domain that is itself a public suffix (or not
 * known to the list) stands for itself. The domain is normalized as in
 * dmarc_from_domain(). -EINVAL for an empty name, -ENAMETOOLONG. */
int dmarc_org_domain(const struct psl_ctx_st *psl, const char *domain, char *out,
		     size_t outlen) MXG_WUR;

/* Identifier alignment (RFC 7489 3.1) of two domains: strict (the same
 * name) or relaxed (the same organizational domain). */
bool dmarc_aligned(const struct psl_ctx_st *psl, const char *d1, const char *d2, bool strict);

/* What SPF and DKIM said about the message. */
struct dmarc_auth {
	enum spf_result spf;	 /* for the MAIL FROM identity */
	const char *spf_domain;	 /* its domain (RFC5321.MailFrom) */
	const char *const *dkim; /* d= of each signature with DKIM_PASS */
	size_t n_dkim;
};

struct dmarc_opts {
	/* The Public Suffix List. Required. */
	const struct psl_ctx_st *psl;
	/* pct= sampling: 0 draws at random (arc4random), as in production;
	 * 1..100 is the draw itself, for tests. A failing message is sampled
	 * (gets the full policy) when draw <= pct. */
	int pct_draw;
};

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;      /* published for this From domain */
	enum dmarc_policy disposition; /* to apply: fail only, after pct */
	bool sampled_out;	       /* pct= made the disposition weaker */
	bool spf_aligned, dkim_aligned;
	bool adkim_strict, aspf_strict;
	int pct;
	const char *from_domain;   /* "" if unknown */
	const char *org_domain;	   /* of the From domain, "" if unknown */
	const char *record_domain; /* where the record was found, "" */
	const char *spf_domain;	   /* the aligned SPF domain, "" */
	const char *dkim_domain;   /* the first aligned d=, "" */
	const char *record;	   /* the record, "" */
	const char *rua;	   /* its rua= value, "" */
	const char *problem;	   /* why none/temperror/permerror, "" */
};

struct dmarc_req;
typedef void (*dmarc_cb)(const struct dmarc_outcome *o, void *arg);

/* Starts the DMARC check of msg[0..len) (header, empty line, body).
 * Returns 0 and the request in *out (if out), or -EINVAL (no psl, bad
 * arguments) / -ENOMEM: then no callback will come. */
int dmarc_check(struct resolver *r, const struct dmarc_opts *opts, const char *msg, size_t len,
		const struct dmarc_auth *auth, dmarc_cb cb, void *arg,
		struct dmarc_req **out) MXG_WUR;
/* The callback of req will not run; everything is freed. NULL: no-op. */
void dmarc_cancel(struct dmarc_req *req);

/* "none", "pass", "fail", "temperror", "permerror" */
const char *dmarc_result_name(enum dmarc_result r);
/* "unset", "none", "quarantine", "reject" */
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
