/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_policy: the SQLite side of store_policy.h.
 *
 * One table holds settings and list entries of every scope. scope_id is
 * the id of the account, domain or mailbox (0 for global); it has no
 * foreign key because it points into three tables, so triggers remove a
 * scope's items with the scope (ids can be reused by SQLite).
 */
#include <string.h>

#include "store/store_sqlite_private.h"

const char sq_schema_policy[] =
    "CREATE TABLE policy_items ("
    " id INTEGER PRIMARY KEY,"
    " scope INTEGER NOT NULL CHECK (scope BETWEEN 0 AND 3),"
    " scope_id INTEGER NOT NULL,"
    " kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 2),"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX policy_items_setting ON policy_items(scope, scope_id, key)"
    " WHERE kind = 0;"
    "CREATE UNIQUE INDEX policy_items_list ON policy_items(scope, scope_id, kind, value)"
    " WHERE kind <> 0;"
    "CREATE TRIGGER policy_items_account_gone AFTER DELETE ON accounts BEGIN"
    " DELETE FROM policy_items WHERE scope = 1 AND scope_id = OLD.id; END;"
    "CREATE TRIGGER policy_items_domain_gone AFTER DELETE ON domains BEGIN"
    " DELETE FROM policy_items WHERE scope = 2 AND scope_id = OLD.id; END;"
    "CREATE TRIGGER policy_items_mailbox_gone AFTER DELETE ON mailboxes BEGIN"
    " DELETE FROM policy_items WHERE scope = 3 AND scope_id = OLD.id; END;";

enum {
	P_ACCOUNT_ID,
	P_DOMAIN_ID,
	P_MAILBOX_ID,
	P_SET,
	P_UNSET,
	P_LIST_ADD,
	P_LIST_REMOVE,
	P_GET,
	P_RESOLVE,
};

static const char *const p_sql[] = {
    [P_ACCOUNT_ID] = "SELECT id FROM accounts WHERE name = ?1",
    [P_DOMAIN_ID] = "SELECT id FROM domains WHERE name = ?1",
    [P_MAILBOX_ID] = "SELECT m.id FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
		     " WHERE d.name = ?1 AND m.local_key = ?2",
    [P_SET] = "INSERT INTO policy_items (scope, scope_id, kind, key, value, updated_at)"
	      " VALUES (?1, ?2, 0, ?3, ?4, ?5)"
	      " ON CONFLICT (scope, scope_id, key) WHERE kind = 0"
	      " DO UPDATE SET value = ?4, updated_at = ?5",
    [P_UNSET] = "DELETE FROM policy_items WHERE scope = ?1 AND scope_id = ?2 AND kind = 0"
		" AND key = ?3",
    [P_LIST_ADD] = "INSERT INTO policy_items (scope, scope_id, kind, key, value, updated_at)"
		   " VALUES (?1, ?2, ?3, '', ?4, ?5)",
    [P_LIST_REMOVE] = "DELETE FROM policy_items WHERE scope = ?1 AND scope_id = ?2"
		      " AND kind = ?3 AND value = ?4",
    [P_GET] = "SELECT scope, kind, key, value FROM policy_items"
	      " WHERE scope = ?1 AND scope_id = ?2 ORDER BY kind, key, value",
    [P_RESOLVE] = "SELECT scope, kind, key, value FROM policy_items WHERE scope = 0"
		  " OR (scope = 1 AND scope_id = (SELECT account_id FROM domains WHERE id = ?2))"
		  " OR (scope = 2 AND scope_id = ?2) OR (scope = 3 AND scope_id = ?1)"
		  " ORDER BY scope, kind, id",
};

static sqlite3_stmt *p_stmt(struct sq *s, int id)
{
	return sq_xstmt(s, SQF_POLICY, id, p_sql[id]);
}

/* The id of a named scope: STORE_OK, STORE_NOTFOUND (error set) or a
 * failure. The name was normalised by store_policy.c. */
static int scope_id(struct sq *s, enum store_scope sc, const char *name, int64_t *id)
{
	char local[STORE_ADDR_LEN], key[STORE_ADDR_LEN], dom[STORE_DOMAIN_LEN];
	sqlite3_stmt *stmt;
	int rc;

	switch (sc) {
	case STORE_SCOPE_GLOBAL:
		*id = 0;
		return STORE_OK;
	case STORE_SCOPE_ACCOUNT:
	case STORE_SCOPE_DOMAIN:
		if (!(stmt = p_stmt(s, sc == STORE_SCOPE_ACCOUNT ? P_ACCOUNT_ID : P_DOMAIN_ID)))
			return STORE_TEMPFAIL;
		sq_bind_text(stmt, 1, name);
		break;
	case STORE_SCOPE_MAILBOX:
		if (store_addr_split(name, local, sizeof(local), dom, sizeof(dom)) ||
		    store_local_key(local, key, sizeof(key)))
			return store_invalid(&s->base, "bad mailbox address");
		if (!(stmt = p_stmt(s, P_MAILBOX_ID)))
			return STORE_TEMPFAIL;
		sq_bind_text(stmt, 1, dom);
		sq_bind_text(stmt, 2, key);
		break;
	default:
		return store_invalid(&s->base, "bad scope");
	}
	rc = sq_step(s, stmt, "policy scope");
	if (rc < 0)
		return rc;
	if (rc == 0) {
		store_set_error(&s->base, "no %s named %s",
				sc == STORE_SCOPE_ACCOUNT  ? "account"
				: sc == STORE_SCOPE_DOMAIN ? "domain"
							   : "mailbox",
				name);
		return STORE_NOTFOUND;
	}
	*id = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return STORE_OK;
}

static int pol_set(struct store *st, enum store_scope sc, const char *name, const char *key,
		   const char *value)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = scope_id(s, sc, name, &id)))
		goto out;
	if (!(stmt = p_stmt(s, value ? P_SET : P_UNSET))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int(stmt, 1, (int)sc);
	sqlite3_bind_int64(stmt, 2, id);
	sq_bind_text(stmt, 3, key);
	if (value) {
		sq_bind_text(stmt, 4, value);
		sqlite3_bind_int64(stmt, 5, time_now());
	}
	if ((rc = sq_exec(s, stmt, "policy set")) == STORE_OK && !value &&
	    sqlite3_changes(s->db) == 0) {
		store_set_error(st, "%s is not set there", key);
		rc = STORE_NOTFOUND;
	}
out:
	return sq_tx_end(s, rc);
}

static int pol_list_change(struct store *st, enum store_scope sc, const char *name,
			   enum store_policy_kind kind, const char *pattern, bool add)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = sq_tx_begin(s)))
		return rc;
	if ((rc = scope_id(s, sc, name, &id)))
		goto out;
	if (!(stmt = p_stmt(s, add ? P_LIST_ADD : P_LIST_REMOVE))) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	sqlite3_bind_int(stmt, 1, (int)sc);
	sqlite3_bind_int64(stmt, 2, id);
	sqlite3_bind_int(stmt, 3, (int)kind);
	sq_bind_text(stmt, 4, pattern);
	if (add)
		sqlite3_bind_int64(stmt, 5, time_now());
	rc = sq_exec(s, stmt, add ? "list add" : "list remove");
	if (rc == STORE_EXISTS)
		store_set_error(st, "%s is already listed there", pattern);
	if (rc == STORE_OK && !add && sqlite3_changes(s->db) == 0) {
		store_set_error(st, "%s is not listed there", pattern);
		rc = STORE_NOTFOUND;
	}
out:
	return sq_tx_end(s, rc);
}

static int pol_list_add(struct store *st, enum store_scope sc, const char *name,
			enum store_policy_kind kind, const char *pattern)
{
	return pol_list_change(st, sc, name, kind, pattern, true);
}

static int pol_list_remove(struct store *st, enum store_scope sc, const char *name,
			   enum store_policy_kind kind, const char *pattern)
{
	return pol_list_change(st, sc, name, kind, pattern, false);
}

/* Walks the rows of a statement already bound. */
static int walk(struct sq *s, sqlite3_stmt *stmt, store_policy_cb cb, void *arg)
{
	struct store_policy_item it;
	int rc;

	while ((rc = sq_step(s, stmt, "policy read")) > 0) {
		int cbrc;

		memset(&it, 0, sizeof(it));
		it.scope = (enum store_scope)sqlite3_column_int(stmt, 0);
		it.kind = (enum store_policy_kind)sqlite3_column_int(stmt, 1);
		sq_col_copy(stmt, 2, it.key, sizeof(it.key));
		sq_col_copy(stmt, 3, it.value, sizeof(it.value));
		if ((cbrc = cb(&it, arg)) != 0) {
			sqlite3_reset(stmt);
			return store_cb_result(cbrc);
		}
	}
	return rc;
}

static int pol_get(struct store *st, enum store_scope sc, const char *name, store_policy_cb cb,
		   void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if ((rc = scope_id(s, sc, name, &id)))
		return rc;
	if (!(stmt = p_stmt(s, P_GET)))
		return STORE_TEMPFAIL;
	sqlite3_bind_int(stmt, 1, (int)sc);
	sqlite3_bind_int64(stmt, 2, id);
	return walk(s, stmt, cb, arg);
}

static int pol_resolve(struct store *st, int64_t mailbox_id, int64_t domain_id, store_policy_cb cb,
		       void *arg)
{
	struct sq *s = to_sq(st);
	sqlite3_stmt *stmt = p_stmt(s, P_RESOLVE);

	if (!stmt)
		return STORE_TEMPFAIL;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, domain_id);
	return walk(s, stmt, cb, arg);
}

const struct store_policy_ops sq_policy_ops = {
    .set = pol_set,
    .list_add = pol_list_add,
    .list_remove = pol_list_remove,
    .get = pol_get,
    .resolve = pol_resolve,
};
