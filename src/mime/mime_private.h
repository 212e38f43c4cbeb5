/* SPDX-License-Identifier: MIT */
/*
 * mime_private: what the files of the MIME engine share (mime.c, the
 * parser and work list; html.c and url.c, text and links; attach.c,
 * archives, TNEF and macros). Not for other modules: they use mime.h.
 */
#ifndef MXG_MIME_PRIVATE_H
#define MXG_MIME_PRIVATE_H

#include <stdbool.h>

#include "core/arena.h"
#include "mime/charset.h"
#include "mime/mime.h"

#define MIME_MAX_FINDINGS 256

struct mime_attach; /* attach.c: libmagic handle */

struct mime_engine {
	struct mime_limits lim;
	unsigned opts;
	struct mime_cs *cs;
	struct mime_attach *att;     /* NULL without MIME_OPT_ATTACH */
	struct mime_header *scratch; /* max_headers entries, one part at a time */
};

struct mime_msg {
	struct mime_engine *e;
	struct arena *a;
	struct mime_part **parts; /* max_parts entries */
	size_t nparts;
	struct mime_finding findings[MIME_MAX_FINDINGS];
	size_t nfindings;
	uint64_t decoded; /* bytes charged to max_decoded */
	bool parts_full, mem_full;
};

/* Records a finding once per (name, path); detail may be NULL. */
void mime_finding_add(struct mime_msg *m, const char *name, const struct mime_part *where,
		      const char *detail);
/* A new part under parent (NULL: root) named by its index among its
 * siblings or by name (archive members); NULL (and a finding) when the
 * part limit or the arena is exhausted. */
struct mime_part *mime_part_new(struct mime_msg *m, struct mime_part *parent, enum mime_origin o,
				const char *name, size_t namelen);
/* Reserves n decoded bytes of the message budget; fewer when it is nearly
 * spent (the finding MIME_DECODED_LIMIT is made then). */
size_t mime_budget_take(struct mime_msg *m, const struct mime_part *p, size_t n);
void mime_budget_return(struct mime_msg *m, size_t n);
/* Converts and sets p->text from bytes in charset (flags noted on p). */
int mime_part_set_text(struct mime_msg *m, struct mime_part *p, const char *bytes, size_t n,
		       const char *charset, size_t clen);

/* html.c / url.c: text and links of a text part. */
int mime_html_render(struct mime_msg *m, struct mime_part *p, const char *html, size_t n);
int mime_url_scan_text(struct mime_msg *m, struct mime_part *p, const char *text, size_t n);
/* Adds one URL (raw as found, visible text for links) to p. */
int mime_url_add(struct mime_msg *m, struct mime_part *p, const char *raw, size_t n,
		 const char *text, size_t tlen, unsigned flags);

/* attach.c */
struct mime_attach *mime_attach_new(void);
void mime_attach_free(struct mime_attach *att);
/* Detects the type of p's decoded bytes, opens archives and TNEF into
 * child parts, flags macros and encryption. */
int mime_attach_inspect(struct mime_msg *m, struct mime_part *p);

#endif
