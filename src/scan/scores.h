/* SPDX-License-Identifier: MIT */
/*
 * scores: the operator's (and the fitted) scores of symbols, whatever
 * check names them.
 *
 * Every check gives its symbols a default score; a scores folder
 * (scores/ beside the YARA rules, so rules/scores and its snapshot) may
 * replace any of them. Its *.cf files, read in name order, hold lines
 *
 *     score SYMBOL VALUE      # comment
 *
 * and comments or blank lines; a later line for the same symbol wins. A
 * line of any other form stops the load with file:line, as a broken YARA
 * rule does (the old set stays in force on reload). The set is built
 * once per pipeline and only read after (shared by the scanning threads).
 */
#ifndef MXG_SCAN_SCORES_H
#define MXG_SCAN_SCORES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

struct scores;

/* Loads the .cf files of dir (a missing folder is an empty set). 0, or -1 with err
 * naming the file and line. */
int scores_load(const char *dir, struct scores **out, char *err, size_t errlen) MXG_WUR;
/* The same for the text of one file (named name in errors): tests,
 * fuzzing. */
int scores_parse(const char *name, const char *text, size_t len, struct scores **out, char *err,
		 size_t errlen) MXG_WUR;
/* true and *score set when name has an override. */
bool scores_lookup(const struct scores *s, const char *name, double *score);
size_t scores_count(const struct scores *s);
void scores_free(struct scores *s);
/* The scores folder that goes with a YARA rules folder ("rules/yara" ->
 * "rules/scores"); "" when yara_rules is empty. */
void scores_dir(const char *yara_rules, char *out, size_t outlen);

#endif
