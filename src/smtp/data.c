/* SPDX-License-Identifier: MIT */
#include "smtp/data.h"

#include "core/util.h"

#include <errno.h>
#include <string.h>

enum {
	D_BOL,	  /* at the beginning of a line */
	D_TEXT,	  /* inside a line */
	D_CR,	  /* after a CR */
	D_DOT,	  /* "." at the beginning of a line */
	D_DOT_CR, /* "." CR at the beginning of a line */
};

void smtp_data_init(struct smtp_data *d, struct buf *out, bool dot_mode)
{
	memset(d, 0, sizeof(*d));
	d->out = out;
	d->dot_mode = dot_mode;
	d->state = D_BOL;
}

static void emit(struct smtp_data *d, const char *p, size_t n)
{
	int r;

	d->total += n;
	if (d->flags & (SMTP_DATA_TOO_BIG | SMTP_DATA_NOMEM))
		return;
	r = buf_append(d->out, p, n);
	if (r == -EMSGSIZE)
		d->flags |= SMTP_DATA_TOO_BIG;
	else if (r < 0)
		d->flags |= SMTP_DATA_NOMEM;
}

int smtp_data_feed(struct smtp_data *d, const char *p, size_t len, size_t *used)
{
	size_t i = 0;

	while (i < len) {
		char c = p[i];

		switch (d->state) {
		case D_BOL:
			if (c == '.' && d->dot_mode) {
				d->state = D_DOT;
				i++;
				continue;
			}
			d->state = D_TEXT;
			FALLTHROUGH;
		case D_TEXT: {
			size_t j = i;
			unsigned char hi = 0;
			while (j < len && p[j] != '\r' && p[j] != '\n') {
				unsigned char u = (unsigned char)p[j];
				hi |= u;
				if (u == 0)
					d->flags |= SMTP_DATA_NUL;
				j++;
			}
			if (hi & 0x80)
				d->flags |= SMTP_DATA_8BIT;
			if (j > i)
				emit(d, p + i, j - i);
			i = j;
			if (i == len)
				break;
			if (p[i] == '\r') {
				d->state = D_CR;
			} else {
				/* A bare LF does not start a line: the client's MTA
				 * did not dot-stuff after it, so a "." here is text. */
				d->flags |= SMTP_DATA_BARE_LF;
				emit(d, "\r\n", 2);
				d->state = D_TEXT;
			}
			i++;
			continue;
		}
		case D_CR:
			if (c == '\n') {
				emit(d, "\r\n", 2);
				d->state = D_BOL;
				i++;
			} else {
				d->flags |= SMTP_DATA_BARE_CR;
				emit(d, "\r\n", 2);
				d->state = D_TEXT; /* reprocess c, not at a line start */
			}
			continue;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOT_CR;
				i++;
			} else if (c == '\n') {
				d->flags |= SMTP_DATA_BARE_LF;
				emit(d, ".\r\n", 3);
				d->state = D_TEXT;
				i++;
			} else {
				d->state = D_TEXT; /* the stuffed dot is dropped */
			}
			continue;
		case D_DOT_CR:
			if (c == '\n') {
				*used = i + 1;
				return 1;
			}
			d->flags |= SMTP_DATA_BARE_CR;
			emit(d, ".\r\n", 3);
			d->state = D_TEXT; /* reprocess c */
			continue;
		}
	}
	*used = len;
	return 0;
}

void smtp_data_finish(struct smtp_data *d)
{
	if (d->state == D_CR) {
		d->flags |= SMTP_DATA_BARE_CR;
		emit(d, "\r\n", 2);
	}
	d->state = D_BOL;
}
