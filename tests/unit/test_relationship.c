/* SPDX-License-Identifier: MIT */
/*
 * Sender relationships: the store operations (record, look-up, domains,
 * expiry, canonical addresses), the look-alike test on real look-alike
 * patterns and on near misses that must not fire, the decision on fixed
 * facts, and the look-up of a message against a real store.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpsl.h>

#include "core/config.h"
#include "core/util.h"
#include "scan/relationship.h"
#include "store/store.h"
#include "store/store_rel.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *st;
	struct config cfg;
	const psl_ctx_t *psl;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char url[200], err[256] = "";

	if (!f)
		return -1;
	(void)str_copy(f->dir, sizeof(f->dir), "/tmp/mxg-rel-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (str_fmt(f->path, sizeof(f->path), "%s/mxguard.db", f->dir) < 0 ||
	    str_fmt(url, sizeof(url), "sqlite:%s", f->path) < 0)
		return -1;
	if (store_open(url, 2000, &f->st, err, sizeof(err)) || store_migrate(f->st)) {
		print_error("store: %s\n", err);
		return -1;
	}
	config_defaults(&f->cfg);
	f->psl = psl_latest(NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[200];

	store_close(f->st);
	psl_free((psl_ctx_t *)f->psl);
	unlink(f->path);
	if (!str_fmt(p, sizeof(p), "%s-wal", f->path))
		unlink(p);
	if (!str_fmt(p, sizeof(p), "%s-shm", f->path))
		unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- store --------------------------------------------------------------- */

struct seen {
	size_t n;
	char v[16][STORE_ADDR_LEN];
};

static int rel_row(const struct store_rel *r, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16)
		(void)str_copy(s->v[s->n], sizeof(s->v[0]), r->remote);
	s->n++;
	return 0;
}

static int dom_row(const char *d, int64_t last_seen, void *arg)
{
	struct seen *s = arg;

	assert_true(last_seen > 0);
	if (s->n < 16)
		(void)str_copy(s->v[s->n], sizeof(s->v[0]), d);
	s->n++;
	return 0;
}

static void test_store_record_get(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	const char *one[] = {"Bob@Vendor.Example"};
	const char *two[] = {"bob@vendor.example", "carol@other.example"};
	struct store_rel r;

	assert_int_equal(store_rel_get(st, "alice@corp.example", "bob@vendor.example", &r),
			 STORE_NOTFOUND);
	assert_int_equal(
	    store_rel_record(st, "Alice@CORP.example", STORE_REL_OUTBOUND, one, 1, 1000), STORE_OK);
	assert_int_equal(
	    store_rel_record(st, "alice@corp.example", STORE_REL_OUTBOUND, two, 2, 2000), STORE_OK);
	/* case folding: every spelling reads the same pair */
	assert_int_equal(store_rel_get(st, "ALICE@corp.EXAMPLE", "BOB@vendor.example", &r),
			 STORE_OK);
	assert_string_equal(r.local, "alice@corp.example");
	assert_string_equal(r.remote, "bob@vendor.example");
	assert_int_equal(r.outbound, 2);
	assert_int_equal(r.inbound, 0);
	assert_int_equal(r.first_seen, 1000);
	assert_int_equal(r.last_seen, 2000);
	/* an older event does not move last_seen back */
	assert_int_equal(
	    store_rel_record(st, "alice@corp.example", STORE_REL_INBOUND, one, 1, 1500), STORE_OK);
	assert_int_equal(store_rel_get(st, "alice@corp.example", "bob@vendor.example", &r),
			 STORE_OK);
	assert_int_equal(r.inbound, 1);
	assert_int_equal(r.outbound, 2);
	assert_int_equal(r.last_seen, 2000);
	assert_int_equal(r.first_seen, 1000);
}

static void test_store_invalid_and_idn(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	const char *bad[] = {"ok@vendor.example", "not-an-address"};
	const char *idn[] = {"Bob@B\xc3\xbc"
			     "cher.example"};
	struct store_rel r;
	char canon[STORE_ADDR_LEN];

	/* one bad address: nothing of the call is counted */
	assert_int_equal(store_rel_record(st, "alice@corp.example", STORE_REL_OUTBOUND, bad, 2, 10),
			 STORE_INVALID);
	assert_int_equal(store_rel_get(st, "alice@corp.example", "ok@vendor.example", &r),
			 STORE_NOTFOUND);
	assert_int_equal(store_rel_record(st, "nobody", STORE_REL_OUTBOUND, idn, 1, 10),
			 STORE_INVALID);
	assert_int_equal(store_rel_record(st, "a@corp.example", (enum store_rel_dir)7, idn, 1, 10),
			 STORE_INVALID);
	/* IDN: the U-label and the A-label spelling are one pair */
	assert_int_equal(store_rel_addr_norm(st, idn[0], canon, sizeof(canon)), STORE_OK);
	assert_string_equal(canon, "bob@xn--bcher-kva.example");
	assert_int_equal(store_rel_record(st, "alice@corp.example", STORE_REL_OUTBOUND, idn, 1, 10),
			 STORE_OK);
	assert_int_equal(store_rel_get(st, "alice@corp.example", "BOB@xn--bcher-kva.example", &r),
			 STORE_OK);
	assert_int_equal(r.outbound, 1);
}

static void test_store_domains_list_expire(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	const char *a1[] = {"x@old.example", "y@mail.vendor.example"};
	const char *a2[] = {"z@new.example"};
	const char *c1[] = {"w@colleague.example", "v@new.example"};
	struct store_rel_counts c;
	struct seen s;
	size_t n = 99;

	assert_int_equal(store_rel_record(st, "alice@corp.example", STORE_REL_OUTBOUND, a1, 2, 100),
			 STORE_OK);
	assert_int_equal(store_rel_record(st, "alice@corp.example", STORE_REL_OUTBOUND, a2, 1, 300),
			 STORE_OK);
	assert_int_equal(store_rel_record(st, "carl@corp.example", STORE_REL_INBOUND, c1, 2, 500),
			 STORE_OK);
	assert_int_equal(
	    store_rel_record(st, "dan@elsewhere.example", STORE_REL_OUTBOUND, a2, 1, 900),
	    STORE_OK);

	/* a mailbox's pairs, most recent first */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_rel_list(st, "Alice@corp.example", rel_row, &s), STORE_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.v[0], "z@new.example");

	/* domain counts include subdomains, only for the local domain */
	assert_int_equal(store_rel_domain_get(st, "corp.example", "vendor.example", &c), STORE_OK);
	assert_int_equal(c.pairs, 1);
	assert_int_equal(c.outbound, 1);
	assert_int_equal(store_rel_domain_get(st, "corp.example", "new.example", &c), STORE_OK);
	assert_int_equal(c.pairs, 2);
	assert_int_equal(c.outbound, 1);
	assert_int_equal(c.inbound, 1);
	assert_int_equal(c.last_seen, 500);
	assert_int_equal(store_rel_domain_get(st, "corp.example", "endor.example", &c), STORE_OK);
	assert_int_equal(c.pairs, 0);
	assert_int_equal(store_rel_domain_get(st, "other.example", "new.example", &c), STORE_OK);
	assert_int_equal(c.pairs, 0);

	/* alice's own domains first (most recent first), then colleagues' */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_rel_domains(st, "alice@corp.example", 10, dom_row, &s), STORE_OK);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.v[0], "new.example");
	assert_true(!strcmp(s.v[1], "old.example") || !strcmp(s.v[1], "mail.vendor.example"));
	assert_string_equal(s.v[3], "colleague.example");
	/* bounded */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_rel_domains(st, "alice@corp.example", 2, dom_row, &s), STORE_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(store_rel_domains(st, "alice@corp.example", 0, dom_row, &s),
			 STORE_INVALID);

	/* remove and expire */
	assert_int_equal(store_rel_remove(st, "alice@corp.example", "X@old.example"), STORE_OK);
	assert_int_equal(store_rel_remove(st, "alice@corp.example", "x@old.example"),
			 STORE_NOTFOUND);
	assert_int_equal(store_rel_expire(st, 400, &n), STORE_OK);
	assert_int_equal(n, 2); /* y@mail.vendor (100), z@new (300) */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_rel_list(st, "alice@corp.example", rel_row, &s), STORE_OK);
	assert_int_equal(s.n, 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_rel_list(st, "carl@corp.example", rel_row, &s), STORE_OK);
	assert_int_equal(s.n, 2);
}

static void test_learn(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	const char *to[] = {"bob@vendor.example", "colleague@corp.example", "garbage", NULL,
			    "Bob@VENDOR.example"};
	struct store_rel r;
	size_t skipped = 0, n = 0;

	assert_int_equal(rel_learn_outbound(st, "alice@corp.example", to, 5, &skipped), STORE_OK);
	assert_int_equal(skipped, 3);
	assert_int_equal(store_rel_get(st, "alice@corp.example", "bob@vendor.example", &r),
			 STORE_OK);
	assert_int_equal(r.outbound, 2);
	assert_int_equal(store_rel_get(st, "alice@corp.example", "colleague@corp.example", &r),
			 STORE_NOTFOUND);
	assert_int_equal(rel_learn_outbound(st, "bad", to, 1, NULL), STORE_INVALID);
	assert_int_equal(rel_learn_release(st, "alice@corp.example", "news@shop.example"),
			 STORE_OK);
	assert_int_equal(store_rel_get(st, "alice@corp.example", "news@shop.example", &r),
			 STORE_OK);
	assert_int_equal(r.inbound, 1);
	assert_int_equal(r.outbound, 0);
	/* nothing is older than a year yet */
	assert_int_equal(rel_expire(st, &f->cfg, time_now(), &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(rel_expire(st, &f->cfg, time_now() + f->cfg.relationships.expire + 10, &n),
			 STORE_OK);
	assert_int_equal(n, 2);
}

/* ---- look-alikes --------------------------------------------------------- */

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(rel_edit_distance("example", 7, "example", 7, 2), 0);
	assert_int_equal(rel_edit_distance("example", 7, "exmaple", 7, 2), 1); /* swap */
	assert_int_equal(rel_edit_distance("example", 7, "exampe", 6, 2), 1);
	assert_int_equal(rel_edit_distance("example", 7, "examplle", 8, 2), 1);
	assert_int_equal(rel_edit_distance("kitten", 6, "sitting", 7, 5), 3);
	assert_int_equal(rel_edit_distance("kitten", 6, "sitting", 7, 2), 3); /* max + 1 */
	assert_int_equal(rel_edit_distance("ca", 2, "abc", 3, 5), 3);	      /* OSA, not DL */
	assert_int_equal(rel_edit_distance("", 0, "abc", 3, 5), 3);
}

struct la_case {
	const char *domain, *correspondent, *why; /* why NULL: must not fire */
};

static void test_lookalike(void **state)
{
	struct fixture *f = *state;
	static const struct la_case cases[] = {
	    /* homoglyphs and digits */
	    {"examp1e.com", "example.com", "confusable"},
	    {"ex\xd0\xb0mple.com", "example.com", "confusable"}, /* Cyrillic a */
	    {"xn--exmple-4nf.com", "example.com", "confusable"}, /* the same, A-label */
	    {"\xce\xbf"
	     "racle.com",
	     "oracle.com", "confusable"}, /* Greek omicron */
	    {"rnicrosoft.com", "microsoft.com", "confusable"},
	    {"paypa1.com", "paypal.com", "confusable"},
	    {"g00gle.com", "google.com", "confusable"},
	    {"mail.examp1e.com", "example.com", "confusable"}, /* a subdomain of one */
	    {"examp1e.co.uk", "example.co.uk", "confusable"},
	    {"gmai1.com", "gmail.com", "confusable"}, /* not freemail itself */
	    /* hyphens, typos, TLD typos */
	    {"example-corp.com", "examplecorp.com", "hyphen"},
	    {"examplecorp.com", "example-corp.com", "hyphen"},
	    {"exmaple.com", "example.com", "one edit"},
	    {"exampel.com", "example.com", "one edit"},
	    {"exampe.com", "example.com", "one edit"},
	    {"examplle.com", "example.com", "one edit"},
	    {"goggle.com", "google.com", "one edit"},
	    {"example.co", "example.com", "tld typo"},
	    {"example.cm", "example.com", "tld typo"},
	    /* must not fire */
	    {"example.com", "example.com", NULL},
	    {"mail.example.com", "example.com", NULL}, /* the same organisation */
	    {"example.org", "example.com", NULL},      /* another TLD: decided */
	    {"example.de", "example.com", NULL},
	    {"example.net", "example.co.uk", NULL},
	    {"gmail.com", "gmail.com", NULL},
	    {"mail.com", "gmail.com", NULL}, /* a real freemail provider */
	    {"gmx.com", "gmail.com", NULL},
	    {"ibn.com", "ibm.com", NULL}, /* too short for one edit */
	    {"acne.com", "acme.com", NULL},
	    {"github.com", "gitlab.com", NULL},
	    {"amazonaws.com", "amazon.com", NULL},
	    {"vendor-systems.com", "vendor.com", NULL},
	    {"partner.com", "partners.org", NULL},
	    {"com", "example.com", NULL},
	    {"not a domain", "example.com", NULL},
	};
	char why[32];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		bool got;

		why[0] = '\0';
		got = rel_lookalike(f->psl, cases[i].domain, cases[i].correspondent, why,
				    sizeof(why));
		if (got != (cases[i].why != NULL))
			fail_msg("%s vs %s: expected %s, got %s (%s)", cases[i].domain,
				 cases[i].correspondent, cases[i].why ? "look-alike" : "none",
				 got ? "look-alike" : "none", why);
		if (got && strcmp(why, cases[i].why) != 0)
			fail_msg("%s vs %s: reason %s, expected %s", cases[i].domain,
				 cases[i].correspondent, why, cases[i].why);
	}
	/* without a PSL the last two labels are the registrable domain */
	assert_true(rel_lookalike(NULL, "examp1e.com", "example.com", NULL, 0));
	assert_false(rel_lookalike(NULL, "www.example.com", "example.com", NULL, 0));
	assert_true(rel_freemail("gmail.com"));
	assert_true(rel_freemail("zoho.com"));
	assert_false(rel_freemail("gmail.co"));
}

/* ---- the decision on fixed facts ------------------------------------------ */

static struct rel_facts *facts_new(const char *identity, const char *rcpt)
{
	struct rel_facts *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	(void)str_copy(f->identity, sizeof(f->identity), identity);
	(void)str_copy(f->rcpt[0].rcpt, sizeof(f->rcpt[0].rcpt), rcpt);
	f->nrcpts = 1;
	f->established = 2;
	return f;
}

static size_t decide(struct fixture *fx, const struct rel_facts *f, bool auth,
		     struct scan_symbol *out)
{
	memset(out, 0, sizeof(*out) * 4);
	return rel_decide(f, fx->psl, auth, out, 4);
}

static void test_decide(void **state)
{
	struct fixture *fx = *state;
	struct scan_symbol s[4];
	struct rel_facts *f = facts_new("bob@vendor.com", "alice@corp.com");
	char *doms[] = {(char *)"example.com", (char *)"gmail.com", (char *)"partner.org"};

	/* established: two messages sent */
	f->rcpt[0].outbound = 2;
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_ESTABLISHED");
	assert_true(s[0].score < -1.5);
	assert_non_null(strstr(s[0].detail, "alice@corp.com"));
	/* ... but not for a From that could be forged */
	assert_int_equal(decide(fx, f, false, s), 1);
	assert_string_equal(s[0].name, "REL_KNOWN_UNAUTH");
	assert_true(s[0].score == 0.0);
	/* released once is established too */
	f->rcpt[0].outbound = 0;
	f->rcpt[0].inbound = 1;
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_ESTABLISHED");
	/* written to once */
	f->rcpt[0].inbound = 0;
	f->rcpt[0].outbound = 1;
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_KNOWN_CONTACT");
	/* a threshold of 1 makes one message enough */
	f->established = 1;
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_ESTABLISHED");
	f->established = 2;
	/* a colleague corresponds with the domain */
	f->rcpt[0].outbound = 0;
	f->rcpt[0].domain.pairs = 1;
	f->rcpt[0].domain.outbound = 3;
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_KNOWN_DOMAIN");
	assert_true(s[0].score < 0 && s[0].score > -1.0);
	/* nothing at all */
	memset(&f->rcpt[0].domain, 0, sizeof(f->rcpt[0].domain));
	f->rcpt[0].domains = doms;
	f->rcpt[0].ndomains = ARRAY_LEN(doms);
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_FIRST_CONTACT");
	assert_true(s[0].score == 0.0);

	/* a first contact from a look-alike of a correspondent, authenticated
	 * or not */
	(void)str_copy(f->identity, sizeof(f->identity), "ceo@examp1e.com");
	for (int auth = 0; auth < 2; auth++) {
		assert_int_equal(decide(fx, f, auth, s), 2);
		assert_string_equal(s[0].name, "REL_FIRST_CONTACT");
		assert_string_equal(s[1].name, "REL_LOOKALIKE_CORRESPONDENT");
		assert_true(s[1].score >= 3.0);
		assert_non_null(strstr(s[1].detail, "example.com"));
	}
	/* a look-alike of the recipient's own domain */
	(void)str_copy(f->identity, sizeof(f->identity), "ceo@c0rp.com");
	assert_int_equal(decide(fx, f, true, s), 2);
	assert_string_equal(s[1].name, "REL_LOOKALIKE_CORRESPONDENT");
	assert_non_null(strstr(s[1].detail, "corp.com"));
	/* another TLD of a correspondent: a first contact, no more */
	(void)str_copy(f->identity, sizeof(f->identity), "ceo@example.org");
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_FIRST_CONTACT");
	/* a gmail.com user writing to someone who corresponds with gmail.com
	 * users: a first contact, not a look-alike, and the colleagues'
	 * gmail.com contacts do not vouch for this one */
	(void)str_copy(f->identity, sizeof(f->identity), "stranger@gmail.com");
	f->rcpt[0].domain.pairs = 5;
	f->rcpt[0].domain.outbound = 9;
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_FIRST_CONTACT");
	/* gmai1.com is not gmail.com */
	(void)str_copy(f->identity, sizeof(f->identity), "stranger@gmai1.com");
	memset(&f->rcpt[0].domain, 0, sizeof(f->rcpt[0].domain));
	assert_int_equal(decide(fx, f, true, s), 2);
	assert_string_equal(s[1].name, "REL_LOOKALIKE_CORRESPONDENT");

	/* two recipients: the best relationship wins, no look-alike then */
	(void)str_copy(f->identity, sizeof(f->identity), "ceo@examp1e.com");
	(void)str_copy(f->rcpt[1].rcpt, sizeof(f->rcpt[1].rcpt), "bea@corp.com");
	f->rcpt[1].outbound = 4;
	f->nrcpts = 2;
	assert_int_equal(decide(fx, f, true, s), 1);
	assert_string_equal(s[0].name, "REL_ESTABLISHED");
	assert_non_null(strstr(s[0].detail, "bea@corp.com"));

	/* internal mail and no identity: no symbol */
	f->nrcpts = 1;
	f->rcpt[0].internal = true;
	assert_int_equal(decide(fx, f, true, s), 0);
	f->rcpt[0].internal = false;
	f->identity[0] = '\0';
	assert_int_equal(decide(fx, f, true, s), 0);
	assert_int_equal(rel_decide(NULL, NULL, true, s, 4), 0);
	free(f);
}

/* ---- the look-up of a message against the store ---------------------------- */

static size_t run_query(struct fixture *fx, const char *sender, const char *from,
			const char *const *rcpts, size_t n, bool auth, struct scan_symbol *out)
{
	struct rel_query *q = NULL;
	size_t ns;

	assert_int_equal(rel_query_new(&fx->cfg, fx->psl, sender, from, rcpts, n, &q), 0);
	assert_int_equal(rel_query_run(fx->st, q), STORE_OK);
	memset(out, 0, sizeof(*out) * 4);
	ns = rel_query_symbols(q, auth, out, 4);
	rel_query_free(q);
	return ns;
}

static void test_query(void **state)
{
	struct fixture *fx = *state;
	const char *to_partner[] = {"Anna@Partner.example", "ops@supplier.com"};
	const char *rcpt_alice[] = {"ALICE@corp.example"};
	const char *rcpt_both[] = {"alice@corp.example", "dora@corp.example", "alice@corp.example"};
	struct scan_symbol s[4];
	struct rel_query *q = NULL;

	assert_int_equal(rel_learn_outbound(fx->st, "alice@corp.example", to_partner, 2, NULL),
			 STORE_OK);
	assert_int_equal(rel_learn_outbound(fx->st, "alice@corp.example", to_partner, 1, NULL),
			 STORE_OK);

	/* Anna answers: From decides, whatever the envelope says */
	assert_int_equal(
	    run_query(fx, "bounce-123@esp.example", "anna@partner.example", rcpt_alice, 1, true, s),
	    1);
	assert_string_equal(s[0].name, "REL_ESTABLISHED");
	/* no From: the envelope sender */
	assert_int_equal(run_query(fx, "ops@supplier.com", NULL, rcpt_alice, 1, true, s), 1);
	assert_string_equal(s[0].name, "REL_KNOWN_CONTACT");
	/* a colleague of Anna's, to alice's colleague dora */
	assert_int_equal(
	    run_query(fx, "ben@partner.example", "ben@partner.example", rcpt_both + 1, 1, true, s),
	    1);
	assert_string_equal(s[0].name, "REL_KNOWN_DOMAIN");
	/* a look-alike of alice's supplier, to alice and dora (dup ignored) */
	assert_int_equal(
	    run_query(fx, "ceo@suppl1er.com", "ceo@suppl1er.com", rcpt_both, 3, true, s), 2);
	assert_string_equal(s[0].name, "REL_FIRST_CONTACT");
	assert_string_equal(s[1].name, "REL_LOOKALIKE_CORRESPONDENT");
	assert_non_null(strstr(s[1].detail, "supplier.com"));
	/* a stranger with an unrelated name */
	assert_int_equal(run_query(fx, "x@unrelated.example", "", rcpt_alice, 1, true, s), 1);
	assert_string_equal(s[0].name, "REL_FIRST_CONTACT");
	/* internal */
	assert_int_equal(run_query(fx, "dora@corp.example", NULL, rcpt_alice, 1, true, s), 0);
	/* the facts are visible */
	assert_int_equal(
	    rel_query_new(&fx->cfg, fx->psl, "", "anna@partner.example", rcpt_alice, 1, &q), 0);
	assert_int_equal(rel_query_run(fx->st, q), STORE_OK);
	assert_string_equal(rel_query_facts(q)->identity, "anna@partner.example");
	assert_int_equal(rel_query_facts(q)->rcpt[0].outbound, 2);
	rel_query_free(q);

	/* nothing to look up */
	assert_int_equal(rel_query_new(&fx->cfg, fx->psl, "", NULL, rcpt_alice, 1, &q), -ENOENT);
	assert_null(q);
	assert_int_equal(rel_query_new(&fx->cfg, fx->psl, "a@b.example", NULL, rcpt_alice, 0, &q),
			 -ENOENT);
	fx->cfg.relationships.enabled = false;
	assert_int_equal(rel_query_new(&fx->cfg, fx->psl, "a@b.example", NULL, rcpt_alice, 1, &q),
			 -ENOENT);
	fx->cfg.relationships.enabled = true;
}

static void test_config(void **state)
{
	struct config cfg;
	char err[256];
	static const char good[] = "[relationships]\nexpire = 90d\nmax_domains = 100\n"
				   "established = 3\nenabled = no\n";
	static const char bad[] = "[relationships]\nexpire = 1d\n";

	(void)state;
	config_defaults(&cfg);
	assert_true(cfg.relationships.enabled);
	assert_int_equal(cfg.relationships.expire, 365 * 86400);
	assert_int_equal(cfg.relationships.max_domains, 500);
	assert_int_equal(cfg.relationships.established, 2);
	assert_int_equal(config_parse("t", good, strlen(good), &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.relationships.expire, 90 * 86400);
	assert_int_equal(cfg.relationships.max_domains, 100);
	assert_int_equal(cfg.relationships.established, 3);
	assert_false(cfg.relationships.enabled);
	assert_true(config_parse("t", bad, strlen(bad), &cfg, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "t:2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_record_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_invalid_and_idn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_domains_list_expire, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_learn, setup, teardown),
	    cmocka_unit_test(test_edit_distance),
	    cmocka_unit_test_setup_teardown(test_lookalike, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decide, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_query, setup, teardown),
	    cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
