/* SPDX-License-Identifier: MIT */
/*
 * auth/spf and auth/dkim building blocks without DNS: the SPF record
 * parser and macro expansion (RFC 7208 7.4 examples), the DKIM tag-list
 * parser (RFC 6376 3.2), header and body canonicalization (RFC 6376 3.4,
 * including the examples of 3.4.5) and body hashes. The evaluators
 * themselves run against the corpus suites with a real nsd
 * (tests/integration/test_spf_suite.py, test_dkim_suite.py).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/dkim.h"
#include "auth/spf.h"

static void expand_is(const struct spf_macro_vars *v, const char *in, bool explain,
		      const char *want)
{
	char out[512];

	assert_int_equal(spf_macro_expand(v, in, strlen(in), explain, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_spf_macros_rfc_examples(void **state)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	struct spf_macro_vars v = {
	    .sender = "strong-bad@email.example.com",
	    .domain = "email.example.com",
	    .helo = "mx.example.org",
	    .ip = (struct sockaddr *)&s4,
	    .now = 1234,
	};

	(void)state;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.3", &s4.sin_addr), 1);
	expand_is(&v, "%{s}", false, "strong-bad@email.example.com");
	expand_is(&v, "%{o}", false, "email.example.com");
	expand_is(&v, "%{d}", false, "email.example.com");
	expand_is(&v, "%{d4}", false, "email.example.com");
	expand_is(&v, "%{d3}", false, "email.example.com");
	expand_is(&v, "%{d2}", false, "example.com");
	expand_is(&v, "%{d1}", false, "com");
	expand_is(&v, "%{dr}", false, "com.example.email");
	expand_is(&v, "%{d2r}", false, "example.email");
	expand_is(&v, "%{l}", false, "strong-bad");
	expand_is(&v, "%{l-}", false, "strong.bad");
	expand_is(&v, "%{lr}", false, "strong-bad");
	expand_is(&v, "%{lr-}", false, "bad.strong");
	expand_is(&v, "%{l1r-}", false, "strong");
	expand_is(&v, "%{ir}.%{v}._spf.%{d2}", false, "3.2.0.192.in-addr._spf.example.com");
	expand_is(&v, "%{lr-}.lp._spf.%{d2}", false, "bad.strong.lp._spf.example.com");
	expand_is(&v, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false,
		  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expand_is(&v, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false,
		  "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expand_is(&v, "%{d2}.trusted-domains.example.net", false,
		  "example.com.trusted-domains.example.net");
	/* escapes, URL-encoding of upper-case macros, explanation-only macros */
	expand_is(&v, "a%%b%_c%-d", false, "a%b c%20d");
	expand_is(&v, "%{S}", true, "strong-bad%40email.example.com");
	expand_is(&v, "%{c} %{t} %{r} %{p}", true, "192.0.2.3 1234 unknown unknown");
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::cb01", &s6.sin6_addr), 1);
	v.ip = (struct sockaddr *)&s6;
	expand_is(&v, "%{ir}.%{v}._spf.%{d2}", false,
		  "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf."
		  "example.com");
	expand_is(&v, "%{c}", true, "2001:db8::cb01");
}

static void test_spf_macros_bad(void **state)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct spf_macro_vars v = {
	    .sender = "a@b.example", .domain = "b.example", .ip = (struct sockaddr *)&s4};
	static const char *const bad[] = {"%",	   "%x",   "%{",   "%{q}", "%{d0}", "%{d",
					  "%(ir)", "%{c}", "%{r}", "%{t}", "a b"};
	char out[300];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_int_equal(
		    spf_macro_expand(&v, bad[i], strlen(bad[i]), false, out, sizeof(out)), -EINVAL);
	/* a long expansion loses labels on the left (RFC 7208 7.3) */
	char in[400] = "";
	size_t o = 0;
	for (int i = 0; i < 30; i++, o += 10)
		memcpy(in + o, "abcdefghi.", 10);
	memcpy(in + o, "example.com", 12);
	assert_int_equal(spf_macro_expand(&v, in, strlen(in), false, out, sizeof(out)), 0);
	assert_true(strlen(out) <= 253);
	assert_string_equal(out + strlen(out) - 12, ".example.com");
}

static void test_spf_record_parser(void **state)
{
	static const char *const good[] = {
	    "v=spf1",
	    "v=spf1 -all",
	    "V=SPF1 +a mx/24 ~ptr ?exists:%{i}.bl.example.com -all ",
	    "v=spf1 a:foo.example.com/24//64 mx//0 ip4:192.0.2.0/24 ip6:2001:db8::/32",
	    "v=spf1 include:_spf.example.com redirect=_spf.example.net exp=exp.example.com",
	    "v=spf1 a:foo:bar/baz.example.com unknown-mod=%{d} -all",
	    "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all",
	};
	static const char *const bad[] = {
	    "v=spf10",
	    "v=spf1 moo",
	    "v=spf1 -all.",
	    "v=spf1 ptr/24",
	    "v=spf1 a:museum",
	    "v=spf1 a:111.222.33.44",
	    "v=spf1 a:example.com:8080",
	    "v=spf1 ip4:1.2.3",
	    "v=spf1 ip4:1.2.3.4/33",
	    "v=spf1 ip6:::1/129",
	    "v=spf1 a/33",
	    "v=spf1 a//129",
	    "v=spf1 =all",
	    "v=spf1 redirect=a.example redirect=b.example",
	    "v=spf1 exp=a.example exp=b.example",
	    "v=spf1 exp=%{r}.example.com",
	    "v=spf1 include:",
	    "v=spf1 a:",
	    "v=spf1 exists:foo%(ir).sbl.example.com",
	    "v=spf1 a:\x80.example.com",
	    "v=spf1 -redirect=a.example.com",
	};
	char why[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		assert_int_equal(spf_record_check(good[i], strlen(good[i]), why, sizeof(why)), 0);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		if (spf_record_check(bad[i], strlen(bad[i]), why, sizeof(why)) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(why[0] != '\0');
	}
	assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
}

static void test_dkim_tags(void **state)
{
	struct dkim_tags t;
	const char *s = " v=1; a=rsa-sha256;\r\n\tb=abc\r\n def ; bh = x== ;";
	const struct dkim_tag *b;

	(void)state;
	assert_int_equal(dkim_tags_parse(s, strlen(s), &t), 0);
	assert_int_equal(t.n, 4);
	b = dkim_tags_get(&t, "b");
	assert_non_null(b);
	assert_int_equal(b->vlen, strlen("abc\r\n def"));
	assert_memory_equal(b->val, "abc\r\n def", b->vlen);
	assert_memory_equal(dkim_tags_get(&t, "bh")->val, "x==", 3);
	assert_null(dkim_tags_get(&t, "d"));
	/* an empty value is a value */
	assert_int_equal(dkim_tags_parse("p=", 2, &t), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.t[0].vlen, 0);
	assert_int_equal(dkim_tags_parse("", 0, &t), 0);
	assert_int_equal(t.n, 0);
	/* strictness */
	assert_int_equal(dkim_tags_parse("a=1; a=2", 8, &t), -EEXIST);
	assert_int_equal(dkim_tags_parse("a=1;;", 5, &t), -EINVAL);
	assert_int_equal(dkim_tags_parse("=1", 2, &t), -EINVAL);
	assert_int_equal(dkim_tags_parse("1a=1", 4, &t), -EINVAL);
	assert_int_equal(dkim_tags_parse("a", 1, &t), -EINVAL);
	assert_int_equal(dkim_tags_parse("a=b\x01", 4, &t), -EINVAL);
	assert_int_equal(dkim_tags_parse("d=ex\xe9.net", 9, &t), -EINVAL);
	assert_int_equal(dkim_tags_parse("a=1\r\nb=2", 8, &t), -EINVAL);
	char many[400] = "";
	size_t o = 0;
	for (int i = 0; i < DKIM_MAX_TAGS + 1; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "t%d=1;", i);
	assert_int_equal(dkim_tags_parse(many, strlen(many), &t), -E2BIG);
}

static void canon_is(enum dkim_canon c, const char *in, const char *want)
{
	char out[256];
	size_t n = 0;

	assert_int_equal(dkim_canon_header(c, in, strlen(in), out, sizeof(out), &n), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
}

static void test_dkim_canon_header(void **state)
{
	(void)state;
	/* RFC 6376 3.4.5 */
	canon_is(DKIM_CANON_RELAXED, "A: X\r\n", "a:X\r\n");
	canon_is(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n");
	canon_is(DKIM_CANON_SIMPLE, "A: X\r\n", "A: X\r\n");
	canon_is(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  ", "B : Y\t\r\n\tZ  \r\n");
	canon_is(DKIM_CANON_RELAXED, "Subject:", "subject:\r\n");
}

static void bh_is(enum dkim_canon c, const char *body, int64_t l, const char *want)
{
	char b64[64];
	int64_t avail;

	assert_int_equal(dkim_body_hash(c, false, body, strlen(body), l, b64, sizeof(b64), &avail),
			 0);
	assert_string_equal(b64, want);
}

static void test_dkim_canon_body(void **state)
{
	(void)state;
	/* empty bodies: simple is one CRLF, relaxed nothing (RFC 6376 3.4.3, 3.4.4) */
	bh_is(DKIM_CANON_SIMPLE, "", -1, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	bh_is(DKIM_CANON_RELAXED, "", -1, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	bh_is(DKIM_CANON_SIMPLE, "\r\n\r\n\n\r\n", -1,
	      "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	/* RFC 6376 3.4.5: " C \r\nD \t E\r\n\r\n\r\n" relaxed is " C\r\nD E\r\n" */
	char a[64], b[64];
	int64_t n1, n2;
	const char *in = " C \r\nD \t E\r\n\r\n\r\n", *canon = " C\r\nD E\r\n";
	assert_int_equal(
	    dkim_body_hash(DKIM_CANON_RELAXED, false, in, strlen(in), -1, a, sizeof(a), &n1), 0);
	assert_int_equal(
	    dkim_body_hash(DKIM_CANON_SIMPLE, false, canon, strlen(canon), -1, b, sizeof(b), &n2),
	    0);
	assert_string_equal(a, b);
	assert_int_equal(n1, (int64_t)strlen(canon));
	/* a missing final CRLF is added; l= counts canonical bytes */
	assert_int_equal(dkim_body_hash(DKIM_CANON_SIMPLE, false, "x", 1, -1, a, sizeof(a), &n1),
			 0);
	assert_int_equal(n1, 3);
	assert_int_equal(
	    dkim_body_hash(DKIM_CANON_RELAXED, false, "abc def\r\n", 9, 3, a, sizeof(a), &n1), 0);
	assert_int_equal(dkim_body_hash(DKIM_CANON_SIMPLE, false, "abc", 3, -1, b, sizeof(b), &n2),
			 0);
	assert_string_not_equal(a, b); /* "abc" is not "abc\r\n" */
	assert_string_equal(dkim_result_name(DKIM_POLICY), "policy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spf_macros_rfc_examples), cmocka_unit_test(test_spf_macros_bad),
	    cmocka_unit_test(test_spf_record_parser),	    cmocka_unit_test(test_dkim_tags),
	    cmocka_unit_test(test_dkim_canon_header),	    cmocka_unit_test(test_dkim_canon_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
