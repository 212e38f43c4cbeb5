/* SPDX-License-Identifier: MIT */
/*
 * cli_policy: `mxguard policy ...` (settings and allow/block lists at the
 * four scopes) and `mxguard quarantine ...`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"
#include "mime/mime.h"
#include "policy/policy.h"
#include "policy/tag.h"
#include "scan/bayes.h"
#include "scan/relationship.h"
#include "store/store_policy.h"
#include "store/store_quarantine.h"

/* ---- policy ------------------------------------------------------------- */

/* Reads "SCOPE [NAME]" from the positional arguments; *next gets the index
 * of the first argument after them. */
static int scope_args(struct cli *c, enum store_scope *sc, const char **name, size_t *next)
{
	static const struct {
		const char *word;
		enum store_scope sc;
	} scopes[] = {{"global", STORE_SCOPE_GLOBAL},
		      {"account", STORE_SCOPE_ACCOUNT},
		      {"domain", STORE_SCOPE_DOMAIN},
		      {"mailbox", STORE_SCOPE_MAILBOX}};

	for (size_t i = 0; i < ARRAY_LEN(scopes); i++) {
		if (strcmp(c->pos[0], scopes[i].word) != 0)
			continue;
		*sc = scopes[i].sc;
		if (*sc == STORE_SCOPE_GLOBAL) {
			*name = "";
			*next = 1;
		} else {
			if (c->npos < 2) {
				errorf(c, "%s needs a name", scopes[i].word);
				return EXIT_USAGE;
			}
			*name = c->pos[1];
			*next = 2;
		}
		return 0;
	}
	errorf(c, "'%s': the scope is global, account NAME, domain DOMAIN or mailbox ADDRESS",
	       c->pos[0]);
	return EXIT_USAGE;
}

/* The positional argument at index i, exactly the last one expected. */
static const char *arg_at(struct cli *c, size_t i, size_t last, const char *what)
{
	if (c->npos != last + 1 || i > last) {
		errorf(c, "expected %s", what);
		return NULL;
	}
	return c->pos[i];
}

int cmd_policy_set(struct cli *c)
{
	enum store_scope sc;
	const char *name, *key, *value;
	char why[POLICY_WHY_LEN];
	size_t i;
	int rc;

	if ((rc = scope_args(c, &sc, &name, &i)))
		return rc;
	if (!(key = arg_at(c, i, i + 1, "KEY VALUE")) ||
	    !(value = arg_at(c, i + 1, i + 1, "VALUE")))
		return EXIT_USAGE;
	if (policy_check(key, value, why, sizeof(why)) < 0) {
		errorf(c, "%s", why);
		return EXIT_FAILURE;
	}
	if ((rc = store_policy_set(c->st, sc, name, key, value)))
		return store_fail(c, rc, "policy set");
	return EXIT_SUCCESS;
}

int cmd_policy_unset(struct cli *c)
{
	enum store_scope sc;
	const char *name, *key;
	size_t i;
	int rc;

	if ((rc = scope_args(c, &sc, &name, &i)))
		return rc;
	if (!(key = arg_at(c, i, i, "KEY")))
		return EXIT_USAGE;
	if ((rc = store_policy_set(c->st, sc, name, key, NULL)))
		return store_fail(c, rc, "policy unset");
	return EXIT_SUCCESS;
}

static const char *const scope_words[] = {"global", "account", "domain", "mailbox"};
static const char *const kind_words[] = {"setting", "allow", "block"};

struct show {
	struct listing l;
	struct cli *c;
};

static int show_row(const struct store_policy_item *it, void *arg)
{
	struct show *sh = arg;
	const char *row[4] = {scope_words[it->scope], kind_words[it->kind],
			      it->kind == STORE_POLICY_SETTING ? it->key : "", it->value};

	if (sh->l.json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "scope", row[0], "kind", row[1],
				      "key", row[2], "value", row[3]);
		return json_push(sh->l.json, o) < 0 ? -ENOMEM : 0;
	}
	return table_add(&sh->l.t, row) < 0 ? -ENOMEM : 0;
}

/* A mailbox: every setting in effect with where it comes from, then the
 * list entries that apply to it. */
static int show_effective(struct cli *c, const char *address)
{
	struct store_rcpt r;
	struct policy p;
	struct show sh = {.c = c};
	static const char *const head[] = {"SETTING", "VALUE", "FROM"};
	int rc;

	if ((rc = store_rcpt_lookup(c->st, address, &r)))
		return store_fail(c, rc, "policy show");
	if (r.cls != STORE_RCPT_LOCAL) {
		errorf(c, "%s is not a mailbox of a hosted domain", address);
		return EXIT_FAILURE;
	}
	/* no subject: lists are shown, not matched */
	if ((rc = policy_load(c->st, r.mailbox_id, r.domain_id, NULL, &p)))
		return store_fail(c, rc, "policy show");
	if (listing_start(c, &sh.l, 3, head) < 0)
		return EXIT_FAILURE;
	for (int k = 0; k < POLICY_NKEYS; k++) {
		char v[POLICY_TAG_LEN + 16];
		const char *from = p.from_default[k] ? "default" : scope_words[p.source[k]];
		const char *row[3] = {policy_key_name((enum policy_key)k), v, from};

		policy_value_text(&p, (enum policy_key)k, v, sizeof(v));
		if (sh.l.json) {
			if (json_push(sh.l.json, json_pack("{s:s, s:s, s:s}", "key", row[0],
							   "value", v, "from", from)) < 0)
				return listing_end(c, &sh.l, -ENOMEM, "policy show", "");
		} else if (table_add(&sh.l.t, row) < 0) {
			return listing_end(c, &sh.l, -ENOMEM, "policy show", "");
		}
	}
	rc = listing_end(c, &sh.l, STORE_OK, "policy show", "");
	if (rc != EXIT_SUCCESS || (c->opts & O_JSON))
		return rc;
	/* the lists, as stored, broadest first */
	{
		static const char *const lhead[] = {"SCOPE", "KIND", "KEY", "VALUE"};
		struct show ls = {.c = c};

		if (listing_start(c, &ls.l, 4, lhead) < 0)
			return EXIT_FAILURE;
		rc = store_policy_resolve(c->st, r.mailbox_id, r.domain_id, show_row, &ls);
		printf("\n");
		return listing_end(c, &ls.l, rc, "policy show", "(no allow or block entries)");
	}
}

int cmd_policy_show(struct cli *c)
{
	static const char *const head[] = {"SCOPE", "KIND", "KEY", "VALUE"};
	enum store_scope sc;
	const char *name;
	struct show sh = {.c = c};
	size_t i;
	int rc;

	if ((rc = scope_args(c, &sc, &name, &i)))
		return rc;
	if (c->npos != i) {
		errorf(c, "unexpected '%s'", c->pos[i]);
		return EXIT_USAGE;
	}
	if (sc == STORE_SCOPE_MAILBOX)
		return show_effective(c, name);
	if (listing_start(c, &sh.l, 4, head) < 0)
		return EXIT_FAILURE;
	rc = store_policy_get(c->st, sc, name, show_row, &sh);
	return listing_end(c, &sh.l, rc, "policy show", "(nothing set here: the defaults apply)");
}

int cmd_policy_list_add(struct cli *c)
{
	bool block = !strcmp(c->verb, "block");
	enum store_scope sc;
	const char *name, *pat;
	char why[POLICY_WHY_LEN];
	size_t i;
	int rc;

	if ((rc = scope_args(c, &sc, &name, &i)))
		return rc;
	if (!(pat = arg_at(c, i, i, "PATTERN")))
		return EXIT_USAGE;
	if (policy_pattern_check(pat, why, sizeof(why)) < 0) {
		errorf(c, "%s", why);
		return EXIT_FAILURE;
	}
	if ((rc = store_policy_list_add(c->st, sc, name,
					block ? STORE_POLICY_BLOCK : STORE_POLICY_ALLOW, pat)))
		return store_fail(c, rc, block ? "policy block" : "policy allow");
	return EXIT_SUCCESS;
}

int cmd_policy_list_remove(struct cli *c)
{
	enum store_scope sc;
	const char *name, *which, *pat;
	size_t i;
	int rc;

	if ((rc = scope_args(c, &sc, &name, &i)))
		return rc;
	if (!(which = arg_at(c, i, i + 1, "(allow | block) PATTERN")) ||
	    !(pat = arg_at(c, i + 1, i + 1, "PATTERN")))
		return EXIT_USAGE;
	if (strcmp(which, "allow") && strcmp(which, "block")) {
		errorf(c, "'%s': allow or block", which);
		return EXIT_USAGE;
	}
	if ((rc = store_policy_list_remove(
		 c->st, sc, name, !strcmp(which, "block") ? STORE_POLICY_BLOCK : STORE_POLICY_ALLOW,
		 pat)))
		return store_fail(c, rc, "policy unlist");
	return EXIT_SUCCESS;
}

/* ---- quarantine --------------------------------------------------------- */

static json_t *quarantine_json(const struct store_quarantine_entry *e)
{
	char rt[32], et[32];

	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:s, s:s, s:I}", "id",
			 (json_int_t)e->id, "queue_id", e->queue_id, "rcpt", e->rcpt, "sender",
			 e->sender, "subject", e->subject, "client", e->client_addr, "score",
			 e->score, "reason", e->reason, "state", e->state, "received",
			 iso_time(e->received_at, rt, sizeof(rt)), "expires",
			 iso_time(e->expires_at, et, sizeof(et)), "size", (json_int_t)e->size);
}

static int quarantine_row(const struct store_quarantine_entry *e, void *arg)
{
	struct listing *l = arg;
	char id[24], score[24], rt[32];
	const char *row[7] = {id,	 iso_time(e->received_at, rt, sizeof(rt)),
			      e->rcpt,	 e->sender,
			      score,	 e->state,
			      e->subject};

	if (l->json)
		return json_push(l->json, quarantine_json(e)) < 0 ? -ENOMEM : 0;
	snprintf(id, sizeof(id), "%lld", (long long)e->id);
	snprintf(score, sizeof(score), "%.1f", e->score);
	return table_add(&l->t, row) < 0 ? -ENOMEM : 0;
}

int cmd_quarantine_list(struct cli *c)
{
	static const char *const head[] = {"ID",    "RECEIVED", "RCPT",	  "SENDER",
					   "SCORE", "STATE",	"SUBJECT"};
	struct store_quarantine_query q = {
	    .account = opt_val(c, O_ACCOUNT),
	    .domain = opt_val(c, O_DOMAIN),
	    .rcpt = opt_val(c, O_RCPT),
	    .search = opt_val(c, O_SEARCH),
	    .held_only = (c->opts & O_HELD) != 0,
	};
	struct listing l;
	const char *lim = opt_val(c, O_LIMIT);
	int64_t n;
	int rc;

	if (lim) {
		if (parse_int64(lim, 1, 1000000, &n) < 0) {
			errorf(c, "--limit: a number from 1 to 1000000");
			return EXIT_USAGE;
		}
		q.limit = (size_t)n;
	}
	if (listing_start(c, &l, 7, head) < 0)
		return EXIT_FAILURE;
	rc = store_quarantine_list(c->st, &q, quarantine_row, &l);
	return listing_end(c, &l, rc, "quarantine list", "(the quarantine is empty)");
}

static int quarantine_id(struct cli *c, int64_t *id)
{
	if (parse_int64(c->pos[0], 1, INT64_MAX, id) < 0) {
		errorf(c, "'%s' is not a quarantine id (see quarantine list)", c->pos[0]);
		return EXIT_USAGE;
	}
	return 0;
}

int cmd_quarantine_show(struct cli *c)
{
	struct store_quarantine_entry e;
	char *verdict = NULL, rt[32], et[32];
	void *data = NULL;
	size_t len = 0;
	int64_t id;
	int rc, status = EXIT_FAILURE;

	if ((rc = quarantine_id(c, &id)))
		return rc;
	if ((rc = store_quarantine_get(c->st, id, &e, &verdict, &data, &len)))
		return store_fail(c, rc, "quarantine show");
	if (c->opts & O_TEXT) {
		status = fwrite(data, 1, len, stdout) == len ? EXIT_SUCCESS : EXIT_FAILURE;
	} else if (c->opts & O_JSON) {
		json_t *o = quarantine_json(&e);
		if (o && json_object_set_new(o, "verdict", json_string(verdict)) == 0)
			status = json_print(c, o);
		json_decref(o);
	} else {
		printf("id:        %lld\nqueue id:  %s\nrecipient: %s\nsender:    %s\n"
		       "subject:   %s\nclient:    %s\nreceived:  %s\nexpires:   %s\n"
		       "size:      %lld\nscore:     %.2f\nreason:    %s\nstate:     %s%s%s\n"
		       "\nverdict:\n%s",
		       (long long)e.id, e.queue_id, e.rcpt, e.sender, e.subject, e.client_addr,
		       iso_time(e.received_at, rt, sizeof(rt)),
		       iso_time(e.expires_at, et, sizeof(et)), (long long)e.size, e.score, e.reason,
		       e.state, e.released_to[0] ? " as " : "", e.released_to, verdict);
		status = EXIT_SUCCESS;
	}
	free(verdict);
	free(data);
	return status;
}

/* --learn: the held copy as ham for Bayes (a release says it was good). */
static int learn_ham(struct cli *c, int64_t id)
{
	struct store_quarantine_entry e;
	struct mime_engine *me = NULL;
	struct mime_msg *m = NULL;
	struct bayes *b = NULL;
	struct bayes_params p;
	enum store_bayes_outcome out;
	void *data = NULL;
	size_t len = 0;
	int rc, status = EXIT_FAILURE;

	if ((rc = store_quarantine_get(c->st, id, &e, NULL, &data, &len)))
		return store_fail(c, rc, "quarantine release --learn");
	bayes_params_from_config(&c->cfg, &p);
	if (!(me = mime_engine_new(NULL, MIME_OPT_ALL)) || mime_parse(me, data, len, &m) < 0 ||
	    !(b = bayes_new(c->st, &p))) {
		errorf(c, "--learn: out of memory");
		goto out;
	}
	if ((rc = bayes_learn(b, c->st, m, false, &out)) < 0) {
		errorf(c, "--learn: %s", rc == -EAGAIN ? store_last_error(c->st) : strerror(-rc));
		goto out;
	}
	printf("learnt as ham\n");
	status = EXIT_SUCCESS;
out:
	bayes_free(b);
	mime_msg_free(m);
	mime_engine_free(me);
	free(data);
	return status;
}

int cmd_quarantine_release(struct cli *c)
{
	struct store_quarantine_entry e;
	char qid[QUEUE_ID_LEN + 1];
	int64_t id;
	int rc;

	if ((rc = quarantine_id(c, &id)))
		return rc;
	if ((rc = store_quarantine_get(c->st, id, &e, NULL, NULL, NULL)))
		return store_fail(c, rc, "quarantine release");
	queue_id_new(qid);
	if ((rc = store_quarantine_release(c->st, id, qid, "cli", time_now())))
		return store_fail(c, rc, "quarantine release");
	printf("released as %s\n", qid);
	/* the recipient wanted it: its sender is now a correspondent */
	if (e.sender[0] && rel_learn_release(c->st, e.rcpt, e.sender) < 0)
		fprintf(stderr, "%s: warning: the relationship was not recorded: %s\n", c->prog,
			store_last_error(c->st));
	if (c->opts & O_LEARN)
		return learn_ham(c, id);
	return EXIT_SUCCESS;
}

int cmd_quarantine_delete(struct cli *c)
{
	int64_t id;
	int rc;

	if ((rc = quarantine_id(c, &id)))
		return rc;
	if ((rc = store_quarantine_delete(c->st, id, "cli")))
		return store_fail(c, rc, "quarantine delete");
	return EXIT_SUCCESS;
}

int cmd_quarantine_expire(struct cli *c)
{
	size_t n = 0;
	int rc;

	if ((rc = store_quarantine_expire(c->st, time_now(), &n)))
		return store_fail(c, rc, "quarantine expire");
	printf("%zu expired\n", n);
	return EXIT_SUCCESS;
}
