/* SPDX-License-Identifier: MIT */
/*
 * headercheck: the top-level header fields of a message against RFC 5322
 * (sections 3.3 date-time with the obsolete forms of 4.3, 3.4 addresses,
 * 3.6 the fields, 3.6.4 Message-ID) and against the trace fields a
 * forger writes (RFC 5321 section 4.4 Received).
 *
 *   HDR_DATE_MISSING, HDR_DATE_INVALID    no Date, or one that does not parse
 *   HDR_DATE_FUTURE, HDR_DATE_PAST        Date more than 12 h after / 7 days
 *                                         before the time of the top Received
 *                                         field (or now, without one)
 *   HDR_MSGID_MISSING, HDR_MSGID_INVALID  no Message-ID, or not <left@right>
 *   HDR_MSGID_NOT_FQDN                    the right side is no domain
 *                                         ("localhost", no dot)
 *   HDR_MSGID_RCPT_DOMAIN                 the right side is a recipient's
 *                                         domain while From is not
 *   HDR_FROM_MISSING, HDR_FROM_MULTIPLE,  no From, several From fields or
 *   HDR_FROM_INVALID                      addresses, or none that parses
 *   HDR_FROM_NAME_ADDR                    the display name shows an address
 *                                         of another domain than the real one
 *                                         ("ceo@customer.example" <x@evil.example>)
 *   HDR_RCVD_FORGED_LOCAL                 the top Received names our host or a
 *                                         recipient's domain (from/by) while the
 *                                         client's HELO is not under it
 *   HDR_RCVD_BAD_DATE                     a Received time that does not parse or
 *                                         lies more than a day in the future
 *   HDR_RCVD_TIME_ORDER                   an earlier hop stamped more than 12 h
 *                                         after a later one
 *
 * Scores: the one table in headercheck.c. Each symbol at most once, its
 * detail names the field's value.
 */
#ifndef MXG_SCAN_HEADERCHECK_H
#define MXG_SCAN_HEADERCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "mime/mime.h"
#include "scan/pipeline.h"

struct psl_ctx_st;

/* The check for the pipeline's table (not wired in by this module). */
extern const struct scan_check headercheck_check;

struct headercheck_env {
	const char *const *rcpts; /* envelope recipients, "user@domain" */
	size_t nrcpts;
	const char *helo;     /* the client's HELO; NULL or "": unknown */
	const char *hostname; /* our own host name; NULL: none */
	int64_t now;	      /* wall clock, seconds */
};

typedef void (*headercheck_emit_fn)(void *arg, const char *symbol, double score,
				    const char *detail);

/* Runs every check on the top-level header of m. psl gives registrable
 * domains (NULL: exact host names are compared). Returns how many symbols
 * were emitted. */
size_t headercheck_scan(const struct psl_ctx_st *psl, const struct mime_msg *m,
			const struct headercheck_env *env, headercheck_emit_fn emit, void *arg);

/* RFC 5322 date-time, obsolete forms included (two-digit years, zone
 * names, comments), to seconds since the epoch (UTC). -EINVAL when it is
 * not one. */
int headercheck_parse_date(const char *s, size_t n, int64_t *out) MXG_WUR;

/* The from-name and by-name of a Received field's value (lower case,
 * "" when absent) and its time (after the last ';'). Returns 0, or
 * -EINVAL when the time does not parse (names are still set). */
int headercheck_parse_received(const char *s, size_t n, char *from, size_t fromlen, char *by,
			       size_t bylen, int64_t *t) MXG_WUR;

#endif
