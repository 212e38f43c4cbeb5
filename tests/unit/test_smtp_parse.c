/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "smtp/addr.h"
#include "smtp/data.h"

static void test_paths(void **state)
{
	struct smtp_path p;
	const char *s;

	(void)state;
	s = "<Alice@Example.TEST> SIZE=10";
	assert_int_equal(smtp_path_parse(&s, false, &p), 0);
	assert_string_equal(p.addr, "Alice@example.test");
	assert_string_equal(s, " SIZE=10");
	s = "<>";
	assert_int_equal(smtp_path_parse(&s, true, &p), 0);
	assert_true(p.null);
	s = "<>";
	assert_int_not_equal(smtp_path_parse(&s, false, &p), 0);
	s = "<@relay.test,@other.test:bob@example.test>";
	assert_int_equal(smtp_path_parse(&s, false, &p), 0);
	assert_string_equal(p.addr, "bob@example.test");
	s = "<\"john doe\"@example.test>";
	assert_int_equal(smtp_path_parse(&s, false, &p), 0);
	assert_string_equal(p.addr, "\"john doe\"@example.test");
	s = "<jürgen@bücher.test>";
	assert_int_equal(smtp_path_parse(&s, false, &p), 0);
	assert_true(p.utf8);
	s = "<Postmaster>";
	assert_int_equal(smtp_path_parse(&s, false, &p), 0);
	assert_true(p.no_domain);
	s = "<user@[192.0.2.1]>";
	assert_int_equal(smtp_path_parse(&s, false, &p), 0);
}

static void test_bad_paths(void **state)
{
	static const char *const bad[] = {
	    "alice@example.test",  "<alice@example.test", "<alice>",	       "<a b@example.test>",
	    "<a..b@example.test>", "<.a@example.test>",	  "<a@-x.test>",       "<a@x..test>",
	    "<a@[999.1.1.1]>",	   "<\xff@example.test>", "<a@\xc3\x28.test>", "<@x:>",
	};
	struct smtp_path p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *s = bad[i];
		if (smtp_path_parse(&s, false, &p) == 0)
			fail_msg("accepted bad path %s", bad[i]);
	}
}

static void test_params(void **state)
{
	const char *s = " SIZE=123 BODY=8BITMIME SMTPUTF8";
	char k[32], v[64];

	(void)state;
	assert_int_equal(smtp_param_next(&s, k, sizeof(k), v, sizeof(v)), 1);
	assert_string_equal(k, "SIZE");
	assert_string_equal(v, "123");
	assert_int_equal(smtp_param_next(&s, k, sizeof(k), v, sizeof(v)), 1);
	assert_string_equal(v, "8BITMIME");
	assert_int_equal(smtp_param_next(&s, k, sizeof(k), v, sizeof(v)), 1);
	assert_string_equal(k, "SMTPUTF8");
	assert_string_equal(v, "");
	assert_int_equal(smtp_param_next(&s, k, sizeof(k), v, sizeof(v)), 0);
	s = " SIZE=";
	assert_true(smtp_param_next(&s, k, sizeof(k), v, sizeof(v)) < 0);
}

/* Feeds input in pieces of every size to show the decoder is streaming. */
static void decode(const char *in, size_t piece, bool dot, struct buf *out, struct smtp_data *d,
		   int *ended, size_t *rest)
{
	size_t len = strlen(in), off = 0;

	buf_init(out, 1000, 0);
	smtp_data_init(d, out, dot);
	*ended = 0;
	while (off < len && !*ended) {
		size_t n = len - off < piece ? len - off : piece, used = 0;
		*ended = smtp_data_feed(d, in + off, n, &used);
		off += used;
	}
	*rest = len - off;
}

static void test_data_end_and_unstuffing(void **state)
{
	const char *in = "Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";

	(void)state;
	for (size_t piece = 1; piece < 40; piece++) {
		struct buf out;
		struct smtp_data d;
		int ended;
		size_t rest;

		decode(in, piece, true, &out, &d, &ended, &rest);
		assert_int_equal(ended, 1);
		assert_int_equal(rest, strlen("QUIT\r\n"));
		assert_int_equal(out.len, strlen("Subject: x\r\n\r\n.dot\r\n"));
		assert_memory_equal(buf_data(&out), "Subject: x\r\n\r\n.dot\r\n", out.len);
		assert_int_equal(d.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR), 0);
		buf_free(&out);
	}
}

static void test_data_smuggling_variants(void **state)
{
	/* None of these end the data: only CRLF.CRLF does. */
	static const char *const variants[] = {
	    "a\n.\nMAIL FROM:<x>\r\n", "a\r\n.\nMAIL FROM:<x>\r\n", "a\n.\r\nMAIL FROM:<x>\r\n",
	    "a\r.\rMAIL FROM:<x>\r\n", "a\r\n.\rMAIL FROM:<x>\r\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct buf out;
		struct smtp_data d;
		int ended;
		size_t rest;

		decode(variants[i], 1, true, &out, &d, &ended, &rest);
		if (ended)
			fail_msg("variant %zu ended the data", i);
		assert_true(d.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR));
		buf_free(&out);
	}
}

static void test_data_too_big_keeps_sync(void **state)
{
	char in[3000];
	struct buf out;
	struct smtp_data d;
	int ended;
	size_t rest;

	(void)state;
	memset(in, 'x', sizeof(in));
	memcpy(in + sizeof(in) - 8, "\r\n.\r\nQ", 6);
	in[sizeof(in) - 2] = '\0';
	decode(in, 7, true, &out, &d, &ended, &rest);
	assert_int_equal(ended, 1);
	assert_true(d.flags & SMTP_DATA_TOO_BIG);
	assert_true(out.len <= 1000);
	assert_int_equal(rest, 1);
	buf_free(&out);
}

static void test_bdat_raw(void **state)
{
	struct buf out;
	struct smtp_data d;
	int ended;
	size_t rest;

	(void)state;
	decode("a\r\n.\r\nb\r", 3, false, &out, &d, &ended, &rest);
	assert_int_equal(ended, 0);
	smtp_data_finish(&d);
	assert_true(d.flags & SMTP_DATA_BARE_CR);
	assert_memory_equal(buf_data(&out), "a\r\n.\r\nb\r\n", out.len);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_bad_paths),
	    cmocka_unit_test(test_params),
	    cmocka_unit_test(test_data_end_and_unstuffing),
	    cmocka_unit_test(test_data_smuggling_variants),
	    cmocka_unit_test(test_data_too_big_keeps_sync),
	    cmocka_unit_test(test_bdat_raw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
