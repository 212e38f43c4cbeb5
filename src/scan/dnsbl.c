/* SPDX-License-Identifier: MIT */
#include "scan/dnsbl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dnsbl_zone {
	const struct config_dnsbl_zone *cz;
	struct resolver *res; /* the worker's, or owned (cz->server) */
	bool owns_res;
};

struct dnsbl {
	struct event_base *base;
	const struct config *cfg;
	struct metrics *metrics;
	struct dnsbl_zone *zones;
	size_t nzones;
};

/* One zone of one check. */
struct dnsbl_ask {
	struct dnsbl_req *req;
	struct resolver_req *rq; /* NULL once answered */
	size_t zone;
};

struct dnsbl_req {
	struct dnsbl *d;
	struct event *ev; /* the budget, and the delivery of the result */
	dnsbl_cb cb;
	void *arg;
	struct dnsbl_ask *asks;
	size_t pending;
	bool done, delivered, firing, freed;
	struct dnsbl_result res;
	struct dnsbl_hit *hits;	    /* nzones * DNSBL_MAX_HITS_PER_ZONE */
	struct dnsbl_skip *skipped; /* nzones */
	char (*errs)[48];	    /* per zone, for error-code reasons */
};

int dnsbl_new(struct event_base *base, const struct config *cfg, struct resolver *res,
	      struct metrics *metrics, struct dnsbl **out, char *why, size_t whylen)
{
	struct dnsbl *d;
	int rc = -ENOMEM;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		goto oom;
	d->base = base;
	d->cfg = cfg;
	d->metrics = metrics;
	d->nzones = cfg->dnsbl.enabled ? cfg->dnsbl.nzones : 0;
	d->zones = calloc(d->nzones ? d->nzones : 1, sizeof(*d->zones));
	if (!d->zones)
		goto oom;
	for (size_t i = 0; i < d->nzones; i++) {
		const struct config_dnsbl_zone *cz = &cfg->dnsbl.zones[i];
		struct dnsbl_zone *z = &d->zones[i];

		z->cz = cz;
		z->res = res;
		if (!cz->server[0])
			continue;
		/* zones on the same server share one resolver (and its cache) */
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg->dnsbl.zones[j].server, cz->server)) {
				z->res = d->zones[j].res;
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
			(void)str_fmt(why, whylen, "[dnsbl %s]: %s", cz->zone, rwhy);
			z->res = NULL;
			goto out;
		}
		z->owns_res = true;
	}
	*out = d;
	return 0;
oom:
	(void)str_copy(why, whylen, "out of memory");
out:
	dnsbl_free(d);
	return rc;
}

void dnsbl_free(struct dnsbl *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->zones && i < d->nzones; i++)
		if (d->zones[i].owns_res)
			resolver_free(d->zones[i].res);
	free(d->zones);
	free(d);
}

static void req_release(struct dnsbl_req *q)
{
	for (size_t i = 0; q->asks && i < q->d->nzones; i++)
		resolver_cancel(q->asks[i].rq);
	if (q->ev)
		event_free(q->ev);
	free(q->asks);
	free(q->hits);
	free(q->skipped);
	free(q->errs);
	free(q);
}

static void skip_zone(struct dnsbl_req *q, size_t zi, const char *why)
{
	struct dnsbl_skip *s = &q->skipped[q->res.nskipped++];

	s->zone = q->d->zones[zi].cz->zone;
	s->why = why;
}

/* Sums the hits; run once, when the last zone answered or the budget
 * ran out. */
static void finish(struct dnsbl_req *q)
{
	struct dnsbl_result *r = &q->res;
	double best = 0;

	r->score = 0;
	for (size_t i = 0; i < r->nhits; i++) {
		const struct dnsbl_hit *h = &q->hits[i];
		r->score += h->weight;
		if (h->allow)
			r->allowlisted = true;
		else if (h->weight > best) {
			best = h->weight;
			r->reject_zone = h->zone;
		}
	}
	r->hits = q->hits;
	r->skipped = q->skipped;
	r->reject = !r->allowlisted && r->score > 0 && r->score >= q->d->cfg->dnsbl.reject_score &&
		    r->reject_zone != NULL;
	if (!r->reject)
		r->reject_zone = NULL;
	else
		metrics_add(q->d->metrics, M_DNSBL_REJECTS, 1);
	q->done = true;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct dnsbl_req *q = arg;

	(void)fd;
	(void)what;
	if (!q->done) {
		/* the budget is spent: skip the zones still out */
		for (size_t i = 0; i < q->d->nzones; i++) {
			if (!q->asks[i].rq)
				continue;
			resolver_cancel(q->asks[i].rq);
			q->asks[i].rq = NULL;
			skip_zone(q, i, "timeout");
			metrics_add(q->d->metrics, M_DNSBL_TIMEOUTS, 1);
		}
		q->pending = 0;
		finish(q);
	}
	q->delivered = q->firing = true;
	q->cb(q, &q->res, q->arg);
	q->firing = false;
	if (q->freed)
		req_release(q);
}

static void add_hit(struct dnsbl_req *q, size_t zi, size_t *nz, const char *symbol, uint32_t code,
		    double weight)
{
	const struct config_dnsbl_zone *cz = q->d->zones[zi].cz;
	struct dnsbl_hit *base = &q->hits[q->res.nhits - *nz];

	for (size_t i = 0; i < *nz; i++)
		if (!strcmp(base[i].symbol, symbol))
			return; /* the same symbol twice in one answer counts once */
	if (*nz == DNSBL_MAX_HITS_PER_ZONE)
		return;
	struct dnsbl_hit *h = &q->hits[q->res.nhits++];
	h->zone = cz->zone;
	h->symbol = symbol;
	h->code = code;
	h->weight = weight;
	h->allow = cz->allow;
	(*nz)++;
}

static void on_answer(const struct resolver_result *rr, void *arg)
{
	struct dnsbl_ask *a = arg;
	struct dnsbl_req *q = a->req;
	const struct config_dnsbl_zone *cz = q->d->zones[a->zone].cz;
	size_t nz = 0;
	bool error_code = false;

	a->rq = NULL;
	if (rr->status == RESOLVER_TEMPFAIL) {
		skip_zone(q, a->zone, rr->why);
		if (!strcmp(rr->why, "timeout"))
			metrics_add(q->d->metrics, M_DNSBL_TIMEOUTS, 1);
	} else if (rr->status == RESOLVER_OK) {
		for (size_t i = 0; i < rr->n; i++) {
			uint32_t code = ntohl(rr->rr[i].a.s_addr);
			const char *sym = cz->symbol;
			double w = cz->weight;

			if ((code >> 24) != 127)
				continue; /* not a listing (a hijacked NXDOMAIN?) */
			if ((code & 0xffffff00u) == 0x7fffff00u) {
				error_code = true;
				(void)str_fmt(q->errs[a->zone], sizeof(q->errs[0]),
					      "error code 127.255.255.%u", code & 0xff);
				continue;
			}
			for (size_t c = 0; c < cz->ncodes; c++)
				if (cz->codes[c].code == code) {
					sym = cz->codes[c].symbol;
					if (cz->codes[c].has_weight)
						w = cz->codes[c].weight;
					break;
				}
			add_hit(q, a->zone, &nz, sym, code, w);
		}
		if (nz)
			metrics_add(q->d->metrics, M_DNSBL_HITS, 1);
		else if (error_code)
			skip_zone(q, a->zone, q->errs[a->zone]);
	}
	/* PERMFAIL: not listed */
	if (--q->pending == 0) {
		finish(q);
		event_active(q->ev, EV_TIMEOUT, 0);
	}
}

int dnsbl_check(struct dnsbl *d, const struct sockaddr *client, dnsbl_cb cb, void *arg,
		struct dnsbl_req **out)
{
	struct dnsbl_req *q;
	struct timeval tv;
	size_t nz = d->nzones ? d->nzones : 1;
	int rc = -ENOMEM;

	*out = NULL;
	if (!client || (client->sa_family != AF_INET && client->sa_family != AF_INET6) || !cb)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->res.nzones = d->nzones;
	q->asks = calloc(nz, sizeof(*q->asks));
	q->hits = calloc(nz * DNSBL_MAX_HITS_PER_ZONE, sizeof(*q->hits));
	q->skipped = calloc(nz, sizeof(*q->skipped));
	q->errs = calloc(nz, sizeof(*q->errs));
	q->ev = evtimer_new(d->base, on_event, q);
	if (!q->asks || !q->hits || !q->skipped || !q->errs || !q->ev)
		goto out;
	tv.tv_sec = d->cfg->dnsbl.budget / 1000;
	tv.tv_usec = (d->cfg->dnsbl.budget % 1000) * 1000;
	if (evtimer_add(q->ev, &tv) < 0)
		goto out;
	metrics_add(d->metrics, M_DNSBL_CHECKS, 1);
	for (size_t i = 0; i < d->nzones; i++) {
		char name[RESOLVER_NAME_LEN];
		struct dnsbl_ask *a = &q->asks[i];

		a->req = q;
		a->zone = i;
		rc = resolver_reverse_name(client, d->zones[i].cz->zone, name, sizeof(name));
		if (rc < 0)
			goto out;
		rc = resolver_query(d->zones[i].res, name, RESOLVER_A, on_answer, a, &a->rq);
		if (rc < 0)
			goto out;
		q->pending++;
		metrics_add(d->metrics, M_DNSBL_QUERIES, 1);
	}
	if (q->pending == 0) {
		finish(q);
		event_active(q->ev, EV_TIMEOUT, 0);
	}
	*out = q;
	return 0;
out:
	req_release(q);
	return rc;
}

const struct dnsbl_result *dnsbl_req_result(const struct dnsbl_req *req)
{
	return req && req->delivered && !req->freed ? &req->res : NULL;
}

void dnsbl_req_free(struct dnsbl_req *req)
{
	if (!req || req->freed)
		return;
	if (req->firing) {
		req->freed = true; /* released when the callback returns */
		return;
	}
	req_release(req);
}
