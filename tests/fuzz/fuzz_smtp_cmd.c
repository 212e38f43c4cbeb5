/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: SMTP MAIL/RCPT arguments (paths and ESMTP params). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), key[32], val[64];
	const char *cur;
	struct smtp_path p;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	cur = s;
	if (smtp_path_parse(&cur, size & 1, &p) == 0) {
		if (strlen(p.addr) >= sizeof(p.addr))
			abort();
		while (smtp_param_next(&cur, key, sizeof(key), val, sizeof(val)) > 0) {
		}
	}
	(void)smtp_domain_valid(s, strlen(s), true);
	(void)utf8_valid(data, size);
	free(s);
	return 0;
}
