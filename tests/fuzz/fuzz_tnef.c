/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the TNEF reader on its own (every slice it returns
 * must lie inside the input), then the whole engine on the same bytes as
 * a winmail.dat attachment, with small limits so that the attachment,
 * part and depth limits are reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "mime/tnef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(struct mime_slice s, const uint8_t *data, size_t size)
{
	if (s.len && ((const uint8_t *)s.ptr < data || s.len > size ||
		      (const uint8_t *)s.ptr + s.len > data + size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "Content-Type: application/ms-tnef; name=winmail.dat\r\n"
				   "Content-Transfer-Encoding: binary\r\n\r\n";
	struct mime_limits lim;
	struct mime_engine *e;
	struct mime_msg *m;
	struct tnef *t;
	struct tnef_attachment a;
	char *msg;
	int r;

	if (tnef_new((const char *)data, size, &t) == 0) {
		while ((r = tnef_next(t, &a)) == 1) {
			inside(a.name, data, size);
			inside(a.mime_type, data, size);
			inside(a.data, data, size);
			inside(a.object, data, size);
		}
		if (r < 0 && !tnef_error(t))
			abort();
		tnef_free(t);
	}
	mime_limits_default(&lim);
	lim.max_parts = 64;
	lim.max_archive_members = 16;
	lim.max_decoded = 1 << 20;
	if (!(e = mime_engine_new(&lim, MIME_OPT_ALL)))
		abort();
	if (!(msg = malloc(sizeof(head) + size)))
		abort();
	memcpy(msg, head, sizeof(head) - 1);
	if (size)
		memcpy(msg + sizeof(head) - 1, data, size);
	if (mime_parse(e, msg, sizeof(head) - 1 + size, &m) == 0) {
		if (mime_msg_nparts(m) > lim.max_parts)
			abort();
		mime_msg_free(m);
	}
	free(msg);
	mime_engine_free(e);
	return 0;
}
