/* SPDX-License-Identifier: MIT */
/*
 * auth/dmarc without DNS: the record parser (RFC 7489 6.3, 6.4), the From
 * field parser, the organizational domain and identifier alignment, first
 * on our own cases, then on OpenDMARC's test tables from
 * ../shared/corpus/dmarc/opendmarc-tables.yml (skipped, saying so, when the
 * corpus is absent). The organizational-domain table is checked against
 * the PSL snapshot OpenDMARC's tests use (shipped beside the table); the
 * rest against the system list. The check itself, with DNS answers, runs
 * in tests/integration/test_dmarc_suite.py; here only its outcomes that
 * need no DNS (an unusable From field) are checked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpsl.h>

#include "auth/dmarc.h"

#define CORPUS MXG_SOURCE_ROOT "/../shared/corpus/dmarc"
#define TABLES CORPUS "/opendmarc-tables.yml"
#define OLD_PSL CORPUS "/opendmarc-testfiles/effective_tld_names.dat"

/* ---- a reader for the flat YAML of the tables: "section:", then items
 * "- key: value" and "  key: value", plain or quoted scalars ---- */

#define MAX_ITEMS 64
#define MAX_KEYS 6

struct item {
	char key[MAX_KEYS][32];
	char val[MAX_KEYS][256];
	int n;
};

static const char *item_get(const struct item *it, const char *key)
{
	for (int i = 0; i < it->n; i++)
		if (!strcmp(it->key[i], key))
			return it->val[i];
	return NULL;
}

static void scalar(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	if (*s == '\'' || *s == '"') {
		char q = *s++;
		while (*s && n + 1 < outlen) {
			if (*s == q && q == '\'' && s[1] == '\'') {
				out[n++] = '\'';
				s += 2;
				continue;
			}
			if (*s == q)
				break;
			if (*s == '\\' && q == '"' && s[1])
				s++;
			out[n++] = *s++;
		}
	} else {
		while (*s && *s != '\n' && n + 1 < outlen)
			out[n++] = *s++;
	}
	out[n] = '\0';
}

/* The items of section; -1 if the file is absent. */
static int read_section(const char *path, const char *section, struct item *items, int max)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	bool in = false;
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != ' ' && line[0] != '-') {
			in = !strncmp(line, section, strlen(section)) &&
			     line[strlen(section)] == ':';
			continue;
		}
		if (!in)
			continue;
		char *p = line;
		if (p[0] == '-') {
			if (n == max)
				break;
			memset(&items[n++], 0, sizeof(items[0]));
		}
		if (n == 0)
			continue;
		p += 2;
		char *colon = strstr(p, ": ");
		struct item *it = &items[n - 1];
		if (!colon || it->n == MAX_KEYS)
			continue;
		*colon = '\0';
		if (strlen(p) >= sizeof(it->key[0]))
			continue;
		memcpy(it->key[it->n], p, strlen(p) + 1);
		scalar(colon + 2, it->val[it->n], sizeof(it->val[0]));
		it->n++;
	}
	fclose(f);
	return n;
}

/* ---- our own cases ---- */

static int parse(const char *rec, struct dmarc_record *r)
{
	return dmarc_record_parse(rec, strlen(rec), r);
}

static void test_record_parse(void **state)
{
	struct dmarc_record r;

	(void)state;
	assert_int_equal(parse("v=DMARC1; p=reject; sp=none; adkim=s; aspf=r; pct=30; "
			       "rua=mailto:a@example.com,mailto:b@example.com!10m; "
			       "ruf=mailto:f@example.com; fo=0:d:s; rf=afrf; ri=3600; np=reject",
			       &r),
			 0);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_true(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_int_equal(r.pct, 30);
	assert_int_equal(r.ri, 3600);
	assert_int_equal(r.rua_len, strlen("mailto:a@example.com,mailto:b@example.com!10m"));
	assert_int_equal(parse("v=DMARC1;p=QUARANTINE", &r), 0);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, DMARC_POLICY_UNSET);
	assert_int_equal(r.pct, 100);
	assert_false(r.adkim_strict);
	assert_int_equal(parse("  v = DMARC1 ; p = none ; ", &r), 0);
	/* v=DMARC1 first, exactly */
	assert_int_equal(parse("p=none; v=DMARC1", &r), -EPROTONOSUPPORT);
	assert_int_equal(parse("v=dmarc1; p=none", &r), -EPROTONOSUPPORT);
	assert_int_equal(parse("v=spf1 -all", &r), -EPROTONOSUPPORT);
	assert_int_equal(parse("   ", &r), -ENODATA);
	/* values */
	assert_int_equal(parse("v=DMARC1; p=none; pct=101", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=none; pct=-1", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=none; pct=", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=none; fo=2", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=none; rua=", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=none; rua=mailto:a@b.c,", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=none; ri=99999999999", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=none; p=reject", &r), -EINVAL); /* duplicate */
	assert_int_equal(parse("v=DMARC1; p=none; v=DMARC1", &r), -EINVAL);
	assert_int_equal(parse("v=DMARC1; p=n", &r), -EINVAL);
	/* p= missing or bad: "no policy", but the rest is read (6.6.3 step 6) */
	assert_int_equal(parse("v=DMARC1; rua=mailto:a@example.com", &r), -ENOENT);
	assert_int_equal(r.rua_len, strlen("mailto:a@example.com"));
	assert_int_equal(parse("v=DMARC1; p=bogus; rua=mailto:a@example.com", &r), -EINVAL);
	assert_int_equal(r.rua_len, strlen("mailto:a@example.com"));
}

static void from_is(const char *v, const char *want, size_t want_n)
{
	char d[DMARC_DOMAIN_LEN];
	size_t n;

	assert_int_equal(dmarc_from_domain(v, strlen(v), d, sizeof(d), &n), 0);
	assert_string_equal(d, want);
	assert_int_equal(n, want_n);
}

static void test_from_domain(void **state)
{
	char d[DMARC_DOMAIN_LEN];
	size_t n;

	(void)state;
	from_is(" Joe <joe@Example.COM.>", "example.com", 1);
	from_is(" \"a@b.c, <x@y.z>\" (c@d.e, f) <joe@joe.com>", "joe.com", 1);
	from_is(" a@one.example, b@two.example", "one.example", 2);
	from_is(" Group: a@one.example, b@two.example;", "one.example", 2);
	from_is(" joe@xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai", 1);
	from_is(" joe@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
		"xn--e1afmkfd.xn--p1ai", 1);
	assert_int_equal(dmarc_from_domain(" Joe", 4, d, sizeof(d), &n), -EINVAL);
	assert_int_equal(dmarc_from_domain(" joe@[192.0.2.1]", 16, d, sizeof(d), &n), -EINVAL);
	assert_int_equal(dmarc_from_domain(" joe@", 5, d, sizeof(d), &n), -EINVAL);
	assert_int_equal(dmarc_from_domain(" joe@a b", 8, d, sizeof(d), &n), 0);
	assert_int_equal(dmarc_from_domain("", 0, d, sizeof(d), &n), -EINVAL);
}

static void test_org_and_alignment(void **state)
{
	psl_ctx_t *psl = psl_latest(NULL);
	char org[DMARC_DOMAIN_LEN];

	(void)state;
	assert_non_null(psl);
	assert_int_equal(dmarc_org_domain(psl, "mail.Example.COM.", org, sizeof(org)), 0);
	assert_string_equal(org, "example.com");
	assert_int_equal(dmarc_org_domain(psl, "a.b.example.co.uk", org, sizeof(org)), 0);
	assert_string_equal(org, "example.co.uk");
	assert_int_equal(dmarc_org_domain(psl, "co.uk", org, sizeof(org)), 0);
	assert_string_equal(org, "co.uk");
	assert_int_equal(dmarc_org_domain(psl, "...", org, sizeof(org)), -EINVAL);
	assert_true(dmarc_aligned(psl, "mail.example.com", "example.com", false));
	assert_false(dmarc_aligned(psl, "mail.example.com", "example.com", true));
	assert_false(dmarc_aligned(psl, "a.example.co.uk", "b.other.co.uk", false));
	assert_false(dmarc_aligned(psl, "example.com", "example.net", false));
	psl_free(psl);
}

static void on_outcome(const struct dmarc_outcome *o, void *arg)
{
	*(struct dmarc_outcome *)arg = *o;
	((struct dmarc_outcome *)arg)->problem = NULL; /* not valid after the callback */
	((struct dmarc_outcome *)arg)->pct = 1;	       /* "called" */
}

/* Outcomes decided from the message alone: no DNS server is asked. */
static void check_permerror(struct resolver *r, const struct dmarc_opts *opts, const char *msg)
{
	struct dmarc_auth auth = {.spf = SPF_NONE};
	struct dmarc_outcome o = {.pct = 0};
	struct dmarc_req *req = NULL;

	assert_int_equal(dmarc_check(r, opts, msg, strlen(msg), &auth, on_outcome, &o, &req), 0);
	assert_int_equal(o.pct, 0); /* never from inside dmarc_check() */
	while (o.pct == 0)
		event_base_loop(resolver_event_base(r), EVLOOP_ONCE);
	assert_int_equal(o.result, DMARC_PERMERROR);
}

static void test_check_bad_from(void **state)
{
	struct event_base *base = event_base_new();
	psl_ctx_t *psl = psl_latest(NULL);
	struct dmarc_opts opts = {.psl = psl, .pct_draw = 0};
	struct resolver_opts ro = {.servers = "127.0.0.1:9", .timeout_ms = 500};
	struct dmarc_auth auth = {.spf = SPF_NONE};
	struct resolver *r = NULL;
	struct dmarc_req *req = NULL;
	struct dmarc_outcome o = {.pct = 0};
	char why[128];

	(void)state;
	assert_int_equal(resolver_global_init(), 0);
	assert_int_equal(resolver_new(base, &ro, &r, why, sizeof(why)), 0);
	check_permerror(r, &opts, "Subject: x\r\n\r\nbody\r\n");
	check_permerror(r, &opts, "From: a@example.com\r\nFrom: b@example.com\r\n\r\n");
	check_permerror(r, &opts, "From: a@example.com,\r\n b@example.net\r\n\r\n");
	check_permerror(r, &opts, "From: undisclosed-recipients:;\r\n\r\n");
	check_permerror(r, &opts, "From: a@[192.0.2.1]\r\n\r\n");
	/* a From field in the body is not one */
	check_permerror(r, &opts, "To: x@example.com\n\nFrom: a@example.com\n");
	/* bad arguments: no callback */
	assert_int_equal(
	    dmarc_check(r, &(struct dmarc_opts){.psl = NULL}, "", 0, &auth, on_outcome, &o, &req),
	    -EINVAL);
	/* cancelled: no callback */
	assert_int_equal(
	    dmarc_check(r, &opts, "From: a@example.com\r\n\r\n", 23, &auth, on_outcome, &o, &req),
	    0);
	dmarc_cancel(req);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(o.pct, 0);
	resolver_free(r);
	event_base_free(base);
	psl_free(psl);
}

/* ---- OpenDMARC's tables ---- */

static int want_parse(const char *name)
{
	static const struct {
		const char *name;
		int rc;
	} map[] = {
	    {"DMARC_PARSE_OKAY", 0},
	    {"DMARC_PARSE_ERROR_EMPTY", -ENODATA},
	    {"DMARC_PARSE_ERROR_BAD_VERSION", -EPROTONOSUPPORT},
	    {"DMARC_PARSE_ERROR_BAD_VALUE", -EINVAL},
	    {"DMARC_PARSE_ERROR_NO_REQUIRED_P", -ENOENT},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].name, name))
			return map[i].rc;
	fail_msg("unknown expectation %s", name);
	return 1;
}

/* Where we deliberately differ from OpenDMARC: it takes p= by its first
 * letter; RFC 7489 6.4 (dmarc-request) allows only the three keywords. */
static int deviation(const char *record)
{
	if (!strcmp(record, "v=DMARC1; p=n;"))
		return -EINVAL;
	return 1;
}

static void test_corpus_record_parse(void **state)
{
	struct item items[MAX_ITEMS];
	int n = read_section(TABLES, "record_parse", items, MAX_ITEMS), ok = 0, dev = 0;

	(void)state;
	if (n < 0)
		skip(); /* the shared corpus is absent */
	for (int i = 0; i < n; i++) {
		const char *rec = item_get(&items[i], "record");
		struct dmarc_record r;
		int want = want_parse(item_get(&items[i], "expect"));
		int got = parse(rec, &r);
		if (deviation(rec) != 1) {
			want = deviation(rec);
			dev++;
		}
		if (got == want)
			ok++;
		else
			print_error("record %s: want %d, got %d\n", rec, want, got);
	}
	print_message("opendmarc record_parse: %d/%d (%d deliberate deviation)\n", ok, n, dev);
	assert_int_equal(n, 19);
	assert_int_equal(ok, n);
}

static void test_corpus_alignment(void **state)
{
	struct item items[MAX_ITEMS];
	int n = read_section(TABLES, "alignment", items, MAX_ITEMS), ok = 0;
	psl_ctx_t *psl = psl_latest(NULL);

	(void)state;
	if (n < 0) {
		psl_free(psl);
		skip();
	}
	for (int i = 0; i < n; i++) {
		bool strict = !strcmp(item_get(&items[i], "mode"), "DMARC_RECORD_A_STRICT");
		bool want = !strcmp(item_get(&items[i], "expect"), "0");
		const char *d1 = item_get(&items[i], "domain1"),
			   *d2 = item_get(&items[i], "domain2");
		if (dmarc_aligned(psl, d1, d2, strict) == want)
			ok++;
		else
			print_error("alignment %s %s: want %d\n", d1, d2, want);
	}
	print_message("opendmarc alignment: %d/%d\n", ok, n);
	psl_free(psl);
	assert_int_equal(n, 10);
	assert_int_equal(ok, n);
}

static void test_corpus_from(void **state)
{
	struct item items[MAX_ITEMS];
	int n = read_section(TABLES, "find_domain_in_from", items, MAX_ITEMS), ok = 0;

	(void)state;
	if (n < 0)
		skip();
	for (int i = 0; i < n; i++) {
		const char *v = item_get(&items[i], "header_value");
		char d[DMARC_DOMAIN_LEN];
		size_t na;
		if (dmarc_from_domain(v, strlen(v), d, sizeof(d), &na) == 0 &&
		    !strcmp(d, item_get(&items[i], "expect_domain")))
			ok++;
		else
			print_error("from %s: want %s\n", v, item_get(&items[i], "expect_domain"));
	}
	print_message("opendmarc find_domain_in_from: %d/%d\n", ok, n);
	assert_int_equal(n, 13);
	assert_int_equal(ok, n);
}

static void test_corpus_org_domain(void **state)
{
	struct item items[MAX_ITEMS];
	int n = read_section(TABLES, "org_domain", items, MAX_ITEMS), ok = 0;
	psl_ctx_t *psl;

	(void)state;
	if (n < 0)
		skip();
	psl = psl_load_file(OLD_PSL);
	assert_non_null(psl);
	for (int i = 0; i < n; i++) {
		const char *d = item_get(&items[i], "domain");
		char org[DMARC_DOMAIN_LEN];
		if (dmarc_org_domain(psl, d, org, sizeof(org)) == 0 &&
		    !strcmp(org, item_get(&items[i], "expect_org_domain")))
			ok++;
		else
			print_error("org %s: want %s\n", d,
				    item_get(&items[i], "expect_org_domain"));
	}
	print_message("opendmarc org_domain: %d/%d\n", ok, n);
	psl_free(psl);
	assert_int_equal(n, 3);
	assert_int_equal(ok, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_parse),	cmocka_unit_test(test_from_domain),
	    cmocka_unit_test(test_org_and_alignment),	cmocka_unit_test(test_check_bad_from),
	    cmocka_unit_test(test_corpus_record_parse), cmocka_unit_test(test_corpus_alignment),
	    cmocka_unit_test(test_corpus_from),		cmocka_unit_test(test_corpus_org_domain),
	};
	FILE *f = fopen(TABLES, "r");

	if (f)
		fclose(f);
	else
		printf("skipped: the OpenDMARC tables (the shared corpus is absent: %s)\n", TABLES);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
