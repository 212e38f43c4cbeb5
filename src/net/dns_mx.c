/* SPDX-License-Identifier: MIT */
#include "net/dns_mx.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DNS_TRY_TIMEOUT_MS 2000

struct dns_wait {
	bool done;
	int status;
	struct dns_mx *mx;
	struct dns_addr *addrs;
	size_t max, n;
	uint16_t port;
	bool null_mx;
};

int dns_mx_global_init(void)
{
	return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? 0 : DNS_TEMPFAIL;
}

void dns_mx_global_cleanup(void)
{
	ares_library_cleanup();
}

static int channel_new(const struct dns_opts *o, ares_channel *ch, char *why, size_t whylen)
{
	struct ares_options ao;
	int tmo = o->timeout_ms > 0 && o->timeout_ms < DNS_TRY_TIMEOUT_MS ? o->timeout_ms
									  : DNS_TRY_TIMEOUT_MS;

	memset(&ao, 0, sizeof(ao));
	ao.timeout = tmo;
	ao.tries = 2;
	ao.flags = ARES_FLAG_NOSEARCH;
	if (ares_init_options(ch, &ao, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS) !=
	    ARES_SUCCESS) {
		(void)str_copy(why, whylen, "cannot initialise the resolver");
		return DNS_TEMPFAIL;
	}
	if (o->server && *o->server && ares_set_servers_ports_csv(*ch, o->server) != ARES_SUCCESS) {
		ares_destroy(*ch);
		(void)str_fmt(why, whylen, "bad DNS server %s", o->server);
		return DNS_INVALID;
	}
	return DNS_OK;
}

/* Drives the channel until w->done or the deadline, whichever is first. */
static void channel_run(ares_channel ch, struct dns_wait *w, int timeout_ms)
{
	int64_t deadline = time_mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 10000) * 1000;

	while (!w->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval maxtv, tv, *tvp;
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		int64_t left = deadline - time_mono_us();
		nfds_t nfds = 0;
		int ms;

		if (left <= 0) {
			ares_cancel(ch); /* callbacks run with ARES_ECANCELLED */
			break;
		}
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			/* not ARES_GETSOCK_WRITABLE(): it shifts 1 into the sign bit */
			if (((unsigned)bits >> i) & 1u)
				ev |= POLLIN;
			if (((unsigned)bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u)
				ev |= POLLOUT;
			if (ev) {
				pfd[nfds].fd = socks[i];
				pfd[nfds].events = ev;
				pfd[nfds].revents = 0;
				nfds++;
			}
		}
		maxtv.tv_sec = left / 1000000;
		maxtv.tv_usec = left % 1000000;
		tvp = ares_timeout(ch, &maxtv, &tv);
		ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		if (poll(pfd, nfds, ms) < 0 && errno != EINTR)
			break;
		for (nfds_t i = 0; i < nfds; i++) {
			ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

			if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				rfd = pfd[i].fd;
			if (pfd[i].revents & POLLOUT)
				wfd = pfd[i].fd;
			if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD)
				ares_process_fd(ch, rfd, wfd);
		}
		ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* time-outs */
	}
	if (!w->done) {
		w->done = true;
		w->status = ARES_ETIMEOUT;
	}
}

static int status_rc(int status, const char *name, const char *what, char *why, size_t whylen)
{
	switch (status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENOTFOUND:
		(void)str_fmt(why, whylen, "%s: domain not found (NXDOMAIN)", name);
		return DNS_PERMFAIL;
	case ARES_ENODATA:
		(void)str_fmt(why, whylen, "%s: no %s record", name, what);
		return DNS_PERMFAIL;
	case ARES_EBADNAME:
		(void)str_fmt(why, whylen, "%s: malformed domain name", name);
		return DNS_PERMFAIL;
	case ARES_ETIMEOUT:
	case ARES_ECANCELLED:
		(void)str_fmt(why, whylen, "%s: %s look-up timed out", name, what);
		return DNS_TEMPFAIL;
	default:
		(void)str_fmt(why, whylen, "%s: %s look-up failed: %s", name, what,
			      ares_strerror(status));
		return DNS_TEMPFAIL;
	}
}

static void mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_wait *w = arg;
	struct ares_mx_reply *mx = NULL;

	(void)timeouts;
	w->done = true;
	w->status = status;
	if (status != ARES_SUCCESS)
		return;
	w->status = ares_parse_mx_reply(abuf, alen, &mx);
	if (w->status != ARES_SUCCESS)
		return;
	for (struct ares_mx_reply *m = mx; m; m = m->next) {
		if (!m->host[0] || strcmp(m->host, ".") == 0) {
			w->null_mx = true;
			continue;
		}
		if (w->n < w->max && str_copy(w->mx[w->n].host, DNS_NAME_LEN, m->host) == 0) {
			w->mx[w->n].pref = m->priority;
			w->n++;
		}
	}
	ares_free_data(mx);
}

static int mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;

	return (int)x->pref - (int)y->pref;
}

/* Sorted by preference; equal preferences in random order (RFC 5321 5.1). */
static void mx_sort(struct dns_mx *mx, size_t n)
{
	uint32_t rnd[DNS_MAX_MX];

	if (n < 2)
		return;
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (size_t i = n - 1; i > 0 && i < DNS_MAX_MX; i--) {
		size_t j = rnd[i] % (i + 1);
		struct dns_mx t = mx[i];

		mx[i] = mx[j];
		mx[j] = t;
	}
	qsort(mx, n, sizeof(*mx), mx_cmp);
}

int dns_mx_lookup(const struct dns_opts *o, const char *domain, struct dns_mx *out, size_t max,
		  size_t *n, char *why, size_t whylen)
{
	struct dns_wait w = {.mx = out, .max = max};
	ares_channel ch = NULL;
	int rc;

	*n = 0;
	if (!domain || !*domain || strlen(domain) >= DNS_NAME_LEN || max == 0) {
		(void)str_copy(why, whylen, "invalid domain");
		return DNS_INVALID;
	}
	rc = channel_new(o, &ch, why, whylen);
	if (rc < 0)
		return rc;
	ares_query(ch, domain, ns_c_in, ns_t_mx, mx_cb, &w);
	channel_run(ch, &w, o->timeout_ms);
	ares_destroy(ch);
	if (w.status == ARES_SUCCESS && w.n > 0) {
		mx_sort(out, w.n);
		*n = w.n;
		return DNS_OK;
	}
	if (w.null_mx) {
		(void)str_fmt(why, whylen, "%s does not accept mail (null MX)", domain);
		return DNS_PERMFAIL;
	}
	if (w.status == ARES_SUCCESS || w.status == ARES_ENODATA) {
		/* RFC 5321 5.1: no MX, so the domain itself is the implicit MX,
		 * if it has an address at all. */
		struct dns_addr a[1];
		size_t na;

		rc = dns_addr_lookup(o, domain, 25, a, 1, &na, why, whylen);
		if (rc == DNS_PERMFAIL)
			(void)str_fmt(why, whylen, "%s: no MX and no address record", domain);
		if (rc < 0)
			return rc;
		(void)str_copy(out[0].host, DNS_NAME_LEN, domain);
		out[0].pref = 0;
		*n = 1;
		return DNS_OK;
	}
	return status_rc(w.status, domain, "MX", why, whylen);
}

static void set_port(struct dns_addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_wait *w = arg;

	(void)timeouts;
	w->done = true;
	w->status = status;
	if (status != ARES_SUCCESS || !res)
		goto out;
	/* IPv4 first, then IPv6: a v6 route that is missing fails slowly. */
	for (int pass = 0; pass < 2; pass++)
		for (struct ares_addrinfo_node *nd = res->nodes; nd; nd = nd->ai_next) {
			int fam = pass == 0 ? AF_INET : AF_INET6;

			if (nd->ai_family != fam || w->n >= w->max ||
			    (size_t)nd->ai_addrlen > sizeof(w->addrs[0].ss))
				continue;
			memset(&w->addrs[w->n], 0, sizeof(w->addrs[0]));
			memcpy(&w->addrs[w->n].ss, nd->ai_addr, nd->ai_addrlen);
			w->addrs[w->n].len = (socklen_t)nd->ai_addrlen;
			set_port(&w->addrs[w->n], w->port);
			w->n++;
		}
out:
	if (res)
		ares_freeaddrinfo(res);
}

static bool addr_literal(const char *host, uint16_t port, struct dns_addr *a)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		a->len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		a->len = sizeof(*s6);
	} else {
		return false;
	}
	set_port(a, port);
	return true;
}

int dns_addr_lookup(const struct dns_opts *o, const char *host, uint16_t port, struct dns_addr *out,
		    size_t max, size_t *n, char *why, size_t whylen)
{
	struct dns_wait w = {.addrs = out, .max = max, .port = port};
	struct ares_addrinfo_hints hints;
	ares_channel ch = NULL;
	int rc;

	*n = 0;
	if (!host || !*host || strlen(host) >= DNS_NAME_LEN || max == 0) {
		(void)str_copy(why, whylen, "invalid host name");
		return DNS_INVALID;
	}
	if (addr_literal(host, port, &out[0])) {
		*n = 1;
		return DNS_OK;
	}
	rc = channel_new(o, &ch, why, whylen);
	if (rc < 0)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(ch, host, NULL, &hints, addr_cb, &w);
	channel_run(ch, &w, o->timeout_ms);
	ares_destroy(ch);
	if (w.status == ARES_SUCCESS && w.n > 0) {
		*n = w.n;
		return DNS_OK;
	}
	if (w.status == ARES_SUCCESS)
		w.status = ARES_ENODATA;
	return status_rc(w.status, host, "address", why, whylen);
}
