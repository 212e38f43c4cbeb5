/* SPDX-License-Identifier: MIT */
/*
 * sarules_private: the structures that sarules.c (parser, compiler),
 * sarules_scan.c (matching, meta) and sarules_eval.c (eval: tests) share.
 * Not for other modules.
 */
#ifndef MXG_SCAN_SARULES_PRIVATE_H
#define MXG_SCAN_SARULES_PRIVATE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include "scan/sarules.h"

/* What a rule looks at. */
enum sar_kind {
	SAR_HEADER,
	SAR_MIMEHEADER,
	SAR_BODY,
	SAR_RAWBODY,
	SAR_URI,
	SAR_FULL,
	SAR_META,
	SAR_NKINDS,
};

enum sar_test {
	SAR_T_NONE, /* only score/describe/tflags seen so far */
	SAR_T_REGEX,
	SAR_T_EXISTS, /* header exists:Name */
	SAR_T_EVAL,
	SAR_T_META,
};

enum sar_tflag {
	SAR_TF_NET = 1 << 0,
	SAR_TF_LEARN = 1 << 1,
	SAR_TF_USERCONF = 1 << 2,
	SAR_TF_NICE = 1 << 3,
	SAR_TF_MULTIPLE = 1 << 4,
};

/* How a regex runs. */
enum sar_hsmode {
	SAR_HS_EXACT,	  /* Vectorscan says exactly */
	SAR_HS_PREFILTER, /* Vectorscan finds candidates, PCRE2 confirms */
	SAR_HS_PCRE_ONLY, /* PCRE2 alone */
};

/* Header modifiers. */
enum sar_hmod {
	SAR_HM_DECODED,
	SAR_HM_RAW,
	SAR_HM_ADDR,
	SAR_HM_NAME,
};

#define SAR_MAX_EVAL_ARGS 6
#define SCAN_NAME_LEN_SAR 128 /* longest rule name */

/* A meta expression in postfix form. */
enum sar_op {
	SAR_OP_NUM,  /* push num */
	SAR_OP_RULE, /* push the value of rule arg */
	SAR_OP_NOT,
	SAR_OP_NEG,
	SAR_OP_AND, /* short-circuit: jump to arg when false */
	SAR_OP_OR,  /* short-circuit: jump to arg when true */
	SAR_OP_ADD,
	SAR_OP_SUB,
	SAR_OP_MUL,
	SAR_OP_DIV,
	SAR_OP_GT,
	SAR_OP_GE,
	SAR_OP_LT,
	SAR_OP_LE,
	SAR_OP_EQ,
	SAR_OP_NE,
};

struct sar_ins {
	enum sar_op op;
	int32_t arg;
	double num;
};

struct sar_rule {
	char *name;
	char *describe;
	double score;
	bool has_score;
	enum sar_kind kind;
	enum sar_test test;
	unsigned tflags;
	int maxhits;
	char *file; /* where it was defined (interned by the loader) */
	unsigned line;
	const char *skip; /* reason (owned by the db's reason table), NULL: runs */
	char *detail;	  /* what exactly was wrong (regex errors), or NULL */

	/* regex */
	char *src;	 /* the regex as PCRE2 reads it, after translation */
	uint32_t pflags; /* PCRE2 options */
	unsigned hflags; /* HS flags */
	enum sar_hsmode hsmode;
	pcre2_code *re;
	bool negate;	/* !~ */
	int32_t target; /* header target index */
	char *if_unset;
	bool has_unset;
	bool replace; /* listed in replace_rules */

	/* eval */
	int eval; /* index in the eval table */
	char *args[SAR_MAX_EVAL_ARGS];
	int nargs;

	/* meta */
	char *meta_src;
	struct sar_ins *code;
	size_t ncode;
};

/* A header target: the text a group of header rules matches. */
struct sar_target {
	char *name; /* "Subject", "ALL", "ToCc", "MESSAGEID", "EnvelopeFrom" */
	enum sar_hmod mod;
	bool mime; /* mimeheader: each MIME part's field */
};

/* One Vectorscan database and the rules it serves. */
#define SAR_MAX_CHUNKS 64

struct sar_set {
	hs_database_t *hs[SAR_MAX_CHUNKS]; /* pattern ids are global in the set */
	size_t nhs;
	int32_t *rules; /* pattern id -> rule index */
	size_t n;
	int32_t *pcre_only; /* rules run by PCRE2 alone */
	size_t npcre;
};

struct sar_count {
	const char *what;
	size_t n;
};

struct sarules_db {
	/* where compiled Vectorscan databases are kept between runs ("": no
	 * cache); see cached_compile() in sarules.c */
	char cache_dir[4096];
	size_t cache_hits, cache_misses;
	struct sar_rule *rules;
	size_t nrules, caprules;
	int32_t *hash; /* open addressing: rule index + 1, 0 empty */
	size_t hashcap;

	struct sar_target *targets;
	size_t ntargets, captargets;

	/* sets: [SAR_BODY], [SAR_RAWBODY], [SAR_URI], [SAR_FULL]; headers
	 * one per target */
	struct sar_set kinds[SAR_NKINDS];
	struct sar_set *hsets; /* per target */

	int32_t *report; /* rules that may be reported, in definition order */
	size_t nreport;
	int32_t *evals; /* eval rules that run */
	size_t nevals;
	int32_t *skips; /* skipped rules, in definition order */

	/* reasons: interned strings with counts */
	struct sar_count *reasons;
	size_t nreasons, capreasons;
	struct sar_count *ignored;
	size_t nignored, capignored;
	size_t nignored_lines;
	char **files;
	size_t nfiles, capfiles;

	/* ReplaceTags */
	struct sar_tag *tags;
	size_t ntags, captags;
	char *rstart, *rend;

	/* freemail_domains */
	char **freemail;
	size_t nfreemail, capfreemail;

	size_t nloaded, nskipped;
	size_t nexact, nprefilter, npcre;
	size_t max_unit; /* scratch sizing hint */
	int64_t load_us;
};

struct sar_tag {
	char *name;
	char *value;
	int kind; /* 0 tag, 1 pre, 2 inter, 3 post */
};

/* The per-thread scanner. */
struct sar_buf {
	char *p;
	size_t len, cap;
};

/* A text scanned in line mode: lines joined with '\n', their starts. */
struct sar_text {
	struct sar_buf b;
	size_t *lines;
	size_t nlines, cap;
	bool built;
};

struct sarules_scanner {
	const struct sarules_db *db;
	hs_scratch_t *scratch;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	int32_t *val;  /* per rule: hits; -1 not computed yet; -2 computing */
	int32_t *seen; /* per rule: last line confirmed + 1 (0: none) */
	double *stack; /* meta evaluation */
	size_t stackcap, sp;
	struct sar_text body, rawbody, uris;
	struct sar_buf hdr, tmp;
	/* the message being scanned */
	const struct mime_msg *msg;
	const char *raw;
	size_t rawlen;
	const char *envfrom;
};

/* ---- sarules_eval.c ---------------------------------------------------------- */

/* The eval function called name, or -1 if not implemented. */
int sar_eval_find(const char *name, enum sar_kind kind);
/* Checks the arguments of an implemented eval at load time: NULL if
 * fine, else a reason. */
const char *sar_eval_check(const struct sar_rule *r);
/* Runs eval rule r on the current message: its hit count (0 or 1). */
int sar_eval_run(struct sarules_scanner *s, const struct sar_rule *r);

/* ---- sarules_scan.c ---------------------------------------------------------- */

/* The value of a header target of the message's top-level header into
 * out (found: false when there is no such field; the value is then ""). */
int sar_header_text(struct sarules_scanner *s, const char *name, enum sar_hmod mod,
		    struct sar_buf *out, bool *found) MXG_WUR;
/* The body text (Subject first, one paragraph per line), built once per
 * message. */
int sar_body_text(struct sarules_scanner *s, const struct sar_text **out) MXG_WUR;
int sar_buf_add(struct sar_buf *b, const char *p, size_t n) MXG_WUR;
/* Counts PCRE2 matches of r in s[0..len), at most max. */
int sar_pcre_count(struct sarules_scanner *sc, const struct sar_rule *r, const char *s, size_t len,
		   int max);

#endif
