/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite_dmarc: the SQLite side of store_dmarc.h (schema and operations).
 */
#include "store/store_sqlite_private.h"

/* Applied once as its numbered migration (store_sqlite.c). Until it has
 * shipped it may still change; after that only a new migration may. */
const char sq_schema_dmarc[] =
    "CREATE TABLE dmarc_records ("
    " id INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL,"
    " policy_domain TEXT NOT NULL,"
    " header_from TEXT NOT NULL,"
    " rua TEXT NOT NULL,"
    " source_ip TEXT NOT NULL,"
    " disposition TEXT NOT NULL,"
    " dkim_result TEXT NOT NULL,"
    " dkim_domain TEXT NOT NULL,"
    " spf_result TEXT NOT NULL,"
    " spf_domain TEXT NOT NULL,"
    " policy TEXT NOT NULL," /* p/sp/pct/adkim/aspf as published */
    " reported INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX dmarc_records_due ON dmarc_records(policy_domain, ts) WHERE reported = 0;"
    "CREATE TABLE dmarc_reports ("
    " report_id TEXT PRIMARY KEY,"
    " policy_domain TEXT NOT NULL,"
    " begin_ts INTEGER NOT NULL,"
    " end_ts INTEGER NOT NULL,"
    " queue_id TEXT NOT NULL,"
    " sent_at INTEGER NOT NULL);";

const struct store_dmarc_ops sq_dmarc_ops = {
    .ping = NULL,
};
