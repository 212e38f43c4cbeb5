/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the whole MIME engine (structure, headers, decoders,
 * charsets, HTML, URLs, attachments) on one message, with small limits so
 * that every limit path is reached. Every part must lie inside what was
 * parsed and the decoded total must stay within the limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "mime/mime_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits lim;
	struct mime_engine *e;
	struct mime_msg *m;
	uint64_t total = 0;
	json_t *j;

	mime_limits_default(&lim);
	lim.max_depth = 8;
	lim.max_parts = 64;
	lim.max_decoded = 1 << 20;
	lim.max_headers = 64;
	e = mime_engine_new(&lim, MIME_OPT_ALL);
	if (!e)
		abort();
	if (mime_parse(e, (const char *)data, size, &m) == 0) {
		if (mime_msg_nparts(m) > lim.max_parts)
			abort();
		for (size_t i = 0; i < mime_msg_nparts(m); i++) {
			const struct mime_part *p = mime_msg_part(m, i);
			if (p->origin == MIME_FROM_MIME && p->raw.len > size)
				abort();
			if (p->decoded.ptr != p->body.ptr)
				total += p->decoded.len;
		}
		if (total > lim.max_decoded)
			abort();
		j = mime_json_msg(m);
		json_decref(j);
		mime_msg_free(m);
	}
	mime_engine_free(e);
	return 0;
}
