/* SPDX-License-Identifier: MIT */
/* policy (settings, lists, the per-recipient decision) and tag (header
 * edits), without a store. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "policy/tag.h"

static void item(struct policy *p, enum store_scope sc, enum store_policy_kind k, const char *key,
		 const char *value, const struct policy_subject *subj)
{
	struct store_policy_item it = {.scope = sc, .kind = k};

	snprintf(it.key, sizeof(it.key), "%s", key);
	snprintf(it.value, sizeof(it.value), "%s", value);
	(void)policy_apply(p, &it, subj);
}

static void test_defaults_and_check(void **state)
{
	struct policy p;
	char why[POLICY_WHY_LEN];

	(void)state;
	policy_defaults(&p);
	assert_true(p.tag_score == 4.0 && p.quarantine_score == 6.0 && p.reject_score == 15.0);
	assert_int_equal(p.quarantine_days, 30);
	assert_int_equal(p.virus_action, POLICY_REJECT);
	assert_int_equal(p.file[POLICY_KIND_EXECUTABLE], POLICY_FILE_NODE);
	assert_int_equal(policy_check("tag_score", "off", why, sizeof(why)), 0);
	assert_int_equal(policy_check("tag_score", "2.5", why, sizeof(why)), 0);
	assert_int_equal(policy_check("tag_score", "abc", why, sizeof(why)), -EINVAL);
	assert_int_equal(policy_check("quarantine_days", "13", why, sizeof(why)), -EINVAL);
	assert_int_equal(policy_check("quarantine_days", "14", why, sizeof(why)), 0);
	assert_int_equal(policy_check("virus_action", "tag", why, sizeof(why)), -EINVAL);
	assert_int_equal(policy_check("file_macros", "quarantine", why, sizeof(why)), 0);
	assert_int_equal(policy_check("subject_tag", "[x]\r\nBcc: a@b", why, sizeof(why)), -EINVAL);
	assert_int_equal(policy_check("subject_tag", "[sp\xc3\xa4m]", why, sizeof(why)), -EINVAL);
	assert_int_equal(policy_check("nosuch", "1", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "tag_score"));
	assert_int_equal(policy_pattern_check("@example.com", why, sizeof(why)), 0);
	assert_int_equal(policy_pattern_check("192.0.2.0/24", why, sizeof(why)), 0);
	assert_int_equal(policy_pattern_check("a b", why, sizeof(why)), -EINVAL);
	assert_int_equal(policy_pattern_check("nodot", why, sizeof(why)), -EINVAL);
}

static void test_inheritance_later_scope_wins(void **state)
{
	struct policy p;
	char v[64];

	(void)state;
	policy_defaults(&p);
	item(&p, STORE_SCOPE_GLOBAL, STORE_POLICY_SETTING, "quarantine_score", "-50", NULL);
	item(&p, STORE_SCOPE_DOMAIN, STORE_POLICY_SETTING, "quarantine_score", "off", NULL);
	item(&p, STORE_SCOPE_MAILBOX, STORE_POLICY_SETTING, "tag_score", "2", NULL);
	item(&p, STORE_SCOPE_MAILBOX, STORE_POLICY_SETTING, "tag_score", "bad", NULL); /* skipped */
	assert_true(isinf(p.quarantine_score));
	assert_int_equal(p.source[POLICY_QUARANTINE_SCORE], STORE_SCOPE_DOMAIN);
	assert_false(p.from_default[POLICY_QUARANTINE_SCORE]);
	assert_true(p.tag_score == 2.0);
	assert_true(p.from_default[POLICY_REJECT_SCORE]);
	policy_value_text(&p, POLICY_QUARANTINE_SCORE, v, sizeof(v));
	assert_string_equal(v, "off");
}

static void test_lists_most_specific_scope_block_beats_allow(void **state)
{
	struct policy_subject subj = {.sender = "x@mail.bad.test", .client = "192.0.2.7"};
	struct policy p;

	(void)state;
	policy_defaults(&p);
	item(&p, STORE_SCOPE_DOMAIN, STORE_POLICY_BLOCK, "", "bad.test", &subj); /* subdomain */
	assert_int_equal(p.listed, POLICY_LISTED_BLOCK);
	item(&p, STORE_SCOPE_MAILBOX, STORE_POLICY_ALLOW, "", "@mail.bad.test", &subj);
	assert_int_equal(p.listed, POLICY_LISTED_ALLOW); /* more specific scope */
	assert_false(p.listed_by_client);
	policy_defaults(&p);
	item(&p, STORE_SCOPE_DOMAIN, STORE_POLICY_BLOCK, "", "192.0.2.0/24", &subj);
	item(&p, STORE_SCOPE_DOMAIN, STORE_POLICY_ALLOW, "", "x@mail.bad.test", &subj);
	assert_int_equal(p.listed, POLICY_LISTED_BLOCK); /* same scope: block wins */
	policy_defaults(&p);
	item(&p, STORE_SCOPE_GLOBAL, STORE_POLICY_BLOCK, "", "@other.test", &subj);
	item(&p, STORE_SCOPE_GLOBAL, STORE_POLICY_BLOCK, "", "notbad.test", &subj);
	item(&p, STORE_SCOPE_GLOBAL, STORE_POLICY_BLOCK, "", "198.51.100.0/24", &subj);
	assert_int_equal(p.listed, POLICY_LISTED_NONE);
}

static enum policy_action decide(const struct policy *p, const struct policy_verdict *v,
				 enum policy_reason *r)
{
	char why[POLICY_WHY_LEN];

	return policy_decide(p, v, r, why, sizeof(why));
}

static void test_decide(void **state)
{
	struct policy_subject subj = {.sender = "boss@partner.test", .client = "192.0.2.7"};
	struct policy p;
	struct policy_verdict v = {.score = 5};
	enum policy_reason r;

	(void)state;
	policy_defaults(&p);
	assert_int_equal(decide(&p, &v, &r), POLICY_TAG);
	v.score = 6;
	assert_int_equal(decide(&p, &v, &r), POLICY_QUARANTINE);
	v.score = 15;
	assert_int_equal(decide(&p, &v, &r), POLICY_REJECT);
	assert_int_equal(r, POLICY_REASON_SCORE);
	v.score = 1;
	assert_int_equal(decide(&p, &v, &r), POLICY_DELIVER);
	/* DMARC p=quarantine failure */
	v.dmarc_fail = v.dmarc_quarantine = true;
	assert_int_equal(decide(&p, &v, &r), POLICY_QUARANTINE);
	assert_int_equal(r, POLICY_REASON_DMARC);
	v.dmarc_fail = v.dmarc_quarantine = false;
	/* virus: virus_action */
	v.virus = true;
	v.score = -100;
	assert_int_equal(decide(&p, &v, &r), POLICY_REJECT);
	assert_int_equal(r, POLICY_REASON_VIRUS);
	item(&p, STORE_SCOPE_MAILBOX, STORE_POLICY_SETTING, "virus_action", "quarantine", NULL);
	assert_int_equal(decide(&p, &v, &r), POLICY_QUARANTINE);
	v.virus = false;
	/* file kinds: node default, then the recipient's own */
	v.found[POLICY_KIND_EXECUTABLE] = true;
	v.node_block[POLICY_KIND_EXECUTABLE] = true;
	assert_int_equal(decide(&p, &v, &r), POLICY_REJECT);
	assert_int_equal(r, POLICY_REASON_FILETYPE);
	item(&p, STORE_SCOPE_DOMAIN, STORE_POLICY_SETTING, "file_executables", "quarantine", NULL);
	assert_int_equal(decide(&p, &v, &r), POLICY_QUARANTINE);
	item(&p, STORE_SCOPE_DOMAIN, STORE_POLICY_SETTING, "file_executables", "score", NULL);
	assert_int_equal(decide(&p, &v, &r), POLICY_DELIVER); /* score -100 */
	v.found[POLICY_KIND_EXECUTABLE] = false;
	/* allow: by sender only when authenticated; by client always */
	v.score = 50;
	item(&p, STORE_SCOPE_MAILBOX, STORE_POLICY_ALLOW, "", "boss@partner.test", &subj);
	assert_int_equal(decide(&p, &v, &r), POLICY_REJECT);
	v.sender_authenticated = true;
	assert_int_equal(decide(&p, &v, &r), POLICY_DELIVER);
	assert_int_equal(r, POLICY_REASON_ALLOW);
	v.dmarc_fail = true; /* never for a DMARC failure */
	assert_int_equal(decide(&p, &v, &r), POLICY_REJECT);
	v.dmarc_fail = false;
	v.sender_authenticated = false;
	item(&p, STORE_SCOPE_MAILBOX, STORE_POLICY_ALLOW, "", "192.0.2.0/24", &subj);
	assert_int_equal(decide(&p, &v, &r), POLICY_DELIVER);
	/* block */
	item(&p, STORE_SCOPE_MAILBOX, STORE_POLICY_BLOCK, "", "partner.test", &subj);
	v.score = -10;
	assert_int_equal(decide(&p, &v, &r), POLICY_REJECT);
	assert_int_equal(r, POLICY_REASON_BLOCK);
}

static void test_retention_never_under_14_days(void **state)
{
	struct policy p;

	(void)state;
	policy_defaults(&p);
	assert_int_equal(policy_quarantine_until(&p, 1000), 1000 + 30 * 86400);
	p.quarantine_days = 3; /* a bad stored value cannot shorten it */
	assert_int_equal(policy_quarantine_until(&p, 1000), 1000 + 14 * 86400);
}

static void test_tag_strip_subject_from(void **state)
{
	char msg[] = "X-Spam-Status: No, score=-100\r\n"
		     "Authentication-Results: mx.example; dkim=pass\r\n"
		     "Authentication-Results: other.example; spf=pass\r\n"
		     "X-Mxguard-Scan: score=-9\r\n\tCLEAN(-9)\r\n"
		     "Subject: hello\r\n\tworld\r\n"
		     "From: \"Bob\" <bob@example.org>\r\n"
		     "\r\n"
		     "X-Spam-Status: body text, left alone\r\n";
	size_t len = strlen(msg);
	char subj[64], from[64], *out = NULL;
	size_t outlen = 0;

	(void)state;
	assert_int_equal(tag_strip_ours(msg, &len, "mx.example"), 3);
	msg[len] = '\0';
	assert_null(strstr(msg, "score=-100"));
	assert_null(strstr(msg, "CLEAN"));
	assert_non_null(strstr(msg, "other.example; spf=pass"));
	assert_non_null(strstr(msg, "X-Spam-Status: body text"));
	tag_subject_get(msg, len, subj, sizeof(subj));
	assert_string_equal(subj, "hello world");
	tag_from_address(msg, len, from, sizeof(from));
	assert_string_equal(from, "bob@example.org");
	assert_int_equal(tag_subject_copy(msg, len, "X: y\r\n", 6, "[SPAM]", &out, &outlen), 0);
	assert_true(outlen > 6 && !memcmp(out, "X: y\r\n", 6));
	assert_non_null(memmem(out, outlen, "Subject: [SPAM] hello", 21));
	free(out);
	/* already tagged: not twice; no Subject: one is added */
	assert_int_equal(
	    tag_subject_copy("Subject: [SPAM] x\r\n\r\nb", 22, "", 0, "[SPAM]", &out, &outlen), 0);
	assert_null(memmem(out, outlen, "[SPAM] [SPAM]", 13));
	free(out);
	assert_int_equal(tag_subject_copy("From: a@b\r\n\r\nb", 14, "", 0, "[SPAM]", &out, &outlen),
			 0);
	assert_non_null(memmem(out, outlen, "Subject: [SPAM]\r\nFrom: a@b", 26));
	free(out);
	/* subjects are made safe to show: control bytes, bad UTF-8, no cut
	 * character */
	tag_subject_get("Subject: a\x1b[2Jb \xff caf\xc3\xa9\r\n\r\n", 28, subj, sizeof(subj));
	assert_string_equal(subj, "a?[2Jb ? caf\xc3\xa9");
	tag_subject_get("Subject: caf\xc3\xa9\r\n\r\n", 18, subj, 5);
	assert_string_equal(subj, "caf");
	/* From lists and oddities give no address */
	tag_from_address("From: a@b, c@d\r\n\r\n", 18, from, sizeof(from));
	assert_string_equal(from, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_and_check),
	    cmocka_unit_test(test_inheritance_later_scope_wins),
	    cmocka_unit_test(test_lists_most_specific_scope_block_beats_allow),
	    cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_retention_never_under_14_days),
	    cmocka_unit_test(test_tag_strip_subject_from),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
