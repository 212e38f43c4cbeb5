/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_private: what the files of the SQLite backend share.
 *
 * The backend is one connection struct (struct sq) and one file per
 * feature: store_sqlite.c holds the connection, the migrations, tenancy,
 * the queue and the message log; store_sqlite_<feature>.c holds one
 * feature's schema and operations (policy, quarantine, bayes, ...), each
 * exporting its ops table (declared below) and its schema text, which
 * store_sqlite.c applies as a numbered migration.
 *
 * Statements: the core keeps its own table (stmt[]); a feature asks for
 * its statements with sq_xstmt(s, feature, id, sql): prepared once per
 * connection, then handed back reset and unbound. The same re-entrancy
 * rule holds for both: a statement still being stepped is never handed out
 * twice (NULL with the error set).
 *
 * Helpers follow the store's return convention: STORE_OK (0), a negative
 * store code, or (sq_step) 1 for a row.
 */
#ifndef MXG_STORE_SQLITE_PRIVATE_H
#define MXG_STORE_SQLITE_PRIVATE_H

#include <sqlite3.h>

#include "store/store_private.h"

#define SQ_CORE_STMT_MAX 96
#define SQ_FEATURE_STMT_MAX 48

enum sq_feature { SQF_POLICY, SQF_QUARANTINE, SQF_BAYES, SQF_REL, SQF_DKIM, SQF_DMARC, SQF_COUNT };

struct sq {
	struct store base; /* first: a struct store * is a struct sq * */
	sqlite3 *db;
	sqlite3_stmt *stmt[SQ_CORE_STMT_MAX];
	sqlite3_stmt *xstmt[SQF_COUNT][SQ_FEATURE_STMT_MAX];
	int64_t busy_timeout_us;
	int64_t busy_since_us; /* when the current wait for a lock began */
};

static inline struct sq *to_sq(struct store *st)
{
	return (struct sq *)st;
}

/* Records SQLite's view of the failure of what; returns the store code
 * (STORE_EXISTS for a constraint violation, else STORE_TEMPFAIL). */
int sq_fail(struct sq *s, int rc, const char *what);
/* A feature's cached statement id (< SQ_FEATURE_STMT_MAX) for sql, reset
 * and unbound; NULL (error set) if it cannot be prepared or is in use. */
sqlite3_stmt *sq_xstmt(struct sq *s, enum sq_feature f, int id, const char *sql);
/* Steps stmt: 1 for a row, 0 when done (the statement is then reset),
 * else a negative store code with the statement reset. */
int sq_step(struct sq *s, sqlite3_stmt *stmt, const char *what);
/* Runs a statement whose rows (if any) are ignored: 0 or a store code. */
int sq_exec(struct sq *s, sqlite3_stmt *stmt, const char *what);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (keeps the error text). */
int sq_tx_begin(struct sq *s);
int sq_tx_commit(struct sq *s);
void sq_tx_rollback(struct sq *s);
/* Ends a write transaction: COMMIT when rc is STORE_OK, else ROLLBACK. */
int sq_tx_end(struct sq *s, int rc);
/* Binds v, or NULL when v is NULL. */
int sq_bind_text(sqlite3_stmt *stmt, int i, const char *v);
/* A text column, "" for NULL. */
const char *sq_col_text(sqlite3_stmt *stmt, int i);
/* Copies a text column into a fixed buffer (truncating). */
void sq_col_copy(sqlite3_stmt *stmt, int i, char *dst, size_t dstlen);

/* Core pieces the features reuse (store_sqlite.c). */
int sq_log_insert(struct sq *s, int64_t ts, const char *qid, const char *event, const char *sender,
		  const char *rcpt, const char *detail);
/* A messages row for m under queue_id with data as its body. */
int sq_message_insert(struct sq *s, const struct store_message *m, const char *queue_id,
		      const void *data, size_t len, int64_t *id);
/* A recipients row, queued and due at now. */
int sq_rcpt_insert(struct sq *s, int64_t message_id, const char *address, int64_t mailbox_id,
		   int64_t now);
/* "%needle%" for LIKE ... ESCAPE '\' (%, _ and \ escaped): 0 or
 * -ENAMETOOLONG. */
int sq_like_pattern(const char *needle, char *out, size_t outlen);
/* address with its domain part lower-cased, into out. */
void sq_addr_fold(const char *address, char *out, size_t outlen);
/* Holds m's quarantined recipients (none: nothing to do); inside the
 * caller's transaction (store_sqlite_quarantine.c). */
int sq_quarantine_hold(struct sq *s, const struct store_message *m, int64_t now);

/* Features: their schema (one migration each) and their operations. */
extern const char sq_schema_policy[];
extern const char sq_schema_quarantine[];
extern const char sq_schema_bayes[];
extern const char sq_schema_rel[];
extern const char sq_schema_dkim[];
extern const char sq_schema_dmarc[];

extern const struct store_policy_ops sq_policy_ops;
extern const struct store_quarantine_ops sq_quarantine_ops;
extern const struct store_bayes_ops sq_bayes_ops;
extern const struct store_rel_ops sq_rel_ops;
extern const struct store_dkim_ops sq_dkim_ops;
extern const struct store_dmarc_ops sq_dmarc_ops;

/* Closes a feature's cached statements (done by sq_close). */
void sq_xstmt_close(struct sq *s);

#endif
