/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_dmarc: the SQLite side of store_dmarc.h (schema and operations).
 *
 * Rows carry their UTC day (ts / 86400) so that the daily job groups by an
 * indexed column. The report claim is the primary key of dmarc_reports:
 * the first INSERT of a report id wins, on every node sharing the store.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_private.h"

/* Applied once as its numbered migration (store_sqlite.c). Until it has
 * shipped it may still change; after that only a new migration may. */
const char sq_schema_dmarc[] =
    "CREATE TABLE dmarc_records ("
    " id INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL,"
    " day INTEGER NOT NULL,"
    " policy_domain TEXT NOT NULL,"
    " header_from TEXT NOT NULL,"
    " rua TEXT NOT NULL,"
    " source_ip TEXT NOT NULL,"
    " disposition TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " dkim_eval TEXT NOT NULL,"
    " spf_eval TEXT NOT NULL,"
    " dkim_domain TEXT NOT NULL,"
    " dkim_selector TEXT NOT NULL,"
    " dkim_result TEXT NOT NULL,"
    " spf_domain TEXT NOT NULL,"
    " spf_scope TEXT NOT NULL,"
    " spf_result TEXT NOT NULL,"
    " p TEXT NOT NULL, sp TEXT NOT NULL, pct INTEGER NOT NULL,"
    " adkim TEXT NOT NULL, aspf TEXT NOT NULL, fo TEXT NOT NULL,"
    " reported INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX dmarc_records_due ON dmarc_records(day, policy_domain) WHERE reported = 0;"
    "CREATE INDEX dmarc_records_ts ON dmarc_records(ts);"
    "CREATE TABLE dmarc_reports ("
    " report_id TEXT PRIMARY KEY,"
    " policy_domain TEXT NOT NULL,"
    " begin_ts INTEGER NOT NULL,"
    " end_ts INTEGER NOT NULL,"
    " queue_id TEXT NOT NULL DEFAULT '',"
    " claimed_at INTEGER NOT NULL,"
    " sent_at INTEGER);";

enum {
	D_RECORD,
	D_DUE,
	D_AGG,
	D_LATEST,
	D_CLAIM,
	D_UNCLAIM,
	D_MARK_ROWS,
	D_MARK_REPORT,
	D_PURGE_ROWS,
	D_PURGE_REPORTS,
};

#define D_GROUP                                                                                    \
	"source_ip, disposition, dkim_eval, spf_eval, header_from, dkim_domain, dkim_selector,"    \
	" dkim_result, spf_domain, spf_scope, spf_result, reason"

static const char *const d_sql[] = {
    [D_RECORD] = "INSERT INTO dmarc_records (ts, day, policy_domain, header_from, rua, source_ip,"
		 " disposition, dkim_eval, spf_eval, dkim_domain, dkim_selector, dkim_result,"
		 " spf_domain, spf_scope, spf_result, p, sp, pct, adkim, aspf, reason, fo)"
		 " VALUES (?1, ?1 / 86400, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
		 " ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    [D_DUE] = "SELECT DISTINCT policy_domain, day FROM dmarc_records WHERE reported = 0"
	      " AND (day + 1) * 86400 <= ?1 ORDER BY day, policy_domain",
    [D_AGG] = "SELECT " D_GROUP ", count(*) FROM dmarc_records WHERE reported = 0"
	      " AND policy_domain = ?1 AND ts BETWEEN ?2 AND ?3 GROUP BY " D_GROUP
	      " ORDER BY count(*) DESC, source_ip",
    [D_LATEST] = "SELECT rua, p, sp, pct, adkim, aspf, fo FROM dmarc_records WHERE reported = 0"
		 " AND policy_domain = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts DESC, id DESC"
		 " LIMIT 1",
    [D_CLAIM] = "INSERT INTO dmarc_reports (report_id, policy_domain, begin_ts, end_ts,"
		" claimed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [D_UNCLAIM] = "DELETE FROM dmarc_reports WHERE report_id = ?1",
    [D_MARK_ROWS] = "UPDATE dmarc_records SET reported = 1 WHERE reported = 0"
		    " AND policy_domain = ?1 AND ts BETWEEN ?2 AND ?3",
    [D_MARK_REPORT] = "UPDATE dmarc_reports SET queue_id = ?2, sent_at = ?3 WHERE report_id = ?1",
    [D_PURGE_ROWS] = "DELETE FROM dmarc_records WHERE ts < ?1",
    [D_PURGE_REPORTS] = "DELETE FROM dmarc_reports WHERE end_ts < ?1",
};

static sqlite3_stmt *d_stmt(struct sq *s, int id)
{
	return sq_xstmt(s, SQF_DMARC, id, d_sql[id]);
}

static int dm_record(struct store *st, const struct store_dmarc_row *r)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = d_stmt(s, D_RECORD))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, r->ts);
	sq_bind_text(stmt, 2, r->policy_domain);
	sq_bind_text(stmt, 3, r->header_from);
	sq_bind_text(stmt, 4, r->rua);
	sq_bind_text(stmt, 5, r->source_ip);
	sq_bind_text(stmt, 6, r->disposition);
	sq_bind_text(stmt, 7, r->dkim_eval);
	sq_bind_text(stmt, 8, r->spf_eval);
	sq_bind_text(stmt, 9, r->dkim_domain);
	sq_bind_text(stmt, 10, r->dkim_selector);
	sq_bind_text(stmt, 11, r->dkim_result);
	sq_bind_text(stmt, 12, r->spf_domain);
	sq_bind_text(stmt, 13, r->spf_scope);
	sq_bind_text(stmt, 14, r->spf_result);
	sq_bind_text(stmt, 15, r->p);
	sq_bind_text(stmt, 16, r->sp);
	sqlite3_bind_int(stmt, 17, r->pct);
	sq_bind_text(stmt, 18, r->adkim);
	sq_bind_text(stmt, 19, r->aspf);
	sq_bind_text(stmt, 20, r->reason);
	sq_bind_text(stmt, 21, r->fo);
	rc = sq_exec(s, stmt, "dmarc record");
out:
	return sq_tx_end(s, rc);
}

static int dm_due(struct store *st, int64_t before, store_dmarc_period_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = d_stmt(s, D_DUE);
	struct store_dmarc_period p;
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, before);
	while ((rc = sq_step(s, stmt, "dmarc due")) > 0) {
		int cbrc;

		memset(&p, 0, sizeof(p));
		sq_col_copy(stmt, 0, p.policy_domain, sizeof(p.policy_domain));
		p.begin = sqlite3_column_int64(stmt, 1) * 86400;
		p.end = p.begin + 86399;
		if ((cbrc = cb(&p, arg)) != 0) {
			sqlite3_reset(stmt);
			return store_cb_result(cbrc);
		}
	}
	return rc;
}

static int dm_aggregate(struct store *st, const char *policy_domain, int64_t begin, int64_t end,
			store_dmarc_agg_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	struct store_dmarc_agg *a = calloc(1, sizeof(*a));
	sqlite3_stmt *stmt;
	int rc;

	if (!a)
		return STORE_TEMPFAIL;
	/* what the domain published last in the period, for every record */
	if (!(stmt = d_stmt(s, D_LATEST))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, policy_domain);
	sqlite3_bind_int64(stmt, 2, begin);
	sqlite3_bind_int64(stmt, 3, end);
	if ((rc = sq_step(s, stmt, "dmarc latest")) <= 0)
		goto out; /* no rows: nothing to walk */
	(void)str_copy(a->r.policy_domain, sizeof(a->r.policy_domain), policy_domain);
	sq_col_copy(stmt, 0, a->r.rua, sizeof(a->r.rua));
	sq_col_copy(stmt, 1, a->r.p, sizeof(a->r.p));
	sq_col_copy(stmt, 2, a->r.sp, sizeof(a->r.sp));
	a->r.pct = sqlite3_column_int(stmt, 3);
	sq_col_copy(stmt, 4, a->r.adkim, sizeof(a->r.adkim));
	sq_col_copy(stmt, 5, a->r.aspf, sizeof(a->r.aspf));
	sq_col_copy(stmt, 6, a->r.fo, sizeof(a->r.fo));
	sqlite3_reset(stmt);

	if (!(stmt = d_stmt(s, D_AGG))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, policy_domain);
	sqlite3_bind_int64(stmt, 2, begin);
	sqlite3_bind_int64(stmt, 3, end);
	while ((rc = sq_step(s, stmt, "dmarc aggregate")) > 0) {
		struct store_dmarc_row *r = &a->r;
		int cbrc;

		sq_col_copy(stmt, 0, r->source_ip, sizeof(r->source_ip));
		sq_col_copy(stmt, 1, r->disposition, sizeof(r->disposition));
		sq_col_copy(stmt, 2, r->dkim_eval, sizeof(r->dkim_eval));
		sq_col_copy(stmt, 3, r->spf_eval, sizeof(r->spf_eval));
		sq_col_copy(stmt, 4, r->header_from, sizeof(r->header_from));
		sq_col_copy(stmt, 5, r->dkim_domain, sizeof(r->dkim_domain));
		sq_col_copy(stmt, 6, r->dkim_selector, sizeof(r->dkim_selector));
		sq_col_copy(stmt, 7, r->dkim_result, sizeof(r->dkim_result));
		sq_col_copy(stmt, 8, r->spf_domain, sizeof(r->spf_domain));
		sq_col_copy(stmt, 9, r->spf_scope, sizeof(r->spf_scope));
		sq_col_copy(stmt, 10, r->spf_result, sizeof(r->spf_result));
		sq_col_copy(stmt, 11, r->reason, sizeof(r->reason));
		a->count = sqlite3_column_int64(stmt, 12);
		if ((cbrc = cb(a, arg)) != 0) {
			sqlite3_reset(stmt);
			rc = store_cb_result(cbrc);
			break;
		}
	}
out:
	free(a);
	return rc;
}

static int dm_claim(struct store *st, const char *report_id, const char *policy_domain,
		    int64_t begin, int64_t end, int64_t now)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = d_stmt(s, D_CLAIM))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, report_id);
	sq_bind_text(stmt, 2, policy_domain);
	sqlite3_bind_int64(stmt, 3, begin);
	sqlite3_bind_int64(stmt, 4, end);
	sqlite3_bind_int64(stmt, 5, now);
	rc = sq_exec(s, stmt, "dmarc claim");
	if (rc == STORE_EXISTS)
		store_set_error(st, "report %s was already made", report_id);
out:
	return sq_tx_end(s, rc);
}

static int dm_unclaim(struct store *st, const char *report_id)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = d_stmt(s, D_UNCLAIM))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, report_id);
	rc = sq_exec(s, stmt, "dmarc unclaim");
out:
	return sq_tx_end(s, rc);
}

static int dm_mark(struct store *st, const char *report_id, const char *policy_domain,
		   int64_t begin, int64_t end, const char *queue_id)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = d_stmt(s, D_MARK_ROWS))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, policy_domain);
	sqlite3_bind_int64(stmt, 2, begin);
	sqlite3_bind_int64(stmt, 3, end);
	if ((rc = sq_exec(s, stmt, "dmarc mark")))
		goto out;
	if (!(stmt = d_stmt(s, D_MARK_REPORT))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sq_bind_text(stmt, 1, report_id);
	sq_bind_text(stmt, 2, queue_id);
	sqlite3_bind_int64(stmt, 3, time_now());
	rc = sq_exec(s, stmt, "dmarc mark report");
out:
	return sq_tx_end(s, rc);
}

static int dm_purge(struct store *st, int64_t before, int64_t *n)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int rc;

	*n = 0;
	if ((rc = sq_tx_begin(s)))
		return rc;
	if (!(stmt = d_stmt(s, D_PURGE_ROWS))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, before);
	if ((rc = sq_exec(s, stmt, "dmarc purge")))
		goto out;
	*n = sqlite3_changes(s->db);
	if (!(stmt = d_stmt(s, D_PURGE_REPORTS))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, before);
	rc = sq_exec(s, stmt, "dmarc purge reports");
out:
	return sq_tx_end(s, rc);
}

const struct store_dmarc_ops sq_dmarc_ops = {
    .record = dm_record,
    .due = dm_due,
    .aggregate = dm_aggregate,
    .claim = dm_claim,
    .unclaim = dm_unclaim,
    .mark = dm_mark,
    .purge = dm_purge,
};
