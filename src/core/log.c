/* SPDX-License-Identifier: MIT */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set once per process before threads start; see log.h. */
static struct {
	char proc[32];
	enum log_level level;
} log_state = {"mxguard", LOG_INFO};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *proc, enum log_level level)
{
	snprintf(log_state.proc, sizeof(log_state.proc), "%s", proc);
	log_state.level = level;
}

enum log_level log_level_get(void)
{
	return log_state.level;
}

static void log_vwrite(enum log_level level, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void log_vwrite(enum log_level level, const char *event, const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	r = snprintf(line, sizeof(line),
		     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s pid=%ld event=%s",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (long)(tv.tv_usec / 1000), level_names[level], log_state.proc, (long)getpid(),
		     event);
	n = r < 0 ? 0 : (size_t)r;
	if (n < sizeof(line) - 2 && fmt && *fmt) {
		line[n++] = ' ';
		r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = ' ';
	}
	line[n++] = '\n';
	/* One write(2) per line so lines from concurrent processes never mix. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	va_list ap;

	if (level > log_state.level)
		return;
	va_start(ap, fmt);
	log_vwrite(level, event, fmt, ap);
	va_end(ap);
}

const char *log_quote(char *dst, size_t dstlen, const char *src)
{
	size_t o = 0;

	if (dstlen < 6) {
		if (dstlen)
			dst[0] = '\0';
		return dst;
	}
	dst[o++] = '"';
	for (; src && *src; src++) {
		unsigned char c = (unsigned char)*src;
		if (o + 5 >= dstlen) {
			memcpy(dst + dstlen - 5, "...", 3);
			o = dstlen - 2;
			break;
		}
		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == '"' || c == '\\')
			dst[o++] = '\\';
		dst[o++] = (char)c;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, "fatal", fmt, ap);
	va_end(ap);
	exit(1);
}
