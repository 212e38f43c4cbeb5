/* SPDX-License-Identifier: MIT */
/*
 * html: HTML to plain text for rules and Bayes, and every link as a pair
 * (href, visible text). A single forward pass, no DOM: tags are read only
 * for their name and the attributes that carry URLs (a/area href, img
 * src, form action); script, style and comments are dropped; block tags
 * become line breaks; character references are decoded; runs of white
 * space collapse. The output is never longer than the input plus a few
 * bytes, so one allocation sized from the input is enough.
 * (WHATWG HTML "tokenization" is the model, much simplified.)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"

#define HTML_TAG_NAME 16
#define HTML_ATTR_MAX 4096

struct html_out {
	char *d;
	size_t o, cap;
	bool space; /* last output was white space */
};

static void out_byte(struct html_out *h, char c)
{
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
		if (h->space || h->o == 0)
			return;
		c = ' ';
		h->space = true;
	} else {
		h->space = false;
	}
	if (h->o < h->cap)
		h->d[h->o++] = c;
}

static void out_nl(struct html_out *h)
{
	while (h->o && h->d[h->o - 1] == ' ')
		h->o--;
	if (h->o && h->d[h->o - 1] != '\n' && h->o < h->cap)
		h->d[h->o++] = '\n';
	h->space = true;
}

static size_t utf8_put(char *d, unsigned long cp)
{
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | cp >> 6);
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | cp >> 12);
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | cp >> 18);
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static const struct {
	const char *name;
	unsigned long cp;
} entities[] = {
    {"amp", '&'},     {"lt", '<'},     {"gt", '>'},	  {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xa0},   {"copy", 0xa9},  {"reg", 0xae},	  {"euro", 0x20ac},  {"shy", 0xad},
    {"zwnj", 0x200c}, {"zwj", 0x200d}, {"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026},
    {"laquo", 0xab},  {"raquo", 0xbb}, {"trade", 0x2122},
};

/* Decodes a character reference at s[0] == '&'; returns bytes consumed
 * (0: not a reference) and writes UTF-8 into buf (*blen). */
static size_t entity(const char *s, size_t n, char *buf, size_t *blen)
{
	size_t i = 1;
	unsigned long cp = 0;

	if (n > 2 && s[1] == '#') {
		bool hex = n > 3 && (s[2] == 'x' || s[2] == 'X');
		size_t digits = 0;
		i = hex ? 3 : 2;
		for (; i < n && digits < 8; i++, digits++) {
			char c = s[i];
			int v = c >= '0' && c <= '9' ? c - '0'
				: hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f'
				    ? (c | 0x20) - 'a' + 10
				    : -1;
			if (v < 0)
				break;
			cp = cp * (hex ? 16 : 10) + (unsigned long)v;
		}
		if (!digits)
			return 0;
		if (i < n && s[i] == ';')
			i++;
		*blen = utf8_put(buf, cp);
		return i;
	}
	for (size_t k = 0; k < ARRAY_LEN(entities); k++) {
		size_t l = strlen(entities[k].name);
		if (n > l && !memcmp(s + 1, entities[k].name, l)) {
			i = 1 + l;
			if (i < n && s[i] == ';')
				i++;
			*blen = utf8_put(buf, entities[k].cp);
			return i;
		}
	}
	return 0;
}

static bool is_block(const char *t)
{
	static const char *const block[] = {"br", "p",		"div",	 "tr", "li",	"h1", "h2",
					    "h3", "h4",		"h5",	 "h6", "table", "ul", "ol",
					    "hr", "blockquote", "title", "td", "th"};
	for (size_t i = 0; i < ARRAY_LEN(block); i++)
		if (!strcmp(t, block[i]))
			return true;
	return false;
}

/* Finds attribute name (lower case) in the tag s[0..n) and decodes its
 * value (entities) into val. */
static bool tag_attr(const char *s, size_t n, const char *name, char *val, size_t vmax,
		     size_t *vlen)
{
	size_t l = strlen(name), i = 0;

	while (i < n) {
		while (i < n &&
		       (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '/'))
			i++;
		size_t ns = i;
		while (i < n && s[i] != '=' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' &&
		       s[i] != '\r' && s[i] != '>')
			i++;
		bool match = i - ns == l && !strncasecmp(s + ns, name, l);
		while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
			i++;
		if (i >= n || s[i] != '=')
			continue;
		i++;
		while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
			i++;
		char q = i < n && (s[i] == '"' || s[i] == '\'') ? s[i++] : 0;
		size_t vs = i;
		while (i < n && (q ? s[i] != q
				   : (s[i] != ' ' && s[i] != '>' && s[i] != '\t' && s[i] != '\n')))
			i++;
		if (match) {
			size_t o = 0;
			for (size_t k = vs; k < i && o + 4 < vmax; k++) {
				char b[4];
				size_t bl, used;
				if (s[k] == '&' && (used = entity(s + k, i - k, b, &bl)) > 0) {
					memcpy(val + o, b, bl);
					o += bl;
					k += used - 1;
				} else if (s[k] != '\n' && s[k] != '\r' && s[k] != '\t') {
					val[o++] = s[k];
				}
			}
			*vlen = o;
			return true;
		}
		if (q && i < n)
			i++;
	}
	return false;
}

int mime_html_render(struct mime_msg *m, struct mime_part *p, const char *html, size_t n)
{
	struct html_out h = {0};
	const char *s;
	size_t len, i = 0, link_text = 0;
	char *href = NULL, *attr;
	size_t hreflen = 0;
	bool in_link = false;
	int rc;

	/* to UTF-8 first: the markup is ASCII in every charset mail uses */
	if ((rc = mime_part_set_text(m, p, html, n, p->charset.ptr, p->charset.len)) < 0)
		return rc;
	s = p->text.ptr;
	len = p->text.len;
	h.cap = len + 16;
	if (!(h.d = arena_alloc(m->a, h.cap + 1)) || !(href = arena_alloc(m->a, HTML_ATTR_MAX)) ||
	    !(attr = arena_alloc(m->a, HTML_ATTR_MAX)))
		return -ENOMEM;
	while (i < len) {
		char c = s[i];
		if (c == '<') {
			char name[HTML_TAG_NAME];
			size_t j = i + 1, nl = 0, te;
			bool end = false;
			const char *gt;
			if (len - i >= 4 && !memcmp(s + i, "<!--", 4)) {
				const char *e = memmem(s + i + 4, len - i - 4, "-->", 3);
				i = e ? (size_t)(e - s) + 3 : len;
				continue;
			}
			if (j < len && s[j] == '/') {
				end = true;
				j++;
			}
			while (j < len && nl < HTML_TAG_NAME - 1 &&
			       ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
				(s[j] >= '0' && s[j] <= '9'))) {
				name[nl++] = (char)(s[j] | 0x20);
				j++;
			}
			name[nl] = '\0';
			if (!nl && !(j < len && s[j] == '!')) {
				out_byte(&h, c); /* a lone '<' is text */
				i++;
				continue;
			}
			gt = memchr(s + j, '>', len - j);
			te = gt ? (size_t)(gt - s) : len;
			if (!end && (!strcmp(name, "script") || !strcmp(name, "style"))) {
				/* skip to the matching end tag */
				const char *e = s + te;
				size_t k = te;
				e = NULL;
				while (k + nl + 2 < len) {
					const char *lt = memchr(s + k, '<', len - k);
					if (!lt)
						break;
					k = (size_t)(lt - s);
					if (k + nl + 2 <= len && s[k + 1] == '/' &&
					    !strncasecmp(s + k + 2, name, nl)) {
						e = lt;
						break;
					}
					k++;
				}
				i = e ? (size_t)(e - s) : len;
				continue;
			}
			if (!strcmp(name, "a") || !strcmp(name, "area")) {
				if (in_link) /* an unclosed link ends at the next one */
					(void)mime_url_add(m, p, href, hreflen, h.d + link_text,
							   h.o - link_text, MIME_URL_HTML);
				in_link = false;
				if (!end && tag_attr(s + j, te - j, "href", href, HTML_ATTR_MAX,
						     &hreflen)) {
					in_link = true;
					link_text = h.o;
				}
			} else if (!end && (!strcmp(name, "img") || !strcmp(name, "iframe") ||
					    !strcmp(name, "form"))) {
				size_t al;
				const char *an = name[0] == 'f' ? "action" : "src";
				if (tag_attr(s + j, te - j, an, attr, HTML_ATTR_MAX, &al))
					(void)mime_url_add(m, p, attr, al, NULL, 0, MIME_URL_HTML);
			}
			if (is_block(name))
				out_nl(&h);
			i = te < len ? te + 1 : len;
			continue;
		}
		if (c == '&') {
			char b[4];
			size_t bl, used = entity(s + i, len - i, b, &bl);
			if (used) {
				if (bl == 2 && (unsigned char)b[0] == 0xc2 &&
				    (unsigned char)b[1] == 0xa0) {
					out_byte(&h, ' ');
				} else {
					for (size_t k = 0; k < bl; k++)
						out_byte(&h, b[k]);
				}
				i += used;
				continue;
			}
		}
		out_byte(&h, c);
		i++;
	}
	if (in_link)
		(void)mime_url_add(m, p, href, hreflen, h.d + link_text, h.o - link_text,
				   MIME_URL_HTML);
	while (h.o && (h.d[h.o - 1] == ' ' || h.d[h.o - 1] == '\n'))
		h.o--;
	h.d[h.o] = '\0';
	p->text.ptr = h.d;
	p->text.len = h.o;
	/* URLs written as text */
	return mime_url_scan_text(m, p, h.d, h.o);
}
