/* SPDX-License-Identifier: MIT */
#include "scan/dnsbl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scan/dnslist.h"

struct dnsbl {
	const struct config *cfg;
	struct metrics *metrics;
	struct dnslist *dl;
};

struct dnsbl_req {
	struct dnsbl *d;
	struct dnslist_req *lq; /* the look-ups, one per zone */
	dnsbl_cb cb;
	void *arg;
	struct dnsbl_result res;
	struct dnsbl_hit *hits;	    /* nzones * DNSBL_MAX_HITS_PER_ZONE */
	struct dnsbl_skip *skipped; /* nzones */
};

int dnsbl_new(struct event_base *base, const struct config *cfg, struct resolver *res,
	      struct metrics *metrics, struct dnsbl **out, char *why, size_t whylen)
{
	struct dnsbl *d;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d) {
		(void)str_copy(why, whylen, "out of memory");
		return -ENOMEM;
	}
	d->cfg = cfg;
	d->metrics = metrics;
	rc = dnslist_new(base, cfg, "dnsbl", cfg->dnsbl.zones,
			 cfg->dnsbl.enabled ? cfg->dnsbl.nzones : 0, res, metrics, &d->dl, why,
			 whylen);
	if (rc < 0) {
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void dnsbl_free(struct dnsbl *d)
{
	if (!d)
		return;
	dnslist_free(d->dl);
	free(d);
}

static void req_release(void *owner)
{
	struct dnsbl_req *q = owner;

	free(q->hits);
	free(q->skipped);
	free(q);
}

static void on_skip(void *owner, size_t ask, const struct config_dnsbl_zone *cz, const char *why)
{
	struct dnsbl_req *q = owner;
	struct dnsbl_skip *s = &q->skipped[q->res.nskipped++];

	(void)ask;
	s->zone = cz->zone;
	s->why = why;
}

static void on_hit(void *owner, size_t ask, const struct config_dnsbl_zone *cz, const char *symbol,
		   uint32_t code, double weight)
{
	struct dnsbl_req *q = owner;
	struct dnsbl_hit *h = &q->hits[q->res.nhits++];

	(void)ask;
	h->zone = cz->zone;
	h->symbol = symbol;
	h->code = code;
	h->weight = weight;
	h->allow = cz->allow;
}

/* Sums the hits; run once, when the last zone answered or the budget
 * ran out. */
static void finish(void *owner)
{
	struct dnsbl_req *q = owner;
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
}

static void deliver(void *owner)
{
	struct dnsbl_req *q = owner;

	q->cb(q, &q->res, q->arg);
}

static const struct dnslist_ops dnsbl_ops = {
    .hit = on_hit,
    .skip = on_skip,
    .finish = finish,
    .deliver = deliver,
    .release = req_release,
};

int dnsbl_check(struct dnsbl *d, const struct sockaddr *client, dnsbl_cb cb, void *arg,
		struct dnsbl_req **out)
{
	struct dnsbl_req *q;
	size_t nzones = dnslist_nzones(d->dl), nz = nzones ? nzones : 1;
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
	q->res.nzones = nzones;
	rc = dnslist_req_new(d->dl, &dnsbl_ops, q, nzones, DNSBL_MAX_HITS_PER_ZONE,
			     d->cfg->dnsbl.budget, &q->lq);
	if (rc < 0)
		return rc; /* q is released */
	rc = -ENOMEM;
	q->hits = calloc(nz * DNSBL_MAX_HITS_PER_ZONE, sizeof(*q->hits));
	q->skipped = calloc(nz, sizeof(*q->skipped));
	if (!q->hits || !q->skipped)
		goto out;
	metrics_add(d->metrics, M_DNSBL_CHECKS, 1);
	for (size_t i = 0; i < nzones; i++) {
		char name[RESOLVER_NAME_LEN];

		rc =
		    resolver_reverse_name(client, dnslist_zone(d->dl, i)->zone, name, sizeof(name));
		if (rc < 0)
			goto out;
		rc = dnslist_req_ask(q->lq, i, i, name);
		if (rc < 0)
			goto out;
		metrics_add(d->metrics, M_DNSBL_QUERIES, 1);
	}
	dnslist_req_go(q->lq);
	*out = q;
	return 0;
out:
	dnslist_req_free(q->lq); /* and q */
	return rc;
}

const struct dnsbl_result *dnsbl_req_result(const struct dnsbl_req *req)
{
	return req && dnslist_req_delivered(req->lq) ? &req->res : NULL;
}

void dnsbl_req_free(struct dnsbl_req *req)
{
	if (req)
		dnslist_req_free(req->lq); /* and req */
}
