/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the SPF record parser and macro expansion (auth/spf). */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "auth/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char rec[RESOLVER_MAX_TEXT + 1], why[128], out[512];
	size_t n = size < RESOLVER_MAX_TEXT ? size : RESOLVER_MAX_TEXT;
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct spf_macro_vars v = {.sender = "a.b-c@x.example.com",
				   .domain = "x.example.com",
				   .helo = "mx.example.org",
				   .ip = (struct sockaddr *)&s4,
				   .now = 1};

	memcpy(rec, data, n);
	rec[n] = '\0';
	why[0] = '\0';
	if (spf_record_check(rec, n, why, sizeof(why)) < 0 && !why[0])
		__builtin_trap();
	/* the same bytes as a domain-spec and as an explanation */
	for (int explain = 0; explain < 2; explain++) {
		int rc = spf_macro_expand(&v, rec, n, explain, out, sizeof(out));
		if (rc == 0 && (strlen(out) >= sizeof(out) || (!explain && strlen(out) > 253)))
			__builtin_trap();
	}
	return 0;
}
