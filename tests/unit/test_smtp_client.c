/* SPDX-License-Identifier: MIT */
/*
 * smtp_client: reply parsing, EHLO capabilities, dot-stuffing, and real
 * transactions against Postfix's smtp-sink started on a loopback port.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/smtp_client.h"

#define SINK "/usr/sbin/smtp-sink"

static int feed(struct smtp_reply *r, const char *line)
{
	return smtp_reply_feed(r, line, strlen(line));
}

static void test_reply_single(void **state)
{
	struct smtp_reply r;
	char buf[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250 2.1.0 Ok"), 1);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.enh, "2.1.0");
	assert_string_equal(r.text, "Ok");
	assert_int_equal(smtp_reply_verdict(&r), SMTP_OK);
	assert_string_equal(smtp_reply_format(&r, buf, sizeof(buf)), "250 2.1.0 Ok");

	/* a new reply after a complete one starts afresh */
	assert_int_equal(feed(&r, "550 5.1.1 <x@y>: Recipient address rejected"), 1);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enh, "5.1.1");
	assert_int_equal(smtp_reply_verdict(&r), SMTP_PERMFAIL);

	/* no enhanced code, and a code alone */
	assert_int_equal(feed(&r, "451 try later"), 1);
	assert_string_equal(r.enh, "");
	assert_string_equal(r.text, "try later");
	assert_int_equal(smtp_reply_verdict(&r), SMTP_TEMPFAIL);
	assert_int_equal(feed(&r, "354"), 1);
	assert_int_equal(r.code, 354);
	assert_int_equal(smtp_reply_verdict(&r), SMTP_OK);

	/* an enhanced code of the wrong class is text, not a status */
	assert_int_equal(feed(&r, "550 4.1.1 odd"), 1);
	assert_string_equal(r.enh, "");
	assert_string_equal(r.text, "4.1.1 odd");
}

static void test_reply_multiline(void **state)
{
	struct smtp_reply r;
	char buf[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "550-5.7.1 first line"), 0);
	assert_int_equal(feed(&r, "550-5.7.1 second line"), 0);
	assert_int_equal(feed(&r, "550 5.7.1 third"), 1);
	assert_int_equal(r.nlines, 3);
	assert_string_equal(r.enh, "5.7.1");
	assert_string_equal(r.text, "first line\nsecond line\nthird");
	assert_string_equal(smtp_reply_format(&r, buf, sizeof(buf)),
			    "550 5.7.1 first line second line third");
}

static void test_reply_malformed(void **state)
{
	struct smtp_reply r;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "25"), SMTP_E_PROTO);
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "abc hello"), SMTP_E_PROTO);
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250xhello"), SMTP_E_PROTO);
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "650 no such class"), SMTP_E_PROTO);
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "199 too low"), SMTP_E_PROTO);
	/* the code may not change between lines */
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250-one"), 0);
	assert_int_equal(feed(&r, "251 two"), SMTP_E_PROTO);
	/* control characters never reach the text */
	memset(&r, 0, sizeof(r));
	assert_int_equal(smtp_reply_feed(&r, "250 a\rb\x01", 8), 1);
	assert_string_equal(r.text, "a b ");
	/* too many lines */
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		assert_int_equal(feed(&r, "250-x"), 0);
	assert_int_equal(feed(&r, "250 x"), SMTP_E_PROTO);
}

static void test_ehlo_caps(void **state)
{
	struct smtp_reply r;
	int64_t size = -1;
	unsigned caps;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250-mx.example.net Hello"), 0);
	assert_int_equal(feed(&r, "250-pipelining"), 0);
	assert_int_equal(feed(&r, "250-SIZE 10240000"), 0);
	assert_int_equal(feed(&r, "250-8BITMIME"), 0);
	assert_int_equal(feed(&r, "250-STARTTLS"), 0);
	assert_int_equal(feed(&r, "250-ENHANCEDSTATUSCODES"), 0);
	assert_int_equal(feed(&r, "250 SMTPUTF8"), 1);
	caps = smtp_ehlo_caps(&r, &size);
	assert_int_equal(caps, SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_8BITMIME |
				   SMTP_CAP_STARTTLS | SMTP_CAP_ENHANCEDSTATUSCODES |
				   SMTP_CAP_SMTPUTF8);
	assert_int_equal(size, 10240000);

	/* the greeting line is not a keyword; SIZE without a limit */
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250-PIPELINING"), 0);
	assert_int_equal(feed(&r, "250-SIZE"), 0);
	assert_int_equal(feed(&r, "250 X-PIPELINING"), 1);
	caps = smtp_ehlo_caps(&r, &size);
	assert_int_equal(caps, SMTP_CAP_SIZE);
	assert_int_equal(size, 0);

	/* a one-line EHLO reply announces nothing */
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250 STARTTLS"), 1);
	assert_int_equal(smtp_ehlo_caps(&r, &size), 0);
}

static void check_stuff(const char *in, const char *want)
{
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(smtp_dot_stuff(in, strlen(in), &out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
}

static void test_dot_stuff(void **state)
{
	(void)state;
	check_stuff("", ".\r\n");
	check_stuff("a\r\n", "a\r\n.\r\n");
	check_stuff(".a\r\nb\r\n..c\r\n.\r\n", "..a\r\nb\r\n...c\r\n..\r\n.\r\n");
	check_stuff("no newline", "no newline\r\n.\r\n");
	/* a dot in the middle of a line stays */
	check_stuff("a.b\r\n", "a.b\r\n.\r\n");
	/* bare LF and bare CR end lines too, so they cannot smuggle a "." */
	check_stuff("a\n.\nb", "a\r\n..\r\nb\r\n.\r\n");
	check_stuff("a\r.\rb\r\n", "a\r\n..\r\nb\r\n.\r\n");
}

/* ---- against smtp-sink -------------------------------------------------- */

struct sink {
	pid_t pid;
	uint16_t port;
	char dir[64];
};

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(fd);
	return ok;
}

/* Starts smtp-sink with extra options (NULL-terminated). */
static void sink_start(struct sink *s, ...)
{
	const char *argv[32];
	char listen[64], dump[96];
	size_t n = 0;
	va_list ap;

	if (access(SINK, X_OK) != 0)
		skip();
	(void)snprintf(s->dir, sizeof(s->dir), "/tmp/mxg-sink-%ld", (long)getpid());
	(void)mkdir(s->dir, 0777);
	(void)chmod(s->dir, 0777);
	s->port = free_port();
	(void)snprintf(listen, sizeof(listen), "127.0.0.1:%u", s->port);
	(void)snprintf(dump, sizeof(dump), "%s/msg.", s->dir);
	argv[n++] = SINK;
	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "nobody";
	}
	argv[n++] = "-d";
	argv[n++] = dump;
	va_start(ap, s);
	for (const char *a; (a = va_arg(ap, const char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n++] = listen;
	argv[n++] = "10";
	argv[n] = NULL;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		execv(SINK, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 100 && !port_open(s->port); i++)
		usleep(20000);
	assert_true(port_open(s->port));
}

static void sink_clean_dir(struct sink *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	char path[512];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			(void)snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
			(void)unlink(path);
		}
	closedir(d);
}

static void sink_stop(struct sink *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		(void)waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	sink_clean_dir(s);
	(void)rmdir(s->dir);
}

/* The concatenated dump files smtp-sink wrote (malloc'd). */
static char *sink_dumps(struct sink *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	char *all = calloc(1, 1);
	size_t len = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[512], buf[4096];
		FILE *f;
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
			all = realloc(all, len + n + 1);
			memcpy(all + len, buf, n);
			len += n;
			all[len] = '\0';
		}
		fclose(f);
	}
	closedir(d);
	return all;
}

static struct smtp_conn *sink_connect(struct sink *s, const struct smtp_client_opts *o)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(s->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct smtp_conn *c = NULL;
	struct smtp_reply why;

	assert_int_equal(
	    smtp_conn_open((struct sockaddr *)&a, sizeof(a), "sink", o, true, &c, &why), 0);
	assert_non_null(c);
	return c;
}

static const struct smtp_client_opts opts = {
    .helo_name = "mxguard.test",
    .connect_timeout_ms = 5000,
    .timeout_ms = 5000,
};

static const char message[] = "From: a@example.org\r\n"
			      "To: b@example.net\r\n"
			      "Subject: dots\r\n"
			      "\r\n"
			      ".leading dot\r\n"
			      "..two dots\r\n"
			      "plain\r\n";

static void envelope(struct smtp_envelope *env, const char *const *rcpts, size_t n, char **stuffed)
{
	size_t len;

	assert_int_equal(smtp_dot_stuff(message, sizeof(message) - 1, stuffed, &len), 0);
	memset(env, 0, sizeof(*env));
	env->sender = "a@example.org";
	env->rcpts = rcpts;
	env->nrcpts = n;
	env->stuffed = *stuffed;
	env->stuffed_len = len;
	env->size = (int64_t)sizeof(message) - 1;
	env->flags = SMTP_ENV_8BITMIME;
}

static void test_sink_delivered(void **state)
{
	static const char *const rcpts[] = {"b@example.net", "c@example.net"};
	struct smtp_rcpt_result res[2];
	struct smtp_envelope env;
	struct sink *sp = *state;
	struct smtp_conn *c;
	char *stuffed, *dump;

	(void)state;
	sink_start(sp, NULL);
	c = sink_connect(sp, &opts);
	assert_true(smtp_conn_caps(c) & SMTP_CAP_PIPELINING);
	assert_true(smtp_conn_caps(c) & SMTP_CAP_8BITMIME);
	assert_false(smtp_conn_tls(c));
	envelope(&env, rcpts, 2, &stuffed);
	assert_int_equal(smtp_conn_send(c, &env, res), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(res[i].verdict, SMTP_OK);
		assert_int_equal(res[i].reply.code, 250);
		assert_string_equal(res[i].reply.enh, "2.0.0");
	}
	/* a second transaction on the same connection */
	assert_true(smtp_conn_usable(c));
	assert_int_equal(smtp_conn_rset(c), 0);
	env.nrcpts = 1;
	assert_int_equal(smtp_conn_send(c, &env, res), 0);
	assert_int_equal(res[0].verdict, SMTP_OK);
	smtp_conn_close(c);
	usleep(100000);

	dump = sink_dumps(sp);
	/* both transactions, with BODY=8BITMIME, unstuffed by the sink */
	assert_non_null(strstr(dump, "X-Mail-Args: <a@example.org> BODY=8BITMIME"));
	assert_non_null(strstr(dump, "X-Rcpt-Args: <c@example.net>"));
	assert_non_null(strstr(dump, "\n.leading dot"));
	assert_null(strstr(dump, "\n..leading dot"));
	assert_non_null(strstr(dump, "\n..two dots"));
	assert_null(strstr(dump, "\n...two dots"));
	assert_non_null(strstr(strstr(dump, "Subject: dots") + 1, "Subject: dots"));
	free(dump);
	free(stuffed);
}

static void test_sink_rcpt_rejected(void **state)
{
	static const char *const rcpts[] = {"b@example.net", "c@example.net"};
	struct smtp_rcpt_result res[2];
	struct smtp_envelope env;
	struct sink *sp = *state;
	struct smtp_conn *c;
	char *stuffed;

	(void)state;
	/* -f implies -p: this also runs the transaction without PIPELINING */
	sink_start(sp, "-f", "rcpt", "-B", "550 5.1.1 no such user", NULL);
	c = sink_connect(sp, &opts);
	assert_false(smtp_conn_caps(c) & SMTP_CAP_PIPELINING);
	envelope(&env, rcpts, 2, &stuffed);
	assert_int_equal(smtp_conn_send(c, &env, res), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(res[i].verdict, SMTP_PERMFAIL);
		assert_int_equal(res[i].reply.code, 550);
		assert_string_equal(res[i].reply.enh, "5.1.1");
		assert_string_equal(res[i].reply.text, "no such user");
	}
	smtp_conn_close(c);
	free(stuffed);
}

static void test_sink_mail_deferred(void **state)
{
	static const char *const rcpts[] = {"b@example.net"};
	struct smtp_rcpt_result res[1];
	struct smtp_envelope env;
	struct sink *sp = *state;
	struct smtp_conn *c;
	char *stuffed;

	(void)state;
	sink_start(sp, "-r", "mail", NULL);
	c = sink_connect(sp, &opts);
	envelope(&env, rcpts, 1, &stuffed);
	/* 4xx to MAIL: a temporary failure, worth trying the next host */
	assert_int_equal(smtp_conn_send(c, &env, res), SMTP_E_NEXTHOST);
	assert_int_equal(res[0].verdict, SMTP_TEMPFAIL);
	assert_int_equal(res[0].reply.code / 100, 4);
	smtp_conn_close(c);
	free(stuffed);
}

static void test_sink_data_rejected(void **state)
{
	static const char *const rcpts[] = {"b@example.net", "c@example.net"};
	struct smtp_rcpt_result res[2];
	struct smtp_envelope env;
	struct sink *sp = *state;
	struct smtp_conn *c;
	char *stuffed;

	(void)state;
	sink_start(sp, "-f", ".", NULL);
	c = sink_connect(sp, &opts);
	envelope(&env, rcpts, 2, &stuffed);
	assert_int_equal(smtp_conn_send(c, &env, res), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(res[i].verdict, SMTP_PERMFAIL);
		assert_int_equal(res[i].reply.code / 100, 5);
	}
	smtp_conn_close(c);
	free(stuffed);
}

static void test_sink_smtputf8_unsupported(void **state)
{
	static const char *const rcpts[] = {"b@example.net"};
	struct smtp_rcpt_result res[1];
	struct smtp_envelope env;
	struct sink *sp = *state;
	struct smtp_conn *c;
	char *stuffed;

	(void)state;
	sink_start(sp, NULL);
	c = sink_connect(sp, &opts);
	assert_false(smtp_conn_caps(c) & SMTP_CAP_SMTPUTF8);
	envelope(&env, rcpts, 1, &stuffed);
	env.flags |= SMTP_ENV_SMTPUTF8;
	assert_int_equal(smtp_conn_send(c, &env, res), 0);
	assert_int_equal(res[0].verdict, SMTP_PERMFAIL);
	assert_string_equal(res[0].reply.enh, "5.6.7");
	smtp_conn_close(c);
	free(stuffed);
}

static void test_connect_refused(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(free_port()),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct smtp_conn *c = NULL;
	struct smtp_reply why;

	(void)state;
	assert_int_equal(
	    smtp_conn_open((struct sockaddr *)&a, sizeof(a), NULL, &opts, true, &c, &why),
	    SMTP_E_NEXTHOST);
	assert_null(c);
	assert_int_equal(why.code, 0);
	assert_string_equal(why.enh, "4.4.1");
	assert_non_null(strstr(why.text, "refused"));
}

static void test_greeting_refused(void **state)
{
	struct sink *sp = *state;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct smtp_conn *c = NULL;
	struct smtp_reply why;

	(void)state;
	sink_start(sp, "-f", "connect", NULL);
	a.sin_port = htons(sp->port);
	assert_int_equal(
	    smtp_conn_open((struct sockaddr *)&a, sizeof(a), NULL, &opts, true, &c, &why),
	    SMTP_E_NEXTHOST);
	assert_int_equal(why.code / 100, 5);
}

static int sink_setup(void **state)
{
	*state = calloc(1, sizeof(struct sink));
	return *state ? 0 : -1;
}

/* Runs even when an assertion failed, so no smtp-sink is left behind. */
static int sink_teardown(void **state)
{
	sink_stop(*state);
	free(*state);
	return 0;
}

#define SINK_TEST(f) cmocka_unit_test_setup_teardown(f, sink_setup, sink_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_single),    cmocka_unit_test(test_reply_multiline),
	    cmocka_unit_test(test_reply_malformed), cmocka_unit_test(test_ehlo_caps),
	    cmocka_unit_test(test_dot_stuff),	    SINK_TEST(test_sink_delivered),
	    SINK_TEST(test_sink_rcpt_rejected),	    SINK_TEST(test_sink_mail_deferred),
	    SINK_TEST(test_sink_data_rejected),	    SINK_TEST(test_sink_smtputf8_unsupported),
	    cmocka_unit_test(test_connect_refused), SINK_TEST(test_greeting_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
