/* SPDX-License-Identifier: MIT */
/*
 * dmarc_eval: runs auth/dmarc for the suite driver
 * tests/integration/test_dmarc_suite.py.
 *
 *   dmarc_eval HOST:PORT TIMEOUT_MS [PCT_DRAW]   (1..100; default random)
 *
 * Reads cases from stdin, one a line: "FROM<TAB>SPF_DOMAIN<TAB>D1,D2,..."
 * (FROM: the value of the message's From field; the SPF domain passed
 * SPF; the d= of passing signatures). Writes one line per case:
 * "result<TAB>policy<TAB>disposition<TAB>from<TAB>org<TAB>spf<TAB>dkim
 * <TAB>rua<TAB>problem". The system Public Suffix List is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpsl.h>

#include "auth/dmarc.h"
#include "core/util.h"
#include "net/resolver.h"

static void on_dmarc(const struct dmarc_outcome *o, void *arg)
{
	printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dmarc_result_name(o->result),
	       dmarc_policy_name(o->policy), dmarc_policy_name(o->disposition), o->from_domain,
	       o->org_domain, o->spf_domain, o->dkim_domain, o->rua, o->problem);
	fflush(stdout);
	*(bool *)arg = true;
}

int main(int argc, char **argv)
{
	char line[8192], msg[8300], why[128];
	struct event_base *base;
	struct resolver *r = NULL;
	psl_ctx_t *psl;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: dmarc_eval HOST:PORT TIMEOUT_MS [PCT_DRAW]\n");
		return 2;
	}
	struct resolver_opts ro = {
	    .servers = argv[1],
	    .timeout_ms = strtoll(argv[2], NULL, 10),
	    .cache_size = 0,
	    .max_inflight = 100,
	    .negative_ttl = 60,
	    .max_ttl = 3600,
	};
	psl = psl_latest(NULL);
	if (!psl || resolver_global_init() < 0)
		return 1;
	base = event_base_new();
	if (!base || resolver_new(base, &ro, &r, why, sizeof(why)) < 0) {
		fprintf(stderr, "resolver: %s\n", why);
		return 1;
	}
	struct dmarc_opts opts = {.psl = psl,
				  .pct_draw = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 0};
	while (fgets(line, sizeof(line), stdin)) {
		const char *dk[DMARC_MAX_DKIM];
		char *f[3] = {line, "", ""};
		struct dmarc_auth auth = {.dkim = dk};
		bool done = false;
		int n;

		line[strcspn(line, "\r\n")] = '\0';
		for (int i = 1; i < 3; i++) {
			char *t = strchr(f[i - 1], '\t');
			if (!t)
				break;
			*t = '\0';
			f[i] = t + 1;
		}
		auth.spf = f[1][0] ? SPF_PASS : SPF_NONE;
		auth.spf_domain = f[1];
		for (char *s = f[2], *save = NULL, *d; (d = strtok_r(s, ",", &save)); s = NULL)
			if (auth.n_dkim < DMARC_MAX_DKIM)
				dk[auth.n_dkim++] = d;
		n = snprintf(msg, sizeof(msg), "From: %s\r\nSubject: test\r\n\r\nbody\r\n", f[0]);
		if (n < 0 || (size_t)n >= sizeof(msg) ||
		    dmarc_check(r, &opts, msg, (size_t)n, &auth, on_dmarc, &done, NULL) < 0) {
			printf("error\n");
			continue;
		}
		while (!done)
			event_base_loop(base, EVLOOP_ONCE);
	}
	resolver_free(r);
	event_base_free(base);
	psl_free(psl);
	return 0;
}
