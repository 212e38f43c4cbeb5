/* SPDX-License-Identifier: MIT */
/*
 * decode: table-driven decoders. The base64 loop decodes four symbols at
 * a time when they are all in the alphabet (the common case) and falls
 * back to one symbol at a time around white space and junk.
 */
#include "mime/decode.h"

#include <string.h>

#define B64_WS 0x40
#define B64_PAD 0x41
#define B64_BAD 0xff

/* Symbol values; B64_WS for white space, B64_PAD for '=', B64_BAD else. */
static const unsigned char b64_tab[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x40, 0x40, 0xff, 0xff, 0x40, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0x41, 0xff, 0xff,
    0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Emits up to 3 bytes of the 24-bit group v, of which have are real. */
static size_t b64_emit(unsigned long v, size_t have, unsigned char *out, size_t o, size_t max,
		       unsigned *flags)
{
	unsigned char b[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};

	for (size_t i = 0; i < have; i++) {
		if (o >= max) {
			*flags |= MIME_DEC_TRUNCATED;
			return o;
		}
		out[o++] = b[i];
	}
	return o;
}

size_t mime_dec_base64(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned long acc = 0;
	size_t i = 0, o = 0, q = 0; /* q: symbols in the current group */

	while (i < n) {
		/* fast path: four alphabet symbols, a whole group */
		if (q == 0 && n - i >= 4 && o + 3 <= max) {
			unsigned a = b64_tab[s[i]], b = b64_tab[s[i + 1]], c = b64_tab[s[i + 2]],
				 d = b64_tab[s[i + 3]];
			if ((a | b | c | d) < 64) {
				unsigned long v = (unsigned long)a << 18 | b << 12 | c << 6 | d;
				out[o] = (unsigned char)(v >> 16);
				out[o + 1] = (unsigned char)(v >> 8);
				out[o + 2] = (unsigned char)v;
				o += 3;
				i += 4;
				continue;
			}
		}
		unsigned v = b64_tab[s[i++]];
		if (v < 64) {
			acc = acc << 6 | v;
			if (++q == 4) {
				o = b64_emit(acc, 3, out, o, max, flags);
				q = 0;
				acc = 0;
			}
		} else if (v == B64_PAD) {
			/* end of a block: flush what the group holds */
			if (q == 2)
				o = b64_emit(acc << 12, 1, out, o, max, flags);
			else if (q == 3)
				o = b64_emit(acc << 6, 2, out, o, max, flags);
			else if (q == 1)
				*flags |= MIME_DEC_BROKEN;
			q = 0;
			acc = 0;
		} else if (v != B64_WS) {
			*flags |= MIME_DEC_BROKEN;
		}
		if (*flags & MIME_DEC_TRUNCATED)
			return o;
	}
	if (q) {
		/* missing padding */
		*flags |= MIME_DEC_BROKEN;
		if (q == 2)
			o = b64_emit(acc << 12, 1, out, o, max, flags);
		else if (q == 3)
			o = b64_emit(acc << 6, 2, out, o, max, flags);
	}
	return o;
}

static size_t qp_common(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags,
			bool q_mode)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = s[i];
		if (o >= max) {
			*flags |= MIME_DEC_TRUNCATED;
			break;
		}
		if (c == '=') {
			int h, l;
			if (i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
			    (l = hexval(s[i + 2])) >= 0) {
				out[o++] = (unsigned char)(h << 4 | l);
				i += 3;
				continue;
			}
			/* soft line break: '=' then optional white space then EOL */
			size_t j = i + 1;
			while (j < n && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j < n && s[j] == '\r')
				j++;
			if (j < n && s[j] == '\n') {
				i = j + 1;
				continue;
			}
			if (j == n) { /* '=' at the very end */
				i = n;
				continue;
			}
			*flags |= MIME_DEC_BROKEN;
			out[o++] = c;
			i++;
			continue;
		}
		if (!q_mode && (c == ' ' || c == '\t')) {
			/* trailing white space before a line end is not data */
			size_t j = i;
			while (j < n && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j == n || s[j] == '\n' ||
			    (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n')) {
				i = j;
				continue;
			}
		}
		out[o++] = q_mode && c == '_' ? ' ' : c;
		i++;
	}
	return o;
}

size_t mime_dec_qp(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags)
{
	return qp_common(in, n, out, max, flags, false);
}

size_t mime_dec_q(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags)
{
	return qp_common(in, n, out, max, flags, true);
}

#define UU(c) (((c) - ' ') & 0x3f)

size_t mime_dec_uu(const char *in, size_t n, unsigned char *out, size_t max, unsigned *flags)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	while (i < n) {
		const unsigned char *nl = memchr(s + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - s) : n, len, p;
		size_t want;

		len = end - i;
		if (len && s[i + len - 1] == '\r')
			len--;
		if (len == 0) {
			i = end + 1;
			continue;
		}
		want = UU(s[i]);
		p = i + 1;
		while (want > 0) {
			unsigned char c[4];
			for (int k = 0; k < 4; k++)
				c[k] = p + (size_t)k < i + len ? (unsigned char)UU(s[p + (size_t)k])
							       : 0;
			if (p + 4 > i + len)
				*flags |= MIME_DEC_BROKEN; /* short line */
			unsigned char b[3] = {(unsigned char)(c[0] << 2 | c[1] >> 4),
					      (unsigned char)(c[1] << 4 | c[2] >> 2),
					      (unsigned char)(c[2] << 6 | c[3])};
			for (int k = 0; k < 3 && want > 0; k++, want--) {
				if (o >= max) {
					*flags |= MIME_DEC_TRUNCATED;
					return o;
				}
				out[o++] = b[k];
			}
			p += 4;
			if (p > i + len + 4)
				break;
		}
		i = end + 1;
	}
	return o;
}

/* "begin" SP 3-4 octal digits SP name */
static bool uu_begin_line(const char *l, size_t len, size_t *name_off)
{
	size_t i = 6, d = 0;

	if (len < 10 || memcmp(l, "begin ", 6) != 0)
		return false;
	while (i < len && l[i] >= '0' && l[i] <= '7' && d < 4) {
		i++;
		d++;
	}
	if (d < 3 || i >= len || l[i] != ' ')
		return false;
	*name_off = i + 1;
	return *name_off < len;
}

bool mime_dec_uu_find(const char *text, size_t n, size_t from, struct mime_uu_block *blk)
{
	size_t i = from;

	while (i < n) {
		const char *nl = memchr(text + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - text) : n, len = end - i, name_off;

		if (len && text[i + len - 1] == '\r')
			len--;
		if (text[i] == 'b' && uu_begin_line(text + i, len, &name_off)) {
			size_t j = end < n ? end + 1 : n;
			blk->name_off = i + name_off;
			blk->name_len = len - name_off;
			blk->data_off = j;
			blk->unterminated = true;
			while (j < n) {
				const char *nl2 = memchr(text + j, '\n', n - j);
				size_t e2 = nl2 ? (size_t)(nl2 - text) : n, l2 = e2 - j;
				if (l2 && text[j + l2 - 1] == '\r')
					l2--;
				if (l2 == 3 && !memcmp(text + j, "end", 3)) {
					blk->data_end = j;
					blk->next = e2 < n ? e2 + 1 : n;
					blk->unterminated = false;
					return true;
				}
				j = e2 < n ? e2 + 1 : n;
			}
			blk->data_end = n;
			blk->next = n;
			return true;
		}
		i = end < n ? end + 1 : n;
	}
	return false;
}
