/* SPDX-License-Identifier: MIT */
#include "smtp/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

/* RFC 5321 4.5.3.1: local part 64 octets, domain 255; we allow a little
 * more for UTF-8 local parts but stay within STORE_ADDR_LEN. */
#define LOCAL_MAX 128
#define DOMAIN_MAX 255

static bool is_atext(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

bool smtp_domain_valid(const char *s, size_t len, bool utf8_ok)
{
	size_t label = 0;

	if (len == 0 || len > DOMAIN_MAX)
		return false;
	if (s[0] == '[') {
		char lit[64];
		unsigned char tmp[16];

		if (s[len - 1] != ']' || len - 2 >= sizeof(lit))
			return false;
		memcpy(lit, s + 1, len - 2);
		lit[len - 2] = '\0';
		if (!strncasecmp(lit, "IPv6:", 5))
			return inet_pton(AF_INET6, lit + 5, tmp) == 1;
		return inet_pton(AF_INET, lit, tmp) == 1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (c >= 0x80) {
			if (!utf8_ok)
				return false;
		} else if (!(isalnum(c) || (c == '-' && label > 0)) && !(c == '_' && label > 0)) {
			return false;
		}
		if (++label > 63)
			return false;
	}
	if (label == 0 && len > 0 && s[len - 1] == '.')
		return false;
	if (utf8_ok && !utf8_valid((const unsigned char *)s, len))
		return false;
	return true;
}

/* local-part = Dot-string / Quoted-string (RFC 5321 4.1.2), UTF-8 allowed
 * (RFC 6531 3.3). Returns the length consumed or -EINVAL. */
static int parse_local(const char *s, bool *utf8)
{
	size_t i = 0;

	if (s[0] == '"') {
		for (i = 1; s[i] && s[i] != '"'; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				if (!s[i + 1] || (unsigned char)s[i + 1] < 0x20)
					return -EINVAL;
				i++;
				continue;
			}
			if (c < 0x20 || c == 0x7f)
				return -EINVAL;
			if (c >= 0x80)
				*utf8 = true;
		}
		if (s[i] != '"')
			return -EINVAL;
		return (int)(i + 1);
	}
	for (;;) {
		size_t atom = 0;
		while (s[i] && (is_atext((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)) {
			if ((unsigned char)s[i] >= 0x80)
				*utf8 = true;
			i++;
			atom++;
		}
		if (atom == 0)
			return -EINVAL;
		if (s[i] != '.')
			break;
		i++;
	}
	return (int)i;
}

int smtp_path_parse(const char **cursor, bool null_ok, struct smtp_path *out)
{
	const char *s = *cursor, *at, *end, *dom;
	bool utf8 = false;
	int n;

	memset(out, 0, sizeof(*out));
	if (*s != '<')
		return -EINVAL;
	s++;
	if (*s == '>') {
		if (!null_ok)
			return -EINVAL;
		out->null = true;
		*cursor = s + 1;
		return 0;
	}
	/* Obsolete source route "@a,@b:" (RFC 5321 4.1.2): accept and ignore. */
	if (*s == '@') {
		const char *colon = strchr(s, ':');
		const char *gt = strchr(s, '>');
		if (!colon || (gt && gt < colon))
			return -EINVAL;
		s = colon + 1;
	}
	n = parse_local(s, &utf8);
	if (n < 0)
		return n;
	if (n > LOCAL_MAX)
		return -ENAMETOOLONG;
	at = s + n;
	if (*at == '>') {
		/* "<postmaster>" is the only address allowed without a domain. */
		if (n != 10 || strncasecmp(s, "postmaster", 10) != 0)
			return -EINVAL;
		(void)str_copy(out->addr, sizeof(out->addr), "postmaster");
		out->no_domain = true;
		*cursor = at + 1;
		return 0;
	}
	if (*at != '@')
		return -EINVAL;
	dom = at + 1;
	end = strchr(dom, '>');
	if (!end)
		return -EINVAL;
	if ((size_t)(end - dom) > DOMAIN_MAX)
		return -ENAMETOOLONG;
	for (const char *p = dom; p < end; p++)
		if ((unsigned char)*p >= 0x80)
			utf8 = true;
	if (!smtp_domain_valid(dom, (size_t)(end - dom), true))
		return -EINVAL;
	if (utf8 && !utf8_valid((const unsigned char *)s, (size_t)(end - s)))
		return -EINVAL;
	if (str_copyn(out->addr, sizeof(out->addr), s, (size_t)(end - s)) < 0)
		return -ENAMETOOLONG;
	/* lower-case the domain part (ASCII only) */
	str_lower_ascii(out->addr + (size_t)(dom - s));
	out->utf8 = utf8;
	*cursor = end + 1;
	return 0;
}

int smtp_param_next(const char **cursor, char *key, size_t keylen, char *val, size_t vallen)
{
	const char *s = *cursor, *k, *v = NULL, *e;

	while (*s == ' ')
		s++;
	if (!*s) {
		*cursor = s;
		return 0;
	}
	k = s;
	while (*s && *s != ' ' && *s != '=') {
		if (!isalnum((unsigned char)*s) && *s != '-')
			return -EINVAL;
		s++;
	}
	if (s == k)
		return -EINVAL;
	e = s;
	if (*s == '=') {
		v = ++s;
		while (*s && *s != ' ') {
			unsigned char c = (unsigned char)*s;
			if (c < 0x21 || c == '=' || c == 0x7f)
				return -EINVAL;
			s++;
		}
		if (s == v)
			return -EINVAL;
	}
	if (str_copyn(key, keylen, k, (size_t)(e - k)) < 0)
		return -EINVAL;
	if (v) {
		if (str_copyn(val, vallen, v, (size_t)(s - v)) < 0)
			return -EINVAL;
	} else if (vallen) {
		val[0] = '\0';
	}
	*cursor = s;
	return 1;
}
