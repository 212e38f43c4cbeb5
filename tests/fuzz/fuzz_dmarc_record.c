/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the DMARC record parser, the From field parser and
 * alignment (auth/dmarc). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <libpsl.h>

#include "auth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char rec[RESOLVER_MAX_TEXT + 1], dom[DMARC_DOMAIN_LEN];
	size_t n = size < RESOLVER_MAX_TEXT ? size : RESOLVER_MAX_TEXT, naddr;
	struct dmarc_record r;
	int rc;

	memcpy(rec, data, n);
	rec[n] = '\0';
	rc = dmarc_record_parse(rec, n, &r);
	if (rc == 0 && (r.p == DMARC_POLICY_UNSET || r.pct < 0 || r.pct > 100))
		__builtin_trap();
	if ((rc == 0 || rc == -ENOENT) &&
	    (r.rua_len > n || r.ruf_len > n || r.fo_len > n || r.rf_len > n))
		__builtin_trap();
	/* the same bytes as the value of a From field */
	if (dmarc_from_domain(rec, n, dom, sizeof(dom), &naddr) == 0) {
		if (strlen(dom) == 0 || strlen(dom) >= sizeof(dom) || naddr == 0)
			__builtin_trap();
		if (!dmarc_aligned(psl_builtin(), dom, dom, true) ||
		    !dmarc_aligned(psl_builtin(), dom, dom, false))
			__builtin_trap();
	}
	return 0;
}
