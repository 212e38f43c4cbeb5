/* SPDX-License-Identifier: MIT */
/* scores: the score-override file format and look-ups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scan/scores.h"

static struct scores *parse_ok(const char *text)
{
	struct scores *s = NULL;
	char err[256] = "";

	assert_int_equal(scores_parse("t.cf", text, strlen(text), &s, err, sizeof(err)), 0);
	assert_non_null(s);
	return s;
}

static void test_lines_comments_and_last_wins(void **state)
{
	struct scores *s =
	    parse_ok("# a comment\n\nscore BAYES_99 3.5\n  score URIBL_X -1.25   # why\n"
		     "score BAYES_99 4\nscore AV_CLAMD:Eicar-Test 9\n");
	double v = 0;

	(void)state;
	assert_int_equal(scores_count(s), 3);
	assert_true(scores_lookup(s, "BAYES_99", &v));
	assert_true(v == 4.0); /* the later line wins */
	assert_true(scores_lookup(s, "URIBL_X", &v));
	assert_true(v == -1.25);
	assert_true(scores_lookup(s, "AV_CLAMD:Eicar-Test", &v));
	assert_false(scores_lookup(s, "BAYES_9", &v));
	assert_false(scores_lookup(s, "", &v));
	scores_free(s);
}

static void refused(const char *text, const char *where)
{
	struct scores *s = NULL;
	char err[256] = "";

	assert_int_equal(scores_parse("t.cf", text, strlen(text), &s, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, where));
}

static void test_bad_lines_name_file_and_line(void **state)
{
	(void)state;
	refused("score A 1\nscore B\n", "t.cf:2:");
	refused("scor A 1\n", "t.cf:1:");
	refused("score A 1 2\n", "t.cf:1:");
	refused("score A nan\n", "t.cf:1:");
	refused("score A 1e9\n", "t.cf:1:");
	refused("score A 1x\n", "t.cf:1:");
	refused("score A=B 1\n", "t.cf:1:");
	refused("\n\n\nscore A\"B 1\n", "t.cf:4:");
}

static void test_folder_in_name_order_missing_is_empty(void **state)
{
	char dir[] = "/tmp/mxg-scores-XXXXXX", p[256], err[256];
	struct scores *s = NULL;
	double v = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/50_a.cf", dir);
	assert_non_null(f = fopen(p, "w"));
	fputs("score X 1\nscore Y 2\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/90_local.cf", dir);
	assert_non_null(f = fopen(p, "w"));
	fputs("score X 5\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/README", dir); /* not a .cf: ignored */
	assert_non_null(f = fopen(p, "w"));
	fputs("not a score line\n", f);
	fclose(f);
	assert_int_equal(scores_load(dir, &s, err, sizeof(err)), 0);
	assert_true(scores_lookup(s, "X", &v) && v == 5.0);
	assert_true(scores_lookup(s, "Y", &v) && v == 2.0);
	scores_free(s);
	/* a broken file refuses the whole folder, naming it */
	snprintf(p, sizeof(p), "%s/95_bad.cf", dir);
	assert_non_null(f = fopen(p, "w"));
	fputs("score X\n", f);
	fclose(f);
	assert_int_equal(scores_load(dir, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "95_bad.cf:1:"));
	unlink(p);
	snprintf(p, sizeof(p), "%s/50_a.cf", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/90_local.cf", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/README", dir);
	unlink(p);
	rmdir(dir);
	assert_int_equal(scores_load(dir, &s, err, sizeof(err)), 0);
	assert_int_equal(scores_count(s), 0);
	scores_free(s);
	scores_dir("/x/rules/yara", p, sizeof(p));
	assert_string_equal(p, "/x/rules/scores");
	scores_dir("", p, sizeof(p));
	assert_string_equal(p, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines_comments_and_last_wins),
	    cmocka_unit_test(test_bad_lines_name_file_and_line),
	    cmocka_unit_test(test_folder_in_name_order_missing_is_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
