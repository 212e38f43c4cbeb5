/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: headercheck's RFC 5322 date parser, its Received
 * parser and the whole header check over the input as a message. */
#include <libpsl.h>
#include <stdint.h>
#include <string.h>

#include "mime/mime.h"
#include "scan/headercheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *arg, const char *symbol, double score, const char *detail)
{
	(void)score;
	if (!symbol[0] || strlen(detail) >= 256)
		__builtin_trap();
	(*(size_t *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mime_engine *eng;
	static const psl_ctx_t *psl;
	const char *rcpts[2] = {"ceo@customer.example", "x@y"};
	struct headercheck_env env = {
	    .rcpts = rcpts,
	    .nrcpts = 2,
	    .helo = "helo.example",
	    .hostname = "mx.example",
	    .now = 1704103200,
	};
	char from[64], by[64];
	struct mime_msg *m = NULL;
	int64_t t;
	size_t hits = 0;

	if (!eng) {
		struct mime_limits l;
		mime_limits_default(&l);
		eng = mime_engine_new(&l, MIME_OPT_TEXT);
		psl = psl_builtin();
		if (!eng)
			__builtin_trap();
	}
	(void)headercheck_parse_date((const char *)data, size, &t);
	if (headercheck_parse_received((const char *)data, size, from, sizeof(from), by, sizeof(by),
				       &t) == 0 &&
	    (!memchr(from, '\0', sizeof(from)) || !memchr(by, '\0', sizeof(by))))
		__builtin_trap();
	if (mime_parse(eng, (const char *)data, size, &m) < 0)
		return 0;
	if (headercheck_scan((const struct psl_ctx_st *)psl, m, &env, sink, &hits) != hits)
		__builtin_trap();
	mime_msg_free(m);
	return 0;
}
