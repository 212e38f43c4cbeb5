/* SPDX-License-Identifier: MIT */
/*
 * util: small helpers that replace the banned libc functions (strcpy,
 * strcat, sprintf, atoi) with bounded, checked versions, plus clock and
 * address helpers shared by every module.
 *
 * All functions return 0 on success or a negative errno-style code; the
 * output is left untouched on error unless stated otherwise.
 */
#ifndef MXG_UTIL_H
#define MXG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MXG_WUR __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FALLTHROUGH __attribute__((fallthrough))

/* Copies src into dst; -ENAMETOOLONG (and dst truncated, terminated) if it
 * does not fit. */
int str_copy(char *dst, size_t dstlen, const char *src);
/* Copies n bytes of src (which need not be terminated). */
int str_copyn(char *dst, size_t dstlen, const char *src, size_t n);
/* Copies n bytes of src for an SMTP reply, a symbol or a log token:
 * printable ASCII without space, '"' or '\\' (others become '_'),
 * truncated to dstlen - 1, always terminated. */
void str_token_copy(char *dst, size_t dstlen, const char *src, size_t n);
/* snprintf that reports truncation as -ENAMETOOLONG. */
int str_fmt(char *dst, size_t dstlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* ASCII lower-casing in place (domains; never touches UTF-8 bytes). */
void str_lower_ascii(char *s);
void str_upper_ascii(char *s);
bool str_case_prefix(const char *s, const char *prefix);

/* Checks that s[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
bool utf8_valid(const unsigned char *s, size_t len);

/* Strict integer parsing: the whole string must be a number in [min,max]. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out) MXG_WUR;
/* "25M", "512k", "1G", "1000" -> bytes. */
int parse_size(const char *s, int64_t *out) MXG_WUR;
/* "30s", "5m", "2h", "5d", "90" (seconds) -> seconds. */
int parse_duration(const char *s, int64_t *out) MXG_WUR;
/* "host:port", "[v6]:port" -> host (without brackets) and port. */
int parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port) MXG_WUR;

/* mkdir -p: the last component gets mode, the ones above 0755. */
int mkdir_p(const char *path, unsigned mode) MXG_WUR;

int64_t time_now(void);	    /* wall clock, seconds */
int64_t time_now_ms(void);  /* wall clock, milliseconds */
int64_t time_mono_us(void); /* monotonic, microseconds */

/* A queue id: 16 characters [0-9A-Z] that sort by time, unique across
 * processes and nodes (time, pid and random bits). buf must hold 17 bytes. */
#define QUEUE_ID_LEN 16
void queue_id_new(char buf[QUEUE_ID_LEN + 1]);

/* RFC 5322 date for headers, e.g. "Sat, 28 Nov 2026 22:30:01 +0000". */
void rfc5322_date(int64_t t, char *buf, size_t len);

#endif
