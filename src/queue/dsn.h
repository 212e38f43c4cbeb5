/* SPDX-License-Identifier: MIT */
/*
 * dsn: delivery status notifications for recipients that bounced.
 *
 * Builds one RFC 3464 report per message and sender (RFC 6522
 * multipart/report; report-type=delivery-status): a human-readable part,
 * a message/delivery-status part (Reporting-MTA, Arrival-Date, then per
 * recipient Final-Recipient, Action: failed, Status, Remote-MTA,
 * Diagnostic-Code) and the original headers as text/rfc822-headers
 * (message/global-headers, RFC 6533, for an SMTPUTF8 message). CRLF line
 * endings throughout. RFC 3834: Auto-Submitted: auto-replied.
 *
 * No report goes to the null sender, and none is made for a message that
 * is itself a report (STORE_MSG_DSN): that is how bounce loops end.
 *
 * dsn_queue() commits the report to the queue as a new message (sender
 * "", flag STORE_MSG_DSN) and logs a 'dsn' event. The delivery worker
 * calls it BEFORE it records the bounces, so a crash in between can only
 * duplicate a report, never lose one. Returns STORE_OK or a store code
 * (STORE_TEMPFAIL: the bounces must not be recorded yet).
 */
#ifndef MXG_DSN_H
#define MXG_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "store/store.h"

#define DSN_MAX_HEADERS (64 * 1024) /* original headers quoted at most */

struct dsn_rcpt {
	const char *rcpt;	/* the address that bounced */
	const char *status;	/* "5.1.1" (RFC 3463); NULL or "": 5.0.0 */
	const char *remote_mta; /* host name that answered, or NULL/"" */
	const char *diagnostic; /* the remote reply or our reason */
};

struct dsn_report {
	const char *reporting_mta; /* our host name */
	const char *queue_id;	   /* of the original message */
	const char *sender;	   /* the original envelope sender */
	unsigned flags;		   /* of the original message (enum store_msg_flags) */
	int64_t arrival;	   /* when we received it */
	int64_t now;
	const char *headers; /* the original message (only its header is used) */
	size_t headers_len;
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
};

/* false for the null sender and for reports themselves. */
bool dsn_wanted(const char *sender, unsigned flags);

/* Builds the report into a malloc'd buffer (the caller frees *out).
 * dsn_queue_id names the report (Message-ID, boundary). Returns 0,
 * -EINVAL when no report is wanted (see dsn_wanted) or nothing bounced,
 * -ENOMEM. *flags_out gets the store flags the report needs. */
int dsn_build(const struct dsn_report *r, const char *dsn_queue_id, char **out, size_t *outlen,
	      unsigned *flags_out) MXG_WUR;

/* Builds and commits the report (see above). *queued tells whether one
 * was made; qid_out (QUEUE_ID_LEN + 1, may be NULL) gets its queue id. */
int dsn_queue(struct store *st, const struct dsn_report *r, bool *queued, char *qid_out) MXG_WUR;

#endif
