/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static void test_dns_and_dnsbl(void **state)
{
	static struct config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse("", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.dns.servers, "");
	assert_int_equal(cfg.dns.timeout, 2000);
	assert_int_equal(cfg.dns.cache_size, 10000);
	assert_true(cfg.dnsbl.enabled);
	assert_int_equal(cfg.dnsbl.budget, 2000);
	assert_int_equal(cfg.dnsbl.nzones, 0);
	assert_int_equal(
	    parse("[dns]\nservers = 127.0.0.1:5353, [::1]:53\ntimeout = 500ms\n"
		  "cache_size = 0\nmax_inflight = 10\nnegative_ttl = 5m\n"
		  "[dnsbl]\nreject_score = 7.5\nbudget = 1s\nenabled = yes\n"
		  "[dnsbl Zen.Example.TEST.]\nweight = 5\n"
		  "codes = 127.0.0.2:ZEN_SBL, 127.0.0.4:ZEN_XBL:3.5,127.0.0.10:ZEN_PBL:-0.5\n"
		  "[dnsbl list.dnswl.test]\nallow = yes\n"
		  "[dnsbl local.rbl.test]\nserver = 127.0.0.1:5300\nsymbol = LOCAL\n",
		  &cfg, err, sizeof(err)),
	    0);
	assert_string_equal(cfg.dns.servers, "127.0.0.1:5353, [::1]:53");
	assert_int_equal(cfg.dns.timeout, 500);
	assert_int_equal(cfg.dns.cache_size, 0);
	assert_int_equal(cfg.dns.negative_ttl, 300);
	assert_true(cfg.dnsbl.reject_score == 7.5);
	assert_int_equal(cfg.dnsbl.budget, 1000);
	assert_int_equal(cfg.dnsbl.nzones, 3);
	assert_string_equal(cfg.dnsbl.zones[0].zone, "zen.example.test");
	assert_true(cfg.dnsbl.zones[0].weight == 5);
	assert_string_equal(cfg.dnsbl.zones[0].symbol, "RBL_ZEN_EXAMPLE_TEST");
	assert_int_equal(cfg.dnsbl.zones[0].ncodes, 3);
	assert_int_equal(cfg.dnsbl.zones[0].codes[1].code, 0x7f000004);
	assert_string_equal(cfg.dnsbl.zones[0].codes[1].symbol, "ZEN_XBL");
	assert_true(cfg.dnsbl.zones[0].codes[1].has_weight);
	assert_true(cfg.dnsbl.zones[0].codes[1].weight == 3.5);
	assert_false(cfg.dnsbl.zones[0].codes[0].has_weight);
	assert_true(cfg.dnsbl.zones[0].codes[2].weight == -0.5);
	assert_true(cfg.dnsbl.zones[1].allow);
	assert_true(cfg.dnsbl.zones[1].weight == -1); /* the allowlist default */
	assert_string_equal(cfg.dnsbl.zones[2].server, "127.0.0.1:5300");
	assert_string_equal(cfg.dnsbl.zones[2].symbol, "LOCAL");
	assert_true(cfg.dnsbl.zones[2].weight == 1);
}

static void test_dnsbl_errors(void **state)
{
	(void)state;
	expect_error("[dns]\nservers = resolver.example:53\n", "t.conf:2: dns.servers");
	expect_error("[dns]\nservers = 127.0.0.1\n", "IP:port");
	expect_error("[dns]\ntimeout = 10ms\n", "out of range");
	expect_error("[dns]\ntimeout = soon\n", "not a duration");
	expect_error("[dns]\nbogus = 1\n", "t.conf:2: unknown key 'bogus' in [dns]");
	expect_error("[dnsbl]\nreject_score = 1e3\n", "t.conf:2: dnsbl.reject_score");
	expect_error("[dnsbl]\nreject_score = -1\n", "out of range");
	expect_error("[dnsbl]\nbudget = 0\n", "out of range");
	expect_error("[dnsbl zen.example.test]\nweight = 1\n\n[dnsbl ZEN.example.test]\n",
		     "t.conf:4: [dnsbl zen.example.test]: duplicate zone");
	expect_error("[dnsbl not_a..zone]\n", "t.conf:1: [dnsbl not_a..zone]: not a DNS zone");
	expect_error("[dnsbl single]\n", "not a DNS zone");
	expect_error("[dnsbl z.test]\nfoo = 1\n", "t.conf:2: unknown key 'foo' in [dnsbl z.test]");
	expect_error("[dnsbl z.test]\nweight = 1\nweight = 2\n",
		     "t.conf:3: duplicate key 'weight' in [dnsbl z.test]");
	expect_error("[dnsbl z.test]\nweight = heavy\n", "t.conf:2: [dnsbl z.test] weight");
	expect_error("[dnsbl z.test]\nweight = 5000\n", "not a weight");
	expect_error("[dnsbl z.test]\ncodes = 127.0.0.2\n", "CODE:SYMBOL");
	expect_error("[dnsbl z.test]\ncodes = 10.0.0.2:X\n", "127.0.0.0/8");
	expect_error("[dnsbl z.test]\ncodes = 127.0.0.2:lower\n", "A-Z");
	expect_error("[dnsbl z.test]\ncodes = 127.0.0.2:A, 127.0.0.2:B\n", "duplicate return code");
	expect_error("[dnsbl z.test]\ncodes = 127.0.0.2:A:x\n", "weight");
	expect_error("[dnsbl z.test]\ncodes = ,\n", "at least one");
	expect_error("[dnsbl z.test]\nallow = perhaps\n", "boolean");
	expect_error("[dnsbl z.test]\nserver = 127.0.0.1:53, 127.0.0.2:53\n", "not IP:port");
	expect_error("[dnsbl z.test]\nsymbol = Bad-Symbol\n", "A-Z");
	/* checks that need the whole section: reported at its header line */
	expect_error("# x\n[dnsbl wl.test]\nallow = yes\nweight = 2\n[dns]\n",
		     "t.conf:2: [dnsbl wl.test]: an allowlist (allow = yes) needs weight <= 0");
	expect_error("[dnsbl wl.test]\nallow = yes\ncodes = 127.0.0.2:A:3\n",
		     "t.conf:1: [dnsbl wl.test]: an allowlist");
}

static void test_dnsbl_zone_limit(void **state)
{
	static char text[64 * 64];
	static struct config cfg;
	char err[256] = "";
	size_t o = 0;

	(void)state;
	for (int i = 0; i < CONFIG_MAX_DNSBL_ZONES + 1; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "[dnsbl z%d.test]\n", i);
	assert_int_not_equal(parse(text, &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "t.conf:65: [dnsbl z64.test]: too many zones"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_errors_name_file_and_line),
	    cmocka_unit_test(test_dns_and_dnsbl),
	    cmocka_unit_test(test_dnsbl_errors),
	    cmocka_unit_test(test_dnsbl_zone_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
