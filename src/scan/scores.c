/* SPDX-License-Identifier: MIT */
/*
 * scores: symbol score overrides (see scores.h).
 */
#include "scan/scores.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/pipeline.h"

#define SCORES_MAX 100000
#define SCORES_LINE_MAX 1024

struct score_entry {
	char name[SCAN_NAME_LEN];
	double score;
	size_t seq; /* order read */
};

struct scores {
	struct score_entry *v;
	size_t n, cap;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct score_entry *)a)->name, ((const struct score_entry *)b)->name);
}

static int cmp_entry_seq(const void *a, const void *b)
{
	const struct score_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void scores_dir(const char *yara_rules, char *out, size_t outlen)
{
	const char *slash = strrchr(yara_rules, '/');

	out[0] = '\0';
	if (!yara_rules[0])
		return;
	if (!slash)
		(void)str_copy(out, outlen, "scores");
	else if (str_fmt(out, outlen, "%.*s/scores", (int)(slash - yara_rules), yara_rules) < 0)
		out[0] = '\0';
}

static int add(struct scores *s, const char *name, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct score_entry *n = realloc(s->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->v = n;
		s->cap = cap;
	}
	(void)str_copy(s->v[s->n].name, sizeof(s->v[s->n].name), name);
	s->v[s->n].score = v;
	s->v[s->n].seq = s->n;
	s->n++;
	return 0;
}

/* A symbol name: what the checks produce (letters, digits, _ - . : / +). */
static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= SCAN_NAME_LEN)
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || strchr("_-.:/+", *p)))
			return false;
	return true;
}

static int load_stream(struct scores *s, FILE *f, const char *path, char *err, size_t errlen)
{
	char line[SCORES_LINE_MAX];
	unsigned lineno = 0;
	int rc = 0;

	while (fgets(line, sizeof(line), f)) {
		char *p = line, *word, *name, *val, *end, *save = NULL;
		double v;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			(void)str_fmt(err, errlen, "%s:%u: line too long", path, lineno);
			rc = -1;
			break;
		}
		if ((end = strchr(p, '#')))
			*end = '\0';
		word = strtok_r(p, " \t\r\n", &save);
		if (!word)
			continue;
		name = strtok_r(NULL, " \t\r\n", &save);
		val = strtok_r(NULL, " \t\r\n", &save);
		errno = 0;
		v = val ? strtod(val, &end) : 0;
		if (strcmp(word, "score") || !name || !val || strtok_r(NULL, " \t\r\n", &save) ||
		    !name_ok(name) || errno || *end || !isfinite(v) || v < -1000 || v > 1000) {
			(void)str_fmt(
			    err, errlen,
			    "%s:%u: expected 'score SYMBOL VALUE' (VALUE from -1000 to 1000)", path,
			    lineno);
			rc = -1;
			break;
		}
		if (s->n >= SCORES_MAX || add(s, name, v) < 0) {
			(void)str_fmt(err, errlen, "%s:%u: too many scores", path, lineno);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		(void)str_fmt(err, errlen, "%s: read error", path);
		rc = -1;
	}
	return rc;
}

static int load_file(struct scores *s, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		(void)str_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = load_stream(s, f, path, err, errlen);
	fclose(f);
	return rc;
}

/* Sorts by name and collapses duplicates onto the last one read. */
static void finish(struct scores *s);

int scores_parse(const char *name, const char *text, size_t len, struct scores **out, char *err,
		 size_t errlen)
{
	struct scores *s = calloc(1, sizeof(*s));
	FILE *f;
	int rc;

	if (!s || !(f = fmemopen((void *)(uintptr_t)text, len ? len : 1, "r"))) {
		free(s);
		(void)str_copy(err, errlen, "out of memory");
		return -1;
	}
	rc = len ? load_stream(s, f, name, err, errlen) : 0;
	fclose(f);
	if (rc < 0) {
		scores_free(s);
		return -1;
	}
	finish(s);
	*out = s;
	return 0;
}

static void finish(struct scores *s)
{
	size_t w = 0;

	/* by name, and for equal names in the order read, so that the
	 * last line for a symbol wins when duplicates collapse */
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_entry_seq);
	for (size_t i = 0; i < s->n; i++) {
		if (w > 0 && !strcmp(s->v[w - 1].name, s->v[i].name))
			s->v[w - 1] = s->v[i];
		else
			s->v[w++] = s->v[i];
	}
	s->n = w;
}

int scores_load(const char *dir, struct scores **out, char *err, size_t errlen)
{
	struct scores *s = calloc(1, sizeof(*s));
	char **names = NULL, path[4096];
	size_t nnames = 0, cap = 0;
	struct dirent *e;
	DIR *d = NULL;
	int rc = -1;

	if (!s) {
		(void)str_copy(err, errlen, "out of memory");
		return -1;
	}
	if (!dir || !dir[0] || !(d = opendir(dir))) {
		if (dir && dir[0] && errno != ENOENT) {
			(void)str_fmt(err, errlen, "%s: %s", dir, strerror(errno));
			goto out;
		}
		*out = s;
		return 0;
	}
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' || l < 4 || strcmp(e->d_name + l - 3, ".cf"))
			continue;
		if (nnames == cap) {
			char **n = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*n));
			if (!n)
				goto nomem;
			names = n;
		}
		if (!(names[nnames] = strdup(e->d_name)))
			goto nomem;
		nnames++;
	}
	qsort(names, nnames, sizeof(*names), cmp_name);
	for (size_t i = 0; i < nnames; i++) {
		if (str_fmt(path, sizeof(path), "%s/%s", dir, names[i]) < 0) {
			(void)str_fmt(err, errlen, "%s: name too long", names[i]);
			goto out;
		}
		if (load_file(s, path, err, errlen) < 0)
			goto out;
	}
	finish(s);
	rc = 0;
	*out = s;
	goto out;
nomem:
	(void)str_copy(err, errlen, "out of memory");
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (rc < 0)
		scores_free(s);
	return rc;
}

bool scores_lookup(const struct scores *s, const char *name, double *score)
{
	struct score_entry key, *hit;

	if (!s || s->n == 0 || str_copy(key.name, sizeof(key.name), name) < 0)
		return false;
	hit = bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_entry);
	if (!hit)
		return false;
	*score = hit->score;
	return true;
}

size_t scores_count(const struct scores *s)
{
	return s ? s->n : 0;
}

void scores_free(struct scores *s)
{
	if (!s)
		return;
	free(s->v);
	free(s);
}
