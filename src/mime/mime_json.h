/* SPDX-License-Identifier: MIT */
/*
 * mime_json: a parsed message as a JSON document (jansson) and as a short
 * human summary; what `mxguard scan` prints.
 *
 * The document is {"parts": TREE, "findings": [...], "summary": {...}},
 * where every node of TREE has its path, types (declared and detected),
 * transfer encoding, charset, file name, sizes, the SHA-256 of the decoded
 * bytes, flags, header fields (in order, duplicates kept), URLs, text and
 * its children in "parts". Every string is valid UTF-8 (invalid bytes in
 * raw values become U+FFFD). The caller owns the returned reference.
 */
#ifndef MXG_MIME_JSON_H
#define MXG_MIME_JSON_H

#include <jansson.h>
#include <stdio.h>

#include "mime/mime.h"

json_t *mime_json_msg(const struct mime_msg *m);
/* One line per part, indented by depth, then one line per finding. */
void mime_json_print_text(FILE *f, const struct mime_msg *m);

#endif
