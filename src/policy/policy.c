/* SPDX-License-Identifier: MIT */
/*
 * policy: settings table, inheritance, list matching and the decision.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/cidr.h"

enum ktype { K_SCORE, K_TEXT, K_DAYS, K_ACTION, K_BOOL, K_FILE };

/* Every setting: its name, type, default and bounds. Scores may also be
 * "off". Actions name the ones they allow. */
static const struct key_def {
	const char *name;
	enum ktype type;
	const char *def;
	double min, max;
	unsigned actions; /* K_ACTION: bit per enum policy_action allowed */
	const char *help;
} keys[POLICY_NKEYS] = {
    [POLICY_TAG_SCORE] = {"tag_score", K_SCORE, "4.0", -100, 1000, 0,
			  "SpamScore from which the subject is tagged (delivered)"},
    [POLICY_QUARANTINE_SCORE] = {"quarantine_score", K_SCORE, "6.0", -100, 1000, 0,
				 "SpamScore from which the message is quarantined"},
    [POLICY_REJECT_SCORE] = {"reject_score", K_SCORE, "15.0", -100, 1000, 0,
			     "SpamScore from which the message is refused at DATA"},
    [POLICY_SUBJECT_TAG] = {"subject_tag", K_TEXT, "[SPAM]", 0, POLICY_TAG_LEN - 1, 0,
			    "prefix put before the subject of tagged mail"},
    [POLICY_QUARANTINE_DAYS] = {"quarantine_days", K_DAYS, "30", POLICY_MIN_QUARANTINE_DAYS, 3650,
				0, "how long quarantined mail is kept"},
    [POLICY_VIRUS_ACTION] = {"virus_action", K_ACTION, "reject", 0, 0,
			     1u << POLICY_REJECT | 1u << POLICY_QUARANTINE,
			     "reject or quarantine mail with a virus or a refused file type"},
    [POLICY_DMARC_QUARANTINE] = {"dmarc_quarantine", K_ACTION, "quarantine", 0, 0,
				 1u << POLICY_DELIVER | 1u << POLICY_TAG | 1u << POLICY_QUARANTINE,
				 "what a DMARC failure of a p=quarantine domain gets"},
    [POLICY_SPAM_HEADERS] = {"spam_headers", K_BOOL, "on", 0, 0, 0,
			     "add X-Spam-Score and X-Spam-Status to delivered mail"},
    [POLICY_FILE_EXECUTABLES] = {"file_executables", K_FILE, "node", 0, 0, 0,
				 "programs, also in archives and behind double extensions"},
    [POLICY_FILE_MACROS] = {"file_macros", K_FILE, "node", 0, 0, 0, "Office documents with macros"},
    [POLICY_FILE_ENCRYPTED] = {"file_encrypted", K_FILE, "node", 0, 0, 0, "encrypted archives"},
};

static const char *const fileact_names[] = {
    [POLICY_FILE_NODE] = "node",
    [POLICY_FILE_REJECT] = "reject",
    [POLICY_FILE_QUARANTINE] = "quarantine",
    [POLICY_FILE_SCORE] = "score",
};

static const char *const action_names[] = {
    [POLICY_DELIVER] = "deliver",
    [POLICY_TAG] = "tag",
    [POLICY_QUARANTINE] = "quarantine",
    [POLICY_REJECT] = "reject",
};

const char *policy_action_name(enum policy_action a)
{
	return (unsigned)a < ARRAY_LEN(action_names) ? action_names[a] : "?";
}

const char *policy_key_name(enum policy_key k)
{
	return (unsigned)k < POLICY_NKEYS ? keys[k].name : "?";
}

static int find_key(const char *name)
{
	for (int i = 0; i < POLICY_NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return i;
	return -1;
}

/* Parses value for key k into p (NULL: only checks). */
static int set_value(struct policy *p, int k, const char *value, char *why, size_t whylen)
{
	const struct key_def *d = &keys[k];
	char *end;
	double v;
	long days;

	switch (d->type) {
	case K_SCORE:
		if (!strcasecmp(value, "off")) {
			v = INFINITY;
		} else {
			errno = 0;
			v = strtod(value, &end);
			if (errno || end == value || *end || !isfinite(v) || v < d->min ||
			    v > d->max) {
				snprintf(why, whylen, "%s: a score from %g to %g, or off", d->name,
					 d->min, d->max);
				return -EINVAL;
			}
		}
		if (p)
			*(k == POLICY_TAG_SCORE		 ? &p->tag_score
			  : k == POLICY_QUARANTINE_SCORE ? &p->quarantine_score
							 : &p->reject_score) = v;
		return 0;
	case K_TEXT:
		/* printable ASCII: it goes into the Subject of messages that may
		 * be 7-bit (8-bit header bytes would need SMTPUTF8) */
		for (const char *c = value; *c; c++)
			if (*c < 0x20 || *c > 0x7e) {
				snprintf(why, whylen, "%s: printable ASCII only", d->name);
				return -EINVAL;
			}
		if (strlen(value) > (size_t)d->max) {
			snprintf(why, whylen, "%s: at most %g characters", d->name, d->max);
			return -EINVAL;
		}
		if (p)
			(void)str_copy(p->subject_tag, sizeof(p->subject_tag), value);
		return 0;
	case K_DAYS:
		errno = 0;
		days = strtol(value, &end, 10);
		if (errno || end == value || *end || days < d->min || days > d->max) {
			snprintf(why, whylen, "%s: whole days from %g to %g", d->name, d->min,
				 d->max);
			return -EINVAL;
		}
		if (p)
			p->quarantine_days = (int)days;
		return 0;
	case K_ACTION:
		for (unsigned a = 0; a < ARRAY_LEN(action_names); a++) {
			if ((d->actions & (1u << a)) && !strcasecmp(value, action_names[a])) {
				if (p && k == POLICY_VIRUS_ACTION)
					p->virus_action = (enum policy_action)a;
				else if (p)
					p->dmarc_quarantine = (enum policy_action)a;
				return 0;
			}
		}
		snprintf(why, whylen, "%s: one of%s%s%s%s", d->name,
			 d->actions & 1u << POLICY_DELIVER ? " deliver" : "",
			 d->actions & 1u << POLICY_TAG ? " tag" : "",
			 d->actions & 1u << POLICY_QUARANTINE ? " quarantine" : "",
			 d->actions & 1u << POLICY_REJECT ? " reject" : "");
		return -EINVAL;
	case K_FILE:
		for (unsigned a = 0; a < ARRAY_LEN(fileact_names); a++) {
			if (!strcasecmp(value, fileact_names[a])) {
				if (p)
					p->file[k - POLICY_FILE_EXECUTABLES] =
					    (enum policy_fileact)a;
				return 0;
			}
		}
		snprintf(why, whylen, "%s: one of node reject quarantine score", d->name);
		return -EINVAL;
	case K_BOOL:
		if (!strcasecmp(value, "on") || !strcasecmp(value, "yes")) {
			if (p)
				p->spam_headers = true;
			return 0;
		}
		if (!strcasecmp(value, "off") || !strcasecmp(value, "no")) {
			if (p)
				p->spam_headers = false;
			return 0;
		}
		snprintf(why, whylen, "%s: on or off", d->name);
		return -EINVAL;
	}
	return -EINVAL;
}

void policy_defaults(struct policy *p)
{
	char why[POLICY_WHY_LEN];

	memset(p, 0, sizeof(*p));
	for (int k = 0; k < POLICY_NKEYS; k++) {
		if (set_value(p, k, keys[k].def, why, sizeof(why)) < 0)
			abort(); /* the table above is wrong */
		p->from_default[k] = true;
	}
}

int policy_check(const char *key, const char *value, char *why, size_t whylen)
{
	int k = key ? find_key(key) : -1;

	if (k < 0) {
		size_t o = 0;
		o += (size_t)snprintf(why, whylen, "unknown setting '%s'; known:", key ? key : "");
		for (int i = 0; i < POLICY_NKEYS && o < whylen; i++)
			o += (size_t)snprintf(why + o, whylen - o, " %s", keys[i].name);
		return -EINVAL;
	}
	return set_value(NULL, k, value ? value : "", why, whylen);
}

/* "user@example.com", "@example.com", "example.com" (and subdomains),
 * an IP address or a network. */
enum pattern_kind { PAT_BAD, PAT_ADDR, PAT_AT_DOMAIN, PAT_DOMAIN, PAT_NET };

static enum pattern_kind pattern_kind(const char *pat, struct cidr_list *net)
{
	const char *at = strrchr(pat, '@');

	if (!pat[0] || strpbrk(pat, " \t,;<>\"\\"))
		return PAT_BAD;
	if (at == pat)
		return pat[1] && !strchr(pat + 1, '@') ? PAT_AT_DOMAIN : PAT_BAD;
	if (at)
		return at[1] ? PAT_ADDR : PAT_BAD;
	if (strchr(pat, ':') || strchr(pat, '/') || strspn(pat, "0123456789.") == strlen(pat)) {
		struct cidr_list tmp;
		if (!net)
			net = &tmp;
		return cidr_list_parse(pat, net) == 0 && net->n == 1 ? PAT_NET : PAT_BAD;
	}
	return strchr(pat, '.') && pat[0] != '.' && pat[strlen(pat) - 1] != '.' ? PAT_DOMAIN
										: PAT_BAD;
}

int policy_pattern_check(const char *pattern, char *why, size_t whylen)
{
	if (!pattern || pattern_kind(pattern, NULL) == PAT_BAD) {
		snprintf(why, whylen,
			 "'%s' is not an address, @domain, domain, IP address or network",
			 pattern ? pattern : "");
		return -EINVAL;
	}
	return 0;
}

/* Does the envelope sender or the client match pat? */
static bool pattern_match(const char *pat, const struct policy_subject *subj)
{
	struct cidr_list net;
	const char *sender = subj->sender ? subj->sender : "";
	const char *at = strrchr(sender, '@');
	const char *dom = at ? at + 1 : "";
	size_t dl, pl;

	switch (pattern_kind(pat, &net)) {
	case PAT_ADDR:
		return sender[0] && !strcasecmp(pat, sender);
	case PAT_AT_DOMAIN:
		return dom[0] && !strcasecmp(pat + 1, dom);
	case PAT_DOMAIN:
		dl = strlen(dom);
		pl = strlen(pat);
		if (!dom[0] || dl < pl)
			return false;
		/* the domain itself or a subdomain of it */
		return !strcasecmp(dom + dl - pl, pat) && (dl == pl || dom[dl - pl - 1] == '.');
	case PAT_NET: {
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
		struct sockaddr_in s4 = {.sin_family = AF_INET};

		if (!subj->client)
			return false;
		if (inet_pton(AF_INET, subj->client, &s4.sin_addr) == 1)
			return cidr_list_match(&net, (const struct sockaddr *)&s4);
		if (inet_pton(AF_INET6, subj->client, &s6.sin6_addr) == 1)
			return cidr_list_match(&net, (const struct sockaddr *)&s6);
		return false;
	}
	case PAT_BAD:
		break;
	}
	return false;
}

static const char *scope_name(enum store_scope sc)
{
	switch (sc) {
	case STORE_SCOPE_GLOBAL:
		return "global";
	case STORE_SCOPE_ACCOUNT:
		return "account";
	case STORE_SCOPE_DOMAIN:
		return "domain";
	case STORE_SCOPE_MAILBOX:
		return "mailbox";
	}
	return "?";
}

int policy_apply(struct policy *p, const struct store_policy_item *it,
		 const struct policy_subject *subj)
{
	char why[POLICY_WHY_LEN];
	int k;

	if (it->kind == STORE_POLICY_SETTING) {
		if ((k = find_key(it->key)) < 0 || set_value(p, k, it->value, why, sizeof(why)) < 0)
			return -EINVAL;
		p->source[k] = it->scope;
		p->from_default[k] = false;
		return 0;
	}
	if (!subj || !pattern_match(it->value, subj))
		return 0;
	/* Items come broadest scope first: a match at a more specific scope
	 * replaces what a broader one said; in the same scope block wins. */
	if (p->listed == POLICY_LISTED_BLOCK && p->listed_scope == it->scope &&
	    it->kind == STORE_POLICY_ALLOW)
		return 0;
	p->listed_scope = it->scope;
	p->listed_by_client = pattern_kind(it->value, NULL) == PAT_NET;
	p->listed = it->kind == STORE_POLICY_BLOCK ? POLICY_LISTED_BLOCK : POLICY_LISTED_ALLOW;
	snprintf(p->listed_why, sizeof(p->listed_why), "%s %s (%s)",
		 it->kind == STORE_POLICY_BLOCK ? "block" : "allow", it->value,
		 scope_name(it->scope));
	return 0;
}

struct load_ctx {
	struct policy *p;
	const struct policy_subject *subj;
};

static int load_one(const struct store_policy_item *it, void *arg)
{
	struct load_ctx *lc = arg;

	(void)policy_apply(lc->p, it, lc->subj); /* a bad stored value is skipped */
	return 0;
}

int policy_load(struct store *st, int64_t mailbox_id, int64_t domain_id,
		const struct policy_subject *subj, struct policy *out)
{
	struct load_ctx lc = {.p = out, .subj = subj};

	policy_defaults(out);
	return store_policy_resolve(st, mailbox_id, domain_id, load_one, &lc);
}

enum policy_action policy_decide(const struct policy *p, const struct policy_verdict *v,
				 enum policy_reason *reason, char *why, size_t whylen)
{
	static const char *const kind_names[] = {"executable", "macros", "encrypted archive"};
	enum policy_action a = POLICY_DELIVER, fa = POLICY_DELIVER;
	double score = v->score;
	const char *fkind = NULL;

	why[0] = '\0';
	*reason = POLICY_REASON_SCORE;
	if (v->virus) {
		*reason = POLICY_REASON_VIRUS;
		snprintf(why, whylen, "virus (virus_action=%s)",
			 policy_action_name(p->virus_action));
		return p->virus_action;
	}
	for (int k = 0; k < POLICY_NKINDS; k++) {
		enum policy_fileact f = p->file[k];
		if (!v->found[k])
			continue;
		if (f == POLICY_FILE_NODE)
			f = v->node_block[k] ? POLICY_FILE_REJECT : POLICY_FILE_SCORE;

		if (f == POLICY_FILE_REJECT && fa < POLICY_REJECT) {
			fa = POLICY_REJECT;
			fkind = kind_names[k];
		} else if (f == POLICY_FILE_QUARANTINE && fa < POLICY_QUARANTINE) {
			fa = POLICY_QUARANTINE;
			fkind = kind_names[k];
		}
	}
	if (fa != POLICY_DELIVER) {
		*reason = POLICY_REASON_FILETYPE;
		snprintf(why, whylen, "%s (file policy: %s)", fkind, policy_action_name(fa));
		return fa;
	}
	if (p->listed == POLICY_LISTED_BLOCK) {
		*reason = POLICY_REASON_BLOCK;
		snprintf(why, whylen, "sender %s", p->listed_why);
		return POLICY_REJECT;
	}
	if (p->listed == POLICY_LISTED_ALLOW && !v->dmarc_fail &&
	    (p->listed_by_client || v->sender_authenticated)) {
		*reason = POLICY_REASON_ALLOW;
		snprintf(why, whylen, "sender %s", p->listed_why);
		return POLICY_DELIVER;
	}
	if (score >= p->reject_score) {
		snprintf(why, whylen, "score %.2f >= reject_score %.2f", score, p->reject_score);
		return POLICY_REJECT;
	}
	if (score >= p->quarantine_score) {
		snprintf(why, whylen, "score %.2f >= quarantine_score %.2f", score,
			 p->quarantine_score);
		a = POLICY_QUARANTINE;
	} else if (score >= p->tag_score) {
		snprintf(why, whylen, "score %.2f >= tag_score %.2f", score, p->tag_score);
		a = POLICY_TAG;
	}
	if (v->dmarc_quarantine && p->dmarc_quarantine > a) {
		*reason = POLICY_REASON_DMARC;
		snprintf(why, whylen, "DMARC policy quarantine (dmarc_quarantine=%s)",
			 policy_action_name(p->dmarc_quarantine));
		a = p->dmarc_quarantine;
	}
	if (a == POLICY_DELIVER)
		snprintf(why, whylen, "score %.2f below tag_score %.2f", score, p->tag_score);
	return a;
}

void policy_value_text(const struct policy *p, enum policy_key k, char *buf, size_t len)
{
	double v;

	switch (k) {
	case POLICY_TAG_SCORE:
	case POLICY_QUARANTINE_SCORE:
	case POLICY_REJECT_SCORE:
		v = k == POLICY_TAG_SCORE	   ? p->tag_score
		    : k == POLICY_QUARANTINE_SCORE ? p->quarantine_score
						   : p->reject_score;
		if (isinf(v))
			snprintf(buf, len, "off");
		else
			snprintf(buf, len, "%.2f", v);
		return;
	case POLICY_SUBJECT_TAG:
		snprintf(buf, len, "%s", p->subject_tag);
		return;
	case POLICY_QUARANTINE_DAYS:
		snprintf(buf, len, "%d", p->quarantine_days);
		return;
	case POLICY_VIRUS_ACTION:
		snprintf(buf, len, "%s", policy_action_name(p->virus_action));
		return;
	case POLICY_DMARC_QUARANTINE:
		snprintf(buf, len, "%s", policy_action_name(p->dmarc_quarantine));
		return;
	case POLICY_SPAM_HEADERS:
		snprintf(buf, len, "%s", p->spam_headers ? "on" : "off");
		return;
	case POLICY_FILE_EXECUTABLES:
	case POLICY_FILE_MACROS:
	case POLICY_FILE_ENCRYPTED:
		snprintf(buf, len, "%s", fileact_names[p->file[k - POLICY_FILE_EXECUTABLES]]);
		return;
	case POLICY_NKEYS:
		break;
	}
	snprintf(buf, len, "?");
}

int64_t policy_quarantine_until(const struct policy *p, int64_t now)
{
	int days = p->quarantine_days < POLICY_MIN_QUARANTINE_DAYS ? POLICY_MIN_QUARANTINE_DAYS
								   : p->quarantine_days;

	return now + (int64_t)days * 86400;
}
