/* SPDX-License-Identifier: MIT */
/*
 * arc: Authenticated Received Chain (RFC 8617): chain validation, with the
 * keys looked up through the worker's resolver as auth/dkim does, and
 * sealing (a new ARC set for the message we pass on).
 *
 * arc_verify() takes a whole message (bare LF taken as CRLF; copied) and
 * follows RFC 8617 section 5.2:
 *   - no ARC header field at all: ARC_NONE;
 *   - the newest ARC-Seal says cv=fail: ARC_FAIL;
 *   - structure: every ARC-Authentication-Results, ARC-Message-Signature
 *     and ARC-Seal carries an instance i= (1..ARC_MAX_INSTANCES), exactly
 *     one of each per instance, instances 1..n without a gap, a tag list
 *     that parses (RFC 6376 3.2), cv=none at i=1 and cv=pass after it:
 *     any breach is ARC_FAIL without a DNS query;
 *   - the newest AMS must verify (as a DKIM signature, without the From
 *     rule; an AMS whose h= names ARC-Seal fails), and every ARC-Seal
 *     from n down to 1 must verify (relaxed canonicalization of the sets
 *     1..i, RFC 8617 5.1.1): ARC_PASS, else ARC_FAIL.
 * The older AMSs are verified too, for oldest_pass (RFC 8617 5.2 step 5:
 * the lowest instance from which every AMS up to n verifies; 0 when all
 * do). RSA keys under min_rsa_bits (default 1024, RFC 8301) fail.
 * A key whose look-up failed temporarily makes a failing result carry
 * tempfail = true (the caller may answer 4xx instead of trusting "fail").
 *
 * Contract (as dkim_verify): the callback runs exactly once, from the
 * event loop, unless arc_cancel() comes first; the outcome and its strings
 * live during the callback; the request is freed after it returns;
 * arc_cancel() is not allowed from inside the callback.
 *
 * arc_seal() builds the set for instance n + 1 (RFC 8617 5.1): the
 * ARC-Authentication-Results "i=N; authserv-id; ar", the
 * ARC-Message-Signature over the message as given (relaxed/relaxed) and
 * the ARC-Seal with cv= from the chain result. *out gets the three fields,
 * ARC-Seal first, each with its final CRLF, to prepend to the message as
 * they are (free()). When the chain must not be sealed (its newest seal
 * says cv=fail, or it has ARC_MAX_INSTANCES sets already) it returns 0
 * with *out NULL. Pure CPU work.
 *
 * ARC has one algorithm, rsa-sha256 (RFC 8617 4.1.2): an AMS or AS with
 * another a= fails, and arc_seal() refuses an Ed25519 key (-EINVAL).
 *
 * Errors: -EINVAL (bad arguments), -ENOMEM, -EIO (crypto),
 * -ENAMETOOLONG (a field over its bound).
 */
#ifndef MXG_AUTH_ARC_H
#define MXG_AUTH_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dkim_sign.h"
#include "core/util.h"
#include "net/resolver.h"

#define ARC_MAX_INSTANCES 50

enum arc_result { ARC_NONE = 0, ARC_PASS, ARC_FAIL };

struct arc_opts {
	int min_rsa_bits; /* 0: DKIM_DEFAULT_MIN_RSA_BITS */
};

struct arc_outcome {
	enum arc_result result;
	int n;		    /* instances found (0: none, or broken structure) */
	int oldest_pass;    /* see above; meaningful on ARC_PASS */
	bool tempfail;	    /* a key look-up failed temporarily */
	const char *why;    /* "" on pass and none */
	const char *domain; /* d= of the newest ARC-Seal, "" if unknown */
};

struct arc_req;
typedef void (*arc_cb)(const struct arc_outcome *o, void *arg);

/* 0 and the request in *out (if out), or -EINVAL / -ENOMEM (no callback). */
int arc_verify(struct resolver *r, const struct arc_opts *opts, const char *msg, size_t len,
	       arc_cb cb, void *arg, struct arc_req **out) MXG_WUR;
void arc_cancel(struct arc_req *req);

/* "none", "pass", "fail" */
const char *arc_result_name(enum arc_result r);

struct arc_seal_opts {
	const struct dkim_key *key; /* dkim_key_load_file() */
	const char *domain;	    /* d= */
	const char *selector;	    /* s= */
	const char *authserv_id;    /* ours, as in our Authentication-Results */
	/* the results of our Authentication-Results after the authserv-id,
	 * e.g. "arc=pass; spf=pass smtp.mailfrom=example.org; dkim=..."
	 * (RFC 8617 recommends that it carries arc=) */
	const char *ar;
	enum arc_result chain;	    /* arc_verify()'s result for this message */
	int64_t now;		    /* t=; 0: the clock */
	const char *const *headers; /* AMS h= candidates; NULL: default */
	bool no_fold;		    /* one line per field (tests) */
};

int arc_seal(const struct arc_seal_opts *o, const char *msg, size_t len, char **out) MXG_WUR;

/* ---- building blocks (unit tests, fuzzer) ---- */

/* The structure of the chain in msg without DNS: 0 and the instance
 * count in *n (0: no ARC fields), or -EBADMSG with why filled when the
 * chain is broken (RFC 8617 5.2 steps 2 and 3). */
int arc_chain_check(const char *msg, size_t len, int *n, char *why, size_t whylen) MXG_WUR;

/* The instance of an ARC-Authentication-Results value ("i=N;" first),
 * or -EINVAL. */
int arc_aar_instance(const char *val, size_t len) MXG_WUR;

#endif
