/* SPDX-License-Identifier: MIT */
#include "scan/uribl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scan/urlcheck.h"

#define URIBL_MAX_ALLOW 64
#define URIBL_MAX_HITS_PER_ASK 4

struct uribl_zone {
	const struct config_dnsbl_zone *cz;
	struct resolver *res;
	bool owns_res;
};

struct uribl {
	struct event_base *base;
	const struct config *cfg;
	struct metrics *metrics;
	struct uribl_zone *zones;
	size_t nzones;
	char allow[URIBL_MAX_ALLOW][URIBL_DOMAIN_LEN];
	size_t nallow;
};

/* One domain at one zone. */
struct uribl_ask {
	struct uribl_req *req;
	struct resolver_req *rq; /* NULL once answered */
	size_t zone, dom;
	char err[48];
};

struct uribl_req {
	struct uribl *u;
	struct event *ev; /* the budget, and the delivery of the result */
	uribl_cb cb;
	void *arg;
	char (*doms)[URIBL_DOMAIN_LEN];
	size_t ndoms;
	struct uribl_ask *asks; /* ndoms * nzones */
	size_t nasks, pending;
	bool done, delivered, firing, freed;
	struct uribl_result res;
	struct uribl_hit *hits;	    /* nasks * URIBL_MAX_HITS_PER_ASK */
	struct uribl_skip *skipped; /* nasks */
};

static bool name_ok(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n >= URIBL_DOMAIN_LEN || d[0] == '.' || d[n - 1] == '.' || !strchr(d, '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = d[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (c == '.' && d[i + 1] != '.')))
			return false;
	}
	return true;
}

/* "a.example, b.example c.example": lower case, validated. */
static int parse_allow(struct uribl *u, const char *list, char *why, size_t whylen)
{
	char tmp[sizeof(((struct config *)0)->uribl.allow_domains)], *save = NULL, *tok;

	if (str_copy(tmp, sizeof(tmp), list) < 0)
		return -EINVAL;
	for (tok = strtok_r(tmp, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		str_lower_ascii(tok);
		if (!name_ok(tok) || u->nallow == URIBL_MAX_ALLOW) {
			(void)str_fmt(why, whylen, "uribl.allow_domains: bad or too many: '%.64s'",
				      tok);
			return -EINVAL;
		}
		(void)str_copy(u->allow[u->nallow++], URIBL_DOMAIN_LEN, tok);
	}
	return 0;
}

int uribl_new(struct event_base *base, const struct config *cfg, struct resolver *res,
	      struct metrics *metrics, struct uribl **out, char *why, size_t whylen)
{
	struct uribl *u;
	int rc = -ENOMEM;

	*out = NULL;
	if (!(u = calloc(1, sizeof(*u))))
		goto oom;
	u->base = base;
	u->cfg = cfg;
	u->metrics = metrics;
	u->nzones = cfg->uribl.enabled ? cfg->uribl.nzones : 0;
	if (!(u->zones = calloc(u->nzones ? u->nzones : 1, sizeof(*u->zones))))
		goto oom;
	if ((rc = parse_allow(u, cfg->uribl.allow_domains, why, whylen)) < 0)
		goto out;
	for (size_t i = 0; i < u->nzones; i++) {
		const struct config_dnsbl_zone *cz = &cfg->uribl.zones[i];
		struct uribl_zone *z = &u->zones[i];
		char rwhy[128];

		z->cz = cz;
		z->res = res;
		if (!cz->server[0])
			continue;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg->uribl.zones[j].server, cz->server)) {
				z->res = u->zones[j].res;
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
		rc = resolver_new(base, &o, &z->res, rwhy, sizeof(rwhy));
		if (rc < 0) {
			(void)str_fmt(why, whylen, "[uribl %s]: %s", cz->zone, rwhy);
			z->res = NULL;
			goto out;
		}
		z->owns_res = true;
	}
	*out = u;
	return 0;
oom:
	(void)str_copy(why, whylen, "out of memory");
out:
	uribl_free(u);
	return rc;
}

void uribl_free(struct uribl *u)
{
	if (!u)
		return;
	for (size_t i = 0; u->zones && i < u->nzones; i++)
		if (u->zones[i].owns_res)
			resolver_free(u->zones[i].res);
	free(u->zones);
	free(u);
}

static void req_release(struct uribl_req *q)
{
	for (size_t i = 0; q->asks && i < q->nasks; i++)
		resolver_cancel(q->asks[i].rq);
	if (q->ev)
		event_free(q->ev);
	free(q->asks);
	free(q->hits);
	free(q->skipped);
	free(q->doms);
	free(q);
}

static void skip(struct uribl_req *q, const struct uribl_ask *a, const char *why)
{
	struct uribl_skip *s = &q->skipped[q->res.nskipped++];

	s->zone = q->u->zones[a->zone].cz->zone;
	s->domain = q->doms[a->dom];
	s->why = why;
}

static void finish(struct uribl_req *q)
{
	q->res.score = 0;
	for (size_t i = 0; i < q->res.nhits; i++)
		q->res.score += q->hits[i].weight;
	q->res.hits = q->hits;
	q->res.skipped = q->skipped;
	q->done = true;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct uribl_req *q = arg;

	(void)fd;
	(void)what;
	if (!q->done) {
		for (size_t i = 0; i < q->nasks; i++) {
			if (!q->asks[i].rq)
				continue;
			resolver_cancel(q->asks[i].rq);
			q->asks[i].rq = NULL;
			skip(q, &q->asks[i], "timeout");
			metrics_add(q->u->metrics, M_DNSBL_TIMEOUTS, 1);
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

static void on_answer(const struct resolver_result *rr, void *arg)
{
	struct uribl_ask *a = arg;
	struct uribl_req *q = a->req;
	const struct config_dnsbl_zone *cz = q->u->zones[a->zone].cz;
	size_t nz = 0, first = q->res.nhits;
	bool error_code = false;

	a->rq = NULL;
	if (rr->status == RESOLVER_TEMPFAIL) {
		skip(q, a, rr->why);
		if (!strcmp(rr->why, "timeout"))
			metrics_add(q->u->metrics, M_DNSBL_TIMEOUTS, 1);
	} else if (rr->status == RESOLVER_OK) {
		for (size_t i = 0; i < rr->n; i++) {
			uint32_t code = ntohl(rr->rr[i].a.s_addr);
			const char *sym = cz->symbol;
			double w = cz->weight;
			bool dup = false;

			if ((code >> 24) != 127)
				continue;
			if ((code & 0xffffff00u) == 0x7fffff00u) {
				error_code = true;
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
			for (size_t k = first; k < q->res.nhits; k++)
				dup = dup || !strcmp(q->hits[k].symbol, sym);
			if (dup || nz == URIBL_MAX_HITS_PER_ASK)
				continue;
			struct uribl_hit *h = &q->hits[q->res.nhits++];
			h->zone = cz->zone;
			h->symbol = sym;
			h->domain = q->doms[a->dom];
			h->code = code;
			h->weight = w;
			h->allow = cz->allow;
			nz++;
		}
		if (nz)
			metrics_add(q->u->metrics, M_DNSBL_HITS, 1);
		else if (error_code)
			skip(q, a, a->err);
	}
	if (--q->pending == 0) {
		finish(q);
		event_active(q->ev, EV_TIMEOUT, 0);
	}
}

static bool allowed(const struct uribl *u, const char *d)
{
	size_t n = strlen(d);

	for (size_t i = 0; i < u->nallow; i++) {
		size_t a = strlen(u->allow[i]);
		if (n >= a && !strcmp(d + n - a, u->allow[i]) && (n == a || d[n - a - 1] == '.'))
			return true;
	}
	return false;
}

int uribl_start(struct uribl *u, const char *const *domains, size_t n, uribl_cb cb, void *arg,
		struct uribl_req **out)
{
	struct uribl_req *q;
	struct timeval tv;
	size_t cap = (size_t)u->cfg->uribl.max_domains, nz = u->nzones;
	int rc = -ENOMEM;

	*out = NULL;
	if (!cb || (n && !domains))
		return -EINVAL;
	if (!(q = calloc(1, sizeof(*q))))
		return -ENOMEM;
	q->u = u;
	q->cb = cb;
	q->arg = arg;
	if (cap > URIBL_MAX_DOMAINS)
		cap = URIBL_MAX_DOMAINS;
	if (!(q->doms = calloc(cap ? cap : 1, sizeof(*q->doms))))
		goto out;
	for (size_t i = 0; i < n; i++) {
		char d[URIBL_DOMAIN_LEN];
		bool dup = false;

		if (!domains[i] || str_copy(d, sizeof(d), domains[i]) < 0)
			continue;
		str_lower_ascii(d);
		if (!name_ok(d))
			continue;
		for (size_t k = 0; k < q->ndoms && !dup; k++)
			dup = !strcmp(q->doms[k], d);
		if (dup)
			continue;
		if (allowed(u, d)) {
			q->res.nallowed++;
			continue;
		}
		if (q->ndoms == cap) {
			q->res.nover++;
			continue;
		}
		(void)str_copy(q->doms[q->ndoms++], URIBL_DOMAIN_LEN, d);
	}
	q->nasks = q->ndoms * nz;
	q->asks = calloc(q->nasks ? q->nasks : 1, sizeof(*q->asks));
	q->hits = calloc((q->nasks ? q->nasks : 1) * URIBL_MAX_HITS_PER_ASK, sizeof(*q->hits));
	q->skipped = calloc(q->nasks ? q->nasks : 1, sizeof(*q->skipped));
	q->ev = evtimer_new(u->base, on_event, q);
	if (!q->asks || !q->hits || !q->skipped || !q->ev)
		goto out;
	tv.tv_sec = u->cfg->uribl.budget / 1000;
	tv.tv_usec = (u->cfg->uribl.budget % 1000) * 1000;
	if (evtimer_add(q->ev, &tv) < 0)
		goto out;
	q->res.ndomains = q->ndoms;
	for (size_t d = 0; d < q->ndoms; d++)
		for (size_t z = 0; z < nz; z++) {
			struct uribl_ask *a = &q->asks[d * nz + z];
			char name[RESOLVER_NAME_LEN];

			a->req = q;
			a->zone = z;
			a->dom = d;
			if (str_fmt(name, sizeof(name), "%s.%s", q->doms[d], u->zones[z].cz->zone) <
			    0)
				continue; /* too long for a query: not asked */
			rc =
			    resolver_query(u->zones[z].res, name, RESOLVER_A, on_answer, a, &a->rq);
			if (rc < 0)
				goto out;
			q->pending++;
			q->res.nqueries++;
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

const struct uribl_result *uribl_req_result(const struct uribl_req *req)
{
	return req && req->delivered && !req->freed ? &req->res : NULL;
}

void uribl_req_free(struct uribl_req *req)
{
	if (!req || req->freed)
		return;
	if (req->firing) {
		req->freed = true;
		return;
	}
	req_release(req);
}

size_t uribl_symbols(const struct uribl_result *r, struct scan_symbol *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nhits; i++) {
		const struct uribl_hit *h = &r->hits[i];
		size_t more = 0;
		bool seen = false;

		for (size_t k = 0; k < i && !seen; k++)
			seen = !strcmp(r->hits[k].symbol, h->symbol);
		if (seen)
			continue;
		for (size_t k = i + 1; k < r->nhits; k++)
			if (!strcmp(r->hits[k].symbol, h->symbol))
				more++;
		if (n == max)
			break;
		(void)str_copy(out[n].name, sizeof(out[n].name), h->symbol);
		out[n].score = h->weight;
		if (more)
			(void)str_fmt(out[n].detail, sizeof(out[n].detail), "%s via %s +%zu more",
				      h->domain, h->zone, more);
		else
			(void)str_fmt(out[n].detail, sizeof(out[n].detail), "%s via %s", h->domain,
				      h->zone);
		n++;
	}
	return n;
}

size_t uribl_domains(const struct psl_ctx_st *psl, const struct mime_msg *m,
		     char (*out)[URIBL_DOMAIN_LEN], size_t max)
{
	size_t n = 0, looked = 0;

	for (size_t i = 0; i < mime_msg_nparts(m) && n < max; i++) {
		const struct mime_part *p = mime_msg_part(m, i);

		for (size_t k = 0; k < p->nurls && n < max && looked < URLCHECK_MAX_URLS;
		     k++, looked++) {
			const struct mime_url *url = &p->urls[k];
			char host[URIBL_DOMAIN_LEN], reg[URIBL_DOMAIN_LEN];
			bool dup = false;

			if (url->host_ascii.len == 0 || url->host_ascii.len >= sizeof(host))
				continue;
			memcpy(host, url->host_ascii.ptr, url->host_ascii.len);
			host[url->host_ascii.len] = '\0';
			if (urlcheck_registrable(psl, host, reg, sizeof(reg)) < 0)
				continue;
			for (size_t j = 0; j < n && !dup; j++)
				dup = !strcmp(out[j], reg);
			if (!dup)
				(void)str_copy(out[n++], URIBL_DOMAIN_LEN, reg);
		}
	}
	return n;
}
