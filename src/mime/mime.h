/* SPDX-License-Identifier: MIT */
/*
 * mime: the MIME engine. Turns one raw message into a tree of parts with
 * their decoded content, and a list of named findings, for every later
 * layer (AV, URLs, rules, Bayes).
 *
 * RFCs: 5322 (header fields, folding, obsolete syntax), 2045-2049 (MIME
 * structure, Content-Transfer-Encoding, media types, multipart), 2047
 * (encoded words), 2231 (parameter continuations and charsets), 6532
 * (message/global), 2046 section 5.1 (boundaries, preamble, epilogue).
 *
 * Shape: an engine (struct mime_engine) holds the limits and the costly
 * handles (iconv descriptors, libmagic) and belongs to one thread; make
 * one per scanning thread. mime_parse() reads one message in a single
 * forward pass over its lines with an explicit stack of boundaries (no
 * recursion on the C stack, whatever the nesting), then decodes every
 * leaf from a work list (so parts found inside decoded content, archives,
 * TNEF or uuencode blocks are handled the same way, again without
 * recursion).
 *
 * Ownership: the message (struct mime_msg) owns one arena; every pointer
 * and slice reachable from it lives until mime_msg_free(). Slices of the
 * raw message point into the caller's bytes, which must stay valid and
 * unchanged until then. Slices are {ptr, len} and are not NUL-terminated
 * unless stated.
 *
 * Errors: content never makes mime_parse fail. Whatever is malformed or
 * over a limit stops the descent at that place and becomes a finding
 * (e.g. MIME_TOO_DEEP, MIME_BOUNDARY_UNCLOSED, ARCHIVE_BOMB) that later
 * layers score. mime_parse returns -ENOMEM only if the message object
 * itself cannot be created (the caller tempfails the message).
 */
#ifndef MXG_MIME_H
#define MXG_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

struct mime_slice {
	const char *ptr;
	size_t len;
};

/* Every limit has a default, a minimum and a maximum (mime_limits_check). */
struct mime_limits {
	uint32_t max_depth;	    /* nesting of multiparts and messages */
	uint32_t max_parts;	    /* parts in the tree, archive members included */
	uint32_t max_headers;	    /* header fields per part */
	uint32_t max_header_bytes;  /* bytes of one part's header block */
	uint64_t max_decoded;	    /* decoded bytes, whole message */
	uint32_t max_archive_depth; /* archives inside archives */
	uint32_t max_archive_ratio; /* expanded / compressed size */
	uint32_t max_archive_members;
	uint32_t max_urls; /* URLs kept per part */
};

#define MIME_DEF_MAX_DEPTH 40
#define MIME_DEF_MAX_PARTS 1000
#define MIME_DEF_MAX_HEADERS 1000
#define MIME_DEF_MAX_HEADER_BYTES (256 * 1024)
#define MIME_DEF_MAX_DECODED (64ull * 1024 * 1024)
#define MIME_DEF_MAX_ARCHIVE_DEPTH 4
#define MIME_DEF_MAX_ARCHIVE_RATIO 100
#define MIME_DEF_MAX_ARCHIVE_MEMBERS 1000
#define MIME_DEF_MAX_URLS 1000

void mime_limits_default(struct mime_limits *l);
/* -EINVAL if a limit is out of its range. */
int mime_limits_check(const struct mime_limits *l) MXG_WUR;

/* What mime_parse does beyond the structure and the transfer decoding. */
enum mime_opt {
	MIME_OPT_TEXT = 1 << 0,	  /* charsets to UTF-8, uuencode blocks */
	MIME_OPT_URLS = 1 << 1,	  /* HTML to text, links and URLs */
	MIME_OPT_ATTACH = 1 << 2, /* libmagic, archives, TNEF, macros */
	MIME_OPT_ALL = 7,
};

enum mime_cte {
	MIME_CTE_7BIT,
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_QP,
	MIME_CTE_BASE64,
	MIME_CTE_UUENCODE,
	MIME_CTE_UNKNOWN, /* read as 8bit */
};

enum mime_kind {
	MIME_KIND_LEAF,
	MIME_KIND_MULTIPART,
	MIME_KIND_MESSAGE, /* message/rfc822 or message/global: one child */
};

enum mime_origin {
	MIME_FROM_MIME,	   /* a MIME entity of the message */
	MIME_FROM_UU,	   /* a uuencode block in a text part */
	MIME_FROM_ARCHIVE, /* a member of an archive */
	MIME_FROM_TNEF,	   /* an attachment inside winmail.dat */
};

enum mime_part_flag {
	MIME_PF_BROKEN_ENCODING = 1 << 0, /* base64/QP/uu junk or padding */
	MIME_PF_CHARSET_REPLACED = 1 << 1,
	MIME_PF_CHARSET_UNKNOWN = 1 << 2,
	MIME_PF_TRUNCATED = 1 << 3,  /* decoded content cut at a limit */
	MIME_PF_ATTACHMENT = 1 << 4, /* has a file name or disposition attachment */
	MIME_PF_TEXT = 1 << 5,	     /* text is set */
	MIME_PF_HTML = 1 << 6,
	MIME_PF_ARCHIVE = 1 << 7,
	MIME_PF_ENCRYPTED = 1 << 8,
	MIME_PF_MACROS = 1 << 9,
	MIME_PF_NO_BODY = 1 << 10,  /* headers ended the part */
	MIME_PF_UNCLOSED = 1 << 11, /* a multipart whose boundary never closed */
};

struct mime_header {
	struct mime_slice name;	 /* as written */
	struct mime_slice raw;	 /* value as written, folded */
	struct mime_slice value; /* unfolded, RFC 2047 decoded, UTF-8 */
};

enum mime_url_flag {
	MIME_URL_HTML = 1 << 0, /* an href/src in HTML */
	MIME_URL_TEXT = 1 << 1, /* found in plain text */
	MIME_URL_IDN = 1 << 2,	/* host has non-ASCII or punycode labels */
	MIME_URL_BAD_HOST = 1 << 3,
};

struct mime_url {
	struct mime_slice raw;	      /* as found */
	struct mime_slice url;	      /* normalised */
	struct mime_slice host;	      /* lower case, Unicode */
	struct mime_slice host_ascii; /* lower case, punycode */
	struct mime_slice text;	      /* visible text of the link (HTML) */
	unsigned flags;
};

struct mime_part {
	struct mime_part *parent, *first_child, *last_child, *next;
	uint32_t index;		/* creation order, root is 0 */
	uint32_t depth;		/* MIME nesting, root is 0 */
	uint32_t archive_depth; /* archives around this part */
	enum mime_kind kind;
	enum mime_origin origin;
	struct mime_slice path; /* "", "2", "2/1/archive.zip/invoice.exe" */

	struct mime_header *headers;
	size_t nheaders;
	struct mime_slice type;	   /* "text/plain", lower case, defaulted */
	struct mime_slice charset; /* as declared */
	struct mime_slice boundary;
	struct mime_slice disposition; /* lower case */
	struct mime_slice filename;    /* UTF-8, from disposition or name */
	enum mime_cte cte;

	size_t raw_off, body_off;   /* offsets in the content parsed */
	struct mime_slice raw;	    /* the part as written: headers and body */
	struct mime_slice body;	    /* the body as written (encoded) */
	struct mime_slice decoded;  /* after the transfer encoding */
	struct mime_slice text;	    /* UTF-8 text (HTML: rendered), if MIME_PF_TEXT */
	struct mime_slice detected; /* libmagic MIME type of decoded, or empty */
	struct mime_url *urls;
	size_t nurls;
	unsigned flags; /* enum mime_part_flag */
};

struct mime_finding {
	const char *name;	/* static, e.g. "MIME_TOO_DEEP" */
	struct mime_slice path; /* where */
	struct mime_slice detail;
};

struct mime_engine;
struct mime_msg;

/* NULL on out of memory, bad limits, or (with MIME_OPT_ATTACH) libmagic
 * failing to load its database. */
struct mime_engine *mime_engine_new(const struct mime_limits *l, unsigned opts);
void mime_engine_free(struct mime_engine *e);

int mime_parse(struct mime_engine *e, const char *data, size_t len, struct mime_msg **out) MXG_WUR;
void mime_msg_free(struct mime_msg *m);

const struct mime_part *mime_msg_root(const struct mime_msg *m);
/* Parts in creation order (index 0 is the root). */
size_t mime_msg_nparts(const struct mime_msg *m);
const struct mime_part *mime_msg_part(const struct mime_msg *m, size_t i);
size_t mime_msg_nfindings(const struct mime_msg *m);
const struct mime_finding *mime_msg_finding(const struct mime_msg *m, size_t i);
/* True if a finding of that name was made. */
int mime_msg_has_finding(const struct mime_msg *m, const char *name);

/* The first header field called name (any case) of part p, or NULL. */
const struct mime_header *mime_part_header(const struct mime_part *p, const char *name);
/* Tree walk in document order without recursion: the part after p. */
const struct mime_part *mime_part_next(const struct mime_part *p);

const char *mime_cte_name(enum mime_cte cte);

#endif
