/* SPDX-License-Identifier: MIT */
#include "mime/mime_private.h"

int mime_html_render(struct mime_msg *m, struct mime_part *p, const char *html, size_t n)
{
	return mime_part_set_text(m, p, html, n, p->charset.ptr, p->charset.len);
}
