/* SPDX-License-Identifier: MIT */
/*
 * resolver, dnsbl and fcrdns against a real nsd serving the zones in tests/dns
 * (started through tests/integration/dnsserver.py, which this test owns
 * through a pipe and stops by PID), plus a UDP socket that never answers
 * (time-outs) and one that answers SERVFAIL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/metrics.h"
#include "net/resolver.h"
#include "scan/dnsbl.h"
#include "scan/fcrdns.h"

#ifndef MXG_SOURCE_ROOT
#define MXG_SOURCE_ROOT "."
#endif

struct world {
	pid_t helper;
	int helper_in; /* its stdin: closing it stops nsd */
	int port;
	int blackhole; /* bound, never read */
	int blackhole_port;
	int servfail; /* answered by the servfail thread */
	int servfail_port;
	pthread_t servfail_thread;
	volatile bool stop;
	struct event_base *base;
	struct event *tick;
	struct metrics *metrics;
};

static struct world W;

static int udp_socket(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Answers every query with SERVFAIL (the question echoed, no records). */
static void *servfail_main(void *arg)
{
	(void)arg;
	while (!W.stop) {
		struct pollfd p = {.fd = W.servfail, .events = POLLIN};
		unsigned char buf[512];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recvfrom(W.servfail, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 12)
			continue;
		buf[2] = 0x81; /* QR, RD */
		buf[3] = 0x82; /* RA, SERVFAIL */
		memset(buf + 6, 0, 6);
		(void)sendto(W.servfail, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int world_setup(void **state)
{
	int in[2], outp[2];
	char line[64] = "";
	size_t n = 0;
	struct timeval tv = {0, 10000};

	(void)state;
	if (access("/usr/sbin/nsd", X_OK) < 0) {
		fprintf(stderr, "nsd is not installed: run scripts/bootstrap\n");
		return -1;
	}
	if (pipe(in) < 0 || pipe(outp) < 0)
		return -1;
	W.helper = fork();
	if (W.helper < 0)
		return -1;
	if (W.helper == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(in[0], 0);
		dup2(outp[1], 1);
		close(in[1]);
		close(outp[0]);
		execl("/usr/bin/python3", "python3",
		      MXG_SOURCE_ROOT "/tests/integration/dnsserver.py", "serve", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	W.helper_in = in[1];
	while (n < sizeof(line) - 1) {
		ssize_t r = read(outp[0], line + n, 1);
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(outp[0]);
	if (sscanf(line, "port=%d", &W.port) != 1) {
		fprintf(stderr, "dnsserver.py did not start: '%s'\n", line);
		return -1;
	}
	W.blackhole = udp_socket(&W.blackhole_port);
	W.servfail = udp_socket(&W.servfail_port);
	if (W.blackhole < 0 || W.servfail < 0 ||
	    pthread_create(&W.servfail_thread, NULL, servfail_main, NULL) != 0)
		return -1;
	if (resolver_global_init() < 0)
		return -1;
	W.base = event_base_new();
	W.tick = event_new(W.base, -1, EV_PERSIST, on_tick, NULL);
	event_add(W.tick, &tv);
	W.metrics = metrics_new();
	return 0;
}

static int world_teardown(void **state)
{
	(void)state;
	W.stop = true;
	pthread_join(W.servfail_thread, NULL);
	close(W.servfail);
	close(W.blackhole);
	if (W.helper > 0) {
		close(W.helper_in); /* the helper stops nsd and exits */
		kill(W.helper, SIGTERM);
		(void)waitpid(W.helper, NULL, 0);
	}
	event_free(W.tick);
	event_base_free(W.base);
	metrics_free(W.metrics);
	return 0;
}

/* Runs the loop until *flag or ms pass. Returns the time taken in ms. */
static int64_t run_until(const int *flag, int64_t ms)
{
	int64_t t0 = time_mono_us(), deadline = t0 + ms * 1000;

	while (!*flag && time_mono_us() < deadline)
		event_base_loop(W.base, EVLOOP_ONCE);
	return (time_mono_us() - t0) / 1000;
}

static struct resolver *resolver_at(int port, int64_t timeout_ms, int64_t inflight)
{
	char servers[64], why[128];
	struct resolver_opts o = {
	    .servers = servers,
	    .timeout_ms = timeout_ms,
	    .cache_size = 100,
	    .max_inflight = inflight,
	    .negative_ttl = 60,
	    .max_ttl = 86400,
	    .metrics = W.metrics,
	};
	struct resolver *r = NULL;

	snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
	if (resolver_new(W.base, &o, &r, why, sizeof(why)) < 0)
		fail_msg("resolver_new: %s", why);
	return r;
}

/* ---- resolver ---------------------------------------------------------- */

struct got {
	int calls;
	enum resolver_status status;
	bool nxdomain, from_cache;
	char why[64];
	size_t n;
	struct resolver_rr rr[8];
	char text[8][256];
};

static void on_result(const struct resolver_result *res, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->status = res->status;
	g->nxdomain = res->nxdomain;
	g->from_cache = res->from_cache;
	snprintf(g->why, sizeof(g->why), "%s", res->why);
	g->n = res->n;
	for (size_t i = 0; i < res->n && i < 8; i++) {
		g->rr[i] = res->rr[i];
		snprintf(g->text[i], sizeof(g->text[i]), "%s",
			 res->rr[i].text ? res->rr[i].text : "");
	}
}

static void ask(struct resolver *r, const char *name, enum resolver_type t, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(resolver_query(r, name, t, on_result, g, NULL), 0);
	assert_int_equal(g->calls, 0); /* never from inside resolver_query() */
	run_until(&g->calls, 5000);
	assert_int_equal(g->calls, 1);
}

static bool has_text(const struct got *g, const char *s)
{
	for (size_t i = 0; i < g->n && i < 8; i++)
		if (!strcmp(g->text[i], s))
			return true;
	return false;
}

static void test_resolver_types(void **state)
{
	struct resolver *r = resolver_at(W.port, 2000, 100);
	struct got g;
	char ip[INET6_ADDRSTRLEN];

	(void)state;
	ask(r, "host.mxg.test", RESOLVER_A, &g);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.rr[0].ttl, 3600);
	ask(r, "host.mxg.test.", RESOLVER_AAAA, &g);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_int_equal(g.n, 1);
	inet_ntop(AF_INET6, &g.rr[0].aaaa, ip, sizeof(ip));
	assert_string_equal(ip, "2001:db8::10");
	ask(r, "txt.mxg.test", RESOLVER_TXT, &g);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_int_equal(g.n, 2);
	assert_true(has_text(&g, "v=spf1 -all"));
	assert_true(has_text(&g, "part one part two")); /* strings joined */
	ask(r, "mxg.test", RESOLVER_MX, &g);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_int_equal(g.n, 2);
	assert_true(has_text(&g, "mx1.mxg.test") && has_text(&g, "mx2.mxg.test"));
	assert_true(g.rr[0].pref == 10 || g.rr[0].pref == 20);
	ask(r, "10.0.0.127.in-addr.arpa", RESOLVER_PTR, &g);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_string_equal(g.text[0], "good.mxg.test");
	/* NXDOMAIN and NODATA are permanent */
	ask(r, "nope.mxg.test", RESOLVER_A, &g);
	assert_int_equal(g.status, RESOLVER_PERMFAIL);
	assert_true(g.nxdomain);
	assert_string_equal(g.why, "NXDOMAIN");
	ask(r, "v4only.mxg.test", RESOLVER_AAAA, &g);
	assert_int_equal(g.status, RESOLVER_PERMFAIL);
	assert_false(g.nxdomain);
	assert_string_equal(g.why, "NODATA");
	/* bad arguments: an error, and no callback */
	assert_int_equal(resolver_query(r, "", RESOLVER_A, on_result, &g, NULL), -EINVAL);
	assert_int_equal(resolver_query(r, "x.test", (enum resolver_type)99, on_result, &g, NULL),
			 -EINVAL);
	resolver_free(r);
}

static void test_resolver_cache(void **state)
{
	struct resolver *r = resolver_at(W.port, 2000, 100);
	struct resolver_stats st;
	struct got g, g2;

	(void)state;
	ask(r, "host.mxg.test", RESOLVER_A, &g);
	assert_false(g.from_cache);
	ask(r, "HOST.mxg.test", RESOLVER_A, &g); /* names are case-insensitive */
	assert_true(g.from_cache);
	assert_int_equal(g.n, 2);
	/* negative answers are cached too (SOA minimum 120 s) */
	ask(r, "nope.mxg.test", RESOLVER_A, &g);
	assert_false(g.from_cache);
	ask(r, "nope.mxg.test", RESOLVER_A, &g);
	assert_true(g.from_cache);
	assert_true(g.nxdomain);
	/* a 1 s TTL expires */
	ask(r, "short.mxg.test", RESOLVER_A, &g);
	assert_false(g.from_cache);
	ask(r, "short.mxg.test", RESOLVER_A, &g);
	assert_true(g.from_cache);
	usleep(1100 * 1000);
	ask(r, "short.mxg.test", RESOLVER_A, &g);
	assert_false(g.from_cache);
	/* two requests for the same name share one look-up */
	resolver_get_stats(r, &st);
	uint64_t sent = st.sent;
	memset(&g, 0, sizeof(g));
	memset(&g2, 0, sizeof(g2));
	assert_int_equal(resolver_query(r, "mx1.mxg.test", RESOLVER_A, on_result, &g, NULL), 0);
	assert_int_equal(resolver_query(r, "mx1.mxg.test", RESOLVER_A, on_result, &g2, NULL), 0);
	run_until(&g2.calls, 3000);
	run_until(&g.calls, 3000);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_int_equal(g2.status, RESOLVER_OK);
	resolver_get_stats(r, &st);
	assert_int_equal(st.sent, sent + 1);
	assert_int_equal(st.joined, 1);
	assert_true(st.cache_hits >= 3);
	assert_true(metrics_get(W.metrics, M_DNS_CACHE_HITS) >= 3);
	resolver_free(r);
}

static void test_resolver_cache_bounded(void **state)
{
	char servers[64], why[128];
	struct resolver_opts o = {.servers = servers,
				  .timeout_ms = 2000,
				  .cache_size = 2,
				  .max_inflight = 10,
				  .negative_ttl = 60,
				  .max_ttl = 3600};
	struct resolver *r = NULL;
	struct resolver_stats st;
	struct got g;

	(void)state;
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", W.port);
	assert_int_equal(resolver_new(W.base, &o, &r, why, sizeof(why)), 0);
	ask(r, "mx1.mxg.test", RESOLVER_A, &g);
	ask(r, "mx2.mxg.test", RESOLVER_A, &g);
	ask(r, "host.mxg.test", RESOLVER_A, &g); /* evicts mx1, the least recent */
	resolver_get_stats(r, &st);
	assert_int_equal(st.cached, 2);
	ask(r, "mx2.mxg.test", RESOLVER_A, &g);
	assert_true(g.from_cache);
	ask(r, "mx1.mxg.test", RESOLVER_A, &g);
	assert_false(g.from_cache);
	resolver_free(r);
}

static void test_resolver_timeout_and_servfail(void **state)
{
	struct resolver *r = resolver_at(W.blackhole_port, 400, 100);
	struct got g;
	int64_t ms;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(resolver_query(r, "host.mxg.test", RESOLVER_A, on_result, &g, NULL), 0);
	ms = run_until(&g.calls, 5000);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, RESOLVER_TEMPFAIL);
	assert_string_equal(g.why, "timeout");
	assert_true(ms >= 350 && ms < 1500);
	/* a time-out is not cached */
	ask(r, "host.mxg.test", RESOLVER_A, &g);
	assert_false(g.from_cache);
	assert_int_equal(g.status, RESOLVER_TEMPFAIL);
	resolver_free(r);

	r = resolver_at(W.servfail_port, 2000, 100);
	ask(r, "host.mxg.test", RESOLVER_A, &g);
	assert_int_equal(g.status, RESOLVER_TEMPFAIL);
	assert_string_equal(g.why, "SERVFAIL");
	ask(r, "host.mxg.test", RESOLVER_A, &g);
	assert_false(g.from_cache);
	resolver_free(r);
}

static void test_resolver_inflight_cap(void **state)
{
	struct resolver *r = resolver_at(W.blackhole_port, 1000, 2);
	struct got a, b, c;
	int64_t ms;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	assert_int_equal(resolver_query(r, "a.mxg.test", RESOLVER_A, on_result, &a, NULL), 0);
	assert_int_equal(resolver_query(r, "b.mxg.test", RESOLVER_A, on_result, &b, NULL), 0);
	assert_int_equal(resolver_query(r, "c.mxg.test", RESOLVER_A, on_result, &c, NULL), 0);
	ms = run_until(&c.calls, 3000);
	assert_int_equal(c.status, RESOLVER_TEMPFAIL);
	assert_string_equal(c.why, "over the in-flight cap");
	assert_true(ms < 300);			/* at once, not after the time-out */
	assert_int_equal(a.calls + b.calls, 0); /* still waiting */
	resolver_free(r);			/* cancels them: no callback, nothing leaks */
	assert_int_equal(a.calls + b.calls, 0);
}

static void test_resolver_cancel(void **state)
{
	struct resolver *r = resolver_at(W.port, 2000, 100);
	struct resolver_req *q = NULL, *q2 = NULL;
	struct got g, g2;
	int never = 0;

	(void)state;
	memset(&g, 0, sizeof(g));
	memset(&g2, 0, sizeof(g2));
	assert_int_equal(resolver_query(r, "mx2.mxg.test", RESOLVER_A, on_result, &g, &q), 0);
	assert_int_equal(resolver_query(r, "mx2.mxg.test", RESOLVER_A, on_result, &g2, &q2), 0);
	resolver_cancel(q); /* the other request of the same look-up goes on */
	run_until(&g2.calls, 3000);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.status, RESOLVER_OK);
	run_until(&never, 200);
	assert_int_equal(g.calls, 0);
	/* cancelled while the answer comes from the cache: still no callback */
	assert_int_equal(resolver_query(r, "mx2.mxg.test", RESOLVER_A, on_result, &g, &q), 0);
	resolver_cancel(q);
	run_until(&never, 100);
	assert_int_equal(g.calls, 0);
	resolver_free(r);
}

static void test_reverse_names(void **state)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	char name[RESOLVER_NAME_LEN];

	(void)state;
	inet_pton(AF_INET, "192.0.2.99", &s4.sin_addr);
	assert_int_equal(
	    resolver_reverse_name((struct sockaddr *)&s4, "zen.example", name, sizeof(name)), 0);
	assert_string_equal(name, "99.2.0.192.zen.example");
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	assert_int_equal(resolver_reverse_name((struct sockaddr *)&s6, NULL, name, sizeof(name)),
			 0);
	assert_string_equal(
	    name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	inet_pton(AF_INET6, "::ffff:192.0.2.99", &s6.sin6_addr);
	assert_int_equal(resolver_reverse_name((struct sockaddr *)&s6, NULL, name, sizeof(name)),
			 0);
	assert_string_equal(name, "99.2.0.192.in-addr.arpa");
	assert_int_equal(resolver_reverse_name((struct sockaddr *)&s4, "z", name, 8),
			 -ENAMETOOLONG);
}

/* ---- dnsbl ------------------------------------------------------------- */

struct bl {
	int calls;
	struct dnsbl_result res;
	struct dnsbl_req *req;
	int64_t t0, ms;
};

static void on_bl(struct dnsbl_req *req, const struct dnsbl_result *res, void *arg)
{
	struct bl *b = arg;

	assert_ptr_equal(req, b->req);
	assert_ptr_equal(dnsbl_req_result(req), res);
	b->calls++;
	b->res = *res; /* the arrays stay valid until dnsbl_req_free() */
	b->ms = (time_mono_us() - b->t0) / 1000;
}

static struct config *bl_config(bool with_dead)
{
	static struct config cfg;
	char text[2048], err[256];

	snprintf(text, sizeof(text),
		 "[dns]\nservers = 127.0.0.1:%d\ntimeout = 2s\n"
		 "[dnsbl]\nreject_score = 5\nbudget = 600ms\n"
		 "[dnsbl bl.mxg.test]\nweight = 2\n"
		 "codes = 127.0.0.2:TEST_SBL:4, 127.0.0.4:TEST_XBL:3, 127.0.0.3:TEST_V6\n"
		 "[dnsbl bl2.mxg.test]\nweight = 1.5\n"
		 "[dnsbl wl.mxg.test]\nallow = yes\nweight = -10\n"
		 "%s%d\n",
		 W.port, with_dead ? "[dnsbl dead.mxg.test]\nweight = 9\nserver = 127.0.0.1:" : "#",
		 W.blackhole_port);
	config_defaults(&cfg);
	if (config_parse("t.conf", text, strlen(text), &cfg, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	return &cfg;
}

static struct sockaddr_storage addr(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		fail_msg("bad address %s", ip);
	return ss;
}

static void check(struct dnsbl *d, const char *ip, struct bl *b)
{
	struct sockaddr_storage ss = addr(ip);

	memset(b, 0, sizeof(*b));
	b->t0 = time_mono_us();
	assert_int_equal(dnsbl_check(d, (struct sockaddr *)&ss, on_bl, b, &b->req), 0);
	assert_null(dnsbl_req_result(b->req));
	run_until(&b->calls, 5000);
	assert_int_equal(b->calls, 1);
}

static bool hit(const struct bl *b, const char *zone, const char *symbol, double w)
{
	for (size_t i = 0; i < b->res.nhits; i++)
		if (!strcmp(b->res.hits[i].zone, zone) && !strcmp(b->res.hits[i].symbol, symbol) &&
		    b->res.hits[i].weight == w)
			return true;
	return false;
}

static void test_dnsbl_listings(void **state)
{
	struct config *cfg = bl_config(false);
	struct resolver *r = resolver_at(W.port, 2000, 100);
	struct dnsbl *d = NULL;
	char why[128];
	struct bl b;

	(void)state;
	assert_int_equal(dnsbl_new(W.base, cfg, r, W.metrics, &d, why, sizeof(why)), 0);

	check(d, "127.0.0.20", &b); /* listed nowhere */
	assert_int_equal(b.res.nzones, 3);
	assert_int_equal(b.res.nhits, 0);
	assert_int_equal(b.res.nskipped, 0);
	assert_false(b.res.reject);
	dnsbl_req_free(b.req);

	check(d, "127.0.0.2", &b); /* one code, below the threshold */
	assert_int_equal(b.res.nhits, 1);
	assert_true(hit(&b, "bl.mxg.test", "TEST_SBL", 4));
	assert_true(b.res.score == 4);
	assert_false(b.res.reject);
	dnsbl_req_free(b.req);

	check(d, "127.0.0.10", &b); /* two codes + a second list: rejected */
	assert_int_equal(b.res.nhits, 3);
	assert_true(hit(&b, "bl.mxg.test", "TEST_SBL", 4));
	assert_true(hit(&b, "bl.mxg.test", "TEST_XBL", 3));
	assert_true(hit(&b, "bl2.mxg.test", "RBL_BL2_MXG_TEST", 1.5));
	assert_true(b.res.score == 8.5);
	assert_true(b.res.reject);
	assert_string_equal(b.res.reject_zone, "bl.mxg.test");
	dnsbl_req_free(b.req);

	check(d, "127.0.0.12", &b); /* an unmapped code: the zone's symbol and weight */
	assert_int_equal(b.res.nhits, 1);
	assert_true(hit(&b, "bl.mxg.test", "RBL_BL_MXG_TEST", 2));
	assert_int_equal(b.res.hits[0].code, 0x7f00000a);
	dnsbl_req_free(b.req);

	check(d, "127.0.0.13", &b); /* blocklisted and allowlisted */
	assert_true(b.res.allowlisted);
	assert_false(b.res.reject);
	assert_true(b.res.score == -6);
	dnsbl_req_free(b.req);

	check(d, "127.0.0.14", &b); /* 127.255.255.254 is an error, not a listing */
	assert_int_equal(b.res.nhits, 0);
	assert_int_equal(b.res.nskipped, 1);
	assert_string_equal(b.res.skipped[0].why, "error code 127.255.255.254");
	dnsbl_req_free(b.req);

	check(d, "2001:db8::1", &b); /* IPv6: reversed nibbles */
	assert_int_equal(b.res.nhits, 1);
	assert_true(hit(&b, "bl.mxg.test", "TEST_V6", 2));
	dnsbl_req_free(b.req);

	check(d, "::ffff:127.0.0.15", &b); /* IPv4-mapped: asked as IPv4 */
	assert_int_equal(b.res.nhits, 2);
	assert_true(b.res.reject);
	dnsbl_req_free(b.req);

	assert_true(metrics_get(W.metrics, M_DNSBL_HITS) >= 7);
	assert_true(metrics_get(W.metrics, M_DNSBL_QUERIES) >= 24);
	dnsbl_free(d);
	resolver_free(r);
}

static void test_dnsbl_dead_zone_within_budget(void **state)
{
	struct config *cfg = bl_config(true);
	struct resolver *r = resolver_at(W.port, 2000, 100);
	struct dnsbl *d = NULL;
	int64_t timeouts = metrics_get(W.metrics, M_DNSBL_TIMEOUTS);
	char why[128];
	struct bl b;

	(void)state;
	assert_int_equal(dnsbl_new(W.base, cfg, r, W.metrics, &d, why, sizeof(why)), 0);
	check(d, "127.0.0.10", &b);
	/* the dead zone is skipped at the budget (600 ms); the others count */
	assert_true(b.ms >= 550 && b.ms < 1200);
	assert_int_equal(b.res.nzones, 4);
	assert_int_equal(b.res.nskipped, 1);
	assert_string_equal(b.res.skipped[0].zone, "dead.mxg.test");
	assert_string_equal(b.res.skipped[0].why, "timeout");
	assert_int_equal(b.res.nhits, 3);
	assert_true(b.res.reject);
	assert_int_equal(metrics_get(W.metrics, M_DNSBL_TIMEOUTS), timeouts + 1);
	dnsbl_req_free(b.req);
	dnsbl_free(d);
	resolver_free(r);
}

static void test_dnsbl_cancel_and_empty(void **state)
{
	struct config *cfg = bl_config(true);
	struct resolver *r = resolver_at(W.port, 2000, 100);
	struct sockaddr_storage ss = addr("127.0.0.10");
	struct dnsbl *d = NULL;
	char why[128];
	struct bl b;
	int never = 0;

	(void)state;
	assert_int_equal(dnsbl_new(W.base, cfg, r, W.metrics, &d, why, sizeof(why)), 0);
	memset(&b, 0, sizeof(b));
	assert_int_equal(dnsbl_check(d, (struct sockaddr *)&ss, on_bl, &b, &b.req), 0);
	run_until(&never, 50);
	dnsbl_req_free(b.req); /* the session closed: no callback ever */
	run_until(&never, 800);
	assert_int_equal(b.calls, 0);
	dnsbl_free(d);

	/* disabled: the empty result still arrives, from the loop */
	cfg->dnsbl.enabled = false;
	assert_int_equal(dnsbl_new(W.base, cfg, r, W.metrics, &d, why, sizeof(why)), 0);
	check(d, "127.0.0.10", &b);
	assert_int_equal(b.res.nzones, 0);
	assert_false(b.res.reject);
	dnsbl_req_free(b.req);
	dnsbl_free(d);
	resolver_free(r);
}

/* ---- fcrdns ------------------------------------------------------------ */

struct fc {
	int calls;
	struct fcrdns_result res;
	char name[RESOLVER_NAME_LEN];
	struct fcrdns_req *req;
};

static void on_fc(struct fcrdns_req *req, const struct fcrdns_result *res, void *arg)
{
	struct fc *f = arg;

	f->calls++;
	f->res = *res;
	snprintf(f->name, sizeof(f->name), "%s", res->name);
	fcrdns_req_free(req); /* allowed from the callback */
}

static void fc_check(struct resolver *r, const char *ip, enum fcrdns_status want, const char *name)
{
	struct sockaddr_storage ss = addr(ip);
	struct fc f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(fcrdns_check(W.base, r, (struct sockaddr *)&ss, 1500, on_fc, &f, &f.req),
			 0);
	run_until(&f.calls, 5000);
	assert_int_equal(f.calls, 1);
	if (f.res.status != want || strcmp(f.name, name))
		fail_msg("%s: got %s '%s' (%s), want %s '%s'", ip, f.res.symbol, f.name, f.res.why,
			 fcrdns_symbol(want), name);
}

static void test_fcrdns(void **state)
{
	struct resolver *r = resolver_at(W.port, 1000, 100);

	(void)state;
	fc_check(r, "127.0.0.1", FCRDNS_CONFIRMED, "localhost.mxg.test");
	fc_check(r, "127.0.0.10", FCRDNS_CONFIRMED, "good.mxg.test");
	fc_check(r, "127.0.0.11", FCRDNS_MISMATCH, "bad.mxg.test");
	fc_check(r, "127.0.0.12", FCRDNS_NO_PTR, "");
	fc_check(r, "127.0.0.13", FCRDNS_CONFIRMED, "multi.mxg.test");
	fc_check(r, "127.0.0.14", FCRDNS_MISMATCH, "missing.mxg.test");
	fc_check(r, "2001:db8::10", FCRDNS_CONFIRMED, "good6.mxg.test");
	fc_check(r, "::ffff:127.0.0.10", FCRDNS_CONFIRMED, "good.mxg.test");
	/* a server that refuses is a temporary failure, never "no PTR" */
	fc_check(r, "192.0.2.200", FCRDNS_TEMPFAIL, "");
	resolver_free(r);

	r = resolver_at(W.blackhole_port, 500, 100);
	fc_check(r, "127.0.0.10", FCRDNS_TEMPFAIL, "");
	resolver_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reverse_names),
	    cmocka_unit_test(test_resolver_types),
	    cmocka_unit_test(test_resolver_cache),
	    cmocka_unit_test(test_resolver_cache_bounded),
	    cmocka_unit_test(test_resolver_timeout_and_servfail),
	    cmocka_unit_test(test_resolver_inflight_cap),
	    cmocka_unit_test(test_resolver_cancel),
	    cmocka_unit_test(test_dnsbl_listings),
	    cmocka_unit_test(test_dnsbl_dead_zone_within_budget),
	    cmocka_unit_test(test_dnsbl_cancel_and_empty),
	    cmocka_unit_test(test_fcrdns),
	};
	return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
