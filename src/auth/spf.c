/* SPDX-License-Identifier: MIT */
/*
 * spf: check_host() (RFC 7208) as a small state machine on the resolver.
 *
 * A request holds a stack of frames, one per record being evaluated (the
 * checked domain, then one per include). redirect= replaces the frame it
 * is in, so the bottom frame always holds the record whose result and
 * exp= are final. A step that needs DNS starts its queries (up to
 * SPF_MAX_ADDR_LOOKUPS in parallel, for the addresses of mx and ptr
 * names) and returns; the last answer resumes the machine. The result is
 * handed out only from the entry points (start, answer, deadline), after
 * the machine stopped, so no code touches a freed request.
 */
#include "auth/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#define SPF_MAX_DEPTH (SPF_MAX_DNS_MECH + 2)
#define SPF_SENDER_LEN (64 + 1 + RESOLVER_NAME_LEN)

enum spf_mech {
	MECH_ALL,
	MECH_INCLUDE,
	MECH_A,
	MECH_MX,
	MECH_PTR,
	MECH_IP4,
	MECH_IP6,
	MECH_EXISTS,
	MOD_REDIRECT,
	MOD_EXP,
	MOD_UNKNOWN,
};

struct spf_term {
	enum spf_mech mech;
	char qual;	  /* '+', '-', '~', '?' */
	const char *spec; /* domain-spec, NULL when absent */
	size_t speclen;
	int cidr4, cidr6;
	struct in_addr ip4;
	struct in6_addr ip6;
	const char *text; /* the whole term, for the outcome */
	size_t textlen;
};

struct spf_record {
	struct spf_term terms[SPF_MAX_TERMS];
	size_t n;
	int redirect, exp; /* term index or -1 */
};

struct spf_frame {
	bool fetched;
	bool redirected; /* reached through redirect=: "none" is permerror */
	int stage;	 /* of the current term: 0 fresh, 1 counted */
	size_t i;	 /* the current term */
	char domain[RESOLVER_NAME_LEN];
	char rec[RESOLVER_MAX_TEXT + 1];
	struct spf_record r;
};

enum spf_op {
	OP_NONE,
	OP_RECORD,   /* TXT of the frame's domain */
	OP_ADDR,     /* A or AAAA of a name, for a */
	OP_MX,	     /* MX of a name */
	OP_MX_ADDR,  /* addresses of the exchanges */
	OP_EXISTS,   /* A of a name */
	OP_PTR,	     /* PTR of the client */
	OP_PTR_ADDR, /* addresses of the PTR names */
	OP_EXP,	     /* TXT of the exp= domain */
};

enum spf_rec_status { REC_ONE, REC_NONE, REC_MANY, REC_TEMP };

struct spf_slot {
	struct spf_req *q;
	struct resolver_req *rq;
	int idx;
};

struct spf_req {
	struct resolver *res;
	struct event_base *base;
	struct event *kick;	/* start, from the loop */
	struct event *deadline; /* the whole evaluation */
	spf_cb cb;
	void *arg;
	struct spf_opts o;
	bool helo_id;
	char sender[SPF_SENDER_LEN];
	char helo[RESOLVER_NAME_LEN];
	char receiver[RESOLVER_NAME_LEN];
	char domain0[RESOLVER_NAME_LEN];
	struct sockaddr_storage ip; /* IPv4-mapped IPv6 made IPv4 */
	struct spf_frame *f[SPF_MAX_DEPTH];
	int depth;
	unsigned dns_mech, voids, queries;

	enum spf_op op;
	struct spf_slot slots[SPF_MAX_ADDR_LOOKUPS];
	int npending;
	/* what the answers of the last op said */
	bool a_temp, a_void, a_match, a_too_many;
	enum spf_rec_status rec_status;
	char rec[RESOLVER_MAX_TEXT + 1];
	char names[SPF_MAX_ADDR_LOOKUPS][RESOLVER_NAME_LEN];
	int nnames;
	int cidr4, cidr6; /* of the mechanism being matched */

	/* the client's validated names (ptr and %{p}) */
	int pstate; /* 0 not started, 1 PTR asked, 2 addresses asked, 3 done */
	bool pvoid_counts;
	char pnames[SPF_MAX_ADDR_LOOKUPS][RESOLVER_NAME_LEN];
	bool pvalid[SPF_MAX_ADDR_LOOKUPS];
	int npnames;

	/* exp= of a final fail */
	int expstage; /* 0 none, 1 domain to ask, 2 asked, 3 text to expand */
	char exptext[RESOLVER_MAX_TEXT + 1];

	bool finished;
	struct spf_outcome out;
	char mech[256];
	char expl[SPF_EXPLAIN_LEN];
	char problem[160];
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = {"none",	"neutral",   "pass",	 "fail",
					    "softfail", "temperror", "permerror"};

	return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}

/* ---- syntax ------------------------------------------------------------- */

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_delim(int c)
{
	return c && strchr(".-+,/_=", c) != NULL;
}

/* Checks a macro-string (RFC 7208 7.1). explain: c, r, t and spaces are
 * allowed. Sets *ends_macro when it ends with a macro-expand. */
static int macro_syntax(const char *s, size_t len, bool explain, bool *ends_macro)
{
	size_t i = 0;

	if (ends_macro)
		*ends_macro = false;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 1 >= len)
				return -EINVAL;
			c = (unsigned char)s[i + 1];
			if (c == '%' || c == '_' || c == '-') {
				i += 2;
				if (ends_macro)
					*ends_macro = i == len;
				continue;
			}
			if (c != '{' || i + 2 >= len)
				return -EINVAL;
			i += 2;
			c = (unsigned char)tolower((unsigned char)s[i]);
			if (!strchr("slodiphv", c) || !c) {
				if (!(explain && c && strchr("crt", c)))
					return -EINVAL;
			}
			i++;
			while (i < len && is_digit(s[i]))
				i++;
			if (i < len && (s[i] == 'r' || s[i] == 'R'))
				i++;
			while (i < len && is_delim(s[i]))
				i++;
			if (i >= len || s[i] != '}')
				return -EINVAL;
			i++;
			if (ends_macro)
				*ends_macro = i == len;
			continue;
		}
		if (c < 0x21 || c > 0x7e) {
			if (!(explain && c == ' '))
				return -EINVAL;
		}
		i++;
		if (ends_macro)
			*ends_macro = false;
	}
	return 0;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_ok(const char *s, size_t len)
{
	bool alpha = false, dash = false;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (is_alpha(s[i]))
			alpha = true;
		else if (s[i] == '-')
			dash = true;
		else if (!is_digit(s[i]))
			return false;
	}
	if (dash)
		return s[0] != '-' && s[len - 1] != '-';
	return alpha;
}

/* domain-spec = macro-string domain-end (RFC 7208 7.1) */
static int domain_spec_syntax(const char *s, size_t len)
{
	bool ends_macro;
	size_t end = len, dot;

	if (len == 0 || macro_syntax(s, len, false, &ends_macro) < 0)
		return -EINVAL;
	if (ends_macro)
		return 0;
	if (s[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0)
		return -EINVAL; /* one label: no "." toplabel */
	return toplabel_ok(s + dot, end - dot) ? 0 : -EINVAL;
}

static int parse_uint(const char *s, size_t len, int max, int *out)
{
	int v = 0;

	if (len == 0 || len > 3)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (len > 1 && s[0] == '0')
		return -EINVAL;
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Splits a trailing dual-cidr-length off arg[0..*len): "/n", "//m" or
 * "/n//m" where every character after the slashes is a digit. */
static int dual_cidr(const char *arg, size_t *len, int *c4, int *c6)
{
	size_t n = *len, d;

	*c4 = 32;
	*c6 = 128;
	for (d = n; d > 0 && is_digit(arg[d - 1]); d--)
		;
	if (d == n || d == 0 || arg[d - 1] != '/')
		return 0;
	if (d >= 2 && arg[d - 2] == '/') {
		if (parse_uint(arg + d, n - d, 128, c6) < 0)
			return -EINVAL;
		n = d - 2;
		for (d = n; d > 0 && is_digit(arg[d - 1]); d--)
			;
		if (d == n || d == 0 || arg[d - 1] != '/') {
			*len = n;
			return 0;
		}
	}
	if (parse_uint(arg + d, n - d, 32, c4) < 0)
		return -EINVAL;
	*len = d - 1;
	return 0;
}

static int parse_term(const char *t, size_t len, struct spf_term *term, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		enum spf_mech mech;
	} mechs[] = {
	    {"all", MECH_ALL}, {"include", MECH_INCLUDE}, {"a", MECH_A},
	    {"mx", MECH_MX},   {"ptr", MECH_PTR},	  {"ip4", MECH_IP4},
	    {"ip6", MECH_IP6}, {"exists", MECH_EXISTS},
	};
	size_t i = 0, nlen;
	const char *arg;
	size_t alen;
	int rc = -EINVAL;

	memset(term, 0, sizeof(*term));
	term->text = t;
	term->textlen = len;
	term->qual = '+';
	term->cidr4 = 32;
	term->cidr6 = 128;
	if (len && strchr("+-~?", t[0])) {
		term->qual = t[0];
		i = 1;
	}
	nlen = 0;
	if (i < len && is_alpha(t[i])) {
		nlen = 1;
		while (i + nlen < len && (is_alpha(t[i + nlen]) || is_digit(t[i + nlen]) ||
					  strchr("-_.", t[i + nlen])))
			nlen++;
	}
	arg = t + i + nlen;
	alen = len - i - nlen;
	if (i == 0 && alen && arg[0] == '=') {
		/* a modifier */
		if (nlen == 0)
			goto bad;
		arg++;
		alen--;
		if (nlen == 8 && !strncasecmp(t, "redirect", 8))
			term->mech = MOD_REDIRECT;
		else if (nlen == 3 && !strncasecmp(t, "exp", 3))
			term->mech = MOD_EXP;
		else
			term->mech = MOD_UNKNOWN;
		term->spec = arg;
		term->speclen = alen;
		if (term->mech == MOD_UNKNOWN)
			rc = macro_syntax(arg, alen, true, NULL);
		else
			rc = domain_spec_syntax(arg, alen);
		if (rc < 0)
			goto bad;
		return 0;
	}
	for (size_t m = 0; m < ARRAY_LEN(mechs); m++)
		if (strlen(mechs[m].name) == nlen && !strncasecmp(t + i, mechs[m].name, nlen)) {
			term->mech = mechs[m].mech;
			goto known;
		}
	goto bad;
known:
	switch (term->mech) {
	case MECH_ALL:
		if (alen)
			goto bad;
		break;
	case MECH_INCLUDE:
	case MECH_EXISTS:
		if (alen < 2 || arg[0] != ':' || domain_spec_syntax(arg + 1, alen - 1) < 0)
			goto bad;
		term->spec = arg + 1;
		term->speclen = alen - 1;
		break;
	case MECH_A:
	case MECH_MX:
		if (dual_cidr(arg, &alen, &term->cidr4, &term->cidr6) < 0)
			goto bad;
		FALLTHROUGH;
	case MECH_PTR:
		if (alen == 0)
			break;
		if (arg[0] != ':' || alen < 2 || domain_spec_syntax(arg + 1, alen - 1) < 0)
			goto bad;
		term->spec = arg + 1;
		term->speclen = alen - 1;
		break;
	case MECH_IP4:
	case MECH_IP6: {
		char buf[INET6_ADDRSTRLEN + 1];
		size_t cut;
		int max = term->mech == MECH_IP4 ? 32 : 128;
		int *cidr = term->mech == MECH_IP4 ? &term->cidr4 : &term->cidr6;

		if (alen < 2 || arg[0] != ':')
			goto bad;
		arg++;
		alen--;
		for (cut = 0; cut < alen && arg[cut] != '/'; cut++)
			;
		if (cut < alen && parse_uint(arg + cut + 1, alen - cut - 1, max, cidr) < 0)
			goto bad;
		if (cut >= sizeof(buf))
			goto bad;
		memcpy(buf, arg, cut);
		buf[cut] = '\0';
		if (term->mech == MECH_IP4 ? inet_pton(AF_INET, buf, &term->ip4) != 1
					   : inet_pton(AF_INET6, buf, &term->ip6) != 1)
			goto bad;
		break;
	}
	default:
		goto bad;
	}
	return 0;
bad:
	(void)str_fmt(why, whylen, "bad term '%.*s'", (int)(len > 64 ? 64 : len), t);
	return -EINVAL;
}

/* rec (terminated, starting with "v=spf1") into r; slices point into rec. */
static int record_parse(const char *rec, size_t len, struct spf_record *r, char *why, size_t whylen)
{
	size_t i = 6;
	int rc = 0;

	r->n = 0;
	r->redirect = r->exp = -1;
	if (len < 6 || strncasecmp(rec, "v=spf1", 6) || (len > 6 && rec[6] != ' ')) {
		(void)str_copy(why, whylen, "not an SPF record");
		return -EINVAL;
	}
	while (i < len) {
		size_t start;
		if (rec[i] == ' ') {
			i++;
			continue;
		}
		start = i;
		while (i < len && rec[i] != ' ')
			i++;
		if (r->n == SPF_MAX_TERMS) {
			(void)str_copy(why, whylen, "too many terms");
			return -EINVAL;
		}
		struct spf_term *t = &r->terms[r->n];
		rc = parse_term(rec + start, i - start, t, why, whylen);
		if (rc < 0)
			return rc;
		if (t->mech == MOD_REDIRECT || t->mech == MOD_EXP) {
			int *slot = t->mech == MOD_REDIRECT ? &r->redirect : &r->exp;
			if (*slot >= 0) {
				(void)str_fmt(why, whylen, "%s twice",
					      t->mech == MOD_REDIRECT ? "redirect" : "exp");
				return -EINVAL;
			}
			*slot = (int)r->n;
		}
		r->n++;
	}
	return 0;
}

int spf_record_check(const char *rec, size_t len, char *why, size_t whylen)
{
	struct spf_record *r = malloc(sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	rc = record_parse(rec, len, r, why, whylen);
	free(r);
	return rc;
}

/* ---- macros --------------------------------------------------------------- */

struct outbuf {
	char *p;
	size_t len, cap;
};

static int put(struct outbuf *b, const char *s, size_t n)
{
	if (b->len + n >= b->cap)
		return -ENAMETOOLONG;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int put_escaped(struct outbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_alpha(c) || is_digit(c) || strchr("-._~", c)) {
			rc = put(b, s + i, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			rc = put(b, e, 3);
		}
	}
	return rc;
}

static void ip_dotted(const struct sockaddr *sa, char *out, size_t outlen)
{
	if (sa->sa_family == AF_INET) {
		(void)inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
				(socklen_t)outlen);
		return;
	}
	const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	size_t o = 0;
	for (int i = 0; i < 16 && o + 4 < outlen; i++) {
		static const char hex[] = "0123456789abcdef";
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
		out[o++] = hex[a[i] & 15];
		out[o++] = i == 15 ? '\0' : '.';
	}
	out[outlen - 1] = '\0';
}

/* The value of one macro letter (lower case) into val. */
static int macro_value(const struct spf_macro_vars *v, int letter, char *val, size_t vallen)
{
	const char *at = v->sender ? strrchr(v->sender, '@') : NULL;

	switch (letter) {
	case 's':
		return str_copy(val, vallen, v->sender ? v->sender : "");
	case 'l':
		if (!at || at == v->sender)
			return str_copy(val, vallen, "postmaster");
		return str_copyn(val, vallen, v->sender, (size_t)(at - v->sender));
	case 'o':
		return str_copy(val, vallen, at ? at + 1 : (v->sender ? v->sender : ""));
	case 'd':
		return str_copy(val, vallen, v->domain ? v->domain : "");
	case 'h':
		return str_copy(val, vallen, v->helo ? v->helo : "");
	case 'r':
		return str_copy(val, vallen, v->receiver ? v->receiver : "unknown");
	case 'p':
		return str_copy(val, vallen, v->ptr ? v->ptr : "unknown");
	case 't':
		return str_fmt(val, vallen, "%lld", (long long)(v->now ? v->now : time_now()));
	case 'v':
		return str_copy(val, vallen,
				v->ip && v->ip->sa_family == AF_INET6 ? "ip6" : "in-addr");
	case 'i':
		if (!v->ip)
			return str_copy(val, vallen, "");
		ip_dotted(v->ip, val, vallen);
		return 0;
	case 'c':
		if (!v->ip)
			return str_copy(val, vallen, "");
		if (v->ip->sa_family == AF_INET6)
			(void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)v->ip)->sin6_addr,
					val, (socklen_t)vallen);
		else
			ip_dotted(v->ip, val, vallen);
		return 0;
	default:
		return -EINVAL;
	}
}

/* Applies the transformers: split on delims, maybe reverse, keep the
 * rightmost digits parts, join with ".". */
static int macro_transform(struct outbuf *b, const char *val, long digits, bool reverse,
			   const char *delims, size_t ndelims, bool escape)
{
	const char *parts[128];
	size_t plen[128], n = 0, start = 0, vlen = strlen(val);
	int rc = 0;

	for (size_t i = 0; i <= vlen; i++) {
		bool d = i == vlen;
		for (size_t k = 0; !d && k < ndelims; k++)
			d = val[i] == delims[k];
		if (!d)
			continue;
		if (n == ARRAY_LEN(parts))
			return -EINVAL;
		parts[n] = val + start;
		plen[n++] = i - start;
		start = i + 1;
	}
	if (reverse)
		for (size_t i = 0; i < n / 2; i++) {
			const char *tp = parts[i];
			size_t tl = plen[i];
			parts[i] = parts[n - 1 - i];
			plen[i] = plen[n - 1 - i];
			parts[n - 1 - i] = tp;
			plen[n - 1 - i] = tl;
		}
	size_t first = digits > 0 && (size_t)digits < n ? n - (size_t)digits : 0;
	for (size_t i = first; i < n && rc == 0; i++) {
		if (i > first)
			rc = put(b, ".", 1);
		if (rc == 0)
			rc = escape ? put_escaped(b, parts[i], plen[i]) : put(b, parts[i], plen[i]);
	}
	return rc;
}

int spf_macro_expand(const struct spf_macro_vars *v, const char *in, size_t len, bool explain,
		     char *dst, size_t dstlen)
{
	/* a domain-spec may expand past 253 before it is cut (RFC 7208 7.3) */
	char wide[RESOLVER_MAX_TEXT];
	char *out = explain ? dst : wide;
	size_t outlen = explain ? dstlen : sizeof(wide);
	struct outbuf b = {out, 0, outlen};
	char val[RESOLVER_MAX_TEXT];
	size_t i = 0;
	int rc = -EINVAL;

	if (dstlen == 0)
		return -ENAMETOOLONG;
	out[0] = dst[0] = '\0';
	if (macro_syntax(in, len, explain, NULL) < 0)
		goto out;
	while (i < len) {
		if (in[i] != '%') {
			size_t j = i;
			while (j < len && in[j] != '%')
				j++;
			rc = put(&b, in + i, j - i);
			if (rc < 0)
				goto out;
			i = j;
			continue;
		}
		char c = in[i + 1];
		if (c == '%' || c == '_' || c == '-') {
			rc = put(&b, c == '%' ? "%" : c == '_' ? " " : "%20", c == '-' ? 3 : 1);
			if (rc < 0)
				goto out;
			i += 2;
			continue;
		}
		/* %{ letter digits [r] delims } (syntax already checked) */
		i += 2;
		int letter = in[i];
		bool escape = letter >= 'A' && letter <= 'Z';
		long digits = 0;
		bool reverse = false;
		i++;
		size_t d0 = i;
		while (is_digit(in[i]))
			digits = digits < 1000 ? digits * 10 + (in[i++] - '0') : (i++, digits);
		if (i > d0 && digits == 0) {
			rc = -EINVAL; /* RFC 7208 7.1: a DIGIT transformer is nonzero */
			goto out;
		}
		if (in[i] == 'r' || in[i] == 'R') {
			reverse = true;
			i++;
		}
		size_t ds = i;
		while (in[i] != '}')
			i++;
		rc = macro_value(v, tolower(letter), val, sizeof(val));
		if (rc < 0)
			goto out;
		rc = macro_transform(&b, val, digits, reverse, i > ds ? in + ds : ".",
				     i > ds ? i - ds : 1, escape);
		if (rc < 0)
			goto out;
		i++;
	}
	if (!explain) {
		/* RFC 7208 7.3: over 253, drop labels on the left */
		size_t n = b.len, skip = 0;
		if (n && out[n - 1] == '.')
			out[--n] = '\0';
		while (n - skip > 253) {
			const char *dot = memchr(out + skip, '.', n - skip);
			if (!dot) {
				rc = -EINVAL;
				goto out;
			}
			skip = (size_t)(dot - out) + 1;
		}
		rc = str_copy(dst, dstlen, out + skip);
		if (rc < 0)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0 && dstlen)
		dst[0] = '\0';
	return rc;
}

/* ---- the machine ---------------------------------------------------------- */

static struct spf_frame *top(struct spf_req *q)
{
	return q->f[q->depth - 1];
}

static void finish(struct spf_req *q, enum spf_result res, const char *mech, const char *problem)
{
	if (q->finished)
		return;
	q->finished = true;
	q->out.result = res;
	(void)str_copy(q->mech, sizeof(q->mech), mech ? mech : "");
	(void)str_copy(q->problem, sizeof(q->problem), problem ? problem : "");
}

static void permerror(struct spf_req *q, const char *what, const char *arg)
{
	char why[160];

	(void)str_fmt(why, sizeof(why), "%s%s%s", what, arg ? " " : "", arg ? arg : "");
	finish(q, SPF_PERMERROR, NULL, why);
}

static void temperror(struct spf_req *q, const char *what, const char *name)
{
	char why[160];

	(void)str_fmt(why, sizeof(why), "DNS failure for %s (%s)", name, what);
	finish(q, SPF_TEMPERROR, NULL, why);
}

static void macro_vars(struct spf_req *q, struct spf_macro_vars *v)
{
	const char *best = NULL;
	const char *d = top(q)->domain;
	size_t dl = strlen(d);

	memset(v, 0, sizeof(*v));
	v->sender = q->sender;
	v->domain = d;
	v->helo = q->helo;
	v->receiver = q->receiver[0] ? q->receiver : NULL;
	v->ip = (const struct sockaddr *)&q->ip;
	v->now = q->o.now;
	/* %{p}: a validated name in d's tree, else any validated name */
	for (int i = 0; q->pstate == 3 && i < q->npnames; i++) {
		if (!q->pvalid[i])
			continue;
		size_t nl = strlen(q->pnames[i]);
		if (!strcasecmp(q->pnames[i], d) || (nl > dl && q->pnames[i][nl - dl - 1] == '.' &&
						     !strcasecmp(q->pnames[i] + nl - dl, d))) {
			best = q->pnames[i];
			break;
		}
		if (!best)
			best = q->pnames[i];
	}
	v->ptr = best;
}

static bool needs_ptr(const char *s, size_t len)
{
	for (size_t i = 0; i + 2 < len; i++)
		if (s[i] == '%' && s[i + 1] == '%')
			i++;
		else if (s[i] == '%' && s[i + 1] == '{' && (s[i + 2] == 'p' || s[i + 2] == 'P'))
			return true;
	return false;
}

static void on_answer(const struct resolver_result *res, void *arg);
static void spf_resume(struct spf_req *q);

/* A name the DNS can carry: no empty label, labels of 63 bytes at most,
 * no address literal. */
static bool name_ok(const char *n)
{
	size_t label = 0, len = strlen(n);

	if (len == 0 || len > 253 || strchr(n, '[') || strchr(n, ']'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (n[i] != '.') {
			if (++label > 63)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
	}
	return true;
}

/* Starts one query of the op in progress. A name that cannot be asked
 * is answered at once as a void look-up (no record, RFC 7208 4.3/5). */
static int ask(struct spf_req *q, const char *name, enum resolver_type type, int idx)
{
	struct spf_slot *s = &q->slots[q->npending];
	int rc;

	if (!name_ok(name)) {
		q->a_void = true;
		return 0;
	}
	s->q = q;
	s->idx = idx;
	rc = resolver_query(q->res, name, type, on_answer, s, &s->rq);
	if (rc < 0)
		return rc;
	q->npending++;
	q->queries++;
	return 0;
}

static enum resolver_type addr_type(const struct spf_req *q)
{
	return q->ip.ss_family == AF_INET6 ? RESOLVER_AAAA : RESOLVER_A;
}

static bool addr_match(const struct spf_req *q, const struct resolver_rr *rr, int c4, int c6)
{
	if (q->ip.ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)&q->ip)->sin_addr.s_addr);
		uint32_t b = ntohl(rr->a.s_addr);
		uint32_t mask = c4 == 0 ? 0 : 0xffffffffu << (32 - c4);
		return (a & mask) == (b & mask);
	}
	const unsigned char *a = ((const struct sockaddr_in6 *)&q->ip)->sin6_addr.s6_addr;
	const unsigned char *b = rr->aaaa.s6_addr;
	int bits = c6;
	for (int i = 0; i < 16 && bits > 0; i++, bits -= 8) {
		unsigned char m = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
		if ((a[i] & m) != (b[i] & m))
			return false;
	}
	return true;
}

static bool ip_term_match(const struct spf_req *q, const struct spf_term *t)
{
	struct resolver_rr rr;

	memset(&rr, 0, sizeof(rr));
	if (t->mech == MECH_IP4) {
		if (q->ip.ss_family != AF_INET)
			return false;
		rr.a = t->ip4;
	} else {
		if (q->ip.ss_family != AF_INET6)
			return false;
		rr.aaaa = t->ip6;
	}
	return addr_match(q, &rr, t->cidr4, t->cidr6);
}

/* Records what the answer of one slot says, for the op in progress. */
static void on_answer(const struct resolver_result *res, void *arg)
{
	struct spf_slot *s = arg;
	struct spf_req *q = s->q;

	s->rq = NULL;
	if (res->status == RESOLVER_TEMPFAIL)
		q->a_temp = true;
	else if (res->status == RESOLVER_PERMFAIL)
		q->a_void = true;
	switch (q->op) {
	case OP_RECORD:
	case OP_EXP: {
		int found = 0;
		q->rec_status = res->status == RESOLVER_TEMPFAIL ? REC_TEMP : REC_NONE;
		for (size_t i = 0; res->status == RESOLVER_OK && i < res->n; i++) {
			const struct resolver_rr *rr = &res->rr[i];
			if (q->op == OP_RECORD &&
			    (rr->len < 6 || strncasecmp(rr->text, "v=spf1", 6) ||
			     (rr->len > 6 && rr->text[6] != ' ')))
				continue;
			if (found++ == 0)
				(void)str_copyn(q->rec, sizeof(q->rec), rr->text, rr->len);
			if (memchr(rr->text, '\0', rr->len))
				q->rec[0] = '\1'; /* not a usable record */
		}
		if (found == 1)
			q->rec_status = REC_ONE;
		else if (found > 1)
			q->rec_status = REC_MANY;
		break;
	}
	case OP_ADDR:
	case OP_MX_ADDR:
	case OP_EXISTS:
	case OP_PTR_ADDR:
		for (size_t i = 0; res->status == RESOLVER_OK && i < res->n; i++) {
			bool m =
			    q->op == OP_EXISTS || addr_match(q, &res->rr[i], q->cidr4, q->cidr6);
			if (m && q->op == OP_PTR_ADDR)
				q->pvalid[s->idx] = true;
			else if (m)
				q->a_match = true;
		}
		break;
	case OP_MX:
	case OP_PTR:
		for (size_t i = 0; res->status == RESOLVER_OK && i < res->n; i++) {
			if (q->nnames == SPF_MAX_ADDR_LOOKUPS) {
				q->a_too_many = true;
				break;
			}
			if (res->rr[i].len == 0) /* a null MX (RFC 7505) names nothing */
				continue;
			(void)str_copy(q->names[q->nnames++], RESOLVER_NAME_LEN, res->rr[i].text);
		}
		if (res->truncated)
			q->a_too_many = true;
		break;
	case OP_NONE:
		break;
	}
	if (--q->npending > 0)
		return;
	spf_resume(q);
}

static void op_begin(struct spf_req *q, enum spf_op op)
{
	q->op = op;
	q->a_temp = q->a_void = q->a_match = q->a_too_many = false;
	q->nnames = 0;
	q->rec_status = REC_NONE;
}

/* Counts a term that causes DNS look-ups (RFC 7208 4.6.4). */
static bool count_mech(struct spf_req *q)
{
	int max = q->o.max_dns_mech > 0 ? q->o.max_dns_mech : SPF_MAX_DNS_MECH;

	if (++q->dns_mech > (unsigned)max) {
		permerror(q, "over the limit of DNS look-ups", NULL);
		return false;
	}
	return true;
}

static bool count_void(struct spf_req *q)
{
	int max = q->o.max_void ? q->o.max_void : SPF_MAX_VOID;

	if (++q->voids > (unsigned)max && max > 0) {
		permerror(q, "over the limit of void DNS look-ups", NULL);
		return false;
	}
	return true;
}

static void ptr_start(struct spf_req *q, bool void_counts)
{
	char name[RESOLVER_NAME_LEN];

	q->pvoid_counts = void_counts;
	op_begin(q, OP_PTR);
	if (resolver_reverse_name((const struct sockaddr *)&q->ip, NULL, name, sizeof(name)) < 0 ||
	    ask(q, name, RESOLVER_PTR, 0) < 0) {
		finish(q, SPF_TEMPERROR, NULL, "out of memory");
		return;
	}
	q->pstate = 1;
}

/* Expands the term's domain-spec (or the frame's domain) into out.
 * Returns 1 when it is waiting for the client's validated names. */
static int target(struct spf_req *q, const struct spf_term *t, char *out, size_t outlen)
{
	struct spf_macro_vars v;

	if (!t->spec)
		return str_copy(out, outlen, top(q)->domain) < 0 ? -EINVAL : 0;
	if (needs_ptr(t->spec, t->speclen) && q->pstate != 3) {
		if (q->pstate == 0)
			ptr_start(q, false);
		return 1;
	}
	macro_vars(q, &v);
	if (spf_macro_expand(&v, t->spec, t->speclen, false, out, outlen) < 0) {
		permerror(q, "bad macro in domain-spec", NULL);
		return -EINVAL;
	}
	return 0;
}

static void default_explanation(struct spf_req *q)
{
	char ip[INET6_ADDRSTRLEN];

	if (q->ip.ss_family == AF_INET6)
		(void)inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&q->ip)->sin6_addr, ip,
				sizeof(ip));
	else
		(void)inet_ntop(AF_INET, &((struct sockaddr_in *)&q->ip)->sin_addr, ip, sizeof(ip));
	(void)str_fmt(q->expl, sizeof(q->expl), "%s does not designate %s as permitted sender",
		      q->domain0, ip);
}

/* The frame on top ended with res (matched by term t, NULL for the default). */
static void frame_done(struct spf_req *q, enum spf_result res, const struct spf_term *t)
{
	char mech[256];

	if (t)
		(void)str_copyn(mech, sizeof(mech), t->text, t->textlen);
	else
		(void)str_copy(mech, sizeof(mech), "default");
	if (q->depth > 1) {
		/* the end of an include: RFC 7208 5.2 table */
		free(q->f[--q->depth]);
		q->f[q->depth] = NULL;
		struct spf_frame *p = top(q);
		struct spf_term *it = &p->r.terms[p->i];
		switch (res) {
		case SPF_PASS:
			frame_done(q,
				   it->qual == '-'   ? SPF_FAIL
				   : it->qual == '~' ? SPF_SOFTFAIL
				   : it->qual == '?' ? SPF_NEUTRAL
						     : SPF_PASS,
				   it);
			return;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL:
			p->i++;
			p->stage = 0;
			return;
		case SPF_TEMPERROR:
			finish(q, SPF_TEMPERROR, NULL, q->problem);
			return;
		default:
			permerror(q, "no usable SPF record for include at", p->domain);
			return;
		}
	}
	(void)str_copy(q->mech, sizeof(q->mech), mech);
	if (res == SPF_FAIL) {
		struct spf_frame *f = top(q);
		default_explanation(q);
		if (f->r.exp >= 0) {
			q->expstage = 1; /* the machine goes on with exp= */
			q->out.result = res;
			return;
		}
	}
	finish(q, res, mech, NULL);
}

static enum spf_result qual_result(char qual)
{
	return qual == '-'   ? SPF_FAIL
	       : qual == '~' ? SPF_SOFTFAIL
	       : qual == '?' ? SPF_NEUTRAL
			     : SPF_PASS;
}

/* exp= (RFC 7208 6.2): any problem leaves the default explanation. */
static void exp_step(struct spf_req *q)
{
	struct spf_frame *f = top(q);
	const struct spf_term *t = &f->r.terms[f->r.exp];
	char name[RESOLVER_NAME_LEN];
	struct spf_macro_vars v;
	int rc;

	if (q->expstage == 1) {
		rc = 0;
		if (needs_ptr(t->spec, t->speclen) && q->pstate != 3) {
			if (q->pstate == 0)
				ptr_start(q, false);
			return;
		}
		macro_vars(q, &v);
		rc = spf_macro_expand(&v, t->spec, t->speclen, false, name, sizeof(name));
		op_begin(q, OP_EXP);
		if (rc < 0 || ask(q, name, RESOLVER_TXT, 0) < 0)
			goto done;
		q->expstage = 2;
		return;
	}
	if (q->expstage == 2) {
		if (q->rec_status != REC_ONE)
			goto done;
		(void)str_copy(q->exptext, sizeof(q->exptext), q->rec);
		q->expstage = 3;
	}
	if (needs_ptr(q->exptext, strlen(q->exptext)) && q->pstate != 3) {
		if (q->pstate == 0)
			ptr_start(q, false);
		return;
	}
	macro_vars(q, &v);
	char text[SPF_EXPLAIN_LEN];
	if (spf_macro_expand(&v, q->exptext, strlen(q->exptext), true, text, sizeof(text)) == 0)
		(void)str_copy(q->expl, sizeof(q->expl), text);
done:
	q->expstage = 0;
	finish(q, SPF_FAIL, q->mech, NULL);
}

/* Starts the look-up of the DNS term t, or matches it with what the last
 * op found. */
static void dns_term(struct spf_req *q, struct spf_frame *f, struct spf_term *t)
{
	char name[RESOLVER_NAME_LEN];
	int rc;

	if (f->stage == 0) {
		if (!count_mech(q))
			return;
		f->stage = 1;
	}
	if (f->stage == 1) {
		if (t->mech == MECH_PTR) {
			if (q->pstate != 3) {
				if (q->pstate == 0)
					ptr_start(q, true);
				return;
			}
			rc = target(q, t, name, sizeof(name));
			if (rc != 0)
				return;
			size_t tl = strlen(name);
			while (tl && name[tl - 1] == '.')
				name[--tl] = '\0';
			for (int i = 0; i < q->npnames; i++) {
				size_t nl = strlen(q->pnames[i]);
				if (q->pvalid[i] && (!strcasecmp(q->pnames[i], name) ||
						     (nl > tl && q->pnames[i][nl - tl - 1] == '.' &&
						      !strcasecmp(q->pnames[i] + nl - tl, name)))) {
					frame_done(q, qual_result(t->qual), t);
					return;
				}
			}
			f->i++;
			f->stage = 0;
			return;
		}
		rc = target(q, t, name, sizeof(name));
		if (rc != 0)
			return;
		op_begin(q, OP_NONE);
		q->cidr4 = t->cidr4;
		q->cidr6 = t->cidr6;
		switch (t->mech) {
		case MECH_INCLUDE: {
			struct spf_frame *c;
			if (q->depth == SPF_MAX_DEPTH || !(c = calloc(1, sizeof(*c)))) {
				finish(q, SPF_TEMPERROR, NULL, "include too deep or out of memory");
				return;
			}
			(void)str_copy(c->domain, sizeof(c->domain), name);
			q->f[q->depth++] = c;
			f->stage = 2;
			return;
		}
		case MECH_A:
			q->op = OP_ADDR;
			rc = ask(q, name, addr_type(q), 0);
			break;
		case MECH_MX:
			q->op = OP_MX;
			rc = ask(q, name, RESOLVER_MX, 0);
			break;
		case MECH_EXISTS:
			q->op = OP_EXISTS;
			rc = ask(q, name, RESOLVER_A, 0);
			break;
		default:
			rc = -EINVAL;
		}
		if (rc < 0) {
			finish(q, SPF_TEMPERROR, NULL, "cannot query");
			return;
		}
		f->stage = 2;
		return;
	}
	/* stage 2: the answers are in */
	if (q->op == OP_MX) {
		if (q->a_temp) {
			temperror(q, "MX", "mx");
			return;
		}
		if (q->a_too_many) {
			permerror(q, "more than 10 MX records", NULL);
			return;
		}
		if (q->a_void && !count_void(q))
			return;
		int n = q->nnames;
		char names[SPF_MAX_ADDR_LOOKUPS][RESOLVER_NAME_LEN];
		memcpy(names, q->names, sizeof(names));
		op_begin(q, OP_MX_ADDR);
		for (int i = 0; i < n; i++)
			if (ask(q, names[i], addr_type(q), i) < 0) {
				finish(q, SPF_TEMPERROR, NULL, "cannot query");
				return;
			}
		if (n > 0)
			return;
	}
	if (q->a_temp && !q->a_match) {
		temperror(q, "address", "mechanism");
		return;
	}
	if (q->a_void && (q->op == OP_ADDR || q->op == OP_EXISTS) && !count_void(q))
		return;
	if (q->a_match) {
		frame_done(q, qual_result(t->qual), t);
		return;
	}
	f->i++;
	f->stage = 0;
}

/* Carries on after the last answer of an op. */
static void ptr_progress(struct spf_req *q)
{
	if (q->pstate == 1) {
		int n = q->nnames;
		char names[SPF_MAX_ADDR_LOOKUPS][RESOLVER_NAME_LEN];

		if (q->a_temp && n == 0) {
			q->pstate = 3; /* RFC 7208 5.5: a PTR error is "no match" */
			q->op = OP_NONE;
			return;
		}
		if (q->a_void && q->pvoid_counts && !count_void(q))
			return;
		memcpy(names, q->names, sizeof(names));
		memcpy(q->pnames, names, sizeof(names));
		q->npnames = n;
		memset(q->pvalid, 0, sizeof(q->pvalid));
		op_begin(q, OP_PTR_ADDR);
		q->cidr4 = 32;
		q->cidr6 = 128;
		for (int i = 0; i < n; i++)
			if (ask(q, names[i], addr_type(q), i) < 0) {
				finish(q, SPF_TEMPERROR, NULL, "cannot query");
				return;
			}
		q->pstate = n ? 2 : 3;
		if (!n)
			q->op = OP_NONE;
		return;
	}
	q->pstate = 3;
	q->op = OP_NONE;
}

static void fetched(struct spf_req *q, struct spf_frame *f)
{
	char why[128] = "";

	switch (q->rec_status) {
	case REC_TEMP:
		temperror(q, "TXT", f->domain);
		return;
	case REC_MANY:
		permerror(q, "more than one SPF record at", f->domain);
		return;
	case REC_NONE:
		if (q->depth == 1 && !f->redirected) {
			finish(q, SPF_NONE, NULL, NULL);
			return;
		}
		permerror(q, "no SPF record at", f->domain);
		return;
	case REC_ONE:
		break;
	}
	(void)str_copy(f->rec, sizeof(f->rec), q->rec);
	if (record_parse(f->rec, strlen(f->rec), &f->r, why, sizeof(why)) < 0) {
		permerror(q, why, NULL);
		return;
	}
	f->fetched = true;
	f->i = 0;
	f->stage = 0;
}

static void eval(struct spf_req *q)
{
	while (!q->finished && q->npending == 0) {
		struct spf_frame *f = top(q);

		if ((q->pstate == 1 && q->op == OP_PTR) ||
		    (q->pstate == 2 && q->op == OP_PTR_ADDR)) {
			ptr_progress(q);
			continue;
		}
		if (q->expstage) {
			exp_step(q);
			continue;
		}
		if (!f->fetched) {
			if (q->op == OP_RECORD) {
				q->op = OP_NONE;
				fetched(q, f);
				continue;
			}
			op_begin(q, OP_RECORD);
			if (ask(q, f->domain, RESOLVER_TXT, 0) < 0)
				finish(q, SPF_TEMPERROR, NULL, "cannot query");
			continue;
		}
		if (f->i >= f->r.n) {
			if (f->r.redirect < 0) {
				frame_done(q, SPF_NEUTRAL, NULL);
				continue;
			}
			/* redirect= replaces this frame (RFC 7208 6.1) */
			struct spf_term *t = &f->r.terms[f->r.redirect];
			char name[RESOLVER_NAME_LEN];
			if (f->stage == 0 && !count_mech(q))
				continue;
			f->stage = 1;
			if (target(q, t, name, sizeof(name)) != 0)
				continue;
			(void)str_copy(f->domain, sizeof(f->domain), name);
			f->fetched = false;
			f->redirected = true;
			f->stage = 0;
			q->op = OP_NONE;
			continue;
		}
		struct spf_term *t = &f->r.terms[f->i];
		switch (t->mech) {
		case MECH_ALL:
			frame_done(q, qual_result(t->qual), t);
			break;
		case MECH_IP4:
		case MECH_IP6:
			if (ip_term_match(q, t))
				frame_done(q, qual_result(t->qual), t);
			else
				f->i++;
			break;
		case MECH_INCLUDE:
			if (f->stage == 2) {
				/* the child frame is still running on top of us */
				break;
			}
			dns_term(q, f, t);
			break;
		case MECH_A:
		case MECH_MX:
		case MECH_PTR:
		case MECH_EXISTS:
			dns_term(q, f, t);
			break;
		default:
			f->i++;
			break;
		}
	}
}

static void deliver(struct spf_req *q)
{
	q->out.identity = q->helo_id ? "helo" : "mailfrom";
	q->out.domain = q->domain0;
	q->out.mechanism = q->mech;
	q->out.explanation = q->out.result == SPF_FAIL ? q->expl : "";
	q->out.problem = q->problem;
	q->out.dns_mech = q->dns_mech;
	q->out.void_lookups = q->voids;
	q->out.queries = q->queries;
	q->cb(&q->out, q->arg);
	spf_cancel(q);
}

static void spf_resume(struct spf_req *q)
{
	eval(q);
	if (q->finished)
		deliver(q);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	spf_resume(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct spf_req *q = arg;

	(void)fd;
	(void)what;
	finish(q, SPF_TEMPERROR, NULL, "SPF evaluation timed out");
	deliver(q);
}

void spf_cancel(struct spf_req *q)
{
	if (!q)
		return;
	for (int i = 0; i < SPF_MAX_ADDR_LOOKUPS; i++)
		resolver_cancel(q->slots[i].rq);
	for (int i = 0; i < q->depth; i++)
		free(q->f[i]);
	if (q->kick)
		event_free(q->kick);
	if (q->deadline)
		event_free(q->deadline);
	free(q);
}

/* RFC 7208 4.3: a domain that is not a usable FQDN gives "none". */
static bool domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0 && i + 1 < len)
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']')
			return false;
		if (++label > 63)
			return false;
	}
	return labels >= 1 && d[0] != '.';
}

static int start(struct resolver *r, const struct spf_opts *opts, const struct sockaddr *client,
		 const char *helo, const char *mail_from, bool helo_id, spf_cb cb, void *arg,
		 struct spf_req **out)
{
	struct spf_req *q = NULL;
	struct spf_frame *f;
	const char *at;
	int64_t ms;
	int rc = -EINVAL;

	if (out)
		*out = NULL;
	if (!r || !client || !cb || !helo ||
	    (client->sa_family != AF_INET && client->sa_family != AF_INET6))
		goto out;
	rc = -ENOMEM;
	q = calloc(1, sizeof(*q));
	if (!q || !(f = calloc(1, sizeof(*f))))
		goto out;
	q->f[q->depth++] = f;
	q->res = r;
	q->base = resolver_event_base(r);
	q->cb = cb;
	q->arg = arg;
	q->helo_id = helo_id;
	if (opts)
		q->o = *opts;
	if (q->o.receiver)
		(void)str_copy(q->receiver, sizeof(q->receiver), q->o.receiver);
	q->o.receiver = NULL;
	if (client->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)client;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&q->ip;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			memcpy(&q->ip, s6, sizeof(*s6));
		}
	} else {
		memcpy(&q->ip, client, sizeof(struct sockaddr_in));
	}
	(void)str_copy(q->helo, sizeof(q->helo), helo);
	if (helo_id || !mail_from || !*mail_from)
		(void)str_fmt(q->sender, sizeof(q->sender), "postmaster@%s", helo);
	else if (!strchr(mail_from, '@'))
		(void)str_fmt(q->sender, sizeof(q->sender), "postmaster@%s", mail_from);
	else
		(void)str_copy(q->sender, sizeof(q->sender), mail_from);
	at = strrchr(q->sender, '@');
	(void)str_copy(q->domain0, sizeof(q->domain0), at + 1);
	{
		size_t dl = strlen(q->domain0);
		while (dl > 1 && q->domain0[dl - 1] == '.')
			q->domain0[--dl] = '\0';
	}
	(void)str_copy(f->domain, sizeof(f->domain), q->domain0);
	if (!domain_ok(q->domain0))
		finish(q, SPF_NONE, NULL, "not a domain name");
	q->kick = evtimer_new(q->base, on_kick, q);
	q->deadline = evtimer_new(q->base, on_deadline, q);
	if (!q->kick || !q->deadline)
		goto out;
	ms = q->o.timeout_ms > 0 ? q->o.timeout_ms : 20000;
	struct timeval zero = {0, 0}, tv = {ms / 1000, (ms % 1000) * 1000};
	if (evtimer_add(q->kick, &zero) < 0 || evtimer_add(q->deadline, &tv) < 0)
		goto out;
	if (out)
		*out = q;
	return 0;
out:
	spf_cancel(q);
	return rc;
}

int spf_check(struct resolver *r, const struct spf_opts *opts, const struct sockaddr *client,
	      const char *helo, const char *mail_from, spf_cb cb, void *arg, struct spf_req **out)
{
	return start(r, opts, client, helo, mail_from, false, cb, arg, out);
}

int spf_check_helo(struct resolver *r, const struct spf_opts *opts, const struct sockaddr *client,
		   const char *helo, spf_cb cb, void *arg, struct spf_req **out)
{
	return start(r, opts, client, helo, NULL, true, cb, arg, out);
}
