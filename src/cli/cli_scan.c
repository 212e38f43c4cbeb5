/* SPDX-License-Identifier: MIT */
/*
 * cli_scan: `mxguard scan FILE...`, the verdict of the content layer on
 * messages in files, explained symbol by symbol; and `mxguard scan --mime
 * FILE` (the MIME tree the engine sees).
 *
 * The checks are the daemon's own: the configuration's scan pipeline runs
 * in this process with the same rules, engines and limits, so what this
 * prints is what a message of that content gets from the content layer.
 * What only the SMTP session knows (the client's DNS lists, SPF, DKIM,
 * DMARC and ARC results, URI lists, sender relationships) is not part of
 * it. Bayes reads the store of the configuration. The action is the one the policy of
 * --rcpt (a hosted mailbox) takes, or the defaults'. Many files are
 * scanned in parallel on the pipeline's threads (scan.threads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "cli/cli.h"
#include "core/util.h"
#include "mime/mime.h"
#include "mime/mime_json.h"
#include "policy/policy.h"
#include "scan/filetype.h"
#include "scan/pipeline.h"

#define SCAN_MAX_INPUT (1024ull * 1024 * 1024)

/* One file in flight. */
struct scan_file {
	struct scan_run *run;
	const char *path;
	char *data;
	size_t len;
	struct scan_request req;
	const char *rcpt_list[1];
};

struct scan_run {
	struct cli *c;
	struct event_base *base;
	struct scan_pipeline *p;
	struct policy pol;
	const char *rcpt;
	size_t inflight;
	int status;
	json_t *json; /* with --json: the array of verdicts */
};

int cli_read_file(const char *path, size_t max, char **out, size_t *outlen)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t len = 0, cap = 1 << 16;
	char *b = NULL, *nb;
	int rc = -ENOMEM;

	if (!f)
		return -errno;
	if (!(b = malloc(cap)))
		goto out;
	for (;;) {
		size_t n = fread(b + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
		if (len == cap) {
			if (cap >= max) {
				rc = -EFBIG;
				goto out;
			}
			cap = cap * 2 > max ? max : cap * 2;
			if (!(nb = realloc(b, cap)))
				goto out;
			b = nb;
		}
	}
	if (ferror(f)) {
		rc = -EIO;
		goto out;
	}
	*out = b;
	*outlen = len;
	b = NULL;
	rc = 0;
out:
	free(b);
	if (f != stdin)
		fclose(f);
	return rc;
}

static int cmp_symbols(const void *a, const void *b)
{
	const struct scan_symbol *x = *(const struct scan_symbol *const *)a;
	const struct scan_symbol *y = *(const struct scan_symbol *const *)b;

	return x->score < y->score ? 1 : x->score > y->score ? -1 : strcmp(x->name, y->name);
}

static const char *verdict_action(const struct scan_run *run, const struct scan_result *r,
				  char *why, size_t whylen)
{
	struct policy_verdict v = {.score = r->score, .virus = r->action == SCAN_REJECT};
	enum policy_reason reason;

	if (r->action == SCAN_TEMPFAIL) {
		(void)str_copy(why, whylen, r->reply);
		return "tempfail";
	}
	filetype_verdict(r->filetypes, &run->c->cfg, &v);
	return policy_action_name(policy_decide(&run->pol, &v, &reason, why, whylen));
}

static void print_verdict(struct scan_file *f, const struct scan_result *r)
{
	struct scan_run *run = f->run;
	const struct scan_symbol **sorted = calloc(r->nsymbols ? r->nsymbols : 1, sizeof(*sorted));
	char why[POLICY_WHY_LEN];
	const char *action = verdict_action(run, r, why, sizeof(why));

	if (!sorted) {
		run->status = EXIT_FAILURE;
		return;
	}
	for (size_t i = 0; i < r->nsymbols; i++)
		sorted[i] = &r->symbols[i];
	qsort(sorted, r->nsymbols, sizeof(*sorted), cmp_symbols);
	if (run->json) {
		json_t *o =
		    json_pack("{s:s, s:f, s:s, s:s, s:I, s:[]}", "file", f->path, "score", r->score,
			      "action", action, "why", why, "ms", (json_int_t)r->ms, "symbols");
		json_t *arr = o ? json_object_get(o, "symbols") : NULL;

		for (size_t i = 0; arr && i < r->nsymbols; i++)
			json_array_append_new(
			    arr, json_pack("{s:s, s:f, s:s}", "name", sorted[i]->name, "score",
					   sorted[i]->score, "detail", sorted[i]->detail));
		if (r->action != SCAN_ACCEPT && o)
			json_object_set_new(o, "reply", json_string(r->reply));
		else if (r->filetype_reply[0] && o)
			json_object_set_new(o, "reply", json_string(r->filetype_reply));
		if (!o || json_push(run->json, o) < 0)
			run->status = EXIT_FAILURE;
	} else {
		printf("%s: score %.2f, %s (%s)\n", f->path, r->score, action, why);
		if (r->action != SCAN_ACCEPT)
			printf("  reply: %s\n", r->reply);
		else if (r->filetype_reply[0])
			printf("  file policy reply: %s\n", r->filetype_reply);
		for (size_t i = 0; i < r->nsymbols; i++)
			printf("  %8.2f  %-32s %s\n", sorted[i]->score, sorted[i]->name,
			       sorted[i]->detail);
		printf("\n");
	}
	free(sorted);
}

static void scan_file_done(const struct scan_result *r, void *arg)
{
	struct scan_file *f = arg;

	print_verdict(f, r);
	f->run->inflight--;
	free(f->data);
	free(f);
}

static int scan_one(struct scan_run *run, const char *path)
{
	struct scan_file *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	if ((rc = cli_read_file(path, SCAN_MAX_INPUT, &f->data, &f->len)) < 0) {
		errorf(run->c, "%s: %s", path, strerror(-rc));
		free(f);
		return rc;
	}
	f->run = run;
	f->path = path;
	f->rcpt_list[0] = run->rcpt ? run->rcpt : "";
	f->req.qid = "cli";
	f->req.client = "";
	f->req.helo = "";
	f->req.sender = "";
	f->req.rcpts = f->rcpt_list;
	f->req.nrcpts = run->rcpt ? 1 : 0;
	f->req.data = f->data;
	f->req.len = f->len;
	if (scan_submit(run->p, &f->req, scan_file_done, f) < 0) {
		free(f->data);
		free(f);
		return -ENOMEM;
	}
	run->inflight++;
	return 0;
}

/* The policy of --rcpt, from the store; the defaults without it. */
static int load_policy(struct scan_run *run)
{
	struct store *st = run->c->st;
	struct store_rcpt r;
	int rc;

	policy_defaults(&run->pol);
	if (!run->rcpt)
		return 0;
	rc = store_rcpt_lookup(st, run->rcpt, &r);
	if (rc == STORE_OK && r.cls != STORE_RCPT_LOCAL) {
		errorf(run->c, "--rcpt %s is not a mailbox of a hosted domain", run->rcpt);
		return -ENOENT;
	}
	if (rc == STORE_OK)
		rc = policy_load(st, r.mailbox_id, r.domain_id, NULL, &run->pol);
	if (rc != STORE_OK) {
		errorf(run->c, "--rcpt: %s", store_last_error(st));
		return -EIO;
	}
	return 0;
}

static int scan_mime(struct cli *c)
{
	struct mime_engine *e = NULL;
	struct mime_msg *m = NULL;
	char *data = NULL;
	size_t len = 0;
	json_t *doc = NULL;
	int rc, status = EXIT_FAILURE;

	if (c->npos != 1) {
		errorf(c, "--mime takes one FILE");
		return EXIT_USAGE;
	}
	if ((rc = cli_read_file(c->pos[0], SCAN_MAX_INPUT, &data, &len)) < 0) {
		errorf(c, "%s: %s", c->pos[0], strerror(-rc));
		goto out;
	}
	if (!(e = mime_engine_new(NULL, MIME_OPT_ALL))) {
		errorf(c, "cannot create the MIME engine");
		goto out;
	}
	if (mime_parse(e, data, len, &m) < 0) {
		errorf(c, "out of memory");
		goto out;
	}
	if (c->opts & O_TEXT) {
		mime_json_print_text(stdout, m);
	} else {
		if (!(doc = mime_json_msg(m)) ||
		    json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER) < 0) {
			errorf(c, "cannot write JSON");
			goto out;
		}
		fputc('\n', stdout);
	}
	status = EXIT_SUCCESS;
out:
	json_decref(doc);
	mime_msg_free(m);
	mime_engine_free(e);
	free(data);
	return status;
}

static double cpu_s(const struct rusage *r)
{
	return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) +
	       (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

int cmd_scan(struct cli *c)
{
	struct scan_run run = {.c = c, .status = EXIT_SUCCESS, .rcpt = opt_val(c, O_RCPT)};
	size_t window, next = 0;
	char err[512];
	struct rusage ru0, ru1;
	int64_t t0;

	if (c->opts & O_MIME)
		return scan_mime(c);
	if (c->opts & O_TEXT) {
		errorf(c, "--text goes with --mime");
		return EXIT_USAGE;
	}
	if (load_policy(&run) < 0)
		return EXIT_FAILURE;
	if (!(run.base = event_base_new())) {
		errorf(c, "out of memory");
		return EXIT_FAILURE;
	}
	if (!(run.p = scan_pipeline_new(run.base, &c->cfg, NULL, err, sizeof(err)))) {
		errorf(c, "cannot start the scan pipeline: %s", err);
		event_base_free(run.base);
		return EXIT_FAILURE;
	}
	if ((c->opts & O_JSON) && !(run.json = json_array())) {
		run.status = EXIT_FAILURE;
		goto out;
	}
	/* enough in flight to keep every scanning thread busy */
	window = (size_t)c->cfg.scan.threads * 2;
	t0 = time_mono_us();
	getrusage(RUSAGE_SELF, &ru0);
	while (next < c->nfiles || run.inflight > 0) {
		while (next < c->nfiles && run.inflight < window)
			if (scan_one(&run, c->files[next++]) < 0)
				run.status = EXIT_FAILURE;
		if (run.inflight > 0)
			event_base_loop(run.base, EVLOOP_ONCE);
	}
	getrusage(RUSAGE_SELF, &ru1);
	/* for benchmarks: the work itself, apart from the start-up (rules,
	 * engines, Bayes table) a daemon pays once */
	fprintf(
	    stderr, "scan: %zu messages in %.3f s, %.3f s CPU (start-up before them: %.3f s CPU)\n",
	    c->nfiles, (double)(time_mono_us() - t0) / 1e6, cpu_s(&ru1) - cpu_s(&ru0), cpu_s(&ru0));
	if (run.json && json_print(c, run.json) != EXIT_SUCCESS)
		run.status = EXIT_FAILURE;
out:
	scan_pipeline_free(run.p);
	event_base_free(run.base);
	json_decref(run.json);
	return run.status;
}
