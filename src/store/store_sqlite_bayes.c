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
 *
 * Dumps (copies in memory): every learn that moves the generation also
 * writes one bayes_changes row, keyed by that generation, whose blob is
 * the tokens it changed (8 bytes each, little-endian). So "what changed
 * after generation g" is a short range of that table plus a look-up of
 * the current counts of those tokens (a token no longer there reads 0/0).
 * That costs the writer one row per batch, where a per-token "changed
 * at" column with an index cost every token write an index update (35%
 * slower learning, measured). The log keeps the last BQ_LOG_KEEP
 * generations (a message's blob is ~10 KB, so a few MB): a copy further
 * behind than that would need a delta of ~600k tokens, which costs as
 * much as a full dump, so it gets the full dump. An expiry, or a batch
 * that changed more than BQ_LOG_MAX tokens, sets
 * bayes_totals.reset_generation instead, after which only a full dump is
 * right. A dump is one deferred read transaction: in WAL mode it sees one
 * snapshot and never blocks a writer.
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
			       " generation INTEGER NOT NULL DEFAULT 0,"
			       " reset_generation INTEGER NOT NULL DEFAULT 0);"
			       "INSERT INTO bayes_totals (id) VALUES (1);"
			       "CREATE TABLE bayes_seen ("
			       " msgid TEXT PRIMARY KEY," /* digest of the learnt message */
			       " spam INTEGER NOT NULL,"
			       " learnt_at INTEGER NOT NULL);"
			       "CREATE TABLE bayes_changes ("
			       " generation INTEGER PRIMARY KEY," /* made by this change */
			       " tokens BLOB NOT NULL);";	  /* the tokens it changed */

#define BQ_CHUNK 256
#define BQ_DUMP_BATCH 1024	  /* rows handed to a dump callback at once */
#define BQ_LOG_KEEP 512		  /* generations whose changes are kept (see below) */
#define BQ_LOG_MAX (256 * 1024)	  /* changed tokens logged per batch; more: reset */
#define BQ_DELTA_MAX (256 * 1024) /* tokens of a delta; more: a full dump is cheaper */

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
	B_READ_BEGIN,
	B_DUMP_ALL,
	B_LOG_INSERT,
	B_LOG_PRUNE,
	B_LOG_SINCE,
};

static const char *const b_sql[] = {
    [B_TOTALS] = "SELECT nspam, nham, generation, reset_generation FROM bayes_totals"
		 " WHERE id = 1",
    [B_NTOKENS] = "SELECT COUNT(*) FROM bayes_tokens",
    [B_NSEEN] = "SELECT COUNT(*) FROM bayes_seen",
    [B_GET] = NULL, /* built by get_sql() */
    [B_SEEN_GET] = "SELECT spam FROM bayes_seen WHERE msgid = ?1",
    [B_SEEN_INSERT] = "INSERT INTO bayes_seen (msgid, spam, learnt_at) VALUES (?1, ?2, ?3)",
    [B_SEEN_UPDATE] = "UPDATE bayes_seen SET spam = ?2, learnt_at = ?3 WHERE msgid = ?1",
    [B_SEEN_DELETE] = "DELETE FROM bayes_seen WHERE msgid = ?1",
    [B_TOTALS_ADD] = "UPDATE bayes_totals SET nspam = MAX(nspam + ?1, 0),"
		     " nham = MAX(nham + ?2, 0), generation = generation + 1,"
		     " reset_generation = CASE WHEN ?3 THEN generation + 1"
		     " ELSE reset_generation END WHERE id = 1",
    [B_UPSERT] = "INSERT INTO bayes_tokens (token, spam, ham, atime)"
		 " VALUES (?1, MAX(?2, 0), MAX(?3, 0), ?4)"
		 " ON CONFLICT (token) DO UPDATE SET spam = MAX(spam + ?2, 0),"
		 " ham = MAX(ham + ?3, 0), atime = MAX(atime, ?4)",
    [B_DELETE_ZERO] = "DELETE FROM bayes_tokens WHERE token = ?1 AND spam = 0 AND ham = 0",
    [B_EXPIRE_AGE] = "DELETE FROM bayes_tokens WHERE spam + ham <= 1 AND atime < ?1",
    [B_EXPIRE_RARE] = "DELETE FROM bayes_tokens WHERE token IN (SELECT token FROM bayes_tokens"
		      " ORDER BY spam + ham, atime LIMIT ?1)",
    [B_READ_BEGIN] = "BEGIN",
    [B_DUMP_ALL] = "SELECT token, spam, ham FROM bayes_tokens",
    [B_LOG_INSERT] = "INSERT INTO bayes_changes (generation, tokens) VALUES (?1, ?2)",
    [B_LOG_PRUNE] = "DELETE FROM bayes_changes WHERE generation <= ?1",
    [B_LOG_SINCE] = "SELECT tokens FROM bayes_changes WHERE generation > ?1",
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
		out->reset_generation = sqlite3_column_int64(stmt, 3);
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

/* Writes the summed changes (and leaves m->v sorted, used first). */
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

/* Moves the generation on; reset: this change is not in the log (dumps
 * since an older generation must be full). */
static int totals_add(struct sq *s, int64_t dspam, int64_t dham, bool reset)
{
	sqlite3_stmt *stmt = b_stmt(s, B_TOTALS_ADD);

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, dspam);
	sqlite3_bind_int64(stmt, 2, dham);
	sqlite3_bind_int(stmt, 3, reset);
	return sq_exec(s, stmt, "bayes totals write");
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* The log row of generation gen: the tokens of m (flushed: sorted, used
 * first) whose counts changed; *reset instead when there are too many.
 * Then the rows past BQ_LOG_KEEP go. */
static int log_write(struct sq *s, const struct delta_map *m, int64_t gen, bool *reset)
{
	sqlite3_stmt *stmt;
	uint8_t *blob = NULL;
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < m->cap && m->v[i].used; i++)
		n += m->v[i].spam || m->v[i].ham;
	if (n > BQ_LOG_MAX) {
		*reset = true;
	} else {
		if (!(blob = malloc(n ? n * 8 : 1))) {
			store_set_error(&s->base, "bayes learn: out of memory");
			return STORE_TEMPFAIL;
		}
		n = 0;
		for (size_t i = 0; i < m->cap && m->v[i].used; i++)
			if (m->v[i].spam || m->v[i].ham)
				put_le64(blob + 8 * n++, m->v[i].token);
		if (!(stmt = b_stmt(s, B_LOG_INSERT))) {
			free(blob);
			return STORE_TEMPFAIL;
		}
		sqlite3_bind_int64(stmt, 1, gen);
		sqlite3_bind_blob(stmt, 2, blob, (int)(n * 8), SQLITE_TRANSIENT);
		rc = sq_exec(s, stmt, "bayes change log");
		free(blob);
		if (rc)
			return rc;
	}
	if (!(stmt = b_stmt(s, B_LOG_PRUNE)))
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, gen - BQ_LOG_KEEP);
	return sq_exec(s, stmt, "bayes change log prune");
}

static int by_learn(struct store *st, struct store_bayes_item *items, size_t n, int64_t now)
{
	struct sq *s = to_sq(st);
	struct delta_map m = {NULL, 0};
	size_t total = 0, cap = 64;
	struct store_bayes_totals tot = {0};
	int64_t dspam = 0, dham = 0;
	bool changed = false, reset = false;
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
	/* logged as the generation this batch makes */
	if (changed && (rc = by_totals(st, &tot, false)) == STORE_OK &&
	    (rc = delta_flush(s, &m, now)) == STORE_OK &&
	    (rc = log_write(s, &m, tot.generation + 1, &reset)) == STORE_OK)
		rc = totals_add(s, dspam, dham, reset);
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
		rc = totals_add(s, 0, 0, true);
out:
	if (rc)
		*removed = 0;
	return sq_tx_end(s, rc);
}

/* ---- dumps ---------------------------------------------------------------- */

/* Steps stmt (its parameters bound) and hands its rows to cb by batches,
 * until the end or until cb asks to stop. */
static int dump_rows(struct sq *s, sqlite3_stmt *stmt, const struct store_bayes_dump *d,
		     store_bayes_dump_cb cb, void *arg)
{
	struct store_bayes_count batch[BQ_DUMP_BATCH];
	size_t n = 0;
	int rc;

	while ((rc = sq_step(s, stmt, "bayes dump")) == 1) {
		int64_t sp = sqlite3_column_int64(stmt, 1), hm = sqlite3_column_int64(stmt, 2);

		batch[n].token = (uint64_t)sqlite3_column_int64(stmt, 0);
		batch[n].spam = sp < 0 ? 0 : sp > UINT32_MAX ? UINT32_MAX : (uint32_t)sp;
		batch[n].ham = hm < 0 ? 0 : hm > UINT32_MAX ? UINT32_MAX : (uint32_t)hm;
		if (++n < BQ_DUMP_BATCH)
			continue;
		n = 0;
		if (cb(d, batch, BQ_DUMP_BATCH, arg)) {
			sqlite3_reset(stmt);
			return STORE_OK;
		}
	}
	if (rc < 0)
		return rc;
	if (n)
		(void)cb(d, batch, n, arg);
	return STORE_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The tokens changed after generation since, sorted and unique, into
 * *out (caller frees); *too_many (and nothing) past BQ_DELTA_MAX. */
static int log_since(struct sq *s, int64_t since, uint64_t **out, size_t *n, bool *too_many)
{
	sqlite3_stmt *stmt = b_stmt(s, B_LOG_SINCE);
	uint64_t *v = NULL, *nv;
	size_t len = 0, cap = 0, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, since);
	while ((rc = sq_step(s, stmt, "bayes change log")) == 1) {
		const uint8_t *b = sqlite3_column_blob(stmt, 0);
		size_t m = (size_t)sqlite3_column_bytes(stmt, 0) / 8;

		if (len + m > BQ_DELTA_MAX) {
			sqlite3_reset(stmt);
			*too_many = true;
			free(v);
			return STORE_OK;
		}
		if (len + m > cap) {
			cap = (len + m) * 2;
			if (!(nv = realloc(v, cap * sizeof(*v)))) {
				sqlite3_reset(stmt);
				free(v);
				store_set_error(&s->base, "bayes dump: out of memory");
				return STORE_TEMPFAIL;
			}
			v = nv;
		}
		for (size_t i = 0; i < m; i++)
			v[len++] = get_le64(b + 8 * i);
	}
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (len)
		qsort(v, len, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < len; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	*out = v;
	*n = k;
	return STORE_OK;
}

/* The current counts of tokens[0..n) (sorted, unique) to cb by batches;
 * a token no longer stored comes as 0/0. */
static int dump_tokens(struct store *st, const uint64_t *tokens, size_t n,
		       const struct store_bayes_dump *d, store_bayes_dump_cb cb, void *arg)
{
	struct store_bayes_count batch[BQ_DUMP_BATCH];
	int rc;

	for (size_t base = 0; base < n; base += BQ_DUMP_BATCH) {
		size_t m = n - base < BQ_DUMP_BATCH ? n - base : BQ_DUMP_BATCH;

		if ((rc = by_get(st, tokens + base, m, batch)))
			return rc;
		if (cb(d, batch, m, arg))
			break;
	}
	return STORE_OK;
}

static int by_dump(struct store *st, int64_t since, store_bayes_dump_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	struct store_bayes_dump d;
	sqlite3_stmt *stmt;
	uint64_t *changed = NULL;
	size_t nchanged = 0;
	int rc;

	memset(&d, 0, sizeof(d));
	if (!(stmt = b_stmt(s, B_READ_BEGIN)))
		return STORE_TEMPFAIL;
	if ((rc = sq_exec(s, stmt, "bayes dump begin")))
		return rc;
	if ((rc = by_totals(st, &d.totals, false)))
		goto out;
	/* a delta needs the log of every generation after since */
	d.full = since < 0 || since < d.totals.reset_generation || since > d.totals.generation ||
		 since < d.totals.generation - BQ_LOG_KEEP;
	if (!d.full && since < d.totals.generation &&
	    (rc = log_since(s, since, &changed, &nchanged, &d.full)))
		goto out;
	if (d.full)
		rc = one_int(s, B_NTOKENS, &d.nrows, "bayes dump count");
	else
		d.nrows = (int64_t)nchanged;
	if (rc || cb(&d, NULL, 0, arg) || d.nrows == 0)
		goto out;
	if (!d.full) {
		rc = dump_tokens(st, changed, nchanged, &d, cb, arg);
		goto out;
	}
	if (!(stmt = b_stmt(s, B_DUMP_ALL))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	rc = dump_rows(s, stmt, &d, cb, arg);
out:
	free(changed);
	/* a read: COMMIT only ends it (nothing to keep or undo) */
	if (rc) {
		sq_tx_rollback(s);
		return rc;
	}
	return sq_tx_commit(s);
}

const struct store_bayes_ops sq_bayes_ops = {
    .totals = by_totals,
    .get = by_get,
    .learn = by_learn,
    .expire = by_expire,
    .dump = by_dump,
};
