/* SPDX-License-Identifier: MIT */
#include "scan/dnslist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dnslist_zone {
	const struct config_dnsbl_zone *cz;
	struct resolver *res; /* the worker's, or owned (cz->server) */
	bool owns_res;
};

struct dnslist {
	struct event_base *base;
	struct metrics *metrics;
	struct dnslist_zone *zones;
	size_t nzones;
};

/* One name at one zone. */
struct dnslist_ask {
	struct dnslist_req *req;
	struct resolver_req *rq; /* NULL once answered, or never asked */
	size_t zone;
	char err[48]; /* the reason of an error-code skip */
};

struct dnslist_req {
	struct dnslist *dl;
	const struct dnslist_ops *ops;
	void *owner;
	struct event *ev; /* the budget, and the delivery of the result */
	struct dnslist_ask *asks;
	size_t nasks, pending, max_codes;
	bool done, delivered, firing, freed;
};

int dnslist_new(struct event_base *base, const struct config *cfg, const char *section,
		const struct config_dnsbl_zone *zones, size_t nzones, struct resolver *res,
		struct metrics *metrics, struct dnslist **out, char *why, size_t whylen)
{
	struct dnslist *dl;
	int rc = -ENOMEM;

	*out = NULL;
	dl = calloc(1, sizeof(*dl));
	if (!dl)
		goto oom;
	dl->base = base;
	dl->metrics = metrics;
	dl->nzones = nzones;
	dl->zones = calloc(nzones ? nzones : 1, sizeof(*dl->zones));
	if (!dl->zones)
		goto oom;
	for (size_t i = 0; i < nzones; i++) {
		const struct config_dnsbl_zone *cz = &zones[i];
		struct dnslist_zone *z = &dl->zones[i];

		z->cz = cz;
		z->res = res;
		if (!cz->server[0])
			continue;
		/* zones on the same server share one resolver (and its cache) */
		for (size_t j = 0; j < i; j++)
			if (!strcmp(zones[j].server, cz->server)) {
				z->res = dl->zones[j].res;
				break;
			}
		if (z->res != res)
			continue;
		struct resolver_opts o = {
		    .servers = cz->server,
		    .timeout_ms = cfg->dns.timeout,
		    .cache_size = cfg->dns.cache_size,
		    .max_inflight = cfg->dns.max_inflight,
		    .negative_ttl = cfg->dns.negative_ttl,
		    .max_ttl = cfg->dns.max_ttl,
		    .metrics = metrics,
		};
		char rwhy[128];
		rc = resolver_new(base, &o, &z->res, rwhy, sizeof(rwhy));
		if (rc < 0) {
			(void)str_fmt(why, whylen, "[%s %s]: %s", section, cz->zone, rwhy);
			z->res = NULL;
			goto out;
		}
		z->owns_res = true;
	}
	*out = dl;
	return 0;
oom:
	(void)str_copy(why, whylen, "out of memory");
out:
	dnslist_free(dl);
	return rc;
}

void dnslist_free(struct dnslist *dl)
{
	if (!dl)
		return;
	for (size_t i = 0; dl->zones && i < dl->nzones; i++)
		if (dl->zones[i].owns_res)
			resolver_free(dl->zones[i].res);
	free(dl->zones);
	free(dl);
}

size_t dnslist_nzones(const struct dnslist *dl)
{
	return dl->nzones;
}

const struct config_dnsbl_zone *dnslist_zone(const struct dnslist *dl, size_t zone)
{
	return dl->zones[zone].cz;
}

/* Frees q and releases its owner. */
static void req_release(struct dnslist_req *q)
{
	for (size_t i = 0; q->asks && i < q->nasks; i++)
		resolver_cancel(q->asks[i].rq);
	if (q->ev)
		event_free(q->ev);
	q->ops->release(q->owner);
	free(q->asks);
	free(q);
}

static void skip(struct dnslist_req *q, size_t ask, const char *why)
{
	q->ops->skip(q->owner, ask, q->dl->zones[q->asks[ask].zone].cz, why);
}

static void finish(struct dnslist_req *q)
{
	q->ops->finish(q->owner);
	q->done = true;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct dnslist_req *q = arg;

	(void)fd;
	(void)what;
	if (!q->done) {
		/* the budget is spent: skip the look-ups still out */
		for (size_t i = 0; i < q->nasks; i++) {
			if (!q->asks[i].rq)
				continue;
			resolver_cancel(q->asks[i].rq);
			q->asks[i].rq = NULL;
			skip(q, i, "timeout");
			metrics_add(q->dl->metrics, M_DNSBL_TIMEOUTS, 1);
		}
		q->pending = 0;
		finish(q);
	}
	q->delivered = q->firing = true;
	q->ops->deliver(q->owner);
	q->firing = false;
	if (q->freed)
		req_release(q);
}

/* The listings of one answer, through the zone's codes map. Returns how
 * many symbols count; *error_code tells whether an error code came. */
static size_t read_codes(struct dnslist_req *q, struct dnslist_ask *a,
			 const struct resolver_result *rr, bool *error_code)
{
	const struct config_dnsbl_zone *cz = q->dl->zones[a->zone].cz;
	const char *seen[DNSLIST_MAX_CODES];
	size_t n = 0;

	for (size_t i = 0; i < rr->n; i++) {
		uint32_t code = ntohl(rr->rr[i].a.s_addr);
		const char *sym = cz->symbol;
		double w = cz->weight;
		bool dup = false;

		if ((code >> 24) != 127)
			continue; /* not a listing (a hijacked NXDOMAIN?) */
		if ((code & 0xffffff00u) == 0x7fffff00u) {
			*error_code = true;
			(void)str_fmt(a->err, sizeof(a->err), "error code 127.255.255.%u",
				      code & 0xff);
			continue;
		}
		for (size_t c = 0; c < cz->ncodes; c++)
			if (cz->codes[c].code == code) {
				sym = cz->codes[c].symbol;
				if (cz->codes[c].has_weight)
					w = cz->codes[c].weight;
				break;
			}
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(seen[k], sym);
		if (dup || n == q->max_codes)
			continue;
		seen[n++] = sym;
		q->ops->hit(q->owner, (size_t)(a - q->asks), cz, sym, code, w);
	}
	return n;
}

static void on_answer(const struct resolver_result *rr, void *arg)
{
	struct dnslist_ask *a = arg;
	struct dnslist_req *q = a->req;
	size_t ask = (size_t)(a - q->asks);
	bool error_code = false;

	a->rq = NULL;
	if (rr->status == RESOLVER_TEMPFAIL) {
		skip(q, ask, rr->why);
		if (!strcmp(rr->why, "timeout"))
			metrics_add(q->dl->metrics, M_DNSBL_TIMEOUTS, 1);
	} else if (rr->status == RESOLVER_OK) {
		if (read_codes(q, a, rr, &error_code))
			metrics_add(q->dl->metrics, M_DNSBL_HITS, 1);
		else if (error_code)
			skip(q, ask, a->err);
	}
	/* PERMFAIL: not listed */
	if (--q->pending == 0) {
		finish(q);
		event_active(q->ev, EV_TIMEOUT, 0);
	}
}

int dnslist_req_new(struct dnslist *dl, const struct dnslist_ops *ops, void *owner, size_t nasks,
		    size_t max_codes, int64_t budget_ms, struct dnslist_req **out)
{
	struct dnslist_req *q;
	struct timeval tv;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q) {
		ops->release(owner);
		return -ENOMEM;
	}
	q->dl = dl;
	q->ops = ops;
	q->owner = owner;
	q->nasks = nasks;
	q->max_codes = max_codes < DNSLIST_MAX_CODES ? max_codes : DNSLIST_MAX_CODES;
	q->asks = calloc(nasks ? nasks : 1, sizeof(*q->asks));
	q->ev = evtimer_new(dl->base, on_event, q);
	if (!q->asks || !q->ev)
		goto out;
	tv.tv_sec = budget_ms / 1000;
	tv.tv_usec = (budget_ms % 1000) * 1000;
	if (evtimer_add(q->ev, &tv) < 0)
		goto out;
	for (size_t i = 0; i < nasks; i++)
		q->asks[i].req = q;
	*out = q;
	return 0;
out:
	req_release(q);
	return -ENOMEM;
}

int dnslist_req_ask(struct dnslist_req *q, size_t ask, size_t zone, const char *name)
{
	struct dnslist_ask *a = &q->asks[ask];
	int rc;

	a->zone = zone;
	rc = resolver_query(q->dl->zones[zone].res, name, RESOLVER_A, on_answer, a, &a->rq);
	if (rc < 0)
		return rc;
	q->pending++;
	return 0;
}

void dnslist_req_go(struct dnslist_req *q)
{
	if (q->pending == 0) {
		finish(q);
		event_active(q->ev, EV_TIMEOUT, 0);
	}
}

bool dnslist_req_delivered(const struct dnslist_req *q)
{
	return q && q->delivered && !q->freed;
}

void dnslist_req_free(struct dnslist_req *q)
{
	if (!q || q->freed)
		return;
	if (q->firing) {
		q->freed = true; /* released when deliver returns */
		return;
	}
	req_release(q);
}
