/* SPDX-License-Identifier: MIT */
/* Unit tests of the MIME engine: structure, headers, decoders, charsets,
 * limits and findings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/charset.h"
#include "mime/decode.h"
#include "mime/header.h"
#include "mime/mime.h"

static struct mime_msg *parse(struct mime_engine *e, const char *s, size_t n)
{
	struct mime_msg *m = NULL;

	assert_int_equal(mime_parse(e, s, n, &m), 0);
	assert_non_null(m);
	return m;
}

static struct mime_msg *parse_str(struct mime_engine *e, const char *s)
{
	return parse(e, s, strlen(s));
}

static bool slice_is(struct mime_slice s, const char *lit)
{
	return s.len == strlen(lit) && !memcmp(s.ptr, lit, s.len);
}

static const struct mime_part *by_path(const struct mime_msg *m, const char *path)
{
	for (size_t i = 0; i < mime_msg_nparts(m); i++)
		if (slice_is(mime_msg_part(m, i)->path, path))
			return mime_msg_part(m, i);
	return NULL;
}

static void test_base64(void **state)
{
	unsigned char out[64];
	unsigned f = 0;
	size_t n;

	(void)state;
	n = mime_dec_base64("aGVsbG8gd29ybGQ=", 16, out, sizeof(out), &f);
	assert_int_equal(n, 11);
	assert_memory_equal(out, "hello world", 11);
	assert_int_equal(f, 0);
	/* missing padding, junk and line breaks: decoded and noted */
	f = 0;
	n = mime_dec_base64("aGVs\r\nbG8*gd29y!bGQ", 19, out, sizeof(out), &f);
	assert_int_equal(n, 11);
	assert_memory_equal(out, "hello world", 11);
	assert_true(f & MIME_DEC_BROKEN);
	/* two padded blocks in a row */
	f = 0;
	n = mime_dec_base64("YQ==Yg==", 8, out, sizeof(out), &f);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "ab", 2);
	/* truncation */
	f = 0;
	n = mime_dec_base64("aGVsbG8gd29ybGQ=", 16, out, 4, &f);
	assert_int_equal(n, 4);
	assert_true(f & MIME_DEC_TRUNCATED);
}

static void test_qp_uu(void **state)
{
	unsigned char out[128];
	unsigned f = 0;
	size_t n;
	const char *qp = "caf=C3=A9 =\r\nsoft  \r\nbad=ZZ end=3d";
	const char *uu = "#0V%T\n";
	struct mime_uu_block blk;
	const char *text = "hello\nbegin 644 cat.txt\n#0V%T\n`\nend\nbye\n";

	(void)state;
	n = mime_dec_qp(qp, strlen(qp), out, sizeof(out), &f);
	out[n] = 0;
	assert_string_equal((char *)out, "caf\xc3\xa9 soft\r\nbad=ZZ end=");
	assert_true(f & MIME_DEC_BROKEN);
	f = 0;
	n = mime_dec_q("a_b=41", 6, out, sizeof(out), &f);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "a bA", 4);
	f = 0;
	n = mime_dec_uu(uu, strlen(uu), out, sizeof(out), &f);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "Cat", 3);
	assert_true(mime_dec_uu_find(text, strlen(text), 0, &blk));
	assert_int_equal(blk.name_len, 7);
	assert_memory_equal(text + blk.name_off, "cat.txt", 7);
	assert_false(blk.unterminated);
}

static void test_rfc2047_2231(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct mime_cs *cs = mime_cs_new();
	struct mime_slice out, tok;
	struct mime_param params[MIME_HDR_MAX_PARAMS];
	size_t np;
	unsigned f = 0;
	const char *v;

	(void)state;
	v = "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>";
	assert_int_equal(mime_hdr_decode(cs, a, v, strlen(v), &out, &f), 0);
	assert_true(slice_is(out, "Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>"));
	/* adjacent words: the space between them goes */
	v = "=?UTF-8?B?w6k=?=\r\n =?UTF-8?Q?t=C3=A9?= x";
	assert_int_equal(mime_hdr_decode(cs, a, v, strlen(v), &out, &f), 0);
	assert_true(slice_is(out, "\xc3\xa9t\xc3\xa9 x"));
	/* a multi-byte character split across two words */
	v = "=?UTF-8?B?w6?= =?UTF-8?B?k=?=";
	(void)v;
	v = "=?utf-8?q?=C3?= =?utf-8?q?=A9?=";
	assert_int_equal(mime_hdr_decode(cs, a, v, strlen(v), &out, &f), 0);
	assert_true(slice_is(out, "\xc3\xa9"));
	/* a broken word stays as it is */
	v = "=?bogus?X?abc?= ok";
	assert_int_equal(mime_hdr_decode(cs, a, v, strlen(v), &out, &f), 0);
	assert_true(slice_is(out, "=?bogus?X?abc?= ok"));
	/* RFC 2231 continuations with a charset, comments, quoted strings */
	v = " application/X-Stuff (comment); title*0*=us-ascii'en'This%20is%20even%20more%20;"
	    "\r\n title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"; "
	    "name=\"=?UTF-8?B?w6kuZXhl?=\"";
	assert_int_equal(
	    mime_hdr_params(cs, a, v, strlen(v), &tok, params, MIME_HDR_MAX_PARAMS, &np, &f), 0);
	assert_true(slice_is(tok, "application/x-stuff"));
	assert_true(slice_is(*mime_hdr_param(params, np, "title"),
			     "This is even more ***fun*** isn't it!"));
	assert_true(slice_is(*mime_hdr_param(params, np, "name"), "\xc3\xa9.exe"));
	v = "attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf";
	assert_int_equal(
	    mime_hdr_params(cs, a, v, strlen(v), &tok, params, MIME_HDR_MAX_PARAMS, &np, &f), 0);
	assert_true(slice_is(tok, "attachment"));
	assert_true(slice_is(*mime_hdr_param(params, np, "filename"), "\xe2\x82\xac rates.pdf"));
	mime_cs_free(cs);
	arena_free(a);
}

static void test_charset(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct mime_cs *cs = mime_cs_new();
	const char *out;
	size_t n;
	unsigned f = 0;

	(void)state;
	assert_int_equal(mime_cs_to_utf8(cs, "iso-8859-1", 10, "caf\xe9", 4, a, &out, &n, &f), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "caf\xc3\xa9", 5);
	assert_int_equal(f, 0);
	assert_int_equal(mime_cs_to_utf8(cs, "koi8-r", 6, "\xf0\xd2", 2, a, &out, &n, &f), 0);
	assert_memory_equal(out, "\xd0\x9f\xd1\x80", 4);
	/* invalid UTF-8 is replaced and noted */
	assert_int_equal(mime_cs_to_utf8(cs, "utf-8", 5,
					 "a\xff"
					 "b",
					 3, a, &out, &n, &f),
			 0);
	assert_memory_equal(out,
			    "a\xef\xbf\xbd"
			    "b",
			    5);
	assert_true(f & MIME_CS_REPLACED);
	f = 0;
	assert_int_equal(mime_cs_to_utf8(cs, "x-nonsense", 10, "a\xe9", 2, a, &out, &n, &f), 0);
	assert_true(f & MIME_CS_UNKNOWN);
	/* invalid Shift_JIS */
	f = 0;
	assert_int_equal(
	    mime_cs_to_utf8(cs, "shift_jis", 9, "\x82\xa0\xff\xff", 4, a, &out, &n, &f), 0);
	assert_true(f & MIME_CS_REPLACED);
	mime_cs_free(cs);
	arena_free(a);
}

static const char multi[] = "From: a@example.com\r\n"
			    "Subject: =?UTF-8?Q?caf=C3=A9?=\r\n"
			    "Received: one\r\n"
			    "Received: two\r\n"
			    "\tfolded\r\n"
			    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
			    "\r\n"
			    "preamble\r\n"
			    "--outer\r\n"
			    "Content-Type: text/plain; charset=iso-8859-1\r\n"
			    "Content-Transfer-Encoding: quoted-printable\r\n"
			    "\r\n"
			    "caf=E9\r\n"
			    "--outer\r\n"
			    "Content-Type: multipart/alternative; boundary=inner\r\n"
			    "\r\n"
			    "--inner\r\n"
			    "Content-Type: text/html\r\n"
			    "\r\n"
			    "<p>hi</p>\r\n"
			    "--inner--\r\n"
			    "--outer\r\n"
			    "Content-Type: message/rfc822\r\n"
			    "\r\n"
			    "Subject: inner\r\n"
			    "\r\n"
			    "nested body\r\n"
			    "--outer\r\n"
			    "Content-Type: application/octet-stream; name=\"x.bin\"\r\n"
			    "Content-Transfer-Encoding: base64\r\n"
			    "\r\n"
			    "aGVsbG8=\r\n"
			    "--outer--\r\n"
			    "epilogue\r\n";

static void test_structure(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_TEXT);
	struct mime_msg *m = parse(e, multi, sizeof(multi) - 1);
	const struct mime_part *root = mime_msg_root(m), *p;
	const struct mime_header *h;

	(void)state;
	assert_int_equal(root->kind, MIME_KIND_MULTIPART);
	assert_true(slice_is(root->type, "multipart/mixed"));
	assert_int_equal(root->nheaders, 5);
	/* duplicates kept in order, folding kept in raw and unfolded in value */
	assert_true(slice_is(root->headers[2].value, "one"));
	assert_true(slice_is(root->headers[3].value, "two folded"));
	h = mime_part_header(root, "subject");
	assert_true(slice_is(h->value, "caf\xc3\xa9"));
	p = by_path(m, "1");
	assert_non_null(p);
	assert_true(slice_is(p->decoded, "caf\xe9"));
	assert_true(slice_is(p->text, "caf\xc3\xa9"));
	p = by_path(m, "2/1");
	assert_non_null(p);
	assert_true(slice_is(p->type, "text/html"));
	assert_true(slice_is(p->body, "<p>hi</p>"));
	p = by_path(m, "3");
	assert_int_equal(p->kind, MIME_KIND_MESSAGE);
	p = by_path(m, "3/1");
	assert_non_null(p);
	assert_true(slice_is(mime_part_header(p, "subject")->value, "inner"));
	assert_true(slice_is(p->body, "nested body"));
	p = by_path(m, "4");
	assert_true(slice_is(p->decoded, "hello"));
	assert_true(slice_is(p->filename, "x.bin"));
	assert_true(p->flags & MIME_PF_ATTACHMENT);
	assert_int_equal(mime_msg_nfindings(m), 0);
	mime_msg_free(m);
	mime_engine_free(e);
}

static void test_hostile(void **state)
{
	struct mime_limits lim;
	struct mime_engine *e;
	struct mime_msg *m;
	char *big;
	size_t n = 0, cap = 10000 * 80 + 1000;

	(void)state;
	mime_limits_default(&lim);
	e = mime_engine_new(&lim, MIME_OPT_TEXT);
	/* 10,000 nested multiparts */
	big = malloc(cap);
	for (int i = 0; i < 10000; i++)
		n += (size_t)snprintf(big + n, cap - n,
				      "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i,
				      i);
	m = parse(e, big, n);
	assert_true(mime_msg_has_finding(m, "MIME_TOO_DEEP"));
	assert_true(mime_msg_has_finding(m, "MIME_BOUNDARY_UNCLOSED"));
	assert_true(mime_msg_nparts(m) <= lim.max_depth + 1);
	mime_msg_free(m);
	free(big);
	/* a boundary that never closes */
	m = parse_str(e, "Content-Type: multipart/mixed; boundary=x\n\n--x\n\nbody\n");
	assert_true(mime_msg_has_finding(m, "MIME_BOUNDARY_UNCLOSED"));
	assert_true(slice_is(by_path(m, "1")->body, "body\n"));
	mime_msg_free(m);
	/* headers without a body, then nothing at all */
	m = parse_str(e, "Subject: x\nFrom: y");
	assert_int_equal(mime_msg_root(m)->nheaders, 2);
	assert_true(mime_msg_root(m)->flags & MIME_PF_NO_BODY);
	mime_msg_free(m);
	m = parse(e, "", 0);
	assert_int_equal(mime_msg_nparts(m), 1);
	mime_msg_free(m);
	/* NUL bytes and invalid UTF-8 everywhere */
	{
		static const char nul[] = "Subject: a\0b\xff\xfe\nContent-Type: text/plain; "
					  "charset=utf-8\n\nx\0y\xc3\x28\n";
		m = parse(e, nul, sizeof(nul) - 1);
		assert_true(mime_msg_has_finding(m, "MIME_NUL_BYTES"));
		assert_true(mime_msg_has_finding(m, "MIME_BAD_CHARSET"));
		assert_true(mime_msg_root(m)->flags & MIME_PF_TEXT);
		mime_msg_free(m);
	}
	/* part count limit */
	lim.max_parts = 3;
	mime_engine_free(e);
	e = mime_engine_new(&lim, 0);
	m = parse_str(e,
		      "Content-Type: multipart/mixed; boundary=x\n\n--x\n\na\n--x\n\nb\n--x\n\nc\n"
		      "--x--\n");
	assert_true(mime_msg_has_finding(m, "MIME_TOO_MANY_PARTS"));
	assert_int_equal(mime_msg_nparts(m), 3);
	mime_msg_free(m);
	/* header count limit */
	lim.max_parts = 10;
	lim.max_headers = 2;
	mime_engine_free(e);
	e = mime_engine_new(&lim, 0);
	m = parse_str(e, "A: 1\nB: 2\nC: 3\nD: 4\n\nbody\n");
	assert_true(mime_msg_has_finding(m, "MIME_HEADER_LIMIT"));
	assert_int_equal(mime_msg_root(m)->nheaders, 2);
	assert_true(slice_is(mime_msg_root(m)->body, "body\n"));
	mime_msg_free(m);
	mime_engine_free(e);
}

static void test_decoded_limit(void **state)
{
	struct mime_limits lim;
	struct mime_engine *e;
	struct mime_msg *m;
	size_t n = 4 * 1024 * 1024;
	char *b = malloc(n + 200);
	int h;

	(void)state;
	mime_limits_default(&lim);
	lim.max_decoded = 1024 * 1024;
	e = mime_engine_new(&lim, MIME_OPT_TEXT);
	h = snprintf(b, 200, "Content-Transfer-Encoding: base64\n\n");
	for (size_t i = 0; i < n; i++)
		b[h + (int)i] = "QUJD\n"[i % 5];
	m = parse(e, b, (size_t)h + n);
	assert_true(mime_msg_has_finding(m, "MIME_DECODED_LIMIT"));
	assert_true(mime_msg_root(m)->decoded.len <= lim.max_decoded);
	mime_msg_free(m);
	mime_engine_free(e);
	free(b);
}

static void test_encoded_message_and_uu(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_TEXT);
	struct mime_msg *m;
	const struct mime_part *p;

	(void)state;
	/* base64 message/rfc822 ("Subject: s\n\nb\n") parsed after decoding */
	m = parse_str(e, "Content-Type: multipart/mixed; boundary=z\n\n--z\n"
			 "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
			 "U3ViamVjdDogcwoKYgo=\n--z--\n");
	p = by_path(m, "1/1");
	assert_non_null(p);
	assert_true(slice_is(mime_part_header(p, "subject")->value, "s"));
	assert_true(slice_is(p->decoded, "b\n"));
	mime_msg_free(m);
	m = parse_str(e, "Subject: uu\n\nsee attached\nbegin 644 cat.txt\n#0V%T\n`\nend\n");
	p = by_path(m, "cat.txt");
	assert_non_null(p);
	assert_int_equal(p->origin, MIME_FROM_UU);
	assert_true(slice_is(p->decoded, "Cat"));
	mime_msg_free(m);
	mime_engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64),	  cmocka_unit_test(test_qp_uu),
	    cmocka_unit_test(test_rfc2047_2231),  cmocka_unit_test(test_charset),
	    cmocka_unit_test(test_structure),	  cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_decoded_limit), cmocka_unit_test(test_encoded_message_and_uu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
