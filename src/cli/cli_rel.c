/* SPDX-License-Identifier: MIT */
/*
 * cli_rel: mxguard relationships list / add / trust / remove / expire.
 *
 * For operators who import mail history or correct what was learnt:
 * "add" counts one message the mailbox sent to the remote address (call
 * it once per message of a sent-mail log), "trust" records a positive
 * signal as a quarantine release does (the pair is established at once).
 * MAILBOX must be a mailbox or alias of a hosted domain for add and trust
 * (an alias counts for the mailbox it points to); list and remove also
 * take an address that no longer is one, so stale pairs can be seen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"
#include "scan/relationship.h"
#include "store/store_rel.h"

/* The mailbox an address stands for: the final mailbox when it is local,
 * else (must_exist false) the address itself. */
static int local_mailbox(struct cli *c, const char *addr, bool must_exist, char *out, size_t outlen,
			 int *status)
{
	struct store_rcpt r;
	int rc = store_rcpt_lookup(c->st, addr, &r);

	if (rc) {
		*status = store_fail(c, rc, addr);
		return -1;
	}
	if (r.cls == STORE_RCPT_LOCAL && r.mailbox[0])
		addr = r.mailbox;
	else if (must_exist) {
		errorf(c, "%s is not a mailbox of a hosted domain", addr);
		*status = EXIT_FAILURE;
		return -1;
	}
	if (str_copy(out, outlen, addr) < 0) {
		errorf(c, "%s: address too long", addr);
		*status = EXIT_USAGE;
		return -1;
	}
	return 0;
}

static int rel_row(const struct store_rel *r, void *arg)
{
	struct listing *l = arg;
	char out[32], in[32], fs[32], ls[32];

	if (l->json)
		return json_push(l->json,
				 json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "mailbox", r->local,
					   "remote", r->remote, "outbound", (json_int_t)r->outbound,
					   "inbound", (json_int_t)r->inbound, "first_seen",
					   (json_int_t)r->first_seen, "last_seen",
					   (json_int_t)r->last_seen));
	(void)str_fmt(out, sizeof(out), "%lld", (long long)r->outbound);
	(void)str_fmt(in, sizeof(in), "%lld", (long long)r->inbound);
	{
		const char *row[] = {r->remote, out, in, iso_time(r->first_seen, fs, sizeof(fs)),
				     iso_time(r->last_seen, ls, sizeof(ls))};
		return table_add(&l->t, row);
	}
}

int cmd_rel_list(struct cli *c)
{
	static const char *const head[] = {"REMOTE", "SENT", "TRUSTED", "FIRST-SEEN", "LAST-SEEN"};
	char mbox[STORE_ADDR_LEN];
	struct listing l;
	int status;

	if (local_mailbox(c, c->pos[0], false, mbox, sizeof(mbox), &status) < 0)
		return status;
	if (listing_start(c, &l, ARRAY_LEN(head), head) < 0)
		return EXIT_FAILURE;
	return listing_end(c, &l, store_rel_list(c->st, mbox, rel_row, &l), "relationships list",
			   "no relationships");
}

static int record(struct cli *c, enum store_rel_dir dir, const char *what)
{
	char mbox[STORE_ADDR_LEN];
	const char *remote[1] = {c->pos[1]};
	int status, rc;

	if (local_mailbox(c, c->pos[0], true, mbox, sizeof(mbox), &status) < 0)
		return status;
	rc = store_rel_record(c->st, mbox, dir, remote, 1, time_now());
	return rc ? store_fail(c, rc, what) : EXIT_SUCCESS;
}

int cmd_rel_add(struct cli *c)
{
	return record(c, STORE_REL_OUTBOUND, "relationships add");
}

int cmd_rel_trust(struct cli *c)
{
	return record(c, STORE_REL_INBOUND, "relationships trust");
}

int cmd_rel_remove(struct cli *c)
{
	char mbox[STORE_ADDR_LEN];
	int status, rc;

	if (local_mailbox(c, c->pos[0], false, mbox, sizeof(mbox), &status) < 0)
		return status;
	rc = store_rel_remove(c->st, mbox, c->pos[1]);
	return rc ? store_fail(c, rc, "relationships remove") : EXIT_SUCCESS;
}

int cmd_rel_expire(struct cli *c)
{
	size_t n = 0;
	int rc = rel_expire(c->st, &c->cfg, time_now(), &n);

	if (rc)
		return store_fail(c, rc, "relationships expire");
	printf("%zu relationships expired (not seen for %lld days)\n", n,
	       (long long)(c->cfg.relationships.expire / 86400));
	return EXIT_SUCCESS;
}
