/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"

static int parse(const char *text, struct config *cfg, char *err, size_t errlen)
{
	config_defaults(cfg);
	return config_parse("t.conf", text, strlen(text), cfg, err, errlen);
}

static void test_defaults(void **state)
{
	static struct config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse("", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.smtp.max_recipients, 100);
	assert_int_equal(cfg.delivery.lifetime, 5 * 86400);
	assert_true(cfg.smtp.reject_bare_lf);
	assert_string_equal(cfg.smtp.listen[0], "127.0.0.1:2525");
	assert_non_null(config_sqlite_path(&cfg));
}

static void test_values(void **state)
{
	static struct config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse("# comment\n[smtp]\nmax_message_size = 10M\nlisten = "
			       "127.0.0.1:25, [::1]:25\nreject_bare_lf = no\n[delivery]\n"
			       "lifetime = 2d\n[store]\nurl = postgresql://db/mx\n",
			       &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.smtp.max_message_size, 10 * 1024 * 1024);
	assert_int_equal(cfg.smtp.nlisten, 2);
	assert_string_equal(cfg.smtp.listen[1], "[::1]:25");
	assert_false(cfg.smtp.reject_bare_lf);
	assert_int_equal(cfg.delivery.lifetime, 2 * 86400);
	assert_null(config_sqlite_path(&cfg));
}

static void expect_error(const char *text, const char *needle)
{
	static struct config cfg;
	char err[256] = "";

	assert_int_not_equal(parse(text, &cfg, err, sizeof(err)), 0);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_errors_name_file_and_line(void **state)
{
	(void)state;
	expect_error("[smtp]\nbogus = 1\n", "t.conf:2: unknown key 'bogus'");
	expect_error("[nope]\n", "t.conf:1: unknown section");
	expect_error("\n\n[smtp]\nmax_recipients = 0\n", "t.conf:4:");
	expect_error("[smtp]\nmax_recipients = lots\n", "not an integer");
	expect_error("[smtp]\nmax_recipients = 5\nmax_recipients = 6\n", "t.conf:3: duplicate");
	expect_error("max_recipients = 5\n", "outside of a [section]");
	expect_error("[smtp]\nlisten = nowhere\n", "not host:port");
	expect_error("[smtp]\nreject_bare_lf = maybe\n", "boolean");
	expect_error("[store]\nurl = mysql://x\n", "sqlite: or postgresql://");
	expect_error("[smtp]\njunk line\n", "t.conf:2: expected key = value");
	expect_error("[delivery]\nretry_min = 2h\nretry_max = 1h\n", "retry_min");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_errors_name_file_and_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
