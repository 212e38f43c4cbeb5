/* SPDX-License-Identifier: MIT */
/*
 * test_dkim_sign: auth/dkim_sign without DNS: key generation and loading,
 * the fields a signature names, its tags, and what it must refuse. The
 * signatures themselves are verified over DNS, by our verifier and by
 * mailauth, in tests/integration/test_arc_suite.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/dkim_sign.h"

static const char msg[] = "From: Joe <joe@example.com>\r\n"
			  "To: Sue <sue@example.net>\r\n"
			  "Subject: hello\r\n"
			  "X-Other: not signed\r\n"
			  "\r\n"
			  "Hi.\r\n";

static struct dkim_key *new_key(enum dkim_key_type t, char **txt)
{
	char *pem = NULL, why[128];
	struct dkim_key *k = NULL;

	assert_int_equal(dkim_keygen(t, &pem, txt), 0);
	assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
	assert_int_equal(dkim_key_from_pem(pem, strlen(pem), &k, why, sizeof(why)), 0);
	free(pem);
	return k;
}

static void test_keygen(void **state)
{
	char *txt = NULL;
	struct dkim_key *k;

	(void)state;
	k = new_key(DKIM_KEY_ED25519, &txt);
	assert_true(dkim_key_is_ed25519(k));
	/* 32 raw bytes: 44 characters of base64 */
	assert_non_null(strstr(txt, "v=DKIM1; k=ed25519; p="));
	assert_int_equal(strlen(strstr(txt, "p=") + 2), 44);
	dkim_key_free(k);
	free(txt);
	k = new_key(DKIM_KEY_RSA2048, &txt);
	assert_false(dkim_key_is_ed25519(k));
	assert_int_equal(dkim_key_bits(k), 2048);
	assert_non_null(strstr(txt, "v=DKIM1; k=rsa; p=MIIB"));
	dkim_key_free(k);
	free(txt);
}

static void test_key_refused(void **state)
{
	struct dkim_key *k = NULL;
	char why[128] = "";

	(void)state;
	assert_int_equal(dkim_key_from_pem("junk", 4, &k, why, sizeof(why)), -EKEYREJECTED);
	assert_null(k);
	assert_true(why[0] != '\0');
	assert_true(dkim_key_load_file("/nonexistent/key.pem", &k, why, sizeof(why)) < 0);
}

static void test_sign_fields(void **state)
{
	char *txt = NULL, *out = NULL;
	struct dkim_key *k = new_key(DKIM_KEY_ED25519, &txt);
	struct dkim_sign_opts o = {
	    .domain = "example.com", .selector = "s1", .now = 1700000000, .expire = 3600};

	(void)state;
	assert_int_equal(dkim_sign(k, &o, msg, strlen(msg), &out), 0);
	static const char head[] = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;";
	assert_int_equal(strncmp(out, head, sizeof(head) - 1), 0);
	assert_non_null(strstr(out, "d=example.com;"));
	assert_non_null(strstr(out, "s=s1;"));
	assert_non_null(strstr(out, "t=1700000000;"));
	assert_non_null(strstr(out, "x=1700003600;"));
	/* present listed fields, From over-signed, X-Other not */
	assert_non_null(strstr(out, "h=from:from:to:subject;"));
	assert_null(strstr(out, "x-other"));
	assert_int_equal(strcmp(out + strlen(out) - 2, "\r\n"), 0);
	/* folded: no line over 78 columns */
	for (const char *l = out, *e; *l; l = e + 1) {
		e = strchr(l, '\n');
		assert_non_null(e);
		assert_true(e - l <= 80);
	}
	free(out);
	/* deterministic for the same input (Ed25519) */
	char *again = NULL;
	assert_int_equal(dkim_sign(k, &o, msg, strlen(msg), &again), 0);
	assert_int_equal(dkim_sign(k, &o, msg, strlen(msg), &out), 0);
	assert_string_equal(out, again);
	free(again);
	free(out);
	dkim_key_free(k);
	free(txt);
}

static void test_sign_refuses(void **state)
{
	char *txt = NULL, *out = NULL;
	struct dkim_key *k = new_key(DKIM_KEY_ED25519, &txt);
	struct dkim_sign_opts o = {.domain = "example.com", .selector = "s1"};
	static const char nofrom[] = "To: a@b.example\r\n\r\nhi\r\n";

	(void)state;
	assert_int_equal(dkim_sign(k, &o, nofrom, strlen(nofrom), &out), -EINVAL);
	assert_null(out);
	o.domain = "exa mple.com";
	assert_int_equal(dkim_sign(k, &o, msg, strlen(msg), &out), -EINVAL);
	o.domain = "example.com";
	o.selector = NULL;
	assert_int_equal(dkim_sign(k, &o, msg, strlen(msg), &out), -EINVAL);
	dkim_key_free(k);
	free(txt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keygen),
	    cmocka_unit_test(test_key_refused),
	    cmocka_unit_test(test_sign_fields),
	    cmocka_unit_test(test_sign_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
