/* SPDX-License-Identifier: MIT */
/*
 * header: the values of RFC 5322 header fields as the MIME engine needs
 * them: unfolded, RFC 2047 encoded words decoded, RFC 2045 parameter
 * lists (Content-Type, Content-Disposition) parsed with RFC 822 comments
 * and quoted strings, RFC 2231 parameter continuations and charsets
 * joined and decoded. All text comes back as UTF-8 in the arena.
 *
 * Nothing here fails on content (bad encoded words are left as they are,
 * bad bytes become U+FFFD and are noted in *flags as MIME_CS_* bits);
 * -ENOMEM comes back when the arena is full.
 */
#ifndef MXG_MIME_HEADER_H
#define MXG_MIME_HEADER_H

#include <stddef.h>

#include "core/arena.h"
#include "core/util.h"
#include "mime/charset.h"
#include "mime/mime.h"

#define MIME_HDR_MAX_PARAMS 32

struct mime_param {
	struct mime_slice name;	 /* lower case, without RFC 2231 '*' sections */
	struct mime_slice value; /* UTF-8 */
};

/* Unfolds v[0..n), trims it and decodes RFC 2047 encoded words. */
int mime_hdr_decode(struct mime_cs *cs, struct arena *a, const char *v, size_t n,
		    struct mime_slice *out, unsigned *flags) MXG_WUR;

/* Parses "token [; name=value]..." (the token is "type/subtype" or a
 * disposition, lower-cased, comments and white space removed; empty if
 * absent). At most max parameters are kept. */
int mime_hdr_params(struct mime_cs *cs, struct arena *a, const char *v, size_t n,
		    struct mime_slice *token, struct mime_param *params, size_t max,
		    size_t *nparams, unsigned *flags) MXG_WUR;

/* The value of parameter name (lower case) or NULL. */
const struct mime_slice *mime_hdr_param(const struct mime_param *params, size_t n,
					const char *name);

#endif
