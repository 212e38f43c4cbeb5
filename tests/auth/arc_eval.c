/* SPDX-License-Identifier: MIT */
/*
 * arc_eval: runs auth/arc and auth/dkim_sign for the suite driver
 * tests/integration/test_arc_suite.py and bench/auth.
 *
 *   arc_eval verify HOST:PORT FILE     "result<TAB>n<TAB>oldest_pass<TAB>why"
 *   arc_eval seal HOST:PORT KEY DOMAIN SELECTOR SRVID ARFILE T FILE H [nofold]
 *                                      verifies the chain of FILE, then
 *                                      prints the chain result on the first
 *                                      line and the new set (nothing when
 *                                      the chain is not to be sealed); H
 *                                      the AMS header names "a:b", or "-"
 *   arc_eval sign KEY DOMAIN SELECTOR CANON T FILE
 *                                      the DKIM-Signature field for FILE
 *                                      (CANON "relaxed/simple" ...)
 *   arc_eval keygen rsa|ed25519        the PEM, then the TXT record
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "auth/arc.h"
#include "auth/dkim_sign.h"
#include "core/util.h"
#include "net/resolver.h"

#include "eval_util.h"

struct got {
	bool done;
	enum arc_result r;
};

static void on_arc(const struct arc_outcome *o, void *arg)
{
	struct got *g = arg;

	g->done = true;
	g->r = o->result;
	printf("%s\t%d\t%d\t%s\n", arc_result_name(o->result), o->n, o->oldest_pass, o->why);
}

static int run_verify(const char *server, const char *msg, size_t len, enum arc_result *res)
{
	struct event_base *base = event_base_new();
	struct resolver *r;
	struct got g = {0};

	if (!base || resolver_global_init() < 0)
		return 1;
	if (!(r = eval_resolver(base, server, 100)))
		return 1;
	if (arc_verify(r, NULL, msg, len, on_arc, &g, NULL) < 0)
		return 1;
	while (!g.done)
		event_base_loop(base, EVLOOP_ONCE);
	*res = g.r;
	resolver_free(r);
	event_base_free(base);
	return 0;
}

static struct dkim_key *load_key(const char *path)
{
	struct dkim_key *k = NULL;
	char why[256];

	if (dkim_key_load_file(path, &k, why, sizeof(why)) < 0) {
		fprintf(stderr, "key: %s\n", why);
		return NULL;
	}
	return k;
}

int main(int argc, char **argv)
{
	size_t len = 0;
	char *msg = NULL, *out = NULL;
	enum arc_result res = ARC_NONE;

	if (argc == 4 && !strcmp(argv[1], "verify")) {
		int bad;
		msg = eval_slurp(argv[3], &len);
		bad = !msg || run_verify(argv[2], msg, len, &res);
		free(msg);
		return bad ? 1 : 0;
	}
	if ((argc == 11 || argc == 12) && !strcmp(argv[1], "seal")) {
		const char *hl[DKIM_MAX_H + 1];
		char hbuf[1024];
		size_t nhl = 0;
		(void)str_copy(hbuf, sizeof(hbuf), argv[10]);
		for (char *sp = NULL, *t = strtok_r(hbuf, ":", &sp); t && nhl < DKIM_MAX_H;
		     t = strtok_r(NULL, ":", &sp))
			hl[nhl++] = t;
		hl[nhl] = NULL;
		size_t arlen = 0;
		char *ar = eval_slurp(argv[7], &arlen);
		struct dkim_key *k = load_key(argv[3]);
		msg = eval_slurp(argv[9], &len);
		if (!ar || !k || !msg || run_verify(argv[2], msg, len, &res)) {
			free(ar);
			free(msg);
			dkim_key_free(k);
			return 1;
		}
		while (arlen && (ar[arlen - 1] == '\n' || ar[arlen - 1] == '\r'))
			ar[--arlen] = '\0';
		struct arc_seal_opts so = {
		    .key = k,
		    .domain = argv[4],
		    .selector = argv[5],
		    .authserv_id = argv[6],
		    .ar = ar,
		    .chain = res,
		    .now = strtoll(argv[8], NULL, 10),
		    .headers = strcmp(argv[10], "-") ? hl : NULL,
		    .no_fold = argc == 12,
		};
		int rc = arc_seal(&so, msg, len, &out);
		if (rc < 0) {
			fprintf(stderr, "arc_seal: %d\n", rc);
			free(ar);
			free(msg);
			dkim_key_free(k);
			return 1;
		}
		if (out)
			fputs(out, stdout);
		free(out);
		free(ar);
		free(msg);
		dkim_key_free(k);
		return 0;
	}
	if (argc == 8 && !strcmp(argv[1], "sign")) {
		struct dkim_key *k = load_key(argv[2]);
		const char *c = argv[5], *slash = strchr(c, '/');
		struct dkim_sign_opts so = {
		    .domain = argv[3],
		    .selector = argv[4],
		    .canon_set = true,
		    .header_canon =
			!strncmp(c, "relaxed", 7) ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
		    .body_canon = slash && !strcmp(slash + 1, "relaxed") ? DKIM_CANON_RELAXED
									 : DKIM_CANON_SIMPLE,
		    .now = strtoll(argv[6], NULL, 10),
		};
		msg = eval_slurp(argv[7], &len);
		if (!k || !msg || dkim_sign(k, &so, msg, len, &out) < 0) {
			free(msg);
			dkim_key_free(k);
			return 1;
		}
		fputs(out, stdout);
		free(out);
		free(msg);
		dkim_key_free(k);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "keygen")) {
		char *pem = NULL, *txt = NULL;
		if (dkim_keygen(!strcmp(argv[2], "ed25519") ? DKIM_KEY_ED25519 : DKIM_KEY_RSA2048,
				&pem, &txt) < 0)
			return 1;
		printf("%s%s\n", pem, txt);
		free(pem);
		free(txt);
		return 0;
	}
	fprintf(stderr, "usage: arc_eval verify|seal|sign|keygen ...\n");
	return 2;
}
