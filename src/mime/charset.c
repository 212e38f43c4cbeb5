/* SPDX-License-Identifier: MIT */
/*
 * charset: iconv with a small descriptor cache (iconv_open costs more than
 * converting a typical text part), plus the aliases that real mail uses
 * and glibc does not know, or knows as a narrower charset than senders
 * mean (ISO-8859-1 is sent as Windows-1252, GB2312 as GBK).
 */
#include "mime/charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CS_CACHE 8
#define CS_NAME_MAX 40

struct cs_entry {
	char name[CS_NAME_MAX]; /* normalised, lower case */
	iconv_t cd;		/* (iconv_t)-1: known bad */
	unsigned long used;
};

struct mime_cs {
	struct cs_entry e[CS_CACHE];
	unsigned long tick;
};

static const struct {
	const char *from, *to;
} cs_alias[] = {
    {"iso-8859-1", "WINDOWS-1252"}, {"latin1", "WINDOWS-1252"},	    {"us-ascii", "WINDOWS-1252"},
    {"ascii", "WINDOWS-1252"},	    {"gb2312", "GB18030"},	    {"gbk", "GB18030"},
    {"x-gbk", "GB18030"},	    {"ks_c_5601-1987", "CP949"},    {"euc-kr", "CP949"},
    {"x-sjis", "SHIFT_JIS"},	    {"shift-jis", "CP932"},	    {"shift_jis", "CP932"},
    {"tis-620", "CP874"},	    {"iso-8859-11", "CP874"},	    {"x-mac-roman", "MACINTOSH"},
    {"unicode-1-1-utf-7", "UTF-7"}, {"iso-8859-8-i", "ISO-8859-8"}, {"cp-850", "CP850"},
};

struct mime_cs *mime_cs_new(void)
{
	struct mime_cs *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return NULL;
	for (size_t i = 0; i < CS_CACHE; i++)
		cs->e[i].cd = (iconv_t)-1;
	return cs;
}

void mime_cs_free(struct mime_cs *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < CS_CACHE; i++)
		if (cs->e[i].cd != (iconv_t)-1)
			iconv_close(cs->e[i].cd);
	free(cs);
}

static bool is_utf8_name(const char *s)
{
	return !strcmp(s, "utf-8") || !strcmp(s, "utf8");
}

/* Returns the descriptor for name (lower case), (iconv_t)-1 if unknown. */
static iconv_t cs_get(struct mime_cs *cs, const char *name)
{
	struct cs_entry *victim = &cs->e[0];
	const char *iname = name;

	/* "" would be iconv's locale charset (a NUL inside a label gives it):
	 * never a charset a message names */
	if (!name[0])
		return (iconv_t)-1;
	for (size_t i = 0; i < CS_CACHE; i++) {
		if (!strcmp(cs->e[i].name, name)) {
			cs->e[i].used = ++cs->tick;
			if (cs->e[i].cd != (iconv_t)-1)
				iconv(cs->e[i].cd, NULL, NULL, NULL, NULL); /* reset state */
			return cs->e[i].cd;
		}
		if (cs->e[i].used < victim->used)
			victim = &cs->e[i];
	}
	for (size_t i = 0; i < ARRAY_LEN(cs_alias); i++)
		if (!strcmp(cs_alias[i].from, name))
			iname = cs_alias[i].to;
	if (victim->cd != (iconv_t)-1)
		iconv_close(victim->cd);
	(void)str_copy(victim->name, sizeof(victim->name), name);
	victim->cd = iconv_open("UTF-8", iname);
	victim->used = ++cs->tick;
	return victim->cd;
}

/* Length of a valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

int mime_cs_utf8_clean(const char *in, size_t n, struct arena *a, const char **out, size_t *outlen,
		       unsigned *flags)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0, k;
	char *d;

	while (i < n && (k = utf8_seq(s + i, n - i)) != 0)
		i += k;
	if (i == n) {
		*out = in;
		*outlen = n;
		return 0;
	}
	*flags |= MIME_CS_REPLACED;
	if (n > (SIZE_MAX - 1) / 3 || !(d = arena_alloc(a, n * 3 + 1)))
		return -ENOMEM;
	memcpy(d, in, i);
	o = i;
	while (i < n) {
		k = utf8_seq(s + i, n - i);
		if (k) {
			memcpy(d + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(d + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	d[o] = '\0';
	arena_shrink_last(a, d, n * 3 + 1, o + 1);
	*out = d;
	*outlen = o;
	return 0;
}

static int convert(iconv_t cd, const char *in, size_t n, struct arena *a, const char **out,
		   size_t *outlen, unsigned *flags)
{
	size_t cap, inleft = n, outleft;
	char *d, *ip = (char *)in, *op;

	if (n > (SIZE_MAX - 16) / 4)
		return -ENOMEM;
	cap = n * 4 + 16;
	if (!(d = arena_alloc(a, cap)))
		return -ENOMEM;
	op = d;
	outleft = cap - 1;
	while (inleft > 0) {
		size_t r = iconv(cd, &ip, &inleft, &op, &outleft);
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG) {
			*flags |= MIME_CS_TRUNCATED;
			break;
		}
		/* EILSEQ or EINVAL (incomplete at the end): replace one byte */
		if (outleft < 3) {
			*flags |= MIME_CS_TRUNCATED;
			break;
		}
		memcpy(op, "\xef\xbf\xbd", 3);
		op += 3;
		outleft -= 3;
		ip++;
		inleft--;
		*flags |= MIME_CS_REPLACED;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* flush a stateful encoding's shift sequence */
	iconv(cd, NULL, NULL, &op, &outleft);
	*op = '\0';
	*outlen = (size_t)(op - d);
	arena_shrink_last(a, d, cap, *outlen + 1);
	*out = d;
	return 0;
}

static bool cs_ascii_unsafe(const char *charset, size_t clen)
{
	static const char *const wide[] = {"utf-16", "utf16", "utf-32", "utf32", "ucs-2",
					   "ucs2",   "ucs-4", "ucs4",	"utf-7", "utf7"};

	while (clen && (*charset == ' ' || *charset == '"')) {
		charset++;
		clen--;
	}
	for (size_t i = 0; i < ARRAY_LEN(wide); i++)
		if (clen >= strlen(wide[i]) && !strncasecmp(charset, wide[i], strlen(wide[i])))
			return true;
	return false;
}

int mime_cs_to_utf8(struct mime_cs *cs, const char *charset, size_t clen, const char *in, size_t n,
		    struct arena *a, const char **out, size_t *outlen, unsigned *flags)
{
	char name[CS_NAME_MAX];
	const unsigned char *s = (const unsigned char *)in;
	size_t i;
	iconv_t cd;

	/* pure ASCII is the same in every charset mail uses, except the
	 * wide ones (UTF-16 "a" is "a\0") and UTF-7 ("+AOk-" is an e-acute) */
	for (i = 0; i < n && s[i] < 0x80; i++)
		;
	if (i == n && !cs_ascii_unsafe(charset, clen)) {
		*out = in;
		*outlen = n;
		return 0;
	}
	while (clen && (*charset == ' ' || *charset == '"')) {
		charset++;
		clen--;
	}
	while (clen && (charset[clen - 1] == ' ' || charset[clen - 1] == '"'))
		clen--;
	if (clen == 0 || clen >= sizeof(name)) {
		unsigned f = 0;
		if (clen)
			*flags |= MIME_CS_UNKNOWN;
		if (mime_cs_utf8_clean(in, n, a, out, outlen, &f) < 0)
			return -ENOMEM;
		if (!(f & MIME_CS_REPLACED))
			return 0;
		cd = cs_get(cs, "windows-1252");
		return cd == (iconv_t)-1 ? 0 : convert(cd, in, n, a, out, outlen, flags);
	}
	for (i = 0; i < clen; i++)
		name[i] =
		    (char)((charset[i] >= 'A' && charset[i] <= 'Z') ? charset[i] + 32 : charset[i]);
	name[clen] = '\0';
	if (is_utf8_name(name))
		return mime_cs_utf8_clean(in, n, a, out, outlen, flags);
	if (!strcmp(name, "us-ascii") || !strcmp(name, "ascii")) {
		/* 8-bit text labelled ASCII: UTF-8 if it is, else Windows-1252 */
		unsigned f = 0;
		if (mime_cs_utf8_clean(in, n, a, out, outlen, &f) < 0)
			return -ENOMEM;
		if (!(f & MIME_CS_REPLACED))
			return 0;
	}
	cd = cs_get(cs, name);
	if (cd == (iconv_t)-1) {
		*flags |= MIME_CS_UNKNOWN;
		return mime_cs_utf8_clean(in, n, a, out, outlen, flags);
	}
	return convert(cd, in, n, a, out, outlen, flags);
}
