/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_rel: the SQLite side of store_rel.h (schema and operations).
 */
#include "store/store_sqlite_private.h"

/* Applied once as its numbered migration (store_sqlite.c). Until it has
 * shipped it may still change; after that only a new migration may. */
const char sq_schema_rel[] = "CREATE TABLE relationships ("
			     " local TEXT NOT NULL,"  /* our mailbox, lower-cased */
			     " remote TEXT NOT NULL," /* the outside address, lower-cased */
			     " outbound INTEGER NOT NULL DEFAULT 0,"
			     " inbound INTEGER NOT NULL DEFAULT 0,"
			     " first_seen INTEGER NOT NULL,"
			     " last_seen INTEGER NOT NULL,"
			     " PRIMARY KEY (local, remote));";

const struct store_rel_ops sq_rel_ops = {
    .ping = NULL,
};
