/* SPDX-License-Identifier: MIT */
#include "queue/notice.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void notice_init(struct notice_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void notice_add(struct notice_buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->max) {
		b->err = -E2BIG;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 4096;
		char *np;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > b->max)
			ncap = b->max;
		np = realloc(b->p, ncap);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void notice_str(struct notice_buf *b, const char *s)
{
	notice_add(b, s, strlen(s));
}

void notice_fmt(struct notice_buf *b, const char *fmt, ...)
{
	char tmp[NOTICE_FMT_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->err = b->err ? b->err : -E2BIG;
		return;
	}
	notice_add(b, tmp, (size_t)n);
}

int notice_finish(struct notice_buf *b, char **out, size_t *outlen)
{
	int rc = b->err;

	if (rc) {
		free(b->p);
		b->p = NULL;
		return rc;
	}
	*out = b->p;
	*outlen = b->len;
	b->p = NULL;
	return 0;
}
