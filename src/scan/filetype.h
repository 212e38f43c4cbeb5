/* SPDX-License-Identifier: MIT */
/*
 * filetype: the file-type policy over every leaf of a message, archive
 * members included.
 *
 *   FILETYPE_EXECUTABLE  content is a program, whatever its name says
 *                        (libmagic: PE/DOS, ELF, Mach-O, MSI...)
 *   FILETYPE_DOUBLE_EXT  a name that hides a program behind a harmless
 *                        extension: "invoice.pdf.exe", "scan.jpg .scr"
 *   FILETYPE_RISKY_EXT   a name Windows would run (.js, .vbs, .hta, .lnk...)
 *                        whose content libmagic does not call a program
 *   FILETYPE_MACROS      an Office document with VBA macros
 *   FILETYPE_ENCRYPTED   an encrypted archive (nothing inside can be scanned)
 *
 * The first two are "executables". What happens to a message with such a
 * file is each recipient's policy (file_executables, file_macros,
 * file_encrypted: reject, quarantine, score, or node); "node", the default,
 * follows av.block_executables (default on: refused, 554 5.7.0),
 * av.block_macros and av.block_encrypted (default off: scored). The check
 * records its findings (scan_ctx_filetype) and adds each kind's symbol
 * with its points; the decision is the policy's (policy_decide). filetype_classify() is the pure
 * core, callable without the pipeline; it returns a mask of enum filetype_flag.
 */
#ifndef MXG_SCAN_FILETYPE_H
#define MXG_SCAN_FILETYPE_H

#include "mime/mime.h"
#include "scan/pipeline.h"

enum filetype_flag {
	FILETYPE_EXECUTABLE = 1 << 0,
	FILETYPE_DOUBLE_EXT = 1 << 1,
	FILETYPE_RISKY_EXT = 1 << 2,
	FILETYPE_MACROS = 1 << 3,
	FILETYPE_ENCRYPTED = 1 << 4,
};

/* Scores added when a kind is not blocked. */
#define FILETYPE_SCORE_EXECUTABLE 8.0
#define FILETYPE_SCORE_RISKY_EXT 4.0
#define FILETYPE_SCORE_MACROS 4.0
#define FILETYPE_SCORE_ENCRYPTED 3.0

unsigned filetype_classify(const struct mime_part *p);
/* The symbol of one flag, e.g. "FILETYPE_EXECUTABLE". */
const char *filetype_symbol(unsigned flag);

extern const struct scan_check scan_check_filetype;

struct policy_verdict;
/* Fills the file-kind part of a policy verdict from a scan's findings
 * (scan_result.filetypes) and the node's av.block_* settings. */
void filetype_verdict(unsigned found, const struct config *cfg, struct policy_verdict *v);

#endif
