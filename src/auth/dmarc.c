/* SPDX-License-Identifier: MIT */
/*
 * dmarc: DMARC verification (RFC 7489). See dmarc.h for the contract.
 *
 * The record uses the DKIM tag-list syntax (RFC 7489 6.4 refers to RFC
 * 6376 3.2), so its tags are split by dkim_tags_parse() and only the
 * values are checked here.
 */
#include "auth/dmarc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <idn2.h>
#include <libpsl.h>

#include "auth/dkim.h"

#define DMARC_QNAME_LEN (DMARC_DOMAIN_LEN + 8) /* "_dmarc." + domain */
#define DMARC_PROBLEM_LEN 160

struct dmarc_req {
	struct resolver *r;
	struct event *kick; /* delivers an outcome decided inside dmarc_check() */
	struct resolver_req *q;
	const psl_ctx_t *psl;
	int pct_draw;
	dmarc_cb cb;
	void *arg;
	bool at_org; /* the look-up in flight is at the organizational domain */
	enum spf_result spf;
	char spf_domain[DMARC_DOMAIN_LEN];
	char dkim[DMARC_MAX_DKIM][DMARC_DOMAIN_LEN];
	size_t n_dkim;
	char from[DMARC_DOMAIN_LEN];
	char org[DMARC_DOMAIN_LEN];
	char record_domain[DMARC_DOMAIN_LEN];
	char record[RESOLVER_MAX_TEXT + 1];
	char rua[RESOLVER_MAX_TEXT + 1];
	char problem[DMARC_PROBLEM_LEN];
	struct dmarc_outcome o;
};

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_NONE:
		return "none";
	case DMARC_PASS:
		return "pass";
	case DMARC_FAIL:
		return "fail";
	case DMARC_TEMPERROR:
		return "temperror";
	case DMARC_PERMERROR:
		return "permerror";
	}
	return "unknown";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_UNSET:
		return "unset";
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "unknown";
}

/* ---- record ---- */

static bool val_is(const struct dkim_tag *t, const char *v)
{
	return strlen(v) == t->vlen && !strncasecmp(t->val, v, t->vlen);
}

static int parse_policy(const struct dkim_tag *t, enum dmarc_policy *p)
{
	if (val_is(t, "none"))
		*p = DMARC_POLICY_NONE;
	else if (val_is(t, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (val_is(t, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -EINVAL;
	return 0;
}

static int parse_align(const struct dkim_tag *t, bool *strict)
{
	if (val_is(t, "r"))
		*strict = false;
	else if (val_is(t, "s"))
		*strict = true;
	else
		return -EINVAL;
	return 0;
}

static int parse_uint(const struct dkim_tag *t, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (t->vlen == 0 || t->vlen > 10)
		return -EINVAL;
	for (size_t i = 0; i < t->vlen; i++) {
		if (!isdigit((unsigned char)t->val[i]))
			return -EINVAL;
		v = v * 10 + (uint64_t)(t->val[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* A list of keywords separated by sep (WSP allowed around them), each one
 * of allowed (a NULL-terminated list, compared without case). */
static int parse_keywords(const struct dkim_tag *t, char sep, const char *const *allowed)
{
	size_t i = 0;

	for (;;) {
		size_t s, e;
		bool ok = false;

		while (i < t->vlen && (t->val[i] == ' ' || t->val[i] == '\t'))
			i++;
		s = i;
		while (i < t->vlen && t->val[i] != sep && t->val[i] != ' ' && t->val[i] != '\t')
			i++;
		e = i;
		while (i < t->vlen && (t->val[i] == ' ' || t->val[i] == '\t'))
			i++;
		for (size_t k = 0; allowed[k]; k++)
			if (strlen(allowed[k]) == e - s &&
			    !strncasecmp(t->val + s, allowed[k], e - s))
				ok = true;
		if (!ok)
			return -EINVAL;
		if (i == t->vlen)
			return 0;
		if (t->val[i] != sep)
			return -EINVAL;
		i++;
	}
}

/* dmarc-uri *(*WSP "," *WSP dmarc-uri): each a URI with a scheme
 * (RFC 3986 3.1) and something after it, an optional "!" size. Schemes
 * other than mailto are valid syntax, only unusable for reports. */
static int parse_uris(const struct dkim_tag *t)
{
	size_t i = 0;

	for (;;) {
		size_t s;

		while (i < t->vlen && (t->val[i] == ' ' || t->val[i] == '\t'))
			i++;
		s = i;
		if (i == t->vlen || !isalpha((unsigned char)t->val[i]))
			return -EINVAL;
		while (i < t->vlen && (isalnum((unsigned char)t->val[i]) || t->val[i] == '+' ||
				       t->val[i] == '-' || t->val[i] == '.'))
			i++;
		if (i == t->vlen || t->val[i] != ':' || i == s)
			return -EINVAL;
		i++;
		s = i;
		while (i < t->vlen && t->val[i] != ',' && t->val[i] != ' ' && t->val[i] != '\t')
			i++;
		if (i == s)
			return -EINVAL;
		while (i < t->vlen && (t->val[i] == ' ' || t->val[i] == '\t'))
			i++;
		if (i == t->vlen)
			return 0;
		if (t->val[i] != ',')
			return -EINVAL;
		i++;
	}
}

/* *policy_fault: the only faults are a missing or invalid p= or sp=
 * (RFC 7489 6.6.3 step 6 may still take the record as p=none). */
static int record_parse(const char *rec, size_t len, struct dmarc_record *out, bool *policy_fault)
{
	static const char *const fo_words[] = {"0", "1", "d", "s", NULL};
	static const char *const rf_words[] = {"afrf", "iodef", NULL};
	struct dkim_tags tags;
	bool bad_policy = false;
	int rc;

	*policy_fault = false;
	memset(out, 0, sizeof(*out));
	out->pct = 100;
	out->ri = 86400;
	out->rua = out->ruf = out->fo = out->rf = "";
	while (len > 0 && (*rec == ' ' || *rec == '\t')) {
		rec++;
		len--;
	}
	if (len == 0)
		return -ENODATA;
	rc = dkim_tags_parse(rec, len, &tags);
	if (rc < 0) {
		/* a broken tag list is still "not DMARC" if it does not say so */
		if (len < 1 || rec[0] != 'v')
			return -EPROTONOSUPPORT;
		return -EINVAL;
	}
	if (tags.n == 0)
		return -ENODATA;
	if (tags.t[0].nlen != 1 || tags.t[0].name[0] != 'v' || tags.t[0].vlen != 6 ||
	    memcmp(tags.t[0].val, "DMARC1", 6))
		return -EPROTONOSUPPORT;
	for (size_t i = 1; i < tags.n; i++) {
		const struct dkim_tag *t = &tags.t[i];
		uint32_t u;

#define TAG(n) (t->nlen == strlen(n) && !memcmp(t->name, n, t->nlen))
		if (TAG("v")) {
			return -EINVAL;
		} else if (TAG("p")) {
			if (parse_policy(t, &out->p) < 0)
				bad_policy = true;
		} else if (TAG("sp")) {
			if (parse_policy(t, &out->sp) < 0)
				bad_policy = true;
		} else if (TAG("adkim")) {
			if (parse_align(t, &out->adkim_strict) < 0)
				return -EINVAL;
		} else if (TAG("aspf")) {
			if (parse_align(t, &out->aspf_strict) < 0)
				return -EINVAL;
		} else if (TAG("pct")) {
			if (parse_uint(t, 100, &u) < 0)
				return -EINVAL;
			out->pct = (int)u;
		} else if (TAG("ri")) {
			if (parse_uint(t, UINT32_MAX, &out->ri) < 0)
				return -EINVAL;
		} else if (TAG("fo")) {
			if (parse_keywords(t, ':', fo_words) < 0)
				return -EINVAL;
			out->fo = t->val;
			out->fo_len = t->vlen;
		} else if (TAG("rf")) {
			if (parse_keywords(t, ':', rf_words) < 0)
				return -EINVAL;
			out->rf = t->val;
			out->rf_len = t->vlen;
		} else if (TAG("rua")) {
			if (parse_uris(t) < 0)
				return -EINVAL;
			out->rua = t->val;
			out->rua_len = t->vlen;
		} else if (TAG("ruf")) {
			if (parse_uris(t) < 0)
				return -EINVAL;
			out->ruf = t->val;
			out->ruf_len = t->vlen;
		}
		/* other tags are ignored (RFC 7489 6.3) */
#undef TAG
	}
	if (bad_policy) {
		*policy_fault = true;
		out->p = out->sp = DMARC_POLICY_UNSET;
		return -EINVAL;
	}
	if (out->p == DMARC_POLICY_UNSET) {
		*policy_fault = true;
		return -ENOENT;
	}
	return 0;
}

int dmarc_record_parse(const char *rec, size_t len, struct dmarc_record *out)
{
	bool policy_fault;

	return record_parse(rec, len, out, &policy_fault);
}

/* Does this TXT record say it is DMARC ("v" *WSP "=" *WSP "DMARC1")? */
static bool is_dmarc_record(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == len || s[i++] != 'v')
		return false;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == len || s[i++] != '=')
		return false;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (len - i < 6 || memcmp(s + i, "DMARC1", 6))
		return false;
	i += 6;
	return i == len || s[i] == ';' || s[i] == ' ' || s[i] == '\t';
}

/* ---- domains ---- */

/* Lower-cases d[0..len) without dots at either end into out; names with
 * non-ASCII bytes become A-labels (IDNA2008). */
static int domain_normalize(const char *d, size_t len, char *out, size_t outlen)
{
	bool ascii = true;
	size_t n = 0;

	while (len > 0 && d[0] == '.') {
		d++;
		len--;
	}
	while (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0)
		return -EINVAL;
	if (len >= outlen || len >= DMARC_DOMAIN_LEN)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c >= 0x80)
			ascii = false;
		else if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return -EINVAL;
		out[n++] = (char)tolower(c);
	}
	out[n] = '\0';
	if (!ascii) {
		char *a = NULL, tmp[DMARC_DOMAIN_LEN];
		int rc = 0;

		if (idn2_to_ascii_8z(out, &a, IDN2_NONTRANSITIONAL) != IDN2_OK)
			return -EINVAL;
		if (strlen(a) >= sizeof(tmp))
			rc = -ENAMETOOLONG;
		else
			memcpy(tmp, a, strlen(a) + 1);
		idn2_free(a);
		/* what IDNA maps to (a no-break space becomes a space, a soft
		 * hyphen nothing) goes through the ASCII rules again, so that
		 * normalising a normalised name gives it back unchanged */
		for (const char *p = tmp; rc == 0 && *p; p++)
			if ((unsigned char)*p >= 0x80)
				rc = -EINVAL;
		return rc < 0 ? rc : domain_normalize(tmp, strlen(tmp), out, outlen);
	}
	return 0;
}

int dmarc_org_domain(const struct psl_ctx_st *psl, const char *domain, char *out, size_t outlen)
{
	char norm[DMARC_DOMAIN_LEN];
	const char *reg;
	int rc;

	rc = domain_normalize(domain, strlen(domain), norm, sizeof(norm));
	if (rc < 0)
		goto out;
	reg = psl ? psl_registrable_domain(psl, norm) : NULL;
	if (!reg)
		reg = norm; /* a public suffix, or no list: the name itself */
	if (strlen(reg) >= outlen) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	memmove(out, reg, strlen(reg) + 1);
out:
	return rc;
}

bool dmarc_aligned(const struct psl_ctx_st *psl, const char *d1, const char *d2, bool strict)
{
	char a[DMARC_DOMAIN_LEN], b[DMARC_DOMAIN_LEN];

	if (strict) {
		if (domain_normalize(d1, strlen(d1), a, sizeof(a)) < 0 ||
		    domain_normalize(d2, strlen(d2), b, sizeof(b)) < 0)
			return false;
	} else if (dmarc_org_domain(psl, d1, a, sizeof(a)) < 0 ||
		   dmarc_org_domain(psl, d2, b, sizeof(b)) < 0) {
		return false;
	}
	return !strcmp(a, b);
}

/* ---- the From field ---- */

/* Skips a comment starting at v[i] == '(' (nested, with quoted-pairs);
 * returns the index after it. */
static size_t skip_comment(const char *v, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		if (v[i] == '\\')
			i++;
		else if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

static size_t skip_quoted(const char *v, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (v[i] == '\\')
			i++;
		else if (v[i] == '"')
			return i + 1;
	}
	return len;
}

int dmarc_from_domain(const char *value, size_t len, char *domain, size_t domlen, size_t *naddr)
{
	size_t i = 0, n = 0;
	int rc = -EINVAL;
	bool found = false;

	*naddr = 0;
	while (i <= len) {
		size_t at = SIZE_MAX;
		bool content = false;

		/* one address: up to a "," outside quotes and comments */
		while (i < len && value[i] != ',') {
			if (value[i] == '(') {
				i = skip_comment(value, len, i);
				continue;
			}
			if (value[i] == '"') {
				i = skip_quoted(value, len, i);
				content = true;
				continue;
			}
			if (value[i] == '@')
				at = i;
			if (!isspace((unsigned char)value[i]))
				content = true;
			i++;
		}
		if (content)
			n++;
		if (at != SIZE_MAX && !found) {
			size_t s = at + 1, e = s;
			while (e < i && !strchr("<>()[],;:\"\\ \t\r\n", value[e]))
				e++;
			rc = domain_normalize(value + s, e - s, domain, domlen);
			found = true;
		}
		i++; /* the "," (or past the end) */
	}
	*naddr = n;
	return found ? rc : -EINVAL;
}

/* The From fields of the header of msg: how many, and the unfolded value
 * of the first. -E2BIG if that is over DMARC_MAX_FROM. */
static int find_from(const char *msg, size_t len, char *val, size_t vallen, size_t *vlen,
		     size_t *count)
{
	size_t pos = 0, vl = 0;
	bool in_from = false;
	int rc = 0;

	*count = 0;
	while (pos < len) {
		const char *nl = memchr(msg + pos, '\n', len - pos);
		size_t eol = nl ? (size_t)(nl - msg) : len;
		size_t end = eol > pos && msg[eol - 1] == '\r' ? eol - 1 : eol;
		const char *line = msg + pos;
		size_t ll = end - pos;

		pos = eol + 1;
		if (ll == 0)
			break; /* the end of the header */
		if (line[0] == ' ' || line[0] == '\t') {
			if (!in_from)
				continue;
		} else {
			in_from = ll >= 5 && !strncasecmp(line, "from", 4);
			if (in_from) {
				size_t k = 4;
				while (k < ll && (line[k] == ' ' || line[k] == '\t'))
					k++;
				in_from = k < ll && line[k] == ':';
				if (in_from) {
					(*count)++;
					line += k + 1;
					ll -= k + 1;
				}
			}
			if (!in_from || *count > 1) {
				in_from = false;
				continue;
			}
		}
		if (vl + ll >= vallen) {
			rc = -E2BIG;
			in_from = false;
			continue;
		}
		memcpy(val + vl, line, ll);
		vl += ll;
	}
	val[vl] = '\0';
	*vlen = vl;
	return rc;
}

/* ---- the check ---- */

static void req_free(struct dmarc_req *req)
{
	if (req->q)
		resolver_cancel(req->q);
	if (req->kick)
		event_free(req->kick);
	free(req);
}

static void complete(struct dmarc_req *req)
{
	struct dmarc_outcome *o = &req->o;

	o->from_domain = req->from;
	o->org_domain = req->org;
	o->record_domain = req->record_domain;
	o->record = req->record;
	o->rua = req->rua;
	o->problem = req->problem;
	if (!o->spf_domain)
		o->spf_domain = "";
	if (!o->dkim_domain)
		o->dkim_domain = "";
	req->cb(o, req->arg);
	req_free(req);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	complete(arg);
}

static void defer(struct dmarc_req *req)
{
	event_active(req->kick, EV_TIMEOUT, 0);
}

__attribute__((format(printf, 3, 4))) static void
set_result(struct dmarc_req *req, enum dmarc_result res, const char *fmt, ...)
{
	va_list ap;

	req->o.result = res;
	va_start(ap, fmt);
	vsnprintf(req->problem, sizeof(req->problem), fmt, ap);
	va_end(ap);
}

static enum dmarc_policy weaker(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

/* The record rec was found at req->record_domain: align and decide. */
static void evaluate(struct dmarc_req *req, const char *rec, size_t len)
{
	struct dmarc_outcome *o = &req->o;
	struct dmarc_record dr;
	bool policy_fault;
	int rc;

	if (len > RESOLVER_MAX_TEXT)
		len = RESOLVER_MAX_TEXT; /* the resolver's bound; kept for safety */
	memcpy(req->record, rec, len);
	req->record[len] = '\0';
	rc = record_parse(req->record, len, &dr, &policy_fault);
	if (rc < 0 && !(policy_fault && dr.rua_len > 0)) {
		set_result(req, DMARC_NONE, "invalid DMARC record at _dmarc.%s",
			   req->record_domain);
		return;
	}
	if (rc < 0) {
		/* RFC 7489 6.6.3 step 6: with a valid rua, act as p=none */
		dr.p = DMARC_POLICY_NONE;
		dr.sp = DMARC_POLICY_UNSET;
	}
	memcpy(req->rua, dr.rua, dr.rua_len);
	req->rua[dr.rua_len] = '\0';
	o->adkim_strict = dr.adkim_strict;
	o->aspf_strict = dr.aspf_strict;
	o->pct = dr.pct;
	o->policy = req->at_org && dr.sp != DMARC_POLICY_UNSET ? dr.sp : dr.p;
	if (req->spf == SPF_PASS && req->spf_domain[0] &&
	    dmarc_aligned(req->psl, req->from, req->spf_domain, dr.aspf_strict)) {
		o->spf_aligned = true;
		o->spf_domain = req->spf_domain;
	}
	for (size_t i = 0; i < req->n_dkim; i++) {
		if (dmarc_aligned(req->psl, req->from, req->dkim[i], dr.adkim_strict)) {
			o->dkim_aligned = true;
			o->dkim_domain = req->dkim[i];
			break;
		}
	}
	if (o->spf_aligned || o->dkim_aligned) {
		o->result = DMARC_PASS;
		o->disposition = DMARC_POLICY_NONE;
		return;
	}
	o->result = DMARC_FAIL;
	o->disposition = o->policy;
	if (dr.pct < 100) {
		int draw = req->pct_draw >= 1 && req->pct_draw <= 100
			       ? req->pct_draw
			       : 1 + (int)arc4random_uniform(100);
		if (draw > dr.pct) {
			o->sampled_out = true;
			o->disposition = weaker(o->policy);
		}
	}
}

static void on_txt(const struct resolver_result *res, void *arg);

static int query(struct dmarc_req *req, const char *domain)
{
	char qname[DMARC_QNAME_LEN];
	int n;

	n = snprintf(qname, sizeof(qname), "_dmarc.%s", domain);
	if (n < 0 || (size_t)n >= sizeof(qname) || n > 253)
		return -ENAMETOOLONG;
	snprintf(req->record_domain, sizeof(req->record_domain), "%s", domain);
	return resolver_query(req->r, qname, RESOLVER_TXT, on_txt, req, &req->q);
}

/* Nothing at the From domain: the organizational domain, if another. */
static bool try_org(struct dmarc_req *req)
{
	if (req->at_org || !strcmp(req->org, req->from))
		return false;
	req->at_org = true;
	return query(req, req->org) == 0;
}

static void on_txt(const struct resolver_result *res, void *arg)
{
	struct dmarc_req *req = arg;
	size_t found = 0, which = 0;

	req->q = NULL;
	if (res->status == RESOLVER_TEMPFAIL) {
		set_result(req, DMARC_TEMPERROR, "DNS: _dmarc.%s: %s", req->record_domain,
			   res->why ? res->why : "temporary failure");
		goto out;
	}
	if (res->status == RESOLVER_OK) {
		for (size_t i = 0; i < res->n; i++) {
			if (is_dmarc_record(res->rr[i].text, res->rr[i].len)) {
				found++;
				which = i;
			}
		}
	}
	if (found > 1) {
		set_result(req, DMARC_NONE, "%zu DMARC records at _dmarc.%s", found,
			   req->record_domain);
		goto out;
	}
	if (found == 1) {
		evaluate(req, res->rr[which].text, res->rr[which].len);
		goto out;
	}
	if (try_org(req))
		return;
	req->record_domain[0] = '\0';
	set_result(req, DMARC_NONE, "no DMARC record");
out:
	complete(req);
}

int dmarc_check(struct resolver *r, const struct dmarc_opts *opts, const char *msg, size_t len,
		const struct dmarc_auth *auth, dmarc_cb cb, void *arg, struct dmarc_req **out)
{
	struct dmarc_req *req = NULL;
	char *from = NULL;
	size_t vlen, nfrom, naddr;
	int rc;

	if (!r || !opts || !opts->psl || !cb || (!msg && len) || !auth ||
	    (auth->n_dkim && !auth->dkim))
		return -EINVAL;
	req = calloc(1, sizeof(*req));
	from = malloc(DMARC_MAX_FROM + 1);
	if (!req || !from) {
		rc = -ENOMEM;
		goto out;
	}
	req->r = r;
	req->psl = (const psl_ctx_t *)opts->psl;
	req->pct_draw = opts->pct_draw;
	req->cb = cb;
	req->arg = arg;
	req->spf = auth->spf;
	req->kick = event_new(resolver_event_base(r), -1, 0, on_kick, req);
	if (!req->kick) {
		rc = -ENOMEM;
		goto out;
	}
	if (auth->spf_domain && domain_normalize(auth->spf_domain, strlen(auth->spf_domain),
						 req->spf_domain, sizeof(req->spf_domain)) < 0)
		req->spf_domain[0] = '\0';
	for (size_t i = 0; i < auth->n_dkim && req->n_dkim < DMARC_MAX_DKIM; i++)
		if (auth->dkim[i] &&
		    domain_normalize(auth->dkim[i], strlen(auth->dkim[i]), req->dkim[req->n_dkim],
				     DMARC_DOMAIN_LEN) == 0)
			req->n_dkim++;

	rc = find_from(msg ? msg : "", len, from, DMARC_MAX_FROM + 1, &vlen, &nfrom);
	if (nfrom != 1) {
		set_result(req, DMARC_PERMERROR, "%zu From fields", nfrom);
	} else if (rc < 0) {
		set_result(req, DMARC_PERMERROR, "From field too long");
	} else if ((rc = dmarc_from_domain(from, vlen, req->from, sizeof(req->from), &naddr)) < 0) {
		set_result(req, DMARC_PERMERROR, "no usable domain in the From field");
		req->from[0] = '\0';
	} else if (naddr != 1) {
		set_result(req, DMARC_PERMERROR, "%zu addresses in the From field", naddr);
	} else if (dmarc_org_domain(req->psl, req->from, req->org, sizeof(req->org)) < 0) {
		set_result(req, DMARC_PERMERROR, "bad From domain");
	} else if (query(req, req->from) < 0 && !try_org(req)) {
		set_result(req, DMARC_NONE, "From domain too long to look up");
	} else {
		req->problem[0] = '\0';
	}
	rc = 0;
	if (!req->q)
		defer(req);
	if (out)
		*out = req;
	req = NULL;
out:
	free(from);
	if (req)
		req_free(req);
	return rc;
}

void dmarc_cancel(struct dmarc_req *req)
{
	if (req)
		req_free(req);
}
