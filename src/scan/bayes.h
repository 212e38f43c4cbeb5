/* SPDX-License-Identifier: MIT */
/*
 * bayes: a statistical spam classifier learnt from the operator's mail.
 *
 * Tokens. A message becomes a set of 64-bit tokens (bayes_tokenize):
 *   - words of the decoded text of its text parts (HTML rendered to text
 *     by the MIME engine), at most BAYES_MAX_TEXT bytes per message;
 *   - words of selected header fields, each with its own prefix so "free"
 *     in the Subject is not "free" in the body: Subject "S:", From "F:",
 *     To "T:", Reply-To "R:", the two newest Received "H:" (IPv4 addresses
 *     kept as their /24), X-Mailer / User-Agent "M:", the Message-ID's
 *     domain "MID:", the media types and charsets of the parts "CT:" "CS:",
 *     attachment file name extensions "A:";
 *   - hosts of the URLs "U:" (the host and its last two labels) and the
 *     first segment of their path "UP:".
 * Words: runs of letters and digits (plus '$'); '.', '-', '\'', '_' and '@'
 * between two such characters stay inside the word (e-mail, don't,
 * www.example.com, 1.50). Letters are case-folded (ASCII, Latin-1,
 * Latin Extended-A, Greek, Cyrillic). Each Han, kana or Hangul character
 * is a word of its own (so the pairs below are its bigrams). ASCII words
 * of one character are dropped; every run of digits becomes "N<length>"
 * ("$1,500" -> "$N1,N3", "2002" -> "N4"); a word longer than 24 bytes
 * becomes "L:" + its first 12 bytes (cut at a character boundary), which
 * keeps base64 debris and hashes from flooding the table.
 * Features (orthogonal sparse bigrams, as CRM114 and rspamd): every word
 * alone ("P:w") and, in the body, Subject, From, To and Reply-To, every
 * pair of a word with each of the BAYES_WINDOW - 1 words before it,
 * written "P:a d b" where d is the distance (1..4). A feature is hashed
 * with SipHash-2-4 under a fixed key, so a token is stable across runs,
 * builds and machines (the store depends on it); a message counts each
 * token once; past BAYES_MAX_TOKENS the tokens with the smallest hashes
 * are kept (a fixed, unbiased sample).
 *
 * Classifier: Gary Robinson's f(w) per token and Fisher's chi-square
 * combining, as SpamAssassin, bogofilter and SpamBayes do. Chosen over
 * rspamd's weighted-OSB variant because its behaviour is documented and
 * measured on public corpora, its tails (the BAYES_99 band) are reliable
 * (chi-square says "unsure", ~0.5, when a message has strong evidence both
 * ways instead of picking a side), it needs no per-distance weights to
 * tune, and it is the scale the SpamAssassin scores below assume.
 * Constants are SpamBayes' (s = 0.45, x = 0.5, tokens with
 * |f - 0.5| < 0.1 ignored, the BAYES_SIGNIFICANT = 150 strongest used).
 * SpamAssassin's (s = 0.030, x = 0.538, 0.346) were measured too: with
 * OSB pairs, which are sparse, so small an s trusts a pair seen in 2-7
 * messages of one class fully, and on the SpamAssassin corpus split
 * (../shared/corpus/sa) spam at p >= 0.9 fell from 91% to 83%.
 * No verdict (no symbol) before min_spam spam and min_ham ham messages are
 * learnt, or when no learnt token is in the message.
 *
 * Symbols, with SpamAssassin's default scores for Bayes with network
 * tests (50_scores.cf, score set 3):
 *   BAYES_00 [0,.01) -1.9   BAYES_05 [.01,.05) -0.5  BAYES_20 [.05,.2) -0.001
 *   BAYES_40 [.2,.4) -0.001 BAYES_50 [.4,.6) 0.8     BAYES_60 [.6,.8) 1.5
 *   BAYES_80 [.8,.95) 2.0   BAYES_95 [.95,.99) 3.0   BAYES_99 [.99,1] 3.5
 *   BAYES_999 [.999,1] +0.2 (in addition to BAYES_99)
 * with the detail "p=0.9987 tokens=150".
 *
 * Counts and staleness. A struct bayes belongs to one thread. It reads
 * the counts from one of two places:
 *   - the process's shared token table (bayes_table.h, bayes_use_table();
 *     the pipeline check makes one per pipeline, i.e. per SMTP worker,
 *     shared by its scanning threads): an immutable snapshot of one
 *     generation of the store, loaded in the background when the
 *     pipeline starts (~150 ms for 1.2M tokens; a reader waits for that
 *     first load, at most 2 s) and refreshed by a thread of its own. How
 *     old a snapshot may be: every cache_ttl (at least 0.1 s) that thread
 *     reads the store's generation, and if it moved (a learn, unlearn or
 *     expiry anywhere, autolearn included) it builds the next snapshot
 *     (the tokens changed since: tens of ms; a full reload after an
 *     expiry) while readers keep the current one. So the counts a message
 *     is judged by lag the store by at most cache_ttl plus one refresh,
 *     and a message always sees one consistent generation. The table
 *     takes 16 bytes a slot, at most 2/3 full (32 MiB for 1.2M tokens),
 *     and is used while twice that (old and new snapshot) fits in
 *     bayes.memory; above it, or before the first load, the store;
 *   - the store, through a connection the caller gives it, with a cache
 *     of up to cache_tokens token counts; a cached count (and the learnt
 *     totals) may lag the store by at most cache_ttl seconds: every
 *     cache_ttl the totals row is read again, and if its generation moved
 *     the whole cache is dropped. A full cache is dropped whole too.
 *     cache_ttl = 0 reads the totals for every message.
 * Both give the same counts for the same generation, so the same verdict.
 *
 * Learning runs where a store connection may write (the CLI, the SMTP
 * worker's store thread): tokenize where the message is parsed (a scanning
 * thread), keep the struct bayes_tokens (it holds the message's digest
 * too), learn later with bayes_learn_tokens() without the MIME tree.
 *
 * Errors: functions return 0, -ENOMEM, -EINVAL (bad argument) or -EAGAIN
 * (the store could not answer; store_last_error() says why).
 */
#ifndef MXG_SCAN_BAYES_H
#define MXG_SCAN_BAYES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/util.h"
#include "mime/mime.h"
#include "scan/bayes_table.h"
#include "scan/pipeline.h"
#include "store/store.h"
#include "store/store_bayes.h"

#define BAYES_WINDOW 5
#define BAYES_MAX_TEXT (256 * 1024) /* body text bytes read per message */
#define BAYES_MAX_TOKENS 20000	    /* unique tokens kept per message */
#define BAYES_SIGNIFICANT 150
#define BAYES_WORD_MAX 24     /* longer words are shortened */
#define BAYES_FEATURE_LEN 256 /* a feature string, terminated */

/* Robinson's f(w) and the cut-off, SpamBayes' values (see above). */
#define BAYES_FW_S 0.45
#define BAYES_FW_X 0.5
#define BAYES_MIN_STRENGTH 0.1

/* Expiry done by learning: tokens learnt once and not for this long go. */
#define BAYES_EXPIRE_AGE (30 * 86400)

struct bayes;
struct bayes_tokens;

struct bayes_params {
	int64_t min_spam, min_ham;
	int64_t cache_tokens; /* 0: no cache */
	int64_t cache_ttl;    /* seconds */
	int64_t max_tokens;   /* expiry bound */
};

void bayes_params_from_config(const struct config *cfg, struct bayes_params *p);

/* ---- tokens -------------------------------------------------------------- */

/* The tokens of m (sorted, unique) and its digest (SHA-256 of its
 * Message-ID and body, for the store's "seen" table). */
int bayes_tokenize(const struct mime_msg *m, struct bayes_tokens **out) MXG_WUR;
void bayes_tokens_free(struct bayes_tokens *t);
size_t bayes_tokens_count(const struct bayes_tokens *t);
const uint64_t *bayes_tokens_values(const struct bayes_tokens *t);
const char *bayes_tokens_digest(const struct bayes_tokens *t);

/* The features as text, before hashing and de-duplication, in the order
 * they are made (tests, debugging). feature is NUL-terminated and lives
 * until cb returns. */
typedef void (*bayes_feature_cb)(const char *feature, size_t len, void *arg);
void bayes_features_msg(const struct mime_msg *m, bayes_feature_cb cb, void *arg);
/* One stream of text under prefix ("" for the body, "S:" ...), with the
 * pairs when osb is set. */
void bayes_features_text(const char *prefix, const char *text, size_t len, bool osb,
			 bayes_feature_cb cb, void *arg);
/* The token of a feature (never 0). */
uint64_t bayes_feature_hash(const char *feature, size_t len);
/* SipHash-2-4 of data under key (the token hash, with a fixed key). */
uint64_t bayes_siphash(const uint8_t key[16], const void *data, size_t len);

/* ---- the math (exposed for tests) ------------------------------------- */

/* Robinson's f(w) of a token seen in spam / ham of nspam / nham learnt:
 * (s x + n p) / (s + n), n = spam + ham, p = (spam/nspam) / (spam/nspam +
 * ham/nham). */
double bayes_token_prob(uint32_t spam, uint32_t ham, int64_t nspam, int64_t nham);
/* P(chi-square with v degrees of freedom >= x2), v even. */
double bayes_chi2q(double x2, unsigned v);
/* Fisher / Robinson chi-square combining of f[0..n): 0 ham .. 1 spam;
 * 0.5 for n == 0. */
double bayes_combine(const double *f, size_t n);
/* The band of p: its symbol name and score (BAYES_999's extra excluded). */
const char *bayes_symbol(double p, double *score);

/* ---- classification (one thread) -------------------------------------- */

struct bayes_result {
	bool verdict;	     /* false: no symbol (not enough learnt, no known token) */
	double prob;	     /* 0 ham .. 1 spam; -1 without verdict */
	size_t ntokens;	     /* tokens that decided (<= BAYES_SIGNIFICANT) */
	size_t nknown;	     /* tokens of the message the store knows */
	int64_t nspam, nham; /* learnt messages */
	const char *symbol;  /* "BAYES_95" ...; NULL without verdict */
	double score;	     /* symbol's score, + BAYES_999's when p >= 0.999 */
};

/* st is not owned and must outlive b; it is only read. NULL: -ENOMEM. */
struct bayes *bayes_new(struct store *st, const struct bayes_params *p);
void bayes_free(struct bayes *b);
/* Drops the cache (after this thread learnt something itself) and asks
 * the shared table, if any, for a refresh. */
void bayes_invalidate(struct bayes *b);
/* Reads counts from t (shared, not owned, must outlive b; NULL: none)
 * whenever it has a snapshot, from the store otherwise. */
void bayes_use_table(struct bayes *b, struct bayes_table *t);
int bayes_classify_tokens(struct bayes *b, const struct bayes_tokens *t,
			  struct bayes_result *out) MXG_WUR;
int bayes_classify(struct bayes *b, const struct mime_msg *m, struct bayes_result *out) MXG_WUR;

/* ---- learning (a connection that may write) --------------------------- */

/* Learns t[0..n) as cls (STORE_BAYES_SPAM, _HAM, or _FORGET to unlearn)
 * in one transaction; outcomes (may be NULL) gets one entry per message.
 * Then expires tokens if the table grew past p->max_tokens (p may be NULL:
 * no expiry). */
int bayes_learn_tokens(struct store *st, const struct bayes_tokens *const *t, size_t n,
		       enum store_bayes_class cls, const struct bayes_params *p,
		       enum store_bayes_outcome *outcomes) MXG_WUR;
/* One message, for the store thread after a verdict: learn spam or ham. */
int bayes_learn_store(struct store *st, const struct bayes_tokens *t, bool spam,
		      const struct bayes_params *p, enum store_bayes_outcome *outcome) MXG_WUR;
/* In-process helpers: tokenize m and learn / forget it; b (may be NULL)
 * drops its cache so it sees the change at once. */
int bayes_learn(struct bayes *b, struct store *st, const struct mime_msg *m, bool spam,
		enum store_bayes_outcome *outcome) MXG_WUR;
int bayes_unlearn(struct bayes *b, struct store *st, const struct mime_msg *m,
		  enum store_bayes_outcome *outcome) MXG_WUR;
/* Expires if the table holds more than max_tokens (see store_bayes.h). */
int bayes_expire(struct store *st, int64_t max_tokens, int64_t *removed) MXG_WUR;

/* ---- autolearn ---------------------------------------------------------- */

enum bayes_autolearn {
	BAYES_AUTOLEARN_NONE = 0,
	BAYES_AUTOLEARN_SPAM = 1,
	BAYES_AUTOLEARN_HAM = 2,
};

/* From the message's final score and its Bayes probability (< 0: no
 * verdict). The score of the BAYES_* symbols p implies is taken out first
 * (Bayes must not teach itself), then: learn spam at or above
 * bayes.autolearn_spam (default 12, SpamAssassin's), ham at or below
 * bayes.autolearn_ham (default 0.1, SpamAssassin's); except when Bayes
 * already agrees strongly (p >= 0.99 for spam, p <= 0.01 for ham), which
 * would add counts without adding knowledge. NONE when bayes.enabled or
 * bayes.autolearn is off. */
enum bayes_autolearn bayes_autolearn_decision(double score, double bayes_prob,
					      const struct config *cfg);

/* ---- the pipeline check ------------------------------------------------- */

/* shared_new makes the pipeline's token table (none when bayes.memory is
 * 0) with a store connection of its own; thread_init_shared (thread_init:
 * the same without a table) opens the thread's own store connection
 * (store.url) for reading and a struct bayes over both; run adds BAYES_*
 * (or BAYES_UNAVAILABLE, score 0, when the store cannot answer). */
extern const struct scan_check bayes_check;

#endif
