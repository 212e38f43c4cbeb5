/* SPDX-License-Identifier: MIT */
/* The SpamAssassin-format rules engine: parser, regex translation,
 * Vectorscan prefilter + PCRE2 confirmation, meta rules, evals, and the
 * whole Debian rule set (exact counts, GTUBE) when it is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/util.h"
#include "mime/mime.h"
#include "scan/sarules.h"

#ifndef MXG_SOURCE_ROOT
#define MXG_SOURCE_ROOT "."
#endif

#define DEBIAN_RULES "/usr/share/spamassassin"
#define GTUBE_SAMPLE                                                                               \
	MXG_SOURCE_ROOT "/../shared/corpus/spam-samples/spamassassin-examples/sample-spam.txt"

struct hits {
	char names[4096];
	double score;
	int n;
};

static void on_hit(void *arg, const char *name, double score, const char *describe)
{
	struct hits *h = arg;
	size_t l = strlen(h->names);

	(void)describe;
	(void)str_fmt(h->names + l, sizeof(h->names) - l, " %s", name);
	h->score += score;
	h->n++;
}

static bool has(const struct hits *h, const char *name)
{
	char pat[160];

	(void)str_fmt(pat, sizeof(pat), " %s", name);
	for (const char *p = h->names; (p = strstr(p, pat)); p++)
		if (p[strlen(pat)] == ' ' || p[strlen(pat)] == '\0')
			return true;
	return false;
}

/* Writes text to a temporary .cf file; path gets its name. */
static void write_cf(char *path, size_t len, const char *text)
{
	int fd;

	assert_int_equal(str_copy(path, len, "/tmp/test_sarules_XXXXXX.cf"), 0);
	fd = mkstemps(path, 3);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static struct sarules_db *load_text(const char *text)
{
	char path[64], err[256];
	const char *paths[1] = {path};
	struct sarules_db *db = NULL;

	write_cf(path, sizeof(path), text);
	if (sarules_db_load(paths, 1, &db, err, sizeof(err)) < 0)
		fail_msg("load: %s", err);
	unlink(path);
	return db;
}

/* Scans msg with db; the hits in h. */
static void scan(const struct sarules_db *db, const char *msg, const char *envfrom, struct hits *h)
{
	struct mime_limits lim;
	struct mime_engine *e;
	struct mime_msg *m = NULL;
	struct sarules_scanner *s = NULL;

	memset(h, 0, sizeof(*h));
	mime_limits_default(&lim);
	e = mime_engine_new(&lim, MIME_OPT_TEXT | MIME_OPT_URLS);
	assert_non_null(e);
	assert_int_equal(mime_parse(e, msg, strlen(msg), &m), 0);
	assert_int_equal(sarules_scanner_new(db, &s), 0);
	assert_true(sarules_scan(s, m, msg, strlen(msg), envfrom, on_hit, h) >= 0);
	sarules_scanner_free(s);
	mime_msg_free(m);
	mime_engine_free(e);
}

static size_t reason_count(const struct sarules_db *db, const char *reason)
{
	size_t n;

	for (size_t i = 0; i < sarules_db_nreasons(db); i++) {
		const char *r = sarules_db_reason(db, i, &n);
		if (r && !strcmp(r, reason))
			return n;
	}
	return 0;
}

static const char *const msg_plain =
    "From: \"Alice Example\" <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Cc: carol@example.net\r\n"
    "Subject: Cheap meds today\r\n"
    "Message-ID: <abc@example.org>\r\n"
    "X-Mailer: SuperMailer 5.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "please visit http://203.0.113.7/login to verify your account.\r\n"
    "\r\n"
    "Second paragraph\r\n"
    "continues here. foobar and foobaz.\r\n"
    "xxx yyy xxx zzz xxx\r\n";

/* ---- rule types -------------------------------------------------------------- */

static void test_header_rules(void **state)
{
	struct sarules_db *db;
	struct hits h;

	(void)state;
	db = load_text("header H_SUBJ   Subject =~ /cheap meds/i\n"
		       "header H_SUBJ_NO Subject =~ /viagra/\n"
		       "header H_NEG    Subject !~ /viagra/\n"
		       "header H_NEG_NO Subject !~ /meds/\n"
		       "header H_ADDR   From:addr =~ /^alice\\@example\\.org$/\n"
		       "header H_NAME   From:name =~ /^Alice Example$/\n"
		       "header H_RAW    From:raw =~ /\"Alice/\n"
		       "header H_ALL    ALL =~ /^X-Mailer: SuperMailer/m\n"
		       "header H_TOCC   ToCc =~ /carol/\n"
		       "header H_MSGID  MESSAGEID =~ /abc\\@example/\n"
		       "header H_EXISTS exists:X-Mailer\n"
		       "header H_EXISTS_NO exists:X-Nonexistent\n"
		       "header H_UNSET  X-Missing =~ /^fallback$/ [if-unset: fallback]\n"
		       "header H_MISSING_NEG X-Missing !~ /./\n"
		       "header H_ENV    EnvelopeFrom =~ /bounce\\@lists/\n"
		       "header H_NL     Subject =~ /today$/\n");
	assert_int_equal(sarules_db_nskipped(db), 0);
	assert_int_equal(sarules_db_nloaded(db), 16);
	scan(db, msg_plain, "bounce@lists.example.org", &h);
	assert_true(has(&h, "H_SUBJ"));
	assert_false(has(&h, "H_SUBJ_NO"));
	assert_true(has(&h, "H_NEG"));
	assert_false(has(&h, "H_NEG_NO"));
	assert_true(has(&h, "H_ADDR"));
	assert_true(has(&h, "H_NAME"));
	assert_true(has(&h, "H_RAW"));
	assert_true(has(&h, "H_ALL"));
	assert_true(has(&h, "H_TOCC"));
	assert_true(has(&h, "H_MSGID"));
	assert_true(has(&h, "H_EXISTS"));
	assert_false(has(&h, "H_EXISTS_NO"));
	assert_true(has(&h, "H_UNSET"));
	assert_true(has(&h, "H_MISSING_NEG"));
	assert_true(has(&h, "H_ENV"));
	assert_true(has(&h, "H_NL"));
	sarules_db_free(db);
}

static void test_body_kinds(void **state)
{
	struct sarules_db *db;
	struct hits h;

	(void)state;
	db = load_text(
	    "body B_VERIFY /verify your account/\n"
	    "body B_SUBJECT /^Cheap meds today$/\n"	      /* the Subject is line 1 */
	    "body B_PARA /Second paragraph continues here/\n" /* joined paragraph */
	    "body B_CROSS /foobaz\\.\\s+xxx/\n"	      /* never across paragraphs? same para */
	    "body B_NOCROSS /account\\.\\s+Second/\n" /* across a paragraph break: no */
	    "rawbody R_CRLF /^please visit/m\n"
	    "rawbody R_JOINED_NO /Second paragraph continues/\n" /* raw lines stay apart */
	    "uri U_IP m{^https?://\\d+\\.\\d+\\.\\d+\\.\\d+/}\n"
	    "uri U_NO /example\\.com/\n"
	    "full F_HDR /^X-Mailer: SuperMailer 5\\.0\\r?$/m\n"
	    "full F_BODY_NO /^Nothing like this$/m\n");
	assert_int_equal(sarules_db_nskipped(db), 0);
	scan(db, msg_plain, NULL, &h);
	assert_true(has(&h, "B_VERIFY"));
	assert_true(has(&h, "B_SUBJECT"));
	assert_true(has(&h, "B_PARA"));
	assert_true(has(&h, "B_CROSS"));
	assert_false(has(&h, "B_NOCROSS"));
	assert_true(has(&h, "R_CRLF"));
	assert_false(has(&h, "R_JOINED_NO"));
	assert_true(has(&h, "U_IP"));
	assert_false(has(&h, "U_NO"));
	assert_true(has(&h, "F_HDR"));
	assert_false(has(&h, "F_BODY_NO"));
	sarules_db_free(db);
}

static void test_meta_and_scores(void **state)
{
	struct sarules_db *db;
	struct hits h;
	double sc = 0;

	(void)state;
	db = load_text("body __A /Hello Bob/\n"
		       "body __B /foobar/\n"
		       "body __C /nothing here/\n"
		       "body __XXX /xxx/\n"
		       "tflags __XXX multiple\n"
		       "body __XXX_MAX2 /xxx/\n"
		       "tflags __XXX_MAX2 multiple maxhits=2\n"
		       "meta M_SUM (__A + __B + __C) >= 2\n"
		       "meta M_SUM_NO (__A + __B + __C) >= 3\n"
		       "meta M_AND __A && !__C\n"
		       "meta M_OR __C || __B\n"
		       "meta M_NOT_NO !(__A || __C)\n"
		       "meta M_COUNT __XXX == 3\n"
		       "meta M_MAXHITS __XXX_MAX2 == 2\n"
		       "meta M_ARITH (__A * 2 + __B - 1) / 2 > 0.9\n"
		       "meta M_NESTED M_AND && M_OR\n"
		       "meta M_UNDEF __A && !__NEVER_DEFINED\n"
		       "meta M_ZERO __A\n"
		       "score M_ZERO 0\n"
		       "score M_SUM 1 2 3.5 4\n"
		       "score M_AND -0.5\n"
		       "describe M_SUM Two of three\n");
	assert_int_equal(sarules_db_nskipped(db), 0);
	assert_string_equal(sarules_db_rule(db, "M_SUM", &sc), "Two of three");
	assert_true(sc == 3.5); /* of four scores, set 2 (Bayes on, no network) */
	scan(db, msg_plain, NULL, &h);
	assert_true(has(&h, "M_SUM"));
	assert_false(has(&h, "M_SUM_NO"));
	assert_true(has(&h, "M_AND"));
	assert_true(has(&h, "M_OR"));
	assert_false(has(&h, "M_NOT_NO"));
	assert_true(has(&h, "M_COUNT"));
	assert_true(has(&h, "M_MAXHITS"));
	assert_true(has(&h, "M_ARITH"));
	assert_true(has(&h, "M_NESTED"));
	assert_true(has(&h, "M_UNDEF"));
	assert_false(has(&h, "M_ZERO")); /* score 0: never reported */
	assert_false(has(&h, "__A"));	 /* __ rules: never reported */
	sarules_db_free(db);
}

static void test_conditionals(void **state)
{
	struct sarules_db *db;
	double sc;

	(void)state;
	db = load_text("ifplugin Mail::SpamAssassin::Plugin::NoSuchPlugin\n"
		       "body C_GONE1 /x/\n"
		       "endif\n"
		       "ifplugin Mail::SpamAssassin::Plugin::MIMEHeader\n"
		       "body C_HERE1 /x/\n"
		       "  if (version >= 3.004000)\n"
		       "  body C_HERE2 /x/\n"
		       "  else\n"
		       "  body C_GONE2 /x/\n"
		       "  endif\n"
		       "  if !plugin(Mail::SpamAssassin::Plugin::ReplaceTags)\n"
		       "  body C_GONE3 /x/\n"
		       "  endif\n"
		       "endif\n"
		       "if (version >= 9.000000)\n"
		       "body C_GONE4 /x/\n"
		       "else\n"
		       "body C_HERE3 /x/\n"
		       "endif\n"
		       "if can(Mail::SpamAssassin::Conf::feature_bug6558_free) && "
		       "!can(Mail::SpamAssassin::Plugin::NoSuch::has_x)\n"
		       "body C_HERE4 /x/\n"
		       "endif\n"
		       "if (garbage ===\n"
		       "body C_GONE5 /x/\n"
		       "endif\n");
	assert_non_null(sarules_db_rule(db, "C_HERE1", &sc));
	assert_non_null(sarules_db_rule(db, "C_HERE2", &sc));
	assert_non_null(sarules_db_rule(db, "C_HERE3", &sc));
	assert_non_null(sarules_db_rule(db, "C_HERE4", &sc));
	assert_null(sarules_db_rule(db, "C_GONE1", &sc));
	assert_null(sarules_db_rule(db, "C_GONE2", &sc));
	assert_null(sarules_db_rule(db, "C_GONE3", &sc));
	assert_null(sarules_db_rule(db, "C_GONE4", &sc));
	assert_null(sarules_db_rule(db, "C_GONE5", &sc));
	assert_int_equal(sarules_db_nloaded(db), 4);
	sarules_db_free(db);
}

/* ---- Perl regexes ---------------------------------------------------------------- */

static void test_perl_regex(void **state)
{
	struct sarules_db *db;
	struct hits h;
	size_t ex, pf, po;

	(void)state;
	db = load_text(
	    "body P_BRACES m{foo(?:bar|baz)}i\n"
	    "body P_BANG m!http://203\\.0!\n"
	    "body P_SLASH /visit\\s+http:\\/\\/203/\n"
	    "body P_X2 / verify \\s your \\s account \\# a comment: \\# is literal in rule "
	    "files/x\n"
	    "body P_HASH /a\\#b/\n"
	    "body P_LOOK /foo(?!bar)/\n"	   /* prefilter: Vectorscan has no lookaround */
	    "body P_LOOK_NO /foobar(?!\\s+and)/\n" /* prefilter candidate, PCRE2 says no */
	    "body P_BACKREF /(x{3}) yyy \\1/\n"	   /* backreference: prefilter */
	    "body P_BACKREF_NO /(xxx) zzz \\1 \\1/\n"
	    "body P_DOTALL_NO /account.+Second/s\n" /* not across lines */
	    "body P_CASE_NO /HELLO BOB/\n");
	assert_int_equal(sarules_db_nskipped(db), 0);
	sarules_db_regex_counts(db, &ex, &pf, &po);
	assert_true(pf >= 4); /* the lookarounds and backreferences */
	assert_int_equal(ex + pf + po, 11);
	scan(db, msg_plain, NULL, &h);
	assert_true(has(&h, "P_BRACES"));
	assert_true(has(&h, "P_BANG"));
	assert_true(has(&h, "P_SLASH"));
	assert_true(has(&h, "P_X2"));
	assert_false(has(&h, "P_HASH"));
	assert_true(has(&h, "P_LOOK"));
	assert_false(has(&h, "P_LOOK_NO"));
	assert_true(has(&h, "P_BACKREF"));
	assert_false(has(&h, "P_BACKREF_NO"));
	assert_false(has(&h, "P_DOTALL_NO"));
	assert_false(has(&h, "P_CASE_NO"));
	sarules_db_free(db);
}

static void test_replace_tags(void **state)
{
	struct sarules_db *db;
	struct hits h;

	(void)state;
	db = load_text("replace_tag E (?:[eE3])\n"
		       "replace_tag D (?:[dD])\n"
		       "replace_tag M (?:[mM])\n"
		       "replace_tag S (?:[sS5\\$])\n"
		       "replace_inter W1 \\W?\n"
		       "body T_MEDS /<inter W1><M><E><D><S>/i\n"
		       "replace_rules T_MEDS\n"
		       "body T_NOT_REPLACED /<M><E><D>/\n");
	scan(db, "Subject: x\r\n\r\nbuy m.3.d.$ now\r\n", NULL, &h);
	assert_true(has(&h, "T_MEDS"));
	assert_false(has(&h, "T_NOT_REPLACED"));
	sarules_db_free(db);
}

/* ---- skips, errors ------------------------------------------------------------------ */

static void test_skips(void **state)
{
	struct sarules_db *db;
	char where[512];
	const char *why, *name;
	bool seen_syntax = false;

	(void)state;
	db = load_text("header S_NET eval:check_rbl('x', 'zen.example.')\n"
		       "tflags S_NET net\n"
		       "body S_EVAL eval:no_such_function()\n"
		       "body S_BAD /unclosed(/\n"
		       "body S_BAD2 /no end\n"
		       "header S_RELAYS X-Spam-Relays-External =~ /rdns=/\n"
		       "meta S_META S_NET || S_EVAL\n"
		       "meta S_META_OK S_NET || S_OK\n"
		       "body S_OK /ok/\n"
		       "header S_COUNT eval:check_header_count_range('Received', '1', '3')\n"
		       "this_keyword_does_not_exist 1 2 3\n"
		       "lang de describe S_OK Deutsch\n");
	assert_int_equal(sarules_db_nloaded(db), 3); /* S_META_OK, S_OK, S_COUNT */
	assert_int_equal(sarules_db_nskipped(db), 6);
	assert_int_equal(reason_count(db, "network test (eval:check_rbl)"), 0);
	assert_int_equal(reason_count(db, "network test (tflags net)"), 1);
	assert_int_equal(reason_count(db, "eval:no_such_function not implemented"), 1);
	assert_int_equal(reason_count(db, "regex syntax error"), 2);
	assert_int_equal(reason_count(db, "pseudo-header X-Spam-Relays-External not implemented"),
			 1);
	assert_int_equal(reason_count(db, "meta: every dependency skipped"), 1);
	assert_int_equal(sarules_db_nignored(db), 2);
	for (size_t i = 0; i < sarules_db_nskipped(db); i++) {
		name = sarules_db_skip(db, i, &why, where, sizeof(where));
		assert_non_null(name);
		if (!strcmp(name, "S_BAD")) {
			seen_syntax = true;
			assert_string_equal(why, "regex syntax error");
			assert_non_null(strstr(where, ".cf:4: ")); /* file:line: PCRE2's reason */
		}
	}
	assert_true(seen_syntax);
	sarules_db_free(db);
}

static void test_load_errors(void **state)
{
	const char *missing[1] = {"/nonexistent/dir/rules.cf"};
	struct sarules_db *db = NULL;
	char err[256];

	(void)state;
	assert_true(sarules_db_load(missing, 1, &db, err, sizeof(err)) < 0);
	assert_null(db);
	assert_non_null(strstr(err, "/nonexistent/dir/rules.cf"));
}

static void test_evals(void **state)
{
	struct sarules_db *db;
	struct hits h;

	(void)state;
	db = load_text("freemail_domains gmail.com yahoo.*\n"
		       "header E_CNT eval:check_header_count_range('To','1','1')\n"
		       "header E_CNT_RCVD eval:check_header_count_range('Received','1','9')\n"
		       "header E_FREE eval:check_freemail_from()\n"
		       "header E_SHIFT eval:check_for_shifted_date('24', '48')\n"
		       "header E_SHIFT_NO eval:check_for_shifted_date('-6', '-3')\n"
		       "header E_CAPS eval:subject_is_all_caps()\n"
		       "body E_SHORT eval:check_body_length('100')\n"
		       "body E_MIME eval:check_for_mime('mime_base64_count')\n");
	assert_int_equal(sarules_db_nskipped(db), 0);
	scan(db,
	     "From: x@yahoo.co.uk\r\nTo: a@b.example\r\nSubject: FREE MONEY FOR YOU\r\n"
	     "Date: Mon, 02 Jan 2023 18:00:00 +0000\r\n"
	     "Received: from a by b; Sun, 01 Jan 2023 12:00:00 +0000\r\n"
	     "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	     "aGVsbG8=\r\n",
	     NULL, &h);
	assert_true(has(&h, "E_CNT"));
	assert_true(has(&h, "E_CNT_RCVD"));
	assert_true(has(&h, "E_FREE"));
	assert_true(has(&h, "E_SHIFT"));
	assert_false(has(&h, "E_SHIFT_NO"));
	assert_true(has(&h, "E_CAPS"));
	assert_true(has(&h, "E_SHORT"));
	assert_true(has(&h, "E_MIME"));
	scan(db, msg_plain, NULL, &h);
	assert_false(has(&h, "E_FREE"));
	assert_false(has(&h, "E_CAPS"));
	assert_false(has(&h, "E_MIME"));
	sarules_db_free(db);
}

/* ---- the whole Debian set -------------------------------------------------------------- */

static void test_debian_set(void **state)
{
	const char *paths[2] = {DEBIAN_RULES, MXG_SOURCE_ROOT "/rules/spam"};
	struct sarules_db *db = NULL;
	char err[512], *data;
	struct stat st;
	struct hits h;
	FILE *f;
	double sc;

	(void)state;
	if (stat(DEBIAN_RULES "/72_active.cf", &st) < 0) {
		printf("skipped: %s is not installed (apt-get install spamassassin)\n",
		       DEBIAN_RULES);
		skip();
	}
	if (sarules_db_load(paths, 2, &db, err, sizeof(err)) < 0)
		fail_msg("load: %s", err);
	printf("Debian set + rules/spam: loaded=%zu skipped=%zu in %.1f s\n",
	       sarules_db_nloaded(db), sarules_db_nskipped(db),
	       (double)sarules_db_load_us(db) / 1e6);
	/* spamassassin 4.0.1-1~deb12u1; any change in the parser shows here */
	assert_int_equal(sarules_db_nloaded(db), 2430);
	assert_int_equal(sarules_db_nskipped(db), 481);
	assert_int_equal(reason_count(db, "network test (tflags net)"), 176);
	assert_non_null(sarules_db_rule(db, "GTUBE", &sc));
	assert_true(sc == 1000);
	if (stat(GTUBE_SAMPLE, &st) < 0) {
		printf("skipped: the GTUBE sample (%s) is absent\n", GTUBE_SAMPLE);
		sarules_db_free(db);
		return;
	}
	data = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(data);
	assert_non_null(f = fopen(GTUBE_SAMPLE, "rb"));
	assert_int_equal(fread(data, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	scan(db, data, NULL, &h);
	assert_true(has(&h, "GTUBE"));
	assert_true(h.score >= 1000);
	free(data);
	sarules_db_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_rules),    cmocka_unit_test(test_body_kinds),
	    cmocka_unit_test(test_meta_and_scores), cmocka_unit_test(test_conditionals),
	    cmocka_unit_test(test_perl_regex),	    cmocka_unit_test(test_replace_tags),
	    cmocka_unit_test(test_skips),	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_evals),	    cmocka_unit_test(test_debian_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
