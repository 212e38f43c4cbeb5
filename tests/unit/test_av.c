/* SPDX-License-Identifier: MIT */
/* The antivirus layer without the pipeline: the clamd reply parser and
 * client against fake clamd servers (silent, truncated, garbage, idle
 * close), the hash lists, YARA rules (good and broken), and the file-type
 * policy. A real clamd is exercised by tests/integration/test_av.py. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/util.h"
#include "mime/mime.h"
#include "scan/av_clamd.h"
#include "scan/av_yara.h"
#include "scan/filetype.h"

#define EICAR "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
/* base64 of EICAR */
#define EICAR_B64                                                                                  \
	"WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNU\r\n"         \
	"LUZJTEUhJEgrSCo=\r\n"

static const char eicar_msg[] = "From: a@example.test\r\n"
				"To: b@example.test\r\n"
				"Subject: test\r\n"
				"MIME-Version: 1.0\r\n"
				"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
				"\r\n"
				"--XX\r\n"
				"Content-Type: text/plain\r\n"
				"\r\n"
				"hello\r\n"
				"--XX\r\n"
				"Content-Type: application/octet-stream\r\n"
				"Content-Disposition: attachment; filename=\"readme.txt\"\r\n"
				"Content-Transfer-Encoding: base64\r\n"
				"\r\n" EICAR_B64 "--XX--\r\n";

/* ---- clamd reply parser ------------------------------------------------- */

static void test_reply_parse(void **state)
{
	char name[64];

	(void)state;
	assert_int_equal(av_clamd_reply_parse("stream: OK", 10, 0, name, sizeof(name)), 0);
	assert_int_equal(av_clamd_reply_parse("7: stream: OK", 13, 7, name, sizeof(name)), 0);
	assert_int_equal(av_clamd_reply_parse("7: stream: OK", 13, 8, name, sizeof(name)), -EPROTO);
	assert_int_equal(av_clamd_reply_parse("stream: OK", 10, 1, name, sizeof(name)), -EPROTO);
	assert_int_equal(
	    av_clamd_reply_parse("stream: Eicar-Test-Signature FOUND", 34, 0, name, sizeof(name)),
	    AV_CLAMD_FOUND);
	assert_string_equal(name, "Eicar-Test-Signature");
	assert_int_equal(av_clamd_reply_parse("1: INSTREAM size limit exceeded. ERROR", 38, 1, name,
					      sizeof(name)),
			 -EFBIG);
	assert_int_equal(
	    av_clamd_reply_parse("stream: Can't allocate memory ERROR", 35, 0, name, sizeof(name)),
	    -EIO);
	/* garbage: truncated, empty name, spaces in names, wrong words */
	assert_int_equal(av_clamd_reply_parse("stream: O", 9, 0, name, sizeof(name)), -EPROTO);
	assert_int_equal(av_clamd_reply_parse("stream:  FOUND", 14, 0, name, sizeof(name)),
			 -EPROTO);
	assert_int_equal(av_clamd_reply_parse("stream: a b FOUND", 17, 0, name, sizeof(name)),
			 -EPROTO);
	assert_int_equal(av_clamd_reply_parse("", 0, 0, name, sizeof(name)), -EPROTO);
	assert_int_equal(av_clamd_reply_parse("PONG", 4, 0, name, sizeof(name)), -EPROTO);
	assert_int_equal(av_clamd_reply_parse("stream: OK\0x", 12, 0, name, sizeof(name)), -EPROTO);
	/* a long name is cut, not overflowed */
	{
		char r[300];
		memcpy(r, "stream: ", 8);
		memset(r + 8, 'A', 200);
		memcpy(r + 208, " FOUND", 6);
		assert_int_equal(av_clamd_reply_parse(r, 214, 0, name, sizeof(name)),
				 AV_CLAMD_FOUND);
		assert_int_equal(strlen(name), sizeof(name) - 1);
	}
}

/* ---- a fake clamd ------------------------------------------------------- */

enum fake_mode {
	FAKE_OK,	/* a well-behaved clamd that finds nothing */
	FAKE_SILENT,	/* accepts, reads, never answers */
	FAKE_TRUNCATED, /* closes in the middle of its reply */
	FAKE_GARBAGE,	/* answers something else */
	FAKE_IDLE_DROP, /* answers one request per connection, then closes */
};

struct fake {
	char path[108];
	int lfd;
	enum fake_mode mode;
	pthread_t tid;
	int accepted;
	int requests;
};

/* Reads one "z..." command (to its NUL); returns its length or -1. */
static int read_cmd(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n < cap - 1) {
		ssize_t k = read(fd, buf + n, 1);
		if (k <= 0)
			return -1;
		if (buf[n] == '\0')
			return (int)n;
		n++;
	}
	return -1;
}

/* Reads INSTREAM chunks to the zero-length one. */
static int read_stream(int fd)
{
	char buf[65536];

	for (;;) {
		unsigned char len[4];
		uint32_t n;
		if (recv(fd, len, 4, MSG_WAITALL) != 4)
			return -1;
		n = (uint32_t)len[0] << 24 | (uint32_t)len[1] << 16 | (uint32_t)len[2] << 8 |
		    len[3];
		if (n == 0)
			return 0;
		while (n) {
			ssize_t k = read(fd, buf, n > sizeof(buf) ? sizeof(buf) : n);
			if (k <= 0)
				return -1;
			n -= (uint32_t)k;
		}
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int fd;

	while ((fd = accept(f->lfd, NULL, NULL)) >= 0) {
		char cmd[64], reply[64];
		unsigned id = 0;
		f->accepted++;
		while (read_cmd(fd, cmd, sizeof(cmd)) >= 0) {
			if (!strcmp(cmd, "zIDSESSION"))
				continue;
			if (!strcmp(cmd, "zPING")) {
				(void)!write(fd, "PONG", 5);
				continue;
			}
			if (strcmp(cmd, "zINSTREAM") || read_stream(fd) < 0)
				break;
			f->requests++;
			id++;
			if (f->mode == FAKE_SILENT) {
				sleep(2);
				break;
			}
			if (f->mode == FAKE_TRUNCATED) {
				(void)!write(fd, "1: stre", 7);
				break;
			}
			if (f->mode == FAKE_GARBAGE) {
				(void)!write(fd, "hello there", 12);
				continue;
			}
			snprintf(reply, sizeof(reply), "%u: stream: OK", id);
			(void)!write(fd, reply, strlen(reply) + 1);
			if (f->mode == FAKE_IDLE_DROP)
				break;
		}
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	snprintf(f->path, sizeof(f->path), "/tmp/mxg-fakeclamd-%d-%d.sock", (int)getpid(),
		 (int)mode);
	unlink(f->path);
	memcpy(un.sun_path, f->path, strlen(f->path) + 1);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&un, sizeof(un)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(pthread_create(&f->tid, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR);
	close(f->lfd);
	pthread_join(f->tid, NULL);
	unlink(f->path);
}

static void test_clamd_fake_ok_and_reuse(void **state)
{
	struct fake f;
	struct av_clamd *c;
	char name[64], why[256];

	(void)state;
	fake_start(&f, FAKE_OK);
	c = av_clamd_new(f.path, 2000, 1024 * 1024, NULL);
	assert_non_null(c);
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    av_clamd_scan(c, "hello", 5, 0, name, sizeof(name), why, sizeof(why)), 0);
	assert_int_equal(f.accepted, 1); /* one session for all five */
	/* over the configured stream limit: never sent */
	{
		char *big = calloc(1, 1024 * 1024 + 1);
		assert_int_equal(
		    av_clamd_scan(c, big, 1024 * 1024 + 1, 0, name, sizeof(name), why, sizeof(why)),
		    -EFBIG);
		free(big);
	}
	av_clamd_free(c);
	/* the fake serves one connection at a time: PING once the session ends */
	assert_int_equal(av_clamd_ping(f.path, 1000, why, sizeof(why)), 0);
	fake_stop(&f);
}

static void test_clamd_fake_idle_drop(void **state)
{
	struct fake f;
	struct av_clamd *c;
	char name[64], why[256];

	(void)state;
	fake_start(&f, FAKE_IDLE_DROP);
	c = av_clamd_new(f.path, 2000, 1024 * 1024, NULL);
	/* the session is closed after each answer: reconnected transparently */
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    av_clamd_scan(c, "hello", 5, 0, name, sizeof(name), why, sizeof(why)), 0);
	assert_int_equal(f.requests, 3);
	av_clamd_free(c);
	fake_stop(&f);
}

static void test_clamd_fake_failures(void **state)
{
	struct fake f;
	struct av_clamd *c;
	struct metrics *m = metrics_new();
	char name[64], why[256];
	int64_t t0;

	(void)state;
	fake_start(&f, FAKE_SILENT);
	c = av_clamd_new(f.path, 300, 1024 * 1024, m);
	t0 = time_mono_us();
	assert_int_equal(av_clamd_scan(c, "hello", 5, 0, name, sizeof(name), why, sizeof(why)),
			 -ETIMEDOUT);
	assert_true(time_mono_us() - t0 < 1500000);
	assert_non_null(strstr(why, "did not answer in time"));
	assert_int_equal(metrics_get(m, M_AV_CLAMD_TIMEOUTS), 1);
	av_clamd_free(c);
	fake_stop(&f);

	fake_start(&f, FAKE_TRUNCATED);
	c = av_clamd_new(f.path, 2000, 1024 * 1024, m);
	assert_int_equal(av_clamd_scan(c, "hello", 5, 0, name, sizeof(name), why, sizeof(why)),
			 -EPROTO);
	assert_int_equal(metrics_get(m, M_AV_CLAMD_ERRORS), 1);
	assert_int_equal(metrics_get(m, M_AV_CLAMD_SCANS), 0);
	av_clamd_free(c);
	fake_stop(&f);

	fake_start(&f, FAKE_GARBAGE);
	c = av_clamd_new(f.path, 2000, 1024 * 1024, NULL);
	assert_int_equal(av_clamd_scan(c, "hello", 5, 0, name, sizeof(name), why, sizeof(why)),
			 -EPROTO);
	assert_int_equal(av_clamd_ping(f.path, 1000, why, sizeof(why)), 0);
	av_clamd_free(c);
	fake_stop(&f);

	/* nobody listening */
	c = av_clamd_new("/tmp/mxg-no-such-clamd.sock", 500, 1024, NULL);
	assert_true(av_clamd_scan(c, "x", 1, 0, name, sizeof(name), why, sizeof(why)) < 0);
	assert_true(av_clamd_ping("/tmp/mxg-no-such-clamd.sock", 500, why, sizeof(why)) < 0);
	av_clamd_free(c);
	c = av_clamd_new("127.0.0.1:1", 500, 1024, NULL);
	assert_int_equal(av_clamd_scan(c, "x", 1, 0, name, sizeof(name), why, sizeof(why)),
			 -ECONNREFUSED);
	av_clamd_free(c);
	metrics_free(m);
}

/* ---- hash lists ------------------------------------------------------- */

static void test_hash_lists(void **state)
{
	struct av_yara_db *db = av_yara_db_new_empty();
	char err[256];
	static const char good[] =
	    "# comment\n"
	    "\n"
	    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f EICAR-Test-File\n"
	    "44d88612fea8a8f36de82e1278abb02f:68:Eicar-MD5\r\n"
	    "  0123456789abcdef0123456789abcdef\n";

	(void)state;
	assert_non_null(db);
	assert_int_equal(
	    av_yara_hashes_parse(db, "good.txt", good, sizeof(good) - 1, err, sizeof(err)), 0);
	assert_int_equal(av_yara_db_nhashes(db), 3);
	assert_string_equal(av_yara_hash_lookup(db, EICAR, 68), "EICAR-Test-File");
	assert_null(av_yara_hash_lookup(db, "hello", 5));
	av_yara_db_free(db);

	/* MD5 only, with the size checked */
	db = av_yara_db_new_empty();
	assert_int_equal(av_yara_hashes_parse(db, "m.hdb", "44d88612fea8a8f36de82e1278abb02f:68:M",
					      37, err, sizeof(err)),
			 0);
	assert_string_equal(av_yara_hash_lookup(db, EICAR, 68), "M");
	av_yara_db_free(db);
	db = av_yara_db_new_empty();
	assert_int_equal(av_yara_hashes_parse(db, "m.hdb", "44d88612fea8a8f36de82e1278abb02f:67:M",
					      37, err, sizeof(err)),
			 0);
	assert_null(av_yara_hash_lookup(db, EICAR, 68));
	av_yara_db_free(db);

	/* bad lines name the file and the line */
	{
		static const char *const bad[] = {
		    "# ok\nnothex\n",
		    "# ok\n0123456789abcdef0123456789abcde name\n",
		    "# ok\n0123456789abcdef0123456789abcdef bad name!\n",
		    "# ok\n0123456789abcdef0123456789abcdef:x:N\n",
		    "# ok\n0123456789abcdef0123456789abcdef:12\n",
		};
		for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
			db = av_yara_db_new_empty();
			assert_true(av_yara_hashes_parse(db, "bad.txt", bad[i], strlen(bad[i]), err,
							 sizeof(err)) < 0);
			assert_true(!strncmp(err, "bad.txt:2: ", 11));
			av_yara_db_free(db);
		}
	}
}

/* ---- YARA and the file-type policy over a parsed message ------------------ */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

struct hits {
	char names[8][160];
	size_t n;
};

static void collect(void *arg, enum av_yara_kind kind, const char *name,
		    const struct mime_part *part)
{
	struct hits *h = arg;

	if (h->n < 8)
		snprintf(h->names[h->n++], sizeof(h->names[0]), "%s:%s@%.*s",
			 kind == AV_YARA_RULE ? "yara" : "hash", name, (int)part->path.len,
			 part->path.ptr);
}

static void test_yara_rules(void **state)
{
	char dir[] = "/tmp/mxg-yara-XXXXXX", hdir[] = "/tmp/mxg-hash-XXXXXX";
	char err[512], why[256];
	struct av_yara_db *db = NULL;
	struct mime_engine *e;
	struct mime_msg *m = NULL;
	struct hits h = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(hdir));
	write_file(dir, "a.yar",
		   "rule Eicar { strings: $a = \"EICAR-STANDARD-ANTIVIRUS\" condition: $a }\n");
	write_file(dir, "ignored.txt", "this is not a rule file\n");
	write_file(hdir, "list",
		   "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f "
		   "EICAR-Hash\n");
	assert_int_equal(av_yara_db_load(dir, hdir, &db, err, sizeof(err)), 0);
	assert_int_equal(av_yara_db_nrules(db), 1);

	e = mime_engine_new(NULL, MIME_OPT_ALL);
	assert_non_null(e);
	assert_int_equal(mime_parse(e, eicar_msg, sizeof(eicar_msg) - 1, &m), 0);
	assert_int_equal(av_yara_scan_msg(db, m, 0, NULL, collect, &h, why, sizeof(why)), 2);
	assert_string_equal(h.names[0], "hash:EICAR-Hash@2");
	assert_string_equal(h.names[1], "yara:Eicar@2");
	/* a deadline already past: TEMPFAIL, never clean */
	h.n = 0;
	assert_int_equal(
	    av_yara_scan_msg(db, m, time_mono_us() - 1, NULL, collect, &h, why, sizeof(why)),
	    -ETIMEDOUT);
	mime_msg_free(m);
	mime_engine_free(e);
	av_yara_db_free(db);

	/* a syntax error: refused with file:line, nothing loaded */
	write_file(dir, "b.yar",
		   "rule Good { condition: true }\n\nrule Broken {\n"
		   "  strings: $a = \"x\"\n  condition: $a and\n}\n");
	db = NULL;
	assert_true(av_yara_db_load(dir, "", &db, err, sizeof(err)) < 0);
	assert_null(db);
	{
		char want[256];
		snprintf(want, sizeof(want), "%s/b.yar:6: ", dir);
		assert_true(!strncmp(err, want, strlen(want)));
	}
	/* a missing folder is an error too, not "no rules" */
	assert_true(av_yara_db_load("/nonexistent/rules", "", &db, err, sizeof(err)) < 0);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, hdir);
		assert_int_equal(system(cmd), 0);
	}
}

static void test_repo_rules(void **state)
{
	char err[512];
	struct av_yara_db *db = NULL;

	(void)state;
	assert_int_equal(av_yara_db_load(MXG_SOURCE_ROOT "/rules/yara",
					 MXG_SOURCE_ROOT "/rules/hashes", &db, err, sizeof(err)),
			 0);
	assert_true(av_yara_db_nrules(db) >= 3);
	assert_string_equal(av_yara_hash_lookup(db, EICAR, 68), "EICAR-Test-File");
	av_yara_db_free(db);
}

static struct mime_part fake_part(const char *filename, const char *detected, unsigned flags)
{
	struct mime_part p;

	memset(&p, 0, sizeof(p));
	p.kind = MIME_KIND_LEAF;
	p.filename.ptr = filename;
	p.filename.len = strlen(filename);
	p.detected.ptr = detected;
	p.detected.len = strlen(detected);
	p.flags = flags;
	return p;
}

static void test_filetype(void **state)
{
	struct mime_part p;

	(void)state;
	p = fake_part("invoice.pdf.exe", "application/x-dosexec", 0);
	assert_int_equal(filetype_classify(&p), FILETYPE_EXECUTABLE | FILETYPE_DOUBLE_EXT);
	p = fake_part("photo.jpg", "application/x-dosexec", 0);
	assert_int_equal(filetype_classify(&p), FILETYPE_EXECUTABLE);
	p = fake_part("scan.JPG      .Scr", "text/plain", 0);
	assert_int_equal(filetype_classify(&p), FILETYPE_DOUBLE_EXT);
	p = fake_part("order.js", "text/plain", 0);
	assert_int_equal(filetype_classify(&p), FILETYPE_RISKY_EXT);
	p = fake_part("report\xe2\x80\xae"
		      "fdp.exe",
		      "application/x-dosexec", 0);
	assert_int_equal(filetype_classify(&p), FILETYPE_EXECUTABLE | FILETYPE_DOUBLE_EXT);
	p = fake_part("report.pdf", "application/pdf", 0);
	assert_int_equal(filetype_classify(&p), 0);
	p = fake_part("a.pdf.", "application/pdf", 0);
	assert_int_equal(filetype_classify(&p), 0);
	p = fake_part("x.doc", "application/msword", MIME_PF_MACROS);
	assert_int_equal(filetype_classify(&p), FILETYPE_MACROS);
	p = fake_part("x.zip", "application/zip", MIME_PF_ENCRYPTED | MIME_PF_ARCHIVE);
	assert_int_equal(filetype_classify(&p), FILETYPE_ENCRYPTED);
	p = fake_part("x.elf", "application/x-pie-executable", 0);
	assert_int_equal(filetype_classify(&p), FILETYPE_EXECUTABLE);
}

static void test_config_keys(void **state)
{
	static struct config cfg;
	char err[512];
	static const char good[] = "[av]\nclamd = 127.0.0.1:3310\non_failure = pass\n"
				   "clamd_timeout = 500ms\nblock_macros = yes\n";

	(void)state;
	config_defaults(&cfg);
	assert_string_equal(cfg.av.on_failure, "tempfail");
	assert_true(cfg.av.block_executables && !cfg.av.block_macros && !cfg.av.block_encrypted);
	assert_string_equal(cfg.av.clamd, "");
	assert_int_equal(config_parse("t.conf", good, sizeof(good) - 1, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.av.on_failure, "pass");
	assert_int_equal(cfg.av.clamd_timeout, 500);
	config_defaults(&cfg);
	assert_true(
	    config_parse("t.conf", "[av]\n\non_failure = maybe\n", 25, &cfg, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "t.conf:3: av.on_failure = 'maybe'"));
	config_defaults(&cfg);
	assert_true(config_parse("t.conf", "[av]\nclamd = relative.sock\n", 27, &cfg, err,
				 sizeof(err)) < 0);
	assert_non_null(strstr(err, "t.conf:2: av.clamd"));
	{
		char pid[PATH_MAX];
		config_defaults(&cfg);
		assert_int_equal(config_pid_file(&cfg, pid, sizeof(pid)), 0);
		assert_non_null(strstr(pid, "/mxguardd.pid"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_parse),
	    cmocka_unit_test(test_clamd_fake_ok_and_reuse),
	    cmocka_unit_test(test_clamd_fake_idle_drop),
	    cmocka_unit_test(test_clamd_fake_failures),
	    cmocka_unit_test(test_hash_lists),
	    cmocka_unit_test(test_yara_rules),
	    cmocka_unit_test(test_repo_rules),
	    cmocka_unit_test(test_filetype),
	    cmocka_unit_test(test_config_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
