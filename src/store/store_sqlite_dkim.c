/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_dkim: the SQLite side of store_dkim.h (schema and operations).
 *
 * The one-active-key rule is a partial unique index, so two nodes that
 * activate at once cannot both win; activation retires the old key and
 * activates the new one in one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_private.h"

/* Applied once as its numbered migration (store_sqlite.c). Until it has
 * shipped it may still change; after that only a new migration may. */
const char sq_schema_dkim[] =
    "CREATE TABLE dkim_keys ("
    " id INTEGER PRIMARY KEY,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    " selector TEXT NOT NULL,"
    " algorithm TEXT NOT NULL,"
    " private_key TEXT NOT NULL,"
    " dns_record TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),"
    " created_at INTEGER NOT NULL,"
    " activated_at INTEGER,"
    " UNIQUE (domain_id, selector));"
    "CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys(domain_id) WHERE state = 'active';";

enum {
	K_DOMAIN_ID,
	K_ADD,
	K_LIST,
	K_LIST_ALL,
	K_FIND,
	K_RETIRE,
	K_ACTIVATE,
	K_REMOVE,
	K_ACTIVE,
};

#define K_COLS                                                                                     \
	"d.name, k.selector, k.algorithm, k.state, k.created_at, k.activated_at, k.private_key,"   \
	" k.dns_record FROM dkim_keys k JOIN domains d ON d.id = k.domain_id"

static const char *const k_sql[] = {
    [K_DOMAIN_ID] = "SELECT id FROM domains WHERE name = ?1",
    [K_ADD] = "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, dns_record,"
	      " state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
    [K_LIST] = "SELECT " K_COLS " WHERE d.name = ?1 ORDER BY k.created_at DESC, k.id DESC",
    [K_LIST_ALL] = "SELECT " K_COLS " ORDER BY d.name, k.created_at DESC, k.id DESC",
    [K_FIND] = "SELECT state FROM dkim_keys WHERE domain_id = ?1 AND selector = ?2",
    [K_RETIRE] = "UPDATE dkim_keys SET state = 'retired' WHERE domain_id = ?1 AND state = 'active'",
    [K_ACTIVATE] = "UPDATE dkim_keys SET state = 'active', activated_at = ?3"
		   " WHERE domain_id = ?1 AND selector = ?2",
    [K_REMOVE] = "DELETE FROM dkim_keys WHERE domain_id = ?1 AND selector = ?2",
    [K_ACTIVE] = "SELECT " K_COLS " WHERE d.name = ?1 AND k.state = 'active'",
};

static sqlite3_stmt *k_stmt(struct sq *s, int id)
{
	return sq_xstmt(s, SQF_DKIM, id, k_sql[id]);
}

static int domain_id(struct sq *s, const char *domain, int64_t *id)
{
	sqlite3_stmt *stmt = k_stmt(s, K_DOMAIN_ID);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, domain);
	rc = sq_step(s, stmt, "dkim domain");
	if (rc < 0)
		return rc;
	if (rc == 0) {
		store_set_error(&s->base, "%s is not a hosted domain", domain);
		return STORE_NOTFOUND;
	}
	*id = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return STORE_OK;
}

static enum store_dkim_state state_of(const char *t)
{
	return !strcmp(t, "active")    ? STORE_DKIM_ACTIVE
	       : !strcmp(t, "retired") ? STORE_DKIM_RETIRED
				       : STORE_DKIM_PENDING;
}

static void row(sqlite3_stmt *stmt, struct store_dkim_key *k)
{
	memset(k, 0, sizeof(*k));
	sq_col_copy(stmt, 0, k->domain, sizeof(k->domain));
	sq_col_copy(stmt, 1, k->selector, sizeof(k->selector));
	sq_col_copy(stmt, 2, k->algorithm, sizeof(k->algorithm));
	k->state = state_of(sq_col_text(stmt, 3));
	k->created_at = sqlite3_column_int64(stmt, 4);
	k->activated_at = sqlite3_column_int64(stmt, 5);
	sq_col_copy(stmt, 6, k->private_key, sizeof(k->private_key));
	sq_col_copy(stmt, 7, k->dns_record, sizeof(k->dns_record));
}

static int dk_add(struct store *st, const struct store_dkim_key *k)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = domain_id(s, k->domain, &id)))
		goto out;
	if (!(stmt = k_stmt(s, K_ADD))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	sq_bind_text(stmt, 2, k->selector);
	sq_bind_text(stmt, 3, k->algorithm);
	sq_bind_text(stmt, 4, k->private_key);
	sq_bind_text(stmt, 5, k->dns_record);
	sqlite3_bind_int64(stmt, 6, k->created_at);
	rc = sq_exec(s, stmt, "dkim add");
	if (rc == STORE_EXISTS)
		store_set_error(st, "%s already has a key with selector %s", k->domain,
				k->selector);
out:
	return sq_tx_end(s, rc);
}

static int dk_list(struct store *st, const char *domain, store_dkim_cb cb, void *arg)
{
	struct sq *s = to_sq(st);
	struct store_dkim_key *k = malloc(sizeof(*k));
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (!k)
		return STORE_TEMPFAIL;
	if (domain) {
		int64_t id;

		if ((rc = domain_id(s, domain, &id)))
			goto out;
	}
	if (!(stmt = k_stmt(s, domain ? K_LIST : K_LIST_ALL))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	if (domain)
		sq_bind_text(stmt, 1, domain);
	while ((rc = sq_step(s, stmt, "dkim list")) > 0) {
		int cbrc;

		row(stmt, k);
		if ((cbrc = cb(k, arg)) != 0) {
			sqlite3_reset(stmt);
			rc = store_cb_result(cbrc);
			break;
		}
	}
out:
	free(k);
	return rc;
}

static int dk_activate(struct store *st, const char *domain, const char *selector, int64_t now)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	bool active;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = domain_id(s, domain, &id)))
		goto out;
	if (!(stmt = k_stmt(s, K_FIND))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	sq_bind_text(stmt, 2, selector);
	if ((rc = sq_step(s, stmt, "dkim find")) < 0)
		goto out;
	if (rc == 0) {
		store_set_error(st, "%s has no key with selector %s", domain, selector);
		rc = STORE_NOTFOUND;
		goto out;
	}
	active = !strcmp(sq_col_text(stmt, 0), "active");
	sqlite3_reset(stmt);
	rc = STORE_OK;
	if (active)
		goto out;
	if (!(stmt = k_stmt(s, K_RETIRE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	if ((rc = sq_exec(s, stmt, "dkim retire")))
		goto out;
	if (!(stmt = k_stmt(s, K_ACTIVATE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	sq_bind_text(stmt, 2, selector);
	sqlite3_bind_int64(stmt, 3, now);
	rc = sq_exec(s, stmt, "dkim activate");
out:
	return sq_tx_end(s, rc);
}

static int dk_remove(struct store *st, const char *domain, const char *selector)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = domain_id(s, domain, &id)))
		goto out;
	if (!(stmt = k_stmt(s, K_REMOVE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	sq_bind_text(stmt, 2, selector);
	if ((rc = sq_exec(s, stmt, "dkim remove")) == STORE_OK && sqlite3_changes(s->db) == 0) {
		store_set_error(st, "%s has no key with selector %s", domain, selector);
		rc = STORE_NOTFOUND;
	}
out:
	return sq_tx_end(s, rc);
}

static int dk_active(struct store *st, const char *domain, struct store_dkim_key *out)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = k_stmt(s, K_ACTIVE);
	int rc;

	if (!stmt)
		return STORE_TEMPFAIL;
	sq_bind_text(stmt, 1, domain);
	rc = sq_step(s, stmt, "dkim active");
	if (rc < 0)
		return rc;
	if (rc == 0) {
		store_set_error(st, "%s has no active DKIM key", domain);
		return STORE_NOTFOUND;
	}
	row(stmt, out);
	sqlite3_reset(stmt);
	return STORE_OK;
}

const struct store_dkim_ops sq_dkim_ops = {
    .add = dk_add,
    .list = dk_list,
    .activate = dk_activate,
    .remove = dk_remove,
    .active = dk_active,
};
