/* SPDX-License-Identifier: MIT */
/*
 * test_arc: auth/arc without DNS: the AAR instance prefix, the structure
 * rules of a chain (RFC 8617 5.2 steps 2-3), and the sets arc_seal()
 * builds (instances, cv=, what it refuses to seal). Signatures are checked
 * over DNS by tests/integration/test_arc_suite.py (ValiMail suite and
 * mailauth).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/arc.h"

static const char body[] = "From: Joe <joe@example.com>\r\n"
			   "To: Sue <sue@example.net>\r\n"
			   "Subject: hello\r\n"
			   "\r\n"
			   "Hi.\r\n";

static void test_aar_instance(void **state)
{
	(void)state;
	assert_int_equal(arc_aar_instance("i=1; mx.example", 15), 1);
	assert_int_equal(arc_aar_instance(" i = 50 ;x", 10), 50);
	assert_int_equal(arc_aar_instance("i=51; x", 7), -EINVAL);
	assert_int_equal(arc_aar_instance("i=0; x", 6), -EINVAL);
	assert_int_equal(arc_aar_instance("i=1 mx.example", 14), -EINVAL); /* no ";" */
	assert_int_equal(arc_aar_instance("I=1; x", 6), -EINVAL);
	assert_int_equal(arc_aar_instance("i=; x", 5), -EINVAL);
}

static int check(const char *m, int *n, char *why)
{
	return arc_chain_check(m, strlen(m), n, why, 128);
}

#define SET(i, cv)                                                                                 \
	"ARC-Seal: i=" #i "; a=rsa-sha256; cv=" cv "; d=x.example; s=s; b=AAAA\r\n"                \
	"ARC-Message-Signature: i=" #i "; a=rsa-sha256; d=x.example; s=s; h=from; bh=AA; "         \
	"b=AAAA\r\n"                                                                               \
	"ARC-Authentication-Results: i=" #i "; mx.x.example; spf=pass\r\n"

static void test_structure(void **state)
{
	char why[128];
	int n = -1;

	(void)state;
	assert_int_equal(check(body, &n, why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(check(SET(1, "none") "From: a@b\r\n\r\n", &n, why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(check(SET(2, "pass") SET(1, "none") "\r\n", &n, why), 0);
	assert_int_equal(n, 2);
	/* i=1 must say none, later ones pass */
	assert_int_equal(check(SET(1, "pass") "\r\n", &n, why), -EBADMSG);
	assert_non_null(strstr(why, "cv="));
	assert_int_equal(check(SET(2, "none") SET(1, "none") "\r\n", &n, why), -EBADMSG);
	/* the newest seal says fail */
	assert_int_equal(check(SET(2, "fail") SET(1, "none") "\r\n", &n, why), -EBADMSG);
	assert_non_null(strstr(why, "cv=fail"));
	/* a gap, a duplicate, a missing member */
	assert_int_equal(check(SET(3, "pass") SET(1, "none") "\r\n", &n, why), -EBADMSG);
	assert_int_equal(check(SET(1, "none") SET(1, "none") "\r\n", &n, why), -EBADMSG);
	assert_non_null(strstr(why, "two for i=1"));
	assert_int_equal(
	    check("ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x; s=s; b=A\r\n\r\n", &n, why),
	    -EBADMSG);
	/* instance out of range, bad tag list */
	assert_int_equal(check("ARC-Seal: i=51; cv=pass; b=A\r\n\r\n", &n, why), -EBADMSG);
	assert_int_equal(check("ARC-Seal: i=1; _x=1; cv=none\r\n\r\n", &n, why), -EBADMSG);
}

static char *seal(struct dkim_key *k, const char *m, enum arc_result chain)
{
	char *out = NULL;
	struct arc_seal_opts o = {.key = k,
				  .domain = "seal.example",
				  .selector = "arc",
				  .authserv_id = "mx.seal.example",
				  .ar = "arc=pass; spf=pass smtp.mailfrom=example.com",
				  .chain = chain,
				  .now = 1700000000};

	assert_int_equal(arc_seal(&o, m, strlen(m), &out), 0);
	return out;
}

static void test_seal(void **state)
{
	char *pem = NULL, *txt = NULL, why[128];
	struct dkim_key *k = NULL, *ed = NULL;
	int n = -1;

	(void)state;
	assert_int_equal(dkim_keygen(DKIM_KEY_RSA2048, &pem, &txt), 0);
	assert_int_equal(dkim_key_from_pem(pem, strlen(pem), &k, why, sizeof(why)), 0);
	free(pem);
	free(txt);
	char *s1 = seal(k, body, ARC_NONE);
	assert_true(!strncmp(s1, "ARC-Seal: a=rsa-sha256; b=", 26));
	assert_non_null(strstr(s1, "cv=none; d=seal.example; i=1; s=arc; t=1700000000"));
	assert_non_null(strstr(s1, "\r\nARC-Message-Signature: a=rsa-sha256; b="));
	assert_non_null(strstr(s1, "h=from:to:subject;"));
	assert_non_null(strstr(s1, "\r\nARC-Authentication-Results: i=1; mx.seal.example;\r\n\t"
				   "arc=pass; spf=pass smtp.mailfrom=example.com\r\n"));
	/* the sealed message has a sound one-set chain */
	size_t l1 = strlen(s1), lb = strlen(body);
	char *m1 = malloc(l1 + lb + 1);
	assert_non_null(m1);
	memcpy(m1, s1, l1);
	memcpy(m1 + l1, body, lb + 1);
	assert_int_equal(arc_chain_check(m1, strlen(m1), &n, why, sizeof(why)), 0);
	assert_int_equal(n, 1);
	/* the next hop: i=2, cv from the chain result */
	char *s2 = seal(k, m1, ARC_PASS);
	assert_non_null(strstr(s2, "cv=pass; d=seal.example; i=2;"));
	assert_non_null(strstr(s2, "ARC-Authentication-Results: i=2;"));
	char *s2f = seal(k, m1, ARC_FAIL);
	assert_non_null(strstr(s2f, "cv=fail; d=seal.example; i=2;"));
	/* a chain whose newest seal says fail is not sealed again */
	size_t l2 = strlen(s2f);
	char *m2 = malloc(l2 + strlen(m1) + 1);
	assert_non_null(m2);
	memcpy(m2, s2f, l2);
	memcpy(m2 + l2, m1, strlen(m1) + 1);
	char *out = (char *)1;
	struct arc_seal_opts o = {.key = k,
				  .domain = "seal.example",
				  .selector = "arc",
				  .authserv_id = "mx.seal.example",
				  .ar = "arc=fail",
				  .chain = ARC_FAIL};
	assert_int_equal(arc_seal(&o, m2, strlen(m2), &out), 0);
	assert_null(out);
	/* ARC is rsa-sha256 only */
	assert_int_equal(dkim_keygen(DKIM_KEY_ED25519, &pem, &txt), 0);
	assert_int_equal(dkim_key_from_pem(pem, strlen(pem), &ed, why, sizeof(why)), 0);
	o.key = ed;
	assert_int_equal(arc_seal(&o, body, strlen(body), &out), -EINVAL);
	free(pem);
	free(txt);
	free(s1);
	free(s2);
	free(s2f);
	free(m1);
	free(m2);
	dkim_key_free(k);
	dkim_key_free(ed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aar_instance),
	    cmocka_unit_test(test_structure),
	    cmocka_unit_test(test_seal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
