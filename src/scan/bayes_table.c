/* SPDX-License-Identifier: MIT */
/*
 * bayes_table: snapshots of the store's token counts (see bayes_table.h).
 */
#include "scan/bayes_table.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/log.h"

#define BT_MIN_CAP 1024
#define BT_SIGN (1ULL << 63)
#define BT_PREFETCH 8		  /* look-ups ahead whose slot is fetched early */
#define BT_HUGE (2 * 1024 * 1024) /* a transparent huge page */
#define BT_FIRST_WAIT_MS 2000	  /* readers wait this long for the first load */

struct bt_slot {
	uint64_t token; /* 0: empty (token 0 lives in zero) */
	uint32_t spam, ham;
};

struct bayes_snap {
	unsigned refs; /* under the table's mu; the table holds one */
	struct store_bayes_totals tot;
	struct bt_slot *v;
	size_t cap;	/* power of two */
	unsigned shift; /* 64 - log2(cap) */
	size_t count;	/* used slots */
	struct bt_slot zero;
};

struct bayes_table {
	pthread_mutex_t mu; /* cur, refs, the flags below */
	pthread_cond_t cv;
	struct bayes_snap *cur;
	bool wanted; /* load: asked by an acquire, or at once in the background */
	bool kicked;
	bool first_done; /* the first load was tried (readers stop waiting) */
	bool stop;
	bool thread;
	pthread_t tid;

	pthread_mutex_t refresh_mu; /* one refresh at a time; guards what follows */
	struct store *st;
	int64_t memory;
	int64_t poll_ms;
	int64_t over_gen; /* generation found too big for memory; -1: none */
};

/* ---- snapshots ---------------------------------------------------------- */

static size_t slot_of(const struct bayes_snap *s, uint64_t token)
{
	/* SQLite orders tokens as signed: flipping the sign bit makes its
	 * order the table's */
	return (size_t)((token ^ BT_SIGN) >> s->shift);
}

/* Zeroed slots. A big table asks for huge pages: a look-up then costs a
 * cache miss but seldom a TLB miss, and filling it takes a fault per
 * 2 MiB. It is written (not calloc'd) at once: a calloc'd page is first
 * mapped to the shared zero page by a read, and replacing that by the
 * first write flushes the TLB of every CPU running the process (the
 * IPIs were 4% of the content layer's CPU, measured). */
static struct bt_slot *slots_new(size_t cap)
{
	size_t bytes = cap * sizeof(struct bt_slot);
	void *p = NULL;

	if (bytes < BT_HUGE)
		return calloc(cap, sizeof(struct bt_slot));
	if (posix_memalign(&p, BT_HUGE, bytes))
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint; without it, small pages */
	memset(p, 0, bytes);
	return p;
}

static struct bayes_snap *snap_new(size_t cap)
{
	struct bayes_snap *s = calloc(1, sizeof(*s));
	unsigned bits = 0;

	if (!s)
		return NULL;
	if (!(s->v = slots_new(cap))) {
		free(s);
		return NULL;
	}
	while (((size_t)1 << bits) < cap)
		bits++;
	s->cap = cap;
	s->shift = 64 - bits;
	s->refs = 1;
	return s;
}

static void snap_free(struct bayes_snap *s)
{
	if (!s)
		return;
	free(s->v);
	free(s);
}

/* The slots a table of n tokens needs: at most 2/3 full. */
static size_t cap_for(int64_t n)
{
	size_t cap = BT_MIN_CAP;

	while ((int64_t)(cap / 3 * 2) < n && cap < ((size_t)1 << 40))
		cap <<= 1;
	return cap;
}

/* Sets token's counts (inserting it); false when the table is full. */
static bool snap_put(struct bayes_snap *s, uint64_t token, uint32_t spam, uint32_t ham)
{
	size_t i, mask = s->cap - 1;

	if (!token) {
		s->zero.spam = spam;
		s->zero.ham = ham;
		return true;
	}
	for (i = slot_of(s, token); s->v[i].token && s->v[i].token != token; i = (i + 1) & mask)
		;
	if (!s->v[i].token && !spam && !ham)
		return true; /* gone (a delta's deleted row) and not here: nothing to do */
	if (!s->v[i].token) {
		if (s->count + 1 >= s->cap)
			return false;
		s->count++;
		s->v[i].token = token;
	}
	s->v[i].spam = spam;
	s->v[i].ham = ham;
	return true;
}

static const struct bt_slot *snap_find(const struct bayes_snap *s, uint64_t token)
{
	size_t i, mask = s->cap - 1;

	if (!token)
		return &s->zero;
	for (i = slot_of(s, token); s->v[i].token; i = (i + 1) & mask)
		if (s->v[i].token == token)
			return &s->v[i];
	return NULL;
}

void bayes_snap_totals(const struct bayes_snap *s, struct store_bayes_totals *out)
{
	*out = s->tot;
	out->ntokens = (int64_t)s->count + (s->zero.spam || s->zero.ham);
}

void bayes_snap_get(const struct bayes_snap *s, const uint64_t *tokens, size_t n,
		    struct store_bayes_count *out)
{
	for (size_t i = 0; i < n; i++) {
		const struct bt_slot *e;

		/* the slot of a later token is fetched while this one is read:
		 * a look-up is one cache miss, and they overlap */
		if (i + BT_PREFETCH < n)
			__builtin_prefetch(&s->v[slot_of(s, tokens[i + BT_PREFETCH])]);
		e = snap_find(s, tokens[i]);
		out[i].token = tokens[i];
		out[i].spam = e ? e->spam : 0;
		out[i].ham = e ? e->ham : 0;
	}
}

/* ---- the table ---------------------------------------------------------- */

static void deadline_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* The current snapshot, a reference; wait: a reader, which waits for the
 * first load (never the refreshing thread itself). */
static struct bayes_snap *snap_acquire(struct bayes_table *t, bool wait)
{
	struct bayes_snap *s;

	pthread_mutex_lock(&t->mu);
	if (!t->wanted) {
		t->wanted = true;
		pthread_cond_broadcast(&t->cv);
	}
	if (wait && t->thread && !t->first_done && !t->cur) {
		struct timespec until;

		/* the load is running: it costs less than reading the
		 * store meanwhile, and it is done before a message's deadline */
		deadline_after(&until, BT_FIRST_WAIT_MS);
		while (!t->first_done && !t->cur && !t->stop)
			if (pthread_cond_timedwait(&t->cv, &t->mu, &until) == ETIMEDOUT)
				break;
	}
	if ((s = t->cur))
		s->refs++;
	pthread_mutex_unlock(&t->mu);
	return s;
}

const struct bayes_snap *bayes_table_acquire(struct bayes_table *t)
{
	return t ? snap_acquire(t, true) : NULL;
}

void bayes_table_release(struct bayes_table *t, const struct bayes_snap *cs)
{
	struct bayes_snap *s = (struct bayes_snap *)cs;
	bool last;

	if (!t || !s)
		return;
	pthread_mutex_lock(&t->mu);
	last = --s->refs == 0;
	pthread_mutex_unlock(&t->mu);
	if (last)
		snap_free(s);
}

/* Makes s (may be NULL) the current snapshot. */
static void publish(struct bayes_table *t, struct bayes_snap *s)
{
	struct bayes_snap *old;

	pthread_mutex_lock(&t->mu);
	old = t->cur;
	t->cur = s;
	pthread_mutex_unlock(&t->mu);
	bayes_table_release(t, old);
}

void bayes_table_kick(struct bayes_table *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->kicked = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* ---- refresh ------------------------------------------------------------- */

struct build {
	struct bayes_table *t;
	const struct bayes_snap *old; /* the base of a delta */
	struct bayes_snap *snap;      /* being built */
	bool over;		      /* too big for memory */
	int err;
};

/* The new snapshot's slots: empty for a full dump, else the old ones. */
static int build_begin(struct build *b, const struct store_bayes_dump *d)
{
	const struct bayes_snap *old = d->full ? NULL : b->old;
	int64_t need = d->nrows + (old ? (int64_t)old->count : 0);
	size_t cap = cap_for(need);

	if ((int64_t)cap > b->t->memory / (2 * BAYES_TABLE_SLOT)) {
		b->over = true;
		return 1;
	}
	if (!(b->snap = snap_new(cap))) {
		b->err = -ENOMEM;
		return 1;
	}
	b->snap->tot = d->totals;
	if (!old)
		return 0;
	b->snap->zero = old->zero;
	if (old->cap == cap) {
		memcpy(b->snap->v, old->v, cap * sizeof(*old->v));
		b->snap->count = old->count;
		return 0;
	}
	for (size_t i = 0; i < old->cap; i++)
		if (old->v[i].token &&
		    !snap_put(b->snap, old->v[i].token, old->v[i].spam, old->v[i].ham)) {
			b->err = -ENOMEM;
			return 1;
		}
	return 0;
}

static int build_cb(const struct store_bayes_dump *d, const struct store_bayes_count *rows,
		    size_t n, void *arg)
{
	struct build *b = arg;

	if (!rows)
		return build_begin(b, d);
	for (size_t i = 0; i < n; i++)
		if (!snap_put(b->snap, rows[i].token, rows[i].spam, rows[i].ham)) {
			/* more rows than the dump announced: a broken invariant
			 * of the store, so no snapshot rather than a wrong one */
			b->err = -ENOMEM;
			return 1;
		}
	return 0;
}

static int refresh_locked(struct bayes_table *t)
{
	struct build b = {.t = t};
	struct store_bayes_totals tot;
	int64_t t0 = time_mono_us();
	int rc;

	if (t->memory <= 0)
		return 0;
	b.old = snap_acquire(t, false);
	if (b.old || t->over_gen >= 0) {
		/* the cheap question first: did anything change? */
		if ((rc = store_bayes_totals(t->st, &tot))) {
			rc = -EAGAIN;
			goto out;
		}
		if ((b.old && tot.generation == b.old->tot.generation) ||
		    (!b.old && tot.generation == t->over_gen)) {
			rc = 0;
			goto out;
		}
	}
	if ((rc = store_bayes_dump(t->st, b.old ? b.old->tot.generation : -1, build_cb, &b))) {
		rc = -EAGAIN;
		goto out;
	}
	if ((rc = b.err) < 0)
		goto out;
	if (b.over) {
		struct store_bayes_totals now;

		/* over the bound: read the store until it changes */
		if (t->over_gen < 0)
			log_warn("bayes",
				 "token table past bayes.memory (%lld bytes): reading the "
				 "store instead",
				 (long long)t->memory);
		publish(t, NULL);
		t->over_gen = store_bayes_totals(t->st, &now) == STORE_OK ? now.generation : -1;
		goto out;
	}
	if (!b.snap)
		goto out; /* stopped before the begin callback: nothing read */
	log_debug("bayes", "token table generation %lld: %zu tokens, %zu slots, %s in %lld ms",
		  (long long)b.snap->tot.generation, b.snap->count, b.snap->cap,
		  b.old && b.snap->cap == b.old->cap ? "delta" : "load",
		  (long long)((time_mono_us() - t0) / 1000));
	t->over_gen = -1;
	publish(t, b.snap);
	b.snap = NULL;
out:
	snap_free(b.snap);
	bayes_table_release(t, b.old);
	return rc;
}

int bayes_table_refresh(struct bayes_table *t)
{
	int rc;

	if (!t)
		return -EINVAL;
	pthread_mutex_lock(&t->refresh_mu);
	rc = refresh_locked(t);
	pthread_mutex_unlock(&t->refresh_mu);
	return rc;
}

/* The background thread: the first load at once, then a refresh every
 * poll_ms (or at once when kicked). */
static void *refresher(void *arg)
{
	struct bayes_table *t = arg;
	struct timespec until;
	int rc;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		if (!t->wanted) {
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		t->kicked = false;
		pthread_mutex_unlock(&t->mu);
		if ((rc = bayes_table_refresh(t)) < 0)
			log_warn("bayes", "token table refresh failed: %s",
				 rc == -EAGAIN ? store_last_error(t->st) : strerror(-rc));
		pthread_mutex_lock(&t->mu);
		if (!t->first_done) {
			t->first_done = true;
			pthread_cond_broadcast(&t->cv);
		}
		deadline_after(&until, t->poll_ms);
		while (!t->stop && !t->kicked)
			if (pthread_cond_timedwait(&t->cv, &t->mu, &until) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

struct bayes_table *bayes_table_new(struct store *st, int64_t memory, int64_t poll_ms,
				    bool background)
{
	struct bayes_table *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	bool cv = false;

	if (!t || !st)
		goto fail;
	t->st = st;
	t->memory = memory;
	t->poll_ms = poll_ms < BAYES_TABLE_MIN_POLL_MS ? BAYES_TABLE_MIN_POLL_MS : poll_ms;
	t->over_gen = -1;
	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_init(&t->refresh_mu, NULL);
	if (pthread_condattr_init(&ca))
		goto fail_mu;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	cv = pthread_cond_init(&t->cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!cv)
		goto fail_mu;
	if (background && memory > 0) {
		t->wanted = true;
		if (pthread_create(&t->tid, NULL, refresher, t))
			goto fail_cv;
		t->thread = true;
	}
	return t;
fail_cv:
	pthread_cond_destroy(&t->cv);
fail_mu:
	pthread_mutex_destroy(&t->mu);
	pthread_mutex_destroy(&t->refresh_mu);
fail:
	store_close(st);
	free(t);
	return NULL;
}

void bayes_table_free(struct bayes_table *t)
{
	if (!t)
		return;
	if (t->thread) {
		pthread_mutex_lock(&t->mu);
		t->stop = true;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->tid, NULL);
	}
	publish(t, NULL);
	store_close(t->st);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	pthread_mutex_destroy(&t->refresh_mu);
	free(t);
}
