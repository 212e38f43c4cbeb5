/* SPDX-License-Identifier: MIT */
#include "scan/av_clamd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/log.h"

#define CLAMD_CHUNK (64 * 1024)
#define CLAMD_REPLY_MAX 1024 /* a longer reply is garbage */
/* clamd closes a session idle for IdleTimeout (default 30 s): reconnect
 * before that rather than find out by a failed write. */
#define CLAMD_IDLE_US (20 * 1000000LL)
#define CLAMD_SESSION_MAX 1000 /* requests per session */
#define CLAMD_MAX_HITS 16
#define CLAMD_ADDR_LEN 4096

struct av_clamd {
	char addr[CLAMD_ADDR_LEN];
	int64_t timeout_ms;
	uint64_t max_stream;
	struct metrics *metrics;
	int fd;		 /* -1: not connected */
	unsigned id;	 /* requests sent on this session */
	int64_t used_us; /* last use of the session */
};

struct av_clamd *av_clamd_new(const char *addr, int64_t timeout_ms, uint64_t max_stream,
			      struct metrics *metrics)
{
	struct av_clamd *c;

	if (!addr || !addr[0])
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (str_copy(c->addr, sizeof(c->addr), addr) < 0) {
		free(c);
		return NULL;
	}
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	c->max_stream = max_stream;
	c->metrics = metrics;
	c->fd = -1;
	return c;
}

static void conn_close(struct av_clamd *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->id = 0;
}

void av_clamd_free(struct av_clamd *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		/* best effort: tell clamd the session ends */
		(void)send(c->fd, "zEND", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	conn_close(c);
	free(c);
}

/* Milliseconds to wait now: the smaller of the time-out and the deadline. */
static int wait_ms(int64_t timeout_ms, int64_t deadline_us)
{
	int64_t ms = timeout_ms;

	if (deadline_us > 0) {
		int64_t left = (deadline_us - time_mono_us()) / 1000;
		if (left < ms)
			ms = left;
	}
	return ms < 0 ? 0 : (int)ms;
}

static int wait_fd(int fd, short events, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int r;

	do
		r = poll(&pfd, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* Non-blocking connect with a time-out; returns the socket or -errno. */
static int connect_to(const char *addr, int64_t timeout_ms, int64_t deadline_us, char *why,
		      size_t whylen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd = -1, rc, err = 0;
	socklen_t errlen = sizeof(err);

	memset(&ss, 0, sizeof(ss));
	if (addr[0] == '/') {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		un->sun_family = AF_UNIX;
		if (str_copy(un->sun_path, sizeof(un->sun_path), addr) < 0) {
			(void)str_fmt(why, whylen, "socket path too long");
			return -ENAMETOOLONG;
		}
		sslen = sizeof(*un);
	} else {
		char host[256], port[8];
		uint16_t p;
		struct addrinfo hints = {0}, *ai = NULL;
		if (parse_hostport(addr, host, sizeof(host), &p) < 0) {
			(void)str_fmt(why, whylen, "bad clamd address");
			return -EINVAL;
		}
		(void)str_fmt(port, sizeof(port), "%u", p);
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
			(void)str_fmt(why, whylen, "clamd address %s: %s", host, gai_strerror(rc));
			return -EHOSTUNREACH;
		}
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		sslen = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			rc = -errno;
			goto out;
		}
		if ((rc = wait_fd(fd, POLLOUT, wait_ms(timeout_ms, deadline_us))) < 0)
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
			err = errno;
		if (err) {
			rc = -err;
			goto out;
		}
	}
	return fd;
out:
	(void)str_fmt(why, whylen, "cannot connect to clamd at %s: %s", addr, strerror(-rc));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Writes everything or fails (-ETIMEDOUT, -EPIPE, ...). */
static int write_all(int fd, const void *buf, size_t len, int64_t timeout_ms, int64_t deadline_us)
{
	const char *p = buf;
	int rc;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if ((rc = wait_fd(fd, POLLOUT, wait_ms(timeout_ms, deadline_us))) < 0)
			return rc;
	}
	return 0;
}

/* Reads one NUL-terminated reply into buf (terminated). Returns its length,
 * -ECONNRESET for EOF before any byte, -EPROTO for EOF inside a reply or
 * a reply too long, -ETIMEDOUT. *got tells whether any byte came. */
static int read_reply(int fd, char *buf, size_t cap, int64_t timeout_ms, int64_t deadline_us,
		      size_t *got)
{
	size_t len = 0;
	int rc;

	*got = 0;
	for (;;) {
		ssize_t n;
		char *nul;

		if ((rc = wait_fd(fd, POLLIN, wait_ms(timeout_ms, deadline_us))) < 0)
			return rc;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return len ? -EPROTO : -ECONNRESET;
		len += (size_t)n;
		*got = len;
		buf[len] = '\0';
		nul = memchr(buf, '\0', len);
		if (nul) {
			if ((size_t)(nul - buf) + 1 != len)
				return -EPROTO; /* bytes after the reply: not ours to guess */
			return (int)(nul - buf);
		}
		if (len == cap - 1)
			return -EPROTO;
	}
}

static bool name_char_ok(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f;
}

int av_clamd_reply_parse(const char *reply, size_t len, unsigned expect_id, char *name,
			 size_t namelen)
{
	static const char stream[] = "stream: ";
	static const char limit[] = "INSTREAM size limit exceeded. ERROR";
	const char *p = reply, *end = reply + len;

	if (memchr(reply, '\0', len))
		return -EPROTO;
	if (expect_id) {
		unsigned id = 0;
		const char *d = p;
		while (p < end && *p >= '0' && *p <= '9' && p - d < 10)
			id = id * 10 + (unsigned)(*p++ - '0');
		if (p == d || id != expect_id || end - p < 2 || p[0] != ':' || p[1] != ' ')
			return -EPROTO;
		p += 2;
	}
	len = (size_t)(end - p);
	if (len == sizeof(limit) - 1 && !memcmp(p, limit, len))
		return -EFBIG;
	if (len > 6 && !memcmp(end - 6, " ERROR", 6))
		return -EIO;
	if (len < sizeof(stream) - 1 || memcmp(p, stream, sizeof(stream) - 1))
		return -EPROTO;
	p += sizeof(stream) - 1;
	len = (size_t)(end - p);
	if (len == 2 && !memcmp(p, "OK", 2))
		return 0;
	if (len > 6 && !memcmp(end - 6, " FOUND", 6)) {
		size_t n = len - 6;
		for (size_t i = 0; i < n; i++)
			if (!name_char_ok((unsigned char)p[i]))
				return -EPROTO;
		if (namelen) {
			if (n >= namelen)
				n = namelen - 1;
			memcpy(name, p, n);
			name[n] = '\0';
		}
		return AV_CLAMD_FOUND;
	}
	return -EPROTO;
}

static int session_open(struct av_clamd *c, int64_t deadline_us, char *why, size_t whylen)
{
	int fd, rc;

	fd = connect_to(c->addr, c->timeout_ms, deadline_us, why, whylen);
	if (fd < 0)
		return fd;
	c->fd = fd;
	c->id = 0;
	rc = write_all(fd, "zIDSESSION", 11, c->timeout_ms, deadline_us);
	if (rc < 0) {
		(void)str_fmt(why, whylen, "clamd IDSESSION: %s", strerror(-rc));
		conn_close(c);
	}
	return rc;
}

/* One INSTREAM request on the open session. */
static int instream(struct av_clamd *c, const void *data, size_t len, int64_t deadline_us,
		    char *name, size_t namelen, size_t *got)
{
	char reply[CLAMD_REPLY_MAX];
	const char *p = data;
	uint32_t zero = 0;
	int rc, n;

	*got = 0;
	c->id++;
	if ((rc = write_all(c->fd, "zINSTREAM", 10, c->timeout_ms, deadline_us)) < 0)
		goto err;
	while (len) {
		size_t k = len > CLAMD_CHUNK ? CLAMD_CHUNK : len;
		uint32_t be = htonl((uint32_t)k);
		if ((rc = write_all(c->fd, &be, 4, c->timeout_ms, deadline_us)) < 0 ||
		    (rc = write_all(c->fd, p, k, c->timeout_ms, deadline_us)) < 0)
			goto err;
		p += k;
		len -= k;
	}
	if ((rc = write_all(c->fd, &zero, 4, c->timeout_ms, deadline_us)) < 0)
		goto err;
	n = read_reply(c->fd, reply, sizeof(reply), c->timeout_ms, deadline_us, got);
	if (n < 0)
		return n;
	return av_clamd_reply_parse(reply, (size_t)n, c->id, name, namelen);
err:
	if (rc == -EPIPE || rc == -ECONNRESET) {
		/* clamd may have said why before closing (a size limit) */
		n = read_reply(c->fd, reply, sizeof(reply), 0, 0, got);
		if (n > 0)
			return av_clamd_reply_parse(reply, (size_t)n, c->id, name, namelen);
		*got = 0;
	}
	return rc;
}

static void describe(int rc, const char *addr, char *why, size_t whylen)
{
	switch (rc) {
	case -ETIMEDOUT:
		(void)str_fmt(why, whylen, "clamd at %s did not answer in time", addr);
		break;
	case -EPROTO:
		(void)str_fmt(why, whylen, "clamd at %s sent an unexpected reply", addr);
		break;
	case -EIO:
		(void)str_fmt(why, whylen, "clamd at %s answered ERROR", addr);
		break;
	case -EFBIG:
		(void)str_fmt(why, whylen,
			      "clamd at %s refused the stream as too large: its StreamMaxLength "
			      "is below av.clamd_max_stream; lower av.clamd_max_stream",
			      addr);
		break;
	default:
		(void)str_fmt(why, whylen, "clamd at %s: %s", addr, strerror(-rc));
		break;
	}
}

int av_clamd_scan(struct av_clamd *c, const void *data, size_t len, int64_t deadline_us, char *name,
		  size_t namelen, char *why, size_t whylen)
{
	int64_t now = time_mono_us();
	size_t got = 0;
	bool reused;
	int rc;

	if ((uint64_t)len > c->max_stream) {
		(void)str_fmt(why, whylen, "%zu bytes is over av.clamd_max_stream", len);
		return -EFBIG;
	}
	if (c->fd >= 0 && (now - c->used_us > CLAMD_IDLE_US || c->id >= CLAMD_SESSION_MAX))
		conn_close(c);
	reused = c->fd >= 0;
	if (!reused && (rc = session_open(c, deadline_us, why, whylen)) < 0)
		goto fail;
	rc = instream(c, data, len, deadline_us, name, namelen, &got);
	if (rc < 0 && reused && !got && (rc == -ECONNRESET || rc == -EPIPE)) {
		/* the session died while idle: once more on a new one */
		conn_close(c);
		if ((rc = session_open(c, deadline_us, why, whylen)) < 0)
			goto fail;
		rc = instream(c, data, len, deadline_us, name, namelen, &got);
	}
	if (rc < 0) {
		conn_close(c);
		describe(rc, c->addr, why, whylen);
		goto fail;
	}
	c->used_us = time_mono_us();
	metrics_add(c->metrics, M_AV_CLAMD_SCANS, 1);
	if (rc == AV_CLAMD_FOUND)
		metrics_add(c->metrics, M_AV_CLAMD_FOUND, 1);
	return rc;
fail:
	metrics_add(c->metrics, rc == -ETIMEDOUT ? M_AV_CLAMD_TIMEOUTS : M_AV_CLAMD_ERRORS, 1);
	return rc;
}

int av_clamd_ping(const char *addr, int64_t timeout_ms, char *why, size_t whylen)
{
	char reply[64];
	size_t got;
	int fd, n, rc;

	fd = connect_to(addr, timeout_ms, 0, why, whylen);
	if (fd < 0)
		return fd;
	rc = write_all(fd, "zPING", 6, timeout_ms, 0);
	if (rc == 0) {
		n = read_reply(fd, reply, sizeof(reply), timeout_ms, 0, &got);
		rc = n < 0 ? n : (n == 4 && !memcmp(reply, "PONG", 4)) ? 0 : -EPROTO;
	}
	if (rc < 0)
		describe(rc, addr, why, whylen);
	close(fd);
	return rc;
}

/* ---- the message ----------------------------------------------------------- */

struct clamd_hit {
	char name[AV_CLAMD_NAME_LEN];
	const struct mime_part *part;
};

static bool inside(const char *p, const char *raw, size_t len)
{
	return p >= raw && p < raw + len;
}

/* Nesting of a part, for reporting the most specific place first. */
static unsigned nesting(const struct mime_part *p)
{
	return p ? p->depth + 2 * p->archive_depth + 1 : 0;
}

int av_clamd_scan_msg(struct av_clamd *c, const char *raw, size_t len, const struct mime_msg *m,
		      int64_t deadline_us, av_clamd_cb cb, void *arg, char *why, size_t whylen)
{
	size_t nparts = m ? mime_msg_nparts(m) : 0, nseen = 0, nhits = 0;
	unsigned char(*seen)[32] = NULL;
	struct clamd_hit hits[CLAMD_MAX_HITS];
	int rc = 0;

	seen = malloc((nparts + 1) * sizeof(*seen));
	if (!seen) {
		(void)str_fmt(why, whylen, "out of memory");
		return -ENOMEM;
	}
	/* i == nparts stands for the raw message, scanned first */
	for (size_t i = nparts + 1; i-- > 0;) {
		const struct mime_part *p = i < nparts ? mime_msg_part(m, i) : NULL;
		const char *buf = p ? p->decoded.ptr : raw;
		size_t blen = p ? p->decoded.len : len;
		unsigned char md[32];
		unsigned mdlen = 0;
		char name[AV_CLAMD_NAME_LEN];
		bool dup = false;

		if (p && (p->kind != MIME_KIND_LEAF || !blen || inside(buf, raw, len)))
			continue;
		if (!EVP_Digest(buf, blen, md, &mdlen, EVP_sha256(), NULL)) {
			rc = -ENOMEM;
			(void)str_fmt(why, whylen, "SHA-256 failed");
			break;
		}
		for (size_t k = 0; k < nseen && !dup; k++)
			dup = !memcmp(seen[k], md, 32);
		if (dup)
			continue;
		memcpy(seen[nseen++], md, 32);
		if ((uint64_t)blen > c->max_stream) {
			metrics_add(c->metrics, M_AV_CLAMD_SKIPPED, 1);
			cb(arg, AV_CLAMD_EV_SKIPPED, NULL, p);
			continue;
		}
		rc = av_clamd_scan(c, buf, blen, deadline_us, name, sizeof(name), why, whylen);
		if (rc < 0)
			break;
		if (rc == AV_CLAMD_FOUND && nhits < CLAMD_MAX_HITS) {
			(void)str_copy(hits[nhits].name, sizeof(hits[nhits].name), name);
			hits[nhits++].part = p;
		}
		rc = 0;
	}
	free(seen);
	/* the most deeply nested place first: it names where the threat is */
	for (size_t a = 1; a < nhits; a++)
		for (size_t b = a; b > 0 && nesting(hits[b].part) > nesting(hits[b - 1].part);
		     b--) {
			struct clamd_hit t = hits[b];
			hits[b] = hits[b - 1];
			hits[b - 1] = t;
		}
	for (size_t k = 0; k < nhits; k++)
		cb(arg, AV_CLAMD_EV_FOUND, hits[k].name, hits[k].part);
	return rc < 0 ? rc : (int)nhits;
}

/* ---- the pipeline check ---------------------------------------------------- */

struct clamd_check {
	const struct config *cfg;
	struct metrics *metrics;
	struct av_clamd *c;
};

struct clamd_run {
	struct scan_ctx *ctx;
	const char *qid;
};

static void on_event(void *arg, enum av_clamd_event ev, const char *name,
		     const struct mime_part *part)
{
	struct clamd_run *r = arg;
	char sig[AV_CLAMD_NAME_LEN], path[160], sym[SCAN_NAME_LEN], q[200];

	if (part && part->path.len)
		str_token_copy(path, sizeof(path), part->path.ptr, part->path.len);
	else
		(void)str_copy(path, sizeof(path), "message");
	if (ev == AV_CLAMD_EV_SKIPPED) {
		scan_ctx_symbol(r->ctx, "AV_CLAMD_SKIPPED", 0,
				"%s: %zu bytes over "
				"av.clamd_max_stream",
				path, part ? part->decoded.len : 0);
		log_warn("av_skipped",
			 "qid=%s engine=clamd path=%s reason=\"over "
			 "av.clamd_max_stream\"",
			 r->qid, log_quote(q, sizeof(q), path));
		return;
	}
	str_token_copy(sig, sizeof(sig), name, strlen(name));
	(void)str_fmt(sym, sizeof(sym), "AV_CLAMD:%s", sig);
	scan_ctx_symbol(r->ctx, sym, 100, "%s", path);
	scan_ctx_reject(r->ctx, "554 5.7.0 Virus found: %s (in %s)", sig, path);
	log_info("av_found", "qid=%s engine=clamd name=%s path=%s", r->qid, sig,
		 log_quote(q, sizeof(q), path));
}

static int clamd_thread_init(const struct config *cfg, struct metrics *m, void **state, char *err,
			     size_t errlen)
{
	struct clamd_check *s;

	*state = NULL;
	if (!cfg->av.clamd[0])
		return 0; /* engine 1 off */
	s = calloc(1, sizeof(*s));
	if (!s || !(s->c = av_clamd_new(cfg->av.clamd, cfg->av.clamd_timeout,
					(uint64_t)cfg->av.clamd_max_stream, m))) {
		free(s);
		(void)str_copy(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cfg = cfg;
	s->metrics = m;
	*state = s;
	return 0;
}

static void clamd_thread_free(void *state)
{
	struct clamd_check *s = state;

	if (!s)
		return;
	av_clamd_free(s->c);
	free(s);
}

static void clamd_run(void *state, struct scan_ctx *ctx)
{
	struct clamd_check *s = state;
	const struct scan_request *req = scan_ctx_request(ctx);
	struct clamd_run r = {.ctx = ctx, .qid = req->qid ? req->qid : "-"};
	char why[512], q[600];
	int64_t deadline_us;
	bool was_refused;
	int rc;

	if (!s)
		return;
	was_refused = scan_ctx_refused(ctx);
	deadline_us = time_mono_us() + scan_ctx_time_left(ctx) * 1000;
	rc = av_clamd_scan_msg(s->c, req->data, req->len, scan_ctx_mime(ctx), deadline_us, on_event,
			       &r, why, sizeof(why));
	if (rc > 0 && !was_refused)
		metrics_add(s->metrics, M_AV_REJECTS, 1);
	if (rc >= 0)
		return;
	if (!strcmp(s->cfg->av.on_failure, "pass")) {
		scan_ctx_symbol(ctx, "AV_CLAMD_FAIL", 0, "%s", why);
		metrics_add(s->metrics, M_AV_FAILURES_PASSED, 1);
		log_warn("av_fail", "qid=%s engine=clamd action=pass reason=%s", r.qid,
			 log_quote(q, sizeof(q), why));
		return;
	}
	scan_ctx_tempfail(ctx, "451 4.7.0 Virus scanner not available, try again later");
	if (!was_refused)
		metrics_add(s->metrics, M_AV_TEMPFAILS, 1);
	log_warn("av_fail", "qid=%s engine=clamd action=tempfail reason=%s", r.qid,
		 log_quote(q, sizeof(q), why));
}

const struct scan_check scan_check_av_clamd = {
    .name = "av_clamd",
    .thread_init = clamd_thread_init,
    .thread_free = clamd_thread_free,
    .run = clamd_run,
};
