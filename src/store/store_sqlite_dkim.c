/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_dkim: the SQLite side of store_dkim.h (schema and operations).
 */
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
    " UNIQUE (domain_id, selector));";

const struct store_dkim_ops sq_dkim_ops = {
    .ping = NULL,
};
