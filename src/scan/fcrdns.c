/* SPDX-License-Identifier: MIT */
#include "scan/fcrdns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fcrdns_fwd {
	struct fcrdns_req *req;
	struct resolver_req *rq;
	char name[RESOLVER_NAME_LEN];
};

struct fcrdns_req {
	struct resolver *res;
	struct event *ev; /* the budget, and the delivery of the result */
	fcrdns_cb cb;
	void *arg;
	bool v6;
	unsigned char addr[16]; /* the client, 4 or 16 bytes */
	struct resolver_req *ptr;
	struct fcrdns_fwd fwd[FCRDNS_MAX_NAMES];
	size_t nfwd, pending;
	bool tempfail;
	const char *tempwhy;
	bool done, delivered, firing, freed;
	struct fcrdns_result result;
	char name[RESOLVER_NAME_LEN];
};

const char *fcrdns_symbol(enum fcrdns_status st)
{
	switch (st) {
	case FCRDNS_CONFIRMED:
		return "FCRDNS_OK";
	case FCRDNS_MISMATCH:
		return "FCRDNS_MISMATCH";
	case FCRDNS_NO_PTR:
		return "FCRDNS_NO_PTR";
	case FCRDNS_TEMPFAIL:
		break;
	}
	return "FCRDNS_TEMPFAIL";
}

static void cancel_all(struct fcrdns_req *q)
{
	resolver_cancel(q->ptr);
	q->ptr = NULL;
	for (size_t i = 0; i < q->nfwd; i++) {
		resolver_cancel(q->fwd[i].rq);
		q->fwd[i].rq = NULL;
	}
	q->pending = 0;
}

static void req_release(struct fcrdns_req *q)
{
	cancel_all(q);
	if (q->ev)
		event_free(q->ev);
	free(q);
}

static void finish(struct fcrdns_req *q, enum fcrdns_status st, const char *name, const char *why)
{
	cancel_all(q);
	(void)str_copy(q->name, sizeof(q->name), name ? name : "");
	q->result.status = st;
	q->result.symbol = fcrdns_symbol(st);
	q->result.name = q->name;
	q->result.why = why ? why : "";
	q->done = true;
	event_active(q->ev, EV_TIMEOUT, 0);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct fcrdns_req *q = arg;

	(void)fd;
	(void)what;
	if (!q->done) {
		finish(q, FCRDNS_TEMPFAIL, q->nfwd ? q->fwd[0].name : "", "timeout");
		event_del(q->ev); /* finish() activated it again */
	}
	q->delivered = q->firing = true;
	q->cb(q, &q->result, q->arg);
	q->firing = false;
	if (q->freed)
		req_release(q);
}

/* A host name as a name should look (c-ares escapes the rest): safe in
 * logs and headers. */
static bool hostname_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

static void on_forward(const struct resolver_result *rr, void *arg)
{
	struct fcrdns_fwd *f = arg;
	struct fcrdns_req *q = f->req;

	f->rq = NULL;
	q->pending--;
	if (rr->status == RESOLVER_OK) {
		for (size_t i = 0; i < rr->n; i++) {
			const void *a =
			    q->v6 ? (const void *)&rr->rr[i].aaaa : (const void *)&rr->rr[i].a;
			if (!memcmp(a, q->addr, q->v6 ? 16 : 4)) {
				finish(q, FCRDNS_CONFIRMED, f->name, NULL);
				return;
			}
		}
	} else if (rr->status == RESOLVER_TEMPFAIL) {
		q->tempfail = true;
		q->tempwhy = rr->why;
	}
	if (q->pending == 0) {
		if (q->tempfail)
			finish(q, FCRDNS_TEMPFAIL, q->fwd[0].name, q->tempwhy);
		else
			finish(q, FCRDNS_MISMATCH, q->fwd[0].name, NULL);
	}
}

static void on_ptr(const struct resolver_result *rr, void *arg)
{
	struct fcrdns_req *q = arg;

	q->ptr = NULL;
	if (rr->status == RESOLVER_TEMPFAIL) {
		finish(q, FCRDNS_TEMPFAIL, NULL, rr->why);
		return;
	}
	for (size_t i = 0; rr->status == RESOLVER_OK && i < rr->n && q->nfwd < FCRDNS_MAX_NAMES;
	     i++) {
		struct fcrdns_fwd *f = &q->fwd[q->nfwd];

		if (!hostname_ok(rr->rr[i].text) ||
		    str_copy(f->name, sizeof(f->name), rr->rr[i].text) < 0)
			continue;
		f->req = q;
		q->nfwd++;
	}
	if (q->nfwd == 0) {
		finish(q, FCRDNS_NO_PTR, NULL, NULL);
		return;
	}
	for (size_t i = 0; i < q->nfwd; i++) {
		struct fcrdns_fwd *f = &q->fwd[i];

		if (resolver_query(q->res, f->name, q->v6 ? RESOLVER_AAAA : RESOLVER_A, on_forward,
				   f, &f->rq) < 0) {
			q->tempfail = true;
			q->tempwhy = "bad name";
			continue;
		}
		q->pending++;
	}
	if (q->pending == 0)
		finish(q, FCRDNS_TEMPFAIL, q->fwd[0].name, q->tempwhy);
}

int fcrdns_check(struct event_base *base, struct resolver *res, const struct sockaddr *client,
		 int64_t budget_ms, fcrdns_cb cb, void *arg, struct fcrdns_req **out)
{
	struct fcrdns_req *q;
	char name[RESOLVER_NAME_LEN];
	struct timeval tv;
	int rc = -ENOMEM;

	*out = NULL;
	if (!client || !cb || budget_ms <= 0)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->res = res;
	q->cb = cb;
	q->arg = arg;
	if (client->sa_family == AF_INET) {
		memcpy(q->addr, &((const struct sockaddr_in *)client)->sin_addr, 4);
	} else if (client->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)client)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(q->addr, a6->s6_addr + 12, 4);
		} else {
			memcpy(q->addr, a6, 16);
			q->v6 = true;
		}
	} else {
		rc = -EAFNOSUPPORT;
		goto out;
	}
	q->ev = evtimer_new(base, on_event, q);
	if (!q->ev)
		goto out;
	tv.tv_sec = budget_ms / 1000;
	tv.tv_usec = (budget_ms % 1000) * 1000;
	if (evtimer_add(q->ev, &tv) < 0)
		goto out;
	rc = resolver_reverse_name(client, NULL, name, sizeof(name));
	if (rc < 0)
		goto out;
	rc = resolver_query(res, name, RESOLVER_PTR, on_ptr, q, &q->ptr);
	if (rc < 0)
		goto out;
	*out = q;
	return 0;
out:
	req_release(q);
	return rc;
}

const struct fcrdns_result *fcrdns_req_result(const struct fcrdns_req *req)
{
	return req && req->delivered && !req->freed ? &req->result : NULL;
}

void fcrdns_req_free(struct fcrdns_req *req)
{
	if (!req || req->freed)
		return;
	if (req->firing) {
		req->freed = true;
		return;
	}
	req_release(req);
}
