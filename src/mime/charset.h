/* SPDX-License-Identifier: MIT */
/*
 * charset: text in any declared charset to UTF-8 (RFC 2045 charset
 * parameter, RFC 2047 / RFC 2231 charsets), with glibc's iconv.
 *
 * Never fails on content: a byte sequence that is not valid in its
 * charset becomes U+FFFD and MIME_CS_REPLACED is noted; an unknown
 * charset is read as UTF-8, else Windows-1252 (what mail clients do) and
 * MIME_CS_UNKNOWN is noted. Only running out of arena space fails
 * (-ENOMEM). A converter keeps a few iconv descriptors open between
 * calls; it belongs to one thread (the engine that owns it).
 */
#ifndef MXG_MIME_CHARSET_H
#define MXG_MIME_CHARSET_H

#include <stddef.h>

#include "core/arena.h"
#include "core/util.h"

enum mime_cs_flag {
	MIME_CS_REPLACED = 1 << 0, /* invalid bytes replaced by U+FFFD */
	MIME_CS_UNKNOWN = 1 << 1,  /* charset not known to iconv */
	MIME_CS_TRUNCATED = 1 << 2,
};

struct mime_cs;

struct mime_cs *mime_cs_new(void);
void mime_cs_free(struct mime_cs *cs);

/* Converts in[0..n) from charset (clen bytes, not terminated; clen 0 means
 * "not declared": UTF-8 if valid, else Windows-1252). *out points to
 * UTF-8 (maybe in itself when no conversion was needed), NUL-terminated
 * when it was copied; *outlen its length. */
int mime_cs_to_utf8(struct mime_cs *cs, const char *charset, size_t clen, const char *in, size_t n,
		    struct arena *a, const char **out, size_t *outlen, unsigned *flags) MXG_WUR;

/* UTF-8 with every invalid sequence replaced by U+FFFD (into the arena,
 * or in itself if already valid). */
int mime_cs_utf8_clean(const char *in, size_t n, struct arena *a, const char **out, size_t *outlen,
		       unsigned *flags) MXG_WUR;

#endif
