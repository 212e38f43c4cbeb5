/* SPDX-License-Identifier: MIT */
/*
 * bayes_table: the Bayes token counts of the store, in memory, shared by
 * every scanning thread of one process (read-mostly).
 *
 * Why: a message has ~1,200 tokens; looking each up in SQLite (B-tree
 * descents on every scanning thread's own connection) was a quarter of
 * the content layer's CPU. Here a look-up is one probe of an open-
 * addressing table, 16 bytes a slot (token, spam, ham), at most 2/3 full.
 * The slot of a token is its top bits (tokens are SipHash values, already
 * uniform), so a full load, which reads the rows in the store's order,
 * writes the table front to back, and a message's sorted tokens probe it
 * front to back too.
 *
 * Snapshots. Readers take the current snapshot (bayes_table_acquire), a
 * consistent copy of one generation of the store: its totals (learnt spam
 * and ham) and every token's counts, as one read transaction saw them.
 * A snapshot never changes; refreshing builds a new one (a copy of the
 * old plus the rows changed since its generation, or a full reload after
 * rows were deleted: unlearn to 0/0, expiry) and swaps it in; readers
 * keep the old one until they release it, and the last release frees it.
 * So readers never wait for a load and never see half a refresh.
 *
 * Refresh and staleness. One thread refreshes: with background set, a
 * thread of the table's own, started by bayes_table_new(), which loads at
 * once (a pipeline makes its table when it starts, so the load overlaps
 * the rest of the start-up; a reader waits for it, at most 2 s, then
 * gets NULL and reads the store until it is done). It then reads the store's generation every
 * poll_ms and, when it moved, refreshes: a delta (the tokens changed
 * since, tens of ms for a few messages) or, after an expiry or a long
 * time, a full reload (~150 ms for 1.2M tokens). A snapshot therefore
 * lags the store by at most poll_ms plus the time of one refresh;
 * bayes_table_kick() asks for a refresh now. Without background, nothing
 * happens until bayes_table_refresh().
 *
 * Memory bound: the table is used while twice its size (the old and the
 * new snapshot during a refresh) fits in memory bytes; above it there is
 * no snapshot (acquire gives NULL: read the store) until a change of the
 * store makes it fit again. memory 0: never.
 *
 * Threads: acquire, release and kick from any thread; one refresh runs at
 * a time (bayes_table_refresh() and the background thread take turns).
 * Errors: 0, -ENOMEM, -EAGAIN (the store could not answer).
 */
#ifndef MXG_SCAN_BAYES_TABLE_H
#define MXG_SCAN_BAYES_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "store/store.h"
#include "store/store_bayes.h"

#define BAYES_TABLE_SLOT 16	    /* bytes per slot */
#define BAYES_TABLE_MIN_POLL_MS 100 /* the generation is read at most this often */

struct bayes_table;
struct bayes_snap;

/* Takes st (its own connection, used only by the refreshing thread;
 * closed by bayes_table_free, also when this fails). NULL: -ENOMEM or no
 * thread. */
struct bayes_table *bayes_table_new(struct store *st, int64_t memory, int64_t poll_ms,
				    bool background);
/* Stops the thread; snapshots still acquired must be released first. */
void bayes_table_free(struct bayes_table *t);

/* The current snapshot (a reference: release it), or NULL: not loaded
 * (the first call asks for the load; with background, it waits for the
 * first load, at most 2 s) or over the memory bound. */
const struct bayes_snap *bayes_table_acquire(struct bayes_table *t);
void bayes_table_release(struct bayes_table *t, const struct bayes_snap *s);
/* Asks the background thread for a refresh now (this process learnt). */
void bayes_table_kick(struct bayes_table *t);
/* Loads or refreshes in the calling thread, if the generation moved. */
int bayes_table_refresh(struct bayes_table *t) MXG_WUR;

/* A snapshot's totals: generation, learnt spam and ham; ntokens: slots
 * in use (tokens deleted since the last full load still count). */
void bayes_snap_totals(const struct bayes_snap *s, struct store_bayes_totals *out);
/* out[i] = the counts of tokens[i] (0/0: unknown); any order. */
void bayes_snap_get(const struct bayes_snap *s, const uint64_t *tokens, size_t n,
		    struct store_bayes_count *out);

#endif
