/* SPDX-License-Identifier: MIT */
/*
 * cli_bayes: mxguard learn / unlearn, bayes stats / expire / classify.
 *
 * Arguments are message files (one message each, as .eml) or folders,
 * whose regular files are read (one level, in name order). Learning goes
 * by batches of LEARN_BATCH messages, one store transaction each, so a
 * corpus of thousands of messages takes seconds.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/util.h"
#include "mime/mime.h"
#include "scan/bayes.h"
#include "store/store_bayes.h"

#define LEARN_BATCH 500
#define LEARN_MAX_FILES 10000000

struct paths {
	char **v;
	size_t n, cap;
};

static void paths_free(struct paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static int paths_add(struct paths *p, const char *dir, const char *name)
{
	char buf[PATH_MAX];
	char **nv;

	if (p->n >= LEARN_MAX_FILES)
		return -E2BIG;
	if (dir ? str_fmt(buf, sizeof(buf), "%s/%s", dir, name) : str_copy(buf, sizeof(buf), name))
		return -ENAMETOOLONG;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		if (!(nv = realloc(p->v, ncap * sizeof(*nv))))
			return -ENOMEM;
		p->v = nv;
		p->cap = ncap;
	}
	if (!(p->v[p->n] = strdup(buf)))
		return -ENOMEM;
	p->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* arg itself, or the regular files of the folder arg in name order. */
static int paths_expand(const struct cli *c, struct paths *p, const char *arg)
{
	struct stat sb;
	struct dirent *de;
	size_t first = p->n;
	DIR *d;
	int rc = 0;

	if (stat(arg, &sb) < 0) {
		errorf(c, "%s: %s", arg, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(sb.st_mode))
		return paths_add(p, NULL, arg);
	if (!(d = opendir(arg))) {
		errorf(c, "%s: %s", arg, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d))) {
		char full[PATH_MAX];

		if (de->d_name[0] == '.')
			continue;
		if (str_fmt(full, sizeof(full), "%s/%s", arg, de->d_name) || stat(full, &sb) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		if ((rc = paths_add(p, arg, de->d_name)) < 0)
			break;
	}
	closedir(d);
	if (p->n > first)
		qsort(p->v + first, p->n - first, sizeof(*p->v), cmp_str);
	return rc;
}

static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat sb;
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	int rc;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &sb) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)sb.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	if (!(b = malloc((size_t)sb.st_size + 1))) {
		rc = -ENOMEM;
		goto out;
	}
	*len = fread(b, 1, (size_t)sb.st_size, f);
	if (ferror(f)) {
		rc = -EIO;
		goto out;
	}
	*out = b;
	b = NULL;
	rc = 0;
out:
	free(b);
	fclose(f);
	return rc;
}

/* The tokens of the message in path (reports its own errors). */
static int file_tokens(const struct cli *c, struct mime_engine *e, const char *path,
		       struct bayes_tokens **t)
{
	struct mime_msg *m = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc;

	if ((rc = read_file(path, (size_t)c->cfg.smtp.max_message_size, &data, &len)) < 0) {
		errorf(c, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if ((rc = mime_parse(e, data, len, &m)) == 0)
		rc = bayes_tokenize(m, t);
	if (rc < 0)
		errorf(c, "%s: %s", path, strerror(-rc));
	mime_msg_free(m);
	free(data);
	return rc;
}

static int expand_args(struct cli *c, struct paths *p)
{
	for (size_t i = 0; i < c->nfiles; i++)
		if (paths_expand(c, p, c->files[i]) < 0)
			return -1;
	return 0;
}

static int learn_files(struct cli *c, enum store_bayes_class cls)
{
	static const char *const cls_name[] = {"ham", "spam", "forget"};
	struct bayes_tokens *toks[LEARN_BATCH];
	enum store_bayes_outcome oc[LEARN_BATCH];
	size_t counts[STORE_BAYES_UNKNOWN + 1] = {0}, failed = 0;
	struct paths p = {0};
	struct mime_engine *e = NULL;
	struct bayes_params bp;
	int64_t t0 = time_mono_us();
	int status = EXIT_FAILURE, rc;

	bayes_params_from_config(&c->cfg, &bp);
	if (expand_args(c, &p) < 0)
		goto out;
	if (!(e = mime_engine_new(NULL, MIME_OPT_ALL))) {
		errorf(c, "cannot create the MIME engine");
		goto out;
	}
	for (size_t base = 0; base < p.n; base += LEARN_BATCH) {
		size_t n = 0;

		for (size_t i = base; i < p.n && i < base + LEARN_BATCH; i++) {
			if (file_tokens(c, e, p.v[i], &toks[n]) < 0)
				failed++;
			else
				n++;
		}
		rc = bayes_learn_tokens(c->st, (const struct bayes_tokens *const *)toks, n, cls,
					&bp, oc);
		for (size_t i = 0; i < n; i++)
			bayes_tokens_free(toks[i]);
		if (rc == -EAGAIN || rc == -EINVAL) {
			errorf(c, "learn: %s", store_last_error(c->st));
			goto out;
		}
		if (rc < 0) {
			errorf(c, "learn: %s", strerror(-rc));
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			counts[oc[i]]++;
	}
	if (cls == STORE_BAYES_FORGET)
		printf("unlearnt %zu, not learnt before %zu, unreadable %zu (%.2f s)\n",
		       counts[STORE_BAYES_FORGOTTEN], counts[STORE_BAYES_UNKNOWN], failed,
		       (double)(time_mono_us() - t0) / 1e6);
	else
		printf("%s: learnt %zu, already %zu, moved from the other class %zu, "
		       "unreadable %zu (%.2f s)\n",
		       cls_name[cls], counts[STORE_BAYES_LEARNT], counts[STORE_BAYES_ALREADY],
		       counts[STORE_BAYES_RELEARNT], failed, (double)(time_mono_us() - t0) / 1e6);
	status = failed ? EXIT_FAILURE : EXIT_SUCCESS;
out:
	mime_engine_free(e);
	paths_free(&p);
	return status;
}

int cmd_learn(struct cli *c)
{
	bool spam = c->opts & O_SPAM, ham = c->opts & O_HAM;

	if (spam == ham) {
		errorf(c, "say --spam or --ham");
		return EXIT_USAGE;
	}
	return learn_files(c, spam ? STORE_BAYES_SPAM : STORE_BAYES_HAM);
}

int cmd_unlearn(struct cli *c)
{
	return learn_files(c, STORE_BAYES_FORGET);
}

int cmd_bayes_stats(struct cli *c)
{
	struct store_bayes_totals t;
	int rc;

	if ((rc = store_bayes_stats(c->st, &t)))
		return store_fail(c, rc, "bayes stats");
	if (c->opts & O_JSON) {
		json_t *doc = json_pack("{sIsIsIsIsIsIsI}", "spam", (json_int_t)t.nspam, "ham",
					(json_int_t)t.nham, "tokens", (json_int_t)t.ntokens, "seen",
					(json_int_t)t.nseen, "generation", (json_int_t)t.generation,
					"min_spam", (json_int_t)c->cfg.bayes.min_spam, "min_ham",
					(json_int_t)c->cfg.bayes.min_ham, "max_tokens",
					(json_int_t)c->cfg.bayes.max_tokens);
		int status = json_print(c, doc);

		json_decref(doc);
		return status;
	}
	printf("learnt spam: %lld (verdicts from %lld)\n", (long long)t.nspam,
	       (long long)c->cfg.bayes.min_spam);
	printf("learnt ham:  %lld (verdicts from %lld)\n", (long long)t.nham,
	       (long long)c->cfg.bayes.min_ham);
	printf("tokens:      %lld (expiry above %lld)\n", (long long)t.ntokens,
	       (long long)c->cfg.bayes.max_tokens);
	printf("generation:  %lld\n", (long long)t.generation);
	return EXIT_SUCCESS;
}

int cmd_bayes_expire(struct cli *c)
{
	int64_t removed = 0;
	int rc = bayes_expire(c->st, c->cfg.bayes.max_tokens, &removed);

	if (rc < 0) {
		errorf(c, "bayes expire: %s",
		       rc == -EAGAIN ? store_last_error(c->st) : strerror(-rc));
		return EXIT_FAILURE;
	}
	printf("expired %lld tokens\n", (long long)removed);
	return EXIT_SUCCESS;
}

/* FILE<TAB>p<TAB>symbol<TAB>tokens per message ("-" without a verdict). */
int cmd_bayes_classify(struct cli *c)
{
	struct paths p = {0};
	struct mime_engine *e = NULL;
	struct bayes *b = NULL;
	struct bayes_params bp;
	struct bayes_result r;
	int64_t t0 = time_mono_us();
	size_t done = 0, failed = 0;
	int status = EXIT_FAILURE, rc;

	bayes_params_from_config(&c->cfg, &bp);
	if (expand_args(c, &p) < 0)
		goto out;
	if (!(e = mime_engine_new(NULL, MIME_OPT_ALL)) || !(b = bayes_new(c->st, &bp))) {
		errorf(c, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		struct bayes_tokens *t = NULL;

		if (file_tokens(c, e, p.v[i], &t) < 0) {
			failed++;
			continue;
		}
		rc = bayes_classify_tokens(b, t, &r);
		bayes_tokens_free(t);
		if (rc < 0) {
			errorf(c, "classify: %s",
			       rc == -EAGAIN ? store_last_error(c->st) : strerror(-rc));
			goto out;
		}
		if (r.verdict)
			printf("%s\t%.4f\t%s\t%zu\n", p.v[i], r.prob, r.symbol, r.ntokens);
		else
			printf("%s\t-\t-\t0\n", p.v[i]);
		done++;
	}
	{
		double s = (double)(time_mono_us() - t0) / 1e6;
		fprintf(stderr, "classified %zu messages in %.2f s (%.0f msg/s)\n", done, s,
			s > 0 ? (double)done / s : 0.0);
	}
	status = failed ? EXIT_FAILURE : EXIT_SUCCESS;
out:
	bayes_free(b);
	mime_engine_free(e);
	paths_free(&p);
	return status;
}
