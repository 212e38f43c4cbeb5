/* SPDX-License-Identifier: MIT */
/*
 * cli_dkim: `mxguard dkim keygen|list|activate|remove` (DKIM signing keys
 * per hosted domain, auth/dkim_keys.h) and `mxguard dmarc report --now`
 * (the daily DMARC aggregate report job, run at once against the store:
 * auth/dmarc_report.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dkim_keys.h"
#include "auth/dmarc_report.h"
#include "cli/cli.h"
#include "core/util.h"

int cmd_dkim_keygen(struct cli *c)
{
	const char *type = opt_val(c, O_TYPE), *sel = opt_val(c, O_SELECTOR);
	struct store_dkim_key *k = calloc(1, sizeof(*k));
	enum dkim_key_type t = DKIM_KEY_RSA2048;
	char name[STORE_DKIM_SELECTOR_LEN + STORE_DOMAIN_LEN + 16];
	int rc, status = EXIT_FAILURE;

	if (!k) {
		errorf(c, "out of memory");
		return EXIT_FAILURE;
	}
	if (type && !strcmp(type, "ed25519")) {
		t = DKIM_KEY_ED25519;
	} else if (type && strcmp(type, "rsa") != 0) {
		errorf(c, "dkim keygen: --type is rsa or ed25519");
		status = EXIT_USAGE;
		goto out;
	}
	rc = dkim_keys_generate(c->st, c->pos[0], sel, t, 0, k);
	if (rc < 0) {
		if (rc >= STORE_TEMPFAIL)
			status = store_fail(c, rc, "dkim keygen");
		else
			errorf(c, "dkim keygen: %s", strerror(-rc));
		goto out;
	}
	if (dkim_keys_record_name(k->domain, k->selector, name, sizeof(name)) < 0) {
		errorf(c, "dkim keygen: name too long");
		goto out;
	}
	printf("Generated %s key for %s, selector %s (pending).\n"
	       "Publish this TXT record, then run: mxguard dkim activate %s %s\n\n",
	       k->algorithm, k->domain, k->selector, k->domain, k->selector);
	printf("%s. IN TXT \"%s\"\n", name, k->dns_record);
	status = EXIT_SUCCESS;
out:
	explicit_bzero(k, sizeof(*k));
	free(k);
	return status;
}

static int dkim_row(const struct store_dkim_key *k, void *arg)
{
	struct listing *l = arg;
	char created[32], activated[32], name[STORE_DKIM_SELECTOR_LEN + STORE_DOMAIN_LEN + 16];

	if (dkim_keys_record_name(k->domain, k->selector, name, sizeof(name)) < 0)
		name[0] = '\0';
	if (l->json)
		return json_push(l->json,
				 json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "domain",
					   k->domain, "selector", k->selector, "algorithm",
					   k->algorithm, "state", store_dkim_state_name(k->state),
					   "created_at", (json_int_t)k->created_at, "activated_at",
					   (json_int_t)k->activated_at, "record_name", name,
					   "record", k->dns_record));
	{
		const char *row[] = {k->domain,
				     k->selector,
				     k->algorithm,
				     store_dkim_state_name(k->state),
				     iso_time(k->created_at, created, sizeof(created)),
				     iso_time(k->activated_at, activated, sizeof(activated)),
				     name};
		return table_add(&l->t, row);
	}
}

int cmd_dkim_list(struct cli *c)
{
	static const char *const head[] = {"DOMAIN",  "SELECTOR",  "ALGORITHM", "STATE",
					   "CREATED", "ACTIVATED", "RECORD"};
	struct listing l;

	if (listing_start(c, &l, ARRAY_LEN(head), head) < 0)
		return EXIT_FAILURE;
	return listing_end(c, &l, store_dkim_list(c->st, c->npos ? c->pos[0] : NULL, dkim_row, &l),
			   "dkim list", "no DKIM keys");
}

int cmd_dkim_activate(struct cli *c)
{
	char name[STORE_DKIM_SELECTOR_LEN + STORE_DOMAIN_LEN + 16];
	int rc = store_dkim_activate(c->st, c->pos[0], c->pos[1], 0);

	if (rc)
		return store_fail(c, rc, "dkim activate");
	if (dkim_keys_record_name(c->pos[0], c->pos[1], name, sizeof(name)) == 0)
		fprintf(stderr,
			"%s: warning: the DNS record %s was not checked; outbound mail of %s is "
			"signed with selector %s from now on (within 5 minutes for a running "
			"daemon)\n",
			c->prog, name, c->pos[0], c->pos[1]);
	return EXIT_SUCCESS;
}

int cmd_dkim_remove(struct cli *c)
{
	int rc = store_dkim_remove(c->st, c->pos[0], c->pos[1]);

	return rc ? store_fail(c, rc, "dkim remove") : EXIT_SUCCESS;
}

int cmd_dmarc_report(struct cli *c)
{
	struct dmarc_report_stats s;
	int rc;

	if (!(c->opts & O_NOW)) {
		errorf(c, "dmarc report: the daemon sends reports daily; --now sends what is due "
			  "now");
		return EXIT_USAGE;
	}
	rc = dmarc_report_daily(c->st, &c->cfg, 0, &s);
	if (rc < 0)
		return store_fail(c, rc, "dmarc report");
	printf("reports=%zu records=%zu skipped=%zu failed=%zu purged=%lld\n", s.reports, s.records,
	       s.skipped, s.failed, (long long)s.purged);
	return s.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
