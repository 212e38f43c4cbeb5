/* SPDX-License-Identifier: MIT */
/* TNEF (winmail.dat): the reader on its own, through the MIME engine on
 * MimeKit's fixtures (../shared/corpus/mime/mimekit/tnef: every file its
 * directory holds must come out, byte for byte), and hand-made hostile
 * streams (truncated, huge declared lengths and counts, attachment bombs,
 * TNEF in TNEF). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/mime.h"
#include "mime/tnef.h"

#define CORPUS MXG_SOURCE_ROOT "/../shared/corpus/mime/mimekit/tnef"
#define BOUNDARY "=_mxguard-tnef-test-3f9a1c0e7b"

/* ---- a small TNEF writer for the hand-made cases ----------------------- */

struct w {
	unsigned char *b;
	size_t n, cap;
};

static void w_bytes(struct w *w, const void *p, size_t n)
{
	if (w->n + n > w->cap) {
		w->cap = (w->n + n) * 2 + 64;
		w->b = realloc(w->b, w->cap);
		assert_non_null(w->b);
	}
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void w_u16(struct w *w, uint16_t v)
{
	unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
	w_bytes(w, b, 2);
}

static void w_u32(struct w *w, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};
	w_bytes(w, b, 4);
}

static void w_start(struct w *w)
{
	w_bytes(w, TNEF_SIGNATURE, 4);
	w_u16(w, 0x1234);
}

/* one attribute; declared overrides the length written when nonzero */
static void w_attr(struct w *w, uint8_t lvl, uint32_t id, const void *d, size_t n,
		   uint32_t declared)
{
	uint16_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint16_t)(sum + ((const unsigned char *)d)[i]);
	w_bytes(w, &lvl, 1);
	w_u32(w, id);
	w_u32(w, declared ? declared : (uint32_t)n);
	w_bytes(w, d, n);
	w_u16(w, sum);
}

static void w_file(struct w *w, const char *name, const void *d, size_t n)
{
	w_attr(w, 2, 0x00069002, "\x01\x00\xff\xff\xff\xff\x20\x00\x20\x00\x00\x00\x00\x00", 14, 0);
	w_attr(w, 2, 0x00018010, name, strlen(name) + 1, 0);
	w_attr(w, 2, 0x0006800f, d, n, 0);
}

/* A message: a text part, then the stream as an application/ms-tnef
 * attachment (binary, so the test needs no encoder). */
static char *wrap(const void *tnef, size_t n, size_t *len)
{
	static const char head[] =
	    "From: a@b.test\r\nContent-Type: multipart/mixed; boundary=\"" BOUNDARY
	    "\"\r\n\r\n--" BOUNDARY "\r\nContent-Type: text/plain\r\n\r\nsee "
	    "attached\r\n--" BOUNDARY
	    "\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
	    "Content-Disposition: attachment; filename=\"winmail.dat\"\r\n"
	    "Content-Transfer-Encoding: binary\r\n\r\n";
	static const char tail[] = "\r\n--" BOUNDARY "--\r\n";
	char *m = malloc(sizeof(head) + n + sizeof(tail));

	assert_non_null(m);
	memcpy(m, head, sizeof(head) - 1);
	memcpy(m + sizeof(head) - 1, tnef, n);
	memcpy(m + sizeof(head) - 1 + n, tail, sizeof(tail) - 1);
	*len = sizeof(head) - 1 + n + sizeof(tail) - 1;
	return m;
}

/* *raw must outlive the message (the engine keeps slices of it) */
static struct mime_msg *parse_tnef(struct mime_engine *e, const void *tnef, size_t n, char **raw)
{
	struct mime_msg *m = NULL;
	size_t len;

	*raw = wrap(tnef, n, &len);
	assert_int_equal(mime_parse(e, *raw, len, &m), 0);
	assert_non_null(m);
	return m;
}

static bool slice_is(struct mime_slice s, const char *lit)
{
	return s.len == strlen(lit) && !memcmp(s.ptr, lit, s.len);
}

static size_t count_tnef(const struct mime_msg *m)
{
	size_t k = 0;

	for (size_t i = 0; i < mime_msg_nparts(m); i++)
		k += mime_msg_part(m, i)->origin == MIME_FROM_TNEF;
	return k;
}

/* ---- the reader alone -------------------------------------------------- */

static void test_reader(void **state)
{
	struct tnef *t;
	struct tnef_attachment a;
	struct w w = {0};

	(void)state;
	assert_int_equal(tnef_new("not tnef", 8, &t), -EINVAL);
	assert_null(t);
	w_start(&w);
	w_attr(&w, 1, 0x00089006, "\x00\x00\x01\x00", 4, 0); /* attTnefVersion */
	w_file(&w, "report.doc", "DATA", 4);
	w_file(&w, "b.txt", "", 0);
	assert_int_equal(tnef_new((const char *)w.b, w.n, &t), 0);
	assert_int_equal(tnef_next(t, &a), 1);
	assert_true(slice_is(a.name, "report.doc"));
	assert_true(slice_is(a.data, "DATA"));
	assert_int_equal(tnef_next(t, &a), 1);
	assert_true(slice_is(a.name, "b.txt"));
	assert_int_equal(a.data.len, 0);
	assert_int_equal(tnef_next(t, &a), 0);
	assert_null(tnef_error(t));
	assert_int_equal(tnef_flags(t), 0);
	tnef_free(t);
	free(w.b);
}

/* ---- MimeKit's fixtures ------------------------------------------------ */

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long l;

	if (!f)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	l = ftell(f);
	assert_true(l >= 0);
	rewind(f);
	b = malloc((size_t)l + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)l, f), (size_t)l);
	fclose(f);
	*n = (size_t)l;
	return b;
}

/* b without CR before LF (the fixtures' text files went through git) */
static size_t lf_only(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			out[o++] = s[i];
	return o;
}

static bool same_content(struct mime_slice got, const char *exp, size_t n)
{
	char *a, *b;
	size_t la, lb;
	bool eq;

	if (got.len == n && !memcmp(got.ptr, exp, n))
		return true;
	/* the fixtures keep an embedded object's 16-byte interface id */
	if (n >= 16 && got.len == n - 16 && !memcmp(got.ptr, exp + 16, n - 16))
		return true;
	a = malloc(got.len + 1);
	b = malloc(n + 1);
	la = lf_only(got.ptr, got.len, a);
	lb = lf_only(exp, n, b);
	eq = la == lb && !memcmp(a, b, la);
	free(a);
	free(b);
	return eq;
}

/* "Untitled Attachment.3" was "Untitled Attachment" before the unpacker
 * made the names unique */
static size_t base_len(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t n = strlen(name);

	if (dot && dot[1] >= '1' && dot[1] <= '9' && !dot[2] && !strncmp(name, "Untitled", 8))
		return (size_t)(dot - name);
	return n;
}

static void check_fixture(struct mime_engine *e, const char *stem)
{
	char path[512], dir[512];
	size_t n, matched = 0, expected = 0;
	char *tnef;
	char *raw;
	struct mime_msg *m;
	bool used[1000] = {false};
	DIR *dh;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s.tnef", CORPUS, stem);
	snprintf(dir, sizeof(dir), "%s/%s", CORPUS, stem);
	tnef = slurp(path, &n);
	assert_non_null(tnef);
	m = parse_tnef(e, tnef, n, &raw);
	if (strcmp(stem, "panic") != 0 && strcmp(stem, "garbage-at-end") != 0)
		assert_false(mime_msg_has_finding(m, "TNEF_CORRUPT"));
	if (!(dh = opendir(dir))) { /* no attachments expected */
		mime_msg_free(m);
		free(raw);
		free(tnef);
		return;
	}
	while ((de = readdir(dh))) {
		char fp[1024];
		size_t en;
		char *exp;
		bool found = false;

		if (de->d_name[0] == '.' || !strncmp(de->d_name, "message.", 8))
			continue; /* the message body, which we do not extract */
		snprintf(fp, sizeof(fp), "%s/%s", dir, de->d_name);
		exp = slurp(fp, &en);
		assert_non_null(exp);
		expected++;
		for (size_t i = 0; i < mime_msg_nparts(m) && i < 1000 && !found; i++) {
			const struct mime_part *p = mime_msg_part(m, i);
			size_t bl = base_len(de->d_name);
			if (used[i] || p->origin != MIME_FROM_TNEF || p->filename.len != bl ||
			    memcmp(p->filename.ptr, de->d_name, bl) != 0 ||
			    !same_content(p->decoded, exp, en))
				continue;
			/* the path: the MIME part, the container's name, the member's */
			assert_true(p->path.len > 14 && !memcmp(p->path.ptr, "2/winmail.dat/", 14));
			used[i] = found = true;
		}
		if (!found)
			fail_msg("%s: no TNEF part %s of %zu bytes", stem, de->d_name, en);
		matched++;
		free(exp);
	}
	closedir(dh);
	assert_int_equal(matched, expected);
	mime_msg_free(m);
	free(raw);
	free(tnef);
}

static void test_fixtures(void **state)
{
	static const char *const stems[] = {
	    "MAPI_ATTACH_DATA_OBJ",
	    "MAPI_OBJECT",
	    "attachments",
	    "body",
	    "christmas",
	    "data-before-name",
	    "garbage-at-end",
	    "long-filename",
	    "missing-filenames",
	    "multi-name-property",
	    "multi-value-attribute",
	    "one-file",
	    "panic",
	    "rtf",
	    "triples",
	    "two-files",
	    "unicode-mapi-attr",
	    "unicode-mapi-attr-name",
	    "winmail",
	};
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_ALL);
	DIR *dh = opendir(CORPUS);

	(void)state;
	if (!dh) {
		mime_engine_free(e);
		skip(); /* the shared corpus is absent */
	}
	closedir(dh);
	assert_non_null(e);
	for (size_t i = 0; i < sizeof(stems) / sizeof(stems[0]); i++)
		check_fixture(e, stems[i]);
	mime_engine_free(e);
}

/* What the engine makes of a TNEF attachment: path, libmagic, archives. */
static void test_engine(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_ALL);
	char *raw;
	struct mime_msg *m;
	const struct mime_part *p = NULL;
	struct w w = {0}, inner = {0};
	/* an empty zip archive */
	static const char zip[] = "PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

	(void)state;
	assert_non_null(e);
	w_start(&inner);
	w_file(&inner, "inner.zip", zip, sizeof(zip) - 1);
	w_start(&w);
	w_file(&w, "report.doc",
	       "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 _\0V\0B\0A\0_\0P\0R\0O\0J\0E\0C\0T\0", 33);
	w_file(&w, "nested.dat", inner.b, inner.n);
	m = parse_tnef(e, w.b, w.n, &raw);
	for (size_t i = 0; i < mime_msg_nparts(m); i++)
		if (slice_is(mime_msg_part(m, i)->path, "2/winmail.dat/report.doc"))
			p = mime_msg_part(m, i);
	assert_non_null(p);
	assert_int_equal(p->origin, MIME_FROM_TNEF);
	assert_true(p->flags & MIME_PF_MACROS);
	assert_true(mime_msg_has_finding(m, "OFFICE_MACROS"));
	p = NULL;
	for (size_t i = 0; i < mime_msg_nparts(m); i++)
		if (slice_is(mime_msg_part(m, i)->path, "2/winmail.dat/nested.dat/inner.zip"))
			p = mime_msg_part(m, i);
	assert_non_null(p);
	assert_true(p->flags & MIME_PF_ARCHIVE);
	assert_true(slice_is(p->detected, "application/zip"));
	assert_false(mime_msg_has_finding(m, "TNEF_CORRUPT"));
	mime_msg_free(m);
	free(raw);
	mime_engine_free(e);
	free(w.b);
	free(inner.b);
}

/* ---- hostile streams --------------------------------------------------- */

static void test_truncated(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_ALL);
	struct w w = {0};
	size_t corrupt = 0, attrs;

	(void)state;
	w_start(&w);
	w_attr(&w, 1, 0x00089006, "\x00\x00\x01\x00", 4, 0);
	w_file(&w, "a.txt", "hello", 5);
	w_file(&w, "b.txt", "world", 5);
	attrs = 7;
	/* every prefix: never a crash, never a byte from past the end */
	for (size_t cut = 0; cut <= w.n; cut++) {
		char *raw;
		struct mime_msg *m = parse_tnef(e, w.b, cut, &raw);
		for (size_t i = 0; i < mime_msg_nparts(m); i++) {
			const struct mime_part *p = mime_msg_part(m, i);
			if (p->origin == MIME_FROM_TNEF)
				assert_true(p->decoded.len <= 5);
		}
		/* a cut between two attributes leaves a valid stream */
		if (cut > 6 && mime_msg_has_finding(m, "TNEF_CORRUPT"))
			corrupt++;
		if (cut == w.n)
			assert_int_equal(count_tnef(m), 2);
		mime_msg_free(m);
		free(raw);
	}
	assert_int_equal(corrupt, w.n - 6 - attrs);
	mime_engine_free(e);
	free(w.b);
}

static void test_huge_lengths(void **state)
{
	struct mime_engine *e = mime_engine_new(NULL, MIME_OPT_ALL);
	char *raw;
	struct mime_msg *m;
	struct w w = {0}, props = {0};

	(void)state;
	/* an attribute that declares 4 GB */
	w_start(&w);
	w_attr(&w, 2, 0x0006800f, "abc", 3, 0xfffffff0u);
	m = parse_tnef(e, w.b, w.n, &raw);
	assert_true(mime_msg_has_finding(m, "TNEF_CORRUPT"));
	assert_int_equal(count_tnef(m), 0);
	mime_msg_free(m);
	free(raw);
	/* a MAPI block that declares 4 billion properties, a string of 2 GB,
	 * and a named property with a 4 GB name */
	for (int k = 0; k < 3; k++) {
		props.n = 0;
		w_u32(&props, k == 0 ? 0xffffffffu : 1);
		if (k == 2) {
			w_u16(&props, 0x001e);
			w_u16(&props, 0x8001);
			w_bytes(&props, "0123456789abcdef", 16);
			w_u32(&props, 1);
			w_u32(&props, 0xfffffffcu);
		} else {
			w_u16(&props, 0x001e); /* PT_STRING8 */
			w_u16(&props, 0x3707); /* PR_ATTACH_LONG_FILENAME */
			w_u32(&props, 1);
			w_u32(&props, k == 1 ? 0x7fffffffu : 4);
			w_bytes(&props, "x.ex", 4);
		}
		w.n = 0;
		w_start(&w);
		w_file(&w, "a.txt", "hello", 5);
		w_attr(&w, 2, 0x00069005, props.b, props.n, 0);
		m = parse_tnef(e, w.b, w.n, &raw);
		assert_true(mime_msg_has_finding(m, "TNEF_CORRUPT"));
		/* what was read before the damage is still scanned */
		assert_int_equal(count_tnef(m), 1);
		mime_msg_free(m);
		free(raw);
	}
	/* application/ms-tnef that is not TNEF */
	m = parse_tnef(e, "hello world", 11, &raw);
	assert_true(mime_msg_has_finding(m, "TNEF_CORRUPT"));
	mime_msg_free(m);
	free(raw);
	mime_engine_free(e);
	free(w.b);
	free(props.b);
}

static void test_bombs(void **state)
{
	struct mime_limits lim;
	struct mime_engine *e;
	char *raw;
	struct mime_msg *m;
	struct w w = {0}, nest = {0};

	(void)state;
	mime_limits_default(&lim);
	e = mime_engine_new(&lim, MIME_OPT_ALL);
	/* 200,000 attachments in 5 MB */
	w_start(&w);
	for (int i = 0; i < 200000; i++)
		w_file(&w, "x", "y", 1);
	m = parse_tnef(e, w.b, w.n, &raw);
	assert_true(mime_msg_has_finding(m, "TNEF_TOO_MANY_ATTACHMENTS") ||
		    mime_msg_has_finding(m, "MIME_TOO_MANY_PARTS"));
	assert_true(mime_msg_nparts(m) <= lim.max_parts);
	mime_msg_free(m);
	free(raw);
	/* as many empty rendering records: nothing to scan, no parts */
	w.n = 0;
	w_start(&w);
	for (int i = 0; i < 200000; i++)
		w_attr(&w, 2, 0x00069002, "", 0, 0);
	m = parse_tnef(e, w.b, w.n, &raw);
	assert_int_equal(count_tnef(m), 0);
	mime_msg_free(m);
	free(raw);
	/* TNEF in TNEF in TNEF ...: stopped at max_archive_depth */
	w.n = 0;
	w_bytes(&w, "payload", 7);
	for (int d = 0; d < 10; d++) {
		nest.n = 0;
		w_start(&nest);
		w_file(&nest, "winmail.dat", w.b, w.n);
		w.n = 0;
		w_bytes(&w, nest.b, nest.n);
	}
	m = parse_tnef(e, w.b, w.n, &raw);
	assert_true(mime_msg_has_finding(m, "ARCHIVE_TOO_DEEP"));
	assert_true(count_tnef(m) <= lim.max_archive_depth + 1);
	mime_msg_free(m);
	free(raw);
	mime_engine_free(e);
	free(w.b);
	free(nest.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reader),	 cmocka_unit_test(test_fixtures),
	    cmocka_unit_test(test_engine),	 cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_huge_lengths), cmocka_unit_test(test_bombs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
