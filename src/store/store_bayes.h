/* SPDX-License-Identifier: MIT */
/*
 * store_bayes: the counts behind the Bayes classifier (src/scan/bayes.h).
 *
 * A token is an opaque 64-bit hash (the classifier's business); for each
 * the store keeps how many learnt spam and ham messages held it and when
 * it was last learnt (atime, Unix seconds). One row of totals holds the
 * number of learnt spam and ham messages and a generation that moves on
 * every change, so readers can tell that their cached counts are stale.
 * The "seen" table remembers which message (by a digest the caller makes,
 * e.g. SHA-256 hex of Message-ID and body) was learnt as what, so that:
 *   - learning a message again as the same class changes nothing,
 *   - learning it as the other class moves its counts over (relearn),
 *   - forgetting it (unlearn) takes its counts back out.
 * Relearn and unlearn subtract the tokens the caller gives, which are the
 * message's tokens when it is tokenised by the same tokenizer; counts never
 * go below zero and a token at 0/0 is deleted.
 *
 * Token arrays passed in must be sorted ascending without duplicates
 * (STORE_INVALID otherwise): one message counts a token once.
 *
 * Batches: store_bayes_learn() applies every item in ONE transaction (the
 * counts of a batch are summed first, each token row written once), so a
 * corpus is learnt in seconds. store_bayes_get() reads many tokens with a
 * few statements, never one query per token.
 *
 * Copies in memory (the classifier's shared token table, bayes_table.h):
 * every token row carries the generation that last changed it, and the
 * totals the generation of the last deletion of token rows (unlearn to
 * 0/0, expiry). store_bayes_dump() reads, in one consistent read, either
 * every row or only the rows changed after a generation the caller holds;
 * it falls back to every row when rows were deleted since (a copy cannot
 * learn of a deletion from the rows that remain).
 */
#ifndef MXG_STORE_BAYES_H
#define MXG_STORE_BAYES_H

#include "store/store.h"

#define STORE_BAYES_DIGEST_LEN 65 /* 64 hex digits, terminated */

enum store_bayes_class {
	STORE_BAYES_HAM = 0,
	STORE_BAYES_SPAM = 1,
	STORE_BAYES_FORGET = 2, /* unlearn */
};

/* What happened to one item of a learn batch. */
enum store_bayes_outcome {
	STORE_BAYES_LEARNT = 0,	   /* new message, counted */
	STORE_BAYES_ALREADY = 1,   /* already learnt as that class: nothing done */
	STORE_BAYES_RELEARNT = 2,  /* was learnt as the other class: moved over */
	STORE_BAYES_FORGOTTEN = 3, /* unlearnt */
	STORE_BAYES_UNKNOWN = 4,   /* unlearn of a message never learnt: nothing done */
};

struct store_bayes_count {
	uint64_t token;
	uint32_t spam, ham;
};

struct store_bayes_totals {
	int64_t nspam, nham;	  /* learnt messages */
	int64_t generation;	  /* moves on every learn, unlearn and expiry */
	int64_t reset_generation; /* generation of the last deletion of token rows */
	int64_t ntokens;	  /* rows; only filled by store_bayes_stats() */
	int64_t nseen;		  /* remembered messages; only from store_bayes_stats() */
};

struct store_bayes_item {
	char digest[STORE_BAYES_DIGEST_LEN]; /* [0-9a-f]{16,64} */
	enum store_bayes_class cls;
	const uint64_t *tokens; /* sorted ascending, unique */
	size_t ntokens;
	enum store_bayes_outcome outcome; /* set by store_bayes_learn() */
};

/* Totals and generation (one row: cheap enough to call per message). */
int store_bayes_totals(struct store *st, struct store_bayes_totals *out) MXG_WUR;
/* Totals plus the number of token rows and of remembered messages (a
 * count over the tables: for the CLI, not per message). */
int store_bayes_stats(struct store *st, struct store_bayes_totals *out) MXG_WUR;
/* out[i] = counts of tokens[i] (0/0 when the store does not know it);
 * tokens sorted ascending and unique. */
int store_bayes_get(struct store *st, const uint64_t *tokens, size_t n,
		    struct store_bayes_count *out) MXG_WUR;
/* Learns, relearns or forgets items[0..n) in one transaction at time now;
 * sets each item's outcome. On failure nothing of the batch is kept. */
int store_bayes_learn(struct store *st, struct store_bayes_item *items, size_t n,
		      int64_t now) MXG_WUR;
/* Expiry: deletes tokens seen in at most one message and not learnt since
 * now - max_age seconds; then, while more than max_tokens rows remain,
 * the rarest, oldest ones. *removed gets the number deleted (may be NULL). */
int store_bayes_expire(struct store *st, int64_t now, int64_t max_age, int64_t max_tokens,
		       int64_t *removed) MXG_WUR;

/* What a dump holds; given to the callback before any row. */
struct store_bayes_dump {
	struct store_bayes_totals totals; /* as of the dump (ntokens, nseen: 0) */
	bool full;			  /* every row; else the rows changed after since */
	int64_t nrows;			  /* rows that follow */
};

/* Called first with rows == NULL and n == 0 (d filled in), then with
 * batches of rows in no promised order; d and rows live until it returns.
 * Returning anything but 0 stops the dump (store_bayes_dump() then still
 * returns STORE_OK: the caller knows why it stopped). */
typedef int (*store_bayes_dump_cb)(const struct store_bayes_dump *d,
				   const struct store_bayes_count *rows, size_t n, void *arg);

/* One consistent read (a snapshot of the store; writers are not blocked)
 * of the totals and of the token rows: every row when since < 0, when
 * rows were deleted after since, or when since is not a generation this
 * store has reached; otherwise only the rows whose counts changed after
 * generation since. */
int store_bayes_dump(struct store *st, int64_t since, store_bayes_dump_cb cb, void *arg) MXG_WUR;

/* ---- for backends ------------------------------------------------------ */

struct store_bayes_ops {
	int (*totals)(struct store *st, struct store_bayes_totals *out, bool full);
	int (*get)(struct store *st, const uint64_t *tokens, size_t n,
		   struct store_bayes_count *out);
	int (*learn)(struct store *st, struct store_bayes_item *items, size_t n, int64_t now);
	int (*expire)(struct store *st, int64_t now, int64_t max_age, int64_t max_tokens,
		      int64_t *removed);
	int (*dump)(struct store *st, int64_t since, store_bayes_dump_cb cb, void *arg);
};

#endif
