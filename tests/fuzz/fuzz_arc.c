/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the ARC header parser (auth/arc): the chain structure
 * of a whole message (field splitting, instance tags, tag lists, cv= rules)
 * and the ARC-Authentication-Results instance prefix. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "auth/arc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char why[128];
	int n = -1, rc, inst;

	rc = arc_chain_check(s, size, &n, why, sizeof(why));
	if (rc == 0 && (n < 0 || n > ARC_MAX_INSTANCES))
		__builtin_trap();
	if (rc < 0 && rc != -EBADMSG && rc != -ENOMEM)
		__builtin_trap();
	if (rc == -EBADMSG && (!why[0] || !memchr(why, '\0', sizeof(why))))
		__builtin_trap();
	inst = arc_aar_instance(s, size);
	if (inst >= 0 && (inst < 1 || inst > ARC_MAX_INSTANCES))
		__builtin_trap();
	return 0;
}
