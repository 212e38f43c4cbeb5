/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_quarantine: the SQLite side of store_quarantine.h.
 *
 * quarantine_copies holds each held message once (with its verdict);
 * quarantine has one row per (message, recipient). Entries name their
 * recipient's domain as text, and a trigger removes them with the domain,
 * so a domain name or id taken over later never shows an old tenant's mail.
 * Copies no entry uses are removed by expiry and by delete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_private.h"

#define COPY_FORMAT_VERSION 1

const char sq_schema_quarantine[] =
    "CREATE TABLE quarantine_copies ("
    " id INTEGER PRIMARY KEY,"
    " size INTEGER NOT NULL,"
    " body BLOB NOT NULL,"
    " verdict TEXT NOT NULL,"
    " format_version INTEGER NOT NULL);"
    "CREATE TABLE quarantine ("
    " id INTEGER PRIMARY KEY,"
    " copy_id INTEGER NOT NULL REFERENCES quarantine_copies(id),"
    " queue_id TEXT NOT NULL,"
    " rcpt TEXT NOT NULL,"
    " domain TEXT NOT NULL,"
    " mailbox_id INTEGER,"
    " sender TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " client_addr TEXT NOT NULL,"
    " helo TEXT NOT NULL,"
    " flags INTEGER NOT NULL,"
    " score REAL NOT NULL,"
    " reason TEXT NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('held', 'released')),"
    " released_to TEXT NOT NULL DEFAULT '',"
    " released_at INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (queue_id, rcpt));"
    "CREATE INDEX quarantine_copy ON quarantine(copy_id);"
    "CREATE INDEX quarantine_expiry ON quarantine(expires_at);"
    "CREATE INDEX quarantine_domain ON quarantine(domain, received_at);"
    "CREATE INDEX quarantine_rcpt ON quarantine(rcpt, received_at);"
    "CREATE TRIGGER quarantine_domain_gone AFTER DELETE ON domains BEGIN"
    " DELETE FROM quarantine WHERE domain = OLD.name;"
    " DELETE FROM quarantine_copies WHERE id NOT IN (SELECT copy_id FROM quarantine); END;";

enum {
	QU_COPY_INSERT,
	QU_INSERT,
	QU_LIST,
	QU_GET,
	QU_COPY_LOAD,
	QU_MARK_RELEASED,
	QU_DELETE,
	QU_COPY_GC,
	QU_EXPIRED,
	QU_COUNT_HELD,
};

#define QU_COLS                                                                                    \
	"SELECT q.id, q.queue_id, q.rcpt, q.sender, q.subject, q.client_addr, q.reason,"           \
	" q.state, q.released_to, q.score, q.received_at, q.expires_at, c.size, q.copy_id,"        \
	" q.helo, q.flags, q.mailbox_id FROM quarantine q"                                         \
	" JOIN quarantine_copies c ON c.id = q.copy_id "

static const char *const qu_sql[] = {
    [QU_COPY_INSERT] = "INSERT INTO quarantine_copies (size, body, verdict, format_version)"
		       " VALUES (?1, ?2, ?3, ?4)",
    /* only while the domain exists: a domain removed while its message was
     * in the session must not leave entries a later owner of the name
     * would see (the trigger above only removes rows that exist) */
    [QU_INSERT] = "INSERT INTO quarantine (copy_id, queue_id, rcpt, domain, mailbox_id, sender,"
		  " subject, client_addr, helo, flags, score, reason, received_at, expires_at,"
		  " state) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
		  " 'held' WHERE EXISTS (SELECT 1 FROM domains WHERE name = ?4)",
    [QU_LIST] = QU_COLS "WHERE (?1 IS NULL OR q.domain IN (SELECT d.name FROM domains d"
			" JOIN accounts a ON a.id = d.account_id WHERE a.name = ?1))"
			" AND (?2 IS NULL OR q.domain = ?2) AND (?3 IS NULL OR q.rcpt = ?3)"
			" AND (?4 IS NULL OR q.queue_id = ?4)"
			" AND (?5 IS NULL OR q.sender LIKE ?5 ESCAPE '\\'"
			" OR q.subject LIKE ?5 ESCAPE '\\')"
			" AND (?6 = 0 OR q.state = 'held')"
			" ORDER BY q.received_at DESC, q.id DESC LIMIT ?7",
    [QU_GET] = QU_COLS "WHERE q.id = ?1",
    [QU_COPY_LOAD] = "SELECT body, verdict FROM quarantine_copies WHERE id = ?1",
    [QU_MARK_RELEASED] = "UPDATE quarantine SET state = 'released', released_to = ?2,"
			 " released_at = ?3 WHERE id = ?1 AND state = 'held'",
    [QU_DELETE] = "DELETE FROM quarantine WHERE id = ?1",
    [QU_COPY_GC] = "DELETE FROM quarantine_copies WHERE id = ?1 AND NOT EXISTS"
		   " (SELECT 1 FROM quarantine WHERE copy_id = ?1)",
    [QU_EXPIRED] = "SELECT id, queue_id, sender, rcpt, copy_id FROM quarantine"
		   " WHERE expires_at <= ?1 ORDER BY expires_at LIMIT 500",
    [QU_COUNT_HELD] = "SELECT COUNT(*) FROM quarantine WHERE state = 'held'",
};

static sqlite3_stmt *qu_stmt(struct sq *s, int id)
{
	return sq_xstmt(s, SQF_QUARANTINE, id, qu_sql[id]);
}

int sq_quarantine_hold(struct sq *s, const struct store_message *m, int64_t now)
{
	const struct store_quarantine_info *qi = m->quarantine;
	char addr[STORE_ADDR_LEN], detail[STORE_REPLY_LEN];
	int64_t copy = 0;
	sqlite3_stmt *stmt;
	int rc;

	for (size_t j = 0; j < m->nrcpts; j++) {
		const struct store_msg_rcpt *r = &m->rcpts[j];
		const char *at;

		if (r->quarantine_until <= 0)
			continue;
		if (copy == 0) {
			if (!(stmt = qu_stmt(s, QU_COPY_INSERT)))
				return STORE_TEMPFAIL;
			sqlite3_bind_int64(stmt, 1, (int64_t)qi->len);
			sqlite3_bind_blob64(stmt, 2, qi->len ? qi->data : "", qi->len,
					    SQLITE_STATIC);
			sq_bind_text(stmt, 3, qi->verdict ? qi->verdict : "");
			sqlite3_bind_int(stmt, 4, COPY_FORMAT_VERSION);
			if ((rc = sq_exec(s, stmt, "quarantine copy")))
				return rc;
			copy = sqlite3_last_insert_rowid(s->db);
		}
		sq_addr_fold(r->address, addr, sizeof(addr));
		at = strrchr(addr, '@');
		if (!(stmt = qu_stmt(s, QU_INSERT)))
			return STORE_TEMPFAIL;
		sqlite3_bind_int64(stmt, 1, copy);
		sq_bind_text(stmt, 2, m->queue_id);
		sq_bind_text(stmt, 3, addr);
		sq_bind_text(stmt, 4, at ? at + 1 : "");
		if (r->mailbox_id > 0)
			sqlite3_bind_int64(stmt, 5, r->mailbox_id);
		else
			sqlite3_bind_null(stmt, 5);
		sq_bind_text(stmt, 6, m->sender);
		sq_bind_text(stmt, 7, qi->subject ? qi->subject : "");
		sq_bind_text(stmt, 8, m->client_addr ? m->client_addr : "");
		sq_bind_text(stmt, 9, m->helo ? m->helo : "");
		sqlite3_bind_int64(stmt, 10, (int64_t)m->flags);
		sqlite3_bind_double(stmt, 11, qi->score);
		sq_bind_text(stmt, 12, qi->reason ? qi->reason : "");
		sqlite3_bind_int64(stmt, 13, m->received_at ? m->received_at : now);
		sqlite3_bind_int64(stmt, 14, r->quarantine_until);
		if ((rc = sq_exec(s, stmt, "quarantine insert")))
			return rc;
		if (sqlite3_changes(s->db) == 0) {
			store_set_error(&s->base, "domain of %s removed meanwhile", addr);
			return STORE_TEMPFAIL;
		}
		snprintf(detail, sizeof(detail), "score=%.2f reason=%s size=%zu client=%s",
			 qi->score, qi->reason ? qi->reason : "", qi->len,
			 m->client_addr ? m->client_addr : "");
		if ((rc = sq_log_insert(s, m->received_at ? m->received_at : now, m->queue_id,
					"quarantined", m->sender, addr, detail)))
			return rc;
	}
	return STORE_OK;
}

/* Row of QU_COLS into e; also the copy id and what a release needs. */
struct qu_row {
	struct store_quarantine_entry e;
	int64_t copy_id;
	char helo[256];
	unsigned flags;
	int64_t mailbox_id;
};

static void qu_fill(sqlite3_stmt *st, struct qu_row *r)
{
	struct store_quarantine_entry *e = &r->e;

	memset(r, 0, sizeof(*r));
	e->id = sqlite3_column_int64(st, 0);
	sq_col_copy(st, 1, e->queue_id, sizeof(e->queue_id));
	sq_col_copy(st, 2, e->rcpt, sizeof(e->rcpt));
	sq_col_copy(st, 3, e->sender, sizeof(e->sender));
	sq_col_copy(st, 4, e->subject, sizeof(e->subject));
	sq_col_copy(st, 5, e->client_addr, sizeof(e->client_addr));
	sq_col_copy(st, 6, e->reason, sizeof(e->reason));
	sq_col_copy(st, 7, e->state, sizeof(e->state));
	sq_col_copy(st, 8, e->released_to, sizeof(e->released_to));
	e->score = sqlite3_column_double(st, 9);
	e->received_at = sqlite3_column_int64(st, 10);
	e->expires_at = sqlite3_column_int64(st, 11);
	e->size = sqlite3_column_int64(st, 12);
	r->copy_id = sqlite3_column_int64(st, 13);
	sq_col_copy(st, 14, r->helo, sizeof(r->helo));
	r->flags = (unsigned)sqlite3_column_int64(st, 15);
	r->mailbox_id = sqlite3_column_int64(st, 16);
}

static int qu_list(struct store *st, const struct store_quarantine_query *q, store_quarantine_cb cb,
		   void *arg)
{
	struct sq *s = to_sq(st);
	char pat[STORE_ADDR_LEN * 2 + 4];
	sqlite3_stmt *stmt = qu_stmt(s, QU_LIST);
	struct qu_row r;
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, q->account);
	sq_bind_text(stmt, 2, q->domain);
	sq_bind_text(stmt, 3, q->rcpt);
	sq_bind_text(stmt, 4, q->queue_id);
	if (q->search) {
		if (sq_like_pattern(q->search, pat, sizeof(pat)))
			return store_invalid(st, "search text too long");
		sq_bind_text(stmt, 5, pat);
	}
	sqlite3_bind_int(stmt, 6, q->held_only ? 1 : 0);
	sqlite3_bind_int64(stmt, 7, q->limit ? (int64_t)q->limit : 1000);
	while ((rc = sq_step(s, stmt, "quarantine list")) > 0) {
		int cbrc;

		qu_fill(stmt, &r);
		if ((cbrc = cb(&r.e, arg)) != 0) {
			sqlite3_reset(stmt);
			return store_cb_result(cbrc);
		}
	}
	return rc;
}

static int qu_row_get(struct sq *s, int64_t id, struct qu_row *r)
{
	sqlite3_stmt *stmt = qu_stmt(s, QU_GET);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, id);
	if ((rc = sq_step(s, stmt, "quarantine get")) < 0)
		return rc;
	if (rc == 0) {
		store_set_error(&s->base, "no quarantine entry %lld", (long long)id);
		return STORE_NOTFOUND;
	}
	qu_fill(stmt, r);
	sqlite3_reset(stmt);
	return STORE_OK;
}

/* The copy's body (and verdict) as malloc'd buffers. */
static int copy_load(struct sq *s, int64_t copy_id, void **data, size_t *len, char **verdict)
{
	sqlite3_stmt *stmt = qu_stmt(s, QU_COPY_LOAD);
	const void *b;
	size_t n;
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, copy_id);
	if ((rc = sq_step(s, stmt, "quarantine copy")) <= 0) {
		if (rc == 0) {
			store_set_error(&s->base, "quarantine copy %lld is missing",
					(long long)copy_id);
			rc = STORE_TEMPFAIL;
		}
		return rc;
	}
	rc = STORE_TEMPFAIL;
	n = (size_t)sqlite3_column_bytes(stmt, 0);
	b = sqlite3_column_blob(stmt, 0);
	if (data) {
		if (!(*data = malloc(n ? n : 1)))
			goto out;
		if (n)
			memcpy(*data, b, n);
		*len = n;
	}
	if (verdict && !(*verdict = strdup(sq_col_text(stmt, 1)))) {
		if (data) {
			free(*data);
			*data = NULL;
		}
		goto out;
	}
	rc = STORE_OK;
out:
	if (rc)
		store_set_error(&s->base, "out of memory");
	sqlite3_reset(stmt);
	return rc;
}

static int qu_get(struct store *st, int64_t id, struct store_quarantine_entry *out, char **verdict,
		  void **data, size_t *len)
{
	struct sq *s = to_sq(st);
	struct qu_row r;
	int rc;

	if ((rc = qu_row_get(s, id, &r)))
		return rc;
	if ((verdict || data) && (rc = copy_load(s, r.copy_id, data, len, verdict)))
		return rc;
	*out = r.e;
	return STORE_OK;
}

static int qu_release(struct store *st, int64_t id, const char *new_queue_id, const char *by,
		      int64_t now)
{
	struct sq *s = to_sq(st);
	struct store_message m;
	char detail[STORE_REPLY_LEN];
	struct qu_row r;
	sqlite3_stmt *stmt;
	void *data = NULL;
	size_t len = 0;
	int64_t msg_id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = qu_row_get(s, id, &r)))
		goto out;
	if (strcmp(r.e.state, "held") != 0) {
		store_set_error(st, "entry %lld was already released as %s", (long long)id,
				r.e.released_to);
		rc = STORE_EXISTS;
		goto out;
	}
	if ((rc = copy_load(s, r.copy_id, &data, &len, NULL)))
		goto out;
	memset(&m, 0, sizeof(m));
	m.sender = r.e.sender;
	m.client_addr = r.e.client_addr;
	m.helo = r.helo;
	m.received_at = now;
	m.flags = r.flags;
	if ((rc = sq_message_insert(s, &m, new_queue_id, data, len, &msg_id)) ||
	    (rc = sq_rcpt_insert(s, msg_id, r.e.rcpt, r.mailbox_id, now)))
		goto out;
	if (!(stmt = qu_stmt(s, QU_MARK_RELEASED))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	sq_bind_text(stmt, 2, new_queue_id);
	sqlite3_bind_int64(stmt, 3, now);
	if ((rc = sq_exec(s, stmt, "quarantine release")))
		goto out;
	snprintf(detail, sizeof(detail), "released by %s as %s", by ? by : "?", new_queue_id);
	if ((rc = sq_log_insert(s, now, r.e.queue_id, "released", r.e.sender, r.e.rcpt, detail)))
		goto out;
	snprintf(detail, sizeof(detail), "size=%zu released from quarantine (%s)", len,
		 r.e.queue_id);
	rc = sq_log_insert(s, now, new_queue_id, "received", r.e.sender, r.e.rcpt, detail);
out:
	free(data);
	return sq_tx_end(s, rc);
}

/* Deletes one entry and its copy if now unused; logs event. */
static int remove_entry(struct sq *s, int64_t id, int64_t copy_id, const char *qid,
			const char *sender, const char *rcpt, const char *event, const char *detail,
			int64_t now)
{
	sqlite3_stmt *stmt;
	int rc;

	if (!(stmt = qu_stmt(s, QU_DELETE)))
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, id);
	if ((rc = sq_exec(s, stmt, "quarantine delete")))
		return rc;
	if (!(stmt = qu_stmt(s, QU_COPY_GC)))
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, copy_id);
	if ((rc = sq_exec(s, stmt, "quarantine copy delete")))
		return rc;
	return sq_log_insert(s, now, qid, event, sender, rcpt, detail);
}

static int qu_remove(struct store *st, int64_t id, const char *by)
{
	struct sq *s = to_sq(st);
	char detail[STORE_REPLY_LEN];
	struct qu_row r;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = qu_row_get(s, id, &r)))
		goto out;
	snprintf(detail, sizeof(detail), "removed from the quarantine by %s", by ? by : "?");
	rc = remove_entry(s, id, r.copy_id, r.e.queue_id, r.e.sender, r.e.rcpt,
			  "quarantine-deleted", detail, time_now());
out:
	return sq_tx_end(s, rc);
}

struct expired {
	int64_t id, copy_id;
	char qid[QUEUE_ID_LEN + 1];
	char sender[STORE_ADDR_LEN];
	char rcpt[STORE_ADDR_LEN];
};

#define EXPIRE_BATCH 500

static int qu_expire(struct store *st, int64_t now, size_t *n)
{
	struct sq *s = to_sq(st);
	struct expired *batch = calloc(EXPIRE_BATCH, sizeof(*batch));
	size_t total = 0, k;
	int rc = STORE_OK;

	if (!batch) {
		store_set_error(st, "out of memory");
		return STORE_TEMPFAIL;
	}
	/* In batches, each its own transaction, so a big backlog does not
	 * hold the write lock for long. */
	do {
		sqlite3_stmt *stmt;

		k = 0;
		if ((rc = sq_tx_begin(s)))
			break;
		if (!(stmt = qu_stmt(s, QU_EXPIRED))) {
			rc = sq_tx_end(s, STORE_TEMPFAIL);
			break;
		}
		sqlite3_bind_int64(stmt, 1, now);
		while (k < EXPIRE_BATCH && (rc = sq_step(s, stmt, "quarantine expire")) > 0) {
			batch[k].id = sqlite3_column_int64(stmt, 0);
			sq_col_copy(stmt, 1, batch[k].qid, sizeof(batch[k].qid));
			sq_col_copy(stmt, 2, batch[k].sender, sizeof(batch[k].sender));
			sq_col_copy(stmt, 3, batch[k].rcpt, sizeof(batch[k].rcpt));
			batch[k].copy_id = sqlite3_column_int64(stmt, 4);
			k++;
		}
		sqlite3_reset(stmt);
		if (rc < 0) {
			sq_tx_end(s, rc);
			break;
		}
		rc = STORE_OK;
		for (size_t i = 0; i < k && rc == STORE_OK; i++)
			rc = remove_entry(s, batch[i].id, batch[i].copy_id, batch[i].qid,
					  batch[i].sender, batch[i].rcpt, "expired",
					  "quarantine retention ended", now);
		if ((rc = sq_tx_end(s, rc)))
			break;
		total += k;
	} while (k == EXPIRE_BATCH);
	free(batch);
	if (n)
		*n = total;
	return rc;
}

static int qu_count(struct store *st, int64_t *n)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = qu_stmt(s, QU_COUNT_HELD);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	if ((rc = sq_step(s, stmt, "quarantine count")) <= 0)
		return rc < 0 ? rc : STORE_TEMPFAIL;
	*n = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return STORE_OK;
}

const struct store_quarantine_ops sq_quarantine_ops = {
    .list = qu_list,
    .get = qu_get,
    .release = qu_release,
    .remove = qu_remove,
    .expire = qu_expire,
    .count = qu_count,
};
