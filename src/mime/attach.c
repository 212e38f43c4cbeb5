/* SPDX-License-Identifier: MIT */
#include "mime/mime_private.h"

#include <stdlib.h>

struct mime_attach {
	int unused;
};

struct mime_attach *mime_attach_new(void)
{
	return calloc(1, sizeof(struct mime_attach));
}

void mime_attach_free(struct mime_attach *att)
{
	free(att);
}

int mime_attach_inspect(struct mime_msg *m, struct mime_part *p)
{
	(void)m;
	(void)p;
	return 0;
}
