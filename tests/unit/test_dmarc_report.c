/* SPDX-License-Identifier: MIT */
/*
 * DMARC aggregate reports: the rua= parser, the row made from a DMARC
 * outcome, the appendix C XML (exact text, escaping), gzip, the store
 * operations (record, aggregate with counts, claim, mark, purge) and the
 * daily job end to end into the queue (auth/dmarc_report.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "auth/dmarc_report.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_dmarc.h"

/* ---- rua= ----------------------------------------------------------------- */

static void test_rua_parse(void **state)
{
	struct dmarc_rua r[4];
	size_t n = 0;

	(void)state;
	assert_int_equal(dmarc_rua_parse("mailto:a@example.com", r, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].addr, "a@example.com");
	assert_int_equal(r[0].limit, 0);

	assert_int_equal(dmarc_rua_parse(" mailto:a@example.com!10m , https://x/y,"
					 "MAILTO:b%21c@example.org!5k,mailto:d@x.example!7",
					 r, 4, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].limit, 10 << 20);
	assert_string_equal(r[1].addr, "b!c@example.org"); /* %-decoded */
	assert_int_equal(r[1].limit, 5 << 10);
	assert_string_equal(r[2].addr, "d@x.example");
	assert_int_equal(r[2].limit, 7);

	/* malformed URIs are dropped, the rest kept */
	assert_int_equal(
	    dmarc_rua_parse("mailto:nobody,mailto:a@b.example!10x,mailto:ok@b.example", r, 4, &n),
	    -EINVAL);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].addr, "ok@b.example");
	assert_int_equal(dmarc_rua_parse("mailto:a@b.example%2", r, 4, &n), -EINVAL);
	assert_int_equal(n, 0);
	/* at most max */
	assert_int_equal(dmarc_rua_parse("mailto:a@x.example,mailto:b@x.example", r, 1, &n), 0);
	assert_int_equal(n, 1);
}

/* ---- the row from an outcome ---------------------------------------------- */

static void test_row_from_outcome(void **state)
{
	struct dmarc_outcome o = {0};
	struct dmarc_report_sig sigs[2] = {
	    {"other.example", "s0", DKIM_FAIL},
	    {"Mail.Example.com", "sel", DKIM_PASS},
	};
	struct dmarc_report_input in = {0};
	struct store_dmarc_row row;

	(void)state;
	o.result = DMARC_FAIL;
	o.policy = DMARC_POLICY_QUARANTINE;
	o.disposition = DMARC_POLICY_QUARANTINE;
	o.from_domain = "mail.example.com";
	o.record_domain = "example.com";
	o.dkim_domain = "";
	o.record = "v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s; fo=1; "
		   "rua=mailto:agg@example.com";
	o.rua = "mailto:agg@example.com";
	o.sampled_out = true;
	in.outcome = &o;
	in.source_ip = "192.0.2.7";
	in.spf = SPF_SOFTFAIL;
	in.spf_domain = "Bounce.Example.net";
	in.sigs = sigs;
	in.nsigs = 2;
	in.now = 1700000000;
	assert_int_equal(dmarc_report_row(&in, &row), 0);
	assert_int_equal(row.ts, 1700000000);
	assert_string_equal(row.policy_domain, "example.com");
	assert_string_equal(row.header_from, "mail.example.com");
	assert_string_equal(row.disposition, "quarantine");
	assert_string_equal(row.reason, "sampled_out");
	assert_string_equal(row.dkim_eval, "fail");
	assert_string_equal(row.spf_eval, "fail");
	/* the passing signature is the one reported */
	assert_string_equal(row.dkim_domain, "mail.example.com");
	assert_string_equal(row.dkim_selector, "sel");
	assert_string_equal(row.dkim_result, "pass");
	assert_string_equal(row.spf_domain, "bounce.example.net");
	assert_string_equal(row.spf_scope, "mfrom");
	assert_string_equal(row.spf_result, "softfail");
	assert_string_equal(row.p, "reject");
	assert_string_equal(row.sp, "quarantine");
	assert_int_equal(row.pct, 50);
	assert_string_equal(row.adkim, "s");
	assert_string_equal(row.aspf, "r");
	assert_string_equal(row.fo, "1");

	/* delivered anyway: the applied disposition is what the caller says */
	in.applied = DMARC_POLICY_NONE;
	in.reason = "local_policy";
	assert_int_equal(dmarc_report_row(&in, &row), 0);
	assert_string_equal(row.disposition, "none");
	assert_string_equal(row.reason, "local_policy");

	/* nothing to record: no rua, no mailto, no policy */
	o.rua = "https://example.com/r";
	assert_int_equal(dmarc_report_row(&in, &row), -ENOENT);
	o.rua = "";
	assert_int_equal(dmarc_report_row(&in, &row), -ENOENT);
	o.rua = "mailto:agg@example.com";
	o.result = DMARC_NONE;
	assert_int_equal(dmarc_report_row(&in, &row), -ENOENT);
	o.result = DMARC_TEMPERROR;
	assert_int_equal(dmarc_report_row(&in, &row), -ENOENT);
	in.source_ip = NULL;
	o.result = DMARC_PASS;
	assert_int_equal(dmarc_report_row(&in, &row), -EINVAL);
}

/* ---- XML -------------------------------------------------------------------- */

static void fill(struct store_dmarc_agg *a, const char *ip, int64_t count, const char *disp)
{
	struct store_dmarc_row *r = &a->r;

	memset(a, 0, sizeof(*a));
	(void)str_copy(r->policy_domain, sizeof(r->policy_domain), "example.com");
	(void)str_copy(r->header_from, sizeof(r->header_from), "example.com");
	(void)str_copy(r->source_ip, sizeof(r->source_ip), ip);
	(void)str_copy(r->disposition, sizeof(r->disposition), disp);
	(void)str_copy(r->dkim_eval, sizeof(r->dkim_eval), "pass");
	(void)str_copy(r->spf_eval, sizeof(r->spf_eval), "fail");
	(void)str_copy(r->dkim_domain, sizeof(r->dkim_domain), "example.com");
	(void)str_copy(r->dkim_selector, sizeof(r->dkim_selector), "s1");
	(void)str_copy(r->dkim_result, sizeof(r->dkim_result), "pass");
	(void)str_copy(r->spf_domain, sizeof(r->spf_domain), "example.com");
	(void)str_copy(r->spf_scope, sizeof(r->spf_scope), "mfrom");
	(void)str_copy(r->spf_result, sizeof(r->spf_result), "softfail");
	(void)str_copy(r->p, sizeof(r->p), "reject");
	(void)str_copy(r->sp, sizeof(r->sp), "none");
	r->pct = 100;
	r->adkim[0] = 'r';
	r->aspf[0] = 's';
	(void)str_copy(r->fo, sizeof(r->fo), "0");
	a->count = count;
}

static const char expected_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<feedback>\n"
    "  <version>1.0</version>\n"
    "  <report_metadata>\n"
    "    <org_name>Ex &amp; Co &lt;mx&gt; &quot;q&quot; &apos;a&apos;</org_name>\n"
    "    <email>dmarc@mx.example.net</email>\n"
    "    <report_id>20231114.example.com@mx.example.net</report_id>\n"
    "    <date_range>\n"
    "      <begin>1699920000</begin>\n"
    "      <end>1700006399</end>\n"
    "    </date_range>\n"
    "  </report_metadata>\n"
    "  <policy_published>\n"
    "    <domain>example.com</domain>\n"
    "    <adkim>r</adkim>\n"
    "    <aspf>s</aspf>\n"
    "    <p>reject</p>\n"
    "    <sp>none</sp>\n"
    "    <pct>100</pct>\n"
    "    <fo>0</fo>\n"
    "  </policy_published>\n"
    "  <record>\n"
    "    <row>\n"
    "      <source_ip>192.0.2.1</source_ip>\n"
    "      <count>3</count>\n"
    "      <policy_evaluated>\n"
    "        <disposition>none</disposition>\n"
    "        <dkim>pass</dkim>\n"
    "        <spf>fail</spf>\n"
    "      </policy_evaluated>\n"
    "    </row>\n"
    "    <identifiers>\n"
    "      <header_from>example.com</header_from>\n"
    "    </identifiers>\n"
    "    <auth_results>\n"
    "      <dkim>\n"
    "        <domain>example.com</domain>\n"
    "        <selector>s1</selector>\n"
    "        <result>pass</result>\n"
    "      </dkim>\n"
    "      <spf>\n"
    "        <domain>example.com</domain>\n"
    "        <scope>mfrom</scope>\n"
    "        <result>softfail</result>\n"
    "      </spf>\n"
    "    </auth_results>\n"
    "  </record>\n"
    "  <record>\n"
    "    <row>\n"
    "      <source_ip>2001:db8::1</source_ip>\n"
    "      <count>1</count>\n"
    "      <policy_evaluated>\n"
    "        <disposition>reject</disposition>\n"
    "        <dkim>pass</dkim>\n"
    "        <spf>fail</spf>\n"
    "        <reason>\n"
    "          <type>local_policy</type>\n"
    "        </reason>\n"
    "      </policy_evaluated>\n"
    "    </row>\n"
    "    <identifiers>\n"
    "      <header_from>a&lt;b&gt;?.example</header_from>\n"
    "    </identifiers>\n"
    "    <auth_results>\n"
    "      <spf>\n"
    "        <domain>example.com</domain>\n"
    "        <scope>mfrom</scope>\n"
    "        <result>softfail</result>\n"
    "      </spf>\n"
    "    </auth_results>\n"
    "  </record>\n"
    "</feedback>\n";

static void test_xml_exact(void **state)
{
	struct store_dmarc_agg recs[2];
	struct dmarc_report_meta m = {
	    .org_name = "Ex & Co <mx> \"q\" 'a'",
	    .email = "dmarc@mx.example.net",
	    .report_id = "20231114.example.com@mx.example.net",
	    .begin = 1699920000,
	    .end = 1700006399,
	};
	char *xml = NULL;
	size_t len = 0;
	unsigned char *gz = NULL;
	size_t gzlen = 0;

	(void)state;
	fill(&recs[0], "192.0.2.1", 3, "none");
	fill(&recs[1], "2001:db8::1", 1, "reject");
	recs[1].r.dkim_domain[0] = '\0'; /* no signature: no <dkim> */
	(void)str_copy(recs[1].r.reason, sizeof(recs[1].r.reason), "local_policy");
	/* markup and a control character in a value */
	(void)str_copy(recs[1].r.header_from, sizeof(recs[1].r.header_from), "a<b>\x01.example");
	assert_int_equal(dmarc_report_xml(&m, recs, 2, &xml, &len), 0);
	assert_int_equal(len, strlen(xml));
	assert_string_equal(xml, expected_xml);
	assert_int_equal(dmarc_report_xml(&m, recs, 0, &xml, &len), -EINVAL);

	/* gzip round trip */
	assert_int_equal(dmarc_report_gzip(expected_xml, strlen(expected_xml), &gz, &gzlen), 0);
	assert_true(gzlen > 18 && gz[0] == 0x1f && gz[1] == 0x8b);
	{
		char back[sizeof(expected_xml) + 16];
		z_stream z;

		memset(&z, 0, sizeof(z));
		assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
		z.next_in = gz;
		z.avail_in = (uInt)gzlen;
		z.next_out = (Bytef *)back;
		z.avail_out = sizeof(back);
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		assert_int_equal(z.total_out, strlen(expected_xml));
		assert_memory_equal(back, expected_xml, strlen(expected_xml));
		inflateEnd(&z);
	}
	free(gz);
	free(xml);
}

static void test_filename_and_next(void **state)
{
	char f[300];

	(void)state;
	assert_int_equal(dmarc_report_filename("mx.example.net", "example.com", 1699920000,
					       1700006399, f, sizeof(f)),
			 0);
	assert_string_equal(f, "mx.example.net!example.com!1699920000!1700006399.xml.gz");
	assert_int_equal(dmarc_report_filename("a!b", "example.com", 0, 1, f, sizeof(f)), -EINVAL);
	/* 1700000000 is 2023-11-14 22:13:20 UTC */
	assert_int_equal(dmarc_report_next(1700000000, 1800), 1700008200);
	assert_int_equal(dmarc_report_next(1699920000 + 1800, 1800), 1699920000 + 1800);
	assert_int_equal(dmarc_report_next(1699920000 + 1801, 1800), 1700006400 + 1800);
}

/* ---- the store and the job --------------------------------------------------- */

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char url[160], err[256];

	if (!f)
		return -1;
	(void)str_copy(f->dir, sizeof(f->dir), "/tmp/mxg-dmarcrep-XXXXXX");
	if (!mkdtemp(f->dir) || str_fmt(f->path, sizeof(f->path), "%s/m.db", f->dir) < 0 ||
	    str_fmt(url, sizeof(url), "sqlite:%s", f->path) < 0)
		return -1;
	if (store_open(url, 2000, &f->st, err, sizeof(err)) || store_migrate(f->st))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	store_close(f->st);
	unlink(f->path);
	if (!str_fmt(p, sizeof(p), "%s-wal", f->path))
		unlink(p);
	if (!str_fmt(p, sizeof(p), "%s-shm", f->path))
		unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

#define DAY0 1699920000 /* 2023-11-14 00:00:00 UTC */

static void record(struct store *st, const char *domain, const char *ip, int64_t ts, const char *p)
{
	struct store_dmarc_agg a;

	fill(&a, ip, 1, "none");
	(void)str_copy(a.r.policy_domain, sizeof(a.r.policy_domain), domain);
	(void)str_copy(a.r.header_from, sizeof(a.r.header_from), domain);
	(void)str_fmt(a.r.rua, sizeof(a.r.rua), "mailto:agg@%s", domain);
	(void)str_copy(a.r.p, sizeof(a.r.p), p);
	a.r.ts = ts;
	assert_int_equal(store_dmarc_record(st, &a.r), STORE_OK);
}

struct got {
	int n;
	struct store_dmarc_period p[8];
	struct store_dmarc_agg a[8];
};

static int got_period(const struct store_dmarc_period *p, void *arg)
{
	struct got *g = arg;

	if (g->n < 8)
		g->p[g->n] = *p;
	g->n++;
	return 0;
}

static int got_agg(const struct store_dmarc_agg *a, void *arg)
{
	struct got *g = arg;

	if (g->n < 8)
		g->a[g->n] = *a;
	g->n++;
	return 0;
}

static void test_store_record_aggregate_mark(void **state)
{
	struct fx *f = *state;
	struct got *g = calloc(1, sizeof(*g));
	int64_t purged = -1;

	assert_non_null(g);
	record(f->st, "Example.com", "192.0.2.1", DAY0 + 10, "none");
	record(f->st, "example.com", "192.0.2.1", DAY0 + 20, "none");
	record(f->st, "example.com", "192.0.2.1", DAY0 + 30, "none");
	record(f->st, "example.com", "192.0.2.9", DAY0 + 40, "quarantine"); /* newest */
	record(f->st, "example.org", "192.0.2.1", DAY0 + 50, "reject");
	record(f->st, "example.com", "192.0.2.1", DAY0 + 86400 + 5, "none"); /* next day */

	/* due before the end of day 0: nothing */
	assert_int_equal(store_dmarc_due(f->st, DAY0 + 86399, got_period, g), STORE_OK);
	assert_int_equal(g->n, 0);
	assert_int_equal(store_dmarc_due(f->st, DAY0 + 86400, got_period, g), STORE_OK);
	assert_int_equal(g->n, 2);
	assert_string_equal(g->p[0].policy_domain, "example.com");
	assert_int_equal(g->p[0].begin, DAY0);
	assert_int_equal(g->p[0].end, DAY0 + 86399);
	assert_string_equal(g->p[1].policy_domain, "example.org");

	/* grouped with counts; the policy is the newest row's */
	memset(g, 0, sizeof(*g));
	assert_int_equal(
	    store_dmarc_aggregate(f->st, "example.com", DAY0, DAY0 + 86399, got_agg, g), STORE_OK);
	assert_int_equal(g->n, 2);
	assert_string_equal(g->a[0].r.source_ip, "192.0.2.1");
	assert_int_equal(g->a[0].count, 3);
	assert_string_equal(g->a[1].r.source_ip, "192.0.2.9");
	assert_int_equal(g->a[1].count, 1);
	assert_string_equal(g->a[0].r.p, "quarantine");
	assert_string_equal(g->a[1].r.p, "quarantine");
	assert_string_equal(g->a[0].r.rua, "mailto:agg@example.com");

	/* claims: the first wins */
	assert_int_equal(store_dmarc_claim(f->st, "r1", "example.com", DAY0, DAY0 + 86399, 0),
			 STORE_OK);
	assert_int_equal(store_dmarc_claim(f->st, "r1", "example.com", DAY0, DAY0 + 86399, 0),
			 STORE_EXISTS);
	assert_int_equal(store_dmarc_unclaim(f->st, "r1"), STORE_OK);
	assert_int_equal(store_dmarc_claim(f->st, "r1", "example.com", DAY0, DAY0 + 86399, 0),
			 STORE_OK);
	assert_int_equal(store_dmarc_claim(f->st, "bad id", "example.com", 0, 1, 0), STORE_INVALID);
	assert_int_equal(store_dmarc_mark(f->st, "r1", "example.com", DAY0, DAY0 + 86399, ""),
			 STORE_OK);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_dmarc_due(f->st, DAY0 + 2 * 86400, got_period, g), STORE_OK);
	assert_int_equal(g->n, 2); /* example.org day 0 and example.com day 1 */
	assert_string_equal(g->p[0].policy_domain, "example.org");
	assert_int_equal(g->p[1].begin, DAY0 + 86400);
	memset(g, 0, sizeof(*g));
	assert_int_equal(
	    store_dmarc_aggregate(f->st, "example.com", DAY0, DAY0 + 86399, got_agg, g), STORE_OK);
	assert_int_equal(g->n, 0);

	/* purge what is older than day 1 */
	assert_int_equal(store_dmarc_purge(f->st, DAY0 + 86400, &purged), STORE_OK);
	assert_int_equal(purged, 5);
	free(g);
}

/* The queued report, read back through the queue interface. */
struct qseen {
	int n;
	char qid[QUEUE_ID_LEN + 1];
	char rcpt[STORE_ADDR_LEN];
	char sender[STORE_ADDR_LEN];
};

static int qcb(const struct store_queue_entry *e, void *arg)
{
	struct qseen *q = arg;

	q->n++;
	(void)str_copy(q->qid, sizeof(q->qid), e->queue_id);
	(void)str_copy(q->rcpt, sizeof(q->rcpt), e->rcpt);
	(void)str_copy(q->sender, sizeof(q->sender), e->sender);
	return 0;
}

static void test_run_job(void **state)
{
	struct fx *f = *state;
	struct dmarc_report_opts o = {
	    .org_name = "Example Receiver",
	    .from = "dmarc@mx.example.net",
	    .hostname = "mx.example.net",
	    .now = DAY0 + 86400 + 1800,
	};
	struct dmarc_report_stats s;
	struct qseen q = {0};
	struct store_dmarc_agg a;

	record(f->st, "example.com", "192.0.2.1", DAY0 + 10, "none");
	record(f->st, "example.com", "192.0.2.1", DAY0 + 20, "none");
	/* a domain that sends its reports elsewhere, unverified: skipped */
	fill(&a, "192.0.2.3", 1, "none");
	(void)str_copy(a.r.policy_domain, sizeof(a.r.policy_domain), "example.org");
	(void)str_copy(a.r.rua, sizeof(a.r.rua), "mailto:r@reports.example.net");
	a.r.ts = DAY0 + 30;
	assert_int_equal(store_dmarc_record(f->st, &a.r), STORE_OK);
	/* today: not due yet */
	record(f->st, "example.com", "192.0.2.1", DAY0 + 86400 + 5, "none");

	assert_int_equal(dmarc_report_run(f->st, &o, &s), STORE_OK);
	assert_int_equal(s.reports, 1);
	assert_int_equal(s.records, 1);
	assert_int_equal(s.skipped, 1);
	assert_int_equal(s.failed, 0);
	assert_int_equal(store_queue_list(f->st, NULL, qcb, &q), STORE_OK);
	assert_int_equal(q.n, 1);
	assert_string_equal(q.rcpt, "agg@example.com");
	assert_string_equal(q.sender, "dmarc@mx.example.net");

	/* a second run (or another node) sends nothing more */
	assert_int_equal(dmarc_report_run(f->st, &o, &s), STORE_OK);
	assert_int_equal(s.reports, 0);
	memset(&q, 0, sizeof(q));
	assert_int_equal(store_queue_list(f->st, NULL, qcb, &q), STORE_OK);
	assert_int_equal(q.n, 1);

	/* rows reported a second time are not re-sent even when new rows of
	 * the same day arrive late: the claim stands */
	record(f->st, "example.com", "192.0.2.2", DAY0 + 60, "none");
	assert_int_equal(dmarc_report_run(f->st, &o, &s), STORE_OK);
	assert_int_equal(s.reports, 0);
	assert_int_equal(s.skipped, 1);
}

static void test_message(void **state)
{
	const char *to[] = {"agg@example.com", "b@example.com"};
	struct dmarc_report_mail m = {
	    .from = "dmarc@mx.example.net",
	    .org_name = "Ex \"Co\"",
	    .submitter = "mx.example.net",
	    .policy_domain = "example.com",
	    .report_id = "20231114.example.com@mx.example.net",
	    .message_id = "dmarc.Q1@mx.example.net",
	    .begin = DAY0,
	    .end = DAY0 + 86399,
	    .now = DAY0 + 86400,
	    .to = to,
	    .nto = 2,
	};
	unsigned char gz[100];
	char *out = NULL;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(gz); i++)
		gz[i] = (unsigned char)i;
	assert_int_equal(dmarc_report_message(&m, gz, sizeof(gz), &out, &len), 0);
	assert_non_null(strstr(out, "From: \"Ex \\\"Co\\\"\" <dmarc@mx.example.net>\r\n"));
	assert_non_null(strstr(out, "To: <agg@example.com>,\r\n\t<b@example.com>\r\n"));
	assert_non_null(strstr(out, "Subject: Report Domain: example.com Submitter: "
				    "mx.example.net Report-ID: "
				    "<20231114.example.com@mx.example.net>\r\n"));
	assert_non_null(strstr(out,
			       "Content-Type: application/gzip; "
			       "name=\"mx.example.net!example.com!1699920000!1700006399.xml.gz\""));
	/* base64 of the first 57 bytes 0x00..0x38 */
	assert_non_null(
	    strstr(out, "\r\n\r\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss"
			"LS4vMDEyMzQ1Njc4\r\n"));
	assert_true(len > 2 && !strcmp(out + len - 2, "\r\n"));
	assert_int_equal(strlen(out), len);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rua_parse),
	    cmocka_unit_test(test_row_from_outcome),
	    cmocka_unit_test(test_xml_exact),
	    cmocka_unit_test(test_filename_and_next),
	    cmocka_unit_test(test_message),
	    cmocka_unit_test_setup_teardown(test_store_record_aggregate_mark, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_job, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
