/* SPDX-License-Identifier: MIT */
/*
 * decode: Content-Transfer-Encoding decoders (RFC 2045 section 6) and the
 * uuencode block format, written for hostile input.
 *
 * Every decoder writes at most max bytes to out and never reads past
 * in + n. None of them fails: what cannot be decoded is skipped or copied
 * and reported in *flags (MIME_DEC_BROKEN), and output that did not fit is
 * reported as MIME_DEC_TRUNCATED. The returned value is the number of
 * bytes written. Output sizes: base64 <= n * 3 / 4 + 3, quoted-printable
 * and 'Q' <= n, uuencode <= n.
 */
#ifndef MXG_MIME_DECODE_H
#define MXG_MIME_DECODE_H

#include <stdbool.h>
#include <stddef.h>

enum mime_dec_flag {
	MIME_DEC_BROKEN = 1 << 0,    /* junk, bad escapes, missing padding */
	MIME_DEC_TRUNCATED = 1 << 1, /* more output than max */
};

/* RFC 4648 base64; whitespace ignored, other junk skipped (and noted),
 * missing padding accepted (and noted), several padded blocks in a row
 * decoded one after the other. */
size_t mime_dec_base64(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags);
/* RFC 2045 quoted-printable: soft line breaks, =XX (either case), trailing
 * white space on a line dropped; a bad '=' is kept literally. */
size_t mime_dec_qp(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags);
/* RFC 2047 'Q' encoding: as quoted-printable, '_' is a space. */
size_t mime_dec_q(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags);
/* The lines of one uuencode block, after "begin MODE NAME" and up to (not
 * including) "end". */
size_t mime_dec_uu(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags);

/* Finds the next "begin NNN name" line in text[from..n). On success sets
 * the offsets of the file name, of the first data line and of the "end"
 * line (or n if there is none, noted by *unterminated) and returns true. */
struct mime_uu_block {
	size_t name_off, name_len;
	size_t data_off, data_end; /* data lines */
	size_t next;		   /* where to look for the next block */
	bool unterminated;
};
bool mime_dec_uu_find(const char *text, size_t n, size_t from, struct mime_uu_block *blk);

#endif
