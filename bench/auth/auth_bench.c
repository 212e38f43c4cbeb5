/* SPDX-License-Identifier: MIT */
/*
 * auth_bench: the cost of sender authentication, in process (bench/auth/run
 * serves the DNS and prints the report).
 *
 *   auth_bench dkim HOST:PORT RSA_PEM ED25519_PEM ROUNDS FILE...
 *       signs every message with an rsa-2048 key (selector "rsa") and an
 *       ed25519 key (selector "ed") of d=bench.example, then verifies every
 *       signed message ROUNDS times through auth/dkim with the resolver's
 *       cache warm (keys cached): signatures/s and verifications/s per
 *       algorithm, and how many verified "pass" (must be all).
 *   auth_bench spf HOST:PORT ROUNDS < questions
 *       "ip<TAB>helo<TAB>mail_from" a line (tests/auth/spf_eval's input):
 *       each question once with a cold resolver (DNS queries and time, the
 *       DNS server included), then ROUNDS times with a warm one (the
 *       evaluator's own cost). One line of totals.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth/dkim.h"
#include "auth/dkim_sign.h"
#include "auth/spf.h"
#include "core/util.h"
#include "net/resolver.h"

#include "eval_util.h"

struct done {
	bool done;
	int pass;
	unsigned queries;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A resolver on server, or the end of the run. */
static struct resolver *new_resolver(struct event_base *base, const char *server, int64_t cache)
{
	struct resolver *r = eval_resolver(base, server, cache);

	if (!r)
		exit(1);
	return r;
}

static void on_dkim(const struct dkim_outcome *o, void *arg)
{
	struct done *d = arg;

	d->done = true;
	d->pass = o->n == 1 && o->sigs[0].result == DKIM_PASS;
}

static int bench_dkim(const char *server, const char *rsa_pem, const char *ed_pem, int rounds,
		      int nfiles, char **files)
{
	struct event_base *base = event_base_new();
	struct resolver *r = new_resolver(base, server, 1000);
	const char *pems[2] = {rsa_pem, ed_pem}, *sels[2] = {"rsa", "ed"},
		   *names[2] = {"rsa-sha256 (2048)", "ed25519-sha256"};
	char **signed_msgs = calloc((size_t)nfiles * 2, sizeof(char *));
	size_t *lens = calloc((size_t)nfiles * 2, sizeof(size_t));
	char why[256];

	if (!signed_msgs || !lens)
		return 1;
	for (int a = 0; a < 2; a++) {
		struct dkim_key *k = NULL;
		struct dkim_sign_opts so = {.domain = "bench.example", .selector = sels[a]};
		size_t bytes = 0;
		int nsigned = 0;
		if (dkim_key_load_file(pems[a], &k, why, sizeof(why)) < 0) {
			fprintf(stderr, "%s\n", why);
			return 1;
		}
		double t0 = now_s();
		for (int i = 0; i < nfiles; i++) {
			size_t len = 0;
			char *m = eval_slurp(files[i], &len), *sig = NULL;
			if (!m)
				continue;
			if (dkim_sign(k, &so, m, len, &sig) == 0) {
				size_t sl = strlen(sig);
				char *sm = malloc(sl + len);
				if (sm) {
					memcpy(sm, sig, sl);
					memcpy(sm + sl, m, len);
					signed_msgs[a * nfiles + i] = sm;
					lens[a * nfiles + i] = sl + len;
					bytes += len;
					nsigned++;
				}
				free(sig);
			}
			free(m);
		}
		double dt = now_s() - t0;
		printf("sign\t%s\t%d msgs\t%.0f/s\t%.1f MB/s (reading the files included)\n",
		       names[a], nsigned, nsigned / dt, (double)bytes / dt / 1e6);
		dkim_key_free(k);
	}
	for (int a = 0; a < 2; a++) {
		int n = 0, pass = 0;
		/* warm the cache */
		for (int i = 0; i < nfiles && i < 1; i++) {
			struct done d = {0};
			if (signed_msgs[a * nfiles + i] &&
			    dkim_verify(r, NULL, signed_msgs[a * nfiles + i], lens[a * nfiles + i],
					on_dkim, &d, NULL) == 0)
				while (!d.done)
					event_base_loop(base, EVLOOP_ONCE);
		}
		double t0 = now_s();
		for (int rd = 0; rd < rounds; rd++)
			for (int i = 0; i < nfiles; i++) {
				struct done d = {0};
				if (!signed_msgs[a * nfiles + i])
					continue;
				if (dkim_verify(r, NULL, signed_msgs[a * nfiles + i],
						lens[a * nfiles + i], on_dkim, &d, NULL) < 0)
					return 1;
				while (!d.done)
					event_base_loop(base, EVLOOP_ONCE);
				n++;
				pass += d.pass;
			}
		double dt = now_s() - t0;
		printf("verify\t%s\t%d verifications\t%.0f/s\t%d pass\n", names[a], n, n / dt,
		       pass);
	}
	for (int i = 0; i < nfiles * 2; i++)
		free(signed_msgs[i]);
	free(signed_msgs);
	free(lens);
	resolver_free(r);
	event_base_free(base);
	return 0;
}

static void on_spf(const struct spf_outcome *o, void *arg)
{
	struct done *d = arg;

	d->done = true;
	d->queries = o->queries;
}

static int spf_once(struct event_base *base, struct resolver *r, const char *ip, const char *helo,
		    const char *from, unsigned *queries)
{
	struct sockaddr_storage ss;
	struct spf_opts so = {.timeout_ms = 20000, .receiver = "receiver.test"};
	struct done d = {0};

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return -1;
	if (spf_check(r, &so, (struct sockaddr *)&ss, helo, from, on_spf, &d, NULL) < 0)
		return -1;
	while (!d.done)
		event_base_loop(base, EVLOOP_ONCE);
	*queries = d.queries;
	return 0;
}

static int bench_spf(const char *server, int rounds)
{
	struct event_base *base = event_base_new();
	struct resolver *warm = new_resolver(base, server, 10000);
	char line[4096];
	unsigned long evals = 0, queries = 0, warm_evals = 0;
	double cold_s = 0, warm_s = 0;

	while (fgets(line, sizeof(line), stdin)) {
		char *ip = line, *helo, *from, *nl;
		unsigned q = 0;
		if ((nl = strchr(line, '\n')))
			*nl = '\0';
		helo = strchr(ip, '\t');
		from = helo ? strchr(helo + 1, '\t') : NULL;
		if (!from)
			continue;
		*helo++ = '\0';
		*from++ = '\0';
		struct resolver *cold = new_resolver(base, server, 0);
		double t0 = now_s();
		int rc = spf_once(base, cold, ip, helo, from, &q);
		cold_s += now_s() - t0;
		resolver_free(cold);
		if (rc < 0)
			continue;
		evals++;
		queries += q;
		(void)spf_once(base, warm, ip, helo, from, &q); /* fills the cache */
		t0 = now_s();
		for (int i = 0; i < rounds; i++)
			if (spf_once(base, warm, ip, helo, from, &q) == 0)
				warm_evals++;
		warm_s += now_s() - t0;
	}
	printf("spf\t%lu evals\t%lu queries\t%.3f cold_s\t%lu warm_evals\t%.6f warm_s\n", evals,
	       queries, cold_s, warm_evals, warm_s);
	resolver_free(warm);
	event_base_free(base);
	return 0;
}

int main(int argc, char **argv)
{
	if (resolver_global_init() < 0)
		return 1;
	if (argc >= 7 && !strcmp(argv[1], "dkim"))
		return bench_dkim(argv[2], argv[3], argv[4], (int)strtol(argv[5], NULL, 10),
				  argc - 6, argv + 6);
	if (argc == 4 && !strcmp(argv[1], "spf"))
		return bench_spf(argv[2], (int)strtol(argv[3], NULL, 10));
	fprintf(stderr, "usage: auth_bench dkim HOST:PORT RSA_PEM ED_PEM ROUNDS FILE... | "
			"spf HOST:PORT ROUNDS\n");
	return 2;
}
