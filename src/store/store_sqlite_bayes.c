/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_bayes: the SQLite side of store_bayes.h (schema and operations).
 *
 * Tokens are the rowid (INTEGER PRIMARY KEY: the 64-bit hash stored as a
 * signed integer), so a look-up is one B-tree descent and no index is
 * needed. Reads go by chunks of BQ_CHUNK tokens in one "IN (...)"
 * statement; a short last chunk repeats its last token so one prepared
 * statement serves every chunk. A learn batch first sums the changes of
 * all its messages per token in memory, then writes each token once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "store/store_sqlite_private.h"

/* Applied once as its numbered migration (store_sqlite.c). Until it has
 * shipped it may still change; after that only a new migration may. */
const char sq_schema_bayes[] = "CREATE TABLE bayes_tokens ("
			       " token INTEGER PRIMARY KEY," /* 64-bit hash of the token */
			       " spam INTEGER NOT NULL DEFAULT 0,"
			       " ham INTEGER NOT NULL DEFAULT 0,"
			       " atime INTEGER NOT NULL);" /* last learnt */
			       "CREATE TABLE bayes_totals ("
			       " id INTEGER PRIMARY KEY CHECK (id = 1),"
			       " nspam INTEGER NOT NULL DEFAULT 0,"
			       " nham INTEGER NOT NULL DEFAULT 0,"
			       " generation INTEGER NOT NULL DEFAULT 0);"
			       "INSERT INTO bayes_totals (id) VALUES (1);"
			       "CREATE TABLE bayes_seen ("
			       " msgid TEXT PRIMARY KEY," /* digest of the learnt message */
			       " spam INTEGER NOT NULL,"
			       " learnt_at INTEGER NOT NULL);";

#define BQ_CHUNK 256

enum {
	B_TOTALS,
	B_NTOKENS,
	B_NSEEN,
	B_GET,
	B_SEEN_GET,
	B_SEEN_INSERT,
	B_SEEN_UPDATE,
	B_SEEN_DELETE,
	B_TOTALS_ADD,
	B_UPSERT,
	B_DELETE_ZERO,
	B_EXPIRE_AGE,
	B_EXPIRE_RARE,
};

static const char *const b_sql[] = {
    [B_TOTALS] = "SELECT nspam, nham, generation FROM bayes_totals WHERE id = 1",
    [B_NTOKENS] = "SELECT COUNT(*) FROM bayes_tokens",
    [B_NSEEN] = "SELECT COUNT(*) FROM bayes_seen",
    [B_GET] = NULL, /* built by get_sql() */
    [B_SEEN_GET] = "SELECT spam FROM bayes_seen WHERE msgid = ?1",
    [B_SEEN_INSERT] = "INSERT INTO bayes_seen (msgid, spam, learnt_at) VALUES (?1, ?2, ?3)",
    [B_SEEN_UPDATE] = "UPDATE bayes_seen SET spam = ?2, learnt_at = ?3 WHERE msgid = ?1",
    [B_SEEN_DELETE] = "DELETE FROM bayes_seen WHERE msgid = ?1",
    [B_TOTALS_ADD] = "UPDATE bayes_totals SET nspam = MAX(nspam + ?1, 0),"
		     " nham = MAX(nham + ?2, 0), generation = generation + 1 WHERE id = 1",
    [B_UPSERT] = "INSERT INTO bayes_tokens (token, spam, ham, atime)"
		 " VALUES (?1, MAX(?2, 0), MAX(?3, 0), ?4)"
		 " ON CONFLICT (token) DO UPDATE SET spam = MAX(spam + ?2, 0),"
		 " ham = MAX(ham + ?3, 0), atime = MAX(atime, ?4)",
    [B_DELETE_ZERO] = "DELETE FROM bayes_tokens WHERE token = ?1 AND spam = 0 AND ham = 0",
    [B_EXPIRE_AGE] = "DELETE FROM bayes_tokens WHERE spam + ham <= 1 AND atime < ?1",
    [B_EXPIRE_RARE] = "DELETE FROM bayes_tokens WHERE token IN (SELECT token FROM bayes_tokens"
		      " ORDER BY spam + ham, atime LIMIT ?1)",
};

static sqlite3_stmt *b_stmt(struct sq *s, int id)
{
	return sq_xstmt(s, SQF_BAYES, id, b_sql[id]);
}

/* "SELECT ... WHERE token IN (?1, ..., ?BQ_CHUNK)" into buf. */
static int get_sql(char *buf, size_t len)
{
	size_t off;
	int n;

	n = str_fmt(buf, len, "SELECT token, spam, ham FROM bayes_tokens WHERE token IN (");
	if (n < 0)
		return -ENOSPC;
	off = strlen(buf);
	for (int i = 1; i <= BQ_CHUNK; i++) {
		if (str_fmt(buf + off, len - off, "%s?%d", i > 1 ? "," : "", i) < 0)
			return -ENOSPC;
		off += strlen(buf + off);
	}
	return str_fmt(buf + off, len - off, ")") < 0 ? -ENOSPC : 0;
}

static int one_int(struct sq *s, int id, int64_t *out, const char *what)
{
	sqlite3_stmt *stmt = b_stmt(s, id);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	if ((rc = sq_step(s, stmt, what)) < 0)
		return rc;
	*out = rc ? sqlite3_column_int64(stmt, 0) : 0;
	sqlite3_reset(stmt);
	return STORE_OK;
}

static int by_totals(struct store *st, struct store_bayes_totals *out, bool full)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = b_stmt(s, B_TOTALS);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	if ((rc = sq_step(s, stmt, "bayes totals")) < 0)
		return rc;
	if (rc) {
		out->nspam = sqlite3_column_int64(stmt, 0);
		out->nham = sqlite3_column_int64(stmt, 1);
		out->generation = sqlite3_column_int64(stmt, 2);
		sqlite3_reset(stmt);
	}
	if (!full)
		return STORE_OK;
	if ((rc = one_int(s, B_NTOKENS, &out->ntokens, "bayes token count")))
		return rc;
	return one_int(s, B_NSEEN, &out->nseen, "bayes seen count");
}

/* Index of token in the sorted t[0..n), or -1. */
static ssize_t find_token(const uint64_t *t, size_t n, uint64_t token)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid] == token)
			return (ssize_t)mid;
		if (t[mid] < token)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int by_get(struct store *st, const uint64_t *tokens, size_t n, struct store_bayes_count *out)
{
	struct sq *s = to_sq(st);
	char sql[BQ_CHUNK * 6 + 128];
	sqlite3_stmt *stmt;
	int rc;

	if (get_sql(sql, sizeof(sql)) < 0)
		return store_invalid(st, "statement too long");
	for (size_t i = 0; i < n; i++) {
		out[i].token = tokens[i];
		out[i].spam = out[i].ham = 0;
	}
	for (size_t base = 0; base < n; base += BQ_CHUNK) {
		size_t m = n - base < BQ_CHUNK ? n - base : BQ_CHUNK;

		if (!(stmt = sq_xstmt(s, SQF_BAYES, B_GET, sql)))
			return STORE_TEMPFAIL;
		for (size_t j = 0; j < BQ_CHUNK; j++)
			sqlite3_bind_int64(stmt, (int)j + 1,
					   (sqlite3_int64)tokens[base + (j < m ? j : m - 1)]);
		while ((rc = sq_step(s, stmt, "bayes get")) == 1) {
			uint64_t tok = (uint64_t)sqlite3_column_int64(stmt, 0);
			ssize_t k = find_token(tokens + base, m, tok);
			int64_t sp = sqlite3_column_int64(stmt, 1),
				hm = sqlite3_column_int64(stmt, 2);

			if (k < 0)
				continue;
			out[base + (size_t)k].spam = sp > UINT32_MAX ? UINT32_MAX : (uint32_t)sp;
			out[base + (size_t)k].ham = hm > UINT32_MAX ? UINT32_MAX : (uint32_t)hm;
		}
		if (rc < 0)
			return rc;
	}
	return STORE_OK;
}

/* ---- learn: per-token sums of one batch --------------------------------- */

struct delta {
	uint64_t token;
	int32_t spam, ham;
	bool used;
};

struct delta_map {
	struct delta *v;
	size_t cap; /* power of two */
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct delta *delta_slot(struct delta_map *m, uint64_t token)
{
	size_t i = (size_t)mix64(token) & (m->cap - 1);

	while (m->v[i].used && m->v[i].token != token)
		i = (i + 1) & (m->cap - 1);
	if (!m->v[i].used) {
		m->v[i].used = true;
		m->v[i].token = token;
	}
	return &m->v[i];
}

static void delta_add(struct delta_map *m, const uint64_t *t, size_t n, int cls, int32_t by)
{
	for (size_t i = 0; i < n; i++) {
		struct delta *d = delta_slot(m, t[i]);
		if (cls == STORE_BAYES_SPAM)
			d->spam += by;
		else
			d->ham += by;
	}
}

/* The seen class of digest: 1 spam, 0 ham, -1 not seen; or a store code
 * (< -1 never collides: store codes are -1..-4, so it is returned apart). */
static int seen_get(struct sq *s, const char *digest, int *cls)
{
	sqlite3_stmt *stmt = b_stmt(s, B_SEEN_GET);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, digest);
	if ((rc = sq_step(s, stmt, "bayes seen")) < 0)
		return rc;
	*cls = rc ? (sqlite3_column_int(stmt, 0) ? STORE_BAYES_SPAM : STORE_BAYES_HAM) : -1;
	if (rc)
		sqlite3_reset(stmt);
	return STORE_OK;
}

static int seen_write(struct sq *s, int id, const char *digest, int cls, int64_t now)
{
	sqlite3_stmt *stmt = b_stmt(s, id);

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, digest);
	if (id != B_SEEN_DELETE) {
		sqlite3_bind_int(stmt, 2, cls == STORE_BAYES_SPAM);
		sqlite3_bind_int64(stmt, 3, now);
	}
	return sq_exec(s, stmt, "bayes seen write");
}

/* One item: decides its outcome, records it in seen, adds its token
 * changes to the map and its message counts to *dspam / *dham. */
static int learn_item(struct sq *s, struct store_bayes_item *it, struct delta_map *m, int64_t now,
		      int64_t *dspam, int64_t *dham)
{
	int prev, rc;

	if ((rc = seen_get(s, it->digest, &prev)))
		return rc;
	if (it->cls == STORE_BAYES_FORGET) {
		if (prev < 0) {
			it->outcome = STORE_BAYES_UNKNOWN;
			return STORE_OK;
		}
		it->outcome = STORE_BAYES_FORGOTTEN;
		rc = seen_write(s, B_SEEN_DELETE, it->digest, prev, now);
	} else if (prev == (int)it->cls) {
		it->outcome = STORE_BAYES_ALREADY;
		return STORE_OK;
	} else if (prev >= 0) {
		it->outcome = STORE_BAYES_RELEARNT;
		rc = seen_write(s, B_SEEN_UPDATE, it->digest, (int)it->cls, now);
	} else {
		it->outcome = STORE_BAYES_LEARNT;
		rc = seen_write(s, B_SEEN_INSERT, it->digest, (int)it->cls, now);
	}
	if (rc)
		return rc;
	if (prev >= 0) {
		delta_add(m, it->tokens, it->ntokens, prev, -1);
		*(prev == STORE_BAYES_SPAM ? dspam : dham) -= 1;
	}
	if (it->cls != STORE_BAYES_FORGET) {
		delta_add(m, it->tokens, it->ntokens, (int)it->cls, 1);
		*(it->cls == STORE_BAYES_SPAM ? dspam : dham) += 1;
	}
	return STORE_OK;
}

/* By token as SQLite orders the rowid (signed), so the writes walk the
 * table's B-tree in order instead of jumping around it. */
static int cmp_delta(const void *a, const void *b)
{
	const struct delta *x = a, *y = b;
	int64_t tx = (int64_t)x->token, ty = (int64_t)y->token;

	if (x->used != y->used)
		return x->used ? -1 : 1;
	return tx < ty ? -1 : tx > ty;
}

static int delta_flush(struct sq *s, struct delta_map *m, int64_t now)
{
	sqlite3_stmt *stmt;
	int rc;

	qsort(m->v, m->cap, sizeof(*m->v), cmp_delta);
	for (size_t i = 0; i < m->cap && m->v[i].used; i++) {
		const struct delta *d = &m->v[i];

		if (d->spam == 0 && d->ham == 0)
			continue;
		if (!(stmt = b_stmt(s, B_UPSERT)))
			return STORE_TEMPFAIL;
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)d->token);
		sqlite3_bind_int(stmt, 2, d->spam);
		sqlite3_bind_int(stmt, 3, d->ham);
		sqlite3_bind_int64(stmt, 4, d->spam > 0 || d->ham > 0 ? now : 0);
		if ((rc = sq_exec(s, stmt, "bayes token write")))
			return rc;
		if (d->spam >= 0 && d->ham >= 0)
			continue;
		if (!(stmt = b_stmt(s, B_DELETE_ZERO)))
			return STORE_TEMPFAIL;
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)d->token);
		if ((rc = sq_exec(s, stmt, "bayes token delete")))
			return rc;
	}
	return STORE_OK;
}

static int totals_add(struct sq *s, int64_t dspam, int64_t dham)
{
	sqlite3_stmt *stmt = b_stmt(s, B_TOTALS_ADD);

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, dspam);
	sqlite3_bind_int64(stmt, 2, dham);
	return sq_exec(s, stmt, "bayes totals write");
}

static int by_learn(struct store *st, struct store_bayes_item *items, size_t n, int64_t now)
{
	struct sq *s = to_sq(st);
	struct delta_map m = {NULL, 0};
	size_t total = 0, cap = 64;
	int64_t dspam = 0, dham = 0;
	bool changed = false;
	int rc;

	for (size_t i = 0; i < n; i++)
		total += items[i].ntokens;
	while (cap < total * 2)
		cap <<= 1;
	if (!(m.v = calloc(cap, sizeof(*m.v)))) {
		store_set_error(st, "bayes learn: out of memory");
		return STORE_TEMPFAIL;
	}
	m.cap = cap;
	if ((rc = sq_tx_begin(s)))
		goto out_free;
	for (size_t i = 0; i < n; i++) {
		if ((rc = learn_item(s, &items[i], &m, now, &dspam, &dham)))
			goto out;
		if (items[i].outcome != STORE_BAYES_ALREADY &&
		    items[i].outcome != STORE_BAYES_UNKNOWN)
			changed = true;
	}
	if (changed && (rc = delta_flush(s, &m, now)) == STORE_OK)
		rc = totals_add(s, dspam, dham);
out:
	rc = sq_tx_end(s, rc);
out_free:
	free(m.v);
	return rc;
}

static int by_expire(struct store *st, int64_t now, int64_t max_age, int64_t max_tokens,
		     int64_t *removed)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t count = 0;
	int rc;

	*removed = 0;
	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = b_stmt(s, B_EXPIRE_AGE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, now - max_age);
	if ((rc = sq_exec(s, stmt, "bayes expire")))
		goto out;
	*removed += sqlite3_changes(s->db);
	if (max_tokens > 0) {
		if ((rc = one_int(s, B_NTOKENS, &count, "bayes token count")))
			goto out;
		if (count > max_tokens) {
			if (!(stmt = b_stmt(s, B_EXPIRE_RARE))) {
				rc = STORE_TEMPFAIL;
				goto out;
			}
			sqlite3_bind_int64(stmt, 1, count - max_tokens);
			if ((rc = sq_exec(s, stmt, "bayes expire")))
				goto out;
			*removed += sqlite3_changes(s->db);
		}
	}
	if (*removed > 0)
		rc = totals_add(s, 0, 0);
out:
	if (rc)
		*removed = 0;
	return sq_tx_end(s, rc);
}

const struct store_bayes_ops sq_bayes_ops = {
    .totals = by_totals,
    .get = by_get,
    .learn = by_learn,
    .expire = by_expire,
};
