/* SPDX-License-Identifier: MIT */
/*
 * tag: header edits of the policy (see tag.h).
 */
#include "policy/tag.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* End of the header section: offset of the byte after the empty line's
 * CRLF, or len when the message has no body separator. */
static size_t header_end(const char *d, size_t len)
{
	if (len >= 2 && d[0] == '\r' && d[1] == '\n')
		return 0;
	for (size_t i = 0; i + 3 < len; i++)
		if (d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' && d[i + 3] == '\n')
			return i + 2;
	return len;
}

/* Length of the field starting at d[i] (up to and including its last
 * CRLF), within the header section end he. */
static size_t field_len(const char *d, size_t i, size_t he)
{
	size_t j = i;

	for (;;) {
		const char *nl = memchr(d + j, '\n', he - j);
		if (!nl)
			return he - i;
		j = (size_t)(nl - d) + 1;
		if (j >= he || (d[j] != ' ' && d[j] != '\t'))
			return j - i;
	}
}

static bool name_is(const char *d, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && d[k] == ':' && !strncasecmp(d, name, k);
}

static bool name_prefix(const char *d, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n > k && !strncasecmp(d, prefix, k) && memchr(d, ':', n);
}

/* Is this Authentication-Results field ours (authserv-id = id)? */
static bool ar_is_ours(const char *d, size_t n, const char *id)
{
	size_t k = strlen("Authentication-Results:"), idl = strlen(id);
	size_t i = k;

	while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n'))
		i++;
	if (idl == 0 || n - i < idl || strncasecmp(d + i, id, idl))
		return false;
	i += idl;
	return i == n || d[i] == ';' || d[i] == ' ' || d[i] == '\t' || d[i] == '\r';
}

size_t tag_strip_ours(char *data, size_t *len, const char *authserv_id)
{
	size_t he = header_end(data, *len), i = 0, removed = 0;

	while (i < he) {
		size_t n = field_len(data, i, he);
		const char *f = data + i;
		bool drop = name_prefix(f, n, "X-Spam-") || name_prefix(f, n, "X-Mxguard-") ||
			    (name_is(f, n, "Authentication-Results") && authserv_id &&
			     ar_is_ours(f, n, authserv_id));

		if (n == 0)
			break;
		if (drop) {
			memmove(data + i, data + i + n, *len - i - n);
			*len -= n;
			he -= n;
			removed++;
			continue;
		}
		i += n;
	}
	return removed;
}

int tag_spam_headers(char *out, size_t outlen, double score, bool spam)
{
	int n = snprintf(out, outlen, "X-Spam-Score: %.2f\r\nX-Spam-Status: %s, score=%.2f\r\n%s",
			 score, spam ? "Yes" : "No", score, spam ? "X-Spam-Flag: YES\r\n" : "");

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* The Subject field: offset and length, or false. */
static bool find_subject(const char *d, size_t len, size_t *off, size_t *n)
{
	size_t he = header_end(d, len), i = 0;

	while (i < he) {
		size_t k = field_len(d, i, he);
		if (k == 0)
			break;
		if (name_is(d + i, k, "Subject")) {
			*off = i;
			*n = k;
			return true;
		}
		i += k;
	}
	return false;
}

void tag_subject_get(const char *data, size_t len, char *out, size_t outlen)
{
	size_t off, n, o = 0, i;

	out[0] = '\0';
	if (outlen == 0 || !find_subject(data, len, &off, &n))
		return;
	i = off + strlen("Subject:");
	while (i < off + n && (data[i] == ' ' || data[i] == '\t'))
		i++;
	/* Stored and shown to people (CLI, dashboard, JSON): control bytes and
	 * anything not UTF-8 become '?', and a character is never cut. */
	while (i < off + n && o + 1 < outlen) {
		unsigned char c = (unsigned char)data[i];
		size_t k = c < 0x80		? 1
			   : (c & 0xe0) == 0xc0 ? 2
			   : (c & 0xf0) == 0xe0 ? 3
			   : (c & 0xf8) == 0xf0 ? 4
						: 0;
		if (c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (k == 1) {
			out[o++] = c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
			i++;
			continue;
		}
		if (k == 0 || i + k > off + n || !utf8_valid((const unsigned char *)data + i, k)) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + k >= outlen)
			break;
		memcpy(out + o, data + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
}

int tag_subject_copy(const char *data, size_t len, const char *extra, size_t extralen,
		     const char *tag, char **out, size_t *outlen)
{
	size_t off = 0, n = 0, taglen = strlen(tag), vstart, total, o = 0;
	bool has = find_subject(data, len, &off, &n);
	char *b;

	if (has) {
		vstart = off + strlen("Subject:");
		while (vstart < off + n && (data[vstart] == ' ' || data[vstart] == '\t'))
			vstart++;
		/* already tagged (a second pass, a reply): leave it */
		if (taglen && off + n - vstart >= taglen && !strncmp(data + vstart, tag, taglen))
			taglen = 0;
	} else {
		vstart = 0;
	}
	total = extralen + len + taglen + 1 + (has ? 0 : strlen("Subject: \r\n"));
	if (!(b = malloc(total)))
		return -ENOMEM;
	memcpy(b, extra, extralen);
	o = extralen;
	if (!has) {
		o += (size_t)sprintf(b + o, "Subject: %s\r\n", tag);
		memcpy(b + o, data, len);
		o += len;
	} else {
		memcpy(b + o, data, vstart);
		o += vstart;
		if (taglen) {
			memcpy(b + o, tag, taglen);
			o += taglen;
			b[o++] = ' ';
		}
		memcpy(b + o, data + vstart, len - vstart);
		o += len - vstart;
	}
	*out = b;
	*outlen = o;
	return 0;
}

void tag_from_address(const char *data, size_t len, char *out, size_t outlen)
{
	size_t he = header_end(data, len), i = 0, o = 0;
	const char *v = NULL, *end = NULL, *lt, *gt, *a, *b;

	out[0] = '\0';
	while (i < he) {
		size_t k = field_len(data, i, he);
		if (k == 0)
			break;
		if (name_is(data + i, k, "From")) {
			v = data + i + strlen("From:");
			end = data + i + k;
			break;
		}
		i += k;
	}
	if (!v)
		return;
	/* name-addr: the last <...>; addr-spec: the whole value */
	lt = NULL;
	for (const char *p = v; p < end; p++)
		if (*p == '<')
			lt = p;
	if (lt && (gt = memchr(lt, '>', (size_t)(end - lt)))) {
		a = lt + 1;
		b = gt;
	} else {
		a = v;
		b = end;
	}
	while (a < b && (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n'))
		a++;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r' || b[-1] == '\n'))
		b--;
	if (b <= a || !memchr(a, '@', (size_t)(b - a)) || (size_t)(b - a) >= outlen)
		return;
	for (const char *p = a; p < b; p++) {
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == '"') {
			out[0] = '\0'; /* a list or something stranger: not one address */
			return;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}
