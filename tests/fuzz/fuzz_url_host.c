/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: urlcheck's host parser (WHATWG IPv4 forms, [v6]),
 * the confusable skeleton and the mixed-script test, then the whole URL
 * check over the input as a plain-text and an HTML body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "scan/urlcheck.h"

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
	static struct urlcheck *uc;
	static struct mime_engine *eng;
	char sk[600], reg[256], err[256], msg[8192];
	const char *rcpts[1] = {"ceo@customer.example"};
	struct mime_msg *m = NULL;
	uint32_t v4;
	size_t n = size < 512 ? size : 512, hits = 0;
	int k;

	if (!uc) {
		struct mime_limits l;
		mime_limits_default(&l);
		eng = mime_engine_new(&l, MIME_OPT_TEXT | MIME_OPT_URLS);
		if (urlcheck_new(NULL, &uc, err, sizeof(err)) < 0 || !eng)
			__builtin_trap();
	}
	(void)urlcheck_host_kind((const char *)data, n, &v4);
	k = urlcheck_skeleton((const char *)data, n, sk, sizeof(sk));
	if (k >= 0 && (size_t)k >= sizeof(sk))
		__builtin_trap();
	(void)urlcheck_mixed_script((const char *)data, n);
	if (n < sizeof(reg)) {
		char host[256];
		memcpy(host, data, n);
		host[n] = '\0';
		if (urlcheck_registrable(urlcheck_psl(uc), host, reg, sizeof(reg)) == 0 &&
		    !memchr(reg, '\0', sizeof(reg)))
			__builtin_trap();
	}
	for (int html = 0; html < 2; html++) {
		int len = snprintf(msg, sizeof(msg), "Content-Type: text/%s\r\n\r\n%s%.*s%s\r\n",
				   html ? "html" : "plain", html ? "<a href=\"http://" : "http://",
				   (int)(size < 4096 ? size : 4096), (const char *)data,
				   html ? "</a>" : "");
		if (len < 0 || (size_t)len >= sizeof(msg))
			continue;
		if (mime_parse(eng, msg, (size_t)len, &m) < 0)
			continue;
		(void)urlcheck_scan(uc, m, rcpts, 1, sink, &hits);
		mime_msg_free(m);
	}
	return 0;
}
