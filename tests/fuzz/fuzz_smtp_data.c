/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the DATA/BDAT decoder, fed in uneven pieces. The
 * output must never exceed the buffer maximum and a found end must be
 * within the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "smtp/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out;
	struct smtp_data d;
	size_t off = 1, piece;

	if (size < 1)
		return 0;
	piece = (data[0] & 31) + 1;
	buf_init(&out, 4096, 64);
	smtp_data_init(&d, &out, data[0] & 0x80);
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece, used = 0;
		int end = smtp_data_feed(&d, (const char *)data + off, n, &used);
		if (used > n)
			abort();
		off += used;
		if (end)
			break;
	}
	smtp_data_finish(&d);
	if (out.len > 4096)
		abort();
	buf_free(&out);
	return 0;
}
