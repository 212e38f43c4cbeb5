/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/util.h"

static void test_str_copy(void **state)
{
	char b[4];

	(void)state;
	assert_int_equal(str_copy(b, sizeof(b), "abc"), 0);
	assert_string_equal(b, "abc");
	assert_int_not_equal(str_copy(b, sizeof(b), "abcd"), 0);
	assert_string_equal(b, "abc");
	assert_int_not_equal(str_fmt(b, sizeof(b), "%d", 12345), 0);
}

static void test_parse_numbers(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(parse_int64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_not_equal(parse_int64("101", 0, 100, &v), 0);
	assert_int_not_equal(parse_int64("4x", 0, 100, &v), 0);
	assert_int_not_equal(parse_int64("", 0, 100, &v), 0);
	assert_int_not_equal(parse_int64(" 4", 0, 100, &v), 0);
	assert_int_equal(parse_size("25M", &v), 0);
	assert_int_equal(v, 25 * 1024 * 1024);
	assert_int_equal(parse_size("512k", &v), 0);
	assert_int_equal(v, 512 * 1024);
	assert_int_not_equal(parse_size("M", &v), 0);
	assert_int_equal(parse_duration("5d", &v), 0);
	assert_int_equal(v, 5 * 86400);
	assert_int_equal(parse_duration("90", &v), 0);
	assert_int_equal(v, 90);
	assert_int_not_equal(parse_duration("5x", &v), 0);
}

static void test_parse_hostport(void **state)
{
	char h[64];
	uint16_t p;

	(void)state;
	assert_int_equal(parse_hostport("127.0.0.1:25", h, sizeof(h), &p), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_int_equal(p, 25);
	assert_int_equal(parse_hostport("[::1]:2525", h, sizeof(h), &p), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(p, 2525);
	assert_int_not_equal(parse_hostport("::1:25", h, sizeof(h), &p), 0);
	assert_int_not_equal(parse_hostport("host:0", h, sizeof(h), &p), 0);
	assert_int_not_equal(parse_hostport("host:70000", h, sizeof(h), &p), 0);
	assert_int_not_equal(parse_hostport("host", h, sizeof(h), &p), 0);
}

static void test_queue_id(void **state)
{
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];

	(void)state;
	queue_id_new(a);
	queue_id_new(b);
	assert_int_equal(strlen(a), QUEUE_ID_LEN);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < QUEUE_ID_LEN; i++)
		assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'A' && a[i] <= 'V'));
}

static void test_buf_limits(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10, 8);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_not_equal(buf_append(&b, "x", 1), 0);
	assert_int_equal(b.len, 10);
	assert_int_equal(buf_prepend(&b, "HDR:", 4), 0);
	assert_memory_equal(buf_data(&b), "HDR:0123456789", 14);
	assert_int_not_equal(buf_prepend(&b, "too-long", 8), 0);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_str_copy),	   cmocka_unit_test(test_parse_numbers),
	    cmocka_unit_test(test_parse_hostport), cmocka_unit_test(test_queue_id),
	    cmocka_unit_test(test_buf_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
