/* SPDX-License-Identifier: MIT */
/*
 * loadgen: an SMTP load generator for the benchmarks (bench/run) and the
 * fault tests.
 *
 *   loadgen -s HOST:PORT -c CONCURRENCY -n MESSAGES [-z BYTES] [-f FROM]
 *           [-r RCPT[,RCPT...]] [-t TAG] [-a ACK_LOG]
 *           [-m MESSAGES_PER_CONNECTION] [-T TOTAL_SECONDS] [-q]
 *
 * One thread per concurrent session, plain blocking sockets. Each thread
 * opens a session (EHLO), claims message numbers (SEQ, 1..MESSAGES) from a
 * shared counter and sends them one after the other on the same
 * connection: MAIL, RCPT..., DATA (in one write when the server advertises
 * PIPELINING, RFC 2920), then the dot-stuffed message (RFC 5321 4.5.2).
 * No RSET between messages; after -m messages it says QUIT and reconnects.
 *
 * Every message is ~BYTES long, carries "Message-ID: <TAG-SEQ@loadgen.test>"
 * and "X-Loadgen-Seq: SEQ", and a body of printable lines of at most 78
 * characters (some begin with a dot, to exercise the stuffing).
 *
 * Each SEQ is tried exactly once. A message is "acked" when the reply after
 * the final dot is 2xx; a 4xx/5xx at any step or a connection error counts
 * it as "failed" and the thread moves on, reconnecting with a short
 * back-off while the server is away (killed, restarting). Connecting never
 * consumes a SEQ: a thread claims one only on a live session. Everything
 * stops at the -T deadline (default 300 s).
 *
 * With -a, each acked message appends "TAG-SEQ QUEUEID\n" to ACK_LOG with
 * one write(2) on an O_APPEND descriptor (visible to readers at once; the
 * queue id is the last word of the 250 reply).
 *
 * Latency is measured per acked message from the write of MAIL to the
 * final reply after the dot. At the end one JSON line goes to stdout:
 *   {"sent":N,"acked":N,"failed":N,"seconds":S,"msgs_per_s":X,
 *    "p50_ms":X,"p99_ms":X,"concurrency":C,"size":Z}
 * msgs_per_s counts acked messages. Progress and errors go to stderr
 * unless -q.
 *
 * Exit status: 0 when every message was tried (whatever the replies), 1 when
 * the deadline stopped the run first, 2 on a usage or setup error.
 *
 * Only libc and pthreads; no mutable globals (the run's state is one
 * struct lg_run made in main() and handed to the threads).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_CONCURRENCY 5000
#define LG_MAX_MESSAGES 100000000L
#define LG_MAX_SIZE (100L * 1024 * 1024)
#define LG_MAX_RCPTS 100
#define LG_MAX_ADDR 254
#define LG_MAX_TAG 64
#define LG_LINE_MAX 78	       /* body line length, without CRLF */
#define LG_REPLY_LINE_MAX 1024 /* longer reply lines are truncated */
#define LG_INBUF 8192
#define LG_HDR_MAX 8192
#define LG_IO_TIMEOUT_S 60 /* per read/write on a session */
#define LG_BACKOFF_MIN_MS 50
#define LG_BACKOFF_MAX_MS 1000
#define LG_ERR_PRINT_MAX 100 /* error lines printed before going quiet */
#define LG_THREAD_STACK (256 * 1024)

struct lg_opts {
	char host[256];
	char port[16];
	long concurrency;
	long messages;
	long size;
	const char *from;
	char *rcpts[LG_MAX_RCPTS];
	int nrcpts;
	char tag[LG_MAX_TAG + 1];
	const char *ack_log;
	long per_conn;
	long total_seconds;
	bool quiet;
	uint32_t src_base;  /* -B: first IPv4 source address (host order), 0: any */
	uint32_t src_count; /* how many consecutive addresses to rotate through */
};

/* The state of one run, shared by every thread. */
struct lg_run {
	const struct lg_opts *opt;
	struct addrinfo *addrs;
	const char *body; /* wire form: dot-stuffed lines, each ending CRLF */
	size_t body_len;
	int ack_fd;
	double t_start;	    /* monotonic seconds */
	double deadline;    /* monotonic seconds */
	double *latency_ms; /* [seq - 1]; written only by the thread owning seq */
	atomic_long next_seq;
	atomic_long sent;
	atomic_long acked;
	atomic_long failed;
	atomic_long errors_printed;
	atomic_int threads_done;
	atomic_ulong next_src; /* -B rotation */
};

/* One session's connection with its bounded input buffer. */
struct lg_conn {
	int fd;
	size_t start, end;
	char in[LG_INBUF];
	bool pipelining;
	bool size_ext;
};

struct lg_worker {
	struct lg_run *run;
	pthread_t thread;
	struct lg_conn conn;
	char *cmd; /* MAIL + RCPTs + DATA */
	size_t cmd_cap;
	char hdr[LG_HDR_MAX];
	char last[LG_REPLY_LINE_MAX];
	double t_end; /* monotonic seconds when this thread finished */
};

enum lg_tx_result {
	TX_ACKED,
	TX_FAILED,    /* refused; the session is still usable */
	TX_CONN_LOST, /* the session is gone: reconnect */
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void lg_error(struct lg_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void lg_error(struct lg_run *run, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	long n;

	if (run->opt->quiet)
		return;
	n = atomic_fetch_add(&run->errors_printed, 1);
	if (n > LG_ERR_PRINT_MAX)
		return;
	if (n == LG_ERR_PRINT_MAX) {
		fprintf(stderr, "loadgen: further errors not shown\n");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "loadgen: %s\n", line);
}

/* ---- parsing the command line ------------------------------------------ */

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* "5120", "5k", "100K", "1M" -> bytes. */
static int parse_bytes(const char *s, long *out)
{
	char num[32];
	size_t len = strlen(s);
	long mult = 1, v;

	if (len == 0 || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len + 1);
	if (num[len - 1] == 'k' || num[len - 1] == 'K')
		mult = 1024;
	else if (num[len - 1] == 'm' || num[len - 1] == 'M')
		mult = 1024 * 1024;
	if (mult != 1)
		num[len - 1] = '\0';
	if (parse_long(num, 1, LG_MAX_SIZE / mult, &v) < 0)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

/* "host:port" or "[v6]:port". */
static int parse_server(const char *s, struct lg_opts *o)
{
	const char *colon, *host = s;
	size_t hostlen;
	long port;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		hostlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hostlen = (size_t)(colon - s);
	}
	if (hostlen == 0 || hostlen >= sizeof(o->host))
		return -EINVAL;
	if (parse_long(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	memcpy(o->host, host, hostlen);
	o->host[hostlen] = '\0';
	snprintf(o->port, sizeof(o->port), "%ld", port);
	return 0;
}

static bool addr_ok(const char *a)
{
	size_t len = strlen(a);

	if (len > LG_MAX_ADDR)
		return false;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || *a == '<' || *a == '>' || *a == 0x7f)
			return false;
	return true;
}

static bool tag_ok(const char *t)
{
	if (!*t || strlen(t) > LG_MAX_TAG)
		return false;
	for (; *t; t++) {
		char c = *t;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '+'))
			return false;
	}
	return true;
}

static int parse_rcpts(char *list, struct lg_opts *o)
{
	char *save = NULL, *r;

	o->nrcpts = 0;
	for (r = strtok_r(list, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
		if (o->nrcpts == LG_MAX_RCPTS || !*r || !addr_ok(r))
			return -EINVAL;
		o->rcpts[o->nrcpts++] = r;
	}
	return o->nrcpts ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen -s HOST:PORT -c CONCURRENCY -n MESSAGES [-z BYTES] [-f FROM]\n"
		   "               [-r RCPT[,RCPT...]] [-t TAG] [-a ACK_LOG]\n"
		   "               [-m MESSAGES_PER_CONNECTION] [-T TOTAL_SECONDS] [-q]\n"
		   "  -z  message size, e.g. 5120, 5k, 1M (default 5120)\n"
		   "  -f  envelope sender (default loadgen@loadgen.test)\n"
		   "  -r  recipients (default u@bench.test)\n"
		   "  -t  tag for Message-IDs <TAG-SEQ@loadgen.test> (default lg<time>-<pid>)\n"
		   "  -a  append \"TAG-SEQ QUEUEID\" per acked message to this file\n"
		   "  -m  messages per connection before QUIT and reconnect (default 100)\n"
		   "  -T  deadline for the whole run in seconds (default 300)\n"
		   "  -B  ADDR/COUNT: connect from COUNT IPv4 addresses starting at ADDR,\n"
		   "      a new one for every connection (e.g. 127.1.0.1/50000)\n"
		   "  -q  no progress or errors on stderr\n");
}

static int parse_args(int argc, char **argv, struct lg_opts *o)
{
	bool have_s = false, have_c = false, have_n = false;
	char *rcpts = NULL;
	int ch;

	memset(o, 0, sizeof(*o));
	o->size = 5120;
	o->from = "loadgen@loadgen.test";
	o->per_conn = 100;
	o->total_seconds = 300;
	while ((ch = getopt(argc, argv, "s:c:n:z:f:r:t:a:m:T:B:qh")) != -1) {
		switch (ch) {
		case 's':
			if (parse_server(optarg, o) < 0)
				goto bad;
			have_s = true;
			break;
		case 'c':
			if (parse_long(optarg, 1, LG_MAX_CONCURRENCY, &o->concurrency) < 0)
				goto bad;
			have_c = true;
			break;
		case 'n':
			if (parse_long(optarg, 1, LG_MAX_MESSAGES, &o->messages) < 0)
				goto bad;
			have_n = true;
			break;
		case 'z':
			if (parse_bytes(optarg, &o->size) < 0)
				goto bad;
			break;
		case 'f':
			if (!addr_ok(optarg))
				goto bad;
			o->from = optarg;
			break;
		case 'r':
			rcpts = optarg;
			break;
		case 't':
			if (!tag_ok(optarg))
				goto bad;
			memcpy(o->tag, optarg, strlen(optarg) + 1);
			break;
		case 'a':
			o->ack_log = optarg;
			break;
		case 'm':
			if (parse_long(optarg, 1, LG_MAX_MESSAGES, &o->per_conn) < 0)
				goto bad;
			break;
		case 'T':
			if (parse_long(optarg, 1, 30L * 86400, &o->total_seconds) < 0)
				goto bad;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'B': {
			char a[64], *slash = strchr(optarg, '/');
			struct in_addr in;
			long cnt;
			if (!slash || (size_t)(slash - optarg) >= sizeof(a))
				goto bad;
			memcpy(a, optarg, (size_t)(slash - optarg));
			a[slash - optarg] = '\0';
			if (inet_pton(AF_INET, a, &in) != 1 ||
			    parse_long(slash + 1, 1, 16777216, &cnt) < 0)
				goto bad;
			o->src_base = ntohl(in.s_addr);
			o->src_count = (uint32_t)cnt;
			break;
		}
		case 'h':
			usage(stdout);
			exit(0);
		default:
			goto usage;
		}
	}
	if (optind != argc || !have_s || !have_c || !have_n)
		goto usage;
	if (rcpts) {
		if (parse_rcpts(rcpts, o) < 0) {
			fprintf(stderr, "loadgen: bad recipient list (at most %d addresses)\n",
				LG_MAX_RCPTS);
			return -EINVAL;
		}
	} else {
		o->rcpts[0] = "u@bench.test";
		o->nrcpts = 1;
	}
	if (!o->tag[0])
		snprintf(o->tag, sizeof(o->tag), "lg%lx-%ld", (long)time(NULL), (long)getpid());
	return 0;
bad:
	fprintf(stderr, "loadgen: bad value for -%c: %s\n", ch, optarg);
	return -EINVAL;
usage:
	usage(stderr);
	return -EINVAL;
}

/* ---- the message --------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: deterministic filler, not for anything secret */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/*
 * The header block for one message, ending with the empty line. Returns its
 * length, or -1 if it does not fit.
 */
static int message_header(const struct lg_opts *o, long seq, char *buf, size_t cap)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);
	size_t len;
	int n, i;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	n = snprintf(buf, cap,
		     "From: <%s>\r\n"
		     "Subject: loadgen %s-%ld\r\n"
		     "Date: %s\r\n"
		     "Message-ID: <%s-%ld@loadgen.test>\r\n"
		     "X-Loadgen-Seq: %ld\r\n"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: text/plain; charset=us-ascii\r\n"
		     "To: <%s>",
		     o->from, o->tag, seq, date, o->tag, seq, seq, o->rcpts[0]);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	len = (size_t)n;
	for (i = 1; i < o->nrcpts; i++) {
		/* one address per folded line keeps every line short */
		n = snprintf(buf + len, cap - len, ",\r\n <%s>", o->rcpts[i]);
		if (n < 0 || (size_t)n >= cap - len)
			return -1;
		len += (size_t)n;
	}
	n = snprintf(buf + len, cap - len, "\r\n\r\n");
	if (n < 0 || (size_t)n >= cap - len)
		return -1;
	return (int)(len + (size_t)n);
}

/*
 * The body in wire form: printable lines of 1..LG_LINE_MAX characters, CRLF,
 * about `target` bytes. Every 13th line begins with a dot and every 97th is a
 * lone dot, both stuffed (RFC 5321 4.5.2), so servers that get unstuffing
 * wrong corrupt or truncate the message visibly.
 */
static char *make_body(size_t target, size_t *out_len)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789 .,;:-_!?()[]{}'\"/=+*&%$#@~^|`";
	size_t cap = target + 2 * (LG_LINE_MAX + 4), len = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	char *b = malloc(cap);
	long line = 0;

	if (!b)
		return NULL;
	do {
		size_t want, i;

		line++;
		want = 1 + (size_t)(rng_next(&rng) % LG_LINE_MAX);
		if (line % 97 == 0) {
			b[len++] = '.'; /* the line "." itself, stuffed */
			b[len++] = '.';
		} else {
			if (line % 13 == 0) {
				b[len++] = '.'; /* stuffing */
				b[len++] = '.';
				want--;
			}
			for (i = 0; i < want; i++) {
				char c = alphabet[rng_next(&rng) % (sizeof(alphabet) - 1)];

				/* no leading dot except where stuffed above, no trailing blank */
				if ((i == 0 && line % 13 != 0 && c == '.') ||
				    (i + 1 == want && c == ' '))
					c = 'x';
				b[len++] = c;
			}
		}
		b[len++] = '\r';
		b[len++] = '\n';
	} while (len < target);
	*out_len = len;
	return b;
}

/* ---- the connection ------------------------------------------------------ */

static void conn_close(struct lg_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->start = c->end = 0;
}

static void conn_set_timeout(struct lg_conn *c, double remaining)
{
	struct timeval tv;
	double t = remaining + 5;

	if (t > LG_IO_TIMEOUT_S)
		t = LG_IO_TIMEOUT_S;
	if (t < 1)
		t = 1;
	tv.tv_sec = (time_t)t;
	tv.tv_usec = 0;
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int conn_open(struct lg_run *run, struct lg_conn *c)
{
	const struct addrinfo *ai;
	int one = 1, err = ECONNREFUSED;

	for (ai = run->addrs; ai; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (c->fd < 0) {
			err = errno;
			continue;
		}
		conn_set_timeout(c, run->deadline - mono_now());
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (run->opt->src_count && ai->ai_family == AF_INET) {
			/* every connection from the next source address (-B) */
			struct sockaddr_in src = {.sin_family = AF_INET};
			unsigned long k = atomic_fetch_add(&run->next_src, 1);
			src.sin_addr.s_addr =
			    htonl(run->opt->src_base + (uint32_t)(k % run->opt->src_count));
			if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
				err = errno;
				conn_close(c);
				continue;
			}
		}
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->start = c->end = 0;
			return 0;
		}
		err = errno;
		conn_close(c);
	}
	return -err;
}

/* Writes all of iov; -errno on failure. */
static int conn_writev(struct lg_conn *c, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int conn_write(struct lg_conn *c, const char *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return conn_writev(c, &iov, 1);
}

/*
 * Reads one line (without CR LF) into out, truncating past outlen - 1
 * characters. 0, or -errno (-ECONNRESET on EOF, -ETIMEDOUT on timeout).
 */
static int conn_line(struct lg_conn *c, char *out, size_t outlen)
{
	size_t n = 0;

	for (;;) {
		while (c->start < c->end) {
			char ch = c->in[c->start++];

			if (ch == '\n') {
				if (n > 0 && out[n - 1] == '\r')
					n--;
				out[n] = '\0';
				return 0;
			}
			if (n + 1 < outlen)
				out[n++] = ch;
		}
		ssize_t r = recv(c->fd, c->in, sizeof(c->in), 0);

		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		c->start = 0;
		c->end = (size_t)r;
	}
}

/*
 * Reads one complete (possibly multi-line) reply. Returns its code
 * (200..599) with the last line in last, or -errno. With ehlo set, notes
 * the PIPELINING and SIZE extensions.
 */
static int conn_reply(struct lg_conn *c, char *last, size_t lastlen, bool ehlo)
{
	for (;;) {
		int r = conn_line(c, last, lastlen);
		int code;

		if (r < 0)
			return r;
		if (strlen(last) < 3 || last[0] < '2' || last[0] > '5' || last[1] < '0' ||
		    last[1] > '9' || last[2] < '0' || last[2] > '9' ||
		    (last[3] != '\0' && last[3] != ' ' && last[3] != '-'))
			return -EPROTO;
		code = (last[0] - '0') * 100 + (last[1] - '0') * 10 + (last[2] - '0');
		if (ehlo && last[3] != '\0') {
			const char *kw = last + 4;
			size_t kl = strcspn(kw, " ");

			if (kl == 10 && !strncasecmp(kw, "PIPELINING", 10))
				c->pipelining = true;
			else if (kl == 4 && !strncasecmp(kw, "SIZE", 4))
				c->size_ext = true;
		}
		if (last[3] != '-')
			return code;
	}
}

/* ---- one session ----------------------------------------------------------- */

static const char *err_str(int r)
{
	return r == -EPROTO ? "malformed reply" : strerror(-r);
}

/* Connects and says EHLO (HELO if EHLO is refused). 0 or -errno. */
static int session_open(struct lg_worker *w)
{
	struct lg_conn *c = &w->conn;
	int r;

	r = conn_open(w->run, c);
	if (r < 0)
		return r;
	c->pipelining = c->size_ext = false;
	r = conn_reply(c, w->last, sizeof(w->last), false);
	if (r < 0 || r / 100 != 2) {
		if (r > 0)
			lg_error(w->run, "greeting refused: %s", w->last);
		goto fail;
	}
	r = conn_write(c, "EHLO loadgen.test\r\n", 19);
	if (r == 0)
		r = conn_reply(c, w->last, sizeof(w->last), true);
	if (r > 0 && r / 100 != 2 && r != 421) {
		c->pipelining = c->size_ext = false;
		r = conn_write(c, "HELO loadgen.test\r\n", 19);
		if (r == 0)
			r = conn_reply(c, w->last, sizeof(w->last), false);
	}
	if (r < 0 || r / 100 != 2) {
		if (r > 0)
			lg_error(w->run, "EHLO refused: %s", w->last);
		goto fail;
	}
	return 0;
fail:
	conn_close(c);
	return r < 0 ? r : -ECONNREFUSED;
}

static void session_quit(struct lg_worker *w)
{
	if (conn_write(&w->conn, "QUIT\r\n", 6) == 0)
		(void)conn_reply(&w->conn, w->last, sizeof(w->last), false);
	conn_close(&w->conn);
}

/* MAIL, RCPT... and DATA as one buffer; 0 or -ENOMEM. */
static int build_envelope(struct lg_worker *w, size_t msg_len)
{
	const struct lg_opts *o = w->run->opt;
	size_t need = 64 + LG_MAX_ADDR + (size_t)o->nrcpts * (16 + LG_MAX_ADDR) + 8, len;
	int n, i;

	if (w->cmd_cap < need) {
		char *p = realloc(w->cmd, need);

		if (!p)
			return -ENOMEM;
		w->cmd = p;
		w->cmd_cap = need;
	}
	if (w->conn.size_ext)
		n = snprintf(w->cmd, w->cmd_cap, "MAIL FROM:<%s> SIZE=%zu\r\n", o->from, msg_len);
	else
		n = snprintf(w->cmd, w->cmd_cap, "MAIL FROM:<%s>\r\n", o->from);
	if (n < 0 || (size_t)n >= w->cmd_cap)
		return -ENOMEM;
	len = (size_t)n;
	for (i = 0; i < o->nrcpts; i++) {
		n = snprintf(w->cmd + len, w->cmd_cap - len, "RCPT TO:<%s>\r\n", o->rcpts[i]);
		if (n < 0 || (size_t)n >= w->cmd_cap - len)
			return -ENOMEM;
		len += (size_t)n;
	}
	n = snprintf(w->cmd + len, w->cmd_cap - len, "DATA\r\n");
	if (n < 0 || (size_t)n >= w->cmd_cap - len)
		return -ENOMEM;
	return (int)(len + (size_t)n);
}

/* Length of the command line starting at p, CRLF included. */
static size_t cmd_line_len(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? (size_t)(nl - p) + 1 : strlen(p);
}

static enum lg_tx_result tx_conn_lost(struct lg_worker *w, long seq, const char *step, int r)
{
	lg_error(w->run, "seq %ld: %s: %s", seq, step, err_str(r));
	conn_close(&w->conn);
	return TX_CONN_LOST;
}

/*
 * A refused step. 421 closes the session; otherwise RSET clears whatever
 * part of the transaction the server kept (this is the only RSET loadgen
 * sends).
 */
static enum lg_tx_result tx_refused(struct lg_worker *w, long seq, const char *step, int code,
				    bool need_rset)
{
	int r;

	lg_error(w->run, "seq %ld: %s: %s", seq, step, w->last);
	if (code == 421) {
		conn_close(&w->conn);
		return TX_CONN_LOST;
	}
	if (!need_rset)
		return TX_FAILED;
	r = conn_write(&w->conn, "RSET\r\n", 6);
	if (r == 0)
		r = conn_reply(&w->conn, w->last, sizeof(w->last), false);
	if (r < 0 || r / 100 != 2) {
		conn_close(&w->conn);
		return TX_CONN_LOST;
	}
	return TX_FAILED;
}

/* Sends message seq on the open session. On TX_ACKED, *lat_ms is set. */
static enum lg_tx_result tx_send(struct lg_worker *w, long seq, double *lat_ms)
{
	struct lg_run *run = w->run;
	const struct lg_opts *o = run->opt;
	struct lg_conn *c = &w->conn;
	int hlen, elen, r, i, rcpt_ok = 0;
	size_t off = 0;
	double t0;
	struct iovec iov[3];

	hlen = message_header(o, seq, w->hdr, sizeof(w->hdr));
	if (hlen < 0)
		return tx_conn_lost(w, seq, "header", -ENOMEM);
	elen = build_envelope(w, (size_t)hlen + run->body_len);
	if (elen < 0)
		return tx_conn_lost(w, seq, "envelope", elen);
	conn_set_timeout(c, run->deadline - mono_now());

	t0 = mono_now();
	if (c->pipelining) {
		/* RFC 2920: MAIL, RCPTs and DATA in one group, then their replies */
		r = conn_write(c, w->cmd, (size_t)elen);
		if (r < 0)
			return tx_conn_lost(w, seq, "MAIL", r);
		r = conn_reply(c, w->last, sizeof(w->last), false);
		if (r < 0)
			return tx_conn_lost(w, seq, "MAIL", r);
		bool mail_ok = r / 100 == 2;

		if (!mail_ok)
			lg_error(run, "seq %ld: MAIL: %s", seq, w->last);
		for (i = 0; i < o->nrcpts; i++) {
			r = conn_reply(c, w->last, sizeof(w->last), false);
			if (r < 0)
				return tx_conn_lost(w, seq, "RCPT", r);
			if (r / 100 == 2)
				rcpt_ok++;
			else if (mail_ok)
				lg_error(run, "seq %ld: RCPT: %s", seq, w->last);
		}
		r = conn_reply(c, w->last, sizeof(w->last), false);
		if (r < 0)
			return tx_conn_lost(w, seq, "DATA", r);
		if (r != 354)
			return tx_refused(w, seq, "DATA", r, mail_ok);
	} else {
		size_t len = cmd_line_len(w->cmd);

		r = conn_write(c, w->cmd, len);
		if (r == 0)
			r = conn_reply(c, w->last, sizeof(w->last), false);
		if (r < 0)
			return tx_conn_lost(w, seq, "MAIL", r);
		if (r / 100 != 2)
			return tx_refused(w, seq, "MAIL", r, false);
		off = len;
		for (i = 0; i < o->nrcpts; i++) {
			len = cmd_line_len(w->cmd + off);
			r = conn_write(c, w->cmd + off, len);
			if (r == 0)
				r = conn_reply(c, w->last, sizeof(w->last), false);
			if (r < 0)
				return tx_conn_lost(w, seq, "RCPT", r);
			if (r == 421)
				return tx_refused(w, seq, "RCPT", r, true);
			if (r / 100 == 2)
				rcpt_ok++;
			else
				lg_error(run, "seq %ld: RCPT: %s", seq, w->last);
			off += len;
		}
		if (rcpt_ok == 0)
			return tx_refused(w, seq, "RCPT", 550, true);
		r = conn_write(c, "DATA\r\n", 6);
		if (r == 0)
			r = conn_reply(c, w->last, sizeof(w->last), false);
		if (r < 0)
			return tx_conn_lost(w, seq, "DATA", r);
		if (r != 354)
			return tx_refused(w, seq, "DATA", r, true);
	}

	iov[0].iov_base = w->hdr;
	iov[0].iov_len = (size_t)hlen;
	iov[1].iov_base = (void *)run->body;
	iov[1].iov_len = run->body_len;
	iov[2].iov_base = (void *)".\r\n";
	iov[2].iov_len = 3;
	r = conn_writev(c, iov, 3);
	if (r < 0)
		return tx_conn_lost(w, seq, "message", r);
	r = conn_reply(c, w->last, sizeof(w->last), false);
	if (r < 0)
		return tx_conn_lost(w, seq, "end of data", r);
	if (r / 100 != 2)
		return tx_refused(w, seq, "end of data", r, false);
	*lat_ms = (mono_now() - t0) * 1000.0;
	return TX_ACKED;
}

/* Appends "TAG-SEQ QUEUEID\n" with a single write on the O_APPEND log. */
static void ack_log_write(struct lg_worker *w, long seq)
{
	struct lg_run *run = w->run;
	const char *qid = strrchr(w->last, ' ');
	char line[LG_MAX_TAG + 32 + LG_REPLY_LINE_MAX];
	int n;

	qid = qid ? qid + 1 : w->last;
	n = snprintf(line, sizeof(line), "%s-%ld %s\n", run->opt->tag, seq, qid);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (write(run->ack_fd, line, (size_t)n) != n)
		lg_error(run, "ack log: %s", strerror(errno));
}

static long claim_seq(struct lg_run *run)
{
	long seq = atomic_fetch_add(&run->next_seq, 1);

	return seq <= run->opt->messages ? seq : 0;
}

static bool seqs_left(struct lg_run *run)
{
	return atomic_load(&run->next_seq) <= run->opt->messages;
}

static void *worker_main(void *arg)
{
	struct lg_worker *w = arg;
	struct lg_run *run = w->run;
	long backoff = LG_BACKOFF_MIN_MS;

	while (seqs_left(run) && mono_now() < run->deadline) {
		int r = session_open(w);
		long k;

		if (r < 0) {
			double left_ms = (run->deadline - mono_now()) * 1000.0;

			if (r != -ECONNREFUSED)
				lg_error(run, "connect: %s", err_str(r));
			sleep_ms(left_ms < backoff ? (long)left_ms + 1 : backoff);
			backoff = backoff * 2 > LG_BACKOFF_MAX_MS ? LG_BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		backoff = LG_BACKOFF_MIN_MS;
		for (k = 0; k < run->opt->per_conn && w->conn.fd >= 0; k++) {
			double lat = 0;
			long seq;

			if (mono_now() >= run->deadline)
				break;
			seq = claim_seq(run);
			if (!seq)
				break;
			atomic_fetch_add(&run->sent, 1);
			switch (tx_send(w, seq, &lat)) {
			case TX_ACKED:
				run->latency_ms[seq - 1] = lat;
				atomic_fetch_add(&run->acked, 1);
				if (run->ack_fd >= 0)
					ack_log_write(w, seq);
				break;
			case TX_FAILED:
			case TX_CONN_LOST:
				atomic_fetch_add(&run->failed, 1);
				break;
			}
		}
		if (w->conn.fd >= 0)
			session_quit(w);
	}
	w->t_end = mono_now();
	atomic_fetch_add(&run->threads_done, 1);
	return NULL;
}

/* ---- results ----------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void print_result(struct lg_run *run, double seconds)
{
	const struct lg_opts *o = run->opt;
	long acked = atomic_load(&run->acked);
	size_t n = 0;
	long i;

	/* compact the acked latencies (failed ones were never written: < 0) */
	for (i = 0; i < o->messages; i++)
		if (run->latency_ms[i] >= 0)
			run->latency_ms[n++] = run->latency_ms[i];
	qsort(run->latency_ms, n, sizeof(double), cmp_double);
	printf("{\"sent\":%ld,\"acked\":%ld,\"failed\":%ld,\"seconds\":%.3f,\"msgs_per_s\":%.1f,"
	       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"concurrency\":%ld,\"size\":%ld}\n",
	       atomic_load(&run->sent), acked, atomic_load(&run->failed), seconds,
	       seconds > 0 ? (double)acked / seconds : 0.0, percentile(run->latency_ms, n, 50),
	       percentile(run->latency_ms, n, 99), o->concurrency, o->size);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct lg_opts opt;
	struct lg_run run;
	struct lg_worker *workers = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	pthread_attr_t attr;
	char *body = NULL;
	long i, started = 0;
	double next_progress, t_end;
	int r, rc = 2;

	if (parse_args(argc, argv, &opt) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	memset(&run, 0, sizeof(run));
	run.opt = &opt;
	run.ack_fd = -1;
	atomic_init(&run.next_seq, 1);

	r = getaddrinfo(opt.host, opt.port, &hints, &run.addrs);
	if (r != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", opt.host, gai_strerror(r));
		return 2;
	}
	if (opt.ack_log) {
		run.ack_fd = open(opt.ack_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (run.ack_fd < 0) {
			fprintf(stderr, "loadgen: %s: %s\n", opt.ack_log, strerror(errno));
			goto out;
		}
	}
	{
		/* aim the whole message (header + body) at -z bytes */
		char sample[LG_HDR_MAX];
		int hlen = message_header(&opt, opt.messages, sample, sizeof(sample));
		size_t target;

		if (hlen < 0) {
			fprintf(stderr, "loadgen: header too long\n");
			goto out;
		}
		target = (size_t)opt.size > (size_t)hlen ? (size_t)opt.size - (size_t)hlen : 1;
		body = make_body(target, &run.body_len);
		run.body = body;
	}
	run.latency_ms = malloc(sizeof(double) * (size_t)opt.messages);
	workers = calloc((size_t)opt.concurrency, sizeof(*workers));
	if (!body || !run.latency_ms || !workers) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto out;
	}
	for (i = 0; i < opt.messages; i++)
		run.latency_ms[i] = -1;

	run.t_start = mono_now();
	run.deadline = run.t_start + (double)opt.total_seconds;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, LG_THREAD_STACK);
	for (i = 0; i < opt.concurrency; i++) {
		workers[i].run = &run;
		workers[i].conn.fd = -1;
		r = pthread_create(&workers[i].thread, &attr, worker_main, &workers[i]);
		if (r != 0) {
			fprintf(stderr, "loadgen: thread %ld: %s\n", i, strerror(r));
			break;
		}
		started++;
	}
	pthread_attr_destroy(&attr);

	next_progress = run.t_start + 5;
	while (atomic_load(&run.threads_done) < started) {
		sleep_ms(20);
		if (!opt.quiet && mono_now() >= next_progress) {
			fprintf(stderr, "loadgen: %.0fs sent=%ld acked=%ld failed=%ld\n",
				mono_now() - run.t_start, atomic_load(&run.sent),
				atomic_load(&run.acked), atomic_load(&run.failed));
			next_progress += 5;
		}
	}
	t_end = run.t_start;
	for (i = 0; i < started; i++) {
		pthread_join(workers[i].thread, NULL);
		if (workers[i].t_end > t_end)
			t_end = workers[i].t_end;
	}
	print_result(&run, t_end - run.t_start);
	rc = started == opt.concurrency && atomic_load(&run.sent) == opt.messages ? 0 : 1;
out:
	if (workers)
		for (i = 0; i < opt.concurrency; i++)
			free(workers[i].cmd);
	free(workers);
	free(run.latency_ms);
	free(body);
	if (run.ack_fd >= 0)
		close(run.ack_fd);
	freeaddrinfo(run.addrs);
	return rc;
}
