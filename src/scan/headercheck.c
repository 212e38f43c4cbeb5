/* SPDX-License-Identifier: MIT */
#include "scan/headercheck.h"

#include <errno.h>
#include <libpsl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan/urlcheck.h"

/* ---- scores: one table ------------------------------------------------- */

enum hdr_sym {
	HS_DATE_MISSING,
	HS_DATE_INVALID,
	HS_DATE_FUTURE,
	HS_DATE_PAST,
	HS_MSGID_MISSING,
	HS_MSGID_INVALID,
	HS_MSGID_NOT_FQDN,
	HS_MSGID_RCPT_DOMAIN,
	HS_FROM_MISSING,
	HS_FROM_MULTIPLE,
	HS_FROM_INVALID,
	HS_FROM_NAME_ADDR,
	HS_RCVD_FORGED_LOCAL,
	HS_RCVD_BAD_DATE,
	HS_RCVD_TIME_ORDER,
	HS_COUNT,
};

/* Default scores, set moderately from how many sa ham and spam messages
 * each fires on (`test_urlcheck --figures ../shared/corpus/sa`; 2,075 ham,
 * 948 spam). Symbols that never fired there are scored from what they mean. */
static const struct {
	const char *name;
	double score;
} hdr_syms[HS_COUNT] = {
    [HS_DATE_MISSING] = {"HDR_DATE_MISSING", 1.0},
    [HS_DATE_INVALID] = {"HDR_DATE_INVALID", 2.0}, /* 0.05% ham, 9.7% spam */
    [HS_DATE_FUTURE] = {"HDR_DATE_FUTURE", 2.0},   /* 0.05% ham, 6.3% spam */
    /* 4.8% ham, 4.4% spam in sa, but only because archived messages without
     * Received fields are judged against today's clock */
    [HS_DATE_PAST] = {"HDR_DATE_PAST", 0.5},
    [HS_MSGID_MISSING] = {"HDR_MSGID_MISSING", 1.0},
    [HS_MSGID_INVALID] = {"HDR_MSGID_INVALID", 1.5},	     /* 0.05% ham, 3.8% spam */
    [HS_MSGID_NOT_FQDN] = {"HDR_MSGID_NOT_FQDN", 0.1},	     /* 13% ham, 15% spam */
    [HS_MSGID_RCPT_DOMAIN] = {"HDR_MSGID_RCPT_DOMAIN", 2.0}, /* 0.4% ham, 11% spam */
    [HS_FROM_MISSING] = {"HDR_FROM_MISSING", 2.0},
    [HS_FROM_MULTIPLE] = {"HDR_FROM_MULTIPLE", 1.5}, /* 0 ham, 0.2% spam */
    [HS_FROM_INVALID] = {"HDR_FROM_INVALID", 2.0},   /* 0 ham, 0.4% spam */
    /* 0.1% ham (privacy relays), 0.1% spam; the CEO-fraud pattern */
    [HS_FROM_NAME_ADDR] = {"HDR_FROM_NAME_ADDR", 2.0},
    [HS_RCVD_FORGED_LOCAL] = {"HDR_RCVD_FORGED_LOCAL", 3.0}, /* needs the envelope */
    [HS_RCVD_BAD_DATE] = {"HDR_RCVD_BAD_DATE", 0.5},	     /* 2.4% ham, 7.1% spam */
    [HS_RCVD_TIME_ORDER] = {"HDR_RCVD_TIME_ORDER", 1.0},     /* 0.2% ham, 2.0% spam */
};

#define HDR_FUTURE_S (12 * 3600)     /* Date ahead of the top Received */
#define HDR_PAST_S (7 * 86400)	     /* Date behind the top Received */
#define HDR_RCVD_FUTURE_S 86400	     /* a Received time ahead of now */
#define HDR_RCVD_ORDER_S (12 * 3600) /* an earlier hop later than a later one */
#define HDR_MAX_RECEIVED 64	     /* Received fields looked at */
#define HDR_ADDR_LEN 320
#define HDR_MAX_ADDRS 16

/* ---- dates ------------------------------------------------------------------ */

struct cur {
	const char *s, *e;
};

/* Skips white space and (nested) comments. */
static void cfws(struct cur *c)
{
	while (c->s < c->e) {
		if (*c->s == ' ' || *c->s == '\t' || *c->s == '\r' || *c->s == '\n') {
			c->s++;
		} else if (*c->s == '(') {
			int depth = 0;
			while (c->s < c->e) {
				if (*c->s == '\\' && c->s + 1 < c->e)
					c->s++;
				else if (*c->s == '(')
					depth++;
				else if (*c->s == ')' && --depth == 0) {
					c->s++;
					break;
				}
				c->s++;
			}
		} else {
			return;
		}
	}
}

static int digits(struct cur *c, int min, int max, int *v)
{
	int n = 0;

	*v = 0;
	while (c->s < c->e && *c->s >= '0' && *c->s <= '9' && n < max) {
		*v = *v * 10 + (*c->s - '0');
		c->s++;
		n++;
	}
	if (c->s < c->e && *c->s >= '0' && *c->s <= '9')
		return -1; /* too many digits */
	return n >= min ? n : -1;
}

static size_t alpha(struct cur *c, char *w, size_t wl)
{
	size_t n = 0;

	while (c->s < c->e && ((*c->s | 0x20) >= 'a' && (*c->s | 0x20) <= 'z')) {
		if (n + 1 < wl)
			w[n] = (char)(*c->s | 0x20);
		n++;
		c->s++;
	}
	w[n < wl ? n : wl - 1] = '\0';
	return n;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int mdays(int y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

int headercheck_parse_date(const char *s, size_t n, int64_t *out)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const struct {
		const char *name;
		int off;
	} zones[] = {
	    {"ut", 0},	   {"utc", 0},	  {"gmt", 0},	 {"z", 0},
	    {"est", -300}, {"edt", -240}, {"cst", -360}, {"cdt", -300},
	    {"mst", -420}, {"mdt", -360}, {"pst", -480}, {"pdt", -420},
	};
	struct cur c = {s, s + n};
	char w[16];
	int day, year, hh, mm, ss = 0, mon = 0, nd, off = 0;
	const char *save;

	cfws(&c);
	save = c.s;
	if (alpha(&c, w, sizeof(w)) > 0) { /* day of the week */
		cfws(&c);
		if (c.s < c.e && *c.s == ',')
			c.s++;
		cfws(&c);
	} else {
		c.s = save;
	}
	if (digits(&c, 1, 2, &day) < 0)
		return -EINVAL;
	cfws(&c);
	if (c.s < c.e && *c.s == '-') /* "1-Jan-2024" (seen in the wild) */
		c.s++;
	if (alpha(&c, w, sizeof(w)) < 3)
		return -EINVAL;
	for (int i = 0; i < 12; i++)
		if (!strncmp(w, months + 3 * i, 3))
			mon = i + 1;
	if (!mon)
		return -EINVAL;
	cfws(&c);
	if (c.s < c.e && *c.s == '-')
		c.s++;
	if ((nd = digits(&c, 2, 4, &year)) < 0)
		return -EINVAL;
	if (nd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (nd == 3)
		year += 1900;
	cfws(&c);
	if (digits(&c, 1, 2, &hh) < 0 || c.s >= c.e || *c.s++ != ':')
		return -EINVAL;
	cfws(&c);
	if (digits(&c, 2, 2, &mm) < 0)
		return -EINVAL;
	cfws(&c);
	if (c.s < c.e && *c.s == ':') {
		c.s++;
		cfws(&c);
		if (digits(&c, 2, 2, &ss) < 0)
			return -EINVAL;
	}
	cfws(&c);
	if (c.s < c.e && (*c.s == '+' || *c.s == '-')) {
		int sign = *c.s++ == '-' ? -1 : 1, z;
		if (digits(&c, 4, 4, &z) < 0 || z % 100 > 59)
			return -EINVAL;
		off = sign * (z / 100 * 60 + z % 100);
	} else if (alpha(&c, w, sizeof(w)) > 0) {
		bool known = false;
		for (size_t i = 0; i < ARRAY_LEN(zones); i++)
			if (!strcmp(w, zones[i].name)) {
				off = zones[i].off;
				known = true;
			}
		/* military letters and the zone names of the wild (BST, CEST...)
		 * read as -0000, as RFC 5322 4.3 says of unknown zones */
		if (!known && strlen(w) > 5)
			return -EINVAL;
	} else {
		return -EINVAL; /* a zone is required */
	}
	cfws(&c);
	if (c.s != c.e)
		return -EINVAL;
	if (day < 1 || day > mdays(year, mon) || hh > 23 || mm > 59 || ss > 60 || year < 1900 ||
	    year > 9999)
		return -EINVAL;
	*out = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss - off * 60;
	return 0;
}

/* ---- Received --------------------------------------------------------------- */

/* The token after the word kw ("from", "by") at a word boundary,
 * outside comments. */
static void word_after(const char *s, size_t n, const char *kw, char *out, size_t outlen)
{
	size_t kl = strlen(kw), depth = 0;

	out[0] = '\0';
	for (size_t i = 0; i + kl < n; i++) {
		if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && depth)
			depth--;
		else if (s[i] == ';' && !depth)
			return;
		if (depth || strncasecmp(s + i, kw, kl) != 0 ||
		    (i > 0 && s[i - 1] != ' ' && s[i - 1] != '\t' && s[i - 1] != '\n' &&
		     s[i - 1] != ')') ||
		    (s[i + kl] != ' ' && s[i + kl] != '\t' && s[i + kl] != '\r' &&
		     s[i + kl] != '\n'))
			continue;
		i += kl;
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
			i++;
		size_t o = 0;
		while (i < n && o + 1 < outlen && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' &&
		       s[i] != '\n' && s[i] != '(' && s[i] != ';') {
			char c = s[i++];
			out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		while (o && out[o - 1] == '.')
			o--;
		out[o] = '\0';
		return;
	}
}

int headercheck_parse_received(const char *s, size_t n, char *from, size_t fromlen, char *by,
			       size_t bylen, int64_t *t)
{
	const char *semi = NULL;

	word_after(s, n, "from", from, fromlen);
	word_after(s, n, "by", by, bylen);
	for (size_t i = n; i > 0; i--)
		if (s[i - 1] == ';') {
			semi = s + i;
			break;
		}
	if (!semi)
		return -EINVAL;
	return headercheck_parse_date(semi, (size_t)(s + n - semi), t);
}

/* ---- addresses -------------------------------------------------------------- */

struct addr {
	char addr[HDR_ADDR_LEN]; /* lower case */
	char name[HDR_ADDR_LEN]; /* display name, quotes removed */
};

static bool addr_valid(const char *a)
{
	const char *at = strrchr(a, '@'), *d;

	if (!at || at == a || !at[1])
		return false;
	for (const char *p = a; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',')
			return false;
	d = at + 1;
	if (*d == '[')
		return d[strlen(d) - 1] == ']';
	if (!strchr(d, '.') || *d == '.' || d[strlen(d) - 1] == '.' || strstr(d, ".."))
		return false;
	for (const char *p = d; *p; p++)
		if (!((unsigned char)*p >= 0x80 || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
			return false;
	return true;
}

static void put(char *dst, size_t dstlen, size_t *o, char c)
{
	if (*o + 1 < dstlen)
		dst[(*o)++] = c;
}

static void trim_copy(char *dst, size_t dstlen, const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '"' || *s == '\'')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '"' || s[n - 1] == '\''))
		n--;
	(void)str_copyn(dst, dstlen, s, n);
}

/* Splits an address list (RFC 5322 3.4, lenient) into addresses. Returns
 * how many mailboxes were found; *bad counts entries that did not parse. */
static size_t parse_addrs(const char *s, size_t n, struct addr *out, size_t max, size_t *bad)
{
	size_t count = 0, i = 0;

	*bad = 0;
	while (i < n) {
		char name[HDR_ADDR_LEN], bare[HDR_ADDR_LEN], angle[HDR_ADDR_LEN];
		size_t no = 0, bo = 0, ao = 0;
		bool in_q = false, in_angle = false, had_angle = false, any = false;
		int depth = 0;

		for (; i < n; i++) {
			char c = s[i];
			if (in_q) {
				if (c == '\\' && i + 1 < n)
					c = s[++i];
				else if (c == '"') {
					in_q = false;
					continue;
				}
				put(name, sizeof(name), &no, c);
				continue;
			}
			if (depth) {
				if (c == '(')
					depth++;
				else if (c == ')')
					depth--;
				else if (!had_angle)
					put(name, sizeof(name), &no, c); /* "a@b (Name)" */
				continue;
			}
			if (c == '"') {
				in_q = true;
				any = true;
			} else if (c == '(') {
				depth = 1;
			} else if (c == '<' && !in_angle) {
				in_angle = had_angle = true;
				ao = 0;
			} else if (c == '>' && in_angle) {
				in_angle = false;
			} else if (in_angle) {
				if (c != ' ' && c != '\t')
					put(angle, sizeof(angle), &ao, c);
			} else if (c == ',' || c == ';') {
				i++;
				break;
			} else if (c == ':') {
				no = bo = 0; /* a group's name */
				any = false;
			} else {
				if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
					put(bare, sizeof(bare), &bo, c);
					any = true;
				}
				if (!had_angle)
					put(name, sizeof(name), &no, c);
			}
		}
		name[no] = bare[bo] = angle[ao] = '\0';
		if (!had_angle && !any)
			continue; /* empty entry */
		if (count == max)
			return count;
		struct addr *a = &out[count];
		(void)str_copy(a->addr, sizeof(a->addr), had_angle ? angle : bare);
		str_lower_ascii(a->addr);
		if (had_angle)
			trim_copy(a->name, sizeof(a->name), name, no);
		else {
			/* "a@b (Name)": the comment was gathered into name after the address */
			const char *p = strstr(name, bare);
			a->name[0] = '\0';
			if (p && strlen(p) > bo)
				trim_copy(a->name, sizeof(a->name), p + bo, strlen(p + bo));
		}
		if (!addr_valid(a->addr)) {
			(*bad)++;
			continue;
		}
		count++;
	}
	return count;
}

/* An e-mail address inside a display name ("ceo@customer.example via
 * Mail"): its domain, lower case, into dom. */
static bool name_address(const char *name, char *full, size_t fulllen, char *dom, size_t domlen)
{
	const char *at = strchr(name, '@');

	while (at) {
		const char *l = at, *r = at + 1;
		size_t o = 0;

		while (l > name && l[-1] != ' ' && l[-1] != '<' && l[-1] != '(' && l[-1] != '"' &&
		       l[-1] != '\'')
			l--;
		while (*r && ((*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') ||
			      (*r >= '0' && *r <= '9') || *r == '-' || *r == '.'))
			put(dom, domlen, &o, (char)((*r >= 'A' && *r <= 'Z') ? *r + 32 : *r)), r++;
		while (o && dom[o - 1] == '.')
			o--;
		dom[o] = '\0';
		if (l < at && o && strchr(dom, '.') && dom[0] != '.') {
			(void)str_fmt(full, fulllen, "%.*s@%s", (int)(at - l), l, dom);
			return true;
		}
		at = strchr(at + 1, '@');
	}
	return false;
}

static void reg_or_self(const struct psl_ctx_st *psl, const char *d, char *out, size_t outlen)
{
	if (!psl || urlcheck_registrable(psl, d, out, outlen) < 0)
		(void)str_copy(out, outlen, d);
}

static bool under(const char *host, const char *dom)
{
	size_t h = strlen(host), d = strlen(dom);

	return d && h >= d && !strcasecmp(host + h - d, dom) && (h == d || host[h - d - 1] == '.');
}

/* ---- the scan --------------------------------------------------------------- */

struct hc {
	headercheck_emit_fn emit;
	void *arg;
	size_t n;
	bool fired[HS_COUNT];
};

static void emitf(struct hc *h, enum hdr_sym s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void emitf(struct hc *h, enum hdr_sym s, const char *fmt, ...)
{
	char d[SCAN_DETAIL_LEN];
	va_list ap;

	if (h->fired[s])
		return;
	h->fired[s] = true;
	va_start(ap, fmt);
	(void)vsnprintf(d, sizeof(d), fmt, ap);
	va_end(ap);
	for (char *p = d; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	h->emit(h->arg, hdr_syms[s].name, hdr_syms[s].score, d);
	h->n++;
}

static bool name_is(const struct mime_header *h, const char *n)
{
	return h->name.len == strlen(n) && !strncasecmp(h->name.ptr, n, h->name.len);
}

/* A printable, bounded copy of a slice for details. */
static const char *shown(char *buf, size_t len, struct mime_slice s)
{
	size_t n = s.len < 120 ? s.len : 120;

	while (n && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
		s.ptr++;
		n--;
	}
	(void)str_copyn(buf, len, s.ptr, n);
	return buf;
}

static void check_received(struct hc *h, const struct mime_part *root,
			   const struct headercheck_env *env, char rdoms[][URLCHECK_DOMAIN_LEN],
			   size_t nr, int64_t *top_time)
{
	size_t seen = 0;
	int64_t later = 0;
	bool have_later = false;
	char buf[128];

	*top_time = 0;
	for (size_t i = 0; i < root->nheaders && seen < HDR_MAX_RECEIVED; i++) {
		const struct mime_header *hd = &root->headers[i];
		char from[256], by[256];
		int64_t t;
		int rc;

		if (!name_is(hd, "Received"))
			continue;
		rc = headercheck_parse_received(hd->value.ptr, hd->value.len, from, sizeof(from),
						by, sizeof(by), &t);
		if (seen == 0) {
			const char *claim = NULL;

			if (env->helo && env->helo[0]) {
				const char *names[2] = {by, from};
				for (int k = 0; k < 2 && !claim; k++) {
					if (!names[k][0])
						continue;
					if (env->hostname && env->hostname[0] &&
					    !strcasecmp(names[k], env->hostname) &&
					    strcasecmp(env->helo, env->hostname) != 0)
						claim = env->hostname;
					for (size_t r = 0; r < nr && !claim; r++)
						if (under(names[k], rdoms[r]) &&
						    !under(env->helo, rdoms[r]))
							claim = rdoms[r];
				}
			}
			if (claim)
				emitf(h, HS_RCVD_FORGED_LOCAL, "claims %s, client HELO %.64s: %s",
				      claim, env->helo, shown(buf, sizeof(buf), hd->value));
		}
		seen++;
		if (rc == 0 && !*top_time)
			*top_time = t; /* the latest hop with a valid time */
		if (rc < 0) {
			emitf(h, HS_RCVD_BAD_DATE, "no valid time: %s",
			      shown(buf, sizeof(buf), hd->value));
			continue;
		}
		if (t > env->now + HDR_RCVD_FUTURE_S)
			emitf(h, HS_RCVD_BAD_DATE, "in the future: %s",
			      shown(buf, sizeof(buf), hd->value));
		/* headers above are later hops: this one must not be much later */
		if (have_later && t > later + HDR_RCVD_ORDER_S)
			emitf(h, HS_RCVD_TIME_ORDER, "%lld s after the hop above: %s",
			      (long long)(t - later), shown(buf, sizeof(buf), hd->value));
		later = t;
		have_later = true;
	}
}

size_t headercheck_scan(const struct psl_ctx_st *psl, const struct mime_msg *m,
			const struct headercheck_env *env, headercheck_emit_fn emit, void *arg)
{
	const struct mime_part *root = mime_msg_root(m);
	struct hc h = {.emit = emit, .arg = arg};
	char rdoms[8][URLCHECK_DOMAIN_LEN], buf[128], from_reg[URLCHECK_DOMAIN_LEN] = "";
	const struct mime_header *date = NULL, *mid = NULL, *from = NULL;
	size_t nr = 0, nfrom = 0;
	int64_t top = 0, t;

	for (size_t i = 0; i < env->nrcpts && nr < ARRAY_LEN(rdoms); i++) {
		const char *at = env->rcpts[i] ? strrchr(env->rcpts[i], '@') : NULL;
		char d[URLCHECK_DOMAIN_LEN];
		bool dup = false;

		if (!at || !at[1])
			continue;
		(void)str_copy(d, sizeof(d), at + 1);
		str_lower_ascii(d);
		reg_or_self(psl, d, rdoms[nr], sizeof(rdoms[nr]));
		for (size_t k = 0; k < nr; k++)
			dup = dup || !strcmp(rdoms[k], rdoms[nr]);
		if (!dup)
			nr++;
	}
	for (size_t i = 0; i < root->nheaders; i++) {
		const struct mime_header *hd = &root->headers[i];
		if (name_is(hd, "Date") && !date)
			date = hd;
		else if (name_is(hd, "Message-ID") && !mid)
			mid = hd;
		else if (name_is(hd, "From")) {
			if (!from)
				from = hd;
			nfrom++;
		}
	}
	check_received(&h, root, env, rdoms, nr, &top);

	/* From */
	if (!from) {
		emitf(&h, HS_FROM_MISSING, "no From field");
	} else {
		struct addr a[HDR_MAX_ADDRS];
		size_t bad,
		    n = parse_addrs(from->value.ptr, from->value.len, a, HDR_MAX_ADDRS, &bad);

		if (nfrom > 1)
			emitf(&h, HS_FROM_MULTIPLE, "%zu From fields", nfrom);
		else if (n > 1)
			emitf(&h, HS_FROM_MULTIPLE, "%zu addresses: %s", n,
			      shown(buf, sizeof(buf), from->value));
		if (n == 0) {
			emitf(&h, HS_FROM_INVALID, "%s", shown(buf, sizeof(buf), from->value));
		} else {
			char nd[URLCHECK_DOMAIN_LEN], nreg[URLCHECK_DOMAIN_LEN], na[HDR_ADDR_LEN];
			const char *dom = strrchr(a[0].addr, '@') + 1;

			reg_or_self(psl, dom, from_reg, sizeof(from_reg));
			if (name_address(a[0].name, na, sizeof(na), nd, sizeof(nd))) {
				reg_or_self(psl, nd, nreg, sizeof(nreg));
				if (strcmp(nreg, from_reg) != 0)
					emitf(&h, HS_FROM_NAME_ADDR,
					      "name shows %.100s, address %.100s", na, a[0].addr);
			}
		}
	}

	/* Date */
	if (!date) {
		emitf(&h, HS_DATE_MISSING, "no Date field");
	} else if (headercheck_parse_date(date->value.ptr, date->value.len, &t) < 0) {
		emitf(&h, HS_DATE_INVALID, "%s", shown(buf, sizeof(buf), date->value));
	} else {
		int64_t ref = top ? top : env->now;
		if (t > ref + HDR_FUTURE_S)
			emitf(&h, HS_DATE_FUTURE, "%lld h ahead: %s", (long long)((t - ref) / 3600),
			      shown(buf, sizeof(buf), date->value));
		else if (t < ref - HDR_PAST_S)
			emitf(&h, HS_DATE_PAST, "%lld days behind: %s",
			      (long long)((ref - t) / 86400), shown(buf, sizeof(buf), date->value));
	}

	/* Message-ID */
	if (!mid) {
		emitf(&h, HS_MSGID_MISSING, "no Message-ID field");
	} else {
		const char *s = mid->value.ptr, *e = s + mid->value.len, *at;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
			e--;
		at = s < e ? memchr(s, '@', (size_t)(e - s)) : NULL;
		bool ok = e - s >= 5 && *s == '<' && e[-1] == '>' && at && at > s + 1 &&
			  at < e - 2 && !memchr(s + 1, '<', (size_t)(e - s - 1)) &&
			  !memchr(at + 1, '@', (size_t)(e - at - 1));
		for (const char *p = s; ok && p < e; p++)
			if ((unsigned char)*p <= ' ')
				ok = false;
		if (!ok) {
			emitf(&h, HS_MSGID_INVALID, "%s", shown(buf, sizeof(buf), mid->value));
		} else {
			char rhs[URLCHECK_DOMAIN_LEN], rreg[URLCHECK_DOMAIN_LEN];
			(void)str_copyn(rhs, sizeof(rhs), at + 1, (size_t)(e - 1 - (at + 1)));
			str_lower_ascii(rhs);
			if (rhs[0] != '[' && (!strchr(rhs, '.') || under(rhs, "localhost") ||
					      under(rhs, "localdomain")))
				emitf(&h, HS_MSGID_NOT_FQDN, "%s",
				      shown(buf, sizeof(buf), mid->value));
			reg_or_self(psl, rhs, rreg, sizeof(rreg));
			for (size_t r = 0; r < nr; r++)
				if (!strcmp(rreg, rdoms[r]) && strcmp(from_reg, rdoms[r]) != 0) {
					emitf(&h, HS_MSGID_RCPT_DOMAIN, "%s, From %s",
					      shown(buf, sizeof(buf), mid->value),
					      from_reg[0] ? from_reg : "-");
					break;
				}
		}
	}
	return h.n;
}

/* ---- the pipeline check ----------------------------------------------------- */

struct headercheck_state {
	const struct config *cfg;
	psl_ctx_t *psl;
};

static int headercheck_thread_init(const struct config *cfg, struct metrics *m, void **state,
				   char *err, size_t errlen)
{
	struct headercheck_state *s = calloc(1, sizeof(*s));

	(void)m;
	if (!s || !(s->psl = psl_latest(NULL))) {
		free(s);
		(void)str_copy(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cfg = cfg;
	*state = s;
	return 0;
}

static void headercheck_thread_free(void *state)
{
	struct headercheck_state *s = state;

	if (!s)
		return;
	psl_free(s->psl);
	free(s);
}

static void emit_ctx(void *arg, const char *symbol, double score, const char *detail)
{
	scan_ctx_symbol(arg, symbol, score, "%s", detail);
}

static void headercheck_run(void *state, struct scan_ctx *ctx)
{
	struct headercheck_state *s = state;
	const struct scan_request *req = scan_ctx_request(ctx);
	struct headercheck_env env = {
	    .rcpts = req->rcpts,
	    .nrcpts = req->nrcpts,
	    .helo = req->helo,
	    .hostname = s->cfg->node.hostname,
	    .now = time_now(),
	};

	(void)headercheck_scan(s->psl, scan_ctx_mime(ctx), &env, emit_ctx, ctx);
}

const struct scan_check headercheck_check = {
    .name = "headercheck",
    .thread_init = headercheck_thread_init,
    .thread_free = headercheck_thread_free,
    .run = headercheck_run,
};
