/* SPDX-License-Identifier: MIT */
/*
 * url: URLs in plain text, and the normal form of every URL the engine
 * reports (RFC 3986; IDNA2008 / UTS #46 through libidn2).
 *
 * Normal form: scheme and host in lower case, user information and the
 * default port dropped, percent-encoded unreserved characters decoded in
 * the host and path, host in punycode (host_ascii) and in Unicode (host),
 * so that a lookalike written either way is compared the same way.
 * Contract as in mime_private.h; every string lives in the message arena.
 */
#include <errno.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"

#define URL_MAX_LEN 4096
#define URL_FIRST_CAP 16

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-decodes into d; in the host everything, elsewhere only
 * unreserved characters (decoding '/' or '?' would change the URL). */
static size_t pct(const char *s, size_t n, char *d, bool all)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n && (h = hexv(s[i + 1])) >= 0 &&
		    (l = hexv(s[i + 2])) >= 0) {
			unsigned char c = (unsigned char)(h << 4 | l);
			if (all || unreserved(c)) {
				d[o++] = (char)c;
				i += 2;
				continue;
			}
		}
		d[o++] = s[i];
	}
	return o;
}

/* The URL array holds 16, then doubles: full when nurls is 0, or 16 or
 * more and a power of two. */
static int grow(struct mime_msg *m, struct mime_part *p)
{
	size_t k = p->nurls, cap;
	struct mime_url *n;

	if (k != 0 && (k < URL_FIRST_CAP || (k & (k - 1)) != 0))
		return 0;
	cap = k ? k * 2 : URL_FIRST_CAP;
	if (!(n = arena_alloc(m->a, cap * sizeof(*n))))
		return -ENOMEM;
	if (k)
		memcpy(n, p->urls, k * sizeof(*n));
	p->urls = n;
	return 0;
}

int mime_url_add(struct mime_msg *m, struct mime_part *p, const char *raw, size_t n,
		 const char *text, size_t tlen, unsigned flags)
{
	struct mime_url *u;
	const char *hs, *he, *colon, *at, *rest;
	char *host, *path, *url, *uni = NULL, *asc = NULL;
	size_t hl, pl, schl, ul;
	int rc;

	while (n && (*raw == ' ' || *raw == '\t' || *raw == '\n' || *raw == '\r')) {
		raw++;
		n--;
	}
	while (n && (raw[n - 1] == ' ' || raw[n - 1] == '\n' || raw[n - 1] == '\r'))
		n--;
	if (n == 0 || n > URL_MAX_LEN)
		return 0;
	if (p->nurls >= m->e->lim.max_urls) {
		mime_finding_add(m, "MIME_TOO_MANY_URLS", p, NULL);
		return 0;
	}
	colon = memmem(raw, n, "://", 3);
	if (colon) {
		schl = (size_t)(colon - raw);
		hs = colon + 3;
	} else if (n > 4 && !strncasecmp(raw, "www.", 4)) {
		schl = 0;
		hs = raw;
	} else {
		return 0; /* mailto:, javascript:, relative: not a web URL */
	}
	for (he = hs; he < raw + n && *he != '/' && *he != '?' && *he != '#' && *he != '\\'; he++)
		;
	rest = he;
	at = NULL;
	for (const char *c = hs; c < he; c++)
		if (*c == '@')
			at = c;
	if (at)
		hs = at + 1; /* user information hides the real host */
	if (!(host = arena_alloc(m->a, (size_t)(he - hs) + 1)) ||
	    !(path = arena_alloc(m->a, (size_t)(raw + n - rest) + 1)))
		return -ENOMEM;
	hl = pct(hs, (size_t)(he - hs), host, true);
	host[hl] = '\0';
	{
		/* port: drop it when it is the default */
		char *pc = host[0] == '[' ? strchr(host, ']') : host;
		pc = pc ? strrchr(pc, ':') : NULL;
		if (pc && (!strcmp(pc, ":80") || !strcmp(pc, ":443") || pc[1] == '\0')) {
			*pc = '\0';
			hl = (size_t)(pc - host);
		}
	}
	while (hl && host[hl - 1] == '.')
		host[--hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		if (host[i] >= 'A' && host[i] <= 'Z')
			host[i] = (char)(host[i] + 32);
	pl = pct(rest, (size_t)(raw + n - rest), path, false);
	path[pl] = '\0';
	if ((rc = grow(m, p)) < 0)
		return rc;
	u = &p->urls[p->nurls];
	memset(u, 0, sizeof(*u));
	u->flags = flags;
	u->raw.ptr = arena_memdup(m->a, raw, n);
	u->raw.len = u->raw.ptr ? n : 0;
	if (text && tlen) {
		u->text.ptr = arena_memdup(m->a, text, tlen);
		u->text.len = u->text.ptr ? tlen : 0;
	}
	u->host.ptr = host;
	u->host.len = hl;
	u->host_ascii = u->host;
	{
		bool nonascii = false, puny = strstr(host, "xn--") != NULL;
		for (size_t i = 0; i < hl; i++)
			if ((unsigned char)host[i] >= 0x80)
				nonascii = true;
		if (nonascii) {
			u->flags |= MIME_URL_IDN;
			if (idn2_to_ascii_8z(host, &asc, IDN2_NONTRANSITIONAL) == IDN2_OK ||
			    idn2_to_ascii_8z(host, &asc, IDN2_TRANSITIONAL) == IDN2_OK) {
				u->host_ascii.ptr = arena_memdup(m->a, asc, strlen(asc));
				u->host_ascii.len = u->host_ascii.ptr ? strlen(asc) : 0;
			} else {
				u->flags |= MIME_URL_BAD_HOST;
			}
		} else if (puny) {
			u->flags |= MIME_URL_IDN;
			if (idn2_to_unicode_8z8z(host, &uni, 0) == IDN2_OK) {
				u->host.ptr = arena_memdup(m->a, uni, strlen(uni));
				u->host.len = u->host.ptr ? strlen(uni) : 0;
			} else {
				u->flags |= MIME_URL_BAD_HOST;
			}
		}
		free(asc);
		free(uni);
	}
	ul = (schl ? schl : 4) + 3 + u->host_ascii.len + pl;
	if (!(url = arena_alloc(m->a, ul + 1)))
		return -ENOMEM;
	{
		size_t o = 0;
		if (schl)
			for (size_t i = 0; i < schl; i++)
				url[o++] =
				    (char)(raw[i] >= 'A' && raw[i] <= 'Z' ? raw[i] + 32 : raw[i]);
		else {
			memcpy(url, "http", 4);
			o = 4;
		}
		memcpy(url + o, "://", 3);
		o += 3;
		memcpy(url + o, u->host_ascii.ptr, u->host_ascii.len);
		o += u->host_ascii.len;
		memcpy(url + o, path, pl);
		o += pl;
		url[o] = '\0';
		u->url.ptr = url;
		u->url.len = o;
	}
	p->nurls++;
	return 0;
}

static bool url_char(unsigned char c)
{
	return c > 0x20 && c != '<' && c != '>' && c != '"' && c != '\'' && c != '`' && c != 0x7f &&
	       c != '{' && c != '}' && c != '|' && c != '^';
}

int mime_url_scan_text(struct mime_msg *m, struct mime_part *p, const char *text, size_t n)
{
	size_t i = 0;

	while (i + 4 < n) {
		size_t s = i, e;
		const char *c = text + i;
		bool hit = false;

		if ((c[0] | 0x20) == 'h' && n - i > 7 &&
		    (!strncasecmp(c, "http://", 7) ||
		     (n - i > 8 && !strncasecmp(c, "https://", 8))))
			hit = true;
		else if ((c[0] | 0x20) == 'f' && n - i > 6 && !strncasecmp(c, "ftp://", 6))
			hit = true;
		else if ((c[0] | 0x20) == 'w' && n - i > 5 && !strncasecmp(c, "www.", 4) &&
			 (i == 0 || !url_char((unsigned char)text[i - 1]) || text[i - 1] == '('))
			hit = true;
		if (!hit) {
			i++;
			continue;
		}
		for (e = s; e < n && url_char((unsigned char)text[e]); e++)
			;
		while (e > s && strchr(".,;:!?)]", text[e - 1]))
			e--;
		if (mime_url_add(m, p, text + s, e - s, NULL, 0, MIME_URL_TEXT) < 0)
			return -ENOMEM;
		i = e > i ? e : i + 1;
	}
	return 0;
}
