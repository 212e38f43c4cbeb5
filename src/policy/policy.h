/* SPDX-License-Identifier: MIT */
/*
 * policy: what a recipient's settings make of a verdict.
 *
 * Each recipient has a policy resolved from the store's items, inherited
 * global > account > domain > mailbox: the built-in default of every key
 * (the table in policy.c, with its bounds) is overridden by each scope in
 * turn. Values are validated twice: by policy_check() before they are
 * stored (CLI, API), and again when applied, where a bad stored value is
 * ignored (and reported through policy_load's why) so one bad row never
 * disables filtering.
 *
 * List entries (allow/block) are matched while resolving, against the
 * envelope sender and the client address: the most specific scope with a
 * match decides, and within one scope block wins over allow.
 *
 * The decision (policy_decide) is per recipient: viruses by virus_action,
 * file kinds (executables, macros, encrypted archives) by file_*, whose
 * default follows the node's av.block_* (the kind's symbol always carries its
 * points, so a recipient that scores what the node blocks just counts
 * them), a DMARC
 * p=quarantine failure by dmarc_quarantine, then the SpamScore against
 * the thresholds (reject > quarantine > tag). An allow-listed
 * sender skips the spam thresholds, not the virus check, and only when the
 * message does not fail DMARC and, for an entry naming a sender (not a
 * client network), the envelope sender is authenticated (an allow list
 * must not be a forgery's pass). The caller applies the results; nothing here does I/O except
 * policy_load().
 */
#ifndef MXG_POLICY_H
#define MXG_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"
#include "store/store_policy.h"

enum policy_action {
	POLICY_DELIVER = 0,
	POLICY_TAG = 1,
	POLICY_QUARANTINE = 2,
	POLICY_REJECT = 3,
};

enum policy_listed {
	POLICY_LISTED_NONE = 0,
	POLICY_LISTED_ALLOW = 1,
	POLICY_LISTED_BLOCK = 2,
};

enum policy_key {
	POLICY_TAG_SCORE,
	POLICY_QUARANTINE_SCORE,
	POLICY_REJECT_SCORE,
	POLICY_SUBJECT_TAG,
	POLICY_QUARANTINE_DAYS,
	POLICY_VIRUS_ACTION,
	POLICY_DMARC_QUARANTINE,
	POLICY_SPAM_HEADERS,
	POLICY_FILE_EXECUTABLES,
	POLICY_FILE_MACROS,
	POLICY_FILE_ENCRYPTED,
	POLICY_NKEYS
};

/* What a file kind found in a message gets (file_* keys). */
enum policy_fileact {
	POLICY_FILE_NODE = 0, /* the node's av.block_* setting: reject or score */
	POLICY_FILE_REJECT,
	POLICY_FILE_QUARANTINE,
	POLICY_FILE_SCORE,
};

enum policy_filekind {
	POLICY_KIND_EXECUTABLE, /* FILETYPE_EXECUTABLE, FILETYPE_DOUBLE_EXT */
	POLICY_KIND_MACROS,
	POLICY_KIND_ENCRYPTED,
	POLICY_NKINDS
};

/* Why a recipient got its action (the reply of a refusal follows it). */
enum policy_reason {
	POLICY_REASON_SCORE = 0,
	POLICY_REASON_VIRUS,
	POLICY_REASON_FILETYPE,
	POLICY_REASON_BLOCK,
	POLICY_REASON_ALLOW,
	POLICY_REASON_DMARC,
};

#define POLICY_TAG_LEN 64
#define POLICY_WHY_LEN 256
/* The shortest retention the quarantine allows, whatever is configured. */
#define POLICY_MIN_QUARANTINE_DAYS 14

struct policy {
	double tag_score; /* INFINITY: off */
	double quarantine_score;
	double reject_score;
	char subject_tag[POLICY_TAG_LEN];
	int quarantine_days;
	enum policy_action virus_action;     /* REJECT or QUARANTINE */
	enum policy_action dmarc_quarantine; /* DELIVER, TAG or QUARANTINE */
	bool spam_headers;		     /* X-Spam-Score / X-Spam-Status */
	enum policy_fileact file[POLICY_NKINDS];
	enum store_scope source[POLICY_NKEYS]; /* where each value came from */
	bool from_default[POLICY_NKEYS];
	enum policy_listed listed;
	enum store_scope listed_scope;
	bool listed_by_client;		 /* the match was the client's address */
	char listed_why[POLICY_WHY_LEN]; /* "block @spam.example (domain)" */
};

/* Who the lists are matched against. */
struct policy_subject {
	const char *sender; /* envelope sender, "" for <> */
	const char *client; /* client address as text, or NULL */
};

/* What the checks found, for the decision. */
struct policy_verdict {
	double score;
	bool virus;	       /* an antivirus engine found something */
	bool dmarc_fail;       /* DMARC result fail */
	bool dmarc_quarantine; /* ... and the domain asks for quarantine */
	/* the envelope sender is proven (SPF pass, or DMARC pass for its
	 * domain): an allow entry naming a sender counts only then */
	bool sender_authenticated;
	bool found[POLICY_NKINDS];	/* file kinds in the message */
	bool node_block[POLICY_NKINDS]; /* the node's av.block_* */
};

void policy_defaults(struct policy *p);
/* 0, or -EINVAL with a reason: an unknown key or a value out of bounds. */
int policy_check(const char *key, const char *value, char *why, size_t whylen);
/* A list pattern: an address, @domain, domain, IP or CIDR. */
int policy_pattern_check(const char *pattern, char *why, size_t whylen);
/* Applies one stored item (call broadest first); list entries are matched
 * against subj. A bad stored value is skipped; returns -EINVAL then. */
int policy_apply(struct policy *p, const struct store_policy_item *it,
		 const struct policy_subject *subj);
/* Resolves a recipient's policy from the store (runs on a store thread).
 * Returns a store code; bad stored values are skipped (see above). */
int policy_load(struct store *st, int64_t mailbox_id, int64_t domain_id,
		const struct policy_subject *subj, struct policy *out) MXG_WUR;

/* The action for one recipient; *why names the reason ("score 7.2 >=
 * quarantine 6.0", "virus", "allow-listed: ..."). */
enum policy_action policy_decide(const struct policy *p, const struct policy_verdict *v,
				 enum policy_reason *reason, char *why, size_t whylen);
const char *policy_action_name(enum policy_action a);
const char *policy_key_name(enum policy_key k);
/* The value of key k in p as text ("off" for a disabled threshold). */
void policy_value_text(const struct policy *p, enum policy_key k, char *buf, size_t len);
/* Retention end for a message received at now. */
int64_t policy_quarantine_until(const struct policy *p, int64_t now);

#endif
