/* SPDX-License-Identifier: MIT */
#include "mime/mime_private.h"

int mime_url_scan_text(struct mime_msg *m, struct mime_part *p, const char *text, size_t n)
{
	(void)m;
	(void)p;
	(void)text;
	(void)n;
	return 0;
}

int mime_url_add(struct mime_msg *m, struct mime_part *p, const char *raw, size_t n,
		 const char *text, size_t tlen, unsigned flags)
{
	(void)m;
	(void)p;
	(void)raw;
	(void)n;
	(void)text;
	(void)tlen;
	(void)flags;
	return 0;
}
