/* SPDX-License-Identifier: MIT */
/*
 * notice: the text of a message mxguard composes and sends itself
 * (delivery status notifications, DMARC aggregate reports).
 *
 * A growable text buffer created with its maximum: going past it is an
 * error (-E2BIG), never silent growth, and so is one formatted piece of
 * NOTICE_FMT_MAX bytes or more. The first error sticks: every later
 * append is a no-op, so a builder appends freely and checks once, at
 * notice_finish(). The text, once there is some, is NUL-terminated.
 *
 * Ownership: the memory belongs to the buffer until notice_finish()
 * hands it to the caller (who frees it) or frees it on error.
 */
#ifndef MXG_QUEUE_NOTICE_H
#define MXG_QUEUE_NOTICE_H

#include <stddef.h>

#include "core/util.h"

#define NOTICE_FMT_MAX 2048

struct notice_buf {
	char *p;
	size_t len, cap;
	size_t max; /* the text plus its NUL stays below this */
	int err;    /* the first error: -E2BIG or -ENOMEM */
};

/* An empty buffer that holds less than max bytes. */
void notice_init(struct notice_buf *b, size_t max);
void notice_add(struct notice_buf *b, const char *s, size_t n);
void notice_str(struct notice_buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void notice_fmt(struct notice_buf *b, const char *fmt, ...);
/* Hands the text (*out, malloc'd; NULL when empty) and its length to the
 * caller and returns 0; or frees it and returns the first error. */
int notice_finish(struct notice_buf *b, char **out, size_t *outlen) MXG_WUR;

#endif
