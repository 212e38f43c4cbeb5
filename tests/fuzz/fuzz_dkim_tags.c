/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the DKIM tag-list parser, header canonicalization and
 * the body hash (auth/dkim). */
#include <stdint.h>
#include <string.h>

#include "auth/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct dkim_tags t;
	char out[8192], b64[64];
	size_t used = 0;
	int64_t avail;

	if (dkim_tags_parse(s, size, &t) == 0) {
		for (size_t i = 0; i < t.n; i++) {
			const struct dkim_tag *g = &t.t[i];
			if (g->nlen == 0 || g->name < s || g->name + g->nlen > s + size ||
			    g->val < s || g->val + g->vlen > s + size)
				__builtin_trap();
		}
	}
	if (size < 4096) {
		for (int c = 0; c < 2; c++)
			if (dkim_canon_header(c, s, size, out, sizeof(out), &used) == 0 &&
			    used >= sizeof(out))
				__builtin_trap();
	}
	for (int c = 0; c < 2; c++)
		if (dkim_body_hash(c, false, s, size, size % 3 ? -1 : (int64_t)(size / 2), b64,
				   sizeof(b64), &avail) < 0)
			__builtin_trap();
	return 0;
}
