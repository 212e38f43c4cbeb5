/* SPDX-License-Identifier: MIT */
/* Unit tests of HTML to text, links and URL normalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mime/mime.h"

static bool slice_is(struct mime_slice s, const char *lit)
{
	return s.len == strlen(lit) && !memcmp(s.ptr, lit, s.len);
}

static void test_html_links(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_TEXT | MIME_OPT_URLS);
	struct mime_msg *m;
	const struct mime_part *p;
	static const char msg[] =
	    "Content-Type: text/html; charset=iso-8859-1\n\n"
	    "<html><head><style>p{color:red}</style><script>var x='<a href=x>';</script></head>"
	    "<body><!-- <a href=\"http://hidden.example/\">no</a> -->"
	    "<p>Caf\xe9 &amp; <b>more</b>&nbsp;text</p>"
	    "<a HREF='HTTP://User@WWW.Example.COM:80/%7Euser/a%2Fb'>Your <i>bank</i></a>"
	    "<a href=\"https://b&#252;cher.example/x\">shop</a>"
	    "<img src=\"http://img.example/p.png\">"
	    "see www.plain.example/path. end</body></html>\n";

	(void)state;
	assert_int_equal(mime_parse(e, msg, sizeof(msg) - 1, &m), 0);
	p = mime_msg_root(m);
	assert_true(p->flags & MIME_PF_HTML);
	assert_non_null(memmem(p->text.ptr, p->text.len, "Caf\xc3\xa9 & more text", 17));
	assert_null(memmem(p->text.ptr, p->text.len, "color", 5));
	assert_int_equal(p->nurls, 4);
	assert_true(slice_is(p->urls[0].url, "http://www.example.com/~user/a%2Fb"));
	assert_true(slice_is(p->urls[0].text, "Your bank"));
	assert_true(slice_is(p->urls[0].host, "www.example.com"));
	assert_true(slice_is(p->urls[1].host, "b\xc3\xbc"
					      "cher.example"));
	assert_true(slice_is(p->urls[1].host_ascii, "xn--bcher-kva.example"));
	assert_true(p->urls[1].flags & MIME_URL_IDN);
	assert_true(slice_is(p->urls[2].url, "http://img.example/p.png"));
	assert_true(slice_is(p->urls[3].url, "http://www.plain.example/path"));
	assert_true(p->urls[3].flags & MIME_URL_TEXT);
	mime_msg_free(m);
	mime_engine_free(e);
}

static void test_text_urls(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_TEXT | MIME_OPT_URLS);
	struct mime_msg *m;
	const struct mime_part *p;
	static const char msg[] =
	    "Content-Type: text/plain; charset=utf-8\n\n"
	    "Go to (https://XN--80AK6AA92E.com/login), or http://a.example:8080/?q=1.\n";

	(void)state;
	assert_int_equal(mime_parse(e, msg, sizeof(msg) - 1, &m), 0);
	p = mime_msg_root(m);
	assert_int_equal(p->nurls, 2);
	assert_true(slice_is(p->urls[0].host_ascii, "xn--80ak6aa92e.com"));
	assert_true(slice_is(p->urls[0].host, "\xd0\xb0\xd1\x80\xd1\x80\xd3\x8f\xd0\xb5.com"));
	assert_true(slice_is(p->urls[1].url, "http://a.example:8080/?q=1"));
	mime_msg_free(m);
	mime_engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_html_links),
	    cmocka_unit_test(test_text_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
