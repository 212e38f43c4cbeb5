/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the scores folder's file format (scan/scores.h). */
#include <stdint.h>
#include <string.h>

#include "scan/scores.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scores *s = NULL;
	char err[512];
	double v;

	if (scores_parse("fuzz", (const char *)data, size, &s, err, sizeof(err)) < 0) {
		if (!memchr(err, '\0', sizeof(err)))
			__builtin_trap();
		return 0;
	}
	(void)scores_lookup(s, "BAYES_99", &v);
	scores_free(s);
	return 0;
}
