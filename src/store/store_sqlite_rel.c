/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_rel: the SQLite side of store_rel.h (schema and operations).
 *
 * One row per pair, keyed by the canonical addresses (store_rel.c). The
 * domains of both sides are kept in their own columns so that the two
 * questions of a scan, "has anyone here written to that domain" and
 * "which domains does this organisation correspond with", are answered
 * from one index on (local_domain, remote_domain) instead of a scan of
 * every pair. Pairs are not tied to the mailboxes table: history may be
 * imported before a mailbox exists, and the expiry removes what is stale.
 */
#include <string.h>

#include "store/store_sqlite_private.h"

/* Applied once as its numbered migration (store_sqlite.c). Until it has
 * shipped it may still change; after that only a new migration may. */
const char sq_schema_rel[] =
    "CREATE TABLE relationships ("
    " local TEXT NOT NULL,"	    /* our mailbox, canonical (store_rel.h) */
    " remote TEXT NOT NULL,"	    /* the outside address, canonical */
    " local_domain TEXT NOT NULL,"  /* the domain part of local */
    " remote_domain TEXT NOT NULL," /* the domain part of remote */
    " outbound INTEGER NOT NULL DEFAULT 0 CHECK (outbound >= 0),"
    " inbound INTEGER NOT NULL DEFAULT 0 CHECK (inbound >= 0),"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " PRIMARY KEY (local, remote)) WITHOUT ROWID;"
    "CREATE INDEX relationships_domains ON relationships(local_domain, remote_domain);"
    "CREATE INDEX relationships_last_seen ON relationships(last_seen);";

enum {
	R_RECORD,
	R_GET,
	R_LIST,
	R_DOMAIN_GET,
	R_DOMAINS,
	R_REMOVE,
	R_EXPIRE,
};

static const char *const r_sql[] = {
    [R_RECORD] = "INSERT INTO relationships (local, remote, local_domain, remote_domain,"
		 " outbound, inbound, first_seen, last_seen)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
		 " ON CONFLICT (local, remote) DO UPDATE SET outbound = outbound + ?5,"
		 " inbound = inbound + ?6, last_seen = MAX(last_seen, ?7),"
		 " first_seen = MIN(first_seen, ?7)",
    [R_GET] = "SELECT local, remote, outbound, inbound, first_seen, last_seen"
	      " FROM relationships WHERE local = ?1 AND remote = ?2",
    [R_LIST] = "SELECT local, remote, outbound, inbound, first_seen, last_seen"
	       " FROM relationships WHERE local = ?1 ORDER BY last_seen DESC, remote",
    /* the domain itself or a subdomain: "x.vendor.example" ends in ".vendor.example" */
    [R_DOMAIN_GET] = "SELECT COUNT(*), COALESCE(SUM(outbound), 0), COALESCE(SUM(inbound), 0),"
		     " COALESCE(MAX(last_seen), 0) FROM relationships"
		     " WHERE local_domain = ?1 AND (remote_domain = ?2"
		     " OR substr(remote_domain, -length(?3)) = ?3)",
    [R_DOMAINS] = "SELECT remote_domain, MAX(last_seen) AS seen, MAX(local = ?1) AS own"
		  " FROM relationships WHERE local_domain = ?2"
		  " GROUP BY remote_domain ORDER BY own DESC, seen DESC, remote_domain LIMIT ?3",
    [R_REMOVE] = "DELETE FROM relationships WHERE local = ?1 AND remote = ?2",
    [R_EXPIRE] = "DELETE FROM relationships WHERE last_seen < ?1",
};

static sqlite3_stmt *r_stmt(struct sq *s, int id)
{
	return sq_xstmt(s, SQF_REL, id, r_sql[id]);
}

static const char *domain_part(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

static int rel_record(struct store *st, const char *local, enum store_rel_dir dir,
		      const char *const *remotes, size_t n, int64_t now)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!(stmt = r_stmt(s, R_RECORD))) {
			rc = STORE_TEMPFAIL;
			goto out;
		}
		sq_bind_text(stmt, 1, local);
		sq_bind_text(stmt, 2, remotes[i]);
		sq_bind_text(stmt, 3, domain_part(local));
		sq_bind_text(stmt, 4, domain_part(remotes[i]));
		sqlite3_bind_int64(stmt, 5, dir == STORE_REL_OUTBOUND);
		sqlite3_bind_int64(stmt, 6, dir == STORE_REL_INBOUND);
		sqlite3_bind_int64(stmt, 7, now);
		if ((rc = sq_exec(s, stmt, "relationship record")))
			goto out;
	}
out:
	return sq_tx_end(s, rc);
}

static void row_read(sqlite3_stmt *stmt, struct store_rel *r)
{
	memset(r, 0, sizeof(*r));
	sq_col_copy(stmt, 0, r->local, sizeof(r->local));
	sq_col_copy(stmt, 1, r->remote, sizeof(r->remote));
	r->outbound = sqlite3_column_int64(stmt, 2);
	r->inbound = sqlite3_column_int64(stmt, 3);
	r->first_seen = sqlite3_column_int64(stmt, 4);
	r->last_seen = sqlite3_column_int64(stmt, 5);
}

static int rel_get(struct store *st, const char *local, const char *remote, struct store_rel *out)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = r_stmt(s, R_GET);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, local);
	sq_bind_text(stmt, 2, remote);
	rc = sq_step(s, stmt, "relationship get");
	if (rc < 0)
		return rc;
	if (rc == 0) {
		store_set_error(st, "no relationship between %s and %s", local, remote);
		return STORE_NOTFOUND;
	}
	row_read(stmt, out);
	sqlite3_reset(stmt);
	return STORE_OK;
}

static int rel_list(struct store *st, const char *local, store_rel_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = r_stmt(s, R_LIST);
	struct store_rel r;
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, local);
	while ((rc = sq_step(s, stmt, "relationship list")) > 0) {
		int cbrc;

		row_read(stmt, &r);
		if ((cbrc = cb(&r, arg)) != 0) {
			sqlite3_reset(stmt);
			return store_cb_result(cbrc);
		}
	}
	return rc;
}

static int rel_domain_get(struct store *st, const char *local_domain, const char *remote_domain,
			  struct store_rel_counts *out)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = r_stmt(s, R_DOMAIN_GET);
	char dot[STORE_DOMAIN_LEN + 1];
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	if (str_fmt(dot, sizeof(dot), ".%s", remote_domain) < 0) {
		sqlite3_reset(stmt);
		return store_invalid(st, "domain name too long");
	}
	sq_bind_text(stmt, 1, local_domain);
	sq_bind_text(stmt, 2, remote_domain);
	sq_bind_text(stmt, 3, dot);
	rc = sq_step(s, stmt, "relationship domain");
	if (rc < 0)
		return rc;
	if (rc == 0) /* an aggregate always has its row */
		return STORE_OK;
	out->pairs = sqlite3_column_int64(stmt, 0);
	out->outbound = sqlite3_column_int64(stmt, 1);
	out->inbound = sqlite3_column_int64(stmt, 2);
	out->last_seen = sqlite3_column_int64(stmt, 3);
	sqlite3_reset(stmt);
	return STORE_OK;
}

static int rel_domains(struct store *st, const char *local, size_t max, store_rel_domain_cb cb,
		       void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = r_stmt(s, R_DOMAINS);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, local);
	sq_bind_text(stmt, 2, domain_part(local));
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)max);
	while ((rc = sq_step(s, stmt, "relationship domains")) > 0) {
		int cbrc = cb(sq_col_text(stmt, 0), sqlite3_column_int64(stmt, 1), arg);

		if (cbrc != 0) {
			sqlite3_reset(stmt);
			return store_cb_result(cbrc);
		}
	}
	return rc;
}

static int rel_remove(struct store *st, const char *local, const char *remote)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = r_stmt(s, R_REMOVE);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, local);
	sq_bind_text(stmt, 2, remote);
	if ((rc = sq_exec(s, stmt, "relationship remove")))
		return rc;
	if (sqlite3_changes(s->db) == 0) {
		store_set_error(st, "no relationship between %s and %s", local, remote);
		return STORE_NOTFOUND;
	}
	return STORE_OK;
}

static int rel_expire(struct store *st, int64_t before, size_t *n)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = r_stmt(s, R_EXPIRE);
	int rc;

	*n = 0;
	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, before);
	if ((rc = sq_exec(s, stmt, "relationship expire")))
		return rc;
	*n = (size_t)sqlite3_changes(s->db);
	return STORE_OK;
}

const struct store_rel_ops sq_rel_ops = {
    .record = rel_record,
    .get = rel_get,
    .list = rel_list,
    .domain_get = rel_domain_get,
    .domains = rel_domains,
    .remove = rel_remove,
    .expire = rel_expire,
};
