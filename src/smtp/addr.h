/* SPDX-License-Identifier: MIT */
/*
 * addr: parsing of SMTP command arguments (RFC 5321 4.1.2, RFC 6531).
 *
 * smtp_path_parse() reads a Reverse-path or Forward-path ("<a@b>", "<>",
 * "<@relay,@relay:a@b>") from the argument of MAIL or RCPT and leaves the
 * cursor after the closing '>'. The mailbox is returned as local@domain
 * with the domain lower-cased (ASCII); quoted local parts keep their
 * quotes. Non-ASCII bytes are accepted only as well-formed UTF-8 and are
 * reported in out->utf8 so the session can insist on SMTPUTF8.
 * smtp_param_next() then walks the ESMTP parameters "KEY[=VALUE]".
 *
 * Errors: -EINVAL for a syntax error, -ENAMETOOLONG for a path that does
 * not fit (RFC 5321 4.5.3.1 limits), never a partial result.
 */
#ifndef MXG_SMTP_ADDR_H
#define MXG_SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

struct smtp_path {
	char addr[STORE_ADDR_LEN]; /* "" for the null path <> */
	bool null;		   /* <> */
	bool utf8;		   /* contains non-ASCII (UTF-8) */
	bool no_domain;		   /* "<postmaster>" style (RCPT only) */
};

int smtp_path_parse(const char **cursor, bool null_ok, struct smtp_path *out) MXG_WUR;

/* Returns 1 with key/value filled, 0 at the end, or a negative error. */
int smtp_param_next(const char **cursor, char *key, size_t keylen, char *val,
		    size_t vallen) MXG_WUR;

/* True if s is a syntactically valid domain or address literal for EHLO. */
bool smtp_domain_valid(const char *s, size_t len, bool utf8_ok);

#endif
