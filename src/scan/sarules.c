/* SPDX-License-Identifier: MIT */
/*
 * sarules.c: reads SpamAssassin rule files and compiles them (see
 * sarules.h). Parsing follows Mail::SpamAssassin::Conf::Parser: comments
 * start at an unescaped '#', "\#" is a literal '#', a keyword and its
 * arguments per line, conditional blocks nest. The compiled form is built
 * at the end (sar_finish): ReplaceTags substitution, regex translation,
 * PCRE2 and Vectorscan compilation, meta expressions, skip reasons.
 */
#include "scan/sarules_private.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static hs_error_t cached_compile(struct sarules_db *sdb, const char *const *exprs,
				 const unsigned *flags, const unsigned *ids, unsigned n,
				 hs_database_t **out, hs_compile_error_t **herr);

/* The SpamAssassin release we behave as (for "if (version >= ...)"). */
#define SAR_VERSION 4.000001
/* Score set 2: Bayes on, network tests off. */
#define SAR_SCORE_SET 2
#define SAR_MAX_FILE (32u * 1024 * 1024)
#define SAR_MAX_DEPTH 64 /* nested if/ifplugin */
#define SAR_MAX_LINE 65536
#define SAR_MAX_META_CODE 4096
/* counted repeats up to this stay as they are in prefilter mode */
#define SAR_WIDEN_REPEAT 3
/* patterns per Vectorscan database (see build_set): fewer, larger
 * databases scan faster (7% less CPU per message than 64 on the sa corpus;
 * no gain past 256) and compile slower (15.5 s against 13 s for Debian's
 * set), which the on-disk cache pays once */
#define SAR_CHUNK 256
/* regex_cost above which Vectorscan only prefilters (see regex_cost) */
#define SAR_MAX_EXACT_COST 40

/* Plugins that Debian's spamassassin loads by default (/etc/spamassassin/
 * v*.pre): their rules are defined, and either run here or are skipped
 * with a reason. */
static const char *const loaded_plugins[] = {
    "Check",
    "HTTPSMismatch",
    "URIDetail",
    "Bayes",
    "BodyEval",
    "DNSEval",
    "HTMLEval",
    "HeaderEval",
    "MIMEEval",
    "RelayEval",
    "URIEval",
    "WLBLEval",
    "VBounce",
    "ImageInfo",
    "FreeMail",
    "AskDNS",
    "HashBL",
    "DMARC",
    "URIDNSBL",
    "SPF",
    "Rule2XSBody",
    "Pyzor",
    "Razor2",
    "SpamCop",
    "AutoLearnThreshold",
    "MIMEHeader",
    "ReplaceTags",
    "WelcomeListSubject",
    "DKIM",
    "WhiteListSubject",
};

/* Keywords that are understood and have no effect here. */
static const char *const ignored_keywords[] = {
    "lang",
    "def_whitelist_auth",
    "def_welcomelist_auth",
    "whitelist_auth",
    "welcomelist_auth",
    "util_rb_tld",
    "util_rb_2tld",
    "util_rb_3tld",
    "bayes_ignore_header",
    "reuse",
    "url_shortener",
    "url_shortener_get",
    "enlist_uri_host",
    "enlist_addrlist",
    "def_whitelist_from_dkim",
    "def_welcomelist_from_dkim",
    "def_whitelist_from_spf",
    "def_welcomelist_from_spf",
    "adsp_override",
    "uridnsbl_skip_domain",
    "priority",
    "test",
    "dns_local_ports_avoid",
    "dns_local_ports_permit",
    "urirhssub",
    "uridnssub",
    "uridnsbl",
    "urirhsbl",
    "require_version",
    "report",
    "unsafe_report",
    "redirector_pattern",
    "askdns",
    "dns_block_rule",
    "add_header",
    "remove_header",
    "clear_headers",
    "originating_ip_headers",
    "required_score",
    "required_hits",
    "report_safe",
    "report_contact",
    "ok_locales",
    "ok_languages",
    "fns_ignore_headers",
    "fns_ignore_dkim",
    "fns_check",
    "clear_util_rb",
    "clear_report_template",
    "clear_unsafe_report_template",
    "report_hostname",
    "loadplugin",
    "tryplugin",
    "include",
    "hashbl_acl_freemail",
    "hashbl_ignore",
    "util_rb_tld",
    "trusted_networks",
    "internal_networks",
    "bayes_auto_learn",
    "whitelist_from",
    "welcomelist_from",
    "blacklist_from",
    "blocklist_from",
    "whitelist_to",
    "welcomelist_to",
    "more_spam_to",
    "all_spam_to",
    "header_welcomelist",
    "freemail_whitelist",
    "freemail_welcomelist",
    "freemail_import_whitelist_auth",
    "freemail_import_welcomelist_auth",
    "freemail_max_rcpts",
    "whitelist_from_rcvd",
    "welcomelist_from_rcvd",
    "def_whitelist_from_rcvd",
    "def_welcomelist_from_rcvd",
    "whitelist_subject",
    "welcomelist_subject",
    "blacklist_subject",
    "blocklist_subject",
    "shortcircuit",
    "dcc_path",
    "pyzor_options",
    "razor_config",
    "use_bayes",
    "use_auto_whitelist",
    "use_txrep",
    "envelope_sender_header",
    "dns_server",
    "dns_available",
    "skip_rbl_checks",
    "rbl_timeout",
    "txt_timeout",
    "check_rbl_accreditor",
    "bayes_path",
    "auto_whitelist_path",
    "lock_method",
    "normalize_charset",
    "body_part_scan_size",
    "rawbody_part_scan_size",
    "dkim_timeout",
    "whitelist_from_dkim",
    "welcomelist_from_dkim",
    "unwhitelist_from_dkim",
    "hashbl_email_domain_alias",
    "hashbl_email_regex",
    "hashbl_email_welcomelist",
    "hashbl_email_whitelist",
    "util_rb_switch",
    "report_charset",
    "fold_headers",
    "allow_user_rules",
    "uri_detail",
};

/* eval: functions that ask the network: always skipped as network tests. */
static const char *const net_evals[] = {
    "check_rbl",
    "check_rbl_sub",
    "check_rbl_txt",
    "check_rbl_from_host",
    "check_rbl_from_domain",
    "check_rbl_envfrom",
    "check_rbl_ns_from",
    "check_rbl_rcvd",
    "check_rbl_headers",
    "check_rbl_results_for",
    "check_rbl_accreditor",
    "check_uridnsbl",
    "check_uri_host_listed",
    "check_razor2",
    "check_razor2_range",
    "check_pyzor",
    "check_dcc",
    "check_dcc_reputation_range",
    "check_hashbl_emails",
    "check_hashbl_uris",
    "check_hashbl_bodyre",
    "check_hashbl_attachments",
    "check_dns_sender",
    "check_asn",
    "check_spf_skip",
    "check_senders_reputation",
    "check_from_in_auto_whitelist",
    "check_from_in_auto_welcomelist",
    "askdns",
    "check_uridnsbl_for_a",
};

/* ---- small helpers --------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elsize)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elsize);
	if (!np)
		return -ENOMEM;
	memset((char *)np + *cap * elsize, 0, (ncap - *cap) * elsize);
	*p = np;
	*cap = ncap;
	return 0;
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Copies the next whitespace-delimited word of *pp into w. */
static size_t next_word(const char **pp, char *w, size_t wlen)
{
	const char *p = skip_ws(*pp);
	size_t n = 0;

	while (*p && *p != ' ' && *p != '\t') {
		if (n + 1 < wlen)
			w[n++] = *p;
		p++;
	}
	w[n] = '\0';
	*pp = skip_ws(p);
	return n;
}

/* ---- the loader's state ------------------------------------------------------ */

struct sar_cond {
	bool active; /* lines here apply */
	bool taken;  /* the if-branch was true (for else) */
	bool parent; /* the enclosing block is active */
};

struct sar_loader {
	struct sarules_db *db;
	const char *file; /* interned */
	unsigned line;
	struct sar_cond conds[SAR_MAX_DEPTH];
	int depth;
	int overflow; /* ifs past SAR_MAX_DEPTH (treated as false) */
};

static const char *intern_count(struct sar_count **arr, size_t *n, size_t *cap, const char *what,
				size_t add)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*arr)[i].what, what)) {
			(*arr)[i].n += add;
			return (*arr)[i].what;
		}
	if (grow((void **)arr, cap, *n + 1, sizeof(**arr)) < 0)
		return NULL;
	if (!((*arr)[*n].what = strdup(what)))
		return NULL;
	(*arr)[*n].n = add;
	return (*arr)[(*n)++].what;
}

static const char *reason(struct sarules_db *db, const char *what)
{
	return intern_count(&db->reasons, &db->nreasons, &db->capreasons, what, 0);
}

static int ignore_kw(struct sarules_db *db, const char *kw)
{
	db->nignored_lines++;
	return intern_count(&db->ignored, &db->nignored, &db->capignored, kw, 1) ? 0 : -ENOMEM;
}

static int32_t rule_find(const struct sarules_db *db, const char *name)
{
	size_t i;

	if (!db->hashcap)
		return -1;
	for (i = hash_str(name) & (db->hashcap - 1); db->hash[i]; i = (i + 1) & (db->hashcap - 1))
		if (!strcmp(db->rules[db->hash[i] - 1].name, name))
			return db->hash[i] - 1;
	return -1;
}

static int rehash(struct sarules_db *db)
{
	size_t cap = db->hashcap ? db->hashcap * 2 : 1024;
	int32_t *h = calloc(cap, sizeof(*h));

	if (!h)
		return -ENOMEM;
	for (size_t r = 0; r < db->nrules; r++) {
		size_t i = hash_str(db->rules[r].name) & (cap - 1);
		while (h[i])
			i = (i + 1) & (cap - 1);
		h[i] = (int32_t)r + 1;
	}
	free(db->hash);
	db->hash = h;
	db->hashcap = cap;
	return 0;
}

/* The rule called name, made if new; NULL on out of memory. */
static struct sar_rule *rule_get(struct sarules_db *db, const char *name)
{
	int32_t r = rule_find(db, name);
	struct sar_rule *rule;
	size_t i;

	if (r >= 0)
		return &db->rules[r];
	if (grow((void **)&db->rules, &db->caprules, db->nrules + 1, sizeof(*db->rules)) < 0)
		return NULL;
	if ((db->nrules + 1) * 2 > db->hashcap && rehash(db) < 0)
		return NULL;
	rule = &db->rules[db->nrules];
	memset(rule, 0, sizeof(*rule));
	if (!(rule->name = strdup(name)))
		return NULL;
	rule->target = -1;
	rule->eval = -1;
	for (i = hash_str(name) & (db->hashcap - 1); db->hash[i]; i = (i + 1) & (db->hashcap - 1)) {
	}
	db->hash[i] = (int32_t)db->nrules + 1;
	db->nrules++;
	return rule;
}

static void rule_clear_test(struct sar_rule *r)
{
	free(r->src);
	free(r->if_unset);
	free(r->meta_src);
	for (int i = 0; i < r->nargs; i++)
		free(r->args[i]);
	free(r->detail);
	free(r->code);
	pcre2_code_free(r->re);
	r->re = NULL;
	r->code = NULL;
	r->ncode = 0;
	r->detail = NULL;
	r->src = r->if_unset = r->meta_src = NULL;
	r->nargs = 0;
	r->has_unset = r->negate = false;
	r->target = -1;
	r->eval = -1;
	r->skip = NULL;
	r->pflags = 0;
	r->test = SAR_T_NONE;
}

static int rule_skip(struct sarules_db *db, struct sar_rule *r, const char *why)
{
	const char *s = reason(db, why);

	if (!s)
		return -ENOMEM;
	r->skip = s;
	return 0;
}

/* ---- conditionals: ifplugin / if / else / endif -------------------------------- */

static bool plugin_loaded(const char *name)
{
	const char *p = name;

	if (!strncmp(p, "Mail::SpamAssassin::Plugin::", 28))
		p += 28;
	for (size_t i = 0; i < ARRAY_LEN(loaded_plugins); i++)
		if (!strcmp(p, loaded_plugins[i]))
			return true;
	return false;
}

/* can(Mail::SpamAssassin::Conf::feature_x) and Plugin::P::has_x: every
 * feature of SpamAssassin 4.0.1 and of the plugins taken as loaded. */
static bool can_do(const char *what)
{
	const char *p;
	char plugin[128];
	size_t n;

	if (!strncmp(what, "Mail::SpamAssassin::Conf::", 26))
		return true;
	if (strncmp(what, "Mail::SpamAssassin::Plugin::", 28))
		return false;
	p = what + 28;
	n = strcspn(p, ":");
	if (n >= sizeof(plugin))
		return false;
	memcpy(plugin, p, n);
	plugin[n] = '\0';
	return plugin_loaded(plugin);
}

struct cond_parser {
	const char *p;
	bool bad;
};

static double cond_expr(struct cond_parser *c);

static double cond_primary(struct cond_parser *c)
{
	char word[256];
	size_t n = 0;

	c->p = skip_ws(c->p);
	if (*c->p == '(') {
		double v;
		c->p++;
		v = cond_expr(c);
		c->p = skip_ws(c->p);
		if (*c->p == ')')
			c->p++;
		else
			c->bad = true;
		return v;
	}
	if (*c->p == '!') {
		c->p++;
		return cond_primary(c) != 0 ? 0 : 1;
	}
	if (isdigit((unsigned char)*c->p) || *c->p == '.') {
		char *end;
		double v = strtod(c->p, &end);
		c->p = end;
		return v;
	}
	while (isalnum((unsigned char)*c->p) || *c->p == '_') {
		if (n + 1 < sizeof(word))
			word[n++] = *c->p;
		c->p++;
	}
	word[n] = '\0';
	if (!n) {
		c->bad = true;
		return 0;
	}
	if (!strcmp(word, "version"))
		return SAR_VERSION;
	if (!strcmp(word, "perl_version"))
		return 5.036;
	if (!strcmp(word, "plugin") || !strcmp(word, "can")) {
		char arg[256];
		size_t m = 0;
		bool is_plugin = word[0] == 'p';
		c->p = skip_ws(c->p);
		if (*c->p != '(') {
			c->bad = true;
			return 0;
		}
		c->p++;
		c->p = skip_ws(c->p);
		while (*c->p && *c->p != ')' && *c->p != ' ') {
			if (m + 1 < sizeof(arg))
				arg[m++] = *c->p;
			c->p++;
		}
		arg[m] = '\0';
		c->p = skip_ws(c->p);
		if (*c->p != ')') {
			c->bad = true;
			return 0;
		}
		c->p++;
		return (is_plugin ? plugin_loaded(arg) : can_do(arg)) ? 1 : 0;
	}
	c->bad = true;
	return 0;
}

static double cond_cmp(struct cond_parser *c)
{
	double a = cond_primary(c), b;

	c->p = skip_ws(c->p);
	if (!strncmp(c->p, ">=", 2)) {
		c->p += 2;
		b = cond_primary(c);
		return a >= b;
	}
	if (!strncmp(c->p, "<=", 2)) {
		c->p += 2;
		b = cond_primary(c);
		return a <= b;
	}
	if (!strncmp(c->p, "==", 2)) {
		c->p += 2;
		b = cond_primary(c);
		return a == b;
	}
	if (!strncmp(c->p, "!=", 2)) {
		c->p += 2;
		b = cond_primary(c);
		return a != b;
	}
	if (*c->p == '>') {
		c->p++;
		b = cond_primary(c);
		return a > b;
	}
	if (*c->p == '<') {
		c->p++;
		b = cond_primary(c);
		return a < b;
	}
	return a;
}

static double cond_and(struct cond_parser *c)
{
	double v = cond_cmp(c);

	for (;;) {
		c->p = skip_ws(c->p);
		if (strncmp(c->p, "&&", 2))
			return v;
		c->p += 2;
		double w = cond_cmp(c);
		v = (v != 0 && w != 0) ? 1 : 0;
	}
}

static double cond_expr(struct cond_parser *c)
{
	double v = cond_and(c);

	for (;;) {
		c->p = skip_ws(c->p);
		if (strncmp(c->p, "||", 2))
			return v;
		c->p += 2;
		double w = cond_and(c);
		v = (v != 0 || w != 0) ? 1 : 0;
	}
}

/* Evaluates an "if" expression; unparsable is false (and counted). */
static bool cond_eval(struct sarules_db *db, const char *expr)
{
	struct cond_parser c = {.p = expr};
	double v = cond_expr(&c);

	c.p = skip_ws(c.p);
	if (c.bad || *c.p) {
		(void)ignore_kw(db, "if (unparsable condition: false)");
		return false;
	}
	return v != 0;
}

static bool cond_active(const struct sar_loader *L)
{
	return L->overflow == 0 && (L->depth == 0 || L->conds[L->depth - 1].active);
}

static void cond_push(struct sar_loader *L, bool value)
{
	bool parent = cond_active(L);

	if (L->depth >= SAR_MAX_DEPTH || L->overflow) {
		L->overflow++;
		return;
	}
	L->conds[L->depth].parent = parent;
	L->conds[L->depth].taken = value;
	L->conds[L->depth].active = parent && value;
	L->depth++;
}

/* ---- regex parsing and translation ------------------------------------------- */

static char closing_delim(char open)
{
	switch (open) {
	case '{':
		return '}';
	case '(':
		return ')';
	case '[':
		return ']';
	case '<':
		return '>';
	default:
		return open;
	}
}

/* Parses a Perl match operator at p: /re/flags or m{re}flags. On success
 * returns the pattern in *re (malloc'd), its flags in *flags, and the
 * position after the flags; NULL if malformed. */
static const char *parse_regex(const char *p, char **re, char *flags, size_t flagslen)
{
	char open, close;
	const char *start;
	int nest = 0;
	size_t nf = 0;

	p = skip_ws(p);
	if (*p == 'm' && p[1] && !isalnum((unsigned char)p[1]) && p[1] != ' ' && p[1] != '_')
		p++;
	else if (*p != '/')
		return NULL;
	open = *p++;
	close = closing_delim(open);
	start = p;
	for (; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (open != close && *p == open) {
			nest++;
			continue;
		}
		if (*p == close) {
			if (nest == 0)
				break;
			nest--;
		}
	}
	if (*p != close)
		return NULL;
	if (!(*re = dupn(start, (size_t)(p - start))))
		return NULL;
	p++;
	while (isalpha((unsigned char)*p)) {
		if (nf + 1 < flagslen)
			flags[nf++] = *p;
		p++;
	}
	flags[nf] = '\0';
	return p;
}

/* Perl flags into PCRE2 options and Vectorscan flags. Unknown flags make
 * the rule unusable (returns -1). */
static int apply_flags(struct sar_rule *r, const char *flags)
{
	r->pflags = 0;
	r->hflags = HS_FLAG_ALLOWEMPTY;
	for (const char *f = flags; *f; f++) {
		switch (*f) {
		case 'i':
			r->pflags |= PCRE2_CASELESS;
			r->hflags |= HS_FLAG_CASELESS;
			break;
		case 'm':
			r->pflags |= PCRE2_MULTILINE;
			r->hflags |= HS_FLAG_MULTILINE;
			break;
		case 's':
			r->pflags |= PCRE2_DOTALL;
			r->hflags |= HS_FLAG_DOTALL;
			break;
		case 'x':
			r->pflags |= PCRE2_EXTENDED;
			break;
		case 'g':
		case 'o':
		case 'a':
		case 'u':
		case 'l':
		case 'd':
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/* ---- rule definitions ---------------------------------------------------------- */

static int set_where(struct sar_loader *L, struct sar_rule *r)
{
	r->file = (char *)L->file;
	r->line = L->line;
	return 0;
}

static int syntax_skip(struct sar_loader *L, struct sar_rule *r, const char *why)
{
	rule_clear_test(r);
	r->test = SAR_T_REGEX; /* defined, but unusable */
	(void)set_where(L, r);
	return rule_skip(L->db, r, why);
}

static int parse_eval(struct sar_loader *L, struct sar_rule *r, const char *p)
{
	const char *name = p + 5, *q;
	char fn[128];
	size_t n;

	q = name;
	while (isalnum((unsigned char)*q) || *q == '_')
		q++;
	n = (size_t)(q - name);
	if (!n || n >= sizeof(fn))
		return syntax_skip(L, r, "syntax error in eval:");
	memcpy(fn, name, n);
	fn[n] = '\0';
	r->test = SAR_T_EVAL;
	if (!(r->src = strdup(fn)))
		return -ENOMEM;
	q = skip_ws(q);
	if (*q == '(') {
		q++;
		for (;;) {
			const char *a;
			q = skip_ws(q);
			if (*q == ')' || !*q)
				break;
			if (*q == '\'' || *q == '"') {
				char quote = *q++;
				a = q;
				while (*q && *q != quote)
					q++;
				n = (size_t)(q - a);
				if (*q)
					q++;
			} else {
				a = q;
				while (*q && *q != ',' && *q != ')')
					q++;
				n = (size_t)(q - a);
				while (n && (a[n - 1] == ' ' || a[n - 1] == '\t'))
					n--;
			}
			if (r->nargs < SAR_MAX_EVAL_ARGS && !(r->args[r->nargs++] = dupn(a, n)))
				return -ENOMEM;
			q = skip_ws(q);
			if (*q == ',')
				q++;
			else
				break;
		}
	}
	return 0;
}

/* Finds or adds the header target (name with its modifier). */
static int32_t target_get(struct sarules_db *db, const char *name, enum sar_hmod mod, bool mime)
{
	for (size_t i = 0; i < db->ntargets; i++)
		if (db->targets[i].mod == mod && db->targets[i].mime == mime &&
		    !strcasecmp(db->targets[i].name, name))
			return (int32_t)i;
	if (grow((void **)&db->targets, &db->captargets, db->ntargets + 1, sizeof(*db->targets)) <
	    0)
		return -1;
	if (!(db->targets[db->ntargets].name = strdup(name)))
		return -1;
	db->targets[db->ntargets].mod = mod;
	db->targets[db->ntargets].mime = mime;
	return (int32_t)db->ntargets++;
}

/* header NAME Field[:mod] =~ /re/flags [if-unset: text]
 * header NAME exists:Field | eval:fn(args) */
static int parse_header(struct sar_loader *L, struct sar_rule *r, const char *p, bool mime)
{
	char field[256], flags[16];
	const char *q;
	size_t n = 0;
	enum sar_hmod mod = SAR_HM_DECODED;
	int32_t t;

	if (!strncmp(p, "eval:", 5))
		return mime ? syntax_skip(L, r, "mimeheader eval: not supported")
			    : parse_eval(L, r, p);
	if (!strncmp(p, "exists:", 7)) {
		p += 7;
		while (*p && *p != ' ' && *p != '\t' && n + 1 < sizeof(field))
			field[n++] = *p++;
		field[n] = '\0';
		if (!n)
			return syntax_skip(L, r, "syntax error in header rule");
		r->test = SAR_T_EXISTS;
		if ((t = target_get(L->db, field, SAR_HM_RAW, mime)) < 0)
			return -ENOMEM;
		r->target = t;
		return 0;
	}
	q = p;
	while (*q && *q != ' ' && *q != '\t' && *q != '=' && *q != '!')
		q++;
	n = (size_t)(q - p);
	if (!n || n >= sizeof(field))
		return syntax_skip(L, r, "syntax error in header rule");
	memcpy(field, p, n);
	field[n] = '\0';
	/* modifiers: Field:raw, Field:addr, Field:name (SA 4 also has :first,
	 * :last, :host, :domain... which we do not) */
	char *colon = strchr(field, ':');
	if (colon) {
		*colon++ = '\0';
		if (!strcmp(colon, "raw"))
			mod = SAR_HM_RAW;
		else if (!strcmp(colon, "addr"))
			mod = SAR_HM_ADDR;
		else if (!strcmp(colon, "name"))
			mod = SAR_HM_NAME;
		else
			return syntax_skip(L, r, "header modifier not supported");
	}
	q = skip_ws(q);
	if (!strncmp(q, "=~", 2))
		r->negate = false;
	else if (!strncmp(q, "!~", 2))
		r->negate = true;
	else
		return syntax_skip(L, r, "syntax error in header rule");
	q += 2;
	r->test = SAR_T_REGEX;
	if (!(q = parse_regex(q, &r->src, flags, sizeof(flags))))
		return syntax_skip(L, r, "regex syntax error");
	if (apply_flags(r, flags) < 0)
		return syntax_skip(L, r, "unknown regex flag");
	q = skip_ws(q);
	if (!strncmp(q, "[if-unset:", 10)) {
		const char *v = skip_ws(q + 10), *e = strrchr(v, ']');
		if (!e)
			e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (!(r->if_unset = dupn(v, (size_t)(e - v))))
			return -ENOMEM;
		r->has_unset = true;
	}
	if (!strncmp(field, "X-Spam-Relays-", 14) || !strcmp(field, "X-Spam-DCC") ||
	    !strncmp(field, "X-Spam-Pyzor", 12) || !strcmp(field, "X-Spam-Languages") ||
	    !strcmp(field, "X-Spam-Flag") || !strcmp(field, "X-Spam-Status") ||
	    !strcmp(field, "X-Spam-Score")) {
		char why[128];
		(void)str_fmt(why, sizeof(why), "pseudo-header %s not implemented", field);
		return rule_skip(L->db, r, why);
	}
	if ((t = target_get(L->db, field, mod, mime)) < 0)
		return -ENOMEM;
	r->target = t;
	return 0;
}

static int define_rule(struct sar_loader *L, enum sar_kind kind, const char *args)
{
	char name[SCAN_NAME_LEN_SAR];
	const char *p = args;
	struct sar_rule *r;
	char flags[16];

	if (!next_word(&p, name, sizeof(name)) || !*p)
		return ignore_kw(L->db, "malformed rule line");
	if (!(r = rule_get(L->db, name)))
		return -ENOMEM;
	rule_clear_test(r);
	(void)set_where(L, r);
	r->kind = kind;
	switch (kind) {
	case SAR_HEADER:
		return parse_header(L, r, p, false);
	case SAR_MIMEHEADER:
		return parse_header(L, r, p, true);
	case SAR_META:
		r->test = SAR_T_META;
		return (r->meta_src = strdup(p)) ? 0 : -ENOMEM;
	default:
		break;
	}
	if (!strncmp(p, "eval:", 5))
		return parse_eval(L, r, p);
	r->test = SAR_T_REGEX;
	if (!parse_regex(p, &r->src, flags, sizeof(flags)))
		return syntax_skip(L, r, "regex syntax error");
	if (apply_flags(r, flags) < 0)
		return syntax_skip(L, r, "unknown regex flag");
	return 0;
}

static int parse_score(struct sar_loader *L, const char *args)
{
	char name[SCAN_NAME_LEN_SAR], w[64];
	const char *p = args;
	double v[4];
	int n = 0;
	struct sar_rule *r;

	if (!next_word(&p, name, sizeof(name)))
		return ignore_kw(L->db, "malformed score line");
	while (n < 4 && next_word(&p, w, sizeof(w))) {
		char *end;
		const char *s = w[0] == '(' ? w + 1 : w;
		v[n] = strtod(s, &end);
		if (end == s || (*end && *end != ')'))
			return ignore_kw(L->db, "malformed score line");
		n++;
	}
	if (n != 1 && n != 4)
		return ignore_kw(L->db, "malformed score line");
	if (!(r = rule_get(L->db, name)))
		return -ENOMEM;
	r->score = n == 4 ? v[SAR_SCORE_SET] : v[0];
	r->has_score = true;
	return 0;
}

static int parse_describe(struct sar_loader *L, const char *args)
{
	char name[SCAN_NAME_LEN_SAR];
	const char *p = args;
	struct sar_rule *r;

	if (!next_word(&p, name, sizeof(name)))
		return ignore_kw(L->db, "malformed describe line");
	if (!(r = rule_get(L->db, name)))
		return -ENOMEM;
	free(r->describe);
	return (r->describe = strdup(p)) ? 0 : -ENOMEM;
}

static int parse_tflags(struct sar_loader *L, const char *args)
{
	char name[SCAN_NAME_LEN_SAR], w[64];
	const char *p = args;
	struct sar_rule *r;

	if (!next_word(&p, name, sizeof(name)))
		return ignore_kw(L->db, "malformed tflags line");
	if (!(r = rule_get(L->db, name)))
		return -ENOMEM;
	r->tflags = 0;
	r->maxhits = 0;
	while (next_word(&p, w, sizeof(w))) {
		if (!strcmp(w, "net"))
			r->tflags |= SAR_TF_NET;
		else if (!strcmp(w, "learn"))
			r->tflags |= SAR_TF_LEARN;
		else if (!strcmp(w, "userconf"))
			r->tflags |= SAR_TF_USERCONF;
		else if (!strcmp(w, "nice"))
			r->tflags |= SAR_TF_NICE;
		else if (!strcmp(w, "multiple"))
			r->tflags |= SAR_TF_MULTIPLE;
		else if (!strncmp(w, "maxhits=", 8)) {
			int64_t m;
			if (parse_int64(w + 8, 1, 100000, &m) == 0)
				r->maxhits = (int)m;
		}
	}
	return 0;
}

static int parse_tag(struct sar_loader *L, int kind, const char *args)
{
	struct sarules_db *db = L->db;
	char name[64];
	const char *p = args;
	struct sar_tag *t = NULL;

	if (!next_word(&p, name, sizeof(name)) || !*p)
		return ignore_kw(db, "malformed replace_tag line");
	for (size_t i = 0; i < db->ntags; i++)
		if (db->tags[i].kind == kind && !strcmp(db->tags[i].name, name))
			t = &db->tags[i];
	if (!t) {
		if (grow((void **)&db->tags, &db->captags, db->ntags + 1, sizeof(*db->tags)) < 0)
			return -ENOMEM;
		t = &db->tags[db->ntags++];
		t->kind = kind;
		if (!(t->name = strdup(name)))
			return -ENOMEM;
	}
	free(t->value);
	return (t->value = strdup(p)) ? 0 : -ENOMEM;
}

static int parse_replace_rules(struct sar_loader *L, const char *args)
{
	char name[SCAN_NAME_LEN_SAR];
	const char *p = args;
	struct sar_rule *r;

	while (next_word(&p, name, sizeof(name))) {
		if (!(r = rule_get(L->db, name)))
			return -ENOMEM;
		r->replace = true;
	}
	return 0;
}

static int parse_freemail(struct sar_loader *L, const char *args)
{
	struct sarules_db *db = L->db;
	char w[256];
	const char *p = args;

	while (next_word(&p, w, sizeof(w))) {
		str_lower_ascii(w);
		if (grow((void **)&db->freemail, &db->capfreemail, db->nfreemail + 1,
			 sizeof(*db->freemail)) < 0 ||
		    !(db->freemail[db->nfreemail] = strdup(w)))
			return -ENOMEM;
		db->nfreemail++;
	}
	return 0;
}

/* One logical line (comment removed, trimmed). */
static int parse_line(struct sar_loader *L, char *line)
{
	char kw[64];
	const char *args = line;

	if (!next_word(&args, kw, sizeof(kw)))
		return 0;
	/* conditionals are tracked even inside false blocks */
	if (!strcmp(kw, "ifplugin")) {
		cond_push(L, plugin_loaded(args));
		return 0;
	}
	if (!strcmp(kw, "if")) {
		cond_push(L, cond_active(L) ? cond_eval(L->db, args) : false);
		return 0;
	}
	if (!strcmp(kw, "else")) {
		if (L->overflow)
			return 0;
		if (L->depth > 0) {
			struct sar_cond *c = &L->conds[L->depth - 1];
			c->active = c->parent && !c->taken;
			c->taken = true;
		} else {
			return ignore_kw(L->db, "else without if");
		}
		return 0;
	}
	if (!strcmp(kw, "endif")) {
		if (L->overflow)
			L->overflow--;
		else if (L->depth > 0)
			L->depth--;
		else
			return ignore_kw(L->db, "endif without if");
		return 0;
	}
	if (!cond_active(L))
		return 0;
	if (!strcmp(kw, "header"))
		return define_rule(L, SAR_HEADER, args);
	if (!strcmp(kw, "mimeheader"))
		return define_rule(L, SAR_MIMEHEADER, args);
	if (!strcmp(kw, "body"))
		return define_rule(L, SAR_BODY, args);
	if (!strcmp(kw, "rawbody"))
		return define_rule(L, SAR_RAWBODY, args);
	if (!strcmp(kw, "uri"))
		return define_rule(L, SAR_URI, args);
	if (!strcmp(kw, "full"))
		return define_rule(L, SAR_FULL, args);
	if (!strcmp(kw, "meta"))
		return define_rule(L, SAR_META, args);
	if (!strcmp(kw, "score"))
		return parse_score(L, args);
	if (!strcmp(kw, "describe"))
		return parse_describe(L, args);
	if (!strcmp(kw, "tflags"))
		return parse_tflags(L, args);
	if (!strcmp(kw, "replace_tag"))
		return parse_tag(L, 0, args);
	if (!strcmp(kw, "replace_pre"))
		return parse_tag(L, 1, args);
	if (!strcmp(kw, "replace_inter"))
		return parse_tag(L, 2, args);
	if (!strcmp(kw, "replace_post"))
		return parse_tag(L, 3, args);
	if (!strcmp(kw, "replace_rules"))
		return parse_replace_rules(L, args);
	if (!strcmp(kw, "replace_start") || !strcmp(kw, "replace_end")) {
		char **dst = kw[8] == 's' ? &L->db->rstart : &L->db->rend;
		free(*dst);
		return (*dst = strdup(args)) ? 0 : -ENOMEM;
	}
	if (!strcmp(kw, "freemail_domains"))
		return parse_freemail(L, args);
	for (size_t i = 0; i < ARRAY_LEN(ignored_keywords); i++)
		if (!strcmp(kw, ignored_keywords[i]))
			return ignore_kw(L->db, kw);
	return ignore_kw(L->db, "unknown keyword");
}

/* Removes an unescaped '#' comment, turns "\#" into '#', trims. */
static char *clean_line(char *s)
{
	char *w = s, *e;

	for (char *r = s; *r; r++) {
		if (*r == '\\' && r[1] == '#') {
			*w++ = '#';
			r++;
			continue;
		}
		if (*r == '#')
			break;
		*w++ = *r;
	}
	*w = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int parse_buffer(struct sar_loader *L, char *buf, size_t len)
{
	size_t off = 0;
	int rc;

	L->line = 0;
	L->depth = 0;
	L->overflow = 0;
	while (off < len) {
		char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
		char *line = buf + off;
		L->line++;
		line[n] = '\0';
		off += n + 1;
		if (memchr(line, '\0', n)) /* a NUL inside: the line is junk */
			n = strlen(line);
		if (n > SAR_MAX_LINE) {
			if ((rc = ignore_kw(L->db, "line too long")) < 0)
				return rc;
			continue;
		}
		if ((rc = parse_line(L, clean_line(line))) < 0)
			return rc;
	}
	if (L->depth || L->overflow)
		return ignore_kw(L->db, "unclosed if block");
	return 0;
}

static const char *intern_file(struct sarules_db *db, const char *path)
{
	if (grow((void **)&db->files, &db->capfiles, db->nfiles + 1, sizeof(*db->files)) < 0)
		return NULL;
	if (!(db->files[db->nfiles] = strdup(path)))
		return NULL;
	return db->files[db->nfiles++];
}

static int load_file(struct sarules_db *db, const char *path, char *err, size_t errlen)
{
	struct sar_loader L = {.db = db};
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		(void)str_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SAR_MAX_FILE) {
		rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		(void)str_fmt(err, errlen, "%s: %s", path,
			      S_ISREG(st.st_mode) ? "file too large" : "not a regular file");
		goto out;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		rc = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size &&
	       (n = read(fd, buf + len, (size_t)st.st_size - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			(void)str_fmt(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (!(L.file = intern_file(db, path))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = parse_buffer(&L, buf, len);
out:
	free(buf);
	close(fd);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_path(struct sarules_db *db, const char *path, char *err, size_t errlen)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (stat(path, &st) < 0) {
		rc = -errno;
		(void)str_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(db, path, err, errlen);
	if (!(d = opendir(path))) {
		rc = -errno;
		(void)str_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 4 || strcmp(de->d_name + l - 3, ".cf") || de->d_name[0] == '.')
			continue;
		if (grow((void **)&names, &cap, n + 1, sizeof(*names)) < 0 ||
		    !(names[n] = strdup(de->d_name))) {
			rc = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char full[PATH_MAX];
		if (str_fmt(full, sizeof(full), "%s/%s", path, names[i]) < 0) {
			(void)str_fmt(err, errlen, "%s: path too long", path);
			rc = -ENAMETOOLONG;
			break;
		}
		rc = load_file(db, full, err, errlen);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/* ---- finishing: ReplaceTags ------------------------------------------------------ */

static const struct sar_tag *tag_find(const struct sarules_db *db, int kind, const char *name,
				      size_t n)
{
	for (size_t i = 0; i < db->ntags; i++)
		if (db->tags[i].kind == kind && strlen(db->tags[i].name) == n &&
		    !strncmp(db->tags[i].name, name, n))
			return &db->tags[i];
	return NULL;
}

static int buf_add(struct sar_buf *b, const char *s, size_t n)
{
	if (grow((void **)&b->p, &b->cap, b->len + n + 1, 1) < 0)
		return -ENOMEM;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Expands <TAG> in r->src like Mail::SpamAssassin::Plugin::ReplaceTags:
 * <pre X>, <inter X>, <post X> set what goes before each tag, between two
 * adjacent tags and after each tag; they are removed from the regex. */
static int replace_tags(struct sarules_db *db, struct sar_rule *r)
{
	const char *st = db->rstart ? db->rstart : "<", *en = db->rend ? db->rend : ">";
	size_t sl = strlen(st), el = strlen(en);
	const char *pre = "", *inter = "", *post = "";
	struct sar_buf out = {0};
	const char *p = r->src;
	bool last_tag = false;
	static const char *const dir[] = {"pre ", "inter ", "post "};

	if (!sl || !el)
		return 0;
	/* directives first */
	for (const char *q = p; (q = strstr(q, st)); q += sl) {
		for (int k = 0; k < 3; k++) {
			size_t dl = strlen(dir[k]);
			if (!strncmp(q + sl, dir[k], dl)) {
				const char *nm = q + sl + dl, *e = strstr(nm, en);
				const struct sar_tag *t;
				if (e && (t = tag_find(db, k + 1, nm, (size_t)(e - nm)))) {
					if (k == 0)
						pre = t->value;
					else if (k == 1)
						inter = t->value;
					else
						post = t->value;
				}
			}
		}
	}
	while (*p) {
		const struct sar_tag *t = NULL;
		const char *e = NULL;
		bool directive = false;
		if (!strncmp(p, st, sl) && (e = strstr(p + sl, en))) {
			const char *nm = p + sl;
			size_t nl = (size_t)(e - nm);
			for (int k = 0; k < 3; k++)
				if (!strncmp(nm, dir[k], strlen(dir[k])))
					directive = true;
			if (!directive)
				t = tag_find(db, 0, nm, nl);
		}
		if (directive) {
			p = e + el;
			continue;
		}
		if (t) {
			if ((last_tag && buf_add(&out, inter, strlen(inter)) < 0) ||
			    buf_add(&out, pre, strlen(pre)) < 0 ||
			    buf_add(&out, t->value, strlen(t->value)) < 0 ||
			    buf_add(&out, post, strlen(post)) < 0)
				goto oom;
			last_tag = true;
			p = e + el;
			continue;
		}
		if (buf_add(&out, p, 1) < 0)
			goto oom;
		last_tag = false;
		p++;
	}
	free(r->src);
	r->src = out.p ? out.p : strdup("");
	return r->src ? 0 : -ENOMEM;
oom:
	free(out.p);
	return -ENOMEM;
}

/* ---- finishing: meta expressions ------------------------------------------------ */

struct meta_parser {
	struct sarules_db *db;
	const char *p;
	struct sar_ins *code;
	size_t n, cap;
	bool bad;
};

static int emit(struct meta_parser *m, enum sar_op op, int32_t arg, double num)
{
	if (m->n >= SAR_MAX_META_CODE) {
		m->bad = true;
		return -1;
	}
	if (grow((void **)&m->code, &m->cap, m->n + 1, sizeof(*m->code)) < 0) {
		m->bad = true;
		return -1;
	}
	m->code[m->n].op = op;
	m->code[m->n].arg = arg;
	m->code[m->n].num = num;
	m->n++;
	return (int)m->n - 1;
}

static void meta_or(struct meta_parser *m, int depth);

static void meta_unary(struct meta_parser *m, int depth)
{
	if (depth > 200) {
		m->bad = true;
		return;
	}
	m->p = skip_ws(m->p);
	if (*m->p == '!') {
		m->p++;
		meta_unary(m, depth + 1);
		(void)emit(m, SAR_OP_NOT, 0, 0);
		return;
	}
	if (*m->p == '-') {
		m->p++;
		meta_unary(m, depth + 1);
		(void)emit(m, SAR_OP_NEG, 0, 0);
		return;
	}
	if (*m->p == '(') {
		m->p++;
		meta_or(m, depth + 1);
		m->p = skip_ws(m->p);
		if (*m->p != ')') {
			m->bad = true;
			return;
		}
		m->p++;
		return;
	}
	if (isdigit((unsigned char)*m->p) || *m->p == '.') {
		char *end;
		double v = strtod(m->p, &end);
		if (end == m->p) {
			m->bad = true;
			return;
		}
		m->p = end;
		(void)emit(m, SAR_OP_NUM, 0, v);
		return;
	}
	if (isalpha((unsigned char)*m->p) || *m->p == '_') {
		const char *s = m->p;
		char name[SCAN_NAME_LEN_SAR];
		size_t n;
		struct sar_rule *r;
		while (isalnum((unsigned char)*m->p) || *m->p == '_')
			m->p++;
		n = (size_t)(m->p - s);
		if (n >= sizeof(name)) {
			m->bad = true;
			return;
		}
		memcpy(name, s, n);
		name[n] = '\0';
		/* a name never defined stays a rule of no test: value 0 */
		if (!(r = rule_get(m->db, name))) {
			m->bad = true;
			return;
		}
		(void)emit(m, SAR_OP_RULE, (int32_t)(r - m->db->rules), 0);
		return;
	}
	m->bad = true;
}

static void meta_mul(struct meta_parser *m, int depth)
{
	meta_unary(m, depth);
	while (!m->bad) {
		m->p = skip_ws(m->p);
		if (*m->p != '*' && *m->p != '/')
			return;
		enum sar_op op = *m->p == '*' ? SAR_OP_MUL : SAR_OP_DIV;
		m->p++;
		meta_unary(m, depth);
		(void)emit(m, op, 0, 0);
	}
}

static void meta_add(struct meta_parser *m, int depth)
{
	meta_mul(m, depth);
	while (!m->bad) {
		m->p = skip_ws(m->p);
		if (*m->p != '+' && *m->p != '-')
			return;
		enum sar_op op = *m->p == '+' ? SAR_OP_ADD : SAR_OP_SUB;
		m->p++;
		meta_mul(m, depth);
		(void)emit(m, op, 0, 0);
	}
}

static void meta_rel(struct meta_parser *m, int depth)
{
	meta_add(m, depth);
	while (!m->bad) {
		enum sar_op op;
		m->p = skip_ws(m->p);
		if (!strncmp(m->p, ">=", 2))
			op = SAR_OP_GE, m->p += 2;
		else if (!strncmp(m->p, "<=", 2))
			op = SAR_OP_LE, m->p += 2;
		else if (!strncmp(m->p, "==", 2))
			op = SAR_OP_EQ, m->p += 2;
		else if (!strncmp(m->p, "!=", 2))
			op = SAR_OP_NE, m->p += 2;
		else if (*m->p == '>')
			op = SAR_OP_GT, m->p++;
		else if (*m->p == '<')
			op = SAR_OP_LT, m->p++;
		else
			return;
		meta_add(m, depth);
		(void)emit(m, op, 0, 0);
	}
}

static void meta_and(struct meta_parser *m, int depth)
{
	meta_rel(m, depth);
	while (!m->bad) {
		int at;
		m->p = skip_ws(m->p);
		if (strncmp(m->p, "&&", 2))
			return;
		m->p += 2;
		if ((at = emit(m, SAR_OP_AND, 0, 0)) < 0)
			return;
		meta_rel(m, depth);
		m->code[at].arg = (int32_t)m->n;
	}
}

static void meta_or(struct meta_parser *m, int depth)
{
	meta_and(m, depth);
	while (!m->bad) {
		int at;
		m->p = skip_ws(m->p);
		if (strncmp(m->p, "||", 2))
			return;
		m->p += 2;
		if ((at = emit(m, SAR_OP_OR, 0, 0)) < 0)
			return;
		meta_and(m, depth);
		m->code[at].arg = (int32_t)m->n;
	}
}

/* Compiles rule ri's meta expression; the rules array may grow (names
 * that were never defined), so the rule is addressed by index. */
static int meta_compile(struct sarules_db *db, size_t ri)
{
	struct meta_parser m = {.db = db};
	char *src = db->rules[ri].meta_src;

	m.p = src;
	meta_or(&m, 0);
	m.p = skip_ws(m.p);
	if (m.bad || *m.p || !m.n) {
		free(m.code);
		if (m.bad && m.cap == 0 && m.n == 0 && !*src)
			return rule_skip(db, &db->rules[ri], "meta syntax error");
		return rule_skip(db, &db->rules[ri], "meta syntax error");
	}
	db->rules[ri].code = m.code;
	db->rules[ri].ncode = m.n;
	return 0;
}

/* 1: every dependency of meta ri is skipped or undefined (recursively). */
static int meta_dead(struct sarules_db *db, size_t ri, uint8_t *state)
{
	struct sar_rule *r = &db->rules[ri];
	bool any_alive = false;

	if (state[ri])
		return state[ri] == 2 ? 1 : 0; /* 1 visiting (cycle: alive), 2 dead, 3 alive */
	if (r->test != SAR_T_META || r->skip || !r->code) {
		bool dead = r->skip || r->test == SAR_T_NONE;
		state[ri] = dead ? 2 : 3;
		return dead;
	}
	state[ri] = 1;
	for (size_t i = 0; i < r->ncode; i++)
		if (r->code[i].op == SAR_OP_RULE && !meta_dead(db, (size_t)r->code[i].arg, state))
			any_alive = true;
	if (!any_alive) {
		/* a meta of only constants is alive */
		bool has_rule = false;
		for (size_t i = 0; i < r->ncode; i++)
			if (r->code[i].op == SAR_OP_RULE)
				has_rule = true;
		any_alive = !has_rule;
	}
	state[ri] = any_alive ? 3 : 2;
	return !any_alive;
}

/* ---- finishing: regexes ---------------------------------------------------------- */

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static bool line_mode(enum sar_kind k)
{
	return k == SAR_BODY || k == SAR_RAWBODY || k == SAR_URI;
}

/* Reads a counted repeat {m}, {m,} or {m,n} at p; its length, or 0. */
static size_t counted_repeat(const char *p, long *max)
{
	const char *q = p + 1;
	char *end;
	long lo, hi;

	if (*p != '{' || !isdigit((unsigned char)*q))
		return 0;
	lo = strtol(q, &end, 10);
	hi = lo;
	q = end;
	if (*q == ',') {
		q++;
		hi = isdigit((unsigned char)*q) ? strtol(q, &end, 10) : 100000;
		if (isdigit((unsigned char)*q))
			q = end;
	}
	if (*q != '}')
		return 0;
	*max = hi > lo ? hi : lo;
	return (size_t)(q + 1 - p);
}

/* How costly the regex is for Vectorscan to compile: counted repeats are
 * unrolled into automaton states, and a few SpamAssassin rules nest
 * them (minutes of compile time). Outside classes and escapes. */
static long regex_cost(const char *s)
{
	long cost = (long)strlen(s) / 100;
	bool in_class = false;

	for (const char *p = s; *p; p++) {
		long max;
		size_t n;
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (in_class) {
			in_class = *p != ']';
			continue;
		}
		if (*p == '[') {
			in_class = true;
			if (p[1] == ']' || (p[1] == '^' && p[2] == ']'))
				p += p[1] == ']' ? 1 : 2;
			continue;
		}
		if ((n = counted_repeat(p, &max))) {
			cost += max;
			p += n - 1;
		}
	}
	return cost;
}

/* A class of only bytes >= 0x80 ("[\\xc3\\xa9]", the UTF-8 pieces of
 * ReplaceTags): its length, else 0. */
static size_t high_class(const char *p)
{
	const char *q = p + 1;

	if (*q == ']')
		return 0;
	while (*q && *q != ']') {
		if (q[0] == '-' && q > p + 1 && q[1] != ']') {
			q++;
			continue;
		}
		if (q[0] != '\\' || q[1] != 'x' || !q[2] || !strchr("89abcdefABCDEF", q[2]) ||
		    !isxdigit((unsigned char)q[3]))
			return 0;
		q += 4;
	}
	return *q == ']' ? (size_t)(q + 1 - p) : 0;
}

/* For prefilter mode: every large counted repeat {m,n} becomes * or + (m > 0),
 * which matches a superset and keeps the automaton small; PCRE2 confirms
 * with the real pattern. */
static char *widen(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *d = malloc(n * 3 + 12); /* "[\\x80]" becomes "[\\x80-\\xff]" */
	bool in_class = false;

	if (!d)
		return NULL;
	for (const char *p = s; *p; p++) {
		long max;
		size_t k;
		if (*p == '\\' && p[1]) {
			d[o++] = *p++;
			d[o++] = *p;
			continue;
		}
		if (in_class) {
			in_class = *p != ']';
			d[o++] = *p;
			continue;
		}
		if (*p == '[' && (k = high_class(p))) {
			memcpy(d + o, "[\\x80-\\xff]", 11);
			o += 11;
			p += k - 1;
			continue;
		}
		if (*p == '[') {
			in_class = true;
			d[o++] = *p;
			if (p[1] == '^')
				d[o++] = *++p;
			if (p[1] == ']')
				d[o++] = *++p;
			continue;
		}
		if ((k = counted_repeat(p, &max)) && max >= SAR_WIDEN_REPEAT) {
			d[o++] = p[1] == '0' && (p[2] == ',' || p[2] == '}') ? '*' : '+';
			p += k - 1;
			continue;
		}
		d[o++] = *p;
	}
	d[o] = '\0';
	return d;
}

/* The expression Vectorscan gets: widened for prefilter mode, and /x
 * becomes (?x) with a newline so that a trailing comment ends. */
static char *hs_source(const struct sar_rule *r)
{
	char *w = r->hsmode == SAR_HS_PREFILTER ? widen(r->src) : strdup(r->src);
	size_t n;
	char *s;

	if (!w || !(r->pflags & PCRE2_EXTENDED))
		return w;
	n = strlen(w);
	if (!(s = malloc(n + 6))) {
		free(w);
		return NULL;
	}
	memcpy(s, "(?x)", 4);
	memcpy(s + 4, w, n);
	s[n + 4] = '\n';
	s[n + 5] = '\0';
	free(w);
	return s;
}

static unsigned hs_flags(const struct sar_rule *r)
{
	unsigned f = r->hflags;

	if (line_mode(r->kind))
		f |= HS_FLAG_MULTILINE;
	else if (!(r->tflags & SAR_TF_MULTIPLE))
		f |= HS_FLAG_SINGLEMATCH;
	if (r->hsmode == SAR_HS_PREFILTER)
		f |= HS_FLAG_PREFILTER;
	return f;
}

/* PCRE2 first (it decides whether the rule is usable at all), then what
 * Vectorscan can do with it. */
static int compile_regex(struct sarules_db *db, struct sar_rule *r, char *err, size_t errlen)
{
	int ec;
	PCRE2_SIZE eo;
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *herr = NULL;
	char *src;

	(void)err;
	(void)errlen;
	if (strstr(r->src, "%{")) /* SA 4 capture templates */
		return rule_skip(db, r, "capture template %{...} not supported");
	r->re = pcre2_compile((PCRE2_SPTR)r->src, PCRE2_ZERO_TERMINATED, r->pflags, &ec, &eo, NULL);
	if (!r->re) {
		PCRE2_UCHAR msg[160];
		char why[300];
		(void)pcre2_get_error_message(ec, msg, sizeof(msg));
		(void)str_fmt(why, sizeof(why), "%s at offset %zu", (const char *)msg, (size_t)eo);
		free(r->detail);
		if (!(r->detail = strdup(why)))
			return -ENOMEM;
		return rule_skip(db, r,
				 ec == PCRE2_ERROR_PATTERN_TOO_LARGE ? "regex too large for PCRE2"
								     : "regex syntax error");
	}
	(void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
	if (line_mode(r->kind) && (strstr(r->src, "\\A") || strstr(r->src, "\\z") ||
				   strstr(r->src, "\\Z") || strstr(r->src, "\\G"))) {
		r->hsmode = SAR_HS_PCRE_ONLY;
		return 0;
	}
	if (!(src = hs_source(r)))
		return -ENOMEM;
	r->hsmode = regex_cost(r->src) > SAR_MAX_EXACT_COST ? SAR_HS_PREFILTER : SAR_HS_EXACT;
	if (r->hsmode == SAR_HS_PREFILTER) {
		free(src);
		if (!(src = hs_source(r)))
			return -ENOMEM;
	}
	if (hs_expression_info(src, hs_flags(r), &info, &herr) != HS_SUCCESS) {
		hs_free_compile_error(herr);
		herr = NULL;
		r->hsmode = SAR_HS_PREFILTER;
		free(src);
		if (!(src = hs_source(r)))
			return -ENOMEM;
		if (hs_expression_info(src, hs_flags(r), &info, &herr) != HS_SUCCESS) {
			hs_free_compile_error(herr);
			r->hsmode = SAR_HS_PCRE_ONLY;
		}
	}
	free(info);
	free(src);
	return 0;
}

/* Builds the Vectorscan databases of one set of rules: exact patterns
 * first, then prefilter ones, at most SAR_CHUNK per database (compiling
 * one database of all of them costs much more than the pieces: Vectorscan
 * analyses the patterns together). A rule Vectorscan refuses at this
 * stage goes to prefilter, then to PCRE2 only, and the set is rebuilt. */
static int build_set(struct sarules_db *db, struct sar_set *set, const int32_t *rules, size_t n)
{
	const char **exprs = NULL;
	char **srcs = NULL;
	unsigned *flags = NULL, *ids = NULL;
	size_t m = 0;
	int rc = 0;

	set->rules = calloc(n ? n : 1, sizeof(*set->rules));
	set->pcre_only = calloc(n ? n : 1, sizeof(*set->pcre_only));
	exprs = calloc(n ? n : 1, sizeof(*exprs));
	srcs = calloc(n ? n : 1, sizeof(*srcs));
	flags = calloc(n ? n : 1, sizeof(*flags));
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!set->rules || !set->pcre_only || !exprs || !srcs || !flags || !ids) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		hs_compile_error_t *herr = NULL;
		size_t start = 0, bad = SIZE_MAX;

		for (size_t c = 0; c < set->nhs; c++)
			hs_free_database(set->hs[c]);
		set->nhs = 0;
		m = 0;
		set->npcre = 0;
		for (int mode = SAR_HS_EXACT; mode <= SAR_HS_PCRE_ONLY; mode++)
			for (size_t i = 0; i < n; i++) {
				struct sar_rule *r = &db->rules[rules[i]];
				if ((int)r->hsmode != mode)
					continue;
				if (r->hsmode == SAR_HS_PCRE_ONLY) {
					set->pcre_only[set->npcre++] = rules[i];
					continue;
				}
				free(srcs[m]);
				if (!(srcs[m] = hs_source(r))) {
					rc = -ENOMEM;
					goto out;
				}
				exprs[m] = srcs[m];
				flags[m] = hs_flags(r);
				ids[m] = (unsigned)m;
				set->rules[m] = rules[i];
				m++;
			}
		set->n = m;
		while (start < m && bad == SIZE_MAX) {
			size_t end = start + 1;
			enum sar_hsmode mode = db->rules[set->rules[start]].hsmode;
			while (end < m && end - start < SAR_CHUNK &&
			       db->rules[set->rules[end]].hsmode == mode)
				end++;
			if (set->nhs >= SAR_MAX_CHUNKS) {
				bad = end; /* cannot happen with SAR_MAX_CHUNKS * SAR_CHUNK rules */
				break;
			}
			if (cached_compile(db, exprs + start, flags + start, ids + start,
					   (unsigned)(end - start), &set->hs[set->nhs],
					   &herr) == HS_SUCCESS) {
				set->nhs++;
				start = end;
				continue;
			}
			bad =
			    herr && herr->expression >= 0 && (size_t)herr->expression < end - start
				? start + (size_t)herr->expression
				: m;
			hs_free_compile_error(herr);
		}
		if (bad == SIZE_MAX)
			break;
		if (bad >= m) {
			/* the database failed as a whole: everything to PCRE2 */
			for (size_t i = 0; i < n; i++)
				db->rules[rules[i]].hsmode = SAR_HS_PCRE_ONLY;
		} else {
			struct sar_rule *r = &db->rules[set->rules[bad]];
			r->hsmode = r->hsmode == SAR_HS_EXACT ? SAR_HS_PREFILTER : SAR_HS_PCRE_ONLY;
		}
	}
out:
	if (srcs)
		for (size_t i = 0; i < n; i++)
			free(srcs[i]);
	free(srcs);
	free(exprs);
	free(flags);
	free(ids);
	return rc;
}

/* ---- the compiled-database cache ----------------------------------------
 *
 * Compiling Debian's rule set takes seconds of CPU, and every SMTP worker,
 * every reload and every `mxguard scan` needs it. Vectorscan can serialize
 * a compiled database; so each chunk's database is kept in cache_dir under
 * the SHA-256 of everything that determines it (the library version and
 * platform, the patterns, their flags and ids), and read back instead of
 * compiled when present. A file is written to a temporary name and
 * renamed, and carries the SHA-256 of its bytes, checked before
 * hs_deserialize_database() sees them: a torn or altered file is a miss,
 * never a crash. A failed compile is not cached (it is retried, as
 * before). Files are 0640: the cache holds nothing secret, but only the
 * daemon's user should be able to change what it will run. */
#define CACHE_MAGIC "mxgHS1\n"

static void cache_key(const char *const *exprs, const unsigned *flags, const unsigned *ids,
		      unsigned n, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	hs_platform_info_t plat;
	const char *ver = hs_version();

	memset(&plat, 0, sizeof(plat));
	(void)hs_populate_platform(&plat);
	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		EVP_DigestUpdate(c, ver, strlen(ver) + 1);
		EVP_DigestUpdate(c, &plat, sizeof(plat));
		EVP_DigestUpdate(c, &n, sizeof(n));
		for (unsigned i = 0; i < n; i++) {
			EVP_DigestUpdate(c, exprs[i], strlen(exprs[i]) + 1);
			EVP_DigestUpdate(c, &flags[i], sizeof(flags[i]));
			EVP_DigestUpdate(c, &ids[i], sizeof(ids[i]));
		}
		EVP_DigestFinal_ex(c, md, NULL);
	} else {
		memset(md, 0, sizeof(md));
	}
	EVP_MD_CTX_free(c);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static hs_database_t *cache_read(const char *path)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	hs_database_t *db = NULL;
	size_t len, hdr = strlen(CACHE_MAGIC) + SHA256_DIGEST_LENGTH;
	char *buf = NULL;
	struct stat st;
	FILE *f = fopen(path, "rb");

	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) < 0 || st.st_size <= (off_t)hdr || st.st_size > (64 << 20) ||
	    !(buf = malloc((size_t)st.st_size)))
		goto out;
	len = fread(buf, 1, (size_t)st.st_size, f);
	if (len != (size_t)st.st_size || memcmp(buf, CACHE_MAGIC, strlen(CACHE_MAGIC)))
		goto out;
	SHA256((const unsigned char *)buf + hdr, len - hdr, md);
	if (memcmp(md, buf + strlen(CACHE_MAGIC), sizeof(md)))
		goto out;
	if (hs_deserialize_database(buf + hdr, len - hdr, &db) != HS_SUCCESS)
		db = NULL;
out:
	free(buf);
	fclose(f);
	return db;
}

static void cache_write(const char *dir, const char *path, const hs_database_t *db)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char tmp[4200], *bytes = NULL;
	size_t len = 0;
	FILE *f;
	int fd;

	if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS)
		return;
	SHA256((const unsigned char *)bytes, len, md);
	if (mkdir_p(dir, 0750) < 0 ||
	    str_fmt(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) < 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
		free(bytes);
		return;
	}
	if (!(f = fdopen(fd, "wb"))) {
		close(fd);
		unlink(tmp);
		free(bytes);
		return;
	}
	if (fwrite(CACHE_MAGIC, 1, strlen(CACHE_MAGIC), f) != strlen(CACHE_MAGIC) ||
	    fwrite(md, 1, sizeof(md), f) != sizeof(md) || fwrite(bytes, 1, len, f) != len ||
	    fclose(f) != 0 || rename(tmp, path) < 0)
		unlink(tmp);
	free(bytes);
}

static hs_error_t cached_compile(struct sarules_db *sdb, const char *const *exprs,
				 const unsigned *flags, const unsigned *ids, unsigned n,
				 hs_database_t **out, hs_compile_error_t **herr)
{
	char key[65], path[4200];
	hs_error_t rc;

	if (!sdb->cache_dir[0])
		return hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, out, herr);
	cache_key(exprs, flags, ids, n, key);
	if (str_fmt(path, sizeof(path), "%s/%s.hs", sdb->cache_dir, key) == 0 &&
	    (*out = cache_read(path))) {
		sdb->cache_hits++;
		return HS_SUCCESS;
	}
	sdb->cache_misses++;
	rc = hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, out, herr);
	if (rc == HS_SUCCESS)
		cache_write(sdb->cache_dir, path, *out);
	return rc;
}

static int finish(struct sarules_db *db, char *err, size_t errlen)
{
	int32_t **lists = NULL;
	size_t *counts = NULL;
	size_t nlists = SAR_NKINDS + db->ntargets;
	uint8_t *state = NULL;
	int rc = 0;

	/* 1. tests that cannot run here */
	for (size_t i = 0; i < db->nrules; i++) {
		struct sar_rule *r = &db->rules[i];
		if (r->test == SAR_T_NONE || r->skip)
			continue;
		if (!r->has_score) {
			/* SpamAssassin's defaults: 1, 0 for __ rules, -1 for nice */
			r->score = !strncmp(r->name, "__", 2)  ? 0
				   : (r->tflags & SAR_TF_NICE) ? -1
							       : 1;
		}
		if (r->tflags & SAR_TF_NET) {
			rc = rule_skip(db, r, "network test (tflags net)");
		} else if (r->test == SAR_T_EVAL) {
			char why[200];
			if (in_list(r->src, net_evals, ARRAY_LEN(net_evals))) {
				(void)str_fmt(why, sizeof(why), "network test (eval:%s)", r->src);
				rc = rule_skip(db, r, why);
			} else if ((r->eval = sar_eval_find(r->src, r->kind)) < 0) {
				(void)str_fmt(why, sizeof(why), "eval:%s not implemented", r->src);
				rc = rule_skip(db, r, why);
			} else {
				const char *bad = sar_eval_check(r);
				if (bad)
					rc = rule_skip(db, r, bad);
			}
		} else if (r->test == SAR_T_REGEX) {
			if (r->replace && (rc = replace_tags(db, r)) < 0)
				goto out;
			rc = compile_regex(db, r, err, errlen);
		}
		if (rc < 0)
			goto out;
	}
	/* 2. metas (may add never-defined names to the table) */
	for (size_t i = 0; i < db->nrules; i++)
		if (db->rules[i].test == SAR_T_META && !db->rules[i].skip &&
		    (rc = meta_compile(db, i)) < 0)
			goto out;
	if (!(state = calloc(db->nrules ? db->nrules : 1, 1))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < db->nrules; i++)
		if (db->rules[i].test == SAR_T_META && !db->rules[i].skip &&
		    meta_dead(db, i, state) &&
		    (rc = rule_skip(db, &db->rules[i], "meta: every dependency skipped")) < 0)
			goto out;
	/* 3. sets */
	lists = calloc(nlists, sizeof(*lists));
	counts = calloc(nlists, sizeof(*counts));
	db->hsets = calloc(db->ntargets ? db->ntargets : 1, sizeof(*db->hsets));
	db->report = calloc(db->nrules ? db->nrules : 1, sizeof(*db->report));
	db->evals = calloc(db->nrules ? db->nrules : 1, sizeof(*db->evals));
	db->skips = calloc(db->nrules ? db->nrules : 1, sizeof(*db->skips));
	if (!lists || !counts || !db->hsets || !db->report || !db->evals || !db->skips) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nlists; i++)
		if (!(lists[i] = calloc(db->nrules ? db->nrules : 1, sizeof(**lists)))) {
			rc = -ENOMEM;
			goto out;
		}
	for (size_t i = 0; i < db->nrules; i++) {
		struct sar_rule *r = &db->rules[i];
		size_t li;
		if (r->test == SAR_T_NONE)
			continue;
		if (r->skip) {
			db->skips[db->nskipped++] = (int32_t)i;
			for (size_t k = 0; k < db->nreasons; k++)
				if (db->reasons[k].what == r->skip)
					db->reasons[k].n++;
			continue;
		}
		db->nloaded++;
		if (r->score != 0 && strncmp(r->name, "__", 2))
			db->report[db->nreport++] = (int32_t)i;
		if (r->test == SAR_T_EVAL)
			db->evals[db->nevals++] = (int32_t)i;
		if (r->test != SAR_T_REGEX)
			continue;
		if (r->hsmode == SAR_HS_EXACT)
			db->nexact++;
		else if (r->hsmode == SAR_HS_PREFILTER)
			db->nprefilter++;
		else
			db->npcre++;
		li = (r->kind == SAR_HEADER || r->kind == SAR_MIMEHEADER)
			 ? SAR_NKINDS + (size_t)r->target
			 : (size_t)r->kind;
		lists[li][counts[li]++] = (int32_t)i;
	}
	for (size_t k = 0; k < SAR_NKINDS; k++)
		if (counts[k] && (rc = build_set(db, &db->kinds[k], lists[k], counts[k])) < 0)
			goto out;
	for (size_t t = 0; t < db->ntargets; t++)
		if (counts[SAR_NKINDS + t] &&
		    (rc = build_set(db, &db->hsets[t], lists[SAR_NKINDS + t],
				    counts[SAR_NKINDS + t])) < 0)
			goto out;
	/* modes may have changed while building */
	db->nexact = db->nprefilter = db->npcre = 0;
	for (size_t i = 0; i < db->nrules; i++) {
		struct sar_rule *r = &db->rules[i];
		if (r->test != SAR_T_REGEX || r->skip)
			continue;
		if (r->hsmode == SAR_HS_EXACT)
			db->nexact++;
		else if (r->hsmode == SAR_HS_PREFILTER)
			db->nprefilter++;
		else
			db->npcre++;
	}
	/* reasons: most frequent first; drop the empty ones */
	for (size_t a = 1; a < db->nreasons; a++)
		for (size_t b = a; b > 0 && db->reasons[b].n > db->reasons[b - 1].n; b--) {
			struct sar_count t = db->reasons[b];
			db->reasons[b] = db->reasons[b - 1];
			db->reasons[b - 1] = t;
		}
	for (size_t a = 1; a < db->nignored; a++)
		for (size_t b = a; b > 0 && db->ignored[b].n > db->ignored[b - 1].n; b--) {
			struct sar_count t = db->ignored[b];
			db->ignored[b] = db->ignored[b - 1];
			db->ignored[b - 1] = t;
		}
out:
	if (lists)
		for (size_t i = 0; i < nlists; i++)
			free(lists[i]);
	free(lists);
	free(counts);
	free(state);
	if (rc == -ENOMEM)
		(void)str_copy(err, errlen, "out of memory");
	return rc;
}

/* ---- public ------------------------------------------------------------------------ */

int sarules_db_load(const char *const *paths, size_t npaths, struct sarules_db **out, char *err,
		    size_t errlen)
{
	return sarules_db_load_cached(paths, npaths, NULL, out, err, errlen);
}

int sarules_db_load_cached(const char *const *paths, size_t npaths, const char *cache_dir,
			   struct sarules_db **out, char *err, size_t errlen)
{
	struct sarules_db *db = calloc(1, sizeof(*db));
	int64_t t0 = time_mono_us();
	int rc = 0;

	*out = NULL;
	if (!db) {
		(void)str_copy(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (cache_dir)
		(void)str_copy(db->cache_dir, sizeof(db->cache_dir), cache_dir);
	for (size_t i = 0; i < npaths && rc == 0; i++)
		if (paths[i] && paths[i][0])
			rc = load_path(db, paths[i], err, errlen);
	if (rc == 0)
		rc = finish(db, err, errlen);
	if (rc < 0) {
		if (rc == -ENOMEM)
			(void)str_copy(err, errlen, "out of memory");
		sarules_db_free(db);
		return rc;
	}
	db->load_us = time_mono_us() - t0;
	*out = db;
	return 0;
}

int sarules_db_load_mem(const char *name, const char *text, size_t len, struct sarules_db **out,
			char *err, size_t errlen)
{
	struct sarules_db *db = calloc(1, sizeof(*db));
	struct sar_loader L = {.db = db};
	int64_t t0 = time_mono_us();
	char *buf = malloc(len + 1);
	int rc = -ENOMEM;

	*out = NULL;
	if (!db || !buf || !(L.file = intern_file(db, name)))
		goto fail;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if ((rc = parse_buffer(&L, buf, len)) < 0 || (rc = finish(db, err, errlen)) < 0)
		goto fail;
	free(buf);
	db->load_us = time_mono_us() - t0;
	*out = db;
	return 0;
fail:
	if (rc == -ENOMEM)
		(void)str_copy(err, errlen, "out of memory");
	free(buf);
	sarules_db_free(db);
	return rc;
}

int sarules_db_load_config(const struct config *cfg, struct sarules_db **out, char *err,
			   size_t errlen)
{
	char list[sizeof(cfg->scan.sa_rules)], own[PATH_MAX], cache[PATH_MAX] = "";
	const char *paths[64];
	size_t n = 0;
	char *save = NULL, *tok;
	struct stat st;

	*out = NULL;
	(void)str_copy(list, sizeof(list), cfg->scan.sa_rules);
	for (tok = strtok_r(list, ",", &save); tok && n < ARRAY_LEN(paths) - 1;
	     tok = strtok_r(NULL, ",", &save)) {
		char *e;
		while (*tok == ' ' || *tok == '\t')
			tok++;
		e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*tok)
			paths[n++] = tok;
	}
	/* our own rules: spam/ next to the YARA folder (rules/yara ->
	 * rules/spam, snapshots/rules.N/yara -> snapshots/rules.N/spam) */
	if (cfg->av.yara_rules[0]) {
		char *slash;
		(void)str_copy(own, sizeof(own), cfg->av.yara_rules);
		slash = strrchr(own, '/');
		if (slash)
			slash[1] = '\0';
		else
			own[0] = '\0';
		if (str_fmt(own + strlen(own), sizeof(own) - strlen(own), "spam") == 0 &&
		    stat(own, &st) == 0 && S_ISDIR(st.st_mode))
			paths[n++] = own;
	}
	if (!n)
		return 0;
	if (cfg->node.data_dir[0] &&
	    str_fmt(cache, sizeof(cache), "%s/cache/sarules", cfg->node.data_dir) < 0)
		cache[0] = '\0';
	return sarules_db_load_cached(paths, n, cache[0] ? cache : NULL, out, err, errlen);
}

void sarules_db_free(struct sarules_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->nrules; i++) {
		struct sar_rule *r = &db->rules[i];
		rule_clear_test(r);
		free(r->name);
		free(r->describe);
	}
	for (size_t k = 0; k < SAR_NKINDS; k++) {
		for (size_t c = 0; c < db->kinds[k].nhs; c++)
			hs_free_database(db->kinds[k].hs[c]);
		free(db->kinds[k].rules);
		free(db->kinds[k].pcre_only);
	}
	for (size_t t = 0; db->hsets && t < db->ntargets; t++) {
		for (size_t c = 0; c < db->hsets[t].nhs; c++)
			hs_free_database(db->hsets[t].hs[c]);
		free(db->hsets[t].rules);
		free(db->hsets[t].pcre_only);
	}
	for (size_t t = 0; t < db->ntargets; t++)
		free(db->targets[t].name);
	for (size_t i = 0; i < db->nreasons; i++)
		free((char *)db->reasons[i].what);
	for (size_t i = 0; i < db->nignored; i++)
		free((char *)db->ignored[i].what);
	for (size_t i = 0; i < db->nfiles; i++)
		free(db->files[i]);
	for (size_t i = 0; i < db->ntags; i++) {
		free(db->tags[i].name);
		free(db->tags[i].value);
	}
	for (size_t i = 0; i < db->nfreemail; i++)
		free(db->freemail[i]);
	free(db->freemail);
	free(db->tags);
	free(db->rstart);
	free(db->rend);
	free(db->hsets);
	free(db->targets);
	free(db->reasons);
	free(db->ignored);
	free(db->files);
	free(db->report);
	free(db->evals);
	free(db->skips);
	free(db->rules);
	free(db->hash);
	free(db);
}

size_t sarules_db_nloaded(const struct sarules_db *db)
{
	return db->nloaded;
}

size_t sarules_db_nskipped(const struct sarules_db *db)
{
	return db->nskipped;
}

size_t sarules_db_nfiles(const struct sarules_db *db)
{
	return db->nfiles;
}

size_t sarules_db_nignored(const struct sarules_db *db)
{
	return db->nignored_lines;
}

int64_t sarules_db_load_us(const struct sarules_db *db)
{
	return db->load_us;
}

void sarules_db_regex_counts(const struct sarules_db *db, size_t *exact, size_t *prefilter,
			     size_t *pcre_only)
{
	*exact = db->nexact;
	*prefilter = db->nprefilter;
	*pcre_only = db->npcre;
}

size_t sarules_db_nreasons(const struct sarules_db *db)
{
	size_t n = 0;

	for (size_t i = 0; i < db->nreasons; i++)
		if (db->reasons[i].n)
			n++;
	return n;
}

const char *sarules_db_reason(const struct sarules_db *db, size_t i, size_t *count)
{
	/* sorted by count: the non-empty ones come first */
	if (i >= db->nreasons || !db->reasons[i].n)
		return NULL;
	*count = db->reasons[i].n;
	return db->reasons[i].what;
}

size_t sarules_db_nignored_kinds(const struct sarules_db *db)
{
	return db->nignored;
}

const char *sarules_db_ignored_kind(const struct sarules_db *db, size_t i, size_t *count)
{
	if (i >= db->nignored)
		return NULL;
	*count = db->ignored[i].n;
	return db->ignored[i].what;
}

const char *sarules_db_skip(const struct sarules_db *db, size_t i, const char **reason, char *where,
			    size_t wherelen)
{
	const struct sar_rule *rule;

	if (i >= db->nskipped)
		return NULL;
	rule = &db->rules[db->skips[i]];
	*reason = rule->skip;
	if (wherelen)
		where[0] = '\0';
	if (rule->file)
		(void)str_fmt(where, wherelen, "%s:%u%s%s", rule->file, rule->line,
			      rule->detail ? ": " : "", rule->detail ? rule->detail : "");
	return rule->name;
}

const char *sarules_db_rule(const struct sarules_db *db, const char *name, double *score)
{
	int32_t r = rule_find(db, name);

	if (r < 0 || db->rules[r].skip || db->rules[r].test == SAR_T_NONE)
		return NULL;
	*score = db->rules[r].score;
	return db->rules[r].describe ? db->rules[r].describe : "";
}

static int report_json(const struct sarules_db *db, FILE *out)
{
	json_t *o = json_object(), *reasons = json_array(), *skips = json_array(),
	       *ign = json_array();
	char where[PATH_MAX + 400];
	size_t ex, pf, po, n;
	int rc = -ENOMEM;

	if (!o || !reasons || !skips || !ign)
		goto out;
	sarules_db_regex_counts(db, &ex, &pf, &po);
	for (size_t i = 0; i < db->nreasons; i++) {
		const char *r = sarules_db_reason(db, i, &n);
		if (r && json_array_append_new(reasons, json_pack("{s:s, s:I}", "reason", r,
								  "count", (json_int_t)n)) < 0)
			goto out;
	}
	for (size_t i = 0; i < db->nskipped; i++) {
		const char *why, *name = sarules_db_skip(db, i, &why, where, sizeof(where));
		if (name &&
		    json_array_append_new(skips, json_pack("{s:s, s:s, s:s}", "rule", name,
							   "reason", why, "where", where)) < 0)
			goto out;
	}
	for (size_t i = 0; i < db->nignored; i++)
		if (json_array_append_new(ign,
					  json_pack("{s:s, s:I}", "keyword", db->ignored[i].what,
						    "count", (json_int_t)db->ignored[i].n)) < 0)
			goto out;
	if (json_object_set_new(o, "files", json_integer((json_int_t)db->nfiles)) < 0 ||
	    json_object_set_new(o, "loaded", json_integer((json_int_t)db->nloaded)) < 0 ||
	    json_object_set_new(o, "skipped", json_integer((json_int_t)db->nskipped)) < 0 ||
	    json_object_set_new(o, "compile_ms", json_real((double)db->load_us / 1000.0)) < 0 ||
	    json_object_set_new(o, "regex",
				json_pack("{s:I, s:I, s:I}", "exact", (json_int_t)ex, "prefilter",
					  (json_int_t)pf, "pcre_only", (json_int_t)po)) < 0 ||
	    json_object_set(o, "skip_reasons", reasons) < 0 ||
	    json_object_set(o, "skipped_rules", skips) < 0 ||
	    json_object_set_new(o, "ignored_lines", json_integer((json_int_t)db->nignored_lines)) <
		0 ||
	    json_object_set(o, "ignored", ign) < 0)
		goto out;
	rc = json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ? -EIO : 0;
	fputc('\n', out);
out:
	json_decref(o);
	json_decref(reasons);
	json_decref(skips);
	json_decref(ign);
	return rc;
}

int sarules_db_report(const struct sarules_db *db, bool json, FILE *out)
{
	char where[PATH_MAX + 400];
	size_t ex, pf, po, n;

	if (json)
		return report_json(db, out);
	sarules_db_regex_counts(db, &ex, &pf, &po);
	fprintf(out,
		"SpamAssassin rules: %zu loaded, %zu skipped, from %zu files in %.1f s "
		"(Vectorscan exact %zu, prefilter+PCRE2 %zu, PCRE2 only %zu)\n",
		db->nloaded, db->nskipped, db->nfiles, (double)db->load_us / 1e6, ex, pf, po);
	if (db->nskipped)
		fprintf(out, "skipped, by reason:\n");
	for (size_t i = 0; i < db->nreasons; i++) {
		const char *r = sarules_db_reason(db, i, &n);
		if (r)
			fprintf(out, "  %6zu  %s\n", n, r);
	}
	/* the rules a file got wrong, one by one (file:line) */
	for (size_t i = 0; i < db->nskipped; i++) {
		const char *why, *name = sarules_db_skip(db, i, &why, where, sizeof(where));
		if (name && (!strncmp(why, "regex", 5) || strstr(why, "syntax") ||
			     !strncmp(why, "unknown", 7) || strstr(why, "modifier")))
			fprintf(out, "  %s: %s (%s)\n", name, why, where);
	}
	fprintf(out, "%zu lines ignored (no effect here)\n", db->nignored_lines);
	return ferror(out) ? -EIO : 0;
}
