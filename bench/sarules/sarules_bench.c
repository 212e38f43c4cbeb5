/* SPDX-License-Identifier: MIT */
/*
 * sarules_bench: the SpamAssassin rules engine alone, without the
 * pipeline. Loads the rule sources once (timing the compile), parses
 * every message of the given files/folders with the MIME engine up front,
 * then scans them all with the rules, several rounds, and prints messages
 * per second for the rules only (MIME parsing excluded) on one thread.
 *
 *   sarules_bench [-r ROUNDS] [-v] RULES[,RULES...] MSGFILE|DIR...
 *
 * -v prints each message's hits (name and score), for checking.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "mime/mime.h"
#include "scan/sarules.h"

#define MAX_MSGS 20000
#define MAX_MSG_SIZE (32u * 1024 * 1024)

struct msg {
	char *path;
	char *data;
	size_t len;
	struct mime_msg *mime;
};

struct hits {
	bool verbose;
	double score;
	size_t n;
};

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) < 0 || st.st_size > MAX_MSG_SIZE) {
		fclose(f);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[st.st_size] = '\0';
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static int add_path(const char *path, struct msg *msgs, size_t *n)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		if (*n >= MAX_MSGS)
			return 0;
		if (read_file(path, &msgs[*n].data, &msgs[*n].len) < 0)
			return 0;
		msgs[*n].path = strdup(path);
		(*n)++;
		return 0;
	}
	if (!(d = opendir(path)))
		return -errno;
	while ((de = readdir(d))) {
		char full[4096];
		if (de->d_name[0] == '.')
			continue;
		if (str_fmt(full, sizeof(full), "%s/%s", path, de->d_name) == 0)
			(void)add_path(full, msgs, n);
	}
	closedir(d);
	return 0;
}

static void on_hit(void *arg, const char *name, double score, const char *describe)
{
	struct hits *h = arg;

	h->score += score;
	h->n++;
	if (h->verbose)
		printf("  %-28s %7.3f  %s\n", name, score, describe);
}

int main(int argc, char **argv)
{
	struct sarules_db *db = NULL;
	struct sarules_scanner *sc = NULL;
	struct mime_engine *eng;
	struct mime_limits lim;
	struct msg *msgs;
	const char *paths[32];
	char list[8192], err[512], *save = NULL, *tok;
	size_t npaths = 0, nmsgs = 0, total_hits = 0, bytes = 0;
	int rounds = 3, opt;
	bool verbose = false;
	int64_t t0, t1;

	while ((opt = getopt(argc, argv, "r:v")) != -1) {
		if (opt == 'r')
			rounds = (int)strtol(optarg, NULL, 10);
		else if (opt == 'v')
			verbose = true;
		else
			return 2;
	}
	if (argc - optind < 2 || rounds < 1) {
		fprintf(stderr, "usage: sarules_bench [-r ROUNDS] [-v] RULES[,RULES] MSG|DIR...\n");
		return 2;
	}
	(void)str_copy(list, sizeof(list), argv[optind]);
	for (tok = strtok_r(list, ",", &save); tok && npaths < 32; tok = strtok_r(NULL, ",", &save))
		paths[npaths++] = tok;
	if (sarules_db_load(paths, npaths, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "sarules_bench: %s\n", err);
		return 1;
	}
	{
		size_t ex, pf, po;
		sarules_db_regex_counts(db, &ex, &pf, &po);
		printf(
		    "rules: loaded=%zu skipped=%zu compile_ms=%.1f regex exact=%zu prefilter=%zu "
		    "pcre_only=%zu\n",
		    sarules_db_nloaded(db), sarules_db_nskipped(db),
		    (double)sarules_db_load_us(db) / 1000.0, ex, pf, po);
	}
	msgs = calloc(MAX_MSGS, sizeof(*msgs));
	mime_limits_default(&lim);
	eng = mime_engine_new(&lim, MIME_OPT_ALL);
	if (!msgs || !eng || sarules_scanner_new(db, &sc) < 0) {
		fprintf(stderr, "sarules_bench: out of memory\n");
		return 1;
	}
	for (int i = optind + 1; i < argc; i++)
		(void)add_path(argv[i], msgs, &nmsgs);
	for (size_t i = 0; i < nmsgs; i++) {
		if (mime_parse(eng, msgs[i].data, msgs[i].len, &msgs[i].mime) < 0) {
			fprintf(stderr, "sarules_bench: cannot parse %s\n", msgs[i].path);
			return 1;
		}
		bytes += msgs[i].len;
	}
	t0 = time_mono_us();
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < nmsgs; i++) {
			struct hits h = {.verbose = verbose && r == 0};
			int rc;
			if (h.verbose)
				printf("%s\n", msgs[i].path);
			rc = sarules_scan(sc, msgs[i].mime, msgs[i].data, msgs[i].len, NULL, on_hit,
					  &h);
			if (rc < 0) {
				fprintf(stderr, "sarules_bench: scan failed: %s\n", strerror(-rc));
				return 1;
			}
			if (h.verbose)
				printf("  score=%.3f\n", h.score);
			if (r == 0)
				total_hits += h.n;
		}
	t1 = time_mono_us();
	printf("messages=%zu bytes=%zu rounds=%d hits_per_msg=%.2f\n", nmsgs, bytes, rounds,
	       nmsgs ? (double)total_hits / (double)nmsgs : 0);
	printf("rules_only: %.0f msgs/s, %.1f MB/s (1 thread)\n",
	       (double)nmsgs * rounds * 1e6 / (double)(t1 - t0 ? t1 - t0 : 1),
	       (double)bytes * rounds / (double)(t1 - t0 ? t1 - t0 : 1));
	for (size_t i = 0; i < nmsgs; i++) {
		mime_msg_free(msgs[i].mime);
		free(msgs[i].data);
		free(msgs[i].path);
	}
	free(msgs);
	sarules_scanner_free(sc);
	mime_engine_free(eng);
	sarules_db_free(db);
	return 0;
}
