/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: clamd's replies (av_clamd_reply_parse). Whatever the
 * bytes, the answer is one of the documented codes and a found name is a
 * terminated string of printable ASCII without spaces. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "scan/av_clamd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[64];
	unsigned id = size ? data[0] % 4 : 0; /* 0: no id expected */
	const char *reply = size ? (const char *)data + 1 : "";
	size_t len = size ? size - 1 : 0;
	int rc;

	memset(name, 'x', sizeof(name));
	rc = av_clamd_reply_parse(reply, len, id, name, sizeof(name));
	if (rc != 0 && rc != AV_CLAMD_FOUND && rc != -EFBIG && rc != -EIO && rc != -EPROTO)
		__builtin_trap();
	if (rc == AV_CLAMD_FOUND) {
		size_t n = strnlen(name, sizeof(name));
		if (n == 0 || n == sizeof(name))
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
				__builtin_trap();
	}
	return 0;
}
