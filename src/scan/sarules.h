/* SPDX-License-Identifier: MIT */
/*
 * sarules: a rules engine that reads SpamAssassin's rule-file format (the
 * *.cf files that Debian's spamassassin package ships, and our own in
 * rules/spam) and runs the rules on a message parsed by the MIME engine.
 *
 * Rule types: header (with ALL, exists:, the :name :addr :raw modifiers,
 * =~ and !~, [if-unset: ...]), mimeheader, body (the Subject line, then the
 * rendered text of every text part, one paragraph per line as SpamAssassin
 * does), rawbody (decoded text parts, line by line), uri, full (the message
 * as received), meta (boolean and arithmetic expressions over other rules),
 * eval: tests that are implemented natively (sarules_eval.c). score (one
 * or four values; of four, score set 2 "Bayes on, network tests off" is
 * used), describe, tflags, ifplugin/if/else/endif, replace_tag/replace_rules
 * (the ReplaceTags plugin). Everything else SpamAssassin knows (lists,
 * report templates, DNS settings...) is ignored and counted.
 *
 * Rules that cannot run here are skipped, each with a reason: network
 * tests (tflags net, DNS lists, Razor, Pyzor, DCC), eval functions that are
 * not implemented ("eval:NAME not implemented"), SpamAssassin's synthetic
 * headers (X-Spam-Relays-*), regexes that do not compile (with file:line),
 * and meta rules whose dependencies are all skipped.
 *
 * Matching: every regex is compiled into Vectorscan databases, one per text
 * kind (one per header name for header rules), with HS_FLAG_PREFILTER for
 * what Vectorscan cannot express exactly; PCRE2 (JIT) confirms prefilter
 * hits and per-line matches. One Vectorscan pass per text kind per message.
 * Meta rules and eval tests are evaluated lazily, only when a scored rule
 * needs them.
 *
 * Ownership and threads: a struct sarules_db is built once by
 * sarules_db_load and is immutable afterwards; any number of threads may
 * scan with it at once, each through its own struct sarules_scanner
 * (Vectorscan scratch, PCRE2 match data, text buffers). The db must outlive
 * its scanners.
 *
 * Errors: a rule that cannot be used is skipped (never an error); only an
 * unreadable file or directory, or out of memory, fails the load (err gets
 * "path: why").
 */
#ifndef MXG_SCAN_SARULES_H
#define MXG_SCAN_SARULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/util.h"
#include "mime/mime.h"

struct sarules_db;
struct sarules_scanner;
struct scan_check;

/* paths: files (*.cf read whatever the name) or directories (their *.cf
 * files in name order, as SpamAssassin reads them). Later definitions of
 * a rule replace earlier ones. Returns 0, -ENOENT/-EACCES/-EISDIR... (err
 * says which path), or -ENOMEM. */
int sarules_db_load(const char *const *paths, size_t npaths, struct sarules_db **out, char *err,
		    size_t errlen) MXG_WUR;
/* The same, keeping compiled Vectorscan databases in cache_dir (made if
 * missing; NULL: no cache) so that the next load of the same rules reads
 * them instead of compiling. sarules_db_load_config() uses
 * node.data_dir/cache/sarules. */
int sarules_db_load_cached(const char *const *paths, size_t npaths, const char *cache_dir,
			   struct sarules_db **out, char *err, size_t errlen) MXG_WUR;
/* The same from rule text in memory (len bytes, not necessarily
 * terminated); name is what "file:line" says. For tests and fuzzing. */
int sarules_db_load_mem(const char *name, const char *text, size_t len, struct sarules_db **out,
			char *err, size_t errlen) MXG_WUR;
/* The sources of cfg: scan.sa_rules (comma-separated, "" none) and the
 * spam/ folder next to av.yara_rules (our own rules), if it exists.
 * *out is NULL (and 0 returned) when there is no source at all. */
int sarules_db_load_config(const struct config *cfg, struct sarules_db **out, char *err,
			   size_t errlen) MXG_WUR;
void sarules_db_free(struct sarules_db *db);

/* ---- what was loaded (for `mxguard rules check`) ------------------------ */

size_t sarules_db_nloaded(const struct sarules_db *db);	 /* rules that run */
size_t sarules_db_nskipped(const struct sarules_db *db); /* rules that do not */
size_t sarules_db_nfiles(const struct sarules_db *db);
/* Lines that were understood but have no effect here (lists, report
 * templates, DNS settings...), counted by keyword. */
size_t sarules_db_nignored(const struct sarules_db *db);
/* Microseconds spent parsing and compiling. */
int64_t sarules_db_load_us(const struct sarules_db *db);
/* Rules that go through Vectorscan exactly / as prefilter / PCRE2 only. */
void sarules_db_regex_counts(const struct sarules_db *db, size_t *exact, size_t *prefilter,
			     size_t *pcre_only);
/* Skip reasons grouped: reason i (0 <= i < nreasons), most frequent first. */
size_t sarules_db_nreasons(const struct sarules_db *db);
const char *sarules_db_reason(const struct sarules_db *db, size_t i, size_t *count);
/* Ignored keywords grouped the same way. */
size_t sarules_db_nignored_kinds(const struct sarules_db *db);
const char *sarules_db_ignored_kind(const struct sarules_db *db, size_t i, size_t *count);
/* Skipped rule i (0 <= i < nskipped): its name and reason; where gets
 * "file:line" and, for a rule that does not compile, ": why". */
const char *sarules_db_skip(const struct sarules_db *db, size_t i, const char **reason, char *where,
			    size_t wherelen);
/* Score and description of a loaded rule (NULL if unknown or skipped). */
const char *sarules_db_rule(const struct sarules_db *db, const char *name, double *score);

/* The whole report as `mxguard rules check` prints it: text to out, or
 * (json) a JSON object {"files", "loaded", "skipped", "compile_ms",
 * "regex": {"exact", "prefilter", "pcre_only"}, "skip_reasons":
 * [{"reason", "count"}], "skipped_rules": [{"rule", "reason", "where"}],
 * "ignored_lines", "ignored": [{"keyword", "count"}]}. 0 or -ENOMEM/-EIO. */
int sarules_db_report(const struct sarules_db *db, bool json, FILE *out) MXG_WUR;

/* ---- scanning (one scanner per thread) ----------------------------------- */

int sarules_scanner_new(const struct sarules_db *db, struct sarules_scanner **out) MXG_WUR;
void sarules_scanner_free(struct sarules_scanner *s);

/* One hit: a scored rule that matched (rules named __* and rules scored 0
 * are never reported). describe may be "". Strings live until the
 * callback returns. */
typedef void (*sarules_hit_cb)(void *arg, const char *name, double score, const char *describe);

/* Runs every rule on msg (parsed from raw[0..len)); envfrom is the
 * envelope sender (NULL: unknown). Returns the number of hits reported,
 * or -ENOMEM / -EIO (a Vectorscan failure). */
int sarules_scan(struct sarules_scanner *s, const struct mime_msg *msg, const char *raw, size_t len,
		 const char *envfrom, sarules_hit_cb cb, void *arg) MXG_WUR;

/* The pipeline check: every hit becomes a symbol (rule name, score,
 * description). The db is loaded once per pipeline (shared_new). */
extern const struct scan_check sarules_check;

#endif
