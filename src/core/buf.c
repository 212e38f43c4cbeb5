/* SPDX-License-Identifier: MIT */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max, size_t headroom)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
	b->headroom = headroom;
	b->start = headroom;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	size_t need;

	if (n > b->max - b->len)
		return -EMSGSIZE;
	need = b->start + b->len + n;
	if (need > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096 + b->headroom;
		char *nm;

		while (ncap < need)
			ncap *= 2;
		if (ncap > b->headroom + b->max)
			ncap = b->headroom + b->max;
		if (ncap < need)
			ncap = need;
		nm = realloc(b->mem, ncap);
		if (!nm)
			return -ENOMEM;
		b->mem = nm;
		b->cap = ncap;
	}
	memcpy(b->mem + b->start + b->len, p, n);
	b->len += n;
	return 0;
}

int buf_prepend(struct buf *b, const void *p, size_t n)
{
	if (n > b->start)
		return -EMSGSIZE;
	if (!b->mem) {
		/* allocates the headroom (start > cap == 0) */
		int r = buf_append(b, "", 0);
		if (r < 0)
			return r;
	}
	b->start -= n;
	b->len += n;
	memcpy(b->mem + b->start, p, n);
	return 0;
}

void buf_reset(struct buf *b)
{
	b->start = b->headroom;
	b->len = 0;
}

void buf_free(struct buf *b)
{
	free(b->mem);
	b->mem = NULL;
	b->cap = b->len = 0;
	b->start = b->headroom;
}
