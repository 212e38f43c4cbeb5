/* SPDX-License-Identifier: MIT */
/*
 * tag: the changes the policy makes to a message's header.
 *
 * Works on a complete message in memory (CRLF line endings, as the SMTP
 * session stores it). The header section ends at the first empty line; a
 * field runs from its name to the last continuation line (RFC 5322 2.2.3).
 *
 * - tag_strip_ours removes, in place, the fields that only this gateway may
 *   write, so a sender cannot forge our verdict: X-Spam-*, X-Mxguard-*, and
 *   Authentication-Results whose authserv-id is ours (RFC 8601 5).
 * - tag_spam_headers formats X-Spam-Score / X-Spam-Status (+ X-Spam-Flag).
 * - tag_subject_copy makes the tagged copy: extra header text first, then
 *   the message with its Subject prefixed (added if missing; never twice).
 */
#ifndef MXG_POLICY_TAG_H
#define MXG_POLICY_TAG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

/* Returns how many fields were removed; *len is updated. */
size_t tag_strip_ours(char *data, size_t *len, const char *authserv_id);
/* 0, or -ENAMETOOLONG if out is too small. */
int tag_spam_headers(char *out, size_t outlen, double score, bool spam) MXG_WUR;
/* *out is malloc'd (caller frees). 0 or -ENOMEM. */
int tag_subject_copy(const char *data, size_t len, const char *extra, size_t extralen,
		     const char *tag, char **out, size_t *outlen) MXG_WUR;
/* The Subject of a message, unfolded, raw (encoded words left as they
 * are), into out ("" if none). */
void tag_subject_get(const char *data, size_t len, char *out, size_t outlen);

/* The address of the (first) From field, "local@domain" without angle
 * brackets or display name, into out ("" if none or unparseable). */
void tag_from_address(const char *data, size_t len, char *out, size_t outlen);

#endif
