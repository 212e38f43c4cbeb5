/* SPDX-License-Identifier: MIT */
/*
 * smtp_client: a blocking SMTP client for the delivery worker's threads.
 *
 * One struct smtp_conn is one TCP connection to one downstream server,
 * used by one thread at a time. Sockets are non-blocking underneath and
 * every wait goes through poll() with a deadline, so no call blocks longer
 * than the connect or command time-out it was given.
 *
 * Implements RFC 5321 (client side: greeting, EHLO with HELO fallback,
 * MAIL/RCPT/DATA, RSET, QUIT, dot-stuffing, multi-line replies), RFC 2920
 * (PIPELINING: MAIL, every RCPT and DATA in one write), RFC 1870 (SIZE),
 * RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 2034/3463 (enhanced status
 * codes, kept with the reply) and RFC 3207 (opportunistic STARTTLS through
 * OpenSSL; the certificate is not verified yet).
 *
 * Results: every transaction answers, per recipient, SMTP_OK, SMTP_TEMPFAIL
 * or SMTP_PERMFAIL with the reply that decided it; a TEMPFAIL is never a
 * success. Functions return 0 or a negative code:
 *   SMTP_E_NEXTHOST  this host did not answer usefully (connect failure,
 *                    time-out, I/O error, 4xx/421 before any recipient
 *                    was answered, 5xx greeting): try the next host;
 *   SMTP_E_TLS       the TLS handshake failed: retry this host once
 *                    without TLS;
 *   SMTP_E_NOMEM     out of memory (a temporary failure).
 * A reply struct passed in always gets the reason, so a caller that runs
 * out of hosts reports what the last one said.
 *
 * Memory: smtp_conn_open() allocates the connection, smtp_conn_close()
 * (QUIT, then free) or smtp_conn_free() (no QUIT) releases it. Strings
 * passed in are only read during the call.
 */
#ifndef MXG_SMTP_CLIENT_H
#define MXG_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/util.h"

struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

enum smtp_rc {
	SMTP_E_NEXTHOST = -1,
	SMTP_E_TLS = -2,
	SMTP_E_NOMEM = -3,
	SMTP_E_PROTO = -4, /* a malformed reply line (parser level) */
};

enum smtp_verdict {
	SMTP_OK = 0,
	SMTP_TEMPFAIL = 1,
	SMTP_PERMFAIL = 2,
};

#define SMTP_LINE_MAX 2048 /* longest reply line we accept (RFC 5321: 512) */
#define SMTP_REPLY_MAX 1024
#define SMTP_REPLY_LINES_MAX 64

/* One (possibly multi-line) reply. text holds every line's text after the
 * code and the enhanced code, lines separated by '\n'. code is 0 for a
 * reason we made up ourselves (connection refused, time-out). */
struct smtp_reply {
	int code;
	char enh[16]; /* "5.1.1", or "" */
	char text[SMTP_REPLY_MAX];
	size_t nlines;
	bool done;
};

/* Feeds one reply line (without CRLF). Returns 1 when the reply is
 * complete, 0 when more lines follow, SMTP_E_PROTO for a malformed line
 * (not three digits 2xx-5xx, bad separator, a code that changes between
 * lines, too many lines). A complete reply is reset by the next feed. */
int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len) MXG_WUR;
/* Sets a reply we made up: code 0 means "no reply from the server". */
void smtp_reply_set(struct smtp_reply *r, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "550 5.1.1 line one line two": one line for logs and DSNs. */
const char *smtp_reply_format(const struct smtp_reply *r, char *buf, size_t len);
/* The verdict a reply code means: 2xx/3xx OK, 5xx PERMFAIL, else TEMPFAIL. */
enum smtp_verdict smtp_reply_verdict(const struct smtp_reply *r);

enum smtp_caps {
	SMTP_CAP_PIPELINING = 1 << 0,
	SMTP_CAP_SIZE = 1 << 1,
	SMTP_CAP_8BITMIME = 1 << 2,
	SMTP_CAP_SMTPUTF8 = 1 << 3,
	SMTP_CAP_STARTTLS = 1 << 4,
	SMTP_CAP_ENHANCEDSTATUSCODES = 1 << 5,
};

/* Capabilities of a 250 EHLO reply (the first line is the greeting and is
 * skipped). *size_max gets the SIZE limit (0: none announced). */
unsigned smtp_ehlo_caps(const struct smtp_reply *r, int64_t *size_max);

/* Dot-stuffs a message (RFC 5321 4.5.2) into a malloc'd buffer that ends
 * with CRLF "." CRLF. Bare CR and bare LF become CRLF, and a message that
 * does not end with CRLF gets one. The caller frees *out. */
int smtp_dot_stuff(const void *data, size_t len, char **out, size_t *outlen) MXG_WUR;

struct smtp_client_opts {
	const char *helo_name;	    /* our host name for EHLO */
	int connect_timeout_ms;	    /* TCP connect and greeting */
	int timeout_ms;		    /* every other command */
	struct ssl_ctx_st *tls_ctx; /* NULL: never STARTTLS */
};

/* An SSL_CTX for opportunistic STARTTLS (no verification, TLS 1.2+). */
int smtp_tls_ctx_new(struct ssl_ctx_st **out) MXG_WUR;
void smtp_tls_ctx_free(struct ssl_ctx_st *ctx);

struct smtp_conn;

/* Connects to addr, reads the greeting, EHLO (HELO on 5xx), STARTTLS when
 * offered and use_tls (then EHLO again). name is the host name used for
 * SNI and logs ("name:port" or "[ip]:port"). On failure *why says what
 * happened and the return code says what to do next (see above). */
int smtp_conn_open(const struct sockaddr *addr, socklen_t addrlen, const char *name,
		   const struct smtp_client_opts *o, bool use_tls, struct smtp_conn **out,
		   struct smtp_reply *why) MXG_WUR;
/* Sends QUIT (best effort, short time-out) and frees. NULL is fine. */
void smtp_conn_close(struct smtp_conn *c);
/* Frees without QUIT (the connection is broken). NULL is fine. */
void smtp_conn_free(struct smtp_conn *c);
/* RSET for the next transaction on the same connection. */
int smtp_conn_rset(struct smtp_conn *c) MXG_WUR;
/* false once an I/O error, a time-out or a 421 made the connection unfit. */
bool smtp_conn_usable(const struct smtp_conn *c);
const char *smtp_conn_peer(const struct smtp_conn *c); /* "host[ip]:port" */
unsigned smtp_conn_caps(const struct smtp_conn *c);
bool smtp_conn_tls(const struct smtp_conn *c);

enum smtp_env_flags {
	SMTP_ENV_8BITMIME = 1 << 0,
	SMTP_ENV_SMTPUTF8 = 1 << 1,
};

struct smtp_envelope {
	const char *sender; /* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpts;
	unsigned flags;	     /* enum smtp_env_flags */
	const char *stuffed; /* from smtp_dot_stuff() */
	size_t stuffed_len;
	int64_t size; /* the message size for SIZE= */
};

struct smtp_rcpt_result {
	enum smtp_verdict verdict;
	struct smtp_reply reply;
};

/* One transaction for every recipient of env. res[0..nrcpts) always gets
 * a verdict and the reply behind it. Returns 0 when this host gave its
 * answer (accepted, refused or deferred some or all recipients),
 * SMTP_E_NEXTHOST when the caller should try the next host (res[] then
 * holds TEMPFAIL with the reason), SMTP_E_NOMEM. An I/O failure after the
 * final "." returns 0 with TEMPFAIL: the message may have arrived, and
 * another host must not get a second copy in the same attempt. */
int smtp_conn_send(struct smtp_conn *c, const struct smtp_envelope *env,
		   struct smtp_rcpt_result *res) MXG_WUR;

#endif
