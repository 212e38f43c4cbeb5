/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the hash lists of engine 2 (av_yara_hashes_parse).
 * A refusal names file:line; whatever was accepted can be looked up. */
#include <stdint.h>
#include <string.h>

#include "scan/av_yara.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct av_yara_db *db = av_yara_db_new_empty();
	char err[256];

	if (!db)
		return 0;
	err[0] = '\0';
	if (av_yara_hashes_parse(db, "fuzz", (const char *)data, size, err, sizeof(err)) < 0 &&
	    strncmp(err, "fuzz:", 5) != 0)
		__builtin_trap();
	(void)av_yara_hash_lookup(db, data, size);
	(void)av_yara_hash_lookup(db, "", 0);
	av_yara_db_free(db);
	return 0;
}
