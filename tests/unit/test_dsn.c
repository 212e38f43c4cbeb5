/* SPDX-License-Identifier: MIT */
/*
 * dsn: the structure of RFC 3464 reports, and that none is made for the
 * null sender or for a report; dsn_queue() against a real SQLite store.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue/dsn.h"

static const char original[] = "Received: from client.example.org\r\n"
			       "From: Alice <alice@example.org>\r\n"
			       "To: bob@example.net\r\n"
			       "Subject: hello\r\n"
			       "Message-ID: <orig@example.org>\r\n"
			       "\r\n"
			       "SECRET BODY LINE\r\n";

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Every line ends with CRLF: no bare CR, no bare LF. */
static void assert_crlf(const char *s, size_t len)
{
	assert_true(len >= 2);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			assert_true(i > 0 && s[i - 1] == '\r');
		if (s[i] == '\r')
			assert_true(i + 1 < len && s[i + 1] == '\n');
	}
	assert_memory_equal(s + len - 2, "\r\n", 2);
}

/* The text of the part whose Content-Type starts with type. */
static char *part(const char *msg, const char *type)
{
	char needle[128], *start, *end, *out;
	const char *b = strstr(msg, "boundary=\"");
	char boundary[128];
	size_t n;

	assert_non_null(b);
	b += strlen("boundary=\"");
	n = strcspn(b, "\"");
	assert_true(n < sizeof(boundary) - 4);
	memcpy(boundary, "--", 2);
	memcpy(boundary + 2, b, n);
	boundary[n + 2] = '\0';
	snprintf(needle, sizeof(needle), "Content-Type: %s", type);
	start = strstr(msg, needle);
	assert_non_null(start);
	end = strstr(start, boundary);
	assert_non_null(end);
	out = calloc(1, (size_t)(end - start) + 1);
	memcpy(out, start, (size_t)(end - start));
	return out;
}

static void report_init(struct dsn_report *r, const struct dsn_rcpt *rcpts, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->reporting_mta = "mx.mxguard.test";
	r->queue_id = "0ABCDEFGHIJKLMNO";
	r->sender = "alice@example.org";
	r->arrival = 1700000000;
	r->now = 1700003600;
	r->headers = original;
	r->headers_len = sizeof(original) - 1;
	r->rcpts = rcpts;
	r->nrcpts = n;
}

static void test_dsn_one(void **state)
{
	const struct dsn_rcpt rc[] = {
	    {"bob@example.net", "5.1.1", "mail.example.net",
	     "550 5.1.1 <bob@example.net>: Recipient address rejected"},
	};
	struct dsn_report r;
	char *out = NULL, *ds, *hd, *txt;
	size_t len = 0;
	unsigned flags = 0;

	(void)state;
	report_init(&r, rc, 1);
	assert_true(dsn_wanted(r.sender, 0));
	assert_int_equal(dsn_build(&r, "0DSNQUEUEID00000", &out, &len, &flags), 0);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	assert_crlf(out, len);
	assert_true(flags & STORE_MSG_DSN);
	assert_false(flags & STORE_MSG_8BITMIME);

	/* the header */
	assert_true(strncmp(out, "From: Mail Delivery System <MAILER-DAEMON@mx.mxguard.test>\r\n",
			    60) == 0);
	assert_non_null(strstr(out, "\r\nTo: <alice@example.org>\r\n"));
	assert_non_null(strstr(out, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
	assert_non_null(strstr(out, "\r\nDate: Tue, 14 Nov 2023 23:13:20 +0000\r\n"));
	assert_non_null(strstr(out, "\r\nMessage-ID: <0DSNQUEUEID00000.dsn@mx.mxguard.test>\r\n"));
	assert_non_null(strstr(out, "\r\nAuto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(out, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(
	    strstr(out, "\r\nContent-Type: multipart/report; report-type=delivery-status;"));
	/* three parts and the closing boundary */
	assert_int_equal(count(out, "\r\n--0DSNQUEUEID00000."), 4);
	assert_int_equal(count(out, "--\r\n"), 1);

	txt = part(out, "text/plain");
	assert_non_null(strstr(txt, "<bob@example.net>: host mail.example.net said:"));
	assert_non_null(strstr(txt, "550 5.1.1 <bob@example.net>: Recipient address rejected"));
	free(txt);

	ds = part(out, "message/delivery-status");
	assert_non_null(strstr(ds, "\r\n\r\nReporting-MTA: dns; mx.mxguard.test\r\n"));
	assert_non_null(strstr(ds, "\r\nArrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	assert_non_null(strstr(ds, "\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\n"
				   "Action: failed\r\n"
				   "Status: 5.1.1\r\n"
				   "Remote-MTA: dns; mail.example.net\r\n"
				   "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient "
				   "address rejected\r\n"));
	free(ds);

	hd = part(out, "text/rfc822-headers");
	assert_non_null(strstr(hd, "\r\nSubject: hello\r\n"));
	assert_non_null(strstr(hd, "\r\nMessage-ID: <orig@example.org>\r\n"));
	free(hd);
	/* headers only: the body of the original is not returned */
	assert_null(strstr(out, "SECRET BODY LINE"));
	free(out);
}

static void test_dsn_several(void **state)
{
	const struct dsn_rcpt rc[] = {
	    {"bob@example.net", "5.1.1", "mail.example.net", "550 5.1.1 unknown"},
	    {"carol@example.net", NULL, NULL, "expired after 5 days: 451 4.3.0 try later"},
	    {"dave@example.com", "4.4.7", "", "no answer"},
	};
	struct dsn_report r;
	char *out = NULL, *ds;
	size_t len = 0;
	unsigned flags = 0;

	(void)state;
	report_init(&r, rc, 3);
	assert_int_equal(dsn_build(&r, "0DSNQUEUEID00001", &out, &len, &flags), 0);
	assert_crlf(out, len);
	ds = part(out, "message/delivery-status");
	/* one per-message block, one block per recipient */
	assert_int_equal(count(ds, "Reporting-MTA:"), 1);
	assert_int_equal(count(ds, "\r\n\r\nFinal-Recipient: rfc822; "), 3);
	assert_int_equal(count(ds, "Action: failed\r\n"), 3);
	assert_non_null(strstr(ds, "Final-Recipient: rfc822; carol@example.net\r\n"
				   "Action: failed\r\n"
				   "Status: 5.0.0\r\n"
				   "Diagnostic-Code: smtp; expired after 5 days: 451 4.3.0 try "
				   "later\r\n"));
	/* a status that is not 5.x.x is never reported as final */
	assert_non_null(strstr(ds, "Final-Recipient: rfc822; dave@example.com\r\n"
				   "Action: failed\r\n"
				   "Status: 5.0.0\r\n"
				   "Diagnostic-Code: smtp; no answer\r\n"));
	assert_int_equal(count(ds, "Remote-MTA:"), 1);
	free(ds);
	assert_non_null(strstr(out, "<carol@example.net>: expired after 5 days"));
	free(out);
}

static void test_dsn_hostile_reply(void **state)
{
	/* a reply cannot add header lines or end the report early */
	const struct dsn_rcpt rc[] = {
	    {"bob@example.net", "5.1.1", "mail.example.net",
	     "550 x\r\nStatus: 2.0.0\r\n\r\n--0DSNQUEUEID00002.1700003600/mx.mxguard.test--"},
	};
	struct dsn_report r;
	char *out = NULL;
	size_t len = 0;
	unsigned flags = 0;

	(void)state;
	report_init(&r, rc, 1);
	assert_int_equal(dsn_build(&r, "0DSNQUEUEID00002", &out, &len, &flags), 0);
	assert_crlf(out, len);
	assert_null(strstr(out, "\r\nStatus: 2.0.0"));
	assert_int_equal(count(out, "\r\n--0DSNQUEUEID00002."), 4);
	free(out);
}

static void test_dsn_none(void **state)
{
	const struct dsn_rcpt rc[] = {{"bob@example.net", "5.1.1", "", "550 no"}};
	struct dsn_report r;
	char *out = NULL;
	size_t len = 0;
	unsigned flags = 0;
	bool queued = true;

	(void)state;
	/* null sender */
	report_init(&r, rc, 1);
	r.sender = "";
	assert_false(dsn_wanted(r.sender, 0));
	assert_int_equal(dsn_build(&r, "0DSNQUEUEID00003", &out, &len, &flags), -EINVAL);
	assert_null(out);
	/* no store is touched: a NULL store proves it */
	assert_int_equal(dsn_queue(NULL, &r, &queued, NULL), STORE_OK);
	assert_false(queued);

	/* a report about a report */
	report_init(&r, rc, 1);
	r.flags = STORE_MSG_DSN;
	assert_false(dsn_wanted(r.sender, r.flags));
	assert_int_equal(dsn_build(&r, "0DSNQUEUEID00004", &out, &len, &flags), -EINVAL);
	assert_null(out);
	queued = true;
	assert_int_equal(dsn_queue(NULL, &r, &queued, NULL), STORE_OK);
	assert_false(queued);

	/* nothing bounced */
	report_init(&r, rc, 0);
	assert_int_equal(dsn_build(&r, "0DSNQUEUEID00005", &out, &len, &flags), -EINVAL);
}

struct found {
	int n;
	char sender[STORE_ADDR_LEN];
	char rcpt[STORE_ADDR_LEN];
	char qid[QUEUE_ID_LEN + 1];
};

static int list_cb(const struct store_queue_entry *e, void *arg)
{
	struct found *f = arg;

	f->n++;
	(void)str_copy(f->sender, sizeof(f->sender), e->sender);
	(void)str_copy(f->rcpt, sizeof(f->rcpt), e->rcpt);
	(void)str_copy(f->qid, sizeof(f->qid), e->queue_id);
	return 0;
}

static int log_cb(const struct store_log_entry *e, void *arg)
{
	int *n = arg;

	if (strcmp(e->event, "dsn") == 0)
		(*n)++;
	return 0;
}

static void test_dsn_queue_store(void **state)
{
	const struct dsn_rcpt rc[] = {{"bob@example.net", "5.1.1", "mx.example.net", "550 no"}};
	char dir[] = "/tmp/mxg-dsn-XXXXXX", url[128], path[96], err[256];
	char qid[QUEUE_ID_LEN + 1] = "";
	struct store *st = NULL;
	struct dsn_report r;
	struct found f = {0};
	struct store_log_query q = {0};
	void *data = NULL;
	size_t len = 0;
	bool queued = false;
	int ndsn = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	assert_int_equal(store_open(url, 2000, &st, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_migrate(st), STORE_OK);

	report_init(&r, rc, 1);
	r.now = time_now();
	assert_int_equal(dsn_queue(st, &r, &queued, qid), STORE_OK);
	assert_true(queued);
	assert_int_equal(strlen(qid), QUEUE_ID_LEN);

	/* queued from the null sender to the original sender */
	assert_int_equal(store_queue_list(st, qid, list_cb, &f), STORE_OK);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.sender, "");
	assert_string_equal(f.rcpt, "alice@example.org");

	/* claimable, flagged as a DSN, and the body is the report */
	{
		struct store_delivery d[4];
		size_t n = 0;

		assert_int_equal(store_queue_claim(st, "test:1", time_now() + 1, 60, d, 4, &n),
				 STORE_OK);
		assert_int_equal(n, 1);
		assert_true(d[0].flags & STORE_MSG_DSN);
		assert_string_equal(d[0].sender, "");
		assert_int_equal(store_message_load(st, d[0].message_id, &data, &len), STORE_OK);
		assert_non_null(memmem(data, len, "Final-Recipient: rfc822; bob@example.net", 40));
		free(data);
	}

	/* a 'dsn' event in the message log of the original */
	q.queue_id = r.queue_id;
	assert_int_equal(store_log_search(st, &q, log_cb, &ndsn), STORE_OK);
	assert_int_equal(ndsn, 1);

	store_close(st);
	snprintf(err, sizeof(err), "%s-wal", path);
	unlink(err);
	snprintf(err, sizeof(err), "%s-shm", path);
	unlink(err);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dsn_one),	      cmocka_unit_test(test_dsn_several),
	    cmocka_unit_test(test_dsn_hostile_reply), cmocka_unit_test(test_dsn_none),
	    cmocka_unit_test(test_dsn_queue_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
