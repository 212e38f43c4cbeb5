/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_bayes: the SQLite side of store_bayes.h (schema and operations).
 */
#include "store/store_sqlite_private.h"

/* Applied once as its numbered migration (store_sqlite.c). Until it has
 * shipped it may still change; after that only a new migration may. */
const char sq_schema_bayes[] = "CREATE TABLE bayes_tokens ("
			       " token INTEGER PRIMARY KEY," /* 64-bit hash of the token */
			       " spam INTEGER NOT NULL DEFAULT 0,"
			       " ham INTEGER NOT NULL DEFAULT 0,"
			       " atime INTEGER NOT NULL);"
			       "CREATE TABLE bayes_totals ("
			       " id INTEGER PRIMARY KEY CHECK (id = 1),"
			       " nspam INTEGER NOT NULL DEFAULT 0,"
			       " nham INTEGER NOT NULL DEFAULT 0);"
			       "INSERT INTO bayes_totals (id) VALUES (1);"
			       "CREATE TABLE bayes_seen ("
			       " msgid TEXT PRIMARY KEY," /* digest of the learnt message */
			       " spam INTEGER NOT NULL,"
			       " learnt_at INTEGER NOT NULL);";

const struct store_bayes_ops sq_bayes_ops = {
    .ping = NULL,
};
