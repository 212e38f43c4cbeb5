/* SPDX-License-Identifier: MIT */
/*
 * dkim_eval: runs auth/dkim for the suite driver
 * tests/integration/test_dkim_suite.py.
 *
 *   dkim_eval verify HOST:PORT NOW FILE [MIN_RSA_BITS]
 *                                         one line per signature:
 *                                         "result<TAB>d<TAB>s<TAB>a<TAB>why"
 *                                         ("none" when there is none)
 *   dkim_eval bh simple|relaxed sha1|sha256 LIMIT FILE
 *                                         the body hash of FILE (the body
 *                                         alone; LIMIT -1 for no l=)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "auth/dkim.h"
#include "core/util.h"
#include "net/resolver.h"

#include "eval_util.h"

static bool done;

static void on_dkim(const struct dkim_outcome *o, void *arg)
{
	(void)arg;
	if (o->n == 0)
		printf("none\n");
	for (size_t i = 0; i < o->n; i++)
		printf("%s\t%s\t%s\t%s\t%s\n", dkim_result_name(o->sigs[i].result),
		       o->sigs[i].domain, o->sigs[i].selector, o->sigs[i].algorithm,
		       o->sigs[i].why);
	done = true;
}

int main(int argc, char **argv)
{
	size_t len = 0;
	char *msg;

	if (argc == 6 && !strcmp(argv[1], "bh")) {
		char b64[128];
		int64_t avail;
		msg = eval_slurp(argv[5], &len);
		if (!msg && len)
			return 1;
		if (dkim_body_hash(!strcmp(argv[2], "relaxed") ? DKIM_CANON_RELAXED
							       : DKIM_CANON_SIMPLE,
				   !strcmp(argv[3], "sha1"), msg ? msg : "", len,
				   strtoll(argv[4], NULL, 10), b64, sizeof(b64), &avail) < 0)
			return 1;
		printf("%s\n", b64);
		free(msg);
		return 0;
	}
	if (argc < 5 || argc > 6 || strcmp(argv[1], "verify")) {
		fprintf(stderr, "usage: dkim_eval verify HOST:PORT NOW FILE | "
				"bh CANON ALGO LIMIT FILE\n");
		return 2;
	}
	msg = eval_slurp(argv[4], &len);
	if (!msg)
		return 1;
	if (resolver_global_init() < 0)
		return 1;
	struct event_base *base = event_base_new();
	struct resolver *r;
	struct dkim_opts dopts = {.now = strtoll(argv[3], NULL, 10),
				  .min_rsa_bits = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 0};
	if (!(r = eval_resolver(base, argv[2], 100)))
		return 1;
	if (dkim_verify(r, &dopts, msg, len, on_dkim, NULL, NULL) < 0)
		return 1;
	while (!done)
		event_base_loop(base, EVLOOP_ONCE);
	resolver_free(r);
	event_base_free(base);
	free(msg);
	return 0;
}
