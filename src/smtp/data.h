/* SPDX-License-Identifier: MIT */
/*
 * data: the DATA and BDAT content decoder (RFC 5321 4.1.1.4, 4.5.2;
 * RFC 3030).
 *
 * A streaming state machine fed with whatever bytes arrived: it removes
 * dot-stuffing, finds the end of DATA, and notes bare CR and bare LF.
 * The only end of DATA it recognises is <CRLF>.<CRLF>: "<LF>.<LF>",
 * "<CR>.<CR>" and "<LF>.<CRLF>" are content, so SMTP smuggling (a second
 * message hidden behind a line ending that another server would take for
 * the end) cannot get through. With reject_bare set the session refuses
 * any message with a bare CR or LF; otherwise they are normalised to CRLF
 * so that what we store and relay is always valid SMTP.
 *
 * Output goes to a struct buf created with the size limit: once full, the
 * rest is counted and dropped (SMTP_DATA_TOO_BIG) but the end marker is
 * still found, so the session stays in step with the client. The decoder
 * never allocates beyond the buffer's maximum and never reads past len.
 */
#ifndef MXG_SMTP_DATA_H
#define MXG_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

enum smtp_data_flags {
	SMTP_DATA_BARE_LF = 1 << 0,
	SMTP_DATA_BARE_CR = 1 << 1,
	SMTP_DATA_TOO_BIG = 1 << 2,
	SMTP_DATA_NOMEM = 1 << 3,
	SMTP_DATA_8BIT = 1 << 4, /* saw bytes >= 0x80 */
	SMTP_DATA_NUL = 1 << 5,
};

struct smtp_data {
	int state;
	bool dot_mode; /* DATA: unstuff and look for the end; BDAT: raw chunks */
	unsigned flags;
	size_t total; /* decoded bytes, including those dropped when too big */
	struct buf *out;
};

void smtp_data_init(struct smtp_data *d, struct buf *out, bool dot_mode);
/* Feeds p[0..len). Sets *used to the bytes consumed. Returns 1 when the
 * end of DATA was consumed (dot mode only), else 0. */
int smtp_data_feed(struct smtp_data *d, const char *p, size_t len, size_t *used);
/* BDAT: call after the LAST chunk to settle a trailing bare CR. */
void smtp_data_finish(struct smtp_data *d);

#endif
