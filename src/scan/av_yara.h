/* SPDX-License-Identifier: MIT */
/*
 * av_yara: antivirus engine 2, in process and independent of ClamAV:
 * YARA rules (libyara) and lists of hashes of known-bad files.
 *
 * Rules: every *.yar and *.yara file of a folder (av.yara_rules), in name
 * order, compiled into one rule set. The first error refuses the whole set
 * with "file:line: message" from the YARA compiler: a broken file is never
 * half loaded. Hash lists: every regular file of a folder (av.hash_lists)
 * not starting with '.', one entry per line:
 *
 *     # comment
 *     HEX [NAME]            MD5 (32 hex digits) or SHA-256 (64)
 *     HEX:SIZE:NAME         ClamAV .hdb/.hsb style (sigtool --md5/--sha256);
 *                           SIZE may be "*" (any)
 *
 * NAME is 1 to 63 of [A-Za-z0-9._-] (default: the hash). A bad line refuses
 * the set with file:line.
 *
 * A loaded set (struct av_yara_db) is immutable; libyara allows one YR_RULES
 * in up to 32 threads at once, fewer than scan.threads may be, so each
 * scanning thread loads its own (the rule sets here are small; the whole
 * load is measured in docs/benchmarks.md). Reloading = new workers.
 *
 * Scanning (av_yara_scan_msg): every leaf's decoded bytes, archive members
 * included, each distinct content once. Results: the number of findings,
 * or a negative code, TEMPFAIL for the message: -ETIMEDOUT (the deadline
 * passed), -EIO (libyara failed), -ENOMEM.
 *
 * libyara's process-wide yr_initialize() is called once (pthread_once) by
 * the first av_yara_db_load(); yr_finalize() is never called.
 */
#ifndef MXG_SCAN_AV_YARA_H
#define MXG_SCAN_AV_YARA_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/util.h"
#include "mime/mime.h"
#include "scan/pipeline.h"

#define AV_YARA_NAME_LEN 128

struct av_yara_db;

/* rules_dir / hash_dir: "" skips that half. err gets "file:line: why". */
int av_yara_db_load(const char *rules_dir, const char *hash_dir, struct av_yara_db **out, char *err,
		    size_t errlen) MXG_WUR;
void av_yara_db_free(struct av_yara_db *db);
size_t av_yara_db_nrules(const struct av_yara_db *db);
size_t av_yara_db_nhashes(const struct av_yara_db *db);

/* Loads av.yara_rules and av.hash_lists of cfg and throws them away: 0 if
 * they would load, else a negative code and "file:line: why" in err. For
 * the master (at start and before a reload) and `mxguard rules check`. */
int av_yara_rules_check(const struct config *cfg, char *err, size_t errlen) MXG_WUR;

/* An empty set (no rules, no hashes), or NULL on out of memory. */
struct av_yara_db *av_yara_db_new_empty(void);
/* Parses one hash list (name is for messages) into db; on error db keeps
 * the lines before the bad one. Exposed for tests and the fuzzer. */
int av_yara_hashes_parse(struct av_yara_db *db, const char *name, const char *text, size_t len,
			 char *err, size_t errlen) MXG_WUR;
/* The list's name for this content, or NULL. */
const char *av_yara_hash_lookup(const struct av_yara_db *db, const void *data, size_t len);

enum av_yara_kind {
	AV_YARA_RULE, /* name: the rule identifier */
	AV_YARA_HASH, /* name: the list's name for the file */
};
/* part: where (never NULL). */
typedef void (*av_yara_cb)(void *arg, enum av_yara_kind kind, const char *name,
			   const struct mime_part *part);

/* deadline_us: time_mono_us() clock, 0 for none. metrics may be NULL. */
int av_yara_scan_msg(const struct av_yara_db *db, const struct mime_msg *m, int64_t deadline_us,
		     struct metrics *metrics, av_yara_cb cb, void *arg, char *why,
		     size_t whylen) MXG_WUR;

/* The pipeline check "av_yara": disabled when both folders are "". */
extern const struct scan_check scan_check_av_yara;

#endif
