/* SPDX-License-Identifier: MIT */
#include "net/smtp_client.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SMTP_RBUF 8192
#define SMTP_QUIT_TIMEOUT_MS 2000
#define SMTP_CMD_MAX (2 * 512 + 64)

struct smtp_conn {
	int fd;
	SSL *ssl;
	const struct smtp_client_opts *o;
	char peer[300];
	unsigned caps;
	int64_t size_max;
	bool usable;
	char rbuf[SMTP_RBUF];
	size_t rpos, rend;
};

/* ---- replies ------------------------------------------------------------ */

/* "d.d{1,3}.d{1,3}" followed by a space or the end: RFC 3463's grammar. */
static size_t enh_code_len(const char *s, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 3; part++) {
		size_t start = i, maxd = part == 0 ? 1 : 3;

		while (i < len && isdigit((unsigned char)s[i]) && i - start < maxd)
			i++;
		if (i == start)
			return 0;
		if (part < 2) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

static void text_append(struct smtp_reply *r, const char *s, size_t n)
{
	size_t cur = strlen(r->text);
	size_t room = sizeof(r->text) - 1 - cur;

	if (cur && room) {
		r->text[cur++] = '\n';
		room--;
	}
	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		r->text[cur + i] = (char)(ch < 0x20 || ch == 0x7f ? ' ' : ch);
	}
	r->text[cur + n] = '\0';
}

int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
	int code;
	size_t e;

	if (r->done || r->nlines == 0) {
		memset(r, 0, sizeof(*r));
	}
	if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return SMTP_E_PROTO;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599)
		return SMTP_E_PROTO;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return SMTP_E_PROTO;
	if (r->nlines > 0 && code != r->code)
		return SMTP_E_PROTO;
	if (r->nlines >= SMTP_REPLY_LINES_MAX)
		return SMTP_E_PROTO;
	r->code = code;
	line += 3;
	len -= 3;
	bool last = len == 0 || line[0] == ' ';
	if (len) {
		line++;
		len--;
	}
	e = enh_code_len(line, len);
	if (e && line[0] == (char)('0' + code / 100) && e < sizeof(r->enh)) {
		if (!r->enh[0])
			(void)str_copyn(r->enh, sizeof(r->enh), line, e);
		line += e;
		len -= e;
		while (len && *line == ' ') {
			line++;
			len--;
		}
	}
	text_append(r, line, len);
	r->nlines++;
	if (last)
		r->done = true;
	return last ? 1 : 0;
}

void smtp_reply_set(struct smtp_reply *r, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	memset(r, 0, sizeof(*r));
	r->code = code;
	(void)str_copy(r->enh, sizeof(r->enh), enh ? enh : "");
	va_start(ap, fmt);
	(void)vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	r->nlines = 1;
	r->done = true;
}

const char *smtp_reply_format(const struct smtp_reply *r, char *buf, size_t len)
{
	size_t off = 0;
	int n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (r->code)
		n = snprintf(buf, len, "%d%s%s%s", r->code, r->enh[0] ? " " : "", r->enh,
			     r->text[0] ? " " : "");
	else
		n = snprintf(buf, len, "%s%s", r->enh, r->enh[0] && r->text[0] ? " " : "");
	if (n < 0 || (size_t)n >= len)
		return buf;
	off = (size_t)n;
	for (const char *t = r->text; *t && off + 1 < len; t++)
		buf[off++] = *t == '\n' ? ' ' : *t;
	buf[off] = '\0';
	return buf;
}

enum smtp_verdict smtp_reply_verdict(const struct smtp_reply *r)
{
	if (r->code >= 200 && r->code < 400)
		return SMTP_OK;
	if (r->code >= 500 && r->code < 600)
		return SMTP_PERMFAIL;
	return SMTP_TEMPFAIL;
}

unsigned smtp_ehlo_caps(const struct smtp_reply *r, int64_t *size_max)
{
	unsigned caps = 0;
	const char *line = strchr(r->text, '\n');

	*size_max = 0;
	while (line) {
		char kw[32];
		size_t n = 0;

		line++;
		while (line[n] && line[n] != ' ' && line[n] != '\n' && n < sizeof(kw) - 1) {
			kw[n] = (char)toupper((unsigned char)line[n]);
			n++;
		}
		kw[n] = '\0';
		if (strcmp(kw, "PIPELINING") == 0)
			caps |= SMTP_CAP_PIPELINING;
		else if (strcmp(kw, "8BITMIME") == 0)
			caps |= SMTP_CAP_8BITMIME;
		else if (strcmp(kw, "SMTPUTF8") == 0)
			caps |= SMTP_CAP_SMTPUTF8;
		else if (strcmp(kw, "STARTTLS") == 0)
			caps |= SMTP_CAP_STARTTLS;
		else if (strcmp(kw, "ENHANCEDSTATUSCODES") == 0)
			caps |= SMTP_CAP_ENHANCEDSTATUSCODES;
		else if (strcmp(kw, "SIZE") == 0) {
			char num[24];
			const char *v = line + n;
			size_t vn = 0;
			int64_t sz;

			caps |= SMTP_CAP_SIZE;
			while (*v == ' ')
				v++;
			while (v[vn] && v[vn] != '\n' && v[vn] != ' ')
				vn++;
			if (vn && str_copyn(num, sizeof(num), v, vn) == 0 &&
			    parse_int64(num, 0, INT64_MAX, &sz) == 0)
				*size_max = sz;
		}
		line = strchr(line, '\n');
	}
	return caps;
}

int smtp_dot_stuff(const void *data, size_t len, char **out, size_t *outlen)
{
	const char *in = data;
	size_t lines = 1, cap, o = 0;
	char *buf;
	bool bol = true;

	for (size_t i = 0; i < len; i++)
		if (in[i] == '\n' || in[i] == '\r')
			lines++;
	/* worst case: every line gains a dot and a CR or LF, plus the end */
	if (len > (SIZE_MAX - 16) / 2 - lines)
		return SMTP_E_NOMEM;
	cap = len + 2 * lines + 8;
	buf = malloc(cap);
	if (!buf)
		return SMTP_E_NOMEM;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '\r' || ch == '\n') {
			if (ch == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			buf[o++] = '\r';
			buf[o++] = '\n';
			bol = true;
			continue;
		}
		if (bol && ch == '.')
			buf[o++] = '.';
		buf[o++] = ch;
		bol = false;
	}
	if (!bol) {
		buf[o++] = '\r';
		buf[o++] = '\n';
	}
	memcpy(buf + o, ".\r\n", 3);
	o += 3;
	*out = buf;
	*outlen = o;
	return 0;
}

/* ---- TLS ---------------------------------------------------------------- */

int smtp_tls_ctx_new(struct ssl_ctx_st **out)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return SMTP_E_NOMEM;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	*out = ctx;
	return 0;
}

void smtp_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/* ---- I/O ---------------------------------------------------------------- */

static int wait_fd(int fd, short events, int64_t deadline_us)
{
	for (;;) {
		int64_t left = deadline_us - time_mono_us();
		struct pollfd p = {.fd = fd, .events = events};
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)((left + 999) / 1000));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int64_t deadline_in(int ms)
{
	return time_mono_us() + (int64_t)ms * 1000;
}

/* Waits for what OpenSSL asked for after an SSL_* call returned r. */
static int tls_wait(struct smtp_conn *c, int r, int64_t deadline)
{
	int e = SSL_get_error(c->ssl, r);

	if (e == SSL_ERROR_WANT_READ)
		return wait_fd(c->fd, POLLIN, deadline);
	if (e == SSL_ERROR_WANT_WRITE)
		return wait_fd(c->fd, POLLOUT, deadline);
	ERR_clear_error();
	return -EIO;
}

static int conn_write(struct smtp_conn *c, const char *buf, size_t len, int timeout_ms)
{
	int64_t deadline = deadline_in(timeout_ms);
	size_t off = 0;
	int rc;

	while (off < len) {
		size_t chunk = len - off > 65536 ? 65536 : len - off;

		if (c->ssl) {
			int r = SSL_write(c->ssl, buf + off, (int)chunk);

			if (r > 0) {
				off += (size_t)r;
				deadline = deadline_in(timeout_ms); /* progress */
				continue;
			}
			rc = tls_wait(c, r, deadline);
		} else {
			ssize_t r = send(c->fd, buf + off, chunk, MSG_NOSIGNAL);

			if (r > 0) {
				off += (size_t)r;
				deadline = deadline_in(timeout_ms);
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				rc = wait_fd(c->fd, POLLOUT, deadline);
			else
				rc = -EIO;
		}
		if (rc < 0) {
			c->usable = false;
			return rc;
		}
	}
	return 0;
}

static int conn_fill(struct smtp_conn *c, int64_t deadline)
{
	for (;;) {
		size_t room;
		int rc;

		if (c->rpos > 0) {
			memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
			c->rend -= c->rpos;
			c->rpos = 0;
		}
		room = sizeof(c->rbuf) - c->rend;
		if (room == 0)
			return -EMSGSIZE;
		if (c->ssl) {
			int r = SSL_read(c->ssl, c->rbuf + c->rend, (int)room);

			if (r > 0) {
				c->rend += (size_t)r;
				return 0;
			}
			rc = tls_wait(c, r, deadline);
		} else {
			ssize_t r = recv(c->fd, c->rbuf + c->rend, room, 0);

			if (r > 0) {
				c->rend += (size_t)r;
				return 0;
			}
			if (r == 0)
				return -ECONNRESET;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			rc = wait_fd(c->fd, POLLIN, deadline);
		}
		if (rc < 0)
			return rc;
	}
}

/* Reads one complete reply within timeout_ms. A line longer than
 * SMTP_LINE_MAX or a malformed one breaks the connection. */
static int conn_read_reply(struct smtp_conn *c, struct smtp_reply *r, int timeout_ms)
{
	int64_t deadline = deadline_in(timeout_ms);
	int rc;

	memset(r, 0, sizeof(*r));
	for (;;) {
		char *nl = memchr(c->rbuf + c->rpos, '\n', c->rend - c->rpos);

		if (!nl) {
			if (c->rend - c->rpos > SMTP_LINE_MAX) {
				rc = -EMSGSIZE;
				goto fail;
			}
			rc = conn_fill(c, deadline);
			if (rc < 0)
				goto fail;
			continue;
		}
		size_t len = (size_t)(nl - (c->rbuf + c->rpos));
		const char *line = c->rbuf + c->rpos;

		c->rpos += len + 1;
		if (len && line[len - 1] == '\r')
			len--;
		if (len > SMTP_LINE_MAX) {
			rc = -EMSGSIZE;
			goto fail;
		}
		rc = smtp_reply_feed(r, line, len);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			if (r->code == 421)
				c->usable = false;
			return 0;
		}
	}
fail:
	c->usable = false;
	if (rc == -ETIMEDOUT)
		smtp_reply_set(r, 0, "4.4.2", "conversation with %s timed out", c->peer);
	else if (rc == SMTP_E_PROTO || rc == -EMSGSIZE)
		smtp_reply_set(r, 0, "4.5.0", "malformed reply from %s", c->peer);
	else
		smtp_reply_set(r, 0, "4.4.2", "connection with %s lost: %s", c->peer,
			       strerror(-rc));
	return rc;
}

static int conn_cmd(struct smtp_conn *c, const char *cmd, struct smtp_reply *r, int timeout_ms)
{
	int rc = conn_write(c, cmd, strlen(cmd), timeout_ms);

	if (rc < 0) {
		smtp_reply_set(r, 0, "4.4.2", "lost connection with %s while sending", c->peer);
		return rc;
	}
	return conn_read_reply(c, r, timeout_ms);
}

/* ---- connection --------------------------------------------------------- */

static int tcp_connect(const struct sockaddr *addr, socklen_t addrlen, int timeout_ms, int *fdp)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc = 0, err = 0;
	socklen_t elen = sizeof(err);

	if (fd < 0)
		return -errno;
	if (connect(fd, addr, addrlen) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out;
		}
		rc = wait_fd(fd, POLLOUT, deadline_in(timeout_ms));
		if (rc < 0)
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			rc = -err;
			goto out;
		}
	}
	*fdp = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int conn_ehlo(struct smtp_conn *c, struct smtp_reply *r)
{
	char cmd[320];
	int rc;

	if (str_fmt(cmd, sizeof(cmd), "EHLO %s\r\n", c->o->helo_name) < 0)
		return SMTP_E_NEXTHOST;
	rc = conn_cmd(c, cmd, r, c->o->timeout_ms);
	if (rc < 0)
		return SMTP_E_NEXTHOST;
	if (r->code == 250) {
		c->caps = smtp_ehlo_caps(r, &c->size_max);
		return 0;
	}
	if (r->code >= 500 && r->code < 600) {
		(void)str_fmt(cmd, sizeof(cmd), "HELO %s\r\n", c->o->helo_name);
		rc = conn_cmd(c, cmd, r, c->o->timeout_ms);
		if (rc < 0)
			return SMTP_E_NEXTHOST;
		if (r->code == 250) {
			c->caps = 0;
			c->size_max = 0;
			return 0;
		}
	}
	return SMTP_E_NEXTHOST;
}

static int conn_starttls(struct smtp_conn *c, struct smtp_reply *why)
{
	struct smtp_reply r;
	int64_t deadline;
	int rc;

	rc = conn_cmd(c, "STARTTLS\r\n", &r, c->o->timeout_ms);
	if (rc < 0) {
		*why = r;
		return SMTP_E_NEXTHOST;
	}
	if (r.code != 220)
		return 0; /* refused: RFC 3207 lets us go on in the clear */
	if (c->rend != c->rpos) {
		/* data after 220 before the handshake: response injection */
		smtp_reply_set(why, 0, "4.7.0", "%s sent data after STARTTLS", c->peer);
		c->usable = false;
		return SMTP_E_NEXTHOST;
	}
	c->ssl = SSL_new(c->o->tls_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		goto tls_fail;
	if (strchr(c->peer, '[') != c->peer) {
		char sni[256];
		size_t n = strcspn(c->peer, "[:");

		if (str_copyn(sni, sizeof(sni), c->peer, n) == 0)
			(void)SSL_set_tlsext_host_name(c->ssl, sni);
	}
	deadline = deadline_in(c->o->timeout_ms);
	for (;;) {
		int r2 = SSL_connect(c->ssl);

		if (r2 == 1)
			break;
		if (tls_wait(c, r2, deadline) < 0)
			goto tls_fail;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	c->caps = 0;
	rc = conn_ehlo(c, why);
	if (rc < 0)
		return rc;
	return 0;
tls_fail:
	ERR_clear_error();
	c->usable = false;
	smtp_reply_set(why, 0, "4.7.5", "TLS handshake with %s failed", c->peer);
	return SMTP_E_TLS;
}

int smtp_conn_open(const struct sockaddr *addr, socklen_t addrlen, const char *name,
		   const struct smtp_client_opts *o, bool use_tls, struct smtp_conn **out,
		   struct smtp_reply *why)
{
	struct smtp_conn *c = calloc(1, sizeof(*c));
	char ip[INET6_ADDRSTRLEN + 2] = "?", port[8] = "?";
	int rc;

	if (!c) {
		smtp_reply_set(why, 0, "4.3.0", "out of memory");
		return SMTP_E_NOMEM;
	}
	c->fd = -1;
	c->o = o;
	(void)getnameinfo(addr, addrlen, ip, sizeof(ip), port, sizeof(port),
			  NI_NUMERICHOST | NI_NUMERICSERV);
	if (name && *name && strcmp(name, ip) != 0)
		(void)str_fmt(c->peer, sizeof(c->peer), "%s[%s]:%s", name, ip, port);
	else
		(void)str_fmt(c->peer, sizeof(c->peer), "[%s]:%s", ip, port);
	rc = tcp_connect(addr, addrlen, o->connect_timeout_ms, &c->fd);
	if (rc < 0) {
		smtp_reply_set(why, 0, "4.4.1", "connect to %s: %s", c->peer,
			       rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
		rc = SMTP_E_NEXTHOST;
		goto out;
	}
	c->usable = true;
	rc = conn_read_reply(c, why, o->connect_timeout_ms);
	if (rc < 0) {
		rc = SMTP_E_NEXTHOST;
		goto out;
	}
	if (why->code != 220) {
		rc = SMTP_E_NEXTHOST;
		goto out;
	}
	rc = conn_ehlo(c, why);
	if (rc < 0)
		goto out;
	if (use_tls && o->tls_ctx && (c->caps & SMTP_CAP_STARTTLS)) {
		rc = conn_starttls(c, why);
		if (rc < 0)
			goto out;
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	if (c)
		smtp_conn_close(c);
	return rc;
}

void smtp_conn_free(struct smtp_conn *c)
{
	if (!c)
		return;
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

void smtp_conn_close(struct smtp_conn *c)
{
	struct smtp_reply r;

	if (!c)
		return;
	if (c->usable && c->fd >= 0)
		(void)conn_cmd(c, "QUIT\r\n", &r, SMTP_QUIT_TIMEOUT_MS);
	if (c->ssl && c->usable)
		(void)SSL_shutdown(c->ssl);
	smtp_conn_free(c);
}

int smtp_conn_rset(struct smtp_conn *c)
{
	struct smtp_reply r;

	if (!c->usable)
		return SMTP_E_NEXTHOST;
	if (conn_cmd(c, "RSET\r\n", &r, c->o->timeout_ms) < 0 || r.code != 250) {
		c->usable = false;
		return SMTP_E_NEXTHOST;
	}
	return 0;
}

bool smtp_conn_usable(const struct smtp_conn *c)
{
	return c->usable;
}

const char *smtp_conn_peer(const struct smtp_conn *c)
{
	return c->peer;
}

unsigned smtp_conn_caps(const struct smtp_conn *c)
{
	return c->caps;
}

bool smtp_conn_tls(const struct smtp_conn *c)
{
	return c->ssl != NULL;
}

/* ---- transaction -------------------------------------------------------- */

static void results_all(struct smtp_rcpt_result *res, size_t n, enum smtp_verdict v,
			const struct smtp_reply *r)
{
	for (size_t i = 0; i < n; i++) {
		res[i].verdict = v;
		res[i].reply = *r;
	}
}

/* Appends to a growing command buffer (bounded by the recipient count). */
static int cmd_append(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 1 > *cap) {
		size_t ncap = (*cap ? *cap * 2 : 4096) + n;
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return SMTP_E_NOMEM;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
	return 0;
}

/* The failure of one step of the transaction before any recipient got an
 * answer: the connection decides whether the next host is worth a try. */
static int tx_io_failed(struct smtp_conn *c, const struct smtp_envelope *env,
			struct smtp_rcpt_result *res, const struct smtp_reply *r)
{
	c->usable = false;
	results_all(res, env->nrcpts, SMTP_TEMPFAIL, r);
	return SMTP_E_NEXTHOST;
}

static int mail_from_line(const struct smtp_conn *c, const struct smtp_envelope *env, char *line,
			  size_t len)
{
	char size[40] = "";

	if (c->caps & SMTP_CAP_SIZE)
		(void)str_fmt(size, sizeof(size), " SIZE=%lld", (long long)env->size);
	return str_fmt(line, len, "MAIL FROM:<%s>%s%s%s\r\n", env->sender, size,
		       ((env->flags & SMTP_ENV_8BITMIME) && (c->caps & SMTP_CAP_8BITMIME))
			   ? " BODY=8BITMIME"
			   : "",
		       (env->flags & SMTP_ENV_SMTPUTF8) ? " SMTPUTF8" : "");
}

int smtp_conn_send(struct smtp_conn *c, const struct smtp_envelope *env,
		   struct smtp_rcpt_result *res)
{
	bool pipelining = (c->caps & SMTP_CAP_PIPELINING) != 0;
	char *cmds = NULL, line[SMTP_CMD_MAX];
	size_t clen = 0, ccap = 0, accepted = 0;
	struct smtp_reply mail, data, r;
	int rc = 0;

	if (env->nrcpts == 0)
		goto out;
	if ((env->flags & SMTP_ENV_SMTPUTF8) && !(c->caps & SMTP_CAP_SMTPUTF8)) {
		smtp_reply_set(&r, 0, "5.6.7", "%s does not support SMTPUTF8", c->peer);
		results_all(res, env->nrcpts, SMTP_PERMFAIL, &r);
		goto out;
	}
	if ((c->caps & SMTP_CAP_SIZE) && c->size_max > 0 && env->size > c->size_max) {
		smtp_reply_set(&r, 0, "5.3.4", "message size %lld exceeds the limit of %s (%lld)",
			       (long long)env->size, c->peer, (long long)c->size_max);
		results_all(res, env->nrcpts, SMTP_PERMFAIL, &r);
		goto out;
	}
	if (mail_from_line(c, env, line, sizeof(line)) < 0) {
		smtp_reply_set(&r, 0, "5.1.7", "sender address too long");
		results_all(res, env->nrcpts, SMTP_PERMFAIL, &r);
		goto out;
	}
	if (cmd_append(&cmds, &clen, &ccap, line) < 0)
		goto nomem;
	if (!pipelining) {
		if (conn_cmd(c, cmds, &mail, c->o->timeout_ms) < 0) {
			rc = tx_io_failed(c, env, res, &mail);
			goto out;
		}
		if (mail.code != 250)
			goto mail_refused;
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (str_fmt(line, sizeof(line), "RCPT TO:<%s>\r\n", env->rcpts[i]) < 0) {
			/* cannot happen with store-sized addresses; refuse it */
			(void)str_copy(line, sizeof(line), "RCPT TO:<>\r\n");
		}
		if (pipelining) {
			if (cmd_append(&cmds, &clen, &ccap, line) < 0)
				goto nomem;
			continue;
		}
		if (conn_cmd(c, line, &res[i].reply, c->o->timeout_ms) < 0) {
			rc = tx_io_failed(c, env, res, &res[i].reply);
			goto out;
		}
		res[i].verdict = smtp_reply_verdict(&res[i].reply);
		if (res[i].verdict == SMTP_OK)
			accepted++;
		if (!c->usable) {
			/* 421: the server is closing; the rest must wait */
			for (size_t j = i + 1; j < env->nrcpts; j++) {
				res[j].verdict = SMTP_TEMPFAIL;
				res[j].reply = res[i].reply;
			}
			for (size_t j = 0; j <= i; j++)
				if (res[j].verdict == SMTP_OK) {
					res[j].verdict = SMTP_TEMPFAIL;
					res[j].reply = res[i].reply;
				}
			goto out;
		}
	}
	if (pipelining) {
		if (cmd_append(&cmds, &clen, &ccap, "DATA\r\n") < 0)
			goto nomem;
		if (conn_write(c, cmds, clen, c->o->timeout_ms) < 0) {
			smtp_reply_set(&r, 0, "4.4.2", "lost connection with %s while sending",
				       c->peer);
			rc = tx_io_failed(c, env, res, &r);
			goto out;
		}
		if (conn_read_reply(c, &mail, c->o->timeout_ms) < 0) {
			rc = tx_io_failed(c, env, res, &mail);
			goto out;
		}
		for (size_t i = 0; i < env->nrcpts; i++) {
			if (conn_read_reply(c, &res[i].reply, c->o->timeout_ms) < 0) {
				rc = tx_io_failed(c, env, res, &res[i].reply);
				goto out;
			}
			res[i].verdict = smtp_reply_verdict(&res[i].reply);
			if (res[i].verdict == SMTP_OK)
				accepted++;
		}
		if (conn_read_reply(c, &data, c->o->timeout_ms) < 0) {
			rc = tx_io_failed(c, env, res, &data);
			goto out;
		}
		if (mail.code != 250)
			goto mail_refused;
		if (accepted == 0) {
			if (data.code == 354) {
				/* a broken server: end the empty message, ignore it */
				if (conn_cmd(c, ".\r\n", &r, c->o->timeout_ms) < 0)
					c->usable = false;
			}
			goto out;
		}
	} else {
		if (accepted == 0)
			goto out;
		if (conn_cmd(c, "DATA\r\n", &data, c->o->timeout_ms) < 0) {
			rc = tx_io_failed(c, env, res, &data);
			goto out;
		}
	}
	if (data.code != 354) {
		/* DATA refused: every accepted recipient shares that answer */
		for (size_t i = 0; i < env->nrcpts; i++)
			if (res[i].verdict == SMTP_OK) {
				res[i].verdict = data.code >= 500 && data.code < 600
						     ? SMTP_PERMFAIL
						     : SMTP_TEMPFAIL;
				res[i].reply = data;
			}
		goto out;
	}
	if (conn_write(c, env->stuffed, env->stuffed_len, c->o->timeout_ms) < 0) {
		smtp_reply_set(&r, 0, "4.4.2", "lost connection with %s while sending the message",
			       c->peer);
		rc = tx_io_failed(c, env, res, &r);
		goto out;
	}
	/* From here on the server may have the message: an error is a
	 * deferral on this host, never a second try elsewhere. */
	(void)conn_read_reply(c, &r, c->o->timeout_ms);
	for (size_t i = 0; i < env->nrcpts; i++)
		if (res[i].verdict == SMTP_OK) {
			res[i].verdict = smtp_reply_verdict(&r);
			if (r.code >= 300 && r.code < 400)
				res[i].verdict = SMTP_TEMPFAIL;
			res[i].reply = r;
		}
	goto out;

mail_refused:
	if (mail.code >= 500 && mail.code < 600) {
		results_all(res, env->nrcpts, SMTP_PERMFAIL, &mail);
	} else {
		results_all(res, env->nrcpts, SMTP_TEMPFAIL, &mail);
		rc = SMTP_E_NEXTHOST;
	}
	goto out;
nomem:
	smtp_reply_set(&r, 0, "4.3.0", "out of memory");
	results_all(res, env->nrcpts, SMTP_TEMPFAIL, &r);
	rc = SMTP_E_NOMEM;
out:
	free(cmds);
	return rc;
}
