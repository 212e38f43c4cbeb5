/* SPDX-License-Identifier: MIT */
/*
 * log: one line per event, key=value, to stderr.
 *
 * Every line reads
 *   ts=2026-11-28T22:30:01.123Z level=info proc=smtp/1 pid=42 event=connect k=v ...
 * so that grep and a log shipper both read it. Callers pass the key=value
 * tail as a printf format; values that may hold spaces must be quoted by
 * the caller (log_quote() helps). Control characters in the final line are
 * replaced so that a hostile peer cannot forge a log line.
 *
 * The process identity (proc name, level) is the one piece of process-wide
 * state in mxguard: it is set once by main() or right after fork(), before
 * any other thread exists, and is read-only afterwards.
 */
#ifndef MXG_LOG_H
#define MXG_LOG_H

#include <stddef.h>

enum log_level {
	LOG_ERR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

void log_init(const char *proc, enum log_level level);
enum log_level log_level_get(void);

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies src into dst (of size dstlen) as a double-quoted value, escaping
 * quotes and backslashes and dropping control characters; truncates with
 * "..." if needed. Returns dst. */
const char *log_quote(char *dst, size_t dstlen, const char *src);

#define log_err(ev, ...) log_msg(LOG_ERR, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_msg(LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...) log_msg(LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...)                                                                         \
	do {                                                                                       \
		if (log_level_get() >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, ev, __VA_ARGS__);                                       \
	} while (0)

/* For start-up errors and broken internal invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
