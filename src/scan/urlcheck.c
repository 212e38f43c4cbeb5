/* SPDX-License-Identifier: MIT */
#include "scan/urlcheck.h"

#include "scan/uribl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <idn2.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

/* ---- scores: one table ------------------------------------------------- */

enum url_sym {
	US_TEXT_MISMATCH,
	US_IP_HOST,
	US_IP_OBFUSCATED,
	US_USERINFO,
	US_HOST_ENCODED,
	US_IDN,
	US_MIXED_SCRIPT,
	US_LOOKALIKE_RCPT,
	US_LOOKALIKE_BRAND,
	US_BRAND_SUBDOMAIN,
	US_SHORTENER,
	US_COUNT,
};

/* Default scores, set moderately from how many sa ham and spam messages
 * each fires on (`test_urlcheck --figures ../shared/corpus/sa`). */
static const struct {
	const char *name;
	double score;
} url_syms[US_COUNT] = {
    /* sa: 0.6% of ham (click-tracking redirectors), 1.2% of spam */
    [US_TEXT_MISMATCH] = {"URL_TEXT_MISMATCH", 1.0},
    [US_IP_HOST] = {"URL_IP_HOST", 2.0},	     /* 0.05% ham, 19% spam */
    [US_IP_OBFUSCATED] = {"URL_IP_OBFUSCATED", 4.0}, /* 0 ham, 0.3% spam */
    [US_USERINFO] = {"URL_USERINFO", 2.5},	     /* 0 ham, 2.3% spam */
    [US_HOST_ENCODED] = {"URL_HOST_ENCODED", 2.5},   /* 0.1% ham, 2.3% spam */
    [US_IDN] = {"URL_IDN", 0.1},		     /* informational */
    /* no look-alikes in sa (2002): scored from what they mean */
    [US_MIXED_SCRIPT] = {"URL_MIXED_SCRIPT", 3.0},
    [US_LOOKALIKE_RCPT] = {"URL_LOOKALIKE_RCPT", 5.0},
    [US_LOOKALIKE_BRAND] = {"URL_LOOKALIKE_BRAND", 4.0},
    [US_BRAND_SUBDOMAIN] = {"URL_BRAND_SUBDOMAIN", 3.0},
    [US_SHORTENER] = {"URL_SHORTENER", 0.3}, /* 0.14% ham, 0 spam (tinyurl in lists) */
};

#define URLCHECK_MAX_LIST 10000 /* entries per list file */
#define URLCHECK_MAX_RCPT_DOMAINS 16
#define URLCHECK_SEEN 128 /* registrable domains checked per message */
#define URLCHECK_URL_SHOWN 160

struct dom {
	char *ascii; /* registrable domain, punycode */
	char *skel;  /* skeleton of its Unicode form */
};

struct dom_list {
	struct dom *v;
	size_t n, cap;
};

struct urlcheck {
	psl_ctx_t *psl;
	struct dom_list brands, shorteners;
};

/* ---- UTF-8 ---------------------------------------------------------------- */

/* The code point at s[*i] (advances *i); -1 on a malformed sequence. */
static int utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp)
{
	unsigned char c = s[*i];
	size_t need;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		(*i)++;
		return 0;
	}
	if ((c & 0xe0) == 0xc0) {
		need = 1;
		v = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		need = 2;
		v = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		need = 3;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n - *i <= need)
		return -1;
	for (size_t k = 1; k <= need; k++) {
		unsigned char d = s[*i + k];
		if ((d & 0xc0) != 0x80)
			return -1;
		v = v << 6 | (d & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*cp = v;
	*i += need + 1;
	return 0;
}

/* ---- confusables ---------------------------------------------------------- */

/* Code points that look like an ASCII letter. uts39 = 1: the pair is in
 * Unicode's confusables.txt (checked by the unit test); 0: a Latin letter
 * with a diacritic folded to its base letter (not a UTS #39 skeleton, but
 * what a reader at a glance takes it for). Sorted by code point. */
static const struct {
	uint32_t cp;
	char to;
	unsigned char uts39;
} confusables[] = {
    {0x00e0, 'a', 0}, {0x00e1, 'a', 0}, {0x00e2, 'a', 0}, {0x00e3, 'a', 0}, {0x00e4, 'a', 0},
    {0x00e5, 'a', 0}, {0x00e7, 'c', 0}, {0x00e8, 'e', 0}, {0x00e9, 'e', 0}, {0x00ea, 'e', 0},
    {0x00eb, 'e', 0}, {0x00ec, 'i', 0}, {0x00ed, 'i', 0}, {0x00ee, 'i', 0}, {0x00ef, 'i', 0},
    {0x00f1, 'n', 0}, {0x00f2, 'o', 0}, {0x00f3, 'o', 0}, {0x00f4, 'o', 0}, {0x00f5, 'o', 0},
    {0x00f6, 'o', 0}, {0x00f8, 'o', 0}, {0x00f9, 'u', 0}, {0x00fa, 'u', 0}, {0x00fb, 'u', 0},
    {0x00fc, 'u', 0}, {0x00fd, 'y', 0}, {0x00ff, 'y', 0}, {0x0101, 'a', 0}, {0x0105, 'a', 0},
    {0x0107, 'c', 0}, {0x010d, 'c', 0}, {0x0113, 'e', 0}, {0x0119, 'e', 0}, {0x012b, 'i', 0},
    {0x0131, 'i', 1}, {0x0142, 'l', 0}, {0x0144, 'n', 0}, {0x014d, 'o', 0}, {0x015b, 's', 0},
    {0x0161, 's', 0}, {0x016b, 'u', 0}, {0x017c, 'z', 0}, {0x017e, 'z', 0}, {0x01c0, 'l', 1},
    {0x0251, 'a', 1}, {0x0261, 'g', 1}, {0x0391, 'a', 1}, {0x0392, 'b', 1}, {0x0395, 'e', 1},
    {0x0396, 'z', 1}, {0x0397, 'h', 1}, {0x0399, 'l', 1}, {0x039a, 'k', 1}, {0x039c, 'm', 1},
    {0x039d, 'n', 1}, {0x039f, 'o', 1}, {0x03a1, 'p', 1}, {0x03a4, 't', 1}, {0x03a5, 'y', 1},
    {0x03a7, 'x', 1}, {0x03b1, 'a', 1}, {0x03b3, 'y', 1}, {0x03b9, 'i', 1}, {0x03bd, 'v', 1},
    {0x03bf, 'o', 1}, {0x03c1, 'p', 1}, {0x03c3, 'o', 1}, {0x03c5, 'u', 1}, {0x03c7, 'x', 0},
    {0x03f2, 'c', 1}, {0x0405, 's', 1}, {0x0406, 'l', 1}, {0x0408, 'j', 1}, {0x0410, 'a', 1},
    {0x0412, 'b', 1}, {0x0415, 'e', 1}, {0x041a, 'k', 1}, {0x041c, 'm', 1}, {0x041d, 'h', 1},
    {0x041e, 'o', 1}, {0x0420, 'p', 1}, {0x0421, 'c', 1}, {0x0422, 't', 1}, {0x0425, 'x', 1},
    {0x0430, 'a', 1}, {0x0433, 'r', 1}, {0x0435, 'e', 1}, {0x043e, 'o', 1}, {0x0440, 'p', 1},
    {0x0441, 'c', 1}, {0x0443, 'y', 1}, {0x0445, 'x', 1}, {0x0455, 's', 1}, {0x0456, 'i', 1},
    {0x0458, 'j', 1}, {0x0475, 'v', 1}, {0x04ae, 'y', 1}, {0x04af, 'y', 1}, {0x04bb, 'h', 1},
    {0x04c0, 'l', 1}, {0x04cf, 'i', 1}, {0x0501, 'd', 1}, {0x051b, 'q', 1}, {0x051d, 'w', 1},
};

char urlcheck_confusable(uint32_t cp, bool *uts39)
{
	size_t lo = 0, hi = ARRAY_LEN(confusables);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (confusables[mid].cp == cp) {
			if (uts39)
				*uts39 = confusables[mid].uts39;
			return confusables[mid].to;
		}
		if (confusables[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int urlcheck_skeleton(const char *s, size_t len, char *out, size_t outlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, w = 0;

	if (outlen == 0)
		return -ENAMETOOLONG;
	while (i < len) {
		size_t start = i;
		uint32_t cp;
		char c;

		if (utf8_next(u, len, &i, &cp) < 0)
			return -EINVAL;
		if (cp < 0x80) {
			c = (char)cp;
			if (c >= 'A' && c <= 'Z')
				c = (char)(c + 32);
			if (c == '0')
				c = 'o';
			else if (c == '1')
				c = 'l';
		} else if (!(c = urlcheck_confusable(cp, NULL))) {
			/* no ASCII look-alike: kept as it is */
			if (o + (i - start) >= outlen)
				return -ENAMETOOLONG;
			memcpy(out + o, s + start, i - start);
			o += i - start;
			continue;
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	/* multi-letter look-alikes: "rn" -> "m", "vv" -> "w" */
	for (size_t r = 0; r < o; r++) {
		if (r + 1 < o && out[r] == 'r' && out[r + 1] == 'n') {
			out[w++] = 'm';
			r++;
		} else if (r + 1 < o && out[r] == 'v' && out[r + 1] == 'v') {
			out[w++] = 'w';
			r++;
		} else {
			out[w++] = out[r];
		}
	}
	out[w] = '\0';
	return (int)w;
}

enum script { SC_NONE = 0, SC_LATIN = 1, SC_GREEK = 2, SC_CYRILLIC = 4 };

static unsigned script_of(uint32_t cp)
{
	if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
	    (cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7) ||
	    (cp >= 0x1e00 && cp <= 0x1eff))
		return SC_LATIN;
	if ((cp >= 0x370 && cp <= 0x3ff) || (cp >= 0x1f00 && cp <= 0x1fff))
		return SC_GREEK;
	if (cp >= 0x400 && cp <= 0x52f)
		return SC_CYRILLIC;
	return SC_NONE;
}

bool urlcheck_mixed_script(const char *host, size_t len)
{
	const unsigned char *u = (const unsigned char *)host;
	unsigned seen = 0;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;

		if (utf8_next(u, len, &i, &cp) < 0)
			return false;
		if (cp == '.') {
			seen = 0;
			continue;
		}
		seen |= script_of(cp);
		if (seen & (seen - 1))
			return true; /* two bits: two scripts in one label */
	}
	return false;
}

/* ---- hosts ------------------------------------------------------------------ */

/* One part of a WHATWG IPv4 address: decimal, 0x hex, or 0-led octal.
 * -1 if it is not a number. *plain: written as canonical decimal. */
static int ipv4_part(const char *s, size_t n, uint64_t *v, bool *plain)
{
	unsigned base = 10;
	size_t i = 0;

	*v = 0;
	*plain = true;
	if (n == 0)
		return -1;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
		*plain = false;
	} else if (n >= 2 && s[0] == '0') {
		base = 8;
		i = 1;
		*plain = false;
	}
	if (n - i > 40)
		return -1;
	for (; i < n; i++) {
		unsigned d;
		char c = s[i];
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
			d = (unsigned)((c | 0x20) - 'a' + 10);
		else
			return -1;
		if (d >= base)
			return -1;
		*v = *v * base + d;
		if (*v > 0xffffffffull)
			*v = 0x100000000ull; /* saturate: too large for any part */
	}
	return 0;
}

enum urlcheck_host_kind urlcheck_host_kind(const char *host, size_t len, uint32_t *v4)
{
	uint64_t parts[4];
	size_t np = 0, s = 0;
	bool obf = false;
	uint64_t addr;

	*v4 = 0;
	if (len >= 2 && host[0] == '[') {
		char tmp[64];
		const char *e = memchr(host, ']', len);
		struct in6_addr a6;
		size_t n = e ? (size_t)(e - host - 1) : 0;
		const char *pc = memchr(host + 1, '%', n);

		if (pc)
			n = (size_t)(pc - host - 1); /* a zone id */
		if (!e || n == 0 || n >= sizeof(tmp))
			return URLCHECK_HOST_NAME;
		memcpy(tmp, host + 1, n);
		tmp[n] = '\0';
		return inet_pton(AF_INET6, tmp, &a6) == 1 ? URLCHECK_HOST_IPV6 : URLCHECK_HOST_NAME;
	}
	if (len && host[len - 1] == '.')
		len--;
	if (len == 0)
		return URLCHECK_HOST_NAME;
	for (size_t i = 0; i <= len; i++) {
		bool plain;
		if (i < len && host[i] != '.')
			continue;
		if (np == 4 || ipv4_part(host + s, i - s, &parts[np], &plain) < 0)
			return URLCHECK_HOST_NAME;
		if (!plain)
			obf = true;
		np++;
		s = i + 1;
	}
	for (size_t i = 0; i + 1 < np; i++)
		if (parts[i] > 255)
			return URLCHECK_HOST_NAME;
	if (parts[np - 1] >= (1ull << (8 * (5 - np))))
		return URLCHECK_HOST_NAME;
	addr = parts[np - 1];
	for (size_t i = 0; i + 1 < np; i++)
		addr += parts[i] << (8 * (3 - i));
	*v4 = (uint32_t)addr;
	return obf || np != 4 ? URLCHECK_HOST_IPV4_OBFUSCATED : URLCHECK_HOST_IPV4;
}

int urlcheck_registrable(const struct psl_ctx_st *psl, const char *host, char *out, size_t outlen)
{
	char buf[URLCHECK_DOMAIN_LEN], *asc = NULL;
	const char *reg, *h = buf;
	size_t n = strlen(host);
	bool nonascii = false;
	uint32_t v4;
	int rc = -EINVAL;

	if (n == 0 || n >= sizeof(buf))
		return n ? -ENAMETOOLONG : -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = host[i];
		buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		if ((unsigned char)c >= 0x80)
			nonascii = true;
	}
	while (n && buf[n - 1] == '.')
		n--;
	buf[n] = '\0';
	if (n == 0 || buf[0] == '.' || urlcheck_host_kind(buf, n, &v4) != URLCHECK_HOST_NAME)
		return -EINVAL;
	if (nonascii) {
		if (idn2_to_ascii_8z(buf, &asc, IDN2_NONTRANSITIONAL) != IDN2_OK &&
		    idn2_to_ascii_8z(buf, &asc, IDN2_TRANSITIONAL) != IDN2_OK)
			return -EINVAL;
		h = asc;
	}
	for (const char *c = h; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '.' || *c == '_'))
			goto out;
	reg = psl ? psl_registrable_domain((const psl_ctx_t *)psl, h) : NULL;
	if (!reg)
		goto out;
	rc = str_copy(out, outlen, reg) < 0 ? -ENAMETOOLONG : 0;
out:
	free(asc);
	return rc;
}

/* The Unicode form of an ASCII (punycode) domain into out; the input
 * itself when it has no xn-- label or does not decode. */
static void unicode_form(const char *ascii, char *out, size_t outlen)
{
	char *uni = NULL;

	if (strstr(ascii, "xn--") && idn2_to_unicode_8z8z(ascii, &uni, 0) == IDN2_OK &&
	    str_copy(out, outlen, uni) == 0) {
		free(uni);
		return;
	}
	free(uni);
	(void)str_copy(out, outlen, ascii);
}

static int skeleton_of_ascii(const char *ascii, char *out, size_t outlen)
{
	char uni[URLCHECK_DOMAIN_LEN * 2];

	unicode_form(ascii, uni, sizeof(uni));
	return urlcheck_skeleton(uni, strlen(uni), out, outlen);
}

/* ---- lists ------------------------------------------------------------------ */

static int list_add(struct dom_list *l, const char *ascii)
{
	char sk[URLCHECK_DOMAIN_LEN * 2];
	struct dom *d;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct dom *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (skeleton_of_ascii(ascii, sk, sizeof(sk)) < 0)
		return -EINVAL;
	d = &l->v[l->n];
	d->ascii = strdup(ascii);
	d->skel = strdup(sk);
	if (!d->ascii || !d->skel) {
		free(d->ascii);
		free(d->skel);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

static void list_free(struct dom_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].ascii);
		free(l->v[i].skel);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static const struct dom *list_find(const struct dom_list *l, const char *ascii)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].ascii, ascii))
			return &l->v[i];
	return NULL;
}

/* One registrable domain a line. A line that is not a registrable domain
 * of its own (a public suffix, "www.paypal.com") is refused. */
static int list_load(psl_ctx_t *psl, const char *dir, const char *name, struct dom_list *l,
		     char *err, size_t errlen)
{
	char path[4096], line[512];
	FILE *f;
	int lineno = 0, rc = 0;

	if (str_fmt(path, sizeof(path), "%s/%s", dir, name) < 0) {
		(void)str_copy(err, errlen, "path too long");
		return -ENAMETOOLONG;
	}
	if (!(f = fopen(path, "r"))) {
		if (errno == ENOENT)
			return 0;
		(void)str_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return -EIO;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *e, reg[URLCHECK_DOMAIN_LEN];

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			(void)str_fmt(err, errlen, "%s:%d: line too long", path, lineno);
			rc = -EINVAL;
			goto out;
		}
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strcspn(s, "#\r\n");
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		if (!*s)
			continue;
		if (urlcheck_registrable(psl, s, reg, sizeof(reg)) < 0 || strcasecmp(reg, s) != 0) {
			(void)str_fmt(err, errlen, "%s:%d: '%.64s' is not a registrable domain",
				      path, lineno, s);
			rc = -EINVAL;
			goto out;
		}
		if (list_find(l, reg))
			continue;
		if (l->n == URLCHECK_MAX_LIST) {
			(void)str_fmt(err, errlen, "%s:%d: more than %d entries", path, lineno,
				      URLCHECK_MAX_LIST);
			rc = -EINVAL;
			goto out;
		}
		if ((rc = list_add(l, reg)) < 0) {
			(void)str_fmt(err, errlen, "%s:%d: %s", path, lineno,
				      rc == -ENOMEM ? "out of memory" : "bad domain");
			goto out;
		}
	}
	if (ferror(f)) {
		(void)str_fmt(err, errlen, "%s: read error", path);
		rc = -EIO;
	}
out:
	fclose(f);
	return rc;
}

int urlcheck_new(const char *dir, struct urlcheck **out, char *err, size_t errlen)
{
	struct urlcheck *uc;
	int rc = -ENOMEM;

	*out = NULL;
	if (!(uc = calloc(1, sizeof(*uc))))
		goto oom;
	uc->psl = psl_latest(NULL);
	if (!uc->psl)
		goto oom;
	if (dir && dir[0] &&
	    ((rc = list_load(uc->psl, dir, "brands.txt", &uc->brands, err, errlen)) < 0 ||
	     (rc = list_load(uc->psl, dir, "shorteners.txt", &uc->shorteners, err, errlen)) < 0))
		goto out;
	*out = uc;
	return 0;
oom:
	(void)str_copy(err, errlen, "out of memory");
out:
	urlcheck_free(uc);
	return rc;
}

void urlcheck_free(struct urlcheck *uc)
{
	if (!uc)
		return;
	list_free(&uc->brands);
	list_free(&uc->shorteners);
	psl_free(uc->psl);
	free(uc);
}

const struct psl_ctx_st *urlcheck_psl(const struct urlcheck *uc)
{
	return uc->psl;
}

size_t urlcheck_nbrands(const struct urlcheck *uc)
{
	return uc->brands.n;
}

size_t urlcheck_nshorteners(const struct urlcheck *uc)
{
	return uc->shorteners.n;
}

/* ---- one message ------------------------------------------------------------ */

struct hit {
	unsigned count;
	char detail[SCAN_DETAIL_LEN];
};

struct scan_state {
	const struct urlcheck *uc;
	struct hit hits[US_COUNT];
	struct dom rcpt[URLCHECK_MAX_RCPT_DOMAINS];
	char rcpt_ascii[URLCHECK_MAX_RCPT_DOMAINS][URLCHECK_DOMAIN_LEN];
	char rcpt_skel[URLCHECK_MAX_RCPT_DOMAINS][URLCHECK_DOMAIN_LEN * 2];
	size_t nrcpt;
	char seen[URLCHECK_SEEN][URLCHECK_DOMAIN_LEN]; /* domains whose look-alike check ran */
	size_t nseen;
};

static void printable(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 < dstlen; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[o++] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '_';
	}
	if (o + 4 >= dstlen && n > o) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

static void fire(struct scan_state *st, enum url_sym s, const struct mime_url *u, const char *why)
{
	struct hit *h = &st->hits[s];
	char url[URLCHECK_URL_SHOWN + 4];

	if (h->count++)
		return;
	printable(url, sizeof(url), u->raw.ptr, u->raw.len);
	if (why && why[0])
		(void)str_fmt(h->detail, sizeof(h->detail), "%s (%s)", url, why);
	else
		(void)str_copy(h->detail, sizeof(h->detail), url);
}

/* The domain a link's visible text shows, if the text is a bare host
 * name or URL ("www.paypal.com", "https://paypal.com/login"): lower case
 * ASCII in out. A name whose last label is not a known public suffix
 * ("invoice.pdf") is not taken for a domain. */
static bool text_domain(const psl_ctx_t *psl, const char *t, size_t n, char *out, size_t outlen)
{
	char host[URLCHECK_DOMAIN_LEN], *asc = NULL;
	const char *h;
	size_t hl = 0;
	bool ok = false;

	while (n && (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n' || *t == '<')) {
		t++;
		n--;
	}
	while (n && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r' || t[n - 1] == '\n' ||
		     t[n - 1] == '>'))
		n--;
	if (n == 0 || n > 1024)
		return false;
	if (n > 7 && !strncasecmp(t, "http://", 7)) {
		t += 7;
		n -= 7;
	} else if (n > 8 && !strncasecmp(t, "https://", 8)) {
		t += 8;
		n -= 8;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == '/' || c == '?' || c == '#' || c == ':')
			break;
		if (c == ' ' || c == '\t' || c == '@' || c == '\n')
			return false; /* words, or an e-mail address */
		if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
		if (hl + 1 >= sizeof(host))
			return false;
		host[hl++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	for (size_t i = 0; i < n; i++)
		if (t[i] == ' ' || t[i] == '\t' || t[i] == '\n')
			return false; /* a URL then words: not a bare URL */
	while (hl && host[hl - 1] == '.')
		hl--;
	host[hl] = '\0';
	if (hl < 4 || !strchr(host, '.') || host[0] == '.' || strstr(host, ".."))
		return false;
	h = host;
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)host[i] >= 0x80) {
			if (idn2_to_ascii_8z(host, &asc, IDN2_NONTRANSITIONAL) != IDN2_OK)
				return false;
			h = asc;
			break;
		}
	{
		const char *tld = strrchr(h, '.') + 1;
		ok = *tld && (tld[0] < '0' || tld[0] > '9') &&
		     psl_is_public_suffix2(psl, tld, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE);
	}
	if (ok)
		ok = str_copy(out, outlen, h) == 0;
	free(asc);
	return ok;
}

/* The authority of a raw URL: user information and the host as written. */
static void raw_authority(struct mime_slice raw, bool *userinfo, bool *pct_host)
{
	const char *s = raw.ptr, *e = raw.ptr + raw.len, *c = memmem(s, raw.len, "://", 3);
	const char *at = NULL, *end;

	*userinfo = *pct_host = false;
	if (c && c - s <= 16)
		s = c + 3;
	for (end = s; end < e && *end != '/' && *end != '?' && *end != '#' && *end != '\\'; end++)
		if (*end == '@')
			at = end;
	if (at) {
		*userinfo = true;
		s = at + 1;
	}
	*pct_host = memchr(s, '%', (size_t)(end - s)) != NULL;
}

/* A brand's domain as whole labels of host, before (and apart from) the
 * host's own registrable domain: paypal.com.verify.example, but not
 * yahoo.com.au (the brand's name under another suffix). */
static bool brand_in_labels(const char *host, const char *reg, const char *brand)
{
	size_t bl = strlen(brand);
	const char *reg_start = host + strlen(host) - strlen(reg);

	for (const char *p = strstr(host, brand); p && p + bl < reg_start; p = strstr(p + 1, brand))
		if ((p == host || p[-1] == '.') && p[bl] == '.')
			return true;
	return false;
}

static void check_domain(struct scan_state *st, const struct mime_url *u, const char *host,
			 const char *reg)
{
	const struct urlcheck *uc = st->uc;
	char sk[URLCHECK_DOMAIN_LEN * 2], why[URLCHECK_DOMAIN_LEN + 32];

	if (list_find(&uc->shorteners, reg) || list_find(&uc->shorteners, host))
		fire(st, US_SHORTENER, u, NULL);
	for (size_t i = 0; i < uc->brands.n; i++)
		if (strcmp(reg, uc->brands.v[i].ascii) != 0 &&
		    brand_in_labels(host, reg, uc->brands.v[i].ascii)) {
			(void)str_fmt(why, sizeof(why), "%s", uc->brands.v[i].ascii);
			fire(st, US_BRAND_SUBDOMAIN, u, why);
			break;
		}
	for (size_t i = 0; i < st->nseen; i++)
		if (!strcmp(st->seen[i], reg))
			return; /* look-alike check done for this domain */
	if (st->nseen < URLCHECK_SEEN)
		(void)str_copy(st->seen[st->nseen++], URLCHECK_DOMAIN_LEN, reg);
	if (skeleton_of_ascii(reg, sk, sizeof(sk)) < 0)
		return;
	for (size_t i = 0; i < st->nrcpt; i++)
		if (!strcmp(sk, st->rcpt_skel[i]) && strcmp(reg, st->rcpt_ascii[i]) != 0) {
			(void)str_fmt(why, sizeof(why), "looks like %s", st->rcpt_ascii[i]);
			fire(st, US_LOOKALIKE_RCPT, u, why);
			return;
		}
	if (list_find(&uc->brands, reg))
		return;
	for (size_t i = 0; i < uc->brands.n; i++)
		if (!strcmp(sk, uc->brands.v[i].skel)) {
			(void)str_fmt(why, sizeof(why), "looks like %s", uc->brands.v[i].ascii);
			fire(st, US_LOOKALIKE_BRAND, u, why);
			return;
		}
}

static void check_url(struct scan_state *st, const struct mime_url *u)
{
	const psl_ctx_t *psl = st->uc->psl;
	char host[URLCHECK_DOMAIN_LEN], reg[URLCHECK_DOMAIN_LEN], td[URLCHECK_DOMAIN_LEN];
	char treg[URLCHECK_DOMAIN_LEN], why[2 * URLCHECK_DOMAIN_LEN + 16];
	bool userinfo, pct, have_reg = false;
	uint32_t v4;
	enum urlcheck_host_kind kind;

	if (u->host_ascii.len == 0 || u->host_ascii.len >= sizeof(host))
		return;
	memcpy(host, u->host_ascii.ptr, u->host_ascii.len);
	host[u->host_ascii.len] = '\0';
	raw_authority(u->raw, &userinfo, &pct);
	if (userinfo)
		fire(st, US_USERINFO, u, NULL);
	if (pct)
		fire(st, US_HOST_ENCODED, u, NULL);
	kind = urlcheck_host_kind(host, strlen(host), &v4);
	if (kind == URLCHECK_HOST_IPV4_OBFUSCATED) {
		struct in_addr a = {.s_addr = htonl(v4)};
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		(void)str_fmt(why, sizeof(why), "is %s", ip);
		fire(st, US_IP_OBFUSCATED, u, why);
	} else if (kind != URLCHECK_HOST_NAME) {
		fire(st, US_IP_HOST, u, NULL);
	} else {
		if (u->flags & MIME_URL_IDN)
			fire(st, US_IDN, u, NULL);
		if (urlcheck_mixed_script(u->host.ptr, u->host.len))
			fire(st, US_MIXED_SCRIPT, u, NULL);
		if (urlcheck_registrable(psl, host, reg, sizeof(reg)) == 0) {
			have_reg = true;
			check_domain(st, u, host, reg);
		}
	}
	if ((u->flags & MIME_URL_HTML) && u->text.len &&
	    text_domain(psl, u->text.ptr, u->text.len, td, sizeof(td))) {
		const char *a = urlcheck_registrable(psl, td, treg, sizeof(treg)) == 0 ? treg : td;
		const char *b = have_reg ? reg : host;
		if (strcmp(a, b) != 0) {
			(void)str_fmt(why, sizeof(why), "text shows %s", td);
			fire(st, US_TEXT_MISMATCH, u, why);
		}
	}
}

size_t urlcheck_scan(const struct urlcheck *uc, const struct mime_msg *m, const char *const *rcpts,
		     size_t nrcpts, urlcheck_emit_fn emit, void *arg)
{
	struct scan_state *st = calloc(1, sizeof(*st));
	size_t seen = 0, nemit = 0;

	if (!st)
		return 0; /* no state: no heuristics (nothing fires) */
	st->uc = uc;
	for (size_t i = 0; i < nrcpts && st->nrcpt < URLCHECK_MAX_RCPT_DOMAINS; i++) {
		const char *at = rcpts[i] ? strrchr(rcpts[i], '@') : NULL;
		char reg[URLCHECK_DOMAIN_LEN];
		bool dup = false;

		if (!at || urlcheck_registrable(uc->psl, at + 1, reg, sizeof(reg)) < 0)
			continue;
		for (size_t k = 0; k < st->nrcpt; k++)
			dup = dup || !strcmp(st->rcpt_ascii[k], reg);
		if (dup ||
		    skeleton_of_ascii(reg, st->rcpt_skel[st->nrcpt], sizeof(st->rcpt_skel[0])) < 0)
			continue;
		(void)str_copy(st->rcpt_ascii[st->nrcpt++], URLCHECK_DOMAIN_LEN, reg);
	}
	for (size_t i = 0; i < mime_msg_nparts(m) && seen < URLCHECK_MAX_URLS; i++) {
		const struct mime_part *p = mime_msg_part(m, i);
		for (size_t k = 0; k < p->nurls && seen < URLCHECK_MAX_URLS; k++, seen++)
			check_url(st, &p->urls[k]);
	}
	for (int s = 0; s < US_COUNT; s++) {
		struct hit *h = &st->hits[s];
		char d[SCAN_DETAIL_LEN];

		if (!h->count)
			continue;
		if (h->count > 1)
			(void)str_fmt(d, sizeof(d), "%.200s +%u more", h->detail, h->count - 1);
		else
			(void)str_copy(d, sizeof(d), h->detail);
		emit(arg, url_syms[s].name, url_syms[s].score, d);
		nemit++;
	}
	free(st);
	return nemit;
}

/* ---- the pipeline check ----------------------------------------------------- */

static int urlcheck_thread_init(const struct config *cfg, struct metrics *m, void **state,
				char *err, size_t errlen)
{
	char dir[4096];
	const char *slash;
	struct urlcheck *uc;
	int rc;

	(void)m;
	dir[0] = '\0';
	/* the rules folder the AV checks use: rules/yara -> rules/phish */
	if (cfg->av.yara_rules[0]) {
		slash = strrchr(cfg->av.yara_rules, '/');
		if (!slash)
			(void)str_copy(dir, sizeof(dir), "phish");
		else if (str_fmt(dir, sizeof(dir), "%.*s/phish", (int)(slash - cfg->av.yara_rules),
				 cfg->av.yara_rules) < 0)
			dir[0] = '\0';
	}
	rc = urlcheck_new(dir, &uc, err, errlen);
	if (rc < 0)
		return rc;
	*state = uc;
	return 0;
}

static void urlcheck_thread_free(void *state)
{
	urlcheck_free(state);
}

static void emit_ctx(void *arg, const char *symbol, double score, const char *detail)
{
	scan_ctx_symbol(arg, symbol, score, "%s", detail);
}

static void urlcheck_run(void *state, struct scan_ctx *ctx)
{
	const struct scan_request *req = scan_ctx_request(ctx);
	char(*domains)[URIBL_DOMAIN_LEN];

	(void)urlcheck_scan(state, scan_ctx_mime(ctx), req->rcpts, req->nrcpts, emit_ctx, ctx);
	/* the domains the session asks the URI lists about, after the scan */
	_Static_assert(URIBL_DOMAIN_LEN == SCAN_DOMAIN_LEN, "one domain size");
	if ((domains = malloc(SCAN_MAX_DOMAINS * sizeof(*domains)))) {
		size_t n = uribl_domains(urlcheck_psl(state), scan_ctx_mime(ctx), domains,
					 SCAN_MAX_DOMAINS);
		scan_ctx_domains(ctx, (const char(*)[SCAN_DOMAIN_LEN])domains, n);
		free(domains);
	}
}

const struct scan_check urlcheck_check = {
    .name = "urlcheck",
    .thread_init = urlcheck_thread_init,
    .thread_free = urlcheck_thread_free,
    .run = urlcheck_run,
};
