/* SPDX-License-Identifier: MIT */
/*
 * headercheck: the date parser, the Received parser and every header
 * symbol, each with messages that must fire and messages that must not.
 */
#include <errno.h>
#include <libpsl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/mime.h"
#include "scan/headercheck.h"

static struct mime_engine *ENG;
static psl_ctx_t *PSL;

/* 2024-01-01 10:00:00 UTC */
#define T0 1704103200LL

#define MAX_GOT 32
struct got {
	size_t n;
	char name[MAX_GOT][64];
	char detail[MAX_GOT][256];
};

static void collect(void *arg, const char *symbol, double score, const char *detail)
{
	struct got *g = arg;

	assert_true(score >= 0);
	if (g->n == MAX_GOT)
		return;
	snprintf(g->name[g->n], sizeof(g->name[0]), "%s", symbol);
	snprintf(g->detail[g->n], sizeof(g->detail[0]), "%s", detail);
	g->n++;
}

static const char *has(const struct got *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->name[i], name))
			return g->detail[i];
	return NULL;
}

static void scan_hdr(const char *headers, const char *helo, const char *rcpt, struct got *g)
{
	char msg[8192];
	struct mime_msg *m = NULL;
	const char *rcpts[1] = {rcpt ? rcpt : "ceo@customer.example"};
	struct headercheck_env env = {
	    .rcpts = rcpts,
	    .nrcpts = 1,
	    .helo = helo,
	    .hostname = "mx.gateway.example",
	    .now = T0 + 600,
	};
	int n = snprintf(msg, sizeof(msg), "%sSubject: t\r\n\r\nbody\r\n", headers);

	memset(g, 0, sizeof(*g));
	assert_true(n > 0 && (size_t)n < sizeof(msg));
	assert_int_equal(mime_parse(ENG, msg, (size_t)n, &m), 0);
	(void)headercheck_scan(PSL, m, &env, collect, g);
	mime_msg_free(m);
}

#define GOOD_RCVD                                                                                  \
	"Received: from out.sender.example (out.sender.example [192.0.2.5]) by "                   \
	"mx.sender-relay.example with ESMTPS id abc; Mon, 1 Jan 2024 09:59:00 +0000\r\n"
#define GOOD_FROM "From: Alice Example <alice@sender.example>\r\n"
#define GOOD_DATE "Date: Mon, 1 Jan 2024 10:58:00 +0100\r\n"
#define GOOD_MID "Message-ID: <abc.123@sender.example>\r\n"

static int setup(void **state)
{
	struct mime_limits l;

	(void)state;
	mime_limits_default(&l);
	ENG = mime_engine_new(&l, MIME_OPT_TEXT);
	PSL = psl_latest(NULL);
	return ENG && PSL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	mime_engine_free(ENG);
	psl_free(PSL);
	return 0;
}

static int64_t date(const char *s)
{
	int64_t t = -1;

	if (headercheck_parse_date(s, strlen(s), &t) < 0)
		return -1;
	return t;
}

static void test_parse_date(void **state)
{
	(void)state;
	assert_int_equal(date("Mon, 1 Jan 2024 10:00:00 +0000"), T0);
	assert_int_equal(date("1 Jan 2024 11:00:00 +0100"), T0);
	assert_int_equal(date("  Mon,  01 jan 2024 05:00 -0500 (EST)"), T0);
	assert_int_equal(date("Mon, 1 Jan 24 10:00:00 GMT"), T0);   /* obs-year */
	assert_int_equal(date("Mon, 1 Jan 124 10:00:00 UT"), T0);   /* 3 digits: +1900 */
	assert_int_equal(date("Mon, 1 Jan 2024 02:00:00 PST"), T0); /* obs-zone */
	assert_int_equal(date("Mon (day), 1 Jan 2024 10:00:00 Z"), T0);
	assert_int_equal(date("Thu, 29 Feb 2024 00:00:00 +0000"), 1709164800LL);
	assert_int_equal(date("Fri, 31 Dec 1999 23:59:60 +0000"), 946684800LL); /* leap second */
	assert_int_equal(date("Sat, 1 Jan 2000 00:00:00 +0000"), 946684800LL);
	/* not dates */
	assert_int_equal(date(""), -1);
	assert_int_equal(date("yesterday"), -1);
	assert_int_equal(date("Mon, 1 Jan 2024 10:00:00"), -1);	       /* no zone */
	assert_int_equal(date("Mon, 32 Jan 2024 10:00:00 +0000"), -1); /* day */
	assert_int_equal(date("Thu, 29 Feb 2023 10:00:00 +0000"), -1); /* not a leap year */
	assert_int_equal(date("Mon, 1 Foo 2024 10:00:00 +0000"), -1);  /* month */
	assert_int_equal(date("Mon, 1 Jan 2024 24:00:00 +0000"), -1);  /* hour */
	assert_int_equal(date("Mon, 1 Jan 2024 10:60:00 +0000"), -1);  /* minute */
	assert_int_equal(date("Mon, 1 Jan 2024 10:00:00 +0099"), -1);  /* zone minutes */
	assert_int_equal(date("Mon, 1 Jan 2024 10:00:00 +0000 junk"), -1);
	assert_int_equal(date("Mon, 1 Jan 20245 10:00:00 +0000"), -1);
	assert_int_equal(date("Mon, 1 Jan 2024 10:00:00 +0000 (unclosed"), T0);
}

static void test_parse_received(void **state)
{
	char from[64], by[64];
	int64_t t;
	const char r1[] = "from Mail.Example.COM (mail [192.0.2.1]) by mx.example.net (Postfix) "
			  "with ESMTP id 1; Mon, 1 Jan 2024 10:00:00 +0000";
	const char r2[] = "by localhost with local; garbage";
	const char r3[] = "from x (comment from evil by evil) by y";

	(void)state;
	assert_int_equal(
	    headercheck_parse_received(r1, strlen(r1), from, sizeof(from), by, sizeof(by), &t), 0);
	assert_string_equal(from, "mail.example.com");
	assert_string_equal(by, "mx.example.net");
	assert_int_equal(t, T0);
	assert_int_equal(
	    headercheck_parse_received(r2, strlen(r2), from, sizeof(from), by, sizeof(by), &t),
	    -EINVAL);
	assert_string_equal(from, "");
	assert_string_equal(by, "localhost");
	assert_int_equal(
	    headercheck_parse_received(r3, strlen(r3), from, sizeof(from), by, sizeof(by), &t),
	    -EINVAL);
	assert_string_equal(from, "x");
	assert_string_equal(by, "y"); /* words inside comments do not count */
}

static void test_clean_message(void **state)
{
	struct got g;

	(void)state;
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_DATE GOOD_MID, "out.sender.example", NULL, &g);
	for (size_t i = 0; i < g.n; i++)
		fail_msg("unexpected %s: %s", g.name[i], g.detail[i]);
	/* the forms a legit sender writes: quoted names, comments, groups */
	scan_hdr("From: \"Example, Alice\" <alice@sender.example>\r\n" GOOD_DATE GOOD_MID, NULL,
		 NULL, &g);
	assert_int_equal(g.n, 0);
	scan_hdr("From: alice@sender.example (Alice)\r\n" GOOD_DATE GOOD_MID, NULL, NULL, &g);
	assert_int_equal(g.n, 0);
	/* a display name showing the sender's own address is fine */
	scan_hdr("From: \"alice@sender.example\" <alice@sender.example>\r\n" GOOD_DATE GOOD_MID,
		 NULL, NULL, &g);
	assert_int_equal(g.n, 0);
	scan_hdr("From: \"bob@mail.sender.example\" <alice@sender.example>\r\n" GOOD_DATE GOOD_MID,
		 NULL, NULL, &g);
	assert_int_equal(g.n, 0);
}

static void test_date(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_MID, NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_DATE_MISSING"));
	assert_int_equal(g.n, 1);
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_MID "Date: sometime last week\r\n", NULL, NULL, &g);
	d = has(&g, "HDR_DATE_INVALID");
	assert_non_null(d);
	assert_non_null(strstr(d, "sometime last week"));
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_MID "Date: Wed, 3 Jan 2024 10:00:00 +0000\r\n", NULL,
		 NULL, &g);
	d = has(&g, "HDR_DATE_FUTURE");
	assert_non_null(d);
	assert_non_null(strstr(d, "48 h ahead"));
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_MID "Date: Mon, 1 Jan 2018 10:00:00 +0000\r\n", NULL,
		 NULL, &g);
	assert_non_null(has(&g, "HDR_DATE_PAST"));
	/* within the slack: a few hours either way */
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_MID "Date: Mon, 1 Jan 2024 20:00:00 +0000\r\n", NULL,
		 NULL, &g);
	assert_int_equal(g.n, 0);
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_MID "Date: Sat, 30 Dec 2023 10:00:00 +0000\r\n", NULL,
		 NULL, &g);
	assert_int_equal(g.n, 0);
	/* the reference is the top Received's time, not now */
	scan_hdr(
	    "Received: by relay.old.example; Tue, 1 Jan 2002 10:00:00 +0000\r\n" GOOD_FROM GOOD_MID
	    "Date: Tue, 1 Jan 2002 09:00:00 +0000\r\n",
	    NULL, NULL, &g);
	assert_int_equal(g.n, 0);
}

static void test_msgid(void **state)
{
	struct got g;

	(void)state;
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_DATE, NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_MSGID_MISSING"));
	const char *bad[] = {"abc@sender.example",   "<abc>",
			     "<@sender.example>",    "<abc@>",
			     "<a b@sender.example>", "<a@b@sender.example>"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char h[256];
		snprintf(h, sizeof(h), GOOD_RCVD GOOD_FROM GOOD_DATE "Message-ID: %s\r\n", bad[i]);
		scan_hdr(h, NULL, NULL, &g);
		if (!has(&g, "HDR_MSGID_INVALID"))
			fail_msg("not invalid: %s", bad[i]);
	}
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_DATE "Message-ID: <123@localhost>\r\n", NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_MSGID_NOT_FQDN"));
	assert_null(has(&g, "HDR_MSGID_INVALID"));
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_DATE "Message-ID: <123@[192.0.2.1]>\r\n", NULL, NULL, &g);
	assert_int_equal(g.n, 0);
	/* a recipient's domain on the right, From elsewhere */
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_DATE "Message-ID: <x1@mail.customer.example>\r\n", NULL,
		 NULL, &g);
	assert_non_null(has(&g, "HDR_MSGID_RCPT_DOMAIN"));
	/* ... but not when From is that domain too (a colleague) */
	scan_hdr(GOOD_RCVD "From: bob@customer.example\r\n" GOOD_DATE
			   "Message-ID: <x1@mail.customer.example>\r\n",
		 NULL, NULL, &g);
	assert_int_equal(g.n, 0);
}

static void test_from(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	scan_hdr(GOOD_RCVD GOOD_DATE GOOD_MID, NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_FROM_MISSING"));
	scan_hdr(GOOD_RCVD GOOD_FROM GOOD_FROM GOOD_DATE GOOD_MID, NULL, NULL, &g);
	d = has(&g, "HDR_FROM_MULTIPLE");
	assert_non_null(d);
	assert_non_null(strstr(d, "2 From fields"));
	scan_hdr(GOOD_RCVD "From: a@sender.example, b@other.example\r\n" GOOD_DATE GOOD_MID, NULL,
		 NULL, &g);
	assert_non_null(has(&g, "HDR_FROM_MULTIPLE"));
	scan_hdr(GOOD_RCVD "From: Alice <alice>\r\n" GOOD_DATE GOOD_MID, NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_FROM_INVALID"));
	scan_hdr(GOOD_RCVD "From: undisclosed\r\n" GOOD_DATE GOOD_MID, NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_FROM_INVALID"));
	/* the display name claims another address */
	scan_hdr(GOOD_RCVD "From: \"ceo@customer.example\" <x@evil.example>\r\n" GOOD_DATE GOOD_MID,
		 NULL, NULL, &g);
	d = has(&g, "HDR_FROM_NAME_ADDR");
	assert_non_null(d);
	assert_non_null(strstr(d, "ceo@customer.example"));
	assert_non_null(strstr(d, "x@evil.example"));
	/* the same in an encoded word */
	scan_hdr(GOOD_RCVD
		 "From: =?utf-8?q?CEO_ceo=40customer=2Eexample?= <x@evil.example>\r\n" GOOD_DATE
		     GOOD_MID,
		 NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_FROM_NAME_ADDR"));
	scan_hdr(GOOD_RCVD "From: x@evil.example (support@paypal.com)\r\n" GOOD_DATE GOOD_MID, NULL,
		 NULL, &g);
	assert_non_null(has(&g, "HDR_FROM_NAME_ADDR"));
}

static void test_received(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	/* the top Received claims the recipient's domain; the client is not it */
	scan_hdr("Received: from internal.customer.example by mx.customer.example; Mon, 1 Jan "
		 "2024 09:59:00 +0000\r\n" GOOD_FROM GOOD_DATE GOOD_MID,
		 "bulk.evil.example", NULL, &g);
	d = has(&g, "HDR_RCVD_FORGED_LOCAL");
	assert_non_null(d);
	assert_non_null(strstr(d, "claims customer.example"));
	/* ... our own host name */
	scan_hdr(
	    "Received: from x by mx.gateway.example; Mon, 1 Jan 2024 09:59:00 +0000\r\n" GOOD_FROM
		GOOD_DATE GOOD_MID,
	    "bulk.evil.example", NULL, &g);
	assert_non_null(has(&g, "HDR_RCVD_FORGED_LOCAL"));
	/* negatives: the client is that domain's server; no HELO known; a
	 * claim lower in the chain */
	scan_hdr("Received: from internal.customer.example by mx.customer.example; Mon, 1 Jan "
		 "2024 09:59:00 +0000\r\n" GOOD_FROM GOOD_DATE GOOD_MID,
		 "mx.customer.example", NULL, &g);
	assert_int_equal(g.n, 0);
	scan_hdr("Received: from internal.customer.example by mx.customer.example; Mon, 1 Jan "
		 "2024 09:59:00 +0000\r\n" GOOD_FROM GOOD_DATE GOOD_MID,
		 NULL, NULL, &g);
	assert_int_equal(g.n, 0);
	scan_hdr(GOOD_RCVD "Received: from a by b.customer.example; Mon, 1 Jan 2024 09:58:00 "
			   "+0000\r\n" GOOD_FROM GOOD_DATE GOOD_MID,
		 "out.sender.example", NULL, &g);
	assert_int_equal(g.n, 0);
	/* timestamps: unparseable, in the future, out of order */
	scan_hdr("Received: from a by b; not a date\r\n" GOOD_FROM GOOD_DATE GOOD_MID, NULL, NULL,
		 &g);
	assert_non_null(has(&g, "HDR_RCVD_BAD_DATE"));
	scan_hdr("Received: from a by b with SMTP\r\n" GOOD_FROM GOOD_DATE GOOD_MID, NULL, NULL,
		 &g);
	assert_non_null(has(&g, "HDR_RCVD_BAD_DATE"));
	scan_hdr("Received: from a by b; Fri, 1 Jan 2038 10:00:00 +0000\r\n" GOOD_FROM GOOD_MID
		 "Date: Fri, 1 Jan 2038 10:00:00 +0000\r\n",
		 NULL, NULL, &g);
	d = has(&g, "HDR_RCVD_BAD_DATE");
	assert_non_null(d);
	assert_non_null(strstr(d, "in the future"));
	scan_hdr(GOOD_RCVD
		 "Received: from a by b; Wed, 3 Jan 2024 10:00:00 +0000\r\n" GOOD_FROM GOOD_DATE
		     GOOD_MID,
		 NULL, NULL, &g);
	assert_non_null(has(&g, "HDR_RCVD_TIME_ORDER"));
	/* an earlier hop a little later (clock skew) is fine */
	scan_hdr(GOOD_RCVD
		 "Received: from a by b; Mon, 1 Jan 2024 11:00:00 +0000\r\n" GOOD_FROM GOOD_DATE
		     GOOD_MID,
		 NULL, NULL, &g);
	assert_int_equal(g.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_date),	  cmocka_unit_test(test_parse_received),
	    cmocka_unit_test(test_clean_message), cmocka_unit_test(test_date),
	    cmocka_unit_test(test_msgid),	  cmocka_unit_test(test_from),
	    cmocka_unit_test(test_received),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
