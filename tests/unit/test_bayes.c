/* SPDX-License-Identifier: MIT */
/*
 * Bayes: the tokenizer (exact features of small texts), the math (fixed
 * counts with known results), the store (learn, relearn as the other
 * class, unlearn, batch reads, expiry) and classification in-process.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/util.h"
#include "mime/mime.h"
#include "scan/bayes.h"
#include "store/store.h"
#include "store/store_bayes.h"

/* ---- collecting features ---------------------------------------------- */

#define MAX_FEAT 512

struct feats {
	char *v[MAX_FEAT];
	size_t n;
};

static void collect(const char *f, size_t len, void *arg)
{
	struct feats *fs = arg;

	assert_int_equal(strlen(f), len);
	if (fs->n < MAX_FEAT)
		fs->v[fs->n++] = strdup(f);
}

static void feats_free(struct feats *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		free(fs->v[i]);
	fs->n = 0;
}

static bool has(const struct feats *fs, const char *f)
{
	for (size_t i = 0; i < fs->n; i++)
		if (!strcmp(fs->v[i], f))
			return true;
	return false;
}

static void expect_exact(const char *prefix, const char *text, bool osb, const char *const *want,
			 size_t nwant)
{
	struct feats fs = {0};

	bayes_features_text(prefix, text, strlen(text), osb, collect, &fs);
	for (size_t i = 0; i < fs.n && i < nwant; i++)
		if (strcmp(fs.v[i], want[i]))
			fail_msg("feature %zu of '%s': got '%s', want '%s'", i, text, fs.v[i],
				 want[i]);
	if (fs.n != nwant)
		fail_msg("'%s': %zu features, want %zu", text, fs.n, nwant);
	feats_free(&fs);
}

/* ---- tokenizer ---------------------------------------------------------- */

static void test_siphash_vectors(void **state)
{
	uint8_t key[16], msg[15];

	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	/* the reference vectors of the SipHash paper and its vectors.h */
	assert_true(bayes_siphash(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(bayes_siphash(key, msg, 15) == 0xa129ca6149be45e5ULL);
	/* stable token of a feature, never 0 */
	assert_true(bayes_feature_hash("viagra", 6) == bayes_feature_hash("viagra", 6));
	assert_true(bayes_feature_hash("viagra", 6) != bayes_feature_hash("S:viagra", 8));
	assert_true(bayes_feature_hash("", 0) != 0);
}

static void test_words(void **state)
{
	static const char *const w1[] = {"hello", "world",  "don't", "e-mail",	       "me",
					 "at",	  "N2.N2$", "N4",    "www.example.com"};
	static const char *const w2[] = {"ünïcode", "σοφια", "привет", "L:aaaaaaaaaaaa"};
	static const char *const w3[] = {"日", "本", "語", "ok"};
	static const char *const w4[] = {"$N1,N3", "N3"};

	(void)state;
	expect_exact("", "Hello, World! Don't e-mail me at 10.50$ I 2002 www.example.com.", false,
		     w1, ARRAY_LEN(w1));
	/* case folding beyond ASCII; a long word keeps "L:" and 12 bytes */
	expect_exact("", "ÜNÏCODE ΣΟΦΙΑ Привет aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, w2,
		     ARRAY_LEN(w2));
	expect_exact("", "日本語 ok", false, w3, ARRAY_LEN(w3));
	/* ',' joins digits only; '-' at the end is dropped; lone letters go */
	expect_exact("", "$1,500 - x 123-", false, w4, ARRAY_LEN(w4));
}

static void test_long_word(void **state)
{
	struct feats fs = {0};
	const char *t = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ééééééééééééééé";

	(void)state;
	bayes_features_text("", t, strlen(t), false, collect, &fs);
	assert_int_equal(fs.n, 2);
	assert_string_equal(fs.v[0], "L:aaaaaaaaaaaa");
	/* 15 x 2-byte é = 30 bytes: cut at 12 bytes = 6 characters */
	assert_string_equal(fs.v[1], "L:éééééé");
	feats_free(&fs);
}

static void test_osb_pairs(void **state)
{
	static const char *const want[] = {
	    "S:buy",	       "S:cheap",	  "S:buy 1 cheap", "S:pills",
	    "S:cheap 1 pills", "S:buy 2 pills",	  "S:now",	   "S:pills 1 now",
	    "S:cheap 2 now",   "S:buy 3 now",	  "S:today",	   "S:now 1 today",
	    "S:pills 2 today", "S:cheap 3 today", "S:buy 4 today", "S:ok",
	    "S:today 1 ok",    "S:now 2 ok",	  "S:pills 3 ok",  "S:cheap 4 ok",
	};

	(void)state;
	/* the window is 5: "buy" is out of reach of "ok" */
	expect_exact("S:", "Buy cheap PILLS now, today ok", true, want, ARRAY_LEN(want));
}

static const char msg_spam[] =
    "Received: from mail.bad.example (mail.bad.example [192.0.2.77])\r\n"
    "\tby mx.test.example with ESMTP id 1234\r\n"
    "From: \"Best Pharmacy\" <offers@bad.example>\r\n"
    "To: victim@test.example\r\n"
    "Subject: Cheap pills today\r\n"
    "Message-ID: <12345@mailer.bad.example>\r\n"
    "X-Mailer: SpamCannon 3.1\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><body><p>Buy cheap pills now without prescription.</p>\r\n"
    "<a href=\"http://www.pharma.bad.example/offer/index.php?id=7\">Order now</a>\r\n"
    "</body></html>\r\n";

static struct mime_msg *parse(struct mime_engine *e, const char *text)
{
	struct mime_msg *m = NULL;

	assert_int_equal(mime_parse(e, text, strlen(text), &m), 0);
	return m;
}

static void test_message_features(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_ALL);
	struct mime_msg *m;
	struct bayes_tokens *t1 = NULL, *t2 = NULL;
	struct feats fs = {0};
	const uint64_t *v;

	(void)state;
	assert_non_null(e);
	m = parse(e, msg_spam);
	bayes_features_msg(m, collect, &fs);
	assert_true(has(&fs, "S:cheap"));
	assert_true(has(&fs, "S:cheap 1 pills"));
	assert_true(has(&fs, "F:offers@bad.example"));
	assert_true(has(&fs, "T:victim@test.example"));
	assert_true(has(&fs, "H:ip:192.0.2"));
	assert_true(has(&fs, "H:mail.bad.example"));
	assert_true(has(&fs, "M:spamcannon"));
	assert_true(has(&fs, "MID:mailer.bad.example"));
	assert_true(has(&fs, "CT:text/html"));
	assert_true(has(&fs, "CS:utf-8"));
	assert_true(has(&fs, "U:www.pharma.bad.example"));
	assert_true(has(&fs, "U:bad.example"));
	assert_true(has(&fs, "UP:offer"));
	assert_true(has(&fs, "prescription"));
	assert_true(has(&fs, "without 1 prescription"));
	assert_false(has(&fs, "html")); /* the HTML is rendered, not tokenised */
	feats_free(&fs);

	assert_int_equal(bayes_tokenize(m, &t1), 0);
	assert_int_equal(bayes_tokenize(m, &t2), 0);
	assert_true(bayes_tokens_count(t1) > 30);
	assert_int_equal(bayes_tokens_count(t1), bayes_tokens_count(t2));
	v = bayes_tokens_values(t1);
	for (size_t i = 1; i < bayes_tokens_count(t1); i++)
		assert_true(v[i - 1] < v[i]);
	assert_memory_equal(v, bayes_tokens_values(t2), bayes_tokens_count(t1) * sizeof(*v));
	assert_int_equal(strlen(bayes_tokens_digest(t1)), 64);
	assert_string_equal(bayes_tokens_digest(t1), bayes_tokens_digest(t2));
	{
		uint64_t want = bayes_feature_hash("S:cheap", 7);
		bool found = false;
		for (size_t i = 0; i < bayes_tokens_count(t1); i++)
			found |= v[i] == want;
		assert_true(found);
	}
	bayes_tokens_free(t1);
	bayes_tokens_free(t2);
	mime_msg_free(m);
	mime_engine_free(e);
}

/* ---- math --------------------------------------------------------------- */

static void test_math(void **state)
{
	double f1[] = {0.99, 0.99, 0.99}, f2[] = {0.9, 0.2, 0.7, 0.95}, f3[] = {0.1, 0.3};
	double g2[4], score;

	(void)state;
	/* chi-square survival: closed forms and a table value */
	assert_float_equal(bayes_chi2q(0, 2), 1.0, 1e-12);
	assert_float_equal(bayes_chi2q(2, 2), exp(-1.0), 1e-12);
	assert_float_equal(bayes_chi2q(4, 4), 0.4060058497098381, 1e-12);
	assert_float_equal(bayes_chi2q(10.5, 8), 0.23166973807635938, 1e-12);
	assert_true(bayes_chi2q(2000, 300) < 1e-100);
	/* Robinson's f(w) with s = 0.45, x = 0.5 */
	assert_float_equal(bayes_token_prob(0, 0, 100, 100), 0.5, 1e-12);
	assert_float_equal(bayes_token_prob(5, 5, 100, 100), 0.5, 1e-12);
	assert_float_equal(bayes_token_prob(10, 0, 100, 100), 10.225 / 10.45, 1e-12);
	assert_float_equal(bayes_token_prob(1, 0, 50, 100), 1.225 / 1.45, 1e-12);
	/* 2 of 100 spam vs 2 of 200 ham: p = 2/3 */
	assert_float_equal(bayes_token_prob(2, 2, 100, 200), (0.225 + 4 * (2.0 / 3)) / 4.45, 1e-12);
	/* chi-square combining (Robinson's I = (1 + H - S) / 2) */
	assert_float_equal(bayes_combine(f1, 3), 0.9999426420479766, 1e-12);
	assert_float_equal(bayes_combine(f2, 4), 0.8685346237502461, 1e-12);
	assert_float_equal(bayes_combine(f3, 2), 0.10705719868688368, 1e-12);
	assert_float_equal(bayes_combine(NULL, 0), 0.5, 1e-12);
	for (int i = 0; i < 4; i++)
		g2[i] = 1 - f2[i];
	assert_float_equal(bayes_combine(f2, 4) + bayes_combine(g2, 4), 1.0, 1e-12);
	/* bands and SpamAssassin's scores */
	assert_string_equal(bayes_symbol(0.005, &score), "BAYES_00");
	assert_float_equal(score, -1.9, 1e-12);
	assert_string_equal(bayes_symbol(0.01, &score), "BAYES_05");
	assert_float_equal(score, -0.5, 1e-12);
	assert_string_equal(bayes_symbol(0.2, NULL), "BAYES_40");
	assert_string_equal(bayes_symbol(0.5, &score), "BAYES_50");
	assert_float_equal(score, 0.8, 1e-12);
	assert_string_equal(bayes_symbol(0.9, &score), "BAYES_80");
	assert_string_equal(bayes_symbol(0.97, &score), "BAYES_95");
	assert_float_equal(score, 3.0, 1e-12);
	assert_string_equal(bayes_symbol(0.9995, &score), "BAYES_99");
	assert_float_equal(score, 3.5, 1e-12);
}

static void test_autolearn(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_true(cfg.bayes.autolearn);
	assert_int_equal(bayes_autolearn_decision(15, -1, &cfg), BAYES_AUTOLEARN_SPAM);
	/* 15 - 3.5 (BAYES_99 it implies) < 12 */
	assert_int_equal(bayes_autolearn_decision(15, 0.995, &cfg), BAYES_AUTOLEARN_NONE);
	/* 16 - 0.8 >= 12 */
	assert_int_equal(bayes_autolearn_decision(16, 0.5, &cfg), BAYES_AUTOLEARN_SPAM);
	/* Bayes already sure: nothing to add */
	assert_int_equal(bayes_autolearn_decision(30, 0.995, &cfg), BAYES_AUTOLEARN_NONE);
	assert_int_equal(bayes_autolearn_decision(0, -1, &cfg), BAYES_AUTOLEARN_HAM);
	/* -1.5 + 1.9 = 0.4 > 0.1 */
	assert_int_equal(bayes_autolearn_decision(-1.5, 0.005, &cfg), BAYES_AUTOLEARN_NONE);
	assert_int_equal(bayes_autolearn_decision(-3, 0.3, &cfg), BAYES_AUTOLEARN_HAM);
	assert_int_equal(bayes_autolearn_decision(5, -1, &cfg), BAYES_AUTOLEARN_NONE);
	cfg.bayes.autolearn = false;
	assert_int_equal(bayes_autolearn_decision(15, -1, &cfg), BAYES_AUTOLEARN_NONE);
}

/* ---- store -------------------------------------------------------------- */

struct fixture {
	char dir[64];
	char url[160];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	(void)str_copy(f->dir, sizeof(f->dir), "/tmp/mxg-bayes-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	(void)str_fmt(f->url, sizeof(f->url), "sqlite:%s/s.db", f->dir);
	if (store_open(f->url, 1000, &f->st, err, sizeof(err)) || store_migrate(f->st)) {
		print_error("store: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[128];

	store_close(f->st);
	for (const char *s = ""; s; s = (!s[0] ? "-wal" : !strcmp(s, "-wal") ? "-shm" : NULL)) {
		(void)str_fmt(p, sizeof(p), "%s/s.db%s", f->dir, s);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void item(struct store_bayes_item *it, const char *digest, enum store_bayes_class cls,
		 const uint64_t *t, size_t n)
{
	memset(it, 0, sizeof(*it));
	(void)str_copy(it->digest, sizeof(it->digest), digest);
	it->cls = cls;
	it->tokens = t;
	it->ntokens = n;
}

static void counts(struct store *st, const uint64_t *t, size_t n, struct store_bayes_count *out)
{
	assert_int_equal(store_bayes_get(st, t, n, out), STORE_OK);
	for (size_t i = 0; i < n; i++)
		assert_true(out[i].token == t[i]);
}

static void test_store_roundtrip(void **state)
{
	struct fixture *f = *state;
	/* a token above INT64_MAX must survive the signed column */
	const uint64_t a[] = {1, 2, 3, 0xfedcba9876543210ULL};
	const uint64_t b[] = {3, 4};
	const uint64_t bad[] = {4, 3};
	const char *d1 = "00112233445566778899aabbccddeeff",
		   *d2 = "ffeeddccbbaa99887766554433221100";
	struct store_bayes_item it[2];
	struct store_bayes_count c[5];
	struct store_bayes_totals t;
	const uint64_t all[] = {1, 2, 3, 4, 0xfedcba9876543210ULL};

	item(&it[0], d1, STORE_BAYES_SPAM, a, 4);
	item(&it[1], d2, STORE_BAYES_HAM, b, 2);
	assert_int_equal(store_bayes_learn(f->st, it, 2, 1000), STORE_OK);
	assert_int_equal(it[0].outcome, STORE_BAYES_LEARNT);
	assert_int_equal(it[1].outcome, STORE_BAYES_LEARNT);
	assert_int_equal(store_bayes_stats(f->st, &t), STORE_OK);
	assert_int_equal(t.nspam, 1);
	assert_int_equal(t.nham, 1);
	assert_int_equal(t.ntokens, 5);
	assert_int_equal(t.nseen, 2);
	counts(f->st, all, 5, c);
	assert_int_equal(c[0].spam, 1);
	assert_int_equal(c[0].ham, 0);
	assert_int_equal(c[2].spam, 1); /* token 3: in both */
	assert_int_equal(c[2].ham, 1);
	assert_int_equal(c[3].spam, 0);
	assert_int_equal(c[3].ham, 1);
	assert_int_equal(c[4].spam, 1);

	/* the same message again: nothing changes */
	item(&it[0], d1, STORE_BAYES_SPAM, a, 4);
	assert_int_equal(store_bayes_learn(f->st, it, 1, 1001), STORE_OK);
	assert_int_equal(it[0].outcome, STORE_BAYES_ALREADY);
	counts(f->st, all, 5, c);
	assert_int_equal(c[0].spam, 1);

	/* relearn as ham: its counts move over */
	item(&it[0], d1, STORE_BAYES_HAM, a, 4);
	assert_int_equal(store_bayes_learn(f->st, it, 1, 1002), STORE_OK);
	assert_int_equal(it[0].outcome, STORE_BAYES_RELEARNT);
	assert_int_equal(store_bayes_totals(f->st, &t), STORE_OK);
	assert_int_equal(t.nspam, 0);
	assert_int_equal(t.nham, 2);
	counts(f->st, all, 5, c);
	assert_int_equal(c[0].spam, 0);
	assert_int_equal(c[0].ham, 1);
	assert_int_equal(c[2].ham, 2);

	/* unlearn it: back to the other message alone, empty rows deleted */
	item(&it[0], d1, STORE_BAYES_FORGET, a, 4);
	assert_int_equal(store_bayes_learn(f->st, it, 1, 1003), STORE_OK);
	assert_int_equal(it[0].outcome, STORE_BAYES_FORGOTTEN);
	assert_int_equal(store_bayes_stats(f->st, &t), STORE_OK);
	assert_int_equal(t.nspam, 0);
	assert_int_equal(t.nham, 1);
	assert_int_equal(t.ntokens, 2);
	assert_int_equal(t.nseen, 1);
	counts(f->st, all, 5, c);
	assert_int_equal(c[0].spam + c[0].ham, 0);
	assert_int_equal(c[2].ham, 1);
	item(&it[0], d1, STORE_BAYES_FORGET, a, 4);
	assert_int_equal(store_bayes_learn(f->st, it, 1, 1004), STORE_OK);
	assert_int_equal(it[0].outcome, STORE_BAYES_UNKNOWN);

	/* input rules */
	item(&it[0], d1, STORE_BAYES_SPAM, bad, 2);
	assert_int_equal(store_bayes_learn(f->st, it, 1, 1005), STORE_INVALID);
	item(&it[0], "xyz", STORE_BAYES_SPAM, a, 4);
	assert_int_equal(store_bayes_learn(f->st, it, 1, 1005), STORE_INVALID);
	assert_int_equal(store_bayes_get(f->st, bad, 2, c), STORE_INVALID);
}

static void test_store_batch_and_expire(void **state)
{
	struct fixture *f = *state;
	enum { N = 1000 };
	uint64_t *t = calloc(N, sizeof(*t));
	struct store_bayes_count *c = calloc(N, sizeof(*c));
	struct store_bayes_item it[3];
	struct store_bayes_totals tot;
	int64_t removed = -1;
	char d[3][33];

	assert_non_null(t);
	assert_non_null(c);
	for (size_t i = 0; i < N; i++)
		t[i] = (uint64_t)(i + 1) * 7919;
	for (int k = 0; k < 3; k++)
		(void)str_fmt(d[k], sizeof(d[k]), "%032x", k + 1);
	/* three messages in one batch: tokens 0..99 in all three, the rest in
	 * the first only, learnt long ago */
	item(&it[0], d[0], STORE_BAYES_SPAM, t, N);
	item(&it[1], d[1], STORE_BAYES_SPAM, t, 100);
	item(&it[2], d[2], STORE_BAYES_HAM, t, 100);
	assert_int_equal(store_bayes_learn(f->st, it, 3, 1000), STORE_OK);
	/* one read over several chunks, with a short last one */
	counts(f->st, t, N, c);
	assert_int_equal(c[0].spam, 2);
	assert_int_equal(c[0].ham, 1);
	assert_int_equal(c[99].spam, 2);
	assert_int_equal(c[100].spam, 1);
	assert_int_equal(c[N - 1].spam, 1);
	assert_int_equal(c[N - 1].ham, 0);
	/* age: the 900 singletons are older than 30 days */
	assert_int_equal(store_bayes_totals(f->st, &tot), STORE_OK);
	{
		int64_t gen = tot.generation;
		assert_int_equal(
		    store_bayes_expire(f->st, 1000 + 31 * 86400, 30 * 86400, 0, &removed),
		    STORE_OK);
		assert_int_equal(removed, N - 100);
		assert_int_equal(store_bayes_totals(f->st, &tot), STORE_OK);
		assert_true(tot.generation > gen);
	}
	/* the cap: the rarest go first */
	assert_int_equal(store_bayes_expire(f->st, 1001, 30 * 86400, 40, &removed), STORE_OK);
	assert_int_equal(removed, 60);
	assert_int_equal(store_bayes_stats(f->st, &tot), STORE_OK);
	assert_int_equal(tot.ntokens, 40);
	free(t);
	free(c);
}

/* ---- the shared token table --------------------------------------------- */

struct dump_seen {
	struct store_bayes_dump d;
	int64_t rows;
	bool begun;
};

static int dump_count(const struct store_bayes_dump *d, const struct store_bayes_count *rows,
		      size_t n, void *arg)
{
	struct dump_seen *ds = arg;

	if (!rows) {
		assert_false(ds->begun);
		ds->begun = true;
		ds->d = *d;
	}
	ds->rows += (int64_t)n;
	return 0;
}

static struct dump_seen dump(struct store *st, int64_t since)
{
	struct dump_seen ds;

	memset(&ds, 0, sizeof(ds));
	assert_int_equal(store_bayes_dump(st, since, dump_count, &ds), STORE_OK);
	assert_true(ds.begun);
	assert_int_equal(ds.rows, ds.d.nrows);
	return ds;
}

/* The snapshot's counts of t[0..n) are the store's. */
static void same_as_store(struct store *st, const struct bayes_snap *s, const uint64_t *t, size_t n)
{
	struct store_bayes_count *want = calloc(n, sizeof(*want)), *got = calloc(n, sizeof(*got));
	struct store_bayes_totals a, b;

	assert_non_null(want);
	assert_non_null(got);
	counts(st, t, n, want);
	bayes_snap_get(s, t, n, got);
	for (size_t i = 0; i < n; i++) {
		assert_true(got[i].token == t[i]);
		if (got[i].spam != want[i].spam || got[i].ham != want[i].ham)
			fail_msg("token %zu: snapshot %u/%u, store %u/%u", i, got[i].spam,
				 got[i].ham, want[i].spam, want[i].ham);
	}
	assert_int_equal(store_bayes_totals(st, &a), STORE_OK);
	bayes_snap_totals(s, &b);
	assert_int_equal(a.generation, b.generation);
	assert_int_equal(a.nspam, b.nspam);
	assert_int_equal(a.nham, b.nham);
	free(want);
	free(got);
}

/* The dump a copy is built from: full, then deltas, full again after an
 * expiry. */
static void test_store_dump(void **state)
{
	struct fixture *f = *state;
	const uint64_t a[] = {1, 2, 3, 0xfedcba9876543210ULL};
	const uint64_t b[] = {3, 4, 5};
	struct store_bayes_item it;
	struct dump_seen ds;
	int64_t gen, removed;

	item(&it, "00112233445566778899aabbccddeeff", STORE_BAYES_SPAM, a, 4);
	assert_int_equal(store_bayes_learn(f->st, &it, 1, 1000), STORE_OK);
	ds = dump(f->st, -1);
	assert_true(ds.d.full);
	assert_int_equal(ds.d.nrows, 4);
	gen = ds.d.totals.generation;
	/* nothing since the current generation */
	ds = dump(f->st, gen);
	assert_false(ds.d.full);
	assert_int_equal(ds.d.nrows, 0);
	/* a learn: the tokens it changed, 3 of them */
	item(&it, "ffeeddccbbaa99887766554433221100", STORE_BAYES_HAM, b, 3);
	assert_int_equal(store_bayes_learn(f->st, &it, 1, 1001), STORE_OK);
	ds = dump(f->st, gen);
	assert_false(ds.d.full);
	assert_int_equal(ds.d.nrows, 3);
	assert_int_equal(ds.d.totals.generation, gen + 1);
	assert_int_equal(ds.d.totals.nham, 1);
	/* an unlearn deletes rows; still a delta (they read 0/0) */
	item(&it, "00112233445566778899aabbccddeeff", STORE_BAYES_FORGET, a, 4);
	assert_int_equal(store_bayes_learn(f->st, &it, 1, 1002), STORE_OK);
	ds = dump(f->st, gen + 1);
	assert_false(ds.d.full);
	assert_int_equal(ds.d.nrows, 4);
	/* a generation the store never reached, then an expiry: full */
	assert_true(dump(f->st, gen + 100).d.full);
	assert_int_equal(store_bayes_expire(f->st, 1000 + 31 * 86400, 30 * 86400, 0, &removed),
			 STORE_OK);
	assert_int_equal(removed, 3);
	ds = dump(f->st, gen + 2);
	assert_true(ds.d.full);
	assert_int_equal(ds.d.nrows, 0);
}

static void learn_tokens(struct store *st, int k, enum store_bayes_class cls, const uint64_t *t,
			 size_t n)
{
	struct store_bayes_item it;
	char d[40];

	(void)str_fmt(d, sizeof(d), "%032x", k + 1);
	item(&it, d, cls, t, n);
	assert_int_equal(store_bayes_learn(st, &it, 1, 1000 + k), STORE_OK);
}

/* A snapshot, then learning: the old snapshot does not change, the
 * refreshed one has the store's counts (delta, rows gone, full reload). */
static void test_table_snapshot(void **state)
{
	struct fixture *f = *state;
	enum { N = 5000 };
	uint64_t *t = calloc(N, sizeof(*t));
	struct store *st2 = NULL;
	struct bayes_table *tab;
	const struct bayes_snap *s1, *s2;
	struct store_bayes_count c;
	struct store_bayes_totals tot;
	char err[256];
	int64_t removed;

	assert_non_null(t);
	/* spread over the whole 64-bit range, both signs, in order */
	for (size_t i = 0; i < N; i++)
		t[i] = (uint64_t)(i + 1) * 3689348814741910ULL;
	learn_tokens(f->st, 0, STORE_BAYES_SPAM, t, N / 2);
	learn_tokens(f->st, 1, STORE_BAYES_HAM, t + 1000, 1000);
	assert_int_equal(store_open(f->url, 1000, &st2, err, sizeof(err)), 0);
	tab = bayes_table_new(st2, 64 << 20, 1000, false);
	assert_non_null(tab);
	/* not loaded: no snapshot until a refresh */
	assert_null(bayes_table_acquire(tab));
	assert_int_equal(bayes_table_refresh(tab), 0);
	s1 = bayes_table_acquire(tab);
	assert_non_null(s1);
	same_as_store(f->st, s1, t, N);
	bayes_snap_totals(s1, &tot);
	assert_int_equal(tot.ntokens, N / 2);

	/* learn after the snapshot: new tokens, changed ones */
	learn_tokens(f->st, 2, STORE_BAYES_SPAM, t + 2000, 2000);
	bayes_snap_get(s1, &t[2100], 1, &c);
	assert_int_equal(c.spam, 1);
	assert_int_equal(store_bayes_get(f->st, &t[2100], 1, &c), STORE_OK);
	assert_int_equal(c.spam, 2);
	assert_int_equal(bayes_table_refresh(tab), 0);
	s2 = bayes_table_acquire(tab);
	assert_non_null(s2);
	assert_ptr_not_equal(s1, s2);
	same_as_store(f->st, s2, t, N);
	bayes_snap_get(s2, &t[2100], 1, &c);
	assert_int_equal(c.spam, 2);
	bayes_snap_get(s2, &t[3500], 1, &c);
	assert_int_equal(c.spam, 1);
	/* the old snapshot is as it was, and still readable */
	bayes_snap_get(s1, &t[2100], 1, &c);
	assert_int_equal(c.spam, 1);
	bayes_snap_get(s1, &t[3500], 1, &c);
	assert_int_equal(c.spam + c.ham, 0);
	bayes_table_release(tab, s1);
	bayes_table_release(tab, s2);

	/* unlearn (rows deleted), relearn as the other class, then expiry
	 * (a full reload): each refresh matches the store */
	learn_tokens(f->st, 2, STORE_BAYES_FORGET, t + 2000, 2000);
	assert_int_equal(bayes_table_refresh(tab), 0);
	s1 = bayes_table_acquire(tab);
	same_as_store(f->st, s1, t, N);
	bayes_snap_get(s1, &t[3500], 1, &c);
	assert_int_equal(c.spam + c.ham, 0);
	bayes_table_release(tab, s1);
	learn_tokens(f->st, 1, STORE_BAYES_SPAM, t + 1000, 1000);
	assert_int_equal(bayes_table_refresh(tab), 0);
	s1 = bayes_table_acquire(tab);
	same_as_store(f->st, s1, t, N);
	bayes_table_release(tab, s1);
	assert_int_equal(store_bayes_expire(f->st, 2000, 30 * 86400, 1000, &removed), STORE_OK);
	assert_true(removed > 0);
	assert_int_equal(bayes_table_refresh(tab), 0);
	s1 = bayes_table_acquire(tab);
	same_as_store(f->st, s1, t, N);
	bayes_snap_totals(s1, &tot);
	assert_int_equal(tot.ntokens, 1000);
	bayes_table_release(tab, s1);
	/* no change: the same snapshot stays */
	s1 = bayes_table_acquire(tab);
	assert_int_equal(bayes_table_refresh(tab), 0);
	s2 = bayes_table_acquire(tab);
	assert_ptr_equal(s1, s2);
	bayes_table_release(tab, s1);
	bayes_table_release(tab, s2);
	bayes_table_free(tab);

	/* over the memory bound: no snapshot, the store is read instead */
	assert_int_equal(store_open(f->url, 1000, &st2, err, sizeof(err)), 0);
	tab = bayes_table_new(st2, 16 * 1024, 1000, false);
	assert_int_equal(bayes_table_refresh(tab), 0);
	assert_null(bayes_table_acquire(tab));
	bayes_table_free(tab);
	free(t);
}

/* In the background: loaded before the first reader gets it, a learn
 * seen after a kick. */
static void test_table_background(void **state)
{
	struct fixture *f = *state;
	const uint64_t a[] = {11, 22, 33}, b[] = {22, 44};
	struct store *st2 = NULL;
	struct bayes_table *tab;
	const struct bayes_snap *s;
	struct store_bayes_totals tot;
	struct store_bayes_count c;
	char err[256];
	int64_t gen;

	learn_tokens(f->st, 0, STORE_BAYES_SPAM, a, 3);
	assert_int_equal(store_open(f->url, 1000, &st2, err, sizeof(err)), 0);
	tab = bayes_table_new(st2, 64 << 20, 60000, true);
	assert_non_null(tab);
	s = bayes_table_acquire(tab); /* waits for the first load */
	assert_non_null(s);
	bayes_snap_totals(s, &tot);
	gen = tot.generation;
	bayes_table_release(tab, s);
	learn_tokens(f->st, 1, STORE_BAYES_SPAM, b, 2);
	/* the poll is a minute away: only the kick makes it refresh */
	bayes_table_kick(tab);
	for (int i = 0; i < 500; i++) {
		s = bayes_table_acquire(tab);
		bayes_snap_totals(s, &tot);
		if (tot.generation != gen)
			break;
		bayes_table_release(tab, s);
		s = NULL;
		usleep(10000);
	}
	assert_non_null(s);
	assert_int_equal(tot.generation, gen + 1);
	assert_int_equal(tot.nspam, 2);
	bayes_snap_get(s, &b[0], 1, &c);
	assert_int_equal(c.spam, 2);
	bayes_table_release(tab, s);
	bayes_table_free(tab);
}

/* ---- classification in-process ------------------------------------------ */

static void make_msg(char *buf, size_t len, const char *subject, const char *body, int n)
{
	(void)str_fmt(buf, len,
		      "From: sender%d@example.org\r\nTo: user@test.example\r\n"
		      "Subject: %s\r\nMessage-ID: <%d.%s@example.org>\r\n\r\n%s\r\n",
		      n, subject, n, subject[0] == 'C' ? "s" : "h", body);
}

static const char *const spam_bodies[] = {
    "Buy cheap pills online, no prescription needed, best price guaranteed",
    "Cheap watches and pills, limited offer, click here to order now",
    "Lose weight fast with our pills, order today and save big money",
};
static const char *const ham_bodies[] = {
    "The meeting about the release schedule moves to Thursday afternoon",
    "Please review the patch for the build system before the release",
    "Notes from the meeting: the schedule and the patch review are done",
};

static void learn_text(struct fixture *f, struct mime_engine *e, const char *subject,
		       const char *body, int n, bool spam, enum store_bayes_outcome want)
{
	char buf[1024];
	struct mime_msg *m;
	enum store_bayes_outcome oc;

	make_msg(buf, sizeof(buf), subject, body, n);
	m = parse(e, buf);
	assert_int_equal(bayes_learn(NULL, f->st, m, spam, &oc), 0);
	assert_int_equal(oc, want);
	mime_msg_free(m);
}

static void test_classify(void **state)
{
	struct fixture *f = *state;
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_ALL);
	struct bayes_params p = {.min_spam = 3,
				 .min_ham = 3,
				 .cache_tokens = 1000,
				 .cache_ttl = 3600,
				 .max_tokens = 1000000};
	struct bayes *b = bayes_new(f->st, &p);
	struct bayes_result r;
	struct mime_msg *m;
	char buf[1024];
	enum store_bayes_outcome oc;

	assert_non_null(e);
	assert_non_null(b);
	make_msg(buf, sizeof(buf), "Cheap pills order", "Cheap pills, order now, best price", 99);
	m = parse(e, buf);
	/* nothing learnt: no verdict */
	assert_int_equal(bayes_classify(b, m, &r), 0);
	assert_false(r.verdict);
	assert_null(r.symbol);
	for (int i = 0; i < 3; i++) {
		learn_text(f, e, "Cheap offer", spam_bodies[i], i, true, STORE_BAYES_LEARNT);
		learn_text(f, e, "Meeting notes", ham_bodies[i], 10 + i, false, STORE_BAYES_LEARNT);
	}
	learn_text(f, e, "Cheap offer", spam_bodies[0], 0, true, STORE_BAYES_ALREADY);
	/* the cache holds the totals for an hour: b does not see the learning */
	assert_int_equal(bayes_classify(b, m, &r), 0);
	assert_false(r.verdict);
	bayes_invalidate(b);
	assert_int_equal(bayes_classify(b, m, &r), 0);
	assert_true(r.verdict);
	assert_int_equal(r.nspam, 3);
	assert_int_equal(r.nham, 3);
	assert_true(r.prob > 0.9);
	assert_true(r.ntokens > 5);
	assert_true(!strcmp(r.symbol, "BAYES_95") || !strcmp(r.symbol, "BAYES_99"));
	/* the second time the counts come from the cache: same answer */
	{
		double p1 = r.prob;
		assert_int_equal(bayes_classify(b, m, &r), 0);
		assert_float_equal(r.prob, p1, 1e-12);
	}
	/* and from a shared table: the same answer again, bit for bit */
	{
		struct store *st2 = NULL;
		struct bayes_table *tab;
		struct bayes_result r2;
		char err[256];

		assert_int_equal(store_open(f->url, 1000, &st2, err, sizeof(err)), 0);
		assert_non_null(tab = bayes_table_new(st2, 64 << 20, 1000, false));
		assert_int_equal(bayes_table_refresh(tab), 0);
		bayes_use_table(b, tab);
		assert_int_equal(bayes_classify(b, m, &r2), 0);
		assert_true(r2.verdict);
		assert_true(r2.prob == r.prob);
		assert_int_equal(r2.nknown, r.nknown);
		assert_int_equal(r2.ntokens, r.ntokens);
		bayes_use_table(b, NULL);
		bayes_table_free(tab);
	}
	mime_msg_free(m);

	make_msg(buf, sizeof(buf), "Meeting notes", "The patch review meeting moves to Thursday",
		 98);
	m = parse(e, buf);
	assert_int_equal(bayes_classify(b, m, &r), 0);
	assert_true(r.verdict);
	assert_true(r.prob < 0.1);
	assert_string_equal(r.symbol, r.prob < 0.01 ? "BAYES_00" : "BAYES_05");
	/* learnt as spam, the same message now leans to spam */
	assert_int_equal(bayes_learn(b, f->st, m, true, &oc), 0);
	assert_int_equal(oc, STORE_BAYES_LEARNT);
	assert_int_equal(bayes_unlearn(b, f->st, m, &oc), 0);
	assert_int_equal(oc, STORE_BAYES_FORGOTTEN);
	assert_int_equal(bayes_classify(b, m, &r), 0);
	assert_true(r.prob < 0.1);
	mime_msg_free(m);
	bayes_free(b);
	mime_engine_free(e);
}

/* The pipeline check opens its own connection per thread, or nothing. */
static void test_check_init(void **state)
{
	struct fixture *f = *state;
	struct config cfg;
	void *st = NULL;
	char err[256] = "";

	config_defaults(&cfg);
	(void)str_copy(cfg.store.url, sizeof(cfg.store.url), f->url);
	assert_string_equal(bayes_check.name, "bayes");
	assert_int_equal(bayes_check.thread_init(&cfg, NULL, &st, err, sizeof(err)), 0);
	assert_non_null(st);
	bayes_check.thread_free(st);
	/* the pipeline's way: one table for the threads */
	{
		void *shared = NULL, *st1 = NULL, *st2 = NULL;

		assert_int_equal(bayes_check.shared_new(&cfg, NULL, &shared, err, sizeof(err)), 0);
		assert_non_null(shared);
		assert_int_equal(
		    bayes_check.thread_init_shared(&cfg, NULL, shared, &st1, err, sizeof(err)), 0);
		assert_int_equal(
		    bayes_check.thread_init_shared(&cfg, NULL, shared, &st2, err, sizeof(err)), 0);
		bayes_check.thread_free(st1);
		bayes_check.thread_free(st2);
		bayes_check.shared_free(shared);
		cfg.bayes.memory = 0; /* no table: each thread reads the store */
		assert_int_equal(bayes_check.shared_new(&cfg, NULL, &shared, err, sizeof(err)), 0);
		assert_null(shared);
		cfg.bayes.memory = 256 << 20;
	}
	cfg.bayes.enabled = false;
	st = (void *)1;
	assert_int_equal(bayes_check.thread_init(&cfg, NULL, &st, err, sizeof(err)), 0);
	assert_null(st);
	bayes_check.thread_free(st);
	cfg.bayes.enabled = true;
	(void)str_copy(cfg.store.url, sizeof(cfg.store.url), "sqlite:/nonexistent-dir/x/y.db");
	assert_true(bayes_check.thread_init(&cfg, NULL, &st, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "bayes"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_siphash_vectors),
	    cmocka_unit_test(test_words),
	    cmocka_unit_test(test_long_word),
	    cmocka_unit_test(test_osb_pairs),
	    cmocka_unit_test(test_message_features),
	    cmocka_unit_test(test_math),
	    cmocka_unit_test(test_autolearn),
	    cmocka_unit_test_setup_teardown(test_store_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_batch_and_expire, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_dump, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table_snapshot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table_background, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_classify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_init, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
