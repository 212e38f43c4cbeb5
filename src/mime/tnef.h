/* SPDX-License-Identifier: MIT */
/*
 * tnef: a small bounded reader of Microsoft's Transport Neutral
 * Encapsulation Format (application/ms-tnef, the "winmail.dat" that
 * Outlook and Exchange send), as described in [MS-OXTNEF]. It reads only
 * what a scanner needs: the attachments. An attachment starts with
 * attAttachRenddata; its name comes from PR_ATTACH_LONG_FILENAME,
 * attAttachTitle, PR_ATTACH_FILENAME or PR_DISPLAY_NAME (in that order),
 * its bytes from attAttachData or else PR_ATTACH_DATA_BIN in the
 * attAttachment MAPI property block, an embedded object's from
 * PR_ATTACH_DATA_OBJ, its declared type from
 * PR_ATTACH_MIME_TAG. Message bodies (RTF, HTML) are not read.
 *
 * Hostile input: every length the stream declares is checked against the
 * bytes that remain before it is used, and nothing is allocated from a
 * declared length (the reader allocates only itself): what comes back are
 * slices of the input. Every step consumes input, so the work is linear in
 * the size of the stream whatever the declared counts say. This is our
 * own code rather than libytnef (docs/architecture.md says why).
 *
 * Ownership: the reader points into the caller's bytes, which must stay
 * valid and unchanged while the reader and the slices it returned are used.
 *
 * Errors: tnef_new returns -EINVAL when the bytes do not start with the
 * TNEF signature and -ENOMEM when the reader cannot be allocated.
 * tnef_next returns 1 with an attachment, 0 at the end of the stream, or
 * -EBADMSG when the stream is malformed (tnef_error says why). The
 * attachment being read when the damage was found is still returned
 * first (1, with tnef_error set), then every call returns -EBADMSG.
 * Attachments returned before remain valid.
 */
#ifndef MXG_MIME_TNEF_H
#define MXG_MIME_TNEF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "mime/mime.h"

#define TNEF_SIGNATURE "\x78\x9f\x3e\x22"

enum tnef_text {
	TNEF_TEXT_8BIT,	   /* in the sender's code page (attOemCodepage) */
	TNEF_TEXT_UTF16LE, /* PT_UNICODE */
};

struct tnef_attachment {
	struct mime_slice name; /* trailing NULs removed; empty if none */
	enum tnef_text name_enc;
	struct mime_slice mime_type; /* PR_ATTACH_MIME_TAG (8 bit), or empty */
	struct mime_slice data;	     /* attAttachData, else PR_ATTACH_DATA_BIN */
	/* PR_ATTACH_DATA_OBJ after its interface id: an embedded message or
	 * OLE object (Outlook then puts a placeholder in attAttachData) */
	struct mime_slice object;
};

enum tnef_flag {
	TNEF_F_BAD_CHECKSUM = 1 << 0, /* an attribute's checksum did not match */
};

struct tnef;

/* True if data starts with the TNEF signature. */
bool tnef_is(const char *data, size_t len);
int tnef_new(const char *data, size_t len, struct tnef **out) MXG_WUR;
int tnef_next(struct tnef *t, struct tnef_attachment *out) MXG_WUR;
/* Why the stream is malformed (static string), or NULL. */
const char *tnef_error(const struct tnef *t);
/* enum tnef_flag noted so far. */
unsigned tnef_flags(const struct tnef *t);
void tnef_free(struct tnef *t);

#endif
