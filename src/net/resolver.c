/* SPDX-License-Identifier: MIT */
#include "net/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/*
 * Entries: one per (name, type), in one hash table. An entry is either a
 * look-up in flight (pending, with the requests waiting for it) or a
 * cached answer (on the LRU list). Answers are reference counted so a
 * request can keep one while the cache evicts it.
 */

struct rv_answer {
	unsigned refs;
	enum resolver_status status;
	const char *why; /* static string */
	bool nxdomain, truncated;
	uint32_t ttl;
	size_t n;
	struct resolver_rr *rr; /* into the same allocation */
};

struct rv_entry {
	struct rv_entry *hnext;
	struct rv_entry *lprev, *lnext; /* LRU, cached entries only */
	uint64_t hash;
	enum resolver_type type;
	bool pending;
	struct resolver_req *waiters; /* pending only */
	struct rv_answer *ans;	      /* cached only */
	int64_t expires_us;
	struct resolver *r;
	char name[RESOLVER_NAME_LEN];
};

struct resolver_req {
	struct resolver *r;
	struct rv_entry *entry; /* while waiting for a look-up */
	struct resolver_req *wprev, *wnext;
	struct event *ev; /* time-out, and the delivery of a result */
	resolver_cb cb;
	void *arg;
	bool done, firing;
	enum resolver_status status;
	const char *why;
	bool from_cache;
	struct rv_answer *ans; /* NULL for temporary failures */
	enum resolver_type type;
	char name[RESOLVER_NAME_LEN];
};

struct rv_sock {
	struct rv_sock *next;
	ares_socket_t fd;
	struct event *ev;
	struct resolver *r;
};

struct resolver {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;
	struct rv_sock *socks;
	struct rv_entry **buckets;
	size_t nbuckets; /* a power of two */
	uint64_t seed;
	struct rv_entry *lru_head, *lru_tail;
	size_t ncached, ninflight;
	struct resolver_opts o;
	struct metrics *metrics;
	struct resolver_stats st;
	bool freeing;
};

int resolver_global_init(void)
{
	return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? 0 : -ENOMEM;
}

/* ---- answers ---------------------------------------------------------- */

static void answer_unref(struct rv_answer *a)
{
	if (a && --a->refs == 0)
		free(a);
}

/* What one DNS message says, before it is copied into an rv_answer. */
struct rv_parsed {
	struct resolver_rr rr[RESOLVER_MAX_RR];
	char names[RESOLVER_MAX_RR][RESOLVER_NAME_LEN]; /* MX, PTR */
	char text[RESOLVER_MAX_TEXT];			/* TXT, joined per record */
	size_t textlen, n;
	bool truncated;
	bool has_soa;
	uint32_t soa_ttl, minttl;
};

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* A name at buf+pos (compression allowed, c-ares checks loops and bounds);
 * *enclen is its encoded length at pos. */
static int expand_name(const unsigned char *buf, int len, size_t pos, char *out, size_t outlen,
		       long *enclen)
{
	char *s = NULL;
	int rc;

	if (pos >= (size_t)len)
		return -EBADMSG;
	if (ares_expand_name(buf + pos, buf, len, &s, enclen) != ARES_SUCCESS)
		return -EBADMSG;
	rc = str_copy(out, outlen, s);
	ares_free_string(s);
	return rc < 0 ? -EBADMSG : 0;
}

/* Parses a complete answer. Records of type qtype in the answer section
 * are kept (up to the caps; the rest sets truncated); an SOA in the
 * authority section gives the negative TTL. */
static int rv_parse(const unsigned char *buf, int len, enum resolver_type qtype,
		    struct rv_parsed *p)
{
	size_t pos = 12, qd, an, ns;
	char tmp[RESOLVER_NAME_LEN];
	long enclen;

	p->n = p->textlen = 0;
	p->truncated = p->has_soa = false;
	p->minttl = UINT32_MAX;
	if (!buf || len < 12)
		return -EBADMSG;
	qd = get16(buf + 4);
	an = get16(buf + 6);
	ns = get16(buf + 8);
	for (size_t i = 0; i < qd; i++) {
		if (expand_name(buf, len, pos, tmp, sizeof(tmp), &enclen) < 0)
			return -EBADMSG;
		pos += (size_t)enclen + 4;
		if (pos > (size_t)len)
			return -EBADMSG;
	}
	for (size_t i = 0; i < an + ns; i++) {
		uint16_t type, cls, rdlen;
		uint32_t ttl;
		size_t rd;

		if (expand_name(buf, len, pos, tmp, sizeof(tmp), &enclen) < 0)
			return -EBADMSG;
		pos += (size_t)enclen;
		if (pos + 10 > (size_t)len)
			return -EBADMSG;
		type = get16(buf + pos);
		cls = get16(buf + pos + 2);
		ttl = get32(buf + pos + 4);
		rdlen = get16(buf + pos + 8);
		rd = pos + 10;
		pos = rd + rdlen;
		if (pos > (size_t)len)
			return -EBADMSG;
		if (ttl > 0x7fffffffu) /* RFC 2181 8: treat as zero */
			ttl = 0;
		if (cls != 1)
			continue;
		if (i >= an) { /* authority */
			if (type == 6 && !p->has_soa) {
				long l2;
				size_t q = rd;
				if (expand_name(buf, len, q, tmp, sizeof(tmp), &enclen) < 0)
					return -EBADMSG;
				q += (size_t)enclen;
				if (expand_name(buf, len, q, tmp, sizeof(tmp), &l2) < 0)
					return -EBADMSG;
				q += (size_t)l2;
				if (q + 20 > pos)
					return -EBADMSG;
				p->has_soa = true;
				p->soa_ttl = ttl;
				p->minttl = get32(buf + q + 16);
				if (p->minttl > 0x7fffffffu)
					p->minttl = 0;
			}
			continue;
		}
		if (type != qtype)
			continue; /* CNAMEs on the way, RRSIGs, ... */
		if (p->n == RESOLVER_MAX_RR) {
			p->truncated = true;
			continue;
		}
		struct resolver_rr *rr = &p->rr[p->n];
		memset(rr, 0, sizeof(*rr));
		rr->ttl = ttl;
		switch (qtype) {
		case RESOLVER_A:
			if (rdlen != 4)
				return -EBADMSG;
			memcpy(&rr->a, buf + rd, 4);
			break;
		case RESOLVER_AAAA:
			if (rdlen != 16)
				return -EBADMSG;
			memcpy(&rr->aaaa, buf + rd, 16);
			break;
		case RESOLVER_MX:
			if (rdlen < 3)
				return -EBADMSG;
			rr->pref = get16(buf + rd);
			FALLTHROUGH;
		case RESOLVER_PTR: {
			size_t at = qtype == RESOLVER_MX ? rd + 2 : rd;
			if (expand_name(buf, len, at, p->names[p->n], RESOLVER_NAME_LEN, &enclen) <
				0 ||
			    at + (size_t)enclen > pos)
				return -EBADMSG;
			rr->len = strlen(p->names[p->n]);
			break;
		}
		case RESOLVER_TXT: {
			/* one or more <length><bytes> strings, joined (RFC 7208 3.3) */
			size_t q = rd, start = p->textlen;
			while (q < pos) {
				size_t sl = buf[q++];
				if (q + sl > pos)
					return -EBADMSG;
				if (p->textlen + sl >= sizeof(p->text)) {
					p->truncated = true;
					p->textlen = start;
					goto skip;
				}
				memcpy(p->text + p->textlen, buf + q, sl);
				p->textlen += sl;
				q += sl;
			}
			rr->len = p->textlen - start;
			rr->text = (const char *)(uintptr_t)start; /* offset until copied */
			p->text[p->textlen++] = '\0';
			break;
		}
		}
		p->n++;
	skip:;
	}
	return 0;
}

/* Copies a parse into one allocation. */
static struct rv_answer *answer_new(const struct rv_parsed *p, enum resolver_type type,
				    enum resolver_status status, const char *why, bool nx,
				    uint32_t ttl)
{
	size_t textlen = 0, off = 0;
	struct rv_answer *a;
	char *text;

	for (size_t i = 0; i < p->n; i++)
		textlen += type == RESOLVER_TXT ? 0 : p->rr[i].len + 1;
	if (type == RESOLVER_TXT)
		textlen = p->textlen;
	a = malloc(sizeof(*a) + p->n * sizeof(struct resolver_rr) + textlen + 1);
	if (!a)
		return NULL;
	a->refs = 1;
	a->status = status;
	a->why = why;
	a->nxdomain = nx;
	a->truncated = p->truncated;
	a->ttl = ttl;
	a->n = p->n;
	a->rr = (struct resolver_rr *)(a + 1);
	text = (char *)(a->rr + p->n);
	if (type == RESOLVER_TXT)
		memcpy(text, p->text, p->textlen);
	text[textlen] = '\0';
	for (size_t i = 0; i < p->n; i++) {
		a->rr[i] = p->rr[i];
		if (type == RESOLVER_TXT) {
			a->rr[i].text = text + (uintptr_t)p->rr[i].text;
		} else if (type == RESOLVER_MX || type == RESOLVER_PTR) {
			memcpy(text + off, p->names[i], p->rr[i].len + 1);
			a->rr[i].text = text + off;
			off += p->rr[i].len + 1;
		} else {
			a->rr[i].text = NULL;
		}
	}
	return a;
}

/* ---- the table -------------------------------------------------------- */

static uint64_t key_hash(const struct resolver *r, const char *name, enum resolver_type type)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ r->seed;

	/* FNV-1a, seeded per resolver so collisions cannot be planned */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		unsigned char c = *p >= 'A' && *p <= 'Z' ? (unsigned char)(*p + 32) : *p;
		h = (h ^ c) * 0x100000001b3ULL;
	}
	h = (h ^ (uint64_t)type) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static struct rv_entry *entry_find(struct resolver *r, const char *name, enum resolver_type type,
				   uint64_t h)
{
	for (struct rv_entry *e = r->buckets[h & (r->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->type == type && !strcasecmp(e->name, name))
			return e;
	return NULL;
}

static void lru_unlink(struct resolver *r, struct rv_entry *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		r->lru_head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		r->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void lru_push(struct resolver *r, struct rv_entry *e)
{
	e->lprev = NULL;
	e->lnext = r->lru_head;
	if (r->lru_head)
		r->lru_head->lprev = e;
	r->lru_head = e;
	if (!r->lru_tail)
		r->lru_tail = e;
}

/* Unlinks e from the table (and the LRU) and frees it. */
static void entry_free(struct resolver *r, struct rv_entry *e)
{
	struct rv_entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	if (!e->pending) {
		lru_unlink(r, e);
		r->ncached--;
	}
	answer_unref(e->ans);
	free(e);
}

/* ---- requests --------------------------------------------------------- */

static void req_detach(struct resolver_req *q)
{
	struct rv_entry *e = q->entry;

	if (!e)
		return;
	if (q->wprev)
		q->wprev->wnext = q->wnext;
	else
		e->waiters = q->wnext;
	if (q->wnext)
		q->wnext->wprev = q->wprev;
	q->wprev = q->wnext = NULL;
	q->entry = NULL;
}

static void req_free(struct resolver_req *q)
{
	req_detach(q);
	if (q->ev)
		event_free(q->ev);
	answer_unref(q->ans);
	free(q);
}

/* The result is ready: deliver it from the loop. */
static void req_finish(struct resolver_req *q, enum resolver_status st, const char *why,
		       struct rv_answer *a, bool from_cache)
{
	req_detach(q);
	q->done = true;
	q->status = st;
	q->why = why;
	q->from_cache = from_cache;
	if (a) {
		a->refs++;
		q->ans = a;
	}
	event_active(q->ev, EV_TIMEOUT, 0);
}

static void req_fire(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_req *q = arg;
	struct resolver_result res;

	(void)fd;
	(void)what;
	if (!q->done) {
		req_detach(q);
		q->status = RESOLVER_TEMPFAIL;
		q->why = "timeout";
		q->r->st.timeouts++;
		metrics_add(q->r->metrics, M_DNS_TIMEOUTS, 1);
	}
	memset(&res, 0, sizeof(res));
	res.status = q->status;
	res.type = q->type;
	res.name = q->name;
	res.why = q->why;
	res.from_cache = q->from_cache;
	if (q->ans) {
		res.status = q->ans->status;
		res.nxdomain = q->ans->nxdomain;
		res.truncated = q->ans->truncated;
		res.n = q->ans->n;
		res.rr = q->ans->rr;
	}
	q->firing = true;
	q->cb(&res, q->arg);
	req_free(q);
}

void resolver_cancel(struct resolver_req *q)
{
	if (!q || q->firing)
		return;
	req_free(q);
}

/* ---- c-ares ----------------------------------------------------------- */

static void timer_update(struct resolver *r)
{
	struct timeval tv, *tvp;

	if (r->freeing)
		return;
	tvp = ares_timeout(r->ch, NULL, &tv);
	if (tvp)
		evtimer_add(r->timer, tvp);
	else
		evtimer_del(r->timer);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	(void)fd;
	(void)what;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_update(r);
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct rv_sock *s = arg;
	struct resolver *r = s->r;

	/* s may be freed inside ares_process_fd (the socket closed) */
	ares_process_fd(r->ch, (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	timer_update(r);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct rv_sock **pp = &r->socks, *s;

	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	s = *pp;
	if (!readable && !writable) {
		if (s) {
			*pp = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return; /* the look-up times out; nothing else breaks */
		s->fd = fd;
		s->r = r;
		s->next = r->socks;
		r->socks = s;
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(
	    r->base, fd, (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0)),
	    on_sock, s);
	if (s->ev)
		event_add(s->ev, NULL);
}

static const char *status_why(int status)
{
	switch (status) {
	case ARES_ESERVFAIL:
		return "SERVFAIL";
	case ARES_EREFUSED:
		return "REFUSED";
	case ARES_ETIMEOUT:
		return "timeout";
	case ARES_ECONNREFUSED:
		return "connection refused";
	case ARES_EFORMERR:
	case ARES_EBADRESP:
		return "malformed answer";
	case ARES_ENOMEM:
		return "out of memory";
	default:
		return "DNS error";
	}
}

static uint32_t ttl_cap(const struct resolver *r, uint32_t ttl)
{
	return (int64_t)ttl > r->o.max_ttl ? (uint32_t)r->o.max_ttl : ttl;
}

static void on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct rv_entry *e = arg;
	struct resolver *r = e->r;
	struct rv_parsed *p = NULL;
	struct rv_answer *a = NULL;
	enum resolver_status st = RESOLVER_TEMPFAIL;
	const char *why = status_why(status);
	bool nx = false;
	uint32_t ttl = 0;

	(void)timeouts;
	r->ninflight--;
	e->pending = false;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		/* resolver_free(): the requests are gone already */
		e->pending = true; /* it was never on the LRU */
		entry_free(r, e);
		return;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		why = "out of memory";
		goto deliver;
	}
	if (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) {
		if (rv_parse(abuf, alen, e->type, p) < 0) {
			if (status == ARES_SUCCESS) {
				why = "malformed answer";
				goto deliver;
			}
			p->n = 0; /* a negative answer with a broken authority section */
			p->has_soa = false;
		}
		if (status == ARES_SUCCESS && p->n > 0) {
			st = RESOLVER_OK;
			why = "OK";
			ttl = UINT32_MAX;
			for (size_t i = 0; i < p->n; i++)
				if (p->rr[i].ttl < ttl)
					ttl = p->rr[i].ttl;
		} else {
			st = RESOLVER_PERMFAIL;
			nx = status == ARES_ENOTFOUND;
			why = nx ? "NXDOMAIN" : "NODATA";
			p->n = 0;
			ttl = p->has_soa ? (p->soa_ttl < p->minttl ? p->soa_ttl : p->minttl)
					 : (uint32_t)r->o.negative_ttl;
		}
		ttl = ttl_cap(r, ttl);
		a = answer_new(p, e->type, st, why, nx, ttl);
		if (!a) {
			st = RESOLVER_TEMPFAIL;
			why = "out of memory";
		}
	} else if (status == ARES_EBADNAME) {
		st = RESOLVER_PERMFAIL;
		why = "malformed name";
	}
deliver:
	free(p);
	while (e->waiters)
		req_finish(e->waiters, st, why, a, false);
	if (a && r->o.cache_size > 0 && ttl > 0) {
		/* keep it: evict the least recently used first */
		while (r->ncached >= (size_t)r->o.cache_size && r->lru_tail)
			entry_free(r, r->lru_tail);
		e->ans = a;
		e->expires_us = time_mono_us() + (int64_t)ttl * 1000000;
		lru_push(r, e);
		r->ncached++;
		return;
	}
	answer_unref(a);
	e->pending = true; /* not on the LRU */
	entry_free(r, e);
}

/* ---- public ----------------------------------------------------------- */

static int servers_set(ares_channel ch, const char *servers, char *why, size_t whylen)
{
	char list[RESOLVER_MAX_SERVERS * 64], tmp[RESOLVER_MAX_SERVERS * 64], *save = NULL, *tok;
	size_t n = 0;

	if (!servers || !*servers)
		return 0;
	/* validate each "host:port" ourselves: c-ares silently defaults */
	if (str_copy(tmp, sizeof(tmp), servers) < 0) {
		(void)str_copy(why, whylen, "DNS server list too long");
		return -EINVAL;
	}
	list[0] = '\0';
	for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char host[64], lit[80];
		unsigned char bin[16];
		uint16_t port;

		if (n == RESOLVER_MAX_SERVERS ||
		    parse_hostport(tok, host, sizeof(host), &port) < 0 ||
		    (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)) {
			(void)str_fmt(why, whylen, "bad DNS server '%.64s' (want IP:port)", tok);
			return -EINVAL;
		}
		if (strchr(host, ':'))
			(void)str_fmt(lit, sizeof(lit), "[%s]:%u", host, port);
		else
			(void)str_fmt(lit, sizeof(lit), "%s:%u", host, port);
		if (str_fmt(list + strlen(list), sizeof(list) - strlen(list), "%s%s", n ? "," : "",
			    lit) < 0) {
			(void)str_copy(why, whylen, "DNS server list too long");
			return -EINVAL;
		}
		n++;
	}
	if (n == 0 || ares_set_servers_ports_csv(ch, list) != ARES_SUCCESS) {
		(void)str_fmt(why, whylen, "bad DNS server list '%.64s'", servers);
		return -EINVAL;
	}
	return 0;
}

int resolver_new(struct event_base *base, const struct resolver_opts *o, struct resolver **out,
		 char *why, size_t whylen)
{
	struct ares_options ao;
	struct resolver *r;
	size_t want;
	int rc = -ENOMEM;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r) {
		(void)str_copy(why, whylen, "out of memory");
		return -ENOMEM;
	}
	r->base = base;
	r->o = *o;
	r->o.servers = NULL; /* not kept: the caller owns the string */
	if (r->o.timeout_ms < 10)
		r->o.timeout_ms = 10;
	if (r->o.max_inflight < 1)
		r->o.max_inflight = 1;
	if (r->o.cache_size < 0)
		r->o.cache_size = 0;
	if (r->o.max_ttl < 0)
		r->o.max_ttl = 0;
	if (r->o.negative_ttl < 0)
		r->o.negative_ttl = 0;
	r->metrics = o->metrics;
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != (ssize_t)sizeof(r->seed))
		r->seed = (uint64_t)time_mono_us();
	want = (size_t)r->o.cache_size + (size_t)r->o.max_inflight;
	for (r->nbuckets = 64; r->nbuckets < want && r->nbuckets < (1u << 20); r->nbuckets <<= 1)
		;
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	r->timer = evtimer_new(base, on_timer, r);
	if (!r->buckets || !r->timer) {
		(void)str_copy(why, whylen, "out of memory");
		goto out;
	}
	memset(&ao, 0, sizeof(ao));
	/* c-ares retries once, the second try twice as long: both fit in
	 * the request's time-out with one server */
	ao.timeout = (int)(r->o.timeout_ms / 3 > 0 ? r->o.timeout_ms / 3 : 1);
	ao.tries = 2;
	/* NOCHECKRESP: SERVFAIL and REFUSED come back as such (c-ares would
	 * otherwise try the next server and report "connection refused") */
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP;
	ao.sock_state_cb = sock_state;
	ao.sock_state_cb_data = r;
	if (ares_init_options(&r->ch, &ao,
			      ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
				  ARES_OPT_SOCK_STATE_CB) != ARES_SUCCESS) {
		r->ch = NULL;
		(void)str_copy(why, whylen, "cannot initialise c-ares");
		rc = -EIO;
		goto out;
	}
	rc = servers_set(r->ch, o->servers, why, whylen);
	if (rc < 0)
		goto out;
	*out = r;
	return 0;
out:
	resolver_free(r);
	return rc;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	r->freeing = true;
	/* requests first (no callbacks), then the look-ups, then the cache */
	for (size_t i = 0; r->buckets && i < r->nbuckets; i++)
		for (struct rv_entry *e = r->buckets[i]; e; e = e->hnext)
			while (e->waiters)
				req_free(e->waiters);
	if (r->ch)
		ares_destroy(r->ch); /* on_ares() frees each pending entry */
	while (r->lru_head)
		entry_free(r, r->lru_head);
	while (r->socks) {
		struct rv_sock *s = r->socks;
		r->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	if (r->timer)
		event_free(r->timer);
	free(r->buckets);
	free(r);
}

int resolver_query(struct resolver *r, const char *name, enum resolver_type type, resolver_cb cb,
		   void *arg, struct resolver_req **out)
{
	struct resolver_req *q;
	struct rv_entry *e;
	struct timeval tv;
	uint64_t h;
	size_t nlen;
	bool fresh = false;

	if (out)
		*out = NULL;
	if (!r || !name || !cb)
		return -EINVAL;
	nlen = strlen(name);
	if (nlen && name[nlen - 1] == '.')
		nlen--;
	if (nlen == 0 || nlen >= RESOLVER_NAME_LEN)
		return -EINVAL;
	switch (type) {
	case RESOLVER_A:
	case RESOLVER_AAAA:
	case RESOLVER_TXT:
	case RESOLVER_MX:
	case RESOLVER_PTR:
		break;
	default:
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->type = type;
	memcpy(q->name, name, nlen);
	q->name[nlen] = '\0';
	q->ev = evtimer_new(r->base, req_fire, q);
	if (!q->ev) {
		free(q);
		return -ENOMEM;
	}
	tv.tv_sec = r->o.timeout_ms / 1000;
	tv.tv_usec = (r->o.timeout_ms % 1000) * 1000;
	evtimer_add(q->ev, &tv);
	if (out)
		*out = q;
	r->st.queries++;
	metrics_add(r->metrics, M_DNS_QUERIES, 1);

	h = key_hash(r, q->name, type);
	e = entry_find(r, q->name, type, h);
	if (e && !e->pending && e->expires_us <= time_mono_us()) {
		entry_free(r, e);
		e = NULL;
	}
	if (e && !e->pending) {
		r->st.cache_hits++;
		metrics_add(r->metrics, M_DNS_CACHE_HITS, 1);
		lru_unlink(r, e);
		lru_push(r, e);
		req_finish(q, e->ans->status, e->ans->why, e->ans, true);
		return 0;
	}
	r->st.cache_misses++;
	metrics_add(r->metrics, M_DNS_CACHE_MISSES, 1);
	if (!e) {
		if (r->ninflight >= (size_t)r->o.max_inflight) {
			r->st.over_cap++;
			req_finish(q, RESOLVER_TEMPFAIL, "over the in-flight cap", NULL, false);
			return 0;
		}
		e = calloc(1, sizeof(*e));
		if (!e) {
			req_finish(q, RESOLVER_TEMPFAIL, "out of memory", NULL, false);
			return 0;
		}
		e->r = r;
		e->hash = h;
		e->type = type;
		e->pending = true;
		memcpy(e->name, q->name, nlen + 1);
		e->hnext = r->buckets[h & (r->nbuckets - 1)];
		r->buckets[h & (r->nbuckets - 1)] = e;
		fresh = true;
	} else {
		r->st.joined++;
	}
	q->entry = e;
	q->wnext = e->waiters;
	if (e->waiters)
		e->waiters->wprev = q;
	e->waiters = q;
	if (fresh) {
		/* a new look-up (on_ares may run, and free e, inside) */
		r->ninflight++;
		r->st.sent++;
		ares_query(r->ch, e->name, 1 /* C_IN */, (int)type, on_ares, e);
		timer_update(r);
	}
	return 0;
}

struct event_base *resolver_event_base(const struct resolver *r)
{
	return r->base;
}

void resolver_get_stats(const struct resolver *r, struct resolver_stats *st)
{
	*st = r->st;
	st->inflight = r->ninflight;
	st->cached = r->ncached;
}

int resolver_reverse_name(const struct sockaddr *sa, const char *zone, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	char buf[80];
	size_t o = 0;

	if (sa->sa_family == AF_INET) {
		const unsigned char *b =
		    (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		(void)str_fmt(buf, sizeof(buf), "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
		if (!zone)
			zone = "in-addr.arpa";
	} else if (sa->sa_family == AF_INET6 &&
		   IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		/* a dual-stack listener's IPv4 client: list it as IPv4 */
		const unsigned char *b =
		    (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		(void)str_fmt(buf, sizeof(buf), "%u.%u.%u.%u", b[15], b[14], b[13], b[12]);
		if (!zone)
			zone = "in-addr.arpa";
	} else if (sa->sa_family == AF_INET6) {
		const unsigned char *b =
		    (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		for (int i = 15; i >= 0; i--) {
			buf[o++] = hex[b[i] & 15];
			buf[o++] = '.';
			buf[o++] = hex[b[i] >> 4];
			buf[o++] = '.';
		}
		buf[o - 1] = '\0';
		if (!zone)
			zone = "ip6.arpa";
	} else {
		return -EAFNOSUPPORT;
	}
	return str_fmt(out, outlen, "%s.%s", buf, zone);
}
