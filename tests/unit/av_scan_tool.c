/* SPDX-License-Identifier: MIT */
/*
 * av_scan_tool: runs the antivirus layer (clamd, YARA + hash lists, the
 * file-type policy) over message files, without the pipeline, and prints
 * one JSON object per file. Used by tests/integration/test_av.py against
 * a real clamd, and by bench/av for the messages/s figures.
 *
 *   av_scan_tool -c CONFIG [-m mime|yara|clamd|clamd-raw|all] [-r ROUNDS] FILE...
 *
 * -m picks what runs after the MIME parse (default all); -r repeats the
 * whole set and prints only a summary line (for benchmarks).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/mime.h"
#include "scan/av_clamd.h"
#include "scan/av_yara.h"
#include "scan/filetype.h"

struct out {
	json_t *hits;
};

static json_t *where(const struct mime_part *p)
{
	return p ? json_stringn(p->path.ptr, p->path.len) : json_string("");
}

static void on_clamd(void *arg, enum av_clamd_event ev, const char *name,
		     const struct mime_part *part)
{
	struct out *o = arg;

	json_array_append_new(o->hits,
			      json_pack("{s:s,s:s,s:o}", "engine",
					ev == AV_CLAMD_EV_FOUND ? "clamd" : "clamd_skipped", "name",
					name ? name : "", "path", where(part)));
}

static void on_yara(void *arg, enum av_yara_kind kind, const char *name,
		    const struct mime_part *part)
{
	struct out *o = arg;

	json_array_append_new(o->hits, json_pack("{s:s,s:s,s:o}", "engine",
						 kind == AV_YARA_RULE ? "yara" : "hash", "name",
						 name, "path", where(part)));
}

static int read_all(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
	    !(b = malloc((size_t)n + 1)) || fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*out = b;
	*len = (size_t)n;
	return 0;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	const char *conf = NULL, *mode = "all";
	struct mime_engine *e;
	struct av_clamd *clamd = NULL;
	struct av_yara_db *db = NULL;
	char err[1024];
	int opt, rounds = 0, status = 0;
	bool do_clamd, do_yara, raw_only;
	size_t nfiles, nmsgs = 0, bytes = 0;
	char **data;
	size_t *lens;
	int64_t t0;

	while ((opt = getopt(argc, argv, "c:m:r:")) != -1) {
		if (opt == 'c')
			conf = optarg;
		else if (opt == 'm')
			mode = optarg;
		else if (opt == 'r') {
			int64_t n;
			if (parse_int64(optarg, 1, 1000000, &n) < 0)
				return 2;
			rounds = (int)n;
		} else
			return 2;
	}
	if (!conf || optind == argc) {
		fprintf(stderr, "usage: av_scan_tool -c CONFIG [-m mime|yara|clamd|all] [-r N] "
				"FILE...\n");
		return 2;
	}
	log_init("av_scan_tool", LOG_WARN);
	if (config_load(conf, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	raw_only = !strcmp(mode, "clamd-raw"); /* clamd's own rate: raw messages, no MIME */
	do_clamd = (!strcmp(mode, "all") || !strcmp(mode, "clamd") || raw_only) && cfg.av.clamd[0];
	do_yara = !strcmp(mode, "all") || !strcmp(mode, "yara");
	if (do_clamd && !(clamd = av_clamd_new(cfg.av.clamd, cfg.av.clamd_timeout,
					       (uint64_t)cfg.av.clamd_max_stream, NULL)))
		return 1;
	if (do_yara &&
	    av_yara_db_load(cfg.av.yara_rules, cfg.av.hash_lists, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "rules refused: %s\n", err);
		return 1;
	}
	if (!(e = mime_engine_new(NULL, MIME_OPT_ALL)))
		return 1;
	nfiles = (size_t)(argc - optind);
	data = calloc(nfiles, sizeof(*data));
	lens = calloc(nfiles, sizeof(*lens));
	for (size_t i = 0; i < nfiles; i++)
		if (read_all(argv[optind + (int)i], &data[i], &lens[i]) < 0) {
			fprintf(stderr, "%s: cannot read\n", argv[optind + (int)i]);
			return 1;
		}
	t0 = time_mono_us();
	for (int r = 0; r < (rounds > 0 ? rounds : 1); r++) {
		for (size_t i = 0; i < nfiles; i++) {
			struct mime_msg *m = NULL;
			struct out o = {.hits = json_array()};
			json_t *doc;
			char why[512] = "";
			int crc = 0, yrc = 0;

			if (raw_only) {
				char nm[128];
				if (av_clamd_scan(clamd, data[i], lens[i], 0, nm, sizeof(nm), why,
						  sizeof(why)) < 0)
					status = 1;
				nmsgs++;
				bytes += lens[i];
				json_decref(o.hits);
				continue;
			}
			if (mime_parse(e, data[i], lens[i], &m) < 0)
				return 1;
			if (do_clamd)
				crc = av_clamd_scan_msg(clamd, data[i], lens[i], m, 0, on_clamd, &o,
							why, sizeof(why));
			if (do_yara && crc >= 0)
				yrc =
				    av_yara_scan_msg(db, m, 0, NULL, on_yara, &o, why, sizeof(why));
			for (size_t k = 0; k < mime_msg_nparts(m); k++) {
				const struct mime_part *p = mime_msg_part(m, k);
				unsigned f = filetype_classify(p);
				for (unsigned bit = 1; bit <= FILETYPE_ENCRYPTED; bit <<= 1)
					if (f & bit)
						json_array_append_new(
						    o.hits,
						    json_pack("{s:s,s:s,s:o}", "engine", "filetype",
							      "name", filetype_symbol(bit), "path",
							      where(p)));
			}
			nmsgs++;
			bytes += lens[i];
			if (crc < 0 || yrc < 0)
				status = 1;
			if (rounds > 0) {
				json_decref(o.hits);
			} else {
				doc = json_pack("{s:s,s:s,s:s,s:o}", "file", argv[optind + (int)i],
						"result", crc < 0 || yrc < 0 ? "tempfail" : "ok",
						"why", why, "hits", o.hits);
				json_dumpf(doc, stdout, JSON_COMPACT);
				fputc('\n', stdout);
				json_decref(doc);
			}
			mime_msg_free(m);
		}
	}
	if (rounds > 0) {
		double s = (double)(time_mono_us() - t0) / 1e6;
		printf("{\"mode\":\"%s\",\"messages\":%zu,\"bytes\":%zu,\"seconds\":%.3f,"
		       "\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f}\n",
		       mode, nmsgs, bytes, s, (double)nmsgs / s, (double)bytes / s / 1e6);
	}
	for (size_t i = 0; i < nfiles; i++)
		free(data[i]);
	free(data);
	free(lens);
	mime_engine_free(e);
	av_clamd_free(clamd);
	av_yara_db_free(db);
	return status;
}
