/* SPDX-License-Identifier: MIT */
/*
 * relationship: the look-ups (store thread), the decision (pure) and the
 * learning of sender relationships. The contract is in relationship.h.
 */
#include "scan/relationship.h"

#include <errno.h>
#include <idn2.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>

#include "scan/urlcheck.h"

/* ---- scores: one table -------------------------------------------------- */

enum rel_sym {
	RS_ESTABLISHED,
	RS_KNOWN_CONTACT,
	RS_KNOWN_DOMAIN,
	RS_KNOWN_UNAUTH,
	RS_FIRST_CONTACT,
	RS_LOOKALIKE,
	RS_UNAVAILABLE,
	RS_COUNT,
};

static const struct {
	const char *name;
	double score;
} rel_syms[RS_COUNT] = {
    [RS_ESTABLISHED] = {"REL_ESTABLISHED", -2.0},
    [RS_KNOWN_CONTACT] = {"REL_KNOWN_CONTACT", -1.0},
    [RS_KNOWN_DOMAIN] = {"REL_KNOWN_DOMAIN", -0.5},
    [RS_KNOWN_UNAUTH] = {"REL_KNOWN_UNAUTH", 0.0},
    [RS_FIRST_CONTACT] = {"REL_FIRST_CONTACT", 0.0},
    [RS_LOOKALIKE] = {"REL_LOOKALIKE_CORRESPONDENT", 4.0},
    [RS_UNAVAILABLE] = {"REL_UNAVAILABLE", 0.0},
};

#define REL_EDIT_MIN_LABEL 5 /* one-edit look-alikes only of labels this long */
#define REL_DOMAIN_LEN STORE_DOMAIN_LEN

/* ---- domains -------------------------------------------------------------- */

/* Registrable domains of large freemail providers, sorted. A contact at one
 * of them says nothing about the provider's other users, and none of them
 * is a look-alike of another. */
static const char *const freemail[] = {
    "126.com",	      "163.com",	"aim.com",     "aol.com",	 "att.net",
    "bigpond.com",    "comcast.net",	"daum.net",    "fastmail.com",	 "free.fr",
    "gmail.com",      "gmx.at",		"gmx.ch",      "gmx.com",	 "gmx.de",
    "gmx.net",	      "googlemail.com", "hey.com",     "hotmail.co.uk",	 "hotmail.com",
    "hotmail.de",     "hotmail.fr",	"hotmail.it",  "icloud.com",	 "laposte.net",
    "libero.it",      "live.com",	"live.fr",     "mac.com",	 "mail.com",
    "mail.ru",	      "me.com",		"msn.com",     "naver.com",	 "o2.pl",
    "orange.fr",      "outlook.com",	"outlook.de",  "outlook.fr",	 "proton.me",
    "protonmail.com", "qq.com",		"rambler.ru",  "rediffmail.com", "rocketmail.com",
    "seznam.cz",      "sfr.fr",		"t-online.de", "tutanota.com",	 "verizon.net",
    "web.de",	      "wp.pl",		"yahoo.co.jp", "yahoo.co.uk",	 "yahoo.com",
    "yahoo.de",	      "yahoo.fr",	"yandex.com",  "yandex.ru",	 "ymail.com",
    "zoho.com",
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool rel_freemail(const char *domain)
{
	return domain && bsearch(&domain, freemail, ARRAY_LEN(freemail), sizeof(freemail[0]),
				 cmp_str) != NULL;
}

static bool has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* A domain as lower-case ASCII (A-labels), the store's canonical form. */
static int dom_ascii(const char *d, char *out, size_t outlen)
{
	char *a = NULL;
	int rc;

	if (!d || !*d)
		return -EINVAL;
	if (!has_non_ascii(d)) {
		if (str_copy(out, outlen, d) < 0)
			return -ENAMETOOLONG;
		str_lower_ascii(out);
		return 0;
	}
	if (idn2_to_ascii_8z(d, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK &&
	    idn2_to_ascii_8z(d, &a, IDN2_NFC_INPUT | IDN2_TRANSITIONAL) != IDN2_OK)
		return -EINVAL;
	str_lower_ascii(a);
	rc = str_copy(out, outlen, a);
	idn2_free(a);
	return rc;
}

/* The Unicode form of an ASCII label or domain (A-labels decoded); the
 * input itself when it has none or cannot be decoded. */
static void dom_unicode(const char *ascii, char *out, size_t outlen)
{
	char *u = NULL;

	if (strstr(ascii, "xn--") && idn2_to_unicode_8z8z(ascii, &u, 0) == IDN2_OK &&
	    str_copy(out, outlen, u) == 0) {
		idn2_free(u);
		return;
	}
	idn2_free(u);
	if (str_copy(out, outlen, ascii) < 0)
		out[0] = '\0';
}

/* The registrable domain of an ASCII domain: the PSL's, else (no list, or
 * the name is a public suffix itself) the last two labels. */
static void registrable(const struct psl_ctx_st *psl, const char *d, char *out, size_t outlen)
{
	const char *reg = psl ? psl_registrable_domain((const psl_ctx_t *)psl, d) : NULL;

	if (!reg) {
		const char *last = strrchr(d, '.');

		reg = d;
		if (last) {
			const char *p = last;
			while (p > d && p[-1] != '.')
				p--;
			reg = p;
		}
	}
	if (str_copy(out, outlen, reg) < 0)
		out[0] = '\0';
}

/* The domain part of a canonical address. */
static const char *addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* ---- look-alikes ---------------------------------------------------------- */

int rel_edit_distance(const char *a, size_t alen, const char *b, size_t blen, int max)
{
	int d[3][256];
	int *prev2 = d[0], *prev = d[1], *cur = d[2];

	if (max < 0)
		return max + 1;
	if (alen > 255 || blen > 255)
		return max + 1;
	if ((alen > blen ? alen - blen : blen - alen) > (size_t)max)
		return max + 1;
	for (size_t j = 0; j <= blen; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= alen; i++) {
		int best;

		cur[0] = (int)i;
		best = cur[0];
		for (size_t j = 1; j <= blen; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = prev[j - 1] + cost;

			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < v)
				v = prev2[j - 2] + 1;
			cur[j] = v;
			if (v < best)
				best = v;
		}
		if (best > max)
			return max + 1; /* every later row is at least this */
		{
			int *t = prev2;
			prev2 = prev;
			prev = cur;
			cur = t;
		}
	}
	return prev[blen] > max ? max + 1 : prev[blen];
}

/* Splits a registrable domain into its first label and the rest. */
static void split_label(const char *reg, char *label, size_t llen, const char **suffix)
{
	const char *dot = strchr(reg, '.');

	if (str_copyn(label, llen, reg, dot ? (size_t)(dot - reg) : strlen(reg)) < 0)
		label[0] = '\0';
	*suffix = dot ? dot + 1 : "";
}

/* The skeleton of an ASCII label's Unicode form; "" when it has none. */
static void label_skeleton(const char *label, char *out, size_t outlen)
{
	char uni[REL_DOMAIN_LEN * 2];

	dom_unicode(label, uni, sizeof(uni));
	if (urlcheck_skeleton(uni, strlen(uni), out, outlen) < 0)
		out[0] = '\0';
}

static void strip_hyphens(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *s && o + 1 < outlen; s++)
		if (*s != '-')
			out[o++] = *s;
	out[o] = '\0';
}

static void set_why(char *why, size_t whylen, const char *s)
{
	if (why && whylen)
		(void)str_copy(why, whylen, s);
}

/* One side of a comparison, prepared once: the identity's domain is
 * compared with hundreds of correspondents'. */
struct la_side {
	char reg[REL_DOMAIN_LEN];   /* registrable domain, ASCII */
	char label[REL_DOMAIN_LEN]; /* its first label */
	const char *suffix;	    /* into reg: the public suffix */
	char skel[REL_DOMAIN_LEN * 2];
	char nohy[REL_DOMAIN_LEN * 2]; /* skel without hyphens */
	size_t skel_len;
};

static bool side_prepare(const struct psl_ctx_st *psl, const char *domain, struct la_side *s)
{
	char a[REL_DOMAIN_LEN];

	if (dom_ascii(domain, a, sizeof(a)) < 0)
		return false;
	registrable(psl, a, s->reg, sizeof(s->reg));
	if (!s->reg[0])
		return false;
	split_label(s->reg, s->label, sizeof(s->label), &s->suffix);
	if (!s->label[0])
		return false;
	label_skeleton(s->label, s->skel, sizeof(s->skel));
	if (!s->skel[0])
		return false;
	strip_hyphens(s->skel, s->nohy, sizeof(s->nohy));
	s->skel_len = strlen(s->skel);
	return true;
}

/* Does a (the sender's side, not freemail) look like b? */
static bool side_match(const struct la_side *a, const struct la_side *b, char *why, size_t whylen)
{
	if (!strcmp(a->reg, b->reg))
		return false;
	if (strcmp(a->suffix, b->suffix) != 0) {
		/* another TLD is another organisation's name, except the
		 * typo TLDs of .com */
		if (!strcmp(b->suffix, "com") &&
		    (!strcmp(a->suffix, "co") || !strcmp(a->suffix, "cm") ||
		     !strcmp(a->suffix, "om")) &&
		    !strcmp(a->skel, b->skel)) {
			set_why(why, whylen, "tld typo");
			return true;
		}
		return false;
	}
	if (!strcmp(a->skel, b->skel)) {
		set_why(why, whylen, "confusable");
		return true;
	}
	if (a->nohy[0] && !strcmp(a->nohy, b->nohy)) {
		set_why(why, whylen, "hyphen");
		return true;
	}
	if (b->skel_len >= REL_EDIT_MIN_LABEL &&
	    rel_edit_distance(a->skel, a->skel_len, b->skel, b->skel_len, 1) == 1) {
		set_why(why, whylen, "one edit");
		return true;
	}
	return false;
}

bool rel_lookalike(const struct psl_ctx_st *psl, const char *domain, const char *correspondent,
		   char *why, size_t whylen)
{
	struct la_side a, b;

	if (!side_prepare(psl, domain, &a) || rel_freemail(a.reg) ||
	    !side_prepare(psl, correspondent, &b))
		return false;
	return side_match(&a, &b, why, whylen);
}

/* ---- the decision --------------------------------------------------------- */

enum rel_level { LV_NONE, LV_FIRST, LV_KNOWN_DOMAIN, LV_KNOWN_CONTACT, LV_ESTABLISHED };

static void sym_set(struct scan_symbol *s, enum rel_sym id, const char *detail)
{
	memset(s, 0, sizeof(*s));
	(void)str_copy(s->name, sizeof(s->name), rel_syms[id].name);
	s->score = rel_syms[id].score;
	/* a truncated detail is still a detail */
	(void)str_copy(s->detail, sizeof(s->detail), detail);
}

static enum rel_level rcpt_level(const struct rel_rcpt_facts *r, int64_t established,
				 bool org_freemail)
{
	if (r->outbound >= established || r->inbound > 0)
		return LV_ESTABLISHED;
	if (r->outbound > 0)
		return LV_KNOWN_CONTACT;
	if (!org_freemail && (r->domain.outbound > 0 || r->domain.inbound > 0))
		return LV_KNOWN_DOMAIN;
	return LV_FIRST;
}

/* The first correspondent's domain (or the recipient's own) that the
 * identity's (prepared) domain looks like. */
static const char *rcpt_lookalike(const struct psl_ctx_st *psl, const struct la_side *id,
				  const struct rel_rcpt_facts *r, char *why, size_t whylen)
{
	const char *own = addr_domain(r->rcpt);
	struct la_side c;

	for (size_t i = 0; i < r->ndomains; i++)
		if (r->domains[i] && side_prepare(psl, r->domains[i], &c) &&
		    side_match(id, &c, why, whylen))
			return r->domains[i];
	if (own[0] && side_prepare(psl, own, &c) && side_match(id, &c, why, whylen))
		return own;
	return NULL;
}

/* True if an earlier recipient than i is at the same domain: its list of
 * correspondents' domains is the same organisation's, tested already. */
static bool domain_seen(const struct rel_facts *f, size_t i)
{
	const char *d = addr_domain(f->rcpt[i].rcpt);

	for (size_t k = 0; k < i; k++)
		if (!strcmp(addr_domain(f->rcpt[k].rcpt), d))
			return true;
	return false;
}

/* The look-alike part of the decision: the costly one (hundreds of
 * domains), done once per message and apart from the cheap rest, so that
 * rel_query_run can do it on the store thread. */
struct la_result {
	bool found;
	size_t rcpt;		   /* index of the recipient */
	char like[REL_DOMAIN_LEN]; /* the correspondent's domain it looks like */
	char why[32];
};

static void lookalike_scan(const struct rel_facts *f, const struct psl_ctx_st *psl,
			   struct la_result *res)
{
	const char *idom = addr_domain(f->identity);
	int64_t established = f->established > 0 ? f->established : 2;
	char org[REL_DOMAIN_LEN];
	struct la_side id;

	memset(res, 0, sizeof(*res));
	registrable(psl, idom, org, sizeof(org));
	/* a freemail provider is nobody's look-alike */
	if (!f->identity[0] || rel_freemail(org) || !side_prepare(psl, idom, &id))
		return;
	for (size_t i = 0; i < f->nrcpts && i < REL_MAX_RCPTS; i++) {
		const struct rel_rcpt_facts *r = &f->rcpt[i];
		const char *like;

		if (r->internal || !r->rcpt[0] || rcpt_level(r, established, false) != LV_FIRST ||
		    domain_seen(f, i))
			continue;
		if ((like = rcpt_lookalike(psl, &id, r, res->why, sizeof(res->why)))) {
			res->found = true;
			res->rcpt = i;
			(void)str_copy(res->like, sizeof(res->like), like);
			return;
		}
	}
}

/* The symbols from the facts and the look-alike result. */
static size_t assemble(const struct rel_facts *f, const struct psl_ctx_st *psl, bool authenticated,
		       const struct la_result *la, struct scan_symbol *out, size_t max)
{
	enum rel_level best = LV_NONE;
	const struct rel_rcpt_facts *who = NULL;
	const char *idom;
	char org[REL_DOMAIN_LEN], detail[SCAN_DETAIL_LEN];
	int64_t established;
	bool org_freemail;
	size_t n = 0;

	if (!f || !out || max == 0 || !f->identity[0])
		return 0;
	established = f->established > 0 ? f->established : 2;
	idom = addr_domain(f->identity);
	registrable(psl, idom, org, sizeof(org));
	org_freemail = rel_freemail(org);
	for (size_t i = 0; i < f->nrcpts && i < REL_MAX_RCPTS; i++) {
		const struct rel_rcpt_facts *r = &f->rcpt[i];
		enum rel_level lv;

		if (r->internal || !r->rcpt[0])
			continue;
		lv = rcpt_level(r, established, org_freemail);
		if (lv > best) {
			best = lv;
			who = r;
		}
	}
	if (best == LV_NONE)
		return 0;
	if (best == LV_FIRST) {
		(void)str_fmt(detail, sizeof(detail), "%s -> %s", f->identity, who->rcpt);
		sym_set(&out[n++], RS_FIRST_CONTACT, detail);
		if (la->found && la->rcpt < f->nrcpts && n < max) {
			(void)str_fmt(detail, sizeof(detail),
				      "%s looks like %s (%s), a correspondent of %s", idom,
				      la->like, la->why, f->rcpt[la->rcpt].rcpt);
			sym_set(&out[n++], RS_LOOKALIKE, detail);
		}
		return n;
	}
	if (best == LV_KNOWN_DOMAIN)
		(void)str_fmt(detail, sizeof(detail), "%s: %lld pairs at %s (%lld sent)", who->rcpt,
			      (long long)who->domain.pairs, org, (long long)who->domain.outbound);
	else
		(void)str_fmt(detail, sizeof(detail), "%s -> %s: %lld sent, %lld released",
			      who->rcpt, f->identity, (long long)who->outbound,
			      (long long)who->inbound);
	if (!authenticated) {
		char d2[SCAN_DETAIL_LEN];

		(void)str_fmt(d2, sizeof(d2), "From not authenticated; %s", detail);
		sym_set(&out[n++], RS_KNOWN_UNAUTH, d2);
		return n;
	}
	sym_set(&out[n++],
		best == LV_ESTABLISHED	   ? RS_ESTABLISHED
		: best == LV_KNOWN_CONTACT ? RS_KNOWN_CONTACT
					   : RS_KNOWN_DOMAIN,
		detail);
	return n;
}

size_t rel_decide(const struct rel_facts *f, const struct psl_ctx_st *psl, bool authenticated,
		  struct scan_symbol *out, size_t max)
{
	struct la_result la;

	if (!f || !out || max == 0 || !f->identity[0])
		return 0;
	lookalike_scan(f, psl, &la);
	return assemble(f, psl, authenticated, &la, out, max);
}

/* ---- the look-up ---------------------------------------------------------- */

struct rel_query {
	const struct config *cfg;
	const struct psl_ctx_st *psl;
	char sender[STORE_ADDR_LEN];
	char from[STORE_ADDR_LEN];
	char raw[REL_MAX_RCPTS][STORE_ADDR_LEN];
	size_t nraw;
	int rc; /* of rel_query_run */
	bool ran;
	struct la_result la; /* computed by rel_query_run */
	struct rel_facts facts;
};

int rel_query_new(const struct config *cfg, const struct psl_ctx_st *psl, const char *sender,
		  const char *from, const char *const *rcpts, size_t nrcpts, struct rel_query **out)
{
	struct rel_query *q;

	*out = NULL;
	if (!cfg || !cfg->relationships.enabled || !rcpts || nrcpts == 0)
		return -ENOENT;
	if ((!from || !*from) && (!sender || !*sender))
		return -ENOENT;
	if (!(q = calloc(1, sizeof(*q))))
		return -ENOMEM;
	q->cfg = cfg;
	q->psl = psl;
	if (sender && str_copy(q->sender, sizeof(q->sender), sender) < 0)
		q->sender[0] = '\0';
	if (from && str_copy(q->from, sizeof(q->from), from) < 0)
		q->from[0] = '\0';
	for (size_t i = 0; i < nrcpts && q->nraw < REL_MAX_RCPTS; i++)
		if (rcpts[i] && str_copy(q->raw[q->nraw], sizeof(q->raw[0]), rcpts[i]) == 0)
			q->nraw++;
	q->facts.established = cfg->relationships.established;
	*out = q;
	return 0;
}

struct domains_acc {
	struct rel_rcpt_facts *r;
	size_t max;
};

static int domain_row(const char *domain, int64_t last_seen, void *arg)
{
	struct domains_acc *acc = arg;
	char *d;

	(void)last_seen;
	if (acc->r->ndomains >= acc->max)
		return 1;
	if (!(d = strdup(domain)))
		return -ENOMEM;
	acc->r->domains[acc->r->ndomains++] = d;
	return 0;
}

static void facts_clear(struct rel_facts *f)
{
	for (size_t i = 0; i < f->nrcpts; i++) {
		for (size_t k = 0; k < f->rcpt[i].ndomains; k++)
			free(f->rcpt[i].domains[k]);
		free(f->rcpt[i].domains);
		f->rcpt[i].domains = NULL;
		f->rcpt[i].ndomains = 0;
	}
	f->nrcpts = 0;
}

/* The look-ups of one recipient (already canonical in r->rcpt). */
static int rcpt_lookup(struct store *st, const struct rel_query *q, const char *org,
		       struct rel_rcpt_facts *r)
{
	const char *rdom = addr_domain(r->rcpt), *idom = addr_domain(q->facts.identity);
	struct store_rel pair;
	struct domains_acc acc;
	int rc;

	if (!strcmp(rdom, idom)) {
		r->internal = true;
		return STORE_OK;
	}
	rc = store_rel_get(st, r->rcpt, q->facts.identity, &pair);
	if (rc == STORE_OK) {
		r->outbound = pair.outbound;
		r->inbound = pair.inbound;
	} else if (rc != STORE_NOTFOUND) {
		return rc;
	}
	if ((rc = store_rel_domain_get(st, rdom, org, &r->domain)))
		return rc;
	if (r->outbound > 0 || r->inbound > 0 || r->domain.pairs > 0)
		return STORE_OK; /* not a first contact: no look-alike test */
	acc.r = r;
	acc.max = (size_t)q->cfg->relationships.max_domains;
	if (acc.max == 0 || acc.max > STORE_REL_MAX_DOMAINS)
		acc.max = 500;
	/* out of memory: a temporary failure like any other of the store */
	if (!(r->domains = calloc(acc.max, sizeof(*r->domains))))
		return STORE_TEMPFAIL;
	rc = store_rel_domains(st, r->rcpt, acc.max, domain_row, &acc);
	return rc == -ENOMEM ? STORE_TEMPFAIL : rc;
}

int rel_query_run(struct store *st, void *arg)
{
	struct rel_query *q = arg;
	struct rel_facts *f = &q->facts;
	char org[REL_DOMAIN_LEN];
	int rc = STORE_OK;

	q->ran = true;
	facts_clear(f);
	memset(&q->la, 0, sizeof(q->la));
	f->identity[0] = '\0';
	/* the identity a reader sees: From, else the envelope sender */
	if (!q->from[0] || store_rel_addr_norm(st, q->from, f->identity, sizeof(f->identity)))
		if (!q->sender[0] ||
		    store_rel_addr_norm(st, q->sender, f->identity, sizeof(f->identity)))
			f->identity[0] = '\0';
	if (!f->identity[0])
		goto out;
	registrable(q->psl, addr_domain(f->identity), org, sizeof(org));
	if (!org[0])
		goto out;
	for (size_t i = 0; i < q->nraw; i++) {
		struct rel_rcpt_facts *r = &f->rcpt[f->nrcpts];
		bool dup = false;

		memset(r, 0, sizeof(*r));
		if (store_rel_addr_norm(st, q->raw[i], r->rcpt, sizeof(r->rcpt)))
			continue; /* not an address we could have a pair for */
		for (size_t k = 0; k < f->nrcpts && !dup; k++)
			dup = !strcmp(f->rcpt[k].rcpt, r->rcpt);
		if (dup)
			continue;
		f->nrcpts++;
		if ((rc = rcpt_lookup(st, q, org, r)))
			break;
	}
	if (rc == STORE_OK)
		lookalike_scan(f, q->psl, &q->la);
out:
	q->rc = rc;
	return rc;
}

size_t rel_query_symbols(const struct rel_query *q, bool authenticated, struct scan_symbol *out,
			 size_t max)
{
	if (!q || !out || max == 0 || !q->ran)
		return 0;
	if (q->rc != STORE_OK) {
		sym_set(out, RS_UNAVAILABLE, "store did not answer");
		return 1;
	}
	return assemble(&q->facts, q->psl, authenticated, &q->la, out, max);
}

const struct rel_facts *rel_query_facts(const struct rel_query *q)
{
	return q ? &q->facts : NULL;
}

void rel_query_free(struct rel_query *q)
{
	if (!q)
		return;
	facts_clear(&q->facts);
	free(q);
}

/* ---- learning ------------------------------------------------------------- */

int rel_learn_outbound(struct store *st, const char *local_mailbox, const char *const *remote_addrs,
		       size_t n, size_t *nskipped)
{
	char l[STORE_ADDR_LEN];
	char(*canon)[STORE_ADDR_LEN] = NULL;
	const char **v = NULL;
	size_t nv = 0, skipped = 0;
	int rc;

	if (nskipped)
		*nskipped = 0;
	if ((rc = store_rel_addr_norm(st, local_mailbox, l, sizeof(l))))
		return rc;
	if (n == 0)
		return STORE_OK;
	if (!remote_addrs) /* refused there, with the reason */
		return store_rel_record(st, l, STORE_REL_OUTBOUND, NULL, n, time_now());
	if (n > STORE_REL_MAX_BATCH)
		n = STORE_REL_MAX_BATCH; /* a larger fan-out teaches nothing more */
	canon = calloc(n, sizeof(*canon));
	v = calloc(n, sizeof(*v));
	if (!canon || !v) {
		rc = STORE_TEMPFAIL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!remote_addrs[i] ||
		    store_rel_addr_norm(st, remote_addrs[i], canon[nv], sizeof(canon[nv])) ||
		    !strcmp(addr_domain(canon[nv]), addr_domain(l))) {
			skipped++;
			continue;
		}
		v[nv] = canon[nv];
		nv++;
	}
	rc = nv ? store_rel_record(st, l, STORE_REL_OUTBOUND, v, nv, time_now()) : STORE_OK;
out:
	if (nskipped)
		*nskipped = skipped;
	free(v);
	free(canon);
	return rc;
}

int rel_learn_release(struct store *st, const char *local, const char *remote)
{
	const char *r[1] = {remote};

	return store_rel_record(st, local, STORE_REL_INBOUND, r, 1, time_now());
}

int rel_expire(struct store *st, const struct config *cfg, int64_t now, size_t *n)
{
	int64_t age = cfg ? cfg->relationships.expire : 365 * 86400;

	return store_rel_expire(st, now - age, n);
}
