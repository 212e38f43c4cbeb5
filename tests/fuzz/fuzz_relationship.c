/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the sender-relationship look-alike test and the
 * decision over a From domain and a correspondent's domain taken from the
 * input ("domain\ncorrespondent"), both hostile: a From header is the
 * sender's to write. */
#include <libpsl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/relationship.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const psl_ctx_t *psl;
	static struct rel_facts f;
	char a[300], b[300], why[32];
	struct scan_symbol out[REL_MAX_SYMBOLS];
	const uint8_t *nl = memchr(data, '\n', size);
	size_t la = nl ? (size_t)(nl - data) : size, lb = nl ? size - la - 1 : 0;
	char *doms[1] = {b};
	size_t n;

	if (!psl)
		psl = psl_latest(NULL);
	if (la >= sizeof(a) || lb >= sizeof(b))
		return 0;
	memcpy(a, data, la);
	a[la] = '\0';
	memcpy(b, nl ? nl + 1 : data, lb);
	b[lb] = '\0';
	if (memchr(a, '\0', la) || memchr(b, '\0', lb))
		return 0;
	(void)rel_lookalike(psl, a, b, why, sizeof(why));
	if (rel_edit_distance(a, la, b, lb, 2) > 3)
		__builtin_trap();
	(void)rel_freemail(a);

	memset(&f, 0, sizeof(f));
	if (str_fmt(f.identity, sizeof(f.identity), "x@%s", a) < 0)
		return 0;
	(void)str_copy(f.rcpt[0].rcpt, sizeof(f.rcpt[0].rcpt), "ceo@customer.example");
	f.rcpt[0].domains = doms;
	f.rcpt[0].ndomains = 1;
	f.nrcpts = 1;
	f.established = 2;
	n = rel_decide(&f, psl, true, out, REL_MAX_SYMBOLS);
	if (n > REL_MAX_SYMBOLS)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (!out[i].name[0] ||
		    strnlen(out[i].detail, sizeof(out[i].detail)) >= sizeof(out[i].detail))
			__builtin_trap();
	return 0;
}
