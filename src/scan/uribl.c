/* SPDX-License-Identifier: MIT */
#include "scan/uribl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scan/dnslist.h"
#include "scan/urlcheck.h"

#define URIBL_MAX_ALLOW 64
#define URIBL_MAX_HITS_PER_ASK 4

struct uribl {
	const struct config *cfg;
	struct dnslist *dl;
	char allow[URIBL_MAX_ALLOW][URIBL_DOMAIN_LEN];
	size_t nallow;
};

/* Look-up d * nzones + z asks domain d at zone z. */
struct uribl_req {
	struct uribl *u;
	struct dnslist_req *lq;
	uribl_cb cb;
	void *arg;
	char (*doms)[URIBL_DOMAIN_LEN];
	size_t ndoms;
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
	int rc;

	*out = NULL;
	if (!(u = calloc(1, sizeof(*u)))) {
		(void)str_copy(why, whylen, "out of memory");
		return -ENOMEM;
	}
	u->cfg = cfg;
	if ((rc = parse_allow(u, cfg->uribl.allow_domains, why, whylen)) < 0)
		goto out;
	rc = dnslist_new(base, cfg, "uribl", cfg->uribl.zones,
			 cfg->uribl.enabled ? cfg->uribl.nzones : 0, res, metrics, &u->dl, why,
			 whylen);
	if (rc < 0)
		goto out;
	*out = u;
	return 0;
out:
	uribl_free(u);
	return rc;
}

void uribl_free(struct uribl *u)
{
	if (!u)
		return;
	dnslist_free(u->dl);
	free(u);
}

static void req_release(void *owner)
{
	struct uribl_req *q = owner;

	free(q->hits);
	free(q->skipped);
	free(q->doms);
	free(q);
}

static void on_skip(void *owner, size_t ask, const struct config_dnsbl_zone *cz, const char *why)
{
	struct uribl_req *q = owner;
	struct uribl_skip *s = &q->skipped[q->res.nskipped++];

	s->zone = cz->zone;
	s->domain = q->doms[ask / dnslist_nzones(q->u->dl)];
	s->why = why;
}

static void on_hit(void *owner, size_t ask, const struct config_dnsbl_zone *cz, const char *symbol,
		   uint32_t code, double weight)
{
	struct uribl_req *q = owner;
	struct uribl_hit *h = &q->hits[q->res.nhits++];

	h->zone = cz->zone;
	h->symbol = symbol;
	h->domain = q->doms[ask / dnslist_nzones(q->u->dl)];
	h->code = code;
	h->weight = weight;
	h->allow = cz->allow;
}

static void finish(void *owner)
{
	struct uribl_req *q = owner;

	q->res.score = 0;
	for (size_t i = 0; i < q->res.nhits; i++)
		q->res.score += q->hits[i].weight;
	q->res.hits = q->hits;
	q->res.skipped = q->skipped;
}

static void deliver(void *owner)
{
	struct uribl_req *q = owner;

	q->cb(q, &q->res, q->arg);
}

static const struct dnslist_ops uribl_ops = {
    .hit = on_hit,
    .skip = on_skip,
    .finish = finish,
    .deliver = deliver,
    .release = req_release,
};

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
	size_t cap = (size_t)u->cfg->uribl.max_domains, nz = dnslist_nzones(u->dl), nasks;
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
	if (!(q->doms = calloc(cap ? cap : 1, sizeof(*q->doms)))) {
		req_release(q);
		return -ENOMEM;
	}
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
	nasks = q->ndoms * nz;
	rc = dnslist_req_new(u->dl, &uribl_ops, q, nasks, URIBL_MAX_HITS_PER_ASK,
			     u->cfg->uribl.budget, &q->lq);
	if (rc < 0)
		return rc; /* q is released */
	rc = -ENOMEM;
	q->hits = calloc((nasks ? nasks : 1) * URIBL_MAX_HITS_PER_ASK, sizeof(*q->hits));
	q->skipped = calloc(nasks ? nasks : 1, sizeof(*q->skipped));
	if (!q->hits || !q->skipped)
		goto out;
	q->res.ndomains = q->ndoms;
	for (size_t d = 0; d < q->ndoms; d++)
		for (size_t z = 0; z < nz; z++) {
			char name[RESOLVER_NAME_LEN];

			if (str_fmt(name, sizeof(name), "%s.%s", q->doms[d],
				    dnslist_zone(u->dl, z)->zone) < 0)
				continue; /* too long for a query: not asked */
			rc = dnslist_req_ask(q->lq, d * nz + z, z, name);
			if (rc < 0)
				goto out;
			q->res.nqueries++;
		}
	dnslist_req_go(q->lq);
	*out = q;
	return 0;
out:
	dnslist_req_free(q->lq); /* and q */
	return rc;
}

const struct uribl_result *uribl_req_result(const struct uribl_req *req)
{
	return req && dnslist_req_delivered(req->lq) ? &req->res : NULL;
}

void uribl_req_free(struct uribl_req *req)
{
	if (req)
		dnslist_req_free(req->lq); /* and req */
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
