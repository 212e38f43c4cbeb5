/* SPDX-License-Identifier: MIT */
/*
 * urlcheck (phishing heuristics over a message's URLs) and uribl (URIBL
 * look-ups against a real nsd serving tests/dns/uribl.mxg.test.zone).
 *
 * Corpus (../shared/corpus/url; the tests say they were skipped when it is
 * absent): the confusables of our skeleton table against Unicode's
 * confusables.txt, the registrable domain against the Public Suffix List's
 * own tests, and the punycode vectors of RFC 3492 as real-language hosts
 * that must not count as mixed-script.
 *
 * `test_urlcheck --figures DIR` runs urlcheck + headercheck over the sa
 * corpus (DIR/ham, DIR/spam) and prints the time per message and how many
 * ham and spam messages each symbol fires on.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <idn2.h>
#include <libpsl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/metrics.h"
#include "mime/mime.h"
#include "net/resolver.h"
#include "scan/headercheck.h"
#include "scan/uribl.h"
#include "scan/urlcheck.h"

#ifndef MXG_SOURCE_ROOT
#define MXG_SOURCE_ROOT "."
#endif
#define CORPUS MXG_SOURCE_ROOT "/../shared/corpus"

static struct urlcheck *UC;
static struct mime_engine *ENG;

#define MAX_GOT 32
struct got {
	size_t n;
	char name[MAX_GOT][64];
	char detail[MAX_GOT][256];
	double score[MAX_GOT];
};

static void collect(void *arg, const char *symbol, double score, const char *detail)
{
	struct got *g = arg;

	if (g->n == MAX_GOT)
		return;
	snprintf(g->name[g->n], sizeof(g->name[0]), "%s", symbol);
	snprintf(g->detail[g->n], sizeof(g->detail[0]), "%s", detail);
	g->score[g->n] = score;
	g->n++;
}

static const char *has(const struct got *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->name[i], name))
			return g->detail[i];
	return NULL;
}

/* Parses a message with body (HTML if html) and runs urlcheck on it. */
static void scan_body(const char *body, bool html, const char *rcpt, struct got *g)
{
	char msg[8192];
	struct mime_msg *m = NULL;
	const char *rcpts[1] = {rcpt};
	int n;

	memset(g, 0, sizeof(*g));
	n = snprintf(msg, sizeof(msg),
		     "From: a@sender.example\r\nTo: %s\r\nSubject: t\r\n"
		     "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@sender.example>\r\n"
		     "MIME-Version: 1.0\r\nContent-Type: text/%s; charset=utf-8\r\n\r\n%s\r\n",
		     rcpt ? rcpt : "b@rcpt.example", html ? "html" : "plain", body);
	assert_true(n > 0 && (size_t)n < sizeof(msg));
	assert_int_equal(mime_parse(ENG, msg, (size_t)n, &m), 0);
	(void)urlcheck_scan(UC, m, rcpts, rcpt ? 1 : 0, collect, g);
	mime_msg_free(m);
}

static int setup(void **state)
{
	char err[256];
	struct mime_limits l;

	(void)state;
	if (urlcheck_new(MXG_SOURCE_ROOT "/rules/phish", &UC, err, sizeof(err)) < 0) {
		fprintf(stderr, "urlcheck_new: %s\n", err);
		return -1;
	}
	mime_limits_default(&l);
	ENG = mime_engine_new(&l, MIME_OPT_TEXT | MIME_OPT_URLS);
	return ENG ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	urlcheck_free(UC);
	mime_engine_free(ENG);
	return 0;
}

/* ---- pieces ----------------------------------------------------------------- */

static void test_host_kind(void **state)
{
	uint32_t v;

	(void)state;
#define K(h) urlcheck_host_kind(h, strlen(h), &v)
	assert_int_equal(K("192.168.1.1"), URLCHECK_HOST_IPV4);
	assert_int_equal(v, 0xc0a80101u);
	assert_int_equal(K("3232235777"), URLCHECK_HOST_IPV4_OBFUSCATED);
	assert_int_equal(v, 0xc0a80101u);
	assert_int_equal(K("0xc0a80101"), URLCHECK_HOST_IPV4_OBFUSCATED);
	assert_int_equal(v, 0xc0a80101u);
	assert_int_equal(K("0300.0250.01.01"), URLCHECK_HOST_IPV4_OBFUSCATED);
	assert_int_equal(v, 0xc0a80101u);
	assert_int_equal(K("0xc0.0xa8.1.1"), URLCHECK_HOST_IPV4_OBFUSCATED);
	assert_int_equal(v, 0xc0a80101u);
	assert_int_equal(K("192.168.257"), URLCHECK_HOST_IPV4_OBFUSCATED); /* 192.168.1.1 */
	assert_int_equal(v, 0xc0a80101u);
	assert_int_equal(K("127.1"), URLCHECK_HOST_IPV4_OBFUSCATED);
	assert_int_equal(v, 0x7f000001u);
	assert_int_equal(K("[2001:db8::1]"), URLCHECK_HOST_IPV6);
	assert_int_equal(K("[fe80::1%25eth0]"), URLCHECK_HOST_IPV6);
	/* names, and numbers too large for an address */
	assert_int_equal(K("example.com"), URLCHECK_HOST_NAME);
	assert_int_equal(K("1.example"), URLCHECK_HOST_NAME);
	assert_int_equal(K("4294967296"), URLCHECK_HOST_NAME);
	assert_int_equal(K("256.1.1.1"), URLCHECK_HOST_NAME);
	assert_int_equal(K("1.2.3.4.5"), URLCHECK_HOST_NAME);
	assert_int_equal(K("08.1.1.1"), URLCHECK_HOST_NAME); /* 8 is no octal digit */
	assert_int_equal(K("0x"), URLCHECK_HOST_IPV4_OBFUSCATED);
	assert_int_equal(K("[not-v6]"), URLCHECK_HOST_NAME);
	assert_int_equal(K(""), URLCHECK_HOST_NAME);
#undef K
}

static void sk(const char *in, const char *want)
{
	char out[256];
	int n = urlcheck_skeleton(in, strlen(in), out, sizeof(out));

	assert_true(n >= 0);
	assert_string_equal(out, want);
}

static void test_skeleton(void **state)
{
	char out[8];

	(void)state;
	sk("paypal.com", "paypal.com");
	sk("p\xd0\xb0yp\xd0\xb0l.com", "paypal.com");			   /* Cyrillic а */
	sk("\xd1\x80\xd0\xb0\xd1\x83\xd1\x80\xd0\xb0l.com", "paypal.com"); /* раурал */
	sk("g\xce\xbf\xce\xbfgle.com", "google.com");			   /* Greek ο */
	sk("paypa1.com", "paypal.com");
	sk("arnazon.com", "amazon.com");
	sk("AMAZON.COM", "amazon.com");
	sk("b\xc3\xbc"
	   "cher.de",
	   "bucher.de");
	/* a character without a look-alike stays as it is */
	sk("\xe4\xbe\x8b.com", "\xe4\xbe\x8b.com");
	assert_int_equal(urlcheck_skeleton("\xff", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(urlcheck_skeleton("abcdefghijk", 11, out, sizeof(out)), -ENAMETOOLONG);
	/* mixed scripts in one label; real words are not */
	assert_true(urlcheck_mixed_script("p\xd0\xb0ypal.com", strlen("p\xd0\xb0ypal.com")));
	assert_false(urlcheck_mixed_script("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.com",
					   strlen("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80"
						  ".com"))); /* пример.com: one script per label */
	assert_false(urlcheck_mixed_script("b\xc3\xbc"
					   "cher.de",
					   9));
}

static void test_registrable(void **state)
{
	char out[256];
	const struct psl_ctx_st *psl = urlcheck_psl(UC);

	(void)state;
	assert_int_equal(urlcheck_registrable(psl, "www.Example.co.uk", out, sizeof(out)), 0);
	assert_string_equal(out, "example.co.uk");
	assert_int_equal(urlcheck_registrable(psl, "a.b.example.com.", out, sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(urlcheck_registrable(psl,
					      "b\xc3\xbc"
					      "cher.de",
					      out, sizeof(out)),
			 0);
	assert_string_equal(out, "xn--bcher-kva.de");
	assert_int_equal(urlcheck_registrable(psl, "co.uk", out, sizeof(out)), -EINVAL);
	assert_int_equal(urlcheck_registrable(psl, "192.168.1.1", out, sizeof(out)), -EINVAL);
	assert_int_equal(urlcheck_registrable(psl, "", out, sizeof(out)), -EINVAL);
	assert_int_equal(urlcheck_registrable(psl, "x.example.com", out, 4), -ENAMETOOLONG);
}

static void test_lists(void **state)
{
	char dir[] = "/tmp/mxg-urlcheck-XXXXXX", path[128], err[256];
	struct urlcheck *uc = NULL;
	FILE *f;

	(void)state;
	assert_true(urlcheck_nbrands(UC) >= 50);
	assert_true(urlcheck_nshorteners(UC) >= 20);
	assert_non_null(mkdtemp(dir));
	/* a missing folder or file: empty lists */
	assert_int_equal(urlcheck_new(dir, &uc, err, sizeof(err)), 0);
	assert_int_equal(urlcheck_nbrands(uc), 0);
	urlcheck_free(uc);
	/* a host that is not a registrable domain is refused with file:line */
	snprintf(path, sizeof(path), "%s/brands.txt", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# c\npaypal.com\n\nwww.paypal.com\n", f);
	fclose(f);
	assert_int_equal(urlcheck_new(dir, &uc, err, sizeof(err)), -EINVAL);
	assert_null(uc);
	assert_non_null(strstr(err, "brands.txt:4:"));
	f = fopen(path, "w");
	fputs("co.uk\n", f);
	fclose(f);
	assert_int_equal(urlcheck_new(dir, &uc, err, sizeof(err)), -EINVAL);
	unlink(path);
	rmdir(dir);
}

/* ---- heuristics on messages ------------------------------------------------- */

static void test_text_mismatch(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	scan_body("<a href=\"http://login.evil.example/x\">www.paypal.com</a>", true, NULL, &g);
	d = has(&g, "URL_TEXT_MISMATCH");
	assert_non_null(d);
	assert_non_null(strstr(d, "login.evil.example"));
	assert_non_null(strstr(d, "paypal.com"));
	scan_body("<a href=\"http://evil.example/\">https://PayPal.com/signin</a>", true, NULL, &g);
	assert_non_null(has(&g, "URL_TEXT_MISMATCH"));
	/* an IP behind a domain's text */
	scan_body("<a href=\"http://10.1.2.3/\">bank.example.com</a>", true, NULL, &g);
	assert_non_null(has(&g, "URL_TEXT_MISMATCH"));
	/* negatives: the text is the link's own domain, a subdomain of it, or
	 * not a domain at all */
	scan_body("<a href=\"https://www.example.com/a\">example.com</a>", true, NULL, &g);
	assert_null(has(&g, "URL_TEXT_MISMATCH"));
	scan_body("<a href=\"https://example.com/a\">https://shop.example.com/</a>", true, NULL,
		  &g);
	assert_null(has(&g, "URL_TEXT_MISMATCH"));
	scan_body("<a href=\"https://evil.example/\">click here</a>", true, NULL, &g);
	assert_null(has(&g, "URL_TEXT_MISMATCH"));
	scan_body("<a href=\"https://files.example/\">invoice.pdf</a>", true, NULL, &g);
	assert_null(has(&g, "URL_TEXT_MISMATCH"));
	scan_body("<a href=\"https://evil.example/\">mail bob@paypal.com</a>", true, NULL, &g);
	assert_null(has(&g, "URL_TEXT_MISMATCH"));
	assert_int_equal(g.n, 0);
}

static void test_ip_hosts(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	scan_body("see http://3232235777/login now", false, NULL, &g);
	d = has(&g, "URL_IP_OBFUSCATED");
	assert_non_null(d);
	assert_non_null(strstr(d, "3232235777"));
	assert_non_null(strstr(d, "192.168.1.1"));
	assert_null(has(&g, "URL_IP_HOST"));
	scan_body("see http://0x7f.1/ now", false, NULL, &g);
	assert_non_null(has(&g, "URL_IP_OBFUSCATED"));
	scan_body("see http://192.0.2.7/a and http://[2001:db8::1]/b", false, NULL, &g);
	d = has(&g, "URL_IP_HOST");
	assert_non_null(d);
	assert_non_null(strstr(d, "+1 more"));
	assert_null(has(&g, "URL_IP_OBFUSCATED"));
	scan_body("see http://www.example.com/123 now", false, NULL, &g);
	assert_int_equal(g.n, 0);
}

static void test_userinfo_encoded(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	scan_body("<a href=\"http://paypal.com@evil.example/\">here</a>", true, NULL, &g);
	d = has(&g, "URL_USERINFO");
	assert_non_null(d);
	assert_non_null(strstr(d, "paypal.com@evil.example"));
	/* the brand in the user information is no look-alike of it */
	assert_null(has(&g, "URL_LOOKALIKE_BRAND"));
	scan_body("go to http://%65%76il.example/x", false, NULL, &g);
	assert_non_null(has(&g, "URL_HOST_ENCODED"));
	assert_null(has(&g, "URL_USERINFO"));
	/* percent-encoding in the path is normal */
	scan_body("go to http://example.com/a%20b?q=%41", false, NULL, &g);
	assert_int_equal(g.n, 0);
}

static void test_lookalikes(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	/* Cyrillic а in paypal, as punycode in an href */
	scan_body("<a href=\"http://xn--pypl-53dc.com/\">x</a>", true, NULL, &g);
	d = has(&g, "URL_LOOKALIKE_BRAND");
	assert_non_null(d);
	assert_non_null(strstr(d, "looks like paypal.com"));
	assert_non_null(has(&g, "URL_MIXED_SCRIPT"));
	assert_non_null(has(&g, "URL_IDN"));
	/* the same in UTF-8 in plain text */
	scan_body("log in at http://p\xd0\xb0yp\xd0\xb0l.com/", false, NULL, &g);
	assert_non_null(has(&g, "URL_LOOKALIKE_BRAND"));
	/* ASCII tricks */
	scan_body("http://www.arnazon.com/ and http://micros0ft.com/", false, NULL, &g);
	d = has(&g, "URL_LOOKALIKE_BRAND");
	assert_non_null(d);
	assert_non_null(strstr(d, "+1 more"));
	/* the brand itself, its subdomains and other domains are fine */
	scan_body("http://www.paypal.com/ http://signin.amazon.co.uk/ http://example.org/", false,
		  NULL, &g);
	assert_int_equal(g.n, 0);
	/* the recipient's own domain and a look-alike of it */
	scan_body("http://rcpt.example/portal", false, "ceo@rcpt.example", &g);
	assert_int_equal(g.n, 0);
	scan_body("http://www.rcpt.example/portal", false, "ceo@mail.rcpt.example", &g);
	assert_int_equal(g.n, 0);
	scan_body("http://rcpt-example.com/ http://rcpt.example.com/", false, "ceo@rcpt.example",
		  &g);
	assert_null(has(&g, "URL_LOOKALIKE_RCPT"));
	scan_body("http://login.rcpt\xd0\xb5xample.com/", false, "ceo@rcptexample.com", &g);
	d = has(&g, "URL_LOOKALIKE_RCPT");
	assert_non_null(d);
	assert_non_null(strstr(d, "looks like rcptexample.com"));
	scan_body("http://customer-examp1e.com/", false, "x@customer-example.com", &g);
	assert_non_null(has(&g, "URL_LOOKALIKE_RCPT"));
	/* a real IDN domain in one script: IDN only */
	scan_body("http://b\xc3\xbc"
		  "cher.example/",
		  false, NULL, &g);
	assert_non_null(has(&g, "URL_IDN"));
	assert_null(has(&g, "URL_MIXED_SCRIPT"));
	assert_null(has(&g, "URL_LOOKALIKE_BRAND"));
}

static void test_brand_subdomain_shortener(void **state)
{
	struct got g;
	const char *d;

	(void)state;
	scan_body("http://paypal.com.account-verify.example/login", false, NULL, &g);
	d = has(&g, "URL_BRAND_SUBDOMAIN");
	assert_non_null(d);
	assert_non_null(strstr(d, "paypal.com"));
	scan_body("http://www.paypal.com/ http://mypaypal.com.example/", false, NULL, &g);
	assert_null(has(&g, "URL_BRAND_SUBDOMAIN"));
	scan_body("short: https://bit.ly/3xYz and https://t.co/abc", false, NULL, &g);
	d = has(&g, "URL_SHORTENER");
	assert_non_null(d);
	assert_non_null(strstr(d, "bit.ly"));
	scan_body("https://notbit.ly.example/ https://rabbit.ly/", false, NULL, &g);
	assert_null(has(&g, "URL_SHORTENER"));
}

/* ---- corpus ----------------------------------------------------------------- */

static bool corpus(const char *what)
{
	if (access(CORPUS, R_OK) == 0)
		return true;
	printf("SKIPPED: %s: no corpus at %s\n", what, CORPUS);
	return false;
}

/* Every UTS #39 pair of our table is in confusables.txt with the same
 * ASCII prototype (case folded); and our table covers every Cyrillic and
 * Greek lower-case letter that the file maps to one ASCII lower-case
 * letter. */
static void test_corpus_confusables(void **state)
{
	FILE *f;
	char line[1024];
	size_t agree = 0, ours = 0, cyrgreek = 0, covered = 0;

	(void)state;
	if (!corpus("confusables"))
		return;
	f = fopen(CORPUS "/url/homograph/confusables.txt", "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned src, t[4];
		bool uts;
		char mine;
		int nt;

		if (sscanf(line, "%x ;", &src) != 1)
			continue;
		nt = sscanf(strchr(line, ';') + 1, " %x %x %x %x", &t[0], &t[1], &t[2], &t[3]);
		mine = urlcheck_confusable(src, &uts);
		if (mine && uts) {
			ours++;
			if (nt == 1 && t[0] < 0x80) {
				char c = (char)t[0];
				if (c >= 'A' && c <= 'Z')
					c = (char)(c + 32);
				if (c == mine)
					agree++;
				else
					fail_msg("U+%04X: ours '%c', UTS #39 '%c'", src, mine, c);
			} else {
				fail_msg("U+%04X: UTS #39 maps it to no single ASCII letter", src);
			}
		}
		if (((src >= 0x430 && src <= 0x45f) || (src >= 0x3b1 && src <= 0x3c9)) && nt == 1 &&
		    t[0] >= 'a' && t[0] <= 'z') {
			cyrgreek++;
			if (urlcheck_confusable(src, NULL) == (char)t[0])
				covered++;
			else
				printf("not covered: U+%04X -> %c\n", src, (char)t[0]);
		}
	}
	fclose(f);
	/* every pair we call UTS #39 was found and agreed */
	assert_int_equal(agree, ours);
	bool dummy;
	size_t tbl = 0;
	for (uint32_t cp = 0x80; cp < 0x600; cp++)
		if (urlcheck_confusable(cp, &dummy) && dummy)
			tbl++;
	assert_int_equal(ours, tbl);
	assert_true(cyrgreek > 10);
	assert_int_equal(covered, cyrgreek);
	printf("confusables: %zu UTS #39 pairs agree; %zu/%zu Cyrillic/Greek small letters "
	       "covered\n",
	       agree, covered, cyrgreek);
}

/* The PSL's own test file, with the PSL of the corpus. */
static void test_corpus_psl(void **state)
{
	FILE *f;
	char line[1024];
	psl_ctx_t *psl;
	size_t n = 0;

	(void)state;
	if (!corpus("psl"))
		return;
	psl = psl_load_file(CORPUS "/url/psl/public_suffix_list.dat");
	assert_non_null(psl);
	f = fopen(CORPUS "/url/psl/test_psl.txt", "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char in[256], want[256], got[256], *want_ascii = NULL;
		int rc;

		if (strncmp(line, "checkPublicSuffix(", 18) != 0)
			continue;
		if (sscanf(line, "checkPublicSuffix('%255[^']', '%255[^']');", in, want) == 2) {
			if (in[0] == '.')
				continue; /* a leading dot: not a host name */
			if (idn2_to_ascii_8z(want, &want_ascii, IDN2_NONTRANSITIONAL) != IDN2_OK)
				fail_msg("bad expected value %s", want);
			rc = urlcheck_registrable(psl, in, got, sizeof(got));
			if (rc != 0 || strcmp(got, want_ascii) != 0)
				fail_msg("%s: want %s, got %s (%d)", in, want_ascii, rc ? "-" : got,
					 rc);
			free(want_ascii);
			n++;
		} else if (sscanf(line, "checkPublicSuffix('%255[^']', null);", in) == 1) {
			if (urlcheck_registrable(psl, in, got, sizeof(got)) == 0)
				fail_msg("%s: want none, got %s", in, got);
			n++;
		}
	}
	fclose(f);
	psl_free(psl);
	assert_true(n > 50);
	printf("psl: %zu cases\n", n);
}

/* RFC 3492's vectors are words of real languages: as host labels, none
 * is mixed-script, and each decodes through the MIME engine's IDNA to the
 * Unicode host urlcheck reads. */
static void test_corpus_punycode(void **state)
{
	FILE *f;
	char buf[65536], *p;
	size_t n, words = 0, hosts = 0, mixed = 0;

	(void)state;
	if (!corpus("punycode"))
		return;
	f = fopen(CORPUS "/url/punycode/punycode-testdata.json", "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (p = strstr(buf, "\"decoded\": \""); p; p = strstr(p, "\"decoded\": \"")) {
		char dec[512], enc[512], body[1200], *e;
		struct got g;
		size_t dl;

		p += 12;
		e = strchr(p, '"');
		assert_non_null(e);
		dl = (size_t)(e - p);
		if (dl >= sizeof(dec) || memchr(p, '\\', dl))
			continue;
		memcpy(dec, p, dl);
		dec[dl] = '\0';
		p = strstr(e, "\"encoded\": \"");
		assert_non_null(p);
		p += 12;
		e = strchr(p, '"');
		if ((size_t)(e - p) >= sizeof(enc))
			continue;
		memcpy(enc, p, (size_t)(e - p));
		enc[e - p] = '\0';
		words++;
		/* one vector mixes Latin letters into Cyrillic on purpose */
		if (urlcheck_mixed_script(dec, dl)) {
			mixed++;
			assert_non_null(
			    strstr(dec, "\xd0\xb4\xd0\xb6\xd1\x83\xd0\xbc\xd0\xbb\xd0\xb0@"));
			continue;
		}
		if (strchr(enc, ' ') || strchr(dec, ' ') || strlen(enc) > 59)
			continue; /* not a host label */
		bool lower = true;
		for (const char *c = enc; *c; c++)
			if ((*c >= 'A' && *c <= 'Z') || *c == '-')
				lower = false;
		if (!lower)
			continue;
		snprintf(body, sizeof(body), "http://xn--%s.example/", enc);
		scan_body(body, false, NULL, &g);
		assert_null(has(&g, "URL_MIXED_SCRIPT"));
		assert_null(has(&g, "URL_LOOKALIKE_BRAND"));
		assert_non_null(has(&g, "URL_IDN"));
		hosts++;
	}
	assert_true(words >= 10);
	assert_true(hosts >= 5);
	assert_int_equal(mixed, 1);
	printf("punycode: %zu words, %zu as hosts\n", words, hosts);
}

/* ---- uribl against a real nsd ------------------------------------------------ */

static struct {
	pid_t helper;
	int helper_in; /* its stdin: closing it stops nsd */
	int port;
	int blackhole, blackhole_port; /* bound, never read: time-outs */
	struct event_base *base;
	struct metrics *metrics;
	struct resolver *res;
} W;

static int dns_setup(void **state)
{
	int in[2], outp[2];
	char line[64] = "", why[128], servers[64];
	size_t n = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);

	(void)state;
	if (access("/usr/sbin/nsd", X_OK) < 0) {
		fprintf(stderr, "nsd is not installed: run scripts/bootstrap\n");
		return -1;
	}
	if (pipe(in) < 0 || pipe(outp) < 0 || (W.helper = fork()) < 0)
		return -1;
	if (W.helper == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(in[0], 0);
		dup2(outp[1], 1);
		close(in[1]);
		close(outp[0]);
		execl("/usr/bin/python3", "python3",
		      MXG_SOURCE_ROOT "/tests/integration/dnsserver.py", "serve", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	W.helper_in = in[1];
	while (n < sizeof(line) - 1) {
		ssize_t r = read(outp[0], line + n, 1);
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(outp[0]);
	if (sscanf(line, "port=%d", &W.port) != 1) {
		fprintf(stderr, "dnsserver.py did not start: '%s'\n", line);
		return -1;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	W.blackhole = socket(AF_INET, SOCK_DGRAM, 0);
	if (W.blackhole < 0 || bind(W.blackhole, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(W.blackhole, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	W.blackhole_port = ntohs(sa.sin_port);
	if (resolver_global_init() < 0)
		return -1;
	W.base = event_base_new();
	W.metrics = metrics_new();
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", W.port);
	struct resolver_opts o = {
	    .servers = servers,
	    .timeout_ms = 2000,
	    .cache_size = 100,
	    .max_inflight = 100,
	    .negative_ttl = 60,
	    .max_ttl = 86400,
	    .metrics = W.metrics,
	};
	if (resolver_new(W.base, &o, &W.res, why, sizeof(why)) < 0) {
		fprintf(stderr, "resolver_new: %s\n", why);
		return -1;
	}
	return 0;
}

static int dns_teardown(void **state)
{
	(void)state;
	resolver_free(W.res);
	if (W.helper > 0) {
		close(W.helper_in);
		kill(W.helper, SIGTERM);
		(void)waitpid(W.helper, NULL, 0);
	}
	close(W.blackhole);
	event_base_free(W.base);
	metrics_free(W.metrics);
	return 0;
}

struct ures {
	int calls;
	struct uribl_result r;
	struct scan_symbol sym[16];
	size_t nsym;
	char skipped[8][128];
	char hits[16][160];
};

static void on_uribl(struct uribl_req *req, const struct uribl_result *res, void *arg)
{
	struct ures *u = arg;

	assert_ptr_equal(uribl_req_result(req), res);
	u->calls++;
	u->r = *res;
	u->nsym = uribl_symbols(res, u->sym, 16);
	for (size_t i = 0; i < res->nskipped && i < 8; i++)
		snprintf(u->skipped[i], sizeof(u->skipped[i]), "%s %s %s", res->skipped[i].zone,
			 res->skipped[i].domain, res->skipped[i].why);
	for (size_t i = 0; i < res->nhits && i < 16; i++)
		snprintf(u->hits[i], sizeof(u->hits[i]), "%s %s %s", res->hits[i].symbol,
			 res->hits[i].domain, res->hits[i].zone);
	u->r.hits = NULL;
	u->r.skipped = NULL;
}

static struct config *uribl_config(const char *extra)
{
	static struct config cfg;
	char text[2048], err[256];

	config_defaults(&cfg);
	snprintf(text, sizeof(text),
		 "[uribl]\nbudget = 1500ms\nmax_domains = 5\nallow_domains = allowed.example\n"
		 "[uribl uribl.mxg.test]\n"
		 "codes = 127.0.1.2:URIBL_TEST_SPAM:4, 127.0.1.4:URIBL_TEST_PHISH:6, "
		 "127.0.1.5:URIBL_TEST_MALWARE:6\n%s",
		 extra);
	if (config_parse("uribl.conf", text, strlen(text), &cfg, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	return &cfg;
}

static void run_uribl(struct uribl *u, const char *const *doms, size_t n, struct ures *out)
{
	struct uribl_req *req = NULL;
	int64_t t0 = time_mono_us();

	memset(out, 0, sizeof(*out));
	assert_int_equal(uribl_start(u, doms, n, on_uribl, out, &req), 0);
	assert_int_equal(out->calls, 0); /* never from inside uribl_start() */
	while (!out->calls && time_mono_us() - t0 < 5000000)
		event_base_loop(W.base, EVLOOP_ONCE);
	assert_int_equal(out->calls, 1);
	uribl_req_free(req);
}

static bool ures_has(const struct ures *u, const char *name, const char *detail_part)
{
	for (size_t i = 0; i < u->nsym; i++)
		if (!strcmp(u->sym[i].name, name) &&
		    (!detail_part || strstr(u->sym[i].detail, detail_part)))
			return true;
	return false;
}

static void test_uribl_lookups(void **state)
{
	struct config *cfg = uribl_config("");
	struct uribl *u = NULL;
	char why[128];
	struct ures r;
	const char *doms[] = {"spam-domain.example", "clean.example",	   "PHISH.example",
			      "two-codes.example",   "allowed.example",	   "www.allowed.example",
			      "unmapped.example",    "spam-domain.example"};

	(void)state;
	assert_int_equal(uribl_new(W.base, cfg, W.res, W.metrics, &u, why, sizeof(why)), 0);
	run_uribl(u, doms, ARRAY_LEN(doms), &r);
	assert_int_equal(r.r.ndomains, 5); /* duplicates dropped, allowlist skipped */
	assert_int_equal(r.r.nallowed, 2);
	assert_int_equal(r.r.nover, 0);
	assert_int_equal(r.r.nskipped, 0);
	assert_int_equal(r.r.nhits, 5);
	assert_true(ures_has(&r, "URIBL_TEST_SPAM", "spam-domain.example via uribl.mxg.test"));
	assert_true(ures_has(&r, "URIBL_TEST_PHISH", "phish.example"));
	assert_true(ures_has(&r, "URIBL_TEST_MALWARE", "two-codes.example"));
	assert_true(ures_has(&r, "URIBL_URIBL_MXG_TEST", "unmapped.example")); /* default */
	assert_true(ures_has(&r, "URIBL_TEST_SPAM", "+1 more"));	       /* two-codes too */
	assert_int_equal(r.nsym, 4);
	/* 4 + 6 + 4 + 6 + 1 */
	assert_true(r.r.score > 20.99 && r.r.score < 21.01);
	/* error codes and answers outside 127/8 are no listing */
	const char *odd[] = {"error.example", "notlisting.example", "nxdomain.example"};
	run_uribl(u, odd, 3, &r);
	assert_int_equal(r.r.nhits, 0);
	assert_int_equal(r.r.nskipped, 1);
	assert_non_null(strstr(r.skipped[0], "error.example error code 127.255.255.254"));
	/* the cap on domains per message */
	const char *many[] = {"a.example", "b.example",	  "c.example", "d.example", "e.example",
			      "f.example", "dbltest.com", "bad..name", ""};
	run_uribl(u, many, ARRAY_LEN(many), &r);
	assert_int_equal(r.r.ndomains, 5);
	assert_int_equal(r.r.nover, 2);
	assert_int_equal(r.r.nhits, 0); /* dbltest.com was over the cap */
	/* nothing to ask: the empty result still comes from the loop */
	run_uribl(u, NULL, 0, &r);
	assert_int_equal(r.r.ndomains, 0);
	assert_int_equal(r.r.nqueries, 0);
	uribl_free(u);
}

static void test_uribl_budget(void **state)
{
	char extra[256], why[128];
	struct config *cfg;
	struct uribl *u = NULL;
	struct ures r;
	int64_t t0;
	const char *doms[] = {"dbltest.com", "phish.example"};

	(void)state;
	/* a second zone on a server that never answers: skipped at the budget,
	 * while the first zone's hits are kept */
	snprintf(extra, sizeof(extra), "[uribl slow.mxg.test]\nserver = 127.0.0.1:%d\n",
		 W.blackhole_port);
	cfg = uribl_config(extra);
	assert_int_equal(uribl_new(W.base, cfg, W.res, W.metrics, &u, why, sizeof(why)), 0);
	t0 = time_mono_us();
	run_uribl(u, doms, 2, &r);
	t0 = (time_mono_us() - t0) / 1000;
	assert_true(t0 >= 1400 && t0 < 3000);
	assert_int_equal(r.r.nhits, 2);
	assert_int_equal(r.r.nskipped, 2);
	assert_non_null(strstr(r.skipped[0], "slow.mxg.test"));
	assert_non_null(strstr(r.skipped[0], "timeout"));
	/* freeing a request before its answer: no callback */
	struct uribl_req *req = NULL;
	memset(&r, 0, sizeof(r));
	assert_int_equal(uribl_start(u, doms, 2, on_uribl, &r, &req), 0);
	uribl_req_free(req);
	for (int i = 0; i < 20; i++)
		event_base_loop(W.base, EVLOOP_NONBLOCK);
	assert_int_equal(r.calls, 0);
	uribl_free(u);
	/* uribl.enabled = no: nothing asked */
	cfg = uribl_config("");
	cfg->uribl.enabled = false;
	assert_int_equal(uribl_new(W.base, cfg, W.res, W.metrics, &u, why, sizeof(why)), 0);
	run_uribl(u, doms, 2, &r);
	assert_int_equal(r.r.nqueries, 0);
	assert_int_equal(r.r.nhits, 0);
	uribl_free(u);
}

/* From a message to symbols: the domains urlcheck's PSL gives, then nsd. */
static void test_uribl_message(void **state)
{
	struct config *cfg = uribl_config("");
	struct uribl *u = NULL;
	struct mime_msg *m = NULL;
	char doms[8][URIBL_DOMAIN_LEN], why[128];
	const char *dp[8];
	struct ures r;
	size_t n;
	const char msg[] = "From: a@b.example\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
			   "<a href=\"http://www.spam-domain.example/a\">x</a>"
			   "<a href=\"https://deep.sub.phish.example/\">y</a>"
			   "<a href=\"http://b\xc3\xbc"
			   "cher.example/\">z</a>"
			   "<a href=\"http://192.0.2.1/\">ip</a>"
			   "<a href=\"http://spam-domain.example/again\">dup</a>\r\n";

	(void)state;
	assert_int_equal(mime_parse(ENG, msg, sizeof(msg) - 1, &m), 0);
	n = uribl_domains(urlcheck_psl(UC), m, doms, 8);
	mime_msg_free(m);
	assert_int_equal(n, 3);
	assert_string_equal(doms[0], "spam-domain.example");
	assert_string_equal(doms[1], "phish.example");
	assert_string_equal(doms[2], "xn--bcher-kva.example");
	for (size_t i = 0; i < n; i++)
		dp[i] = doms[i];
	assert_int_equal(uribl_new(W.base, cfg, W.res, W.metrics, &u, why, sizeof(why)), 0);
	run_uribl(u, dp, n, &r);
	assert_int_equal(r.r.nhits, 3);
	assert_true(ures_has(&r, "URIBL_TEST_PHISH", "phish.example via uribl.mxg.test +1 more"));
	assert_non_null(strstr(r.hits[2], "URIBL_TEST_PHISH xn--bcher-kva.example"));
	uribl_free(u);
}

static void test_uribl_config(void **state)
{
	struct config cfg;
	char err[256];
	const char *bad[] = {
	    "[uribl x]\n",
	    "[uribl dbl.example]\nbogus = 1\n",
	    "[uribl dbl.example]\n[uribl dbl.example]\n",
	    "[uribl dbl.example]\ncodes = 10.0.0.1:X\n",
	    "[uribl]\nmax_domains = 0\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		config_defaults(&cfg);
		assert_true(config_parse("t.conf", bad[i], strlen(bad[i]), &cfg, err, sizeof(err)) <
			    0);
		if (i < 4)
			assert_non_null(strstr(err, "[uribl"));
	}
	config_defaults(&cfg);
	assert_int_equal(cfg.uribl.max_domains, 20);
	assert_int_equal(cfg.uribl.budget, 2000);
	const char ok[] = "[dnsbl bl.example]\n[uribl dbl.example]\nweight = 3\n";
	assert_int_equal(config_parse("t.conf", ok, strlen(ok), &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.uribl.nzones, 1);
	assert_int_equal(cfg.dnsbl.nzones, 1);
	assert_string_equal(cfg.uribl.zones[0].symbol, "URIBL_DBL_EXAMPLE");
	assert_string_equal(cfg.dnsbl.zones[0].symbol, "RBL_BL_EXAMPLE");
}

/* ---- figures over the sa corpus ----------------------------------------------- */

#define FIG_MAX 64
struct fig {
	char name[FIG_MAX][48];
	size_t ham[FIG_MAX], spam[FIG_MAX];
	size_t n;
	bool spam_now;
	bool seen[FIG_MAX]; /* in the current message */
	const char *show;   /* MXG_FIGURES_SHOW: print this symbol's details */
	const char *file;
};

static void fig_emit(void *arg, const char *symbol, double score, const char *detail)
{
	struct fig *f = arg;
	size_t i;

	(void)score;
	if (f->show && !strcmp(f->show, symbol))
		printf("%s %s: %s\n", f->spam_now ? "spam" : "ham", f->file, detail);
	for (i = 0; i < f->n && strcmp(f->name[i], symbol); i++)
		;
	if (i == f->n) {
		if (f->n == FIG_MAX)
			return;
		snprintf(f->name[f->n++], sizeof(f->name[0]), "%s", symbol);
	}
	if (f->seen[i])
		return;
	f->seen[i] = true;
	if (f->spam_now)
		f->spam[i]++;
	else
		f->ham[i]++;
}

/* The first address of To, for the recipient. */
static void first_to(const struct mime_msg *m, char *out, size_t len)
{
	const struct mime_header *h = mime_part_header(mime_msg_root(m), "To");
	const char *s, *e, *at;

	out[0] = '\0';
	if (!h)
		return;
	s = h->value.ptr;
	e = s + h->value.len;
	at = memchr(s, '@', (size_t)(e - s));
	if (!at)
		return;
	s = at;
	while (s > h->value.ptr && !strchr(" <,\"\t", s[-1]))
		s--;
	while (at < e && !strchr(" >,\"\t\r\n", *at))
		at++;
	snprintf(out, len, "%.*s", (int)(at - s), s);
}

static int figures(const char *dir)
{
	struct fig f;
	struct headercheck_env env = {.now = time_now(), .hostname = "mx.mxguard.test"};
	psl_ctx_t *psl = psl_latest(NULL);
	size_t count[2] = {0, 0};
	int64_t us = 0, parse_us = 0;

	memset(&f, 0, sizeof(f));
	f.show = getenv("MXG_FIGURES_SHOW");
	if (setup(NULL) < 0 || !psl)
		return 1;
	for (int spam = 0; spam < 2; spam++) {
		char path[4096];
		DIR *d;
		struct dirent *de;

		snprintf(path, sizeof(path), "%s/%s", dir, spam ? "spam" : "ham");
		if (!(d = opendir(path))) {
			printf("SKIPPED: no corpus at %s\n", path);
			return 0;
		}
		f.spam_now = spam;
		while ((de = readdir(d))) {
			char file[8192], rcpt[320];
			const char *rcpts[1] = {rcpt};
			FILE *fp;
			char *buf;
			size_t n;
			struct mime_msg *m = NULL;
			int64_t t0;

			if (de->d_name[0] == '.')
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
			if (!(fp = fopen(file, "rb")))
				continue;
			buf = malloc(4 << 20);
			n = fread(buf, 1, 4 << 20, fp);
			fclose(fp);
			t0 = time_mono_us();
			if (mime_parse(ENG, buf, n, &m) < 0) {
				free(buf);
				continue;
			}
			parse_us += time_mono_us() - t0;
			first_to(m, rcpt, sizeof(rcpt));
			f.file = de->d_name;
			env.rcpts = rcpts;
			env.nrcpts = rcpt[0] ? 1 : 0;
			memset(f.seen, 0, sizeof(f.seen));
			t0 = time_mono_us();
			(void)urlcheck_scan(UC, m, rcpts, env.nrcpts, fig_emit, &f);
			(void)headercheck_scan(psl, m, &env, fig_emit, &f);
			us += time_mono_us() - t0;
			count[spam]++;
			mime_msg_free(m);
			free(buf);
		}
		closedir(d);
	}
	printf("messages: %zu ham, %zu spam\n", count[0], count[1]);
	printf("urlcheck+headercheck: %.1f us per message (MIME parse: %.1f us)\n",
	       (double)us / (double)(count[0] + count[1]),
	       (double)parse_us / (double)(count[0] + count[1]));
	printf("%-24s %6s %6s %8s %8s\n", "symbol", "ham", "spam", "ham%", "spam%");
	for (size_t i = 0; i < f.n; i++)
		printf("%-24s %6zu %6zu %7.2f%% %7.2f%%\n", f.name[i], f.ham[i], f.spam[i],
		       100.0 * (double)f.ham[i] / (double)count[0],
		       100.0 * (double)f.spam[i] / (double)count[1]);
	psl_free(psl);
	(void)teardown(NULL);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host_kind),
	    cmocka_unit_test(test_skeleton),
	    cmocka_unit_test(test_registrable),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_text_mismatch),
	    cmocka_unit_test(test_ip_hosts),
	    cmocka_unit_test(test_userinfo_encoded),
	    cmocka_unit_test(test_lookalikes),
	    cmocka_unit_test(test_brand_subdomain_shortener),
	    cmocka_unit_test(test_corpus_confusables),
	    cmocka_unit_test(test_corpus_psl),
	    cmocka_unit_test(test_corpus_punycode),
	    cmocka_unit_test(test_uribl_config),
	};
	const struct CMUnitTest dns_tests[] = {
	    cmocka_unit_test(test_uribl_lookups),
	    cmocka_unit_test(test_uribl_budget),
	    cmocka_unit_test(test_uribl_message),
	};
	int rc;

	if (argc == 3 && !strcmp(argv[1], "--figures"))
		return figures(argv[2]);
	rc = cmocka_run_group_tests_name("urlcheck", tests, setup, teardown);
	if (setup(NULL) < 0)
		return 1;
	rc |= cmocka_run_group_tests_name("uribl", dns_tests, dns_setup, dns_teardown);
	(void)teardown(NULL);
	return rc;
}
