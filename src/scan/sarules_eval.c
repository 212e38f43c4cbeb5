/* SPDX-License-Identifier: MIT */
/*
 * sarules_eval.c: SpamAssassin's eval: tests, natively. Only the ones
 * the shipped rules use most, and only what can be computed from the
 * message alone (network and list lookups are skipped by the loader).
 * Each follows the plugin it comes from (HeaderEval, BodyEval, MIMEEval,
 * FreeMail, ImageInfo) as documented; approximations are noted.
 */
#include "scan/sarules_private.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*sar_eval_fn)(struct sarules_scanner *s, const struct sar_rule *r);

struct sar_eval {
	const char *name;
	unsigned kinds; /* 1 << enum sar_kind */
	int minargs, maxargs;
	sar_eval_fn fn;
};

#define K(k) (1u << (k))

static bool arg_num(const struct sar_rule *r, int i, double *out)
{
	char *end;

	if (i >= r->nargs || !strcmp(r->args[i], "undef") || !r->args[i][0])
		return false;
	*out = strtod(r->args[i], &end);
	return *end == '\0';
}

static const struct mime_part *root(const struct sarules_scanner *s)
{
	return mime_msg_root(s->msg);
}

/* ---- HeaderEval ---------------------------------------------------------------- */

/* check_header_count_range(header, min, max): the field appears min..max times. */
static int ev_header_count_range(struct sarules_scanner *s, const struct sar_rule *r)
{
	const struct mime_part *p = root(s);
	double min = 0, max = 1e18;
	size_t n = 0, nl = strlen(r->args[0]);

	(void)arg_num(r, 1, &min);
	(void)arg_num(r, 2, &max);
	for (size_t i = 0; p && i < p->nheaders; i++)
		if (p->headers[i].name.len == nl &&
		    !strncasecmp(p->headers[i].name.ptr, r->args[0], nl))
			n++;
	return n >= min && n <= max;
}

/* subject_is_all_caps: a Subject of at least 2 words (and 10 letters)
 * with no lower-case letter. */
static int ev_subject_all_caps(struct sarules_scanner *s, const struct sar_rule *r)
{
	bool found;
	size_t letters = 0, words = 0;
	bool in_word = false;

	(void)r;
	if (sar_header_text(s, "Subject", SAR_HM_DECODED, &s->tmp, &found) < 0 || !found)
		return 0;
	for (size_t i = 0; i < s->tmp.len; i++) {
		unsigned char c = (unsigned char)s->tmp.p[i];
		if (islower(c))
			return 0;
		if (isupper(c))
			letters++;
		if (isalpha(c) && !in_word)
			words++;
		in_word = isalpha(c);
	}
	return words >= 2 && letters >= 10;
}

/* check_illegal_chars(header, ratio, count): bytes 0x80-0xff in the raw
 * field (ALL: every field but Subject and From, as SpamAssassin does). */
static int ev_illegal_chars(struct sarules_scanner *s, const struct sar_rule *r)
{
	const struct mime_part *p = root(s);
	double ratio = 0, count = 1;
	size_t bad = 0, len = 0;
	bool all = !strcmp(r->args[0], "ALL");

	(void)arg_num(r, 1, &ratio);
	(void)arg_num(r, 2, &count);
	for (size_t i = 0; p && i < p->nheaders; i++) {
		const struct mime_header *h = &p->headers[i];
		if (all ? ((h->name.len == 7 && !strncasecmp(h->name.ptr, "Subject", 7)) ||
			   (h->name.len == 4 && !strncasecmp(h->name.ptr, "From", 4)))
			: (h->name.len != strlen(r->args[0]) ||
			   strncasecmp(h->name.ptr, r->args[0], h->name.len)))
			continue;
		for (size_t k = 0; k < h->raw.len; k++)
			if ((unsigned char)h->raw.ptr[k] >= 0x80)
				bad++;
		len += h->raw.len;
	}
	if (!len)
		return 0;
	return (double)bad / (double)len >= ratio && (double)bad >= count;
}

/* check_unresolved_template: a field still holding a mailer's %TEMPLATE%. */
static int ev_unresolved_template(struct sarules_scanner *s, const struct sar_rule *r)
{
	const struct mime_part *p = root(s);

	(void)r;
	for (size_t i = 0; p && i < p->nheaders; i++) {
		const struct mime_slice *v = &p->headers[i].raw;
		for (size_t k = 0; k + 2 < v->len; k++)
			if (v->ptr[k] == '%' && isupper((unsigned char)v->ptr[k + 1]) &&
			    (isupper((unsigned char)v->ptr[k + 2]) || v->ptr[k + 2] == '_' ||
			     v->ptr[k + 2] == '-'))
				return 1;
	}
	return 0;
}

/* ---- dates: check_for_shifted_date ----------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* RFC 5322 date (with the usual sloppiness) to seconds; false if not one. */
static bool parse_date(const char *p, size_t n, int64_t *out)
{
	static const char *const mon[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
	char buf[128];
	char *tok, *save = NULL;
	int day = -1, month = -1, year = -1, hh = -1, mm = 0, ss = 0;
	int64_t zone = 0;

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	for (tok = strtok_r(buf, " \t\r\n,", &save); tok; tok = strtok_r(NULL, " \t\r\n,", &save)) {
		size_t tl = strlen(tok);
		if (strchr(tok, ':') && hh < 0) {
			if (sscanf(tok, "%d:%d:%d", &hh, &mm, &ss) < 2)
				return false;
			continue;
		}
		if ((tok[0] == '+' || tok[0] == '-') && tl == 5 && isdigit((unsigned char)tok[1])) {
			int z = (int)strtol(tok + 1, NULL, 10);
			zone =
			    (int64_t)((z / 100) * 3600 + (z % 100) * 60) * (tok[0] == '-' ? -1 : 1);
			continue;
		}
		if (isdigit((unsigned char)tok[0])) {
			long v = strtol(tok, NULL, 10);
			if (day < 0 && tl <= 2)
				day = (int)v;
			else if (year < 0)
				year = (int)(tl <= 2 ? (v < 50 ? 2000 + v : 1900 + v) : v);
			continue;
		}
		if (month < 0 && tl >= 3) {
			for (int i = 0; i < 12; i++)
				if (!strncasecmp(tok, mon[i], 3))
					month = i + 1;
			if (month > 0)
				continue;
		}
		if (!strcasecmp(tok, "EST"))
			zone = -5 * 3600;
		else if (!strcasecmp(tok, "EDT"))
			zone = -4 * 3600;
		else if (!strcasecmp(tok, "CST"))
			zone = -6 * 3600;
		else if (!strcasecmp(tok, "CDT"))
			zone = -5 * 3600;
		else if (!strcasecmp(tok, "MST"))
			zone = -7 * 3600;
		else if (!strcasecmp(tok, "MDT"))
			zone = -6 * 3600;
		else if (!strcasecmp(tok, "PST"))
			zone = -8 * 3600;
		else if (!strcasecmp(tok, "PDT"))
			zone = -7 * 3600;
	}
	if (day < 1 || day > 31 || month < 1 || year < 1970 || year > 9999 || hh < 0 || hh > 23 ||
	    mm < 0 || mm > 59 || ss < 0 || ss > 60)
		return false;
	*out = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 + hh * 3600 + mm * 60 +
	       ss - zone;
	return true;
}

/* check_for_shifted_date(min, max): Date minus the time of the newest
 * Received with a date, in hours, in [min, max). */
static int ev_shifted_date(struct sarules_scanner *s, const struct sar_rule *r)
{
	const struct mime_part *p = root(s);
	const struct mime_header *date = p ? mime_part_header(p, "Date") : NULL;
	int64_t td, tr = 0;
	bool have_rcvd = false;
	double min, max, diff;

	if (!date || !parse_date(date->value.ptr, date->value.len, &td))
		return 0;
	for (size_t i = 0; i < p->nheaders && !have_rcvd; i++) {
		const struct mime_header *h = &p->headers[i];
		const char *semi;
		if (h->name.len != 8 || strncasecmp(h->name.ptr, "Received", 8))
			continue;
		semi = NULL;
		for (size_t k = 0; k < h->value.len; k++)
			if (h->value.ptr[k] == ';')
				semi = h->value.ptr + k;
		if (semi &&
		    parse_date(semi + 1, h->value.len - (size_t)(semi + 1 - h->value.ptr), &tr))
			have_rcvd = true;
	}
	if (!have_rcvd)
		return 0;
	diff = (double)(td - tr) / 3600.0;
	if (arg_num(r, 0, &min) && diff < min)
		return 0;
	if (arg_num(r, 1, &max) && diff >= max)
		return 0;
	return 1;
}

/* ---- BodyEval -------------------------------------------------------------------- */

/* check_body_length(n): the decoded body text is shorter than n bytes. */
static int ev_body_length(struct sarules_scanner *s, const struct sar_rule *r)
{
	const struct sar_text *t;
	double max = 0;
	size_t len;

	if (!arg_num(r, 0, &max) || sar_body_text(s, &t) < 0)
		return 0;
	/* the body text without the Subject line */
	len = t->nlines > 1 ? t->b.len - t->lines[1] : 0;
	return (double)len < max;
}

/* check_for_uppercase(min, max): the share of upper-case letters in the
 * body text, in percent, in (min, max]; at least 200 letters. */
static int ev_uppercase(struct sarules_scanner *s, const struct sar_rule *r)
{
	const struct sar_text *t;
	double min = 0, max = 100, pct;
	size_t upper = 0, lower = 0;

	(void)arg_num(r, 0, &min);
	(void)arg_num(r, 1, &max);
	if (sar_body_text(s, &t) < 0)
		return 0;
	for (size_t i = t->nlines > 1 ? t->lines[1] : t->b.len; i < t->b.len; i++) {
		unsigned char c = (unsigned char)t->b.p[i];
		if (c >= 'A' && c <= 'Z')
			upper++;
		else if (c >= 'a' && c <= 'z')
			lower++;
	}
	if (upper + lower < 200)
		return 0;
	pct = (double)upper * 100.0 / (double)(upper + lower);
	return (min == 0 && pct == 0) || (pct > min && pct <= max);
}

/* ---- MIMEEval / ImageInfo --------------------------------------------------------- */

static bool type_is(const struct mime_part *p, const char *t)
{
	return p->type.len == strlen(t) && !strncmp(p->type.ptr, t, p->type.len);
}

/* check_for_mime(test), for the tests the MIME tree answers directly. */
static int ev_for_mime(struct sarules_scanner *s, const struct sar_rule *r)
{
	size_t n = mime_msg_nparts(s->msg);
	const char *t = r->args[0];

	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = mime_msg_part(s->msg, i);
		if (p->kind != MIME_KIND_LEAF || p->origin != MIME_FROM_MIME)
			continue;
		if (!strcmp(t, "mime_base64_count") && p->cte == MIME_CTE_BASE64)
			return 1;
		if (!strcmp(t, "mime_qp_count") && p->cte == MIME_CTE_QP)
			return 1;
		if (!strcmp(t, "mime_base64_encoded_text") && p->cte == MIME_CTE_BASE64 &&
		    p->type.len >= 5 && !strncmp(p->type.ptr, "text/", 5))
			return 1;
		if (!strcmp(t, "mime_attachment") && (p->flags & MIME_PF_ATTACHMENT))
			return 1;
	}
	return 0;
}

/* image_count(type, min[, max]): image parts of that type ("all", gif,
 * jpeg, png) number min..max. */
static int ev_image_count(struct sarules_scanner *s, const struct sar_rule *r)
{
	size_t n = mime_msg_nparts(s->msg), count = 0;
	double min = 1, max = 1e18;
	const char *want = r->args[0];

	(void)arg_num(r, 1, &min);
	(void)arg_num(r, 2, &max);
	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = mime_msg_part(s->msg, i);
		if (p->kind != MIME_KIND_LEAF || p->origin != MIME_FROM_MIME)
			continue;
		if (!strcmp(want, "all") ? (p->type.len > 6 && !strncmp(p->type.ptr, "image/", 6))
		    : !strcmp(want, "jpeg") ? (type_is(p, "image/jpeg") ||
					       type_is(p, "image/jpg") || type_is(p, "image/pjpeg"))
		    : !strcmp(want, "gif")  ? type_is(p, "image/gif")
		    : !strcmp(want, "png")  ? type_is(p, "image/png")
					    : false)
			count++;
	}
	return (double)count >= min && (double)count <= max;
}

/* ---- FreeMail ----------------------------------------------------------------------- */

static bool is_freemail(const struct sarules_db *db, const char *addr, size_t n)
{
	const char *at = NULL;
	char dom[256];
	size_t dl;

	for (size_t i = 0; i < n; i++)
		if (addr[i] == '@')
			at = addr + i;
	if (!at)
		return false;
	dl = n - (size_t)(at + 1 - addr);
	while (dl && (at[dl] == '\n' || at[dl] == ' ' || at[dl] == '>'))
		dl--;
	if (!dl || dl >= sizeof(dom))
		return false;
	memcpy(dom, at + 1, dl);
	dom[dl] = '\0';
	while (dl && (dom[dl - 1] == '\n' || dom[dl - 1] == ' ' || dom[dl - 1] == '>'))
		dom[--dl] = '\0';
	str_lower_ascii(dom);
	for (size_t i = 0; i < db->nfreemail; i++)
		if (fnmatch(db->freemail[i], dom, 0) == 0)
			return true;
	return false;
}

/* The first address of a field into s->tmp (without the newline). */
static bool first_addr(struct sarules_scanner *s, const char *field, struct sar_buf *b)
{
	bool found;
	char name[64];
	const char *colon = strchr(field, ':');
	size_t n = colon ? (size_t)(colon - field) : strlen(field);

	if (n >= sizeof(name))
		return false;
	memcpy(name, field, n);
	name[n] = '\0';
	if (sar_header_text(s, name, SAR_HM_ADDR, b, &found) < 0 || !found)
		return false;
	char *nl = memchr(b->p, '\n', b->len);
	if (nl) {
		*nl = '\0';
		b->len = (size_t)(nl - b->p);
	}
	return b->len > 0;
}

static int match_opt(struct sarules_scanner *s, const struct sar_rule *r, int argi,
		     const char *text, size_t len)
{
	pcre2_code *re;
	int ec, rc;
	PCRE2_SIZE eo;

	if (argi >= r->nargs)
		return 1;
	re = pcre2_compile((PCRE2_SPTR)r->args[argi], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
	if (!re)
		return 0;
	rc = pcre2_match(re, (PCRE2_SPTR)text, len, 0, 0, s->md, s->mctx);
	pcre2_code_free(re);
	return rc >= 0;
}

static int ev_freemail_from(struct sarules_scanner *s, const struct sar_rule *r)
{
	if (!first_addr(s, "From", &s->tmp) || !is_freemail(s->db, s->tmp.p, s->tmp.len))
		return 0;
	return match_opt(s, r, 0, s->tmp.p, s->tmp.len);
}

static int ev_freemail_header(struct sarules_scanner *s, const struct sar_rule *r)
{
	if (!first_addr(s, r->args[0], &s->tmp) || !is_freemail(s->db, s->tmp.p, s->tmp.len))
		return 0;
	return match_opt(s, r, 1, s->tmp.p, s->tmp.len);
}

/* check_freemail_replyto('replyto'): From and Reply-To are both freemail
 * and differ. */
static int ev_freemail_replyto(struct sarules_scanner *s, const struct sar_rule *r)
{
	struct sar_buf from = {0};
	int hit = 0;

	(void)r;
	if (!first_addr(s, "Reply-To", &s->tmp) || !is_freemail(s->db, s->tmp.p, s->tmp.len))
		return 0;
	if (first_addr(s, "From", &from) && is_freemail(s->db, from.p, from.len) &&
	    (from.len != s->tmp.len || strncasecmp(from.p, s->tmp.p, from.len)))
		hit = 1;
	free(from.p);
	return hit;
}

/* ---- the table ---------------------------------------------------------------------- */

static const struct sar_eval evals[] = {
    {"check_header_count_range", K(SAR_HEADER), 3, 3, ev_header_count_range},
    {"subject_is_all_caps", K(SAR_HEADER), 0, 0, ev_subject_all_caps},
    {"check_illegal_chars", K(SAR_HEADER), 3, 3, ev_illegal_chars},
    {"check_unresolved_template", K(SAR_HEADER), 0, 0, ev_unresolved_template},
    {"check_for_shifted_date", K(SAR_HEADER), 2, 2, ev_shifted_date},
    {"check_body_length", K(SAR_BODY), 1, 1, ev_body_length},
    {"check_for_uppercase", K(SAR_BODY), 2, 2, ev_uppercase},
    {"check_for_mime", K(SAR_BODY) | K(SAR_RAWBODY), 1, 1, ev_for_mime},
    {"image_count", K(SAR_BODY), 2, 3, ev_image_count},
    {"check_freemail_from", K(SAR_HEADER), 0, 1, ev_freemail_from},
    {"check_freemail_header", K(SAR_HEADER), 1, 2, ev_freemail_header},
    {"check_freemail_replyto", K(SAR_HEADER), 0, 1, ev_freemail_replyto},
};

int sar_eval_find(const char *name, enum sar_kind kind)
{
	for (size_t i = 0; i < ARRAY_LEN(evals); i++)
		if (!strcmp(evals[i].name, name) && (evals[i].kinds & K(kind)))
			return (int)i;
	return -1;
}

const char *sar_eval_check(const struct sar_rule *r)
{
	const struct sar_eval *e = &evals[r->eval];

	if (r->nargs < e->minargs || r->nargs > e->maxargs)
		return "eval: wrong number of arguments";
	if (e->fn == ev_for_mime && strcmp(r->args[0], "mime_base64_count") &&
	    strcmp(r->args[0], "mime_qp_count") && strcmp(r->args[0], "mime_base64_encoded_text") &&
	    strcmp(r->args[0], "mime_attachment"))
		return "eval:check_for_mime test not implemented";
	if (e->fn == ev_freemail_replyto && r->nargs == 1 && strcmp(r->args[0], "replyto"))
		return "eval:check_freemail_replyto('reply') not implemented";
	return NULL;
}

int sar_eval_run(struct sarules_scanner *s, const struct sar_rule *r)
{
	return evals[r->eval].fn(s, r) > 0 ? 1 : 0;
}
