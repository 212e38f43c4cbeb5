/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite: the embedded SQLite backend of store.h.
 *
 * One struct sq is one connection, opened in WAL mode with
 * synchronous=FULL (every COMMIT is fsynced before it returns, so "250
 * after commit" holds across a power cut) and foreign keys on. Every
 * statement is prepared once per connection and kept (stmt_get()); a
 * statement still being stepped is never handed out twice, so a callback
 * that re-enters the same walk gets STORE_TEMPFAIL instead of corrupt
 * results.
 *
 * Every write runs inside BEGIN IMMEDIATE ... COMMIT: the write lock is
 * taken up front (waiting up to busy_timeout), so a transaction never fails
 * half-way on a lock upgrade. Any SQLite error rolls the transaction back
 * and becomes STORE_TEMPFAIL (constraint violations on adds: STORE_EXISTS)
 * with SQLite's message in store_last_error().
 *
 * The schema is written in the SQL that SQLite and PostgreSQL share, so the
 * PostgreSQL backend keeps the same tables and columns (INTEGER PRIMARY KEY
 * becomes an identity column, BLOB becomes BYTEA). Local parts are compared
 * through a local_key column (ASCII lower-cased in C), not a collation, so
 * both backends fold case the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "store/store_sqlite_private.h"

/* Migration n brings the schema from version n-1 to n. Never edit one that
 * has shipped: append a new one and bump STORE_SCHEMA_VERSION. */
static const char schema_v1[] =
    "CREATE TABLE accounts ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE domains ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE," /* lower-case */
    " account_id INTEGER NOT NULL REFERENCES accounts(id),"
    " catchall_mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX domains_account ON domains(account_id);"
    "CREATE TABLE routes ("
    " id INTEGER PRIMARY KEY,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    " position INTEGER NOT NULL,"
    " host TEXT NOT NULL,"
    " port INTEGER NOT NULL,"
    " UNIQUE (domain_id, position));"
    "CREATE TABLE mailboxes ("
    " id INTEGER PRIMARY KEY,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    " local_part TEXT NOT NULL," /* as added */
    " local_key TEXT NOT NULL,"	 /* ASCII lower-cased: the unique key */
    " created_at INTEGER NOT NULL,"
    " UNIQUE (domain_id, local_key));"
    "CREATE TABLE aliases ("
    " id INTEGER PRIMARY KEY,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    " local_part TEXT NOT NULL,"
    " local_key TEXT NOT NULL,"
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    " created_at INTEGER NOT NULL,"
    " UNIQUE (domain_id, local_key));"
    "CREATE INDEX aliases_mailbox ON aliases(mailbox_id);"
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY,"
    " queue_id TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL,"
    " client_addr TEXT NOT NULL,"
    " helo TEXT NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " flags INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " body BLOB NOT NULL,"
    " format_version INTEGER NOT NULL);"
    /* mailbox_id has no foreign key on purpose: queued mail outlives the
     * removal of its domain or mailbox. */
    "CREATE TABLE recipients ("
    " id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    " address TEXT NOT NULL,"
    " mailbox_id INTEGER,"
    " state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'bounced')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL,"
    " lease_owner TEXT,"
    " lease_until INTEGER NOT NULL DEFAULT 0,"
    " last_reply TEXT NOT NULL DEFAULT '',"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX recipients_message ON recipients(message_id);"
    "CREATE INDEX recipients_due ON recipients(next_attempt, message_id)"
    " WHERE state = 'queued';"
    "CREATE INDEX recipients_lease ON recipients(lease_owner) WHERE lease_owner IS NOT NULL;"
    "CREATE TABLE message_log ("
    " id INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL,"
    " queue_id TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " sender TEXT NOT NULL,"
    " rcpt TEXT NOT NULL,"
    " detail TEXT NOT NULL);"
    "CREATE INDEX message_log_queue_id ON message_log(queue_id);"
    "CREATE INDEX message_log_ts ON message_log(ts);";

static const struct {
	int version;
	const char *sql;
} migrations[] = {
    {1, schema_v1},
    /* 2: per-domain "senders must use TLS" (issue 3) */
    {2, "ALTER TABLE domains ADD COLUMN require_tls INTEGER NOT NULL DEFAULT 0;"},
    /* 3: IP and network reputation (issue 3) */
    {3, "CREATE TABLE reputation ("
	" key TEXT PRIMARY KEY,"
	" spam REAL NOT NULL DEFAULT 0,"
	" ham REAL NOT NULL DEFAULT 0,"
	" updated_at INTEGER NOT NULL,"
	" action INTEGER NOT NULL DEFAULT 0,"
	" note TEXT NOT NULL DEFAULT '');"},
    /* 4..9: issues 6 and 7; each feature's schema is in its own file */
    {4, sq_schema_policy},
    {5, sq_schema_quarantine},
    {6, sq_schema_bayes},
    {7, sq_schema_rel},
    {8, sq_schema_dkim},
    {9, sq_schema_dmarc},
};

/* The version a message row's body and columns are written in. */
#define MSG_FORMAT_VERSION 1

enum sq_id {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_VERSION,
	Q_MIG_INSERT,
	Q_PING,
	Q_ACCOUNT_INSERT,
	Q_ACCOUNT_ID,
	Q_DOMAIN_INSERT,
	Q_DOMAIN_ID,
	Q_DOMAIN_CLEAR_CATCHALL,
	Q_DOMAIN_DELETE,
	Q_DOMAIN_SET_REQUIRE_TLS,
	Q_REP_GET,
	Q_REP_PUT,
	Q_REP_ACTION,
	Q_REP_DELETE,
	Q_REP_LIST,
	Q_DOMAIN_GET,
	Q_DOMAIN_LIST,
	Q_ROUTES,
	Q_ROUTES_DELETE,
	Q_ROUTE_INSERT,
	Q_DOMAIN_SET_CATCHALL,
	Q_DOMAIN_LOOKUP,
	Q_MAILBOX_FIND,
	Q_ALIAS_FIND,
	Q_MAILBOX_INSERT,
	Q_MAILBOX_DELETE,
	Q_ALIAS_INSERT,
	Q_ALIAS_DELETE,
	Q_MAILBOX_LIST,
	Q_MAILBOX_LIST_ALL,
	Q_MSG_INSERT,
	Q_RCPT_INSERT,
	Q_LOG_INSERT,
	Q_CLAIM_SELECT,
	Q_CLAIM_UPDATE,
	Q_RCPT_GET,
	Q_RCPT_UPDATE,
	Q_MSG_DELETE_IF_DONE,
	Q_RELEASE,
	Q_RELEASE_NODE,
	Q_MSG_LOAD,
	Q_QUEUE_LIST_ALL,
	Q_QUEUE_LIST_ONE,
	Q_MSG_ID,
	Q_RETRY_ONE,
	Q_RETRY_ALL,
	Q_DELETE_LOG,
	Q_MSG_DELETE,
	Q_QUEUE_COUNT,
	Q_LOG_SEARCH,
	Q_LOG_SEARCH_QID,
	Q_COUNT
};

#define QUEUE_COLS                                                                                 \
	"SELECT m.queue_id, m.sender, r.address, r.state, r.attempts, m.received_at,"              \
	" r.next_attempt, m.size, r.last_reply, r.lease_owner, r.lease_until"                      \
	" FROM recipients r JOIN messages m ON m.id = r.message_id "
#define LOG_FILTER                                                                                 \
	" AND (?2 IS NULL OR sender LIKE ?2 ESCAPE '\\')"                                          \
	" AND (?3 IS NULL OR rcpt LIKE ?3 ESCAPE '\\') AND ts >= ?4"                               \
	" ORDER BY ts DESC, id DESC LIMIT ?5) AS t ORDER BY ts, id"
#define LOG_COLS                                                                                   \
	"SELECT ts, queue_id, event, sender, rcpt, detail FROM (SELECT id, ts, queue_id, event,"   \
	" sender, rcpt, detail FROM message_log WHERE "
#define MAILBOX_LIST                                                                               \
	"SELECT m.id, m.local_part, d.name, NULL, NULL FROM mailboxes m"                           \
	" JOIN domains d ON d.id = m.domain_id WHERE ?1 IS NULL OR d.name = ?1 UNION ALL"          \
	" SELECT a.id, a.local_part, d.name, tm.local_part, td.name FROM aliases a"                \
	" JOIN domains d ON d.id = a.domain_id JOIN mailboxes tm ON tm.id = a.mailbox_id"          \
	" JOIN domains td ON td.id = tm.domain_id WHERE ?1 IS NULL OR d.name = ?1"                 \
	" ORDER BY 3, 2"

_Static_assert(Q_COUNT <= SQ_CORE_STMT_MAX, "raise SQ_CORE_STMT_MAX");

static const char *const sq_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [Q_MIG_INSERT] = "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
    [Q_PING] = "SELECT 1",
    [Q_ACCOUNT_INSERT] = "INSERT INTO accounts (name, created_at) VALUES (?1, ?2)"
			 " ON CONFLICT (name) DO NOTHING",
    [Q_ACCOUNT_ID] = "SELECT id FROM accounts WHERE name = ?1",
    [Q_DOMAIN_INSERT] = "INSERT INTO domains (name, account_id, created_at) VALUES (?1, ?2, ?3)",
    [Q_DOMAIN_ID] = "SELECT id FROM domains WHERE name = ?1",
    [Q_DOMAIN_CLEAR_CATCHALL] = "UPDATE domains SET catchall_mailbox_id = NULL WHERE id = ?1",
    [Q_DOMAIN_DELETE] = "DELETE FROM domains WHERE id = ?1",
    [Q_DOMAIN_SET_REQUIRE_TLS] = "UPDATE domains SET require_tls = ?2 WHERE name = ?1",
    [Q_REP_GET] = "SELECT spam, ham, updated_at, action, note FROM reputation WHERE key = ?1",
    [Q_REP_PUT] = "INSERT INTO reputation (key, spam, ham, updated_at) VALUES (?1, ?2, ?3, ?4)"
		  " ON CONFLICT (key) DO UPDATE SET spam = ?2, ham = ?3, updated_at = ?4",
    [Q_REP_ACTION] =
	"INSERT INTO reputation (key, updated_at, action, note) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (key) DO UPDATE SET action = ?3, note = ?4",
    [Q_REP_DELETE] = "DELETE FROM reputation WHERE key = ?1",
    [Q_REP_LIST] = "SELECT key, spam, ham, updated_at, action, note FROM reputation ORDER BY key",
    [Q_DOMAIN_GET] = "SELECT d.id, d.name, a.name, m.local_part, d.require_tls FROM domains d"
		     " JOIN accounts a ON a.id = d.account_id"
		     " LEFT JOIN mailboxes m ON m.id = d.catchall_mailbox_id WHERE d.name = ?1",
    [Q_DOMAIN_LIST] = "SELECT d.id, d.name, a.name, m.local_part, d.require_tls FROM domains d"
		      " JOIN accounts a ON a.id = d.account_id"
		      " LEFT JOIN mailboxes m ON m.id = d.catchall_mailbox_id ORDER BY d.name",
    [Q_ROUTES] = "SELECT host, port FROM routes WHERE domain_id = ?1 ORDER BY position",
    [Q_ROUTES_DELETE] = "DELETE FROM routes WHERE domain_id = ?1",
    [Q_ROUTE_INSERT] = "INSERT INTO routes (domain_id, position, host, port)"
		       " VALUES (?1, ?2, ?3, ?4)",
    [Q_DOMAIN_SET_CATCHALL] = "UPDATE domains SET catchall_mailbox_id = ?2 WHERE id = ?1",
    [Q_DOMAIN_LOOKUP] = "SELECT d.id, m.id, m.local_part, d.require_tls FROM domains d"
			" LEFT JOIN mailboxes m ON m.id = d.catchall_mailbox_id"
			" WHERE d.name = ?1",
    [Q_MAILBOX_FIND] = "SELECT id, local_part FROM mailboxes"
		       " WHERE domain_id = ?1 AND local_key = ?2",
    [Q_ALIAS_FIND] = "SELECT a.id, m.id, m.local_part, d.name FROM aliases a"
		     " JOIN mailboxes m ON m.id = a.mailbox_id"
		     " JOIN domains d ON d.id = m.domain_id"
		     " WHERE a.domain_id = ?1 AND a.local_key = ?2",
    [Q_MAILBOX_INSERT] = "INSERT INTO mailboxes (domain_id, local_part, local_key, created_at)"
			 " VALUES (?1, ?2, ?3, ?4)",
    [Q_MAILBOX_DELETE] = "DELETE FROM mailboxes WHERE id = ?1",
    [Q_ALIAS_INSERT] = "INSERT INTO aliases (domain_id, local_part, local_key, mailbox_id,"
		       " created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_ALIAS_DELETE] = "DELETE FROM aliases WHERE id = ?1",
    [Q_MAILBOX_LIST] = MAILBOX_LIST,
    [Q_MAILBOX_LIST_ALL] = MAILBOX_LIST,
    [Q_MSG_INSERT] = "INSERT INTO messages (queue_id, sender, client_addr, helo, received_at,"
		     " flags, size, body, format_version)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_RCPT_INSERT] = "INSERT INTO recipients (message_id, address, mailbox_id, state,"
		      " attempts, next_attempt, lease_owner, lease_until, last_reply,"
		      " updated_at) VALUES (?1, ?2, ?3, 'queued', 0, ?4, NULL, 0, '', ?4)",
    [Q_LOG_INSERT] = "INSERT INTO message_log (ts, queue_id, event, sender, rcpt, detail)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_CLAIM_SELECT] = "SELECT r.id, r.message_id, m.queue_id, m.sender, r.address, m.flags,"
		       " r.attempts, m.received_at, m.size"
		       " FROM recipients r JOIN messages m ON m.id = r.message_id"
		       " WHERE r.state = 'queued' AND r.next_attempt <= ?1"
		       " AND (r.lease_owner IS NULL OR r.lease_until <= ?1)"
		       " ORDER BY r.next_attempt, r.message_id, r.id LIMIT ?2",
    [Q_CLAIM_UPDATE] = "UPDATE recipients SET lease_owner = ?2, lease_until = ?3,"
		       " updated_at = ?4 WHERE id = ?1",
    [Q_RCPT_GET] = "SELECT r.message_id, r.state, r.address, m.queue_id, m.sender"
		   " FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?1",
    [Q_RCPT_UPDATE] = "UPDATE recipients SET state = ?2, attempts = attempts + 1,"
		      " next_attempt = ?3, lease_owner = NULL, lease_until = 0,"
		      " last_reply = ?4, updated_at = ?5 WHERE id = ?1",
    [Q_MSG_DELETE_IF_DONE] = "DELETE FROM messages WHERE id = ?1 AND NOT EXISTS"
			     " (SELECT 1 FROM recipients WHERE message_id = ?1"
			     " AND state = 'queued')",
    [Q_RELEASE] = "UPDATE recipients SET lease_owner = NULL, lease_until = 0, updated_at = ?2"
		  " WHERE lease_owner = ?1",
    [Q_RELEASE_NODE] = "UPDATE recipients SET lease_owner = NULL, lease_until = 0, updated_at = ?2"
		       " WHERE substr(lease_owner, 1, length(?1) + 1) = ?1 || ':'",
    [Q_MSG_LOAD] = "SELECT body FROM messages WHERE id = ?1",
    [Q_QUEUE_LIST_ALL] = QUEUE_COLS "ORDER BY m.received_at, m.id, r.id",
    [Q_QUEUE_LIST_ONE] = QUEUE_COLS "WHERE m.queue_id = ?1 ORDER BY r.id",
    [Q_MSG_ID] = "SELECT id FROM messages WHERE queue_id = ?1",
    [Q_RETRY_ONE] = "UPDATE recipients SET next_attempt = ?2, updated_at = ?2"
		    " WHERE message_id = ?1 AND state = 'queued'",
    [Q_RETRY_ALL] = "UPDATE recipients SET next_attempt = ?1, updated_at = ?1"
		    " WHERE state = 'queued'",
    [Q_DELETE_LOG] = "INSERT INTO message_log (ts, queue_id, event, sender, rcpt, detail)"
		     " SELECT ?2, m.queue_id, 'deleted', m.sender, r.address,"
		     " 'removed from the queue by the operator'"
		     " FROM recipients r JOIN messages m ON m.id = r.message_id"
		     " WHERE m.id = ?1 AND r.state = 'queued' ORDER BY r.id",
    [Q_MSG_DELETE] = "DELETE FROM messages WHERE id = ?1",
    [Q_QUEUE_COUNT] = "SELECT COUNT(*) FROM recipients WHERE state = 'queued'",
    [Q_LOG_SEARCH] = LOG_COLS "1 = 1" LOG_FILTER,
    [Q_LOG_SEARCH_QID] = LOG_COLS "queue_id = ?1" LOG_FILTER,
};

/* Records SQLite's view of the failure of what; returns the store code. */
int sq_fail(struct sq *s, int rc, const char *what)
{
	store_set_error(&s->base, "%s: %s (sqlite %d)", what, sqlite3_errmsg(s->db), rc);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return STORE_EXISTS;
	return STORE_TEMPFAIL;
}

/* The cached statement id, reset and unbound; NULL (error set) if it cannot
 * be prepared or is still being stepped by a caller up the stack. */
static sqlite3_stmt *stmt_get(struct sq *s, enum sq_id id)
{
	sqlite3_stmt *stmt = s->stmt[id];
	int rc;

	if (!stmt) {
		rc = sqlite3_prepare_v3(s->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &stmt,
					NULL);
		if (rc != SQLITE_OK) {
			sq_fail(s, rc, "prepare");
			return NULL;
		}
		s->stmt[id] = stmt;
		return stmt;
	}
	if (sqlite3_stmt_busy(stmt)) {
		store_set_error(&s->base, "statement %d re-entered from a callback", (int)id);
		return NULL;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

sqlite3_stmt *sq_xstmt(struct sq *s, enum sq_feature f, int id, const char *sql)
{
	sqlite3_stmt *stmt;
	int rc;

	if ((unsigned)f >= SQF_COUNT || id < 0 || id >= SQ_FEATURE_STMT_MAX) {
		store_set_error(&s->base, "statement %d/%d out of range", (int)f, id);
		return NULL;
	}
	if (!(stmt = s->xstmt[f][id])) {
		rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
		if (rc != SQLITE_OK) {
			sq_fail(s, rc, "prepare");
			return NULL;
		}
		s->xstmt[f][id] = stmt;
		return stmt;
	}
	if (sqlite3_stmt_busy(stmt)) {
		store_set_error(&s->base, "statement %d/%d re-entered from a callback", (int)f, id);
		return NULL;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

void sq_xstmt_close(struct sq *s)
{
	for (size_t f = 0; f < SQF_COUNT; f++)
		for (size_t i = 0; i < SQ_FEATURE_STMT_MAX; i++) {
			sqlite3_finalize(s->xstmt[f][i]);
			s->xstmt[f][i] = NULL;
		}
}

/* Steps stmt: 1 for a row, 0 when done (the statement is then reset),
 * else a negative store code with the statement reset. */
int sq_step(struct sq *s, sqlite3_stmt *stmt, const char *what)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(stmt);
		return 0;
	}
	rc = sq_fail(s, rc, what);
	sqlite3_reset(stmt);
	return rc;
}

/* Runs a statement that returns no rows (or whose rows are ignored). */
int sq_exec(struct sq *s, sqlite3_stmt *stmt, const char *what)
{
	int rc = sq_step(s, stmt, what);

	if (rc > 0) {
		sqlite3_reset(stmt);
		rc = 0;
	}
	return rc;
}

static int run(struct sq *s, enum sq_id id, const char *what)
{
	sqlite3_stmt *stmt = stmt_get(s, id);

	return stmt ? sq_exec(s, stmt, what) : STORE_TEMPFAIL;
}

int sq_tx_begin(struct sq *s)
{
	return run(s, Q_BEGIN, "begin");
}

int sq_tx_commit(struct sq *s)
{
	return run(s, Q_COMMIT, "commit");
}

/* Rolls back if a transaction is open (SQLite may have rolled back on its
 * own after SQLITE_FULL or SQLITE_IOERR). The error text of the failure
 * that got us here is kept. */
void sq_tx_rollback(struct sq *s)
{
	char saved[STORE_ERR_LEN];

	if (sqlite3_get_autocommit(s->db))
		return;
	memcpy(saved, s->base.err, sizeof(saved));
	if (run(s, Q_ROLLBACK, "rollback") < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	memcpy(s->base.err, saved, sizeof(saved));
}

/* Ends a write transaction: COMMIT on success, ROLLBACK otherwise. */
int sq_tx_end(struct sq *s, int rc)
{
	if (rc == STORE_OK)
		rc = sq_tx_commit(s);
	if (rc != STORE_OK)
		sq_tx_rollback(s);
	return rc;
}

int sq_bind_text(sqlite3_stmt *stmt, int i, const char *v)
{
	return v ? sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(stmt, i);
}

const char *sq_col_text(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	return t ? (const char *)t : "";
}

/* Copies a column into a fixed buffer, truncating (stored values were
 * checked on the way in, so this only bites on rows from elsewhere). */
void sq_col_copy(sqlite3_stmt *stmt, int i, char *dst, size_t dstlen)
{
	(void)str_copy(dst, dstlen, sq_col_text(stmt, i));
}

/* Looks up one integer with a one-parameter text query: 0 and *id set,
 * STORE_NOTFOUND, or an error. */
static int lookup_id(struct sq *s, enum sq_id id, const char *key, int64_t *out)
{
	sqlite3_stmt *stmt = stmt_get(s, id);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, key);
	rc = sq_step(s, stmt, "lookup");
	if (rc <= 0)
		return rc < 0 ? rc : STORE_NOTFOUND;
	*out = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return STORE_OK;
}

/* ---- connection ------------------------------------------------------- */

static void sq_close(struct store *st)
{
	struct sq *s = to_sq(st);

	for (size_t i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sq_xstmt_close(s);
	sqlite3_close_v2(s->db);
	free(s);
}

static int sq_schema_version(struct store *st)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = NULL;
	int rc, v = 0;

	/* Not cached: the table may not exist yet. */
	rc = sqlite3_prepare_v2(s->db,
				"SELECT COUNT(*) FROM sqlite_master"
				" WHERE type = 'table' AND name = 'schema_migrations'",
				-1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(s, rc, "schema version");
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		rc = sq_fail(s, rc, "schema version");
		goto out;
	}
	if (sqlite3_column_int(stmt, 0) == 0) {
		rc = 0;
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	rc = sqlite3_prepare_v2(s->db, sq_sql[Q_VERSION], -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(s, rc, "schema version");
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		rc = sq_fail(s, rc, "schema version");
		goto out;
	}
	v = sqlite3_column_int(stmt, 0);
	rc = v;
out:
	sqlite3_finalize(stmt);
	return rc;
}

static int sq_migrate(struct store *st)
{
	struct sq *s = to_sq(st);
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(s->db,
			  "CREATE TABLE IF NOT EXISTS schema_migrations ("
			  " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(s, rc, "migrate");
	/* The common case, without taking the write lock. */
	rc = sq_schema_version(st);
	if (rc == STORE_SCHEMA_VERSION)
		return STORE_OK;
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < ARRAY_LEN(migrations); i++) {
		sqlite3_stmt *ins;
		int v;

		if ((rc = sq_tx_begin(s)))
			return rc;
		/* Read the version inside the write lock: two processes may
		 * start at once, only one applies each step. */
		v = sq_schema_version(st);
		if (v < 0) {
			rc = v;
			goto fail;
		}
		if (v > STORE_SCHEMA_VERSION) {
			store_set_error(
			    st, "database schema version %d is newer than this program's (%d)", v,
			    STORE_SCHEMA_VERSION);
			rc = STORE_INVALID;
			goto fail;
		}
		if (v >= migrations[i].version) {
			sq_tx_rollback(s);
			continue;
		}
		rc = sqlite3_exec(s->db, migrations[i].sql, NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			store_set_error(st, "migration %d: %s", migrations[i].version,
					msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			rc = STORE_TEMPFAIL;
			goto fail;
		}
		if (!(ins = stmt_get(s, Q_MIG_INSERT))) {
			rc = STORE_TEMPFAIL;
			goto fail;
		}
		sqlite3_bind_int(ins, 1, migrations[i].version);
		sqlite3_bind_int64(ins, 2, time_now());
		if ((rc = sq_exec(s, ins, "migrate")) < 0)
			goto fail;
		if ((rc = sq_tx_commit(s)) < 0)
			goto fail;
	}
	return STORE_OK;
fail:
	sq_tx_rollback(s);
	return rc;
}

static int sq_ping(struct store *st)
{
	return run(to_sq(st), Q_PING, "ping");
}

/* ---- tenancy ---------------------------------------------------------- */

static int account_ensure(struct sq *s, const char *account, int64_t *id)
{
	sqlite3_stmt *stmt = stmt_get(s, Q_ACCOUNT_INSERT);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, account);
	sqlite3_bind_int64(stmt, 2, time_now());
	if ((rc = sq_exec(s, stmt, "account add")))
		return rc;
	rc = lookup_id(s, Q_ACCOUNT_ID, account, id);
	if (rc == STORE_NOTFOUND) {
		store_set_error(&s->base, "account vanished");
		rc = STORE_TEMPFAIL;
	}
	return rc;
}

static int sq_account_ensure(struct store *st, const char *account, int64_t *id)
{
	struct sq *s = to_sq(st);
	int64_t tmp;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	rc = account_ensure(s, account, id ? id : &tmp);
	return sq_tx_end(s, rc);
}

static int sq_domain_add(struct store *st, const char *account, const char *domain)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t acc;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = account_ensure(s, account, &acc)))
		goto out;
	if (!(stmt = stmt_get(s, Q_DOMAIN_INSERT))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, domain);
	sqlite3_bind_int64(stmt, 2, acc);
	sqlite3_bind_int64(stmt, 3, time_now());
	rc = sq_exec(s, stmt, "domain add");
	if (rc == STORE_EXISTS)
		store_set_error(st, "domain %s exists", domain);
out:
	return sq_tx_end(s, rc);
}

/* The id of a hosted domain inside a transaction, with a clear error. */
static int domain_id(struct sq *s, const char *domain, int64_t *id)
{
	int rc = lookup_id(s, Q_DOMAIN_ID, domain, id);

	if (rc == STORE_NOTFOUND)
		store_set_error(&s->base, "no such domain: %s", domain);
	return rc;
}

static int sq_domain_remove(struct store *st, const char *domain)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = domain_id(s, domain, &id)))
		goto out;
	/* Drop the catch-all first: the domain's own mailboxes go with it. */
	if (!(stmt = stmt_get(s, Q_DOMAIN_CLEAR_CATCHALL))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	if ((rc = sq_exec(s, stmt, "domain remove")))
		goto out;
	if (!(stmt = stmt_get(s, Q_DOMAIN_DELETE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	rc = sq_exec(s, stmt, "domain remove");
	if (rc == STORE_EXISTS) /* a foreign key still points at it */
		rc = STORE_TEMPFAIL;
out:
	return sq_tx_end(s, rc);
}

/* Fills d from a Q_DOMAIN_GET / Q_DOMAIN_LIST row, then its routes. */
static int domain_fill(struct sq *s, sqlite3_stmt *row, struct store_domain *d)
{
	sqlite3_stmt *stmt;
	int rc;

	memset(d, 0, sizeof(*d));
	d->id = sqlite3_column_int64(row, 0);
	sq_col_copy(row, 1, d->name, sizeof(d->name));
	sq_col_copy(row, 2, d->account, sizeof(d->account));
	if (sqlite3_column_type(row, 3) != SQLITE_NULL &&
	    str_fmt(d->catchall, sizeof(d->catchall), "%s@%s", sq_col_text(row, 3), d->name) < 0)
		d->catchall[0] = '\0';
	d->require_tls = sqlite3_column_int(row, 4) != 0;
	if (!(stmt = stmt_get(s, Q_ROUTES)))
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, d->id);
	while ((rc = sq_step(s, stmt, "routes")) > 0) {
		struct store_route *r;

		if (d->nroutes == STORE_MAX_ROUTES)
			continue;
		r = &d->routes[d->nroutes++];
		sq_col_copy(stmt, 0, r->host, sizeof(r->host));
		r->port = (uint16_t)sqlite3_column_int(stmt, 1);
	}
	sqlite3_reset(stmt);
	return rc;
}

static int sq_domain_get(struct store *st, const char *domain, struct store_domain *out)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = stmt_get(s, Q_DOMAIN_GET);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, domain);
	rc = sq_step(s, stmt, "domain get");
	if (rc <= 0) {
		if (rc == 0)
			store_set_error(st, "no such domain: %s", domain);
		return rc < 0 ? rc : STORE_NOTFOUND;
	}
	rc = domain_fill(s, stmt, out);
	sqlite3_reset(stmt);
	return rc;
}

static int sq_domain_list(struct store *st, store_domain_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = stmt_get(s, Q_DOMAIN_LIST);
	struct store_domain d;
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	while ((rc = sq_step(s, stmt, "domain list")) > 0) {
		int cbrc;

		if ((rc = domain_fill(s, stmt, &d)))
			break;
		if ((cbrc = cb(&d, arg))) {
			rc = store_cb_result(cbrc);
			break;
		}
	}
	sqlite3_reset(stmt);
	return rc;
}

static int sq_domain_set_routes(struct store *st, const char *domain,
				const struct store_route *routes, size_t n)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = domain_id(s, domain, &id)))
		goto out;
	if (!(stmt = stmt_get(s, Q_ROUTES_DELETE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	if ((rc = sq_exec(s, stmt, "routes")))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!(stmt = stmt_get(s, Q_ROUTE_INSERT))) {
			rc = STORE_TEMPFAIL;
			goto out;
		}
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, (int64_t)i);
		sq_bind_text(stmt, 3, routes[i].host);
		sqlite3_bind_int(stmt, 4, routes[i].port);
		if ((rc = sq_exec(s, stmt, "routes")))
			goto out;
	}
out:
	return sq_tx_end(s, rc);
}

/* Splits a normalised address into its local key and domain id. */
static int addr_parts(struct sq *s, const char *address, char *local, size_t locallen, char *key,
		      size_t keylen, int64_t *dom_id)
{
	char dom[STORE_DOMAIN_LEN];
	int rc;

	if ((rc = store_addr_split(address, local, locallen, dom, sizeof(dom))) ||
	    (rc = store_local_key(local, key, keylen)))
		return rc;
	return domain_id(s, dom, dom_id);
}

/* Finds a mailbox (*id) by domain id and local key. */
static int mailbox_find(struct sq *s, int64_t dom_id, const char *key, int64_t *id)
{
	sqlite3_stmt *stmt = stmt_get(s, Q_MAILBOX_FIND);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, dom_id);
	sq_bind_text(stmt, 2, key);
	rc = sq_step(s, stmt, "mailbox find");
	if (rc <= 0)
		return rc < 0 ? rc : STORE_NOTFOUND;
	*id = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return STORE_OK;
}

static int alias_find(struct sq *s, int64_t dom_id, const char *key, int64_t *id)
{
	sqlite3_stmt *stmt = stmt_get(s, Q_ALIAS_FIND);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, dom_id);
	sq_bind_text(stmt, 2, key);
	rc = sq_step(s, stmt, "alias find");
	if (rc <= 0)
		return rc < 0 ? rc : STORE_NOTFOUND;
	*id = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return STORE_OK;
}

static int sq_domain_set_require_tls(struct store *st, const char *domain, bool on)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = stmt_get(s, Q_DOMAIN_SET_REQUIRE_TLS))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, domain);
	sqlite3_bind_int(stmt, 2, on ? 1 : 0);
	rc = sq_exec(s, stmt, "domain require-tls");
	if (rc == STORE_OK && sqlite3_changes(s->db) == 0) {
		store_set_error(st, "no such domain: %s", domain);
		rc = STORE_NOTFOUND;
	}
out:
	return sq_tx_end(s, rc);
}

static int sq_domain_set_catchall(struct store *st, const char *domain, const char *mailbox)
{
	struct sq *s = to_sq(st);
	char local[STORE_ADDR_LEN], key[STORE_ADDR_LEN], mdom[STORE_DOMAIN_LEN];
	sqlite3_stmt *stmt;
	int64_t id, mb_dom, mb = 0;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = domain_id(s, domain, &id)))
		goto out;
	if (mailbox) {
		if ((rc = store_addr_split(mailbox, local, sizeof(local), mdom, sizeof(mdom))))
			goto out;
		if (strcmp(mdom, domain) != 0) {
			store_set_error(st, "the catch-all must be a mailbox of %s", domain);
			rc = STORE_INVALID;
			goto out;
		}
		if ((rc = addr_parts(s, mailbox, local, sizeof(local), key, sizeof(key), &mb_dom)))
			goto out;
		if ((rc = mailbox_find(s, mb_dom, key, &mb))) {
			if (rc == STORE_NOTFOUND)
				store_set_error(st, "no such mailbox: %s", mailbox);
			goto out;
		}
	}
	if (!(stmt = stmt_get(s, Q_DOMAIN_SET_CATCHALL))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	if (mb)
		sqlite3_bind_int64(stmt, 2, mb);
	else
		sqlite3_bind_null(stmt, 2);
	rc = sq_exec(s, stmt, "catch-all");
out:
	return sq_tx_end(s, rc);
}

static int sq_mailbox_add(struct store *st, const char *address)
{
	struct sq *s = to_sq(st);
	char local[STORE_ADDR_LEN], key[STORE_ADDR_LEN];
	sqlite3_stmt *stmt;
	int64_t dom, other;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = addr_parts(s, address, local, sizeof(local), key, sizeof(key), &dom)))
		goto out;
	/* One name, one meaning: an alias of the same name blocks it. */
	rc = alias_find(s, dom, key, &other);
	if (rc == STORE_OK) {
		store_set_error(st, "%s exists as an alias", address);
		rc = STORE_EXISTS;
		goto out;
	}
	if (rc != STORE_NOTFOUND)
		goto out;
	if (!(stmt = stmt_get(s, Q_MAILBOX_INSERT))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, dom);
	sq_bind_text(stmt, 2, local);
	sq_bind_text(stmt, 3, key);
	sqlite3_bind_int64(stmt, 4, time_now());
	rc = sq_exec(s, stmt, "mailbox add");
	if (rc == STORE_EXISTS)
		store_set_error(st, "mailbox %s exists", address);
out:
	return sq_tx_end(s, rc);
}

/* Deletes the mailbox or alias named address (which: Q_MAILBOX_DELETE or
 * Q_ALIAS_DELETE). */
static int remove_name(struct sq *s, const char *address, enum sq_id which)
{
	char local[STORE_ADDR_LEN], key[STORE_ADDR_LEN];
	sqlite3_stmt *stmt;
	int64_t dom, id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = addr_parts(s, address, local, sizeof(local), key, sizeof(key), &dom)))
		goto out;
	rc = which == Q_MAILBOX_DELETE ? mailbox_find(s, dom, key, &id)
				       : alias_find(s, dom, key, &id);
	if (rc) {
		if (rc == STORE_NOTFOUND)
			store_set_error(&s->base, "no such %s: %s",
					which == Q_MAILBOX_DELETE ? "mailbox" : "alias", address);
		goto out;
	}
	if (!(stmt = stmt_get(s, which))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	rc = sq_exec(s, stmt, "remove");
out:
	return sq_tx_end(s, rc);
}

static int sq_mailbox_remove(struct store *st, const char *address)
{
	return remove_name(to_sq(st), address, Q_MAILBOX_DELETE);
}

static int sq_alias_remove(struct store *st, const char *alias)
{
	return remove_name(to_sq(st), alias, Q_ALIAS_DELETE);
}

static int sq_mailbox_list(struct store *st, const char *domain, store_mailbox_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	struct store_mailbox m;
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if (domain && (rc = domain_id(s, domain, &id)))
		return rc;
	/* Two cache slots for one text, so a domain walk can nest in a full
	 * one. */
	if (!(stmt = stmt_get(s, domain ? Q_MAILBOX_LIST : Q_MAILBOX_LIST_ALL)))
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, domain);
	while ((rc = sq_step(s, stmt, "mailbox list")) > 0) {
		int cbrc;

		memset(&m, 0, sizeof(m));
		m.id = sqlite3_column_int64(stmt, 0);
		(void)str_fmt(m.address, sizeof(m.address), "%s@%s", sq_col_text(stmt, 1),
			      sq_col_text(stmt, 2));
		if (sqlite3_column_type(stmt, 3) != SQLITE_NULL)
			(void)str_fmt(m.target, sizeof(m.target), "%s@%s", sq_col_text(stmt, 3),
				      sq_col_text(stmt, 4));
		if ((cbrc = cb(&m, arg))) {
			rc = store_cb_result(cbrc);
			break;
		}
	}
	sqlite3_reset(stmt);
	return rc;
}

static int sq_alias_add(struct store *st, const char *alias, const char *mailbox)
{
	struct sq *s = to_sq(st);
	char local[STORE_ADDR_LEN], key[STORE_ADDR_LEN], mlocal[STORE_ADDR_LEN],
	    mkey[STORE_ADDR_LEN];
	sqlite3_stmt *stmt;
	int64_t dom, mdom, mb, other;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = addr_parts(s, mailbox, mlocal, sizeof(mlocal), mkey, sizeof(mkey), &mdom)))
		goto out;
	if ((rc = mailbox_find(s, mdom, mkey, &mb))) {
		if (rc == STORE_NOTFOUND)
			store_set_error(st, "no such mailbox: %s", mailbox);
		goto out;
	}
	if ((rc = addr_parts(s, alias, local, sizeof(local), key, sizeof(key), &dom)))
		goto out;
	rc = mailbox_find(s, dom, key, &other);
	if (rc == STORE_OK) {
		store_set_error(st, "%s exists as a mailbox", alias);
		rc = STORE_EXISTS;
		goto out;
	}
	if (rc != STORE_NOTFOUND)
		goto out;
	if (!(stmt = stmt_get(s, Q_ALIAS_INSERT))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, dom);
	sq_bind_text(stmt, 2, local);
	sq_bind_text(stmt, 3, key);
	sqlite3_bind_int64(stmt, 4, mb);
	sqlite3_bind_int64(stmt, 5, time_now());
	rc = sq_exec(s, stmt, "alias add");
	if (rc == STORE_EXISTS)
		store_set_error(st, "alias %s exists", alias);
out:
	return sq_tx_end(s, rc);
}

/* Sets out to LOCAL with the mailbox of row columns (id_col, local_col)
 * and domain name dom. */
static void rcpt_local(struct store_rcpt *out, sqlite3_stmt *row, int id_col, int local_col,
		       const char *dom)
{
	out->cls = STORE_RCPT_LOCAL;
	out->mailbox_id = sqlite3_column_int64(row, id_col);
	(void)str_fmt(out->mailbox, sizeof(out->mailbox), "%s@%s", sq_col_text(row, local_col),
		      dom);
}

/* Exact mailbox, then alias, then catch-all; UNKNOWN_MAILBOX for a hosted
 * domain, FOREIGN_DOMAIN otherwise. */
static int sq_rcpt_lookup(struct store *st, const char *address, struct store_rcpt *out)
{
	struct sq *s = to_sq(st);
	char local[STORE_ADDR_LEN], key[STORE_ADDR_LEN], dom[STORE_DOMAIN_LEN];
	sqlite3_stmt *ds, *stmt;
	int rc;

	if ((rc = store_addr_split(address, local, sizeof(local), dom, sizeof(dom))) ||
	    (rc = store_local_key(local, key, sizeof(key))))
		return rc;
	if (!(ds = stmt_get(s, Q_DOMAIN_LOOKUP)))
		return STORE_TEMPFAIL;
	sq_bind_text(ds, 1, dom);
	rc = sq_step(s, ds, "rcpt lookup");
	if (rc <= 0) {
		if (rc == 0)
			out->cls = STORE_RCPT_FOREIGN_DOMAIN;
		return rc;
	}
	out->domain_id = sqlite3_column_int64(ds, 0);
	out->require_tls = sqlite3_column_int(ds, 3) != 0;

	if (!(stmt = stmt_get(s, Q_MAILBOX_FIND))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, out->domain_id);
	sq_bind_text(stmt, 2, key);
	if ((rc = sq_step(s, stmt, "rcpt lookup")) > 0) {
		rcpt_local(out, stmt, 0, 1, dom);
		sqlite3_reset(stmt);
		rc = STORE_OK;
		goto out;
	}
	if (rc < 0)
		goto out;

	if (!(stmt = stmt_get(s, Q_ALIAS_FIND))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, out->domain_id);
	sq_bind_text(stmt, 2, key);
	if ((rc = sq_step(s, stmt, "rcpt lookup")) > 0) {
		char tdom[STORE_DOMAIN_LEN];

		sq_col_copy(stmt, 3, tdom, sizeof(tdom));
		rcpt_local(out, stmt, 1, 2, tdom);
		sqlite3_reset(stmt);
		rc = STORE_OK;
		goto out;
	}
	if (rc < 0)
		goto out;

	if (sqlite3_column_type(ds, 1) != SQLITE_NULL)
		rcpt_local(out, ds, 1, 2, dom);
	else
		out->cls = STORE_RCPT_UNKNOWN_MAILBOX;
	rc = STORE_OK;
out:
	sqlite3_reset(ds);
	return rc;
}

/* ---- queue ------------------------------------------------------------ */

int sq_log_insert(struct sq *s, int64_t ts, const char *qid, const char *event, const char *sender,
		  const char *rcpt, const char *detail)
{
	sqlite3_stmt *stmt = stmt_get(s, Q_LOG_INSERT);

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, ts);
	sq_bind_text(stmt, 2, qid ? qid : "");
	sq_bind_text(stmt, 3, event);
	sq_bind_text(stmt, 4, sender ? sender : "");
	sq_bind_text(stmt, 5, rcpt ? rcpt : "");
	sq_bind_text(stmt, 6, detail ? detail : "");
	return sq_exec(s, stmt, "log");
}

int sq_message_insert(struct sq *s, const struct store_message *m, const char *queue_id,
		      const void *data, size_t len, int64_t *id)
{
	sqlite3_stmt *stmt;
	int rc;

	if (!(stmt = stmt_get(s, Q_MSG_INSERT)))
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, queue_id);
	sq_bind_text(stmt, 2, m->sender);
	sq_bind_text(stmt, 3, m->client_addr ? m->client_addr : "");
	sq_bind_text(stmt, 4, m->helo ? m->helo : "");
	sqlite3_bind_int64(stmt, 5, m->received_at);
	sqlite3_bind_int64(stmt, 6, (int64_t)m->flags);
	sqlite3_bind_int64(stmt, 7, (int64_t)len);
	sqlite3_bind_blob64(stmt, 8, len ? data : "", len, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 9, MSG_FORMAT_VERSION);
	if ((rc = sq_exec(s, stmt, "message insert"))) {
		if (rc == STORE_EXISTS)
			store_set_error(&s->base, "queue id %s already stored", queue_id);
		return rc;
	}
	*id = sqlite3_last_insert_rowid(s->db);
	return STORE_OK;
}

int sq_rcpt_insert(struct sq *s, int64_t message_id, const char *address, int64_t mailbox_id,
		   int64_t now)
{
	sqlite3_stmt *stmt = stmt_get(s, Q_RCPT_INSERT);

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, message_id);
	sq_bind_text(stmt, 2, address);
	if (mailbox_id > 0)
		sqlite3_bind_int64(stmt, 3, mailbox_id);
	else
		sqlite3_bind_null(stmt, 3);
	sqlite3_bind_int64(stmt, 4, now);
	return sq_exec(s, stmt, "recipient insert");
}

void sq_addr_fold(const char *address, char *out, size_t outlen)
{
	const char *at;

	/* The domain part lower-cased, as everywhere in the store. */
	(void)str_copy(out, outlen, address);
	if ((at = strrchr(out, '@')))
		str_lower_ascii(out + (at - out));
}

/* Queues the recipients of m that get one copy (tagged or not). */
static int commit_copy(struct sq *s, const struct store_message *m, bool tagged, int64_t now)
{
	const char *qid = tagged ? m->tagged_queue_id : m->queue_id;
	char addr[STORE_ADDR_LEN], detail[STORE_REPLY_LEN];
	int64_t id = 0;
	int rc;

	for (size_t j = 0; j < m->nrcpts; j++) {
		const struct store_msg_rcpt *r = &m->rcpts[j];

		if (r->quarantine_until > 0 || r->tagged != tagged)
			continue;
		if (id == 0) {
			if (tagged && !m->tagged_data) {
				store_set_error(&s->base, "tagged recipient without a tagged copy");
				return STORE_INVALID;
			}
			rc = tagged
				 ? sq_message_insert(s, m, qid, m->tagged_data, m->tagged_len, &id)
				 : sq_message_insert(s, m, qid, m->data, m->len, &id);
			if (rc)
				return rc;
			snprintf(detail, sizeof(detail), "size=%zu client=%s helo=%s%s%s%s%s",
				 tagged ? m->tagged_len : m->len,
				 m->client_addr ? m->client_addr : "", m->helo ? m->helo : "",
				 m->tls && m->tls[0] ? " tls=" : "",
				 m->tls && m->tls[0] ? m->tls : "",
				 tagged ? " tagged-copy-of=" : "", tagged ? m->queue_id : "");
		}
		sq_addr_fold(r->address, addr, sizeof(addr));
		if ((rc = sq_rcpt_insert(s, id, addr, r->mailbox_id, now)))
			return rc;
		if ((rc = sq_log_insert(s, m->received_at ? m->received_at : now, qid, "received",
					m->sender, addr, detail)))
			return rc;
	}
	return STORE_OK;
}

static int commit_one(struct sq *s, const struct store_message *m, int64_t now)
{
	int rc;

	if ((rc = commit_copy(s, m, false, now)) || (rc = commit_copy(s, m, true, now)))
		return rc;
	return sq_quarantine_hold(s, m, now);
}

static int sq_messages_commit(struct store *st, const struct store_message *const *msgs, size_t n)
{
	struct sq *s = to_sq(st);
	int64_t now = time_now();
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	for (size_t i = 0; i < n && rc == STORE_OK; i++)
		rc = commit_one(s, msgs[i], now);
	return sq_tx_end(s, rc);
}

static int sq_queue_claim(struct store *st, const char *owner, int64_t now, int64_t lease,
			  struct store_delivery *out, size_t max, size_t *n)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	size_t got = 0;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = stmt_get(s, Q_CLAIM_SELECT))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, now);
	sqlite3_bind_int64(stmt, 2, (int64_t)max);
	/* Read all rows first, then lease them: no update under a live
	 * cursor. */
	while (got < max && (rc = sq_step(s, stmt, "claim")) > 0) {
		struct store_delivery *d = &out[got++];
		char local[STORE_ADDR_LEN];

		memset(d, 0, sizeof(*d));
		d->rcpt_id = sqlite3_column_int64(stmt, 0);
		d->message_id = sqlite3_column_int64(stmt, 1);
		sq_col_copy(stmt, 2, d->queue_id, sizeof(d->queue_id));
		sq_col_copy(stmt, 3, d->sender, sizeof(d->sender));
		sq_col_copy(stmt, 4, d->rcpt, sizeof(d->rcpt));
		if (store_addr_split(d->rcpt, local, sizeof(local), d->domain, sizeof(d->domain)))
			d->domain[0] = '\0';
		d->flags = (unsigned)sqlite3_column_int64(stmt, 5);
		d->attempts = sqlite3_column_int(stmt, 6);
		d->received_at = sqlite3_column_int64(stmt, 7);
		d->size = sqlite3_column_int64(stmt, 8);
	}
	sqlite3_reset(stmt);
	if (rc < 0)
		goto out;
	rc = STORE_OK;
	for (size_t i = 0; i < got; i++) {
		if (!(stmt = stmt_get(s, Q_CLAIM_UPDATE))) {
			rc = STORE_TEMPFAIL;
			goto out;
		}
		sqlite3_bind_int64(stmt, 1, out[i].rcpt_id);
		sq_bind_text(stmt, 2, owner);
		sqlite3_bind_int64(stmt, 3, now + lease);
		sqlite3_bind_int64(stmt, 4, now);
		if ((rc = sq_exec(s, stmt, "claim")))
			goto out;
	}
out:
	rc = sq_tx_end(s, rc);
	*n = rc == STORE_OK ? got : 0;
	return rc;
}

static int sq_message_load(struct store *st, int64_t message_id, void **data, size_t *len)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = stmt_get(s, Q_MSG_LOAD);
	const void *blob;
	size_t n;
	void *buf;
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, message_id);
	rc = sq_step(s, stmt, "message load");
	if (rc <= 0) {
		if (rc == 0)
			store_set_error(st, "no message %lld", (long long)message_id);
		return rc < 0 ? rc : STORE_NOTFOUND;
	}
	blob = sqlite3_column_blob(stmt, 0);
	n = (size_t)sqlite3_column_bytes(stmt, 0);
	if (!blob && n == 0 && sqlite3_errcode(s->db) == SQLITE_NOMEM) {
		rc = sq_fail(s, SQLITE_NOMEM, "message load");
		goto out;
	}
	buf = malloc(n ? n : 1);
	if (!buf) {
		store_set_error(st, "message load: out of memory (%zu bytes)", n);
		rc = STORE_TEMPFAIL;
		goto out;
	}
	if (n)
		memcpy(buf, blob, n);
	*data = buf;
	*len = n;
	rc = STORE_OK;
out:
	sqlite3_reset(stmt);
	return rc;
}

/* Applies one outcome. *msg_id gets the message it belongs to, or 0 when
 * the recipient is gone or already final (a late report after a lease
 * expiry: the first final answer stands). */
static int record_one(struct sq *s, const struct store_outcome *o, int64_t now, int64_t *msg_id)
{
	static const char *const kinds[] = {
	    [STORE_DELIVERED] = "delivered",
	    [STORE_DEFERRED] = "deferred",
	    [STORE_BOUNCED] = "bounced",
	};
	char qid[QUEUE_ID_LEN + 1], sender[STORE_ADDR_LEN], rcpt[STORE_ADDR_LEN];
	char detail[STORE_REPLY_LEN];
	const char *reply = o->reply ? o->reply : "";
	sqlite3_stmt *stmt;
	int64_t mid;
	int rc;

	*msg_id = 0;
	if (!(stmt = stmt_get(s, Q_RCPT_GET)))
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, o->rcpt_id);
	if ((rc = sq_step(s, stmt, "record")) <= 0)
		return rc; /* gone: nothing to record */
	mid = sqlite3_column_int64(stmt, 0);
	if (strcmp(sq_col_text(stmt, 1), "queued") != 0) {
		sqlite3_reset(stmt);
		return STORE_OK;
	}
	sq_col_copy(stmt, 2, rcpt, sizeof(rcpt));
	sq_col_copy(stmt, 3, qid, sizeof(qid));
	sq_col_copy(stmt, 4, sender, sizeof(sender));
	sqlite3_reset(stmt);

	if (o->host && o->host[0])
		snprintf(detail, sizeof(detail), "%s: %s", o->host, reply);
	else
		snprintf(detail, sizeof(detail), "%s", reply);
	if (!(stmt = stmt_get(s, Q_RCPT_UPDATE)))
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, o->rcpt_id);
	sq_bind_text(stmt, 2, o->kind == STORE_DEFERRED ? "queued" : kinds[o->kind]);
	sqlite3_bind_int64(stmt, 3, o->kind == STORE_DEFERRED ? o->next_attempt : now);
	sq_bind_text(stmt, 4, detail);
	sqlite3_bind_int64(stmt, 5, now);
	if ((rc = sq_exec(s, stmt, "record")))
		return rc;
	if ((rc = sq_log_insert(s, now, qid, kinds[o->kind], sender, rcpt, detail)))
		return rc;
	*msg_id = mid;
	return STORE_OK;
}

static int sq_queue_record(struct store *st, const struct store_outcome *o, size_t n)
{
	struct sq *s = to_sq(st);
	int64_t now = time_now(), mid;
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = record_one(s, &o[i], now, &mid)))
			goto out;
		if (!mid || o[i].kind == STORE_DEFERRED)
			continue;
		/* Removes the message (recipients cascade) once none is
		 * queued; its log rows stay. */
		if (!(stmt = stmt_get(s, Q_MSG_DELETE_IF_DONE))) {
			rc = STORE_TEMPFAIL;
			goto out;
		}
		sqlite3_bind_int64(stmt, 1, mid);
		if ((rc = sq_exec(s, stmt, "record")))
			goto out;
	}
out:
	if (rc == STORE_EXISTS)
		rc = STORE_TEMPFAIL;
	return sq_tx_end(s, rc);
}

static int release(struct store *st, int q, const char *owner)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = stmt_get(s, q))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, owner);
	sqlite3_bind_int64(stmt, 2, time_now());
	rc = sq_exec(s, stmt, "release");
out:
	return sq_tx_end(s, rc);
}

static int sq_queue_release(struct store *st, const char *owner)
{
	return release(st, Q_RELEASE, owner);
}

static int sq_queue_release_node(struct store *st, const char *node)
{
	return release(st, Q_RELEASE_NODE, node);
}

static const char *state_name(const char *db)
{
	if (!strcmp(db, "delivered"))
		return "delivered";
	if (!strcmp(db, "bounced"))
		return "bounced";
	return "queued";
}

static int sq_queue_list(struct store *st, const char *queue_id, store_queue_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = stmt_get(s, queue_id ? Q_QUEUE_LIST_ONE : Q_QUEUE_LIST_ALL);
	struct store_queue_entry e;
	int64_t now = time_now();
	int rc, rows = 0;

	if (!stmt)
		return STORE_TEMPFAIL;
	if (queue_id)
		sq_bind_text(stmt, 1, queue_id);
	while ((rc = sq_step(s, stmt, "queue list")) > 0) {
		int cbrc;

		rows++;
		memset(&e, 0, sizeof(e));
		sq_col_copy(stmt, 0, e.queue_id, sizeof(e.queue_id));
		sq_col_copy(stmt, 1, e.sender, sizeof(e.sender));
		sq_col_copy(stmt, 2, e.rcpt, sizeof(e.rcpt));
		e.state = state_name(sq_col_text(stmt, 3));
		e.attempts = sqlite3_column_int(stmt, 4);
		e.received_at = sqlite3_column_int64(stmt, 5);
		e.next_attempt = sqlite3_column_int64(stmt, 6);
		e.size = sqlite3_column_int64(stmt, 7);
		sq_col_copy(stmt, 8, e.last_reply, sizeof(e.last_reply));
		e.leased = sqlite3_column_type(stmt, 9) != SQLITE_NULL &&
			   sqlite3_column_int64(stmt, 10) > now;
		if ((cbrc = cb(&e, arg))) {
			rc = store_cb_result(cbrc);
			break;
		}
	}
	sqlite3_reset(stmt);
	if (rc == STORE_OK && queue_id && rows == 0) {
		store_set_error(st, "no message %s in the queue", queue_id);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

static int message_id(struct sq *s, const char *queue_id, int64_t *id)
{
	int rc = lookup_id(s, Q_MSG_ID, queue_id, id);

	if (rc == STORE_NOTFOUND)
		store_set_error(&s->base, "no message %s in the queue", queue_id);
	return rc;
}

static int sq_queue_retry(struct store *st, const char *queue_id, int64_t now, size_t *n)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (queue_id) {
		if ((rc = message_id(s, queue_id, &id)))
			goto out;
		if (!(stmt = stmt_get(s, Q_RETRY_ONE))) {
			rc = STORE_TEMPFAIL;
			goto out;
		}
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, now);
	} else {
		if (!(stmt = stmt_get(s, Q_RETRY_ALL))) {
			rc = STORE_TEMPFAIL;
			goto out;
		}
		sqlite3_bind_int64(stmt, 1, now);
	}
	if ((rc = sq_exec(s, stmt, "retry")))
		goto out;
	*n = (size_t)sqlite3_changes(s->db);
out:
	rc = sq_tx_end(s, rc);
	if (rc)
		*n = 0;
	return rc;
}

static int sq_queue_delete(struct store *st, const char *queue_id)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = message_id(s, queue_id, &id)))
		goto out;
	if (!(stmt = stmt_get(s, Q_DELETE_LOG))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, time_now());
	if ((rc = sq_exec(s, stmt, "queue delete")))
		goto out;
	if (!(stmt = stmt_get(s, Q_MSG_DELETE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	rc = sq_exec(s, stmt, "queue delete");
out:
	if (rc == STORE_EXISTS)
		rc = STORE_TEMPFAIL;
	return sq_tx_end(s, rc);
}

static int sq_queue_count(struct store *st, int64_t *n)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = stmt_get(s, Q_QUEUE_COUNT);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	if ((rc = sq_step(s, stmt, "queue count")) <= 0)
		return rc < 0 ? rc : STORE_TEMPFAIL;
	*n = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return STORE_OK;
}

/* ---- message log ------------------------------------------------------ */

static int sq_log_add(struct store *st, const struct store_log_entry *e)
{
	struct sq *s = to_sq(st);
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	rc = sq_log_insert(s, e->ts ? e->ts : time_now(), e->queue_id, e->event, e->sender, e->rcpt,
			   e->detail);
	if (rc == STORE_EXISTS)
		rc = STORE_TEMPFAIL;
	return sq_tx_end(s, rc);
}

/* "%needle%" with LIKE's wildcards in needle escaped by '\'. */
int sq_like_pattern(const char *needle, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen < 3)
		return -ENAMETOOLONG;
	out[o++] = '%';
	for (const char *p = needle; *p; p++) {
		if (o + 4 > outlen)
			return -ENAMETOOLONG;
		if (*p == '%' || *p == '_' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '%';
	out[o] = '\0';
	return 0;
}

static int sq_log_search(struct store *st, const struct store_log_query *q, store_log_cb cb,
			 void *arg)
{
	struct sq *s = to_sq(st);
	char sender[2 * STORE_ADDR_LEN + 3], rcpt[2 * STORE_ADDR_LEN + 3];
	struct store_log_entry e;
	sqlite3_stmt *stmt;
	int rc;

	if ((q->sender && sq_like_pattern(q->sender, sender, sizeof(sender)) < 0) ||
	    (q->rcpt && sq_like_pattern(q->rcpt, rcpt, sizeof(rcpt)) < 0)) {
		store_set_error(st, "search text too long");
		return STORE_INVALID;
	}
	if (!(stmt = stmt_get(s, q->queue_id ? Q_LOG_SEARCH_QID : Q_LOG_SEARCH)))
		return STORE_TEMPFAIL;
	if (q->queue_id)
		sq_bind_text(stmt, 1, q->queue_id);
	sq_bind_text(stmt, 2, q->sender ? sender : NULL);
	sq_bind_text(stmt, 3, q->rcpt ? rcpt : NULL);
	sqlite3_bind_int64(stmt, 4, q->since);
	sqlite3_bind_int64(stmt, 5, q->limit ? (int64_t)q->limit : 1000);
	while ((rc = sq_step(s, stmt, "log search")) > 0) {
		int cbrc;

		e.ts = sqlite3_column_int64(stmt, 0);
		e.queue_id = sq_col_text(stmt, 1);
		e.event = sq_col_text(stmt, 2);
		e.sender = sq_col_text(stmt, 3);
		e.rcpt = sq_col_text(stmt, 4);
		e.detail = sq_col_text(stmt, 5);
		if ((cbrc = cb(&e, arg))) {
			rc = store_cb_result(cbrc);
			break;
		}
	}
	sqlite3_reset(stmt);
	return rc;
}

/* Reads one reputation row into r (zeros when absent), decayed to now. */
static int rep_read(struct sq *s, const char *key, int64_t now, int64_t half_life,
		    struct store_reputation *r)
{
	sqlite3_stmt *stmt = stmt_get(s, Q_REP_GET);
	int rc;

	memset(r, 0, sizeof(*r));
	(void)str_copy(r->key, sizeof(r->key), key);
	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, key);
	rc = sq_step(s, stmt, "reputation get");
	if (rc > 0) {
		r->updated_at = sqlite3_column_int64(stmt, 2);
		r->spam =
		    store_rep_decay(sqlite3_column_double(stmt, 0), r->updated_at, now, half_life);
		r->ham =
		    store_rep_decay(sqlite3_column_double(stmt, 1), r->updated_at, now, half_life);
		r->action = (enum store_rep_action)sqlite3_column_int(stmt, 3);
		sq_col_copy(stmt, 4, r->note, sizeof(r->note));
		rc = STORE_OK;
	}
	sqlite3_reset(stmt);
	return rc < 0 ? rc : STORE_OK;
}

static int sq_reputation_get(struct store *st, const char *const *keys, size_t n, int64_t now,
			     int64_t half_life, struct store_reputation *out)
{
	struct sq *s = to_sq(st);
	int rc = STORE_OK;

	for (size_t i = 0; i < n && rc == STORE_OK; i++)
		rc = rep_read(s, keys[i], now, half_life, &out[i]);
	return rc;
}

static int sq_reputation_record(struct store *st, const char *const *keys, size_t n, bool spam,
				int64_t now, int64_t half_life)
{
	struct sq *s = to_sq(st);
	struct store_reputation r;
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = rep_read(s, keys[i], now, half_life, &r)))
			goto out;
		if (!(stmt = stmt_get(s, Q_REP_PUT))) {
			rc = STORE_TEMPFAIL;
			goto out;
		}
		sq_bind_text(stmt, 1, keys[i]);
		sqlite3_bind_double(stmt, 2, r.spam + (spam ? 1.0 : 0.0));
		sqlite3_bind_double(stmt, 3, r.ham + (spam ? 0.0 : 1.0));
		sqlite3_bind_int64(stmt, 4, now);
		if ((rc = sq_exec(s, stmt, "reputation record")))
			goto out;
	}
out:
	return sq_tx_end(s, rc);
}

static int sq_reputation_set_action(struct store *st, const char *key, enum store_rep_action a,
				    const char *note, int64_t now)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = stmt_get(s, Q_REP_ACTION))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, key);
	sqlite3_bind_int64(stmt, 2, now);
	sqlite3_bind_int(stmt, 3, (int)a);
	sq_bind_text(stmt, 4, note);
	rc = sq_exec(s, stmt, "reputation action");
out:
	return sq_tx_end(s, rc);
}

static int sq_reputation_remove(struct store *st, const char *key)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = stmt_get(s, Q_REP_DELETE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, key);
	rc = sq_exec(s, stmt, "reputation remove");
	if (rc == STORE_OK && sqlite3_changes(s->db) == 0) {
		store_set_error(st, "no reputation entry for %s", key);
		rc = STORE_NOTFOUND;
	}
out:
	return sq_tx_end(s, rc);
}

static int sq_reputation_list(struct store *st, int64_t now, int64_t half_life, store_rep_cb cb,
			      void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = stmt_get(s, Q_REP_LIST);
	struct store_reputation r;
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	while ((rc = sq_step(s, stmt, "reputation list")) > 0) {
		int cbrc;

		memset(&r, 0, sizeof(r));
		sq_col_copy(stmt, 0, r.key, sizeof(r.key));
		r.updated_at = sqlite3_column_int64(stmt, 3);
		r.spam =
		    store_rep_decay(sqlite3_column_double(stmt, 1), r.updated_at, now, half_life);
		r.ham =
		    store_rep_decay(sqlite3_column_double(stmt, 2), r.updated_at, now, half_life);
		r.action = (enum store_rep_action)sqlite3_column_int(stmt, 4);
		sq_col_copy(stmt, 5, r.note, sizeof(r.note));
		if ((cbrc = cb(&r, arg))) {
			rc = store_cb_result(cbrc);
			break;
		}
	}
	sqlite3_reset(stmt);
	return rc;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .ping = sq_ping,
    .account_ensure = sq_account_ensure,
    .domain_add = sq_domain_add,
    .domain_remove = sq_domain_remove,
    .domain_get = sq_domain_get,
    .domain_list = sq_domain_list,
    .domain_set_routes = sq_domain_set_routes,
    .domain_set_catchall = sq_domain_set_catchall,
    .domain_set_require_tls = sq_domain_set_require_tls,
    .reputation_get = sq_reputation_get,
    .reputation_record = sq_reputation_record,
    .reputation_set_action = sq_reputation_set_action,
    .reputation_remove = sq_reputation_remove,
    .reputation_list = sq_reputation_list,
    .mailbox_add = sq_mailbox_add,
    .mailbox_remove = sq_mailbox_remove,
    .mailbox_list = sq_mailbox_list,
    .alias_add = sq_alias_add,
    .alias_remove = sq_alias_remove,
    .rcpt_lookup = sq_rcpt_lookup,
    .messages_commit = sq_messages_commit,
    .queue_claim = sq_queue_claim,
    .message_load = sq_message_load,
    .queue_record = sq_queue_record,
    .queue_release = sq_queue_release,
    .queue_release_node = sq_queue_release_node,
    .queue_list = sq_queue_list,
    .queue_retry = sq_queue_retry,
    .queue_delete = sq_queue_delete,
    .queue_count = sq_queue_count,
    .log_add = sq_log_add,
    .log_search = sq_log_search,
    .policy = &sq_policy_ops,
    .quarantine = &sq_quarantine_ops,
    .bayes = &sq_bayes_ops,
    .rel = &sq_rel_ops,
    .dkim = &sq_dkim_ops,
    .dmarc = &sq_dmarc_ops,
};

/* Waiting for another process's write lock. SQLite's own busy time-out
 * sleeps in steps of up to 100 ms, so under contention from several
 * workers a commit could sit idle long after the lock was free. Poll
 * finely at first (most transactions here take well under a millisecond),
 * then back off, and give up after busy_timeout. */
static int busy_wait(void *arg, int count)
{
	struct sq *s = arg;
	int64_t now = time_mono_us();

	if (count == 0)
		s->busy_since_us = now;
	if (now - s->busy_since_us >= s->busy_timeout_us)
		return 0;
	usleep(count < 20 ? 100 : count < 200 ? 500 : 2000);
	return 1;
}

/* Runs a PRAGMA and checks that its one-row answer reads want (NULL: any). */
static int pragma(struct sq *s, const char *sql, const char *want)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);

	if (rc != SQLITE_OK)
		return sq_fail(s, rc, sql);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = sq_fail(s, rc, sql);
		goto out;
	}
	if (want && (rc != SQLITE_ROW || strcasecmp(sq_col_text(stmt, 0), want) != 0)) {
		store_set_error(&s->base, "%s: answered '%s', want '%s'", sql,
				rc == SQLITE_ROW ? sq_col_text(stmt, 0) : "", want);
		rc = STORE_TEMPFAIL;
		goto out;
	}
	rc = STORE_OK;
out:
	sqlite3_finalize(stmt);
	return rc;
}

int store_sqlite_open(const char *path, int busy_timeout_ms, struct store **out, char *err,
		      size_t errlen)
{
	struct sq *s = calloc(1, sizeof(*s));
	int rc, fd;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return STORE_TEMPFAIL;
	}
	s->base.ops = &sqlite_ops;
	/* The store holds mail: create it private to its owner and group.
	 * SQLite gives the -wal and -shm files the same mode. Errors are left
	 * to sqlite3_open_v2(), which words them better. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd >= 0)
		close(fd);
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				 SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rc = STORE_TEMPFAIL;
		goto out;
	}
	s->busy_timeout_us = (int64_t)busy_timeout_ms * 1000;
	sqlite3_busy_handler(s->db, busy_wait, s);
	/* WAL: readers never block the writer; FULL: the WAL is fsynced at
	 * every COMMIT, which is what makes a 250 safe. */
	if ((rc = pragma(s, "PRAGMA journal_mode = WAL", "wal")) ||
	    (rc = pragma(s, "PRAGMA synchronous = FULL", NULL)) ||
	    (rc = pragma(s, "PRAGMA foreign_keys = ON", NULL)) ||
	    (rc = pragma(s, "PRAGMA foreign_keys", "1")) ||
	    /* after a burst, give the WAL file back down to 64 MiB */
	    (rc = pragma(s, "PRAGMA journal_size_limit = 67108864", NULL)) ||
	    /* reads through the page cache mapping, not pread() copies: the
	     * Bayes tokens are looked up by the thousand per message */
	    (rc = pragma(s, "PRAGMA mmap_size = 268435456", NULL))) {
		snprintf(err, errlen, "%s: %s", path, s->base.err);
		goto out;
	}
	*out = &s->base;
	return STORE_OK;
out:
	sqlite3_close_v2(s->db);
	free(s);
	return rc;
}
