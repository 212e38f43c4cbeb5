/* SPDX-License-Identifier: MIT */
#include "eval_util.h"

#include <stdio.h>
#include <stdlib.h>

char *eval_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n + 4096 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);
			if (!nb)
				break;
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	if (buf)
		buf[n] = '\0';
	*len = n;
	return buf;
}

struct resolver *eval_resolver(struct event_base *base, const char *server, int64_t cache_size)
{
	struct resolver *r = NULL;
	char why[128];
	struct resolver_opts o = {
	    .servers = server,
	    .timeout_ms = 2000,
	    .cache_size = cache_size,
	    .max_inflight = 100,
	    .negative_ttl = 60,
	    .max_ttl = 3600,
	};

	if (resolver_new(base, &o, &r, why, sizeof(why)) < 0) {
		fprintf(stderr, "resolver: %s\n", why);
		return NULL;
	}
	return r;
}
