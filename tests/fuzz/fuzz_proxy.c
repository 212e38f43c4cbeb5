/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the PROXY protocol v1/v2 header parser. */
#include <stdint.h>
#include <stdlib.h>

#include "net/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info pi;
	size_t used = 0;

	if (proxy_parse(data, size, &pi, &used) == 1 && (used == 0 || used > size))
		abort();
	return 0;
}
