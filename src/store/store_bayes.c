/* SPDX-License-Identifier: MIT */
/*
 * store_bayes: argument rules of store_bayes.h, then the backend.
 */
#include "store/store_bayes.h"

#include <string.h>

#include "store/store_private.h"

/* Bounds that keep one call's memory and statement count reasonable. */
#define BAYES_MAX_BATCH 100000
#define BAYES_MAX_TOKENS_PER_ITEM (1u << 20)

static bool sorted_unique(const uint64_t *t, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (t[i - 1] >= t[i])
			return false;
	return true;
}

static bool digest_ok(const char *d)
{
	size_t n = strnlen(d, STORE_BAYES_DIGEST_LEN);

	if (n < 16 || n >= STORE_BAYES_DIGEST_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return true;
}

int store_bayes_totals(struct store *st, struct store_bayes_totals *out)
{
	if (!out)
		return store_invalid(st, "no output");
	memset(out, 0, sizeof(*out));
	return st->ops->bayes->totals(st, out, false);
}

int store_bayes_stats(struct store *st, struct store_bayes_totals *out)
{
	if (!out)
		return store_invalid(st, "no output");
	memset(out, 0, sizeof(*out));
	return st->ops->bayes->totals(st, out, true);
}

int store_bayes_get(struct store *st, const uint64_t *tokens, size_t n,
		    struct store_bayes_count *out)
{
	if (n == 0)
		return STORE_OK;
	if (!tokens || !out)
		return store_invalid(st, "no tokens or output");
	if (!sorted_unique(tokens, n))
		return store_invalid(st, "tokens must be sorted and unique");
	return st->ops->bayes->get(st, tokens, n, out);
}

int store_bayes_learn(struct store *st, struct store_bayes_item *items, size_t n, int64_t now)
{
	if (n == 0)
		return STORE_OK;
	if (!items || n > BAYES_MAX_BATCH)
		return store_invalid(st, "no items or too many");
	if (now <= 0)
		return store_invalid(st, "bad time");
	for (size_t i = 0; i < n; i++) {
		const struct store_bayes_item *it = &items[i];

		if (!digest_ok(it->digest))
			return store_invalid(st, "bad message digest");
		if (it->cls != STORE_BAYES_HAM && it->cls != STORE_BAYES_SPAM &&
		    it->cls != STORE_BAYES_FORGET)
			return store_invalid(st, "bad class");
		if (it->ntokens > BAYES_MAX_TOKENS_PER_ITEM || (it->ntokens && !it->tokens))
			return store_invalid(st, "bad token array");
		if (!sorted_unique(it->tokens, it->ntokens))
			return store_invalid(st, "tokens must be sorted and unique");
	}
	return st->ops->bayes->learn(st, items, n, now);
}

int store_bayes_expire(struct store *st, int64_t now, int64_t max_age, int64_t max_tokens,
		       int64_t *removed)
{
	int64_t dummy;

	if (now <= 0 || max_age < 0 || max_tokens < 0)
		return store_invalid(st, "bad expiry bounds");
	return st->ops->bayes->expire(st, now, max_age, max_tokens, removed ? removed : &dummy);
}

int store_bayes_dump(struct store *st, int64_t since, store_bayes_dump_cb cb, void *arg)
{
	if (!cb)
		return store_invalid(st, "no callback");
	return st->ops->bayes->dump(st, since, cb, arg);
}
