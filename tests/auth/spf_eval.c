/* SPDX-License-Identifier: MIT */
/*
 * spf_eval: evaluates SPF questions with auth/spf against one DNS server,
 * for the suite driver tests/integration/test_spf_suite.py.
 *
 *   spf_eval HOST:PORT [TIMEOUT_MS]
 *
 * Reads one question a line on stdin, "ip<TAB>helo<TAB>mail_from"
 * (mail_from empty: the null reverse-path, checked as postmaster@helo),
 * and prints one answer a line, "result<TAB>mechanism<TAB>explanation
 * <TAB>problem". Each question gets a fresh resolver (no cache shared
 * between cases).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "auth/spf.h"
#include "core/util.h"
#include "net/resolver.h"

struct answer {
	bool done;
	char line[2048];
};

static void on_spf(const struct spf_outcome *o, void *arg)
{
	struct answer *a = arg;

	(void)str_fmt(a->line, sizeof(a->line), "%s\t%s\t%s\t%s", spf_result_name(o->result),
		      o->mechanism, o->explanation, o->problem);
	for (char *p = a->line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	a->done = true;
}

static int parse_ip(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	char line[4096], why[128];
	int64_t timeout = argc > 2 ? strtoll(argv[2], NULL, 10) : 1000;

	if (argc < 2) {
		fprintf(stderr, "usage: spf_eval HOST:PORT [TIMEOUT_MS]\n");
		return 2;
	}
	if (resolver_global_init() < 0)
		return 1;
	struct event_base *base = event_base_new();
	while (fgets(line, sizeof(line), stdin)) {
		char *ip = line, *helo, *from, *nl;
		struct sockaddr_storage ss;
		struct resolver *r = NULL;
		struct answer a = {0};
		struct resolver_opts o = {
		    .servers = argv[1],
		    .timeout_ms = timeout,
		    .cache_size = 1000,
		    .max_inflight = 100,
		    .negative_ttl = 60,
		    .max_ttl = 3600,
		};
		struct spf_opts so = {.timeout_ms = 20000, .receiver = "receiver.test"};

		if ((nl = strchr(line, '\n')))
			*nl = '\0';
		helo = strchr(ip, '\t');
		from = helo ? strchr(helo + 1, '\t') : NULL;
		if (!from) {
			printf("bad input\n");
			continue;
		}
		*helo++ = '\0';
		*from++ = '\0';
		if (parse_ip(ip, &ss) < 0) {
			printf("bad ip\n");
			continue;
		}
		if (resolver_new(base, &o, &r, why, sizeof(why)) < 0) {
			fprintf(stderr, "resolver: %s\n", why);
			return 1;
		}
		if (spf_check(r, &so, (struct sockaddr *)&ss, helo, from, on_spf, &a, NULL) < 0) {
			printf("error\n");
		} else {
			while (!a.done)
				event_base_loop(base, EVLOOP_ONCE);
			printf("%s\n", a.line);
		}
		fflush(stdout);
		resolver_free(r);
	}
	event_base_free(base);
	return 0;
}
