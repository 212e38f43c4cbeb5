/* SPDX-License-Identifier: MIT */
/*
 * relationship: sender relationships learnt from behaviour (issue 7).
 *
 * Pairs (local mailbox, outside address) are counted in the store
 * (store/store_rel.h) from outbound mail (rel_learn_outbound) and from
 * released quarantine (rel_learn_release). For an inbound message the
 * sender's identity (the From header address, else the envelope sender)
 * is compared with what each recipient's organisation knows, and the
 * message gets at most two symbols:
 *
 *   REL_ESTABLISHED        -2.0  a recipient wrote to the identity at least
 *                                relationships.established times (default 2)
 *                                or released a message of it before
 *   REL_KNOWN_CONTACT      -1.0  a recipient wrote to the identity once
 *   REL_KNOWN_DOMAIN       -0.5  someone at a recipient's domain corresponds
 *                                with the identity's registrable domain (not
 *                                for freemail domains: one gmail.com contact
 *                                says nothing of every other gmail.com user)
 *   REL_KNOWN_UNAUTH        0.0  one of the three above, but the caller could
 *                                not authenticate the From domain (DMARC or an
 *                                aligned SPF/DKIM pass): a forged From must
 *                                not earn a bonus, so nothing is subtracted
 *   REL_FIRST_CONTACT       0.0  no relationship at all (informational)
 *   REL_LOOKALIKE_CORRESPONDENT
 *                          +4.0  with REL_FIRST_CONTACT: the identity's domain
 *                                looks like a domain the recipient's
 *                                organisation corresponds with (or its own)
 *   REL_UNAVAILABLE         0.0  the store could not answer (no bonus, no
 *                                malus; the message is not held up)
 *
 * Look-alike (rel_lookalike), on registrable domains (PSL) compared label
 * by label after the public suffix is split off, in their Unicode form:
 *   - same confusable skeleton (urlcheck_skeleton: Cyrillic/Greek
 *     homoglyphs, 0/o, 1/l, rn/m, vv/w, accents): examp1e.com, exаmple.com;
 *   - the same once hyphens are removed: example-corp.com, examplecorp.com;
 *   - one edit apart (insert, delete, substitute, swap two neighbours) on
 *     the skeletons, when the correspondent's label has at least 5
 *     letters: exmaple.com, exampe.com, examplle.com;
 *   - the same label under the typo TLDs of .com: .co, .cm, .om.
 * Not look-alikes, by decision: the same name under another TLD
 * (example.com vs example.org or example.de): organisations hold their
 * name under many TLDs, and a first contact from a sister company must not
 * cost 4 points; a domain of a well-known freemail provider (mail.com is
 * one edit from gmail.com but is a real provider); short labels (< 5)
 * one edit apart (ibm/ibn would fire on too many real names).
 *
 * Threads: rel_query_new/symbols/free run on the event loop;
 * rel_query_run on the store thread (int fn(struct store *, void *), the
 * form of store_async's generic job). Nothing is shared between them but
 * the query, which the loop must not touch while the job runs. The PSL
 * context is read-only and may be shared by threads. rel_decide is pure
 * (facts in, symbols out) for the tests.
 *
 * The learning functions run wherever a struct store is owned (the store
 * thread, the CLI). The caller must not count automatic replies
 * (Auto-Submitted other than "no", the null sender, vacation responses):
 * an out-of-office answer to a spammer would make it a correspondent.
 */
#ifndef MXG_SCAN_RELATIONSHIP_H
#define MXG_SCAN_RELATIONSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/util.h"
#include "scan/pipeline.h"
#include "store/store_rel.h"

struct psl_ctx_st; /* libpsl's psl_ctx_t */

#define REL_MAX_RCPTS 50  /* recipients looked at per message */
#define REL_MAX_SYMBOLS 2 /* rel_decide emits at most this many */

/* What the store says about one recipient. */
struct rel_rcpt_facts {
	char rcpt[STORE_ADDR_LEN]; /* canonical (store_rel_addr_norm) */
	bool internal;		   /* the identity is at the recipient's own domain */
	int64_t outbound;	   /* the pair (rcpt, identity) */
	int64_t inbound;
	struct store_rel_counts domain; /* rcpt's domain with the identity's registrable domain */
	char **domains;			/* correspondents' domains (canonical), own first */
	size_t ndomains;
};

/* The facts of one message: filled by rel_query_run, or by hand (tests). */
struct rel_facts {
	char identity[STORE_ADDR_LEN]; /* canonical; "" when there is none */
	int64_t established;	       /* relationships.established */
	struct rel_rcpt_facts rcpt[REL_MAX_RCPTS];
	size_t nrcpts;
};

/* ---- the decision (pure) -------------------------------------------------- */

/* Symbols for the facts into out (at most max, REL_MAX_SYMBOLS suffice);
 * authenticated: the From domain passed DMARC (or an aligned SPF/DKIM).
 * psl may be NULL (registrable domain = the last two labels). Returns the
 * number written. */
size_t rel_decide(const struct rel_facts *f, const struct psl_ctx_st *psl, bool authenticated,
		  struct scan_symbol *out, size_t max);

/* True if the (canonical or Unicode) domain looks like correspondent
 * without being the same registrable domain; why gets the reason
 * ("confusable", "hyphen", "one edit", "tld typo"); may be NULL. */
bool rel_lookalike(const struct psl_ctx_st *psl, const char *domain, const char *correspondent,
		   char *why, size_t whylen);
/* Optimal string alignment distance (Damerau-Levenshtein where a swapped
 * pair costs 1 and is not edited again) of two byte strings, or max + 1
 * when it is larger than max (or a string is longer than 255 bytes). */
int rel_edit_distance(const char *a, size_t alen, const char *b, size_t blen, int max);
/* True for the registrable domains of large freemail providers. */
bool rel_freemail(const char *domain);

/* ---- the look-up of one message ------------------------------------------- */

struct rel_query;

/* Copies the inputs: sender (envelope, "" for <>), from (the From header
 * address, NULL or "" when none or unparseable), the envelope recipients
 * (the first REL_MAX_RCPTS distinct ones are looked at); cfg gives the
 * knobs (relationships.*), psl the registrable domains (may be NULL). cfg
 * and psl must outlive the query. Returns 0, -ENOMEM, or -ENOENT when there
 * is nothing to look up (no usable identity, relationships disabled, no
 * recipient): then *out is NULL and the message simply gets no symbol. */
int rel_query_new(const struct config *cfg, const struct psl_ctx_st *psl, const char *sender,
		  const char *from, const char *const *rcpts, size_t nrcpts,
		  struct rel_query **out) MXG_WUR;
/* Store thread: the look-ups (a few indexed queries per recipient) and
 * the costly part of the decision (the identity's domain against up to
 * max_domains correspondents' domains, about 10 us each), so that the
 * loop's part stays cheap. Returns STORE_OK or the store's code; the code
 * is also kept in the query (REL_UNAVAILABLE). arg is the struct
 * rel_query. */
int rel_query_run(struct store *st, void *arg);
/* Loop thread, after rel_query_run: the symbols into out (at most max;
 * REL_MAX_SYMBOLS suffice). Cheap: no look-up, no comparison. */
size_t rel_query_symbols(const struct rel_query *q, bool authenticated, struct scan_symbol *out,
			 size_t max);
const struct rel_facts *rel_query_facts(const struct rel_query *q);
void rel_query_free(struct rel_query *q);

/* ---- learning (any thread that owns st) ----------------------------------- */

/* Counts one outbound message from local_mailbox to each of the remote
 * addresses. Addresses at local's own domain and invalid addresses are
 * skipped (not an error); *nskipped may be NULL. STORE_INVALID when
 * local_mailbox is not an address. */
int rel_learn_outbound(struct store *st, const char *local_mailbox, const char *const *remote_addrs,
		       size_t n, size_t *nskipped) MXG_WUR;
/* The recipient local released a quarantined message from remote. */
int rel_learn_release(struct store *st, const char *local, const char *remote) MXG_WUR;
/* Removes the pairs not seen for cfg's relationships.expire before now. */
int rel_expire(struct store *st, const struct config *cfg, int64_t now, size_t *n) MXG_WUR;

#endif
