/* SPDX-License-Identifier: MIT */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int str_copy(char *dst, size_t dstlen, const char *src)
{
	return str_copyn(dst, dstlen, src, strlen(src));
}

void str_token_copy(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t o = 0;

	if (dstlen == 0)
		return;
	for (size_t i = 0; i < n && o + 1 < dstlen; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[o++] = (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '_';
	}
	dst[o] = '\0';
}

int str_copyn(char *dst, size_t dstlen, const char *src, size_t n)
{
	if (dstlen == 0)
		return -ENAMETOOLONG;
	if (n >= dstlen) {
		memcpy(dst, src, dstlen - 1);
		dst[dstlen - 1] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

int str_fmt(char *dst, size_t dstlen, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(dst, dstlen, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -EINVAL;
	if ((size_t)r >= dstlen)
		return -ENAMETOOLONG;
	return 0;
}

void str_lower_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

void str_upper_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

bool str_case_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_scaled(const char *s, const char *units, const int64_t *mult, int64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	int64_t m = 1, v;
	const char *u;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	u = strchr(units, num[n - 1]);
	if (u && num[n - 1]) {
		m = mult[u - units];
		num[n - 1] = '\0';
	}
	if (parse_int64(num, 0, INT64_MAX / m, &v) < 0)
		return -EINVAL;
	*out = v * m;
	return 0;
}

int parse_size(const char *s, int64_t *out)
{
	static const int64_t mult[] = {
	    1024, 1024, 1024 * 1024, 1024 * 1024, 1024LL * 1024 * 1024, 1024LL * 1024 * 1024};
	return parse_scaled(s, "kKmMgG", mult, out);
}

int parse_duration(const char *s, int64_t *out)
{
	static const int64_t mult[] = {1, 60, 3600, 86400, 7 * 86400};
	return parse_scaled(s, "smhdw", mult, out);
}

int parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *hs, *he;
	int64_t p;

	if (s[0] == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return -EINVAL;
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		hs = s;
		he = colon;
	}
	if (he == hs)
		return -EINVAL;
	if (parse_int64(colon + 1, 1, 65535, &p) < 0)
		return -EINVAL;
	if (str_copyn(host, hostlen, hs, (size_t)(he - hs)) < 0)
		return -ENAMETOOLONG;
	*port = (uint16_t)p;
	return 0;
}

int64_t time_now(void)
{
	return (int64_t)time(NULL);
}

int64_t time_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t time_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void queue_id_new(char buf[QUEUE_ID_LEN + 1])
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
	uint64_t t = (uint64_t)time_now_ms();
	uint64_t r = 0;
	char *p = buf;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)time_mono_us() * 2654435761u;
	r ^= (uint64_t)getpid() << 24;
	/* 9 base-32 digits of milliseconds (good until the year 3058)... */
	for (int i = 8; i >= 0; i--)
		p[i] = digits[(t >> (5 * (8 - i))) & 31];
	p += 9;
	/* ...then 7 digits (35 bits) of randomness mixed with the pid. */
	for (int i = 0; i < 7; i++)
		p[i] = digits[(r >> (5 * i)) & 31];
	buf[QUEUE_ID_LEN] = '\0';
}

void rfc5322_date(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

int mkdir_p(const char *path, unsigned mode)
{
	char tmp[4096];

	if (str_copy(tmp, sizeof(tmp), path) < 0)
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}
