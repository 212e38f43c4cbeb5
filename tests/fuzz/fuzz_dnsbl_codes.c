/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the DNSBL "codes" map and [dnsbl ZONE] sections. */
#include <stdint.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static char text[8192];
	struct config_dnsbl_zone z;
	const char *why = NULL;
	char err[512];
	size_t n = size < 2048 ? size : 2048;

	/* the value alone */
	memcpy(text, data, n);
	text[n] = '\0';
	memset(&z, 0, sizeof(z));
	if (config_dnsbl_codes_parse(text, &z, &why) < 0) {
		if (!why || !*why)
			__builtin_trap();
	} else if (z.ncodes == 0 || z.ncodes > CONFIG_MAX_DNSBL_CODES) {
		__builtin_trap();
	}
	/* the same bytes as a zone section of a file */
	memcpy(text, "[dnsbl fuzz.test]\ncodes = ", 26);
	memcpy(text + 26, data, n);
	config_defaults(&cfg);
	if (config_parse("fuzz", text, 26 + n, &cfg, err, sizeof(err)) < 0 &&
	    !memchr(err, '\0', sizeof(err)))
		__builtin_trap();
	return 0;
}
