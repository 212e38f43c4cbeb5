/* SPDX-License-Identifier: MIT */
/*
 * buf: a growable byte buffer created with its maximum.
 *
 * Appending past the maximum fails with -EMSGSIZE and leaves the buffer as
 * it was; nothing ever grows silently. A buffer may reserve headroom in
 * front of its content so that a header can later be prepended without
 * copying the body (buf_prepend). The memory belongs to the buffer;
 * buf_free releases it.
 */
#ifndef MXG_BUF_H
#define MXG_BUF_H

#include <stddef.h>

#include "core/util.h"

struct buf {
	char *mem;	 /* allocation */
	size_t cap;	 /* bytes allocated */
	size_t start;	 /* content starts at mem + start */
	size_t len;	 /* content length */
	size_t max;	 /* maximum content length (headroom not counted) */
	size_t headroom; /* reserved in front at init */
};

void buf_init(struct buf *b, size_t max, size_t headroom);
int buf_append(struct buf *b, const void *p, size_t n) MXG_WUR;
/* Puts p in front of the content, using the headroom. */
int buf_prepend(struct buf *b, const void *p, size_t n) MXG_WUR;
static inline const char *buf_data(const struct buf *b)
{
	return b->mem ? b->mem + b->start : "";
}
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
