/* SPDX-License-Identifier: MIT */
#include "queue/dsn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "queue/notice.h"

#define DSN_MAX_SIZE (DSN_MAX_HEADERS + 1024 * 1024)
#define DSN_DIAG_MAX 900

/* One header-safe value: no CR, LF or other control characters, bounded. */
static void clean(char *dst, size_t dstlen, const char *src)
{
	size_t o = 0;

	for (; src && *src && o + 1 < dstlen && o < DSN_DIAG_MAX; src++) {
		unsigned char c = (unsigned char)*src;

		dst[o++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
	}
	dst[o] = '\0';
}

static bool status_ok(const char *s)
{
	/* "5.d{1,3}.d{1,3}" */
	int dots = 0, digits = 0;

	if (!s || s[0] != '5' || s[1] != '.')
		return false;
	for (s += 2; *s; s++) {
		if (*s == '.') {
			if (digits == 0 || ++dots > 1)
				return false;
			digits = 0;
		} else if (*s >= '0' && *s <= '9') {
			if (++digits > 3)
				return false;
		} else {
			return false;
		}
	}
	return dots == 1 && digits > 0;
}

bool dsn_wanted(const char *sender, unsigned flags)
{
	return sender && sender[0] && !(flags & STORE_MSG_DSN);
}

/* The header section of the original, CRLF line endings, cut at a line end
 * if it is longer than DSN_MAX_HEADERS. */
static void add_headers(struct notice_buf *b, const char *m, size_t len)
{
	size_t i = 0, line = 0;

	while (i < len) {
		size_t e = i;

		while (e < len && m[e] != '\n' && m[e] != '\r')
			e++;
		if (e == i)
			break; /* the empty line: end of the header */
		if (line + (e - i) + 2 > DSN_MAX_HEADERS)
			break;
		notice_add(b, m + i, e - i);
		notice_str(b, "\r\n");
		line += e - i + 2;
		if (e < len && m[e] == '\r' && e + 1 < len && m[e + 1] == '\n')
			e++;
		i = e + 1;
	}
}

static bool has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

int dsn_build(const struct dsn_report *r, const char *dsn_queue_id, char **out, size_t *outlen,
	      unsigned *flags_out)
{
	struct notice_buf b;
	char date[64], arrival[64], boundary[128], v[DSN_DIAG_MAX + 1];
	bool eight, utf8 = (r->flags & STORE_MSG_SMTPUTF8) != 0;
	int rc = 0;

	if (!dsn_wanted(r->sender, r->flags) || r->nrcpts == 0)
		return -EINVAL;
	notice_init(&b, DSN_MAX_SIZE);
	rfc5322_date(r->now, date, sizeof(date));
	rfc5322_date(r->arrival, arrival, sizeof(arrival));
	if (str_fmt(boundary, sizeof(boundary), "%s.%ld/%s", dsn_queue_id, (long)r->now,
		    r->reporting_mta) < 0)
		return -EINVAL;
	eight = has_8bit(r->sender, strlen(r->sender)) ||
		has_8bit(r->headers ? r->headers : "", r->headers ? r->headers_len : 0);
	for (size_t i = 0; i < r->nrcpts; i++)
		if (has_8bit(r->rcpts[i].rcpt, strlen(r->rcpts[i].rcpt)) ||
		    (r->rcpts[i].diagnostic &&
		     has_8bit(r->rcpts[i].diagnostic, strlen(r->rcpts[i].diagnostic))))
			eight = true;

	notice_fmt(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->reporting_mta);
	clean(v, sizeof(v), r->sender);
	notice_fmt(&b, "To: <%s>\r\n", v);
	notice_str(&b, "Subject: Undelivered Mail Returned to Sender\r\n");
	notice_fmt(&b, "Date: %s\r\n", date);
	notice_fmt(&b, "Message-ID: <%s.dsn@%s>\r\n", dsn_queue_id, r->reporting_mta);
	notice_str(&b, "Auto-Submitted: auto-replied\r\n");
	notice_str(&b, "MIME-Version: 1.0\r\n");
	notice_fmt(&b,
		   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		   "\tboundary=\"%s\"\r\n",
		   boundary);
	notice_fmt(&b, "Content-Transfer-Encoding: %s\r\n\r\n", eight ? "8bit" : "7bit");
	notice_str(&b, "This is a MIME-encapsulated message.\r\n\r\n");

	/* the human-readable part */
	notice_fmt(&b, "--%s\r\n", boundary);
	notice_str(&b, "Content-Description: Notification\r\n"
		       "Content-Type: text/plain; charset=utf-8\r\n");
	notice_fmt(&b, "Content-Transfer-Encoding: %s\r\n\r\n", eight ? "8bit" : "7bit");
	notice_fmt(&b, "This is the mail system at host %s.\r\n\r\n", r->reporting_mta);
	notice_str(&b, "I'm sorry to have to inform you that your message could not\r\n"
		       "be delivered to one or more recipients. It's attached below.\r\n\r\n");
	notice_str(&b, "The mail system\r\n\r\n");
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *d = &r->rcpts[i];
		char diag[DSN_DIAG_MAX + 1];

		clean(v, sizeof(v), d->rcpt);
		clean(diag, sizeof(diag), d->diagnostic ? d->diagnostic : "delivery failed");
		if (d->remote_mta && d->remote_mta[0])
			notice_fmt(&b, "<%s>: host %s said:\r\n    %s\r\n\r\n", v, d->remote_mta,
				   diag);
		else
			notice_fmt(&b, "<%s>: %s\r\n\r\n", v, diag);
	}

	/* the machine-readable part (RFC 3464) */
	notice_fmt(&b, "--%s\r\n", boundary);
	notice_fmt(&b, "Content-Description: Delivery report\r\nContent-Type: %s\r\n",
		   utf8 ? "message/global-delivery-status" : "message/delivery-status");
	notice_fmt(&b, "Content-Transfer-Encoding: %s\r\n\r\n", eight ? "8bit" : "7bit");
	notice_fmt(&b, "Reporting-MTA: dns; %s\r\n", r->reporting_mta);
	notice_fmt(&b, "X-Mxguard-Queue-ID: %s\r\n", r->queue_id ? r->queue_id : "");
	clean(v, sizeof(v), r->sender);
	notice_fmt(&b, "X-Mxguard-Sender: rfc822; %s\r\n", v);
	notice_fmt(&b, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *d = &r->rcpts[i];
		char diag[DSN_DIAG_MAX + 1];

		clean(v, sizeof(v), d->rcpt);
		clean(diag, sizeof(diag), d->diagnostic ? d->diagnostic : "delivery failed");
		notice_str(&b, "\r\n");
		notice_fmt(&b, "Final-Recipient: %s; %s\r\n",
			   has_8bit(v, strlen(v)) ? "utf-8" : "rfc822", v);
		notice_str(&b, "Action: failed\r\n");
		notice_fmt(&b, "Status: %s\r\n", status_ok(d->status) ? d->status : "5.0.0");
		if (d->remote_mta && d->remote_mta[0]) {
			clean(v, sizeof(v), d->remote_mta);
			notice_fmt(&b, "Remote-MTA: dns; %s\r\n", v);
		}
		notice_fmt(&b, "Diagnostic-Code: smtp; %s\r\n", diag);
	}
	notice_str(&b, "\r\n");

	/* the original headers */
	notice_fmt(&b, "--%s\r\n", boundary);
	notice_fmt(&b, "Content-Description: Undelivered Message Headers\r\nContent-Type: %s\r\n",
		   utf8 ? "message/global-headers" : "text/rfc822-headers");
	notice_fmt(&b, "Content-Transfer-Encoding: %s\r\n\r\n", eight ? "8bit" : "7bit");
	if (r->headers)
		add_headers(&b, r->headers, r->headers_len);
	notice_str(&b, "\r\n");
	notice_fmt(&b, "--%s--\r\n", boundary);

	rc = notice_finish(&b, out, outlen);
	if (rc < 0)
		return rc == -ENOMEM ? -ENOMEM : -EINVAL;
	*flags_out = STORE_MSG_DSN | (eight ? STORE_MSG_8BITMIME : 0) |
		     (utf8 || has_8bit(r->sender, strlen(r->sender)) ? STORE_MSG_SMTPUTF8 : 0);
	return 0;
}

int dsn_queue(struct store *st, const struct dsn_report *r, bool *queued, char *qid_out)
{
	struct store_message msg = {0};
	const struct store_message *msgs[1] = {&msg};
	struct store_msg_rcpt rcpt = {0};
	struct store_rcpt cls;
	struct store_log_entry le = {0};
	char *data = NULL, detail[128];
	size_t len = 0;
	unsigned flags = 0;
	int rc;

	*queued = false;
	if (!dsn_wanted(r->sender, r->flags) || r->nrcpts == 0)
		return STORE_OK;
	queue_id_new(msg.queue_id);
	rc = dsn_build(r, msg.queue_id, &data, &len, &flags);
	if (rc < 0) {
		rc = rc == -ENOMEM ? STORE_TEMPFAIL : STORE_INVALID;
		goto out;
	}
	rc = store_rcpt_lookup(st, r->sender, &cls);
	if (rc == STORE_TEMPFAIL)
		goto out;
	rcpt.address = r->sender;
	rcpt.mailbox_id = rc == STORE_OK && cls.cls == STORE_RCPT_LOCAL ? cls.mailbox_id : 0;
	msg.sender = "";
	msg.client_addr = "127.0.0.1";
	msg.helo = r->reporting_mta;
	msg.received_at = r->now;
	msg.flags = flags;
	msg.rcpts = &rcpt;
	msg.nrcpts = 1;
	msg.data = data;
	msg.len = len;
	rc = store_messages_commit(st, msgs, 1);
	if (rc < 0)
		goto out;
	*queued = true;
	if (qid_out)
		(void)str_copy(qid_out, QUEUE_ID_LEN + 1, msg.queue_id);
	(void)str_fmt(detail, sizeof(detail), "dsn=%s recipients=%zu", msg.queue_id, r->nrcpts);
	le.ts = r->now;
	le.queue_id = r->queue_id;
	le.event = "dsn";
	le.sender = r->sender;
	le.rcpt = r->nrcpts == 1 ? r->rcpts[0].rcpt : "";
	le.detail = detail;
	if (store_log_add(st, &le) < 0)
		log_warn("dsn", "qid=%s dsn=%s msg=\"message log row not written\"", r->queue_id,
			 msg.queue_id);
	rc = STORE_OK;
out:
	free(data);
	return rc;
}
