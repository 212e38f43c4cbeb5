/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the SpamAssassin rule-file parser and compiler
 * (sarules_db_load_mem), then one scan of a fixed message, so that what
 * was accepted also runs: conditionals, meta expressions, Perl regexes
 * through Vectorscan and PCRE2. Inputs are capped: Vectorscan compiles
 * are costly and the point is the parser. */
#include <stdint.h>
#include <string.h>

#include "mime/mime.h"
#include "scan/sarules.h"

#define FUZZ_MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char msg[] =
    "From: A <a@example.org>\r\nTo: b@example.net\r\n"
    "Subject: hello there\r\nDate: Mon, 02 Jan 2023 18:00:00 +0000\r\n"
    "Content-Type: text/plain\r\n\r\nSee http://192.0.2.1/x now.\r\n\r\n"
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";

static void on_hit(void *arg, const char *name, double score, const char *describe)
{
	(void)arg;
	(void)score;
	if (!name[0] || !describe)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sarules_db *db = NULL;
	struct sarules_scanner *s = NULL;
	struct mime_engine *e;
	struct mime_limits lim;
	struct mime_msg *m = NULL;
	char err[256];

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (sarules_db_load_mem("fuzz.cf", (const char *)data, size, &db, err, sizeof(err)) < 0)
		return 0; /* only out of memory fails a load */
	if (sarules_db_nloaded(db) + sarules_db_nskipped(db) > 0 &&
	    sarules_scanner_new(db, &s) == 0) {
		mime_limits_default(&lim);
		e = mime_engine_new(&lim, MIME_OPT_TEXT | MIME_OPT_URLS);
		if (e && mime_parse(e, msg, sizeof(msg) - 1, &m) == 0) {
			(void)sarules_scan(s, m, msg, sizeof(msg) - 1, "x@example.org", on_hit,
					   NULL);
			mime_msg_free(m);
		}
		mime_engine_free(e);
		sarules_scanner_free(s);
	}
	sarules_db_free(db);
	return 0;
}
