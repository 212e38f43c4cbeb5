/* SPDX-License-Identifier: MIT */
/*
 * urlcheck: phishing heuristics over the URLs the MIME engine found
 * (struct mime_url: href/src of HTML with the visible link text, and URLs
 * in plain text), each a scored symbol whose detail names the URL.
 *
 *   URL_TEXT_MISMATCH   an HTML link whose visible text is a domain or URL
 *                       of one registrable domain while the href goes to
 *                       another ("paypal.com" -> evil.example)
 *   URL_IP_HOST         the host is an IPv4 or IPv6 literal
 *   URL_IP_OBFUSCATED   the host is an IPv4 address written as one number,
 *                       in hex or octal, or in fewer than four parts
 *                       (http://3232235777/, http://0xC0.0xA8.1.1/)
 *   URL_USERINFO        user information before the host, the trick of
 *                       http://paypal.com@evil.example/
 *   URL_HOST_ENCODED    percent-encoding in the host (%65vil.example)
 *   URL_IDN             a punycode / non-ASCII host (informational)
 *   URL_MIXED_SCRIPT    a label mixing Latin, Cyrillic and Greek letters
 *   URL_LOOKALIKE_RCPT  a registrable domain that is not a recipient's own
 *                       but has the same confusable skeleton
 *   URL_LOOKALIKE_BRAND the same against rules/phish/brands.txt
 *   URL_BRAND_SUBDOMAIN a brand's domain used as labels of another domain
 *                       (paypal.com.account-check.example)
 *   URL_SHORTENER       a URL shortener of rules/phish/shorteners.txt
 *
 * Each symbol is added once per message, with the first URL that fired
 * and the number of URLs that did. Scores: the table in urlcheck.c.
 *
 * Skeleton (UTS #39 section 4, restricted): Latin, Cyrillic and Greek
 * letters that look like ASCII letters are mapped to them (Cyrillic а->a,
 * Greek ο->o ...), as are '0'->'o', '1'->'l', "rn"->"m", "vv"->"w" and
 * the accented Latin-1 letters to their base letter; case is folded. Two
 * domains with the same skeleton look alike. The mapping is checked
 * against Unicode's confusables.txt in tests/unit/test_urlcheck.c.
 *
 * Ownership: a struct urlcheck holds the lists and a PSL context; it is
 * read-only after urlcheck_new() and may be shared by threads. Nothing
 * returned points into the message after the call.
 */
#ifndef MXG_SCAN_URLCHECK_H
#define MXG_SCAN_URLCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "mime/mime.h"
#include "scan/pipeline.h"

struct psl_ctx_st;
struct urlcheck;

#define URLCHECK_DOMAIN_LEN 256 /* a host name, terminated */
#define URLCHECK_MAX_URLS 2000	/* URLs looked at per message */

/* The check for the pipeline's table (not wired in by this module). It
 * loads its lists from the folder next to av.yara_rules: "phish/"
 * (rules/yara -> rules/phish); a missing folder means empty lists. */
extern const struct scan_check urlcheck_check;

/* Loads dir/brands.txt and dir/shorteners.txt (one registrable domain a
 * line, '#' comments; a missing file is an empty list; dir NULL: no
 * lists) and the system PSL (psl_latest). err gets "file:line: reason".
 * Returns 0, -EINVAL (bad line), -EIO or -ENOMEM. */
int urlcheck_new(const char *dir, struct urlcheck **out, char *err, size_t errlen) MXG_WUR;
void urlcheck_free(struct urlcheck *uc);
const struct psl_ctx_st *urlcheck_psl(const struct urlcheck *uc);
size_t urlcheck_nbrands(const struct urlcheck *uc);
size_t urlcheck_nshorteners(const struct urlcheck *uc);

/* Called once per symbol that fired. */
typedef void (*urlcheck_emit_fn)(void *arg, const char *symbol, double score, const char *detail);

/* Runs every heuristic over the URLs of m; rcpts are the envelope
 * recipients ("user@domain"). Returns the number of symbols emitted. */
size_t urlcheck_scan(const struct urlcheck *uc, const struct mime_msg *m, const char *const *rcpts,
		     size_t nrcpts, urlcheck_emit_fn emit, void *arg);

/* ---- the pieces, for tests and the fuzzer --------------------------------- */

enum urlcheck_host_kind {
	URLCHECK_HOST_NAME = 0,
	URLCHECK_HOST_IPV4 = 1,		   /* a canonical dotted quad */
	URLCHECK_HOST_IPV4_OBFUSCATED = 2, /* decimal, hex, octal, short forms */
	URLCHECK_HOST_IPV6 = 3,		   /* [v6] */
};

/* Classifies a (lower case, percent-decoded) host the way a browser's
 * URL parser would read it (WHATWG IPv4 parser: 1 to 4 parts, each
 * decimal, 0x hex or 0 octal, the last filling the remaining bytes).
 * *v4 gets the address (host byte order) for the IPv4 kinds. */
enum urlcheck_host_kind urlcheck_host_kind(const char *host, size_t len, uint32_t *v4);

/* The registrable domain (PSL) of host, lower case ASCII (punycode);
 * Unicode input is converted with IDNA2008 first. -EINVAL when host has
 * none (a public suffix, an IP literal, not a name), -ENAMETOOLONG. */
int urlcheck_registrable(const struct psl_ctx_st *psl, const char *host, char *out,
			 size_t outlen) MXG_WUR;

/* The confusable skeleton of a UTF-8 domain (see above). Returns its
 * length, or -EINVAL (bad UTF-8) / -ENAMETOOLONG. */
int urlcheck_skeleton(const char *s, size_t len, char *out, size_t outlen) MXG_WUR;
/* The skeleton's ASCII letter for one code point, or 0 when it has none.
 * uts39 tells whether the pair comes from UTS #39 (not a base-letter fold). */
char urlcheck_confusable(uint32_t cp, bool *uts39);

/* True if a label of the UTF-8 host mixes Latin, Cyrillic and Greek. */
bool urlcheck_mixed_script(const char *host, size_t len);

#endif
