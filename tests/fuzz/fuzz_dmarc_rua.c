/* SPDX-License-Identifier: MIT */
/*
 * fuzz_dmarc_rua: the rua= parser of the DMARC report sender
 * (auth/dmarc_report.h), and the XML writer fed with the parsed address
 * as hostile row text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dmarc_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_rua r[DMARC_REPORT_MAX_RUA];
	struct store_dmarc_agg a;
	struct dmarc_report_meta m = {.org_name = "o", .email = "e@x", .report_id = "id"};
	char *in = malloc(size + 1), *xml = NULL;
	size_t n = 0, len = 0;

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	(void)dmarc_rua_parse(in, r, DMARC_REPORT_MAX_RUA, &n);
	if (n > DMARC_REPORT_MAX_RUA)
		abort();
	memset(&a, 0, sizeof(a));
	for (size_t i = 0; i < n; i++) {
		if (!memchr(r[i].addr, '\0', sizeof(r[i].addr)) || !strchr(r[i].addr, '@'))
			abort();
		(void)str_copy(a.r.header_from, sizeof(a.r.header_from), r[i].addr);
	}
	(void)str_copyn(a.r.source_ip, sizeof(a.r.source_ip), in, size);
	a.count = 1;
	if (dmarc_report_xml(&m, &a, 1, &xml, &len) == 0) {
		/* no raw markup from the input survives */
		if (memchr(xml, '\x01', len))
			abort();
		free(xml);
	}
	free(in);
	return 0;
}
