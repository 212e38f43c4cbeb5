/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the node configuration parser. */
#include <stdint.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	char err[512];

	config_defaults(&cfg);
	if (config_parse("fuzz", (const char *)data, size, &cfg, err, sizeof(err)) < 0 &&
	    !memchr(err, '\0', sizeof(err)))
		__builtin_trap();
	return 0;
}
