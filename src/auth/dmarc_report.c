/* SPDX-License-Identifier: MIT */
/*
 * dmarc_report: DMARC aggregate reports (see dmarc_report.h).
 */
#include "auth/dmarc_report.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpsl.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "core/config.h"
#include "core/log.h"
#include "queue/notice.h"
#include "store/store_dmarc.h"

/* ---- text helpers ----------------------------------------------------------- */

/* Text as XML character data: markup characters escaped, control
 * characters (not allowed in XML 1.0) replaced. */
static void xml_text(struct notice_buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&':
			notice_str(b, "&amp;");
			break;
		case '<':
			notice_str(b, "&lt;");
			break;
		case '>':
			notice_str(b, "&gt;");
			break;
		case '"':
			notice_str(b, "&quot;");
			break;
		case '\'':
			notice_str(b, "&apos;");
			break;
		default:
			notice_add(b, c < 0x20 || c == 0x7f ? "?" : s, 1);
		}
	}
}

/* <name>text</name> on its own line, indented. */
static void xml_elem(struct notice_buf *b, int indent, const char *name, const char *text)
{
	notice_fmt(b, "%*s<%s>", indent, "", name);
	xml_text(b, text);
	notice_fmt(b, "</%s>\n", name);
}

static void xml_elem_int(struct notice_buf *b, int indent, const char *name, int64_t v)
{
	notice_fmt(b, "%*s<%s>%lld</%s>\n", indent, "", name, (long long)v, name);
}

/* ---- collection ------------------------------------------------------------ */

static const char *policy_word(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT	      ? "reject"
	       : p == DMARC_POLICY_QUARANTINE ? "quarantine"
					      : "none";
}

int dmarc_report_row(const struct dmarc_report_input *in, struct store_dmarc_row *row)
{
	const struct dmarc_outcome *o = in ? in->outcome : NULL;
	const struct dmarc_report_sig *sig = NULL;
	struct dmarc_record rec;
	struct dmarc_rua rua[DMARC_REPORT_MAX_RUA];
	enum dmarc_policy applied;
	size_t nrua = 0;
	int rc;

	if (!o || !row || !in->source_ip || !in->source_ip[0] || (in->nsigs && !in->sigs))
		return -EINVAL;
	if (o->result != DMARC_PASS && o->result != DMARC_FAIL)
		return -ENOENT; /* no policy, or no usable From: nothing to report */
	if (!o->rua || !o->rua[0] || !o->record)
		return -ENOENT;
	(void)dmarc_rua_parse(o->rua, rua, ARRAY_LEN(rua), &nrua);
	if (nrua == 0)
		return -ENOENT;
	memset(row, 0, sizeof(*row));
	row->ts = in->now > 0 ? in->now : time_now();
	if (str_copy(row->policy_domain, sizeof(row->policy_domain),
		     o->record_domain && o->record_domain[0] ? o->record_domain : o->from_domain) <
		0 ||
	    str_copy(row->header_from, sizeof(row->header_from), o->from_domain) < 0 ||
	    str_copy(row->rua, sizeof(row->rua), o->rua) < 0 ||
	    str_copy(row->source_ip, sizeof(row->source_ip), in->source_ip) < 0)
		return -EINVAL;
	applied = in->applied;
	if (applied == DMARC_POLICY_UNSET)
		applied = o->result == DMARC_FAIL ? o->disposition : DMARC_POLICY_NONE;
	(void)str_copy(row->disposition, sizeof(row->disposition), policy_word(applied));
	(void)str_copy(row->reason, sizeof(row->reason),
		       in->reason	? in->reason
		       : o->sampled_out ? "sampled_out"
					: "");
	(void)str_copy(row->dkim_eval, sizeof(row->dkim_eval), o->dkim_aligned ? "pass" : "fail");
	(void)str_copy(row->spf_eval, sizeof(row->spf_eval), o->spf_aligned ? "pass" : "fail");

	/* One DKIM result per row: the aligned pass, else a pass, else the
	 * first signature. */
	for (size_t i = 0; i < in->nsigs && !sig; i++)
		if (in->sigs[i].result == DKIM_PASS && o->dkim_domain && o->dkim_domain[0] &&
		    in->sigs[i].domain && !strcasecmp(in->sigs[i].domain, o->dkim_domain))
			sig = &in->sigs[i];
	for (size_t i = 0; i < in->nsigs && !sig; i++)
		if (in->sigs[i].result == DKIM_PASS)
			sig = &in->sigs[i];
	if (!sig && in->nsigs)
		sig = &in->sigs[0];
	if (sig && sig->domain && sig->domain[0]) {
		(void)str_copy(row->dkim_domain, sizeof(row->dkim_domain), sig->domain);
		str_lower_ascii(row->dkim_domain);
		(void)str_copy(row->dkim_selector, sizeof(row->dkim_selector),
			       sig->selector ? sig->selector : "");
		(void)str_copy(row->dkim_result, sizeof(row->dkim_result),
			       dkim_result_name(sig->result));
	}
	(void)str_copy(row->spf_domain, sizeof(row->spf_domain),
		       in->spf_domain ? in->spf_domain : "");
	str_lower_ascii(row->spf_domain);
	(void)str_copy(row->spf_scope, sizeof(row->spf_scope), in->spf_helo ? "helo" : "mfrom");
	(void)str_copy(row->spf_result, sizeof(row->spf_result), spf_result_name(in->spf));

	/* the policy as published */
	memset(&rec, 0, sizeof(rec));
	rc = dmarc_record_parse(o->record, strlen(o->record), &rec);
	if (rc < 0 && rc != -ENOENT)
		return -ENOENT; /* dmarc_check() would not have found it either */
	(void)str_copy(row->p, sizeof(row->p), policy_word(rec.p));
	(void)str_copy(row->sp, sizeof(row->sp),
		       policy_word(rec.sp != DMARC_POLICY_UNSET ? rec.sp : rec.p));
	row->pct = rec.pct;
	row->adkim[0] = rec.adkim_strict ? 's' : 'r';
	row->aspf[0] = rec.aspf_strict ? 's' : 'r';
	if (rec.fo && rec.fo_len > 0 && rec.fo_len < sizeof(row->fo))
		(void)str_copyn(row->fo, sizeof(row->fo), rec.fo, rec.fo_len);
	else
		(void)str_copy(row->fo, sizeof(row->fo), "0");
	return 0;
}

int dmarc_report_record(struct store *st, const struct store_dmarc_row *row)
{
	return store_dmarc_record(st, row);
}

/* ---- rua= ------------------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One mailto: URI, s[0..n) without the scheme. */
static int rua_one(const char *s, size_t n, struct dmarc_rua *out)
{
	const char *bang = memchr(s, '!', n), *q;
	size_t alen = bang ? (size_t)(bang - s) : n, o = 0;
	bool at = false;

	memset(out, 0, sizeof(*out));
	if (bang) {
		const char *p = bang + 1, *end = s + n;
		uint64_t v = 0;

		if (p == end)
			return -EINVAL;
		for (; p < end && isdigit((unsigned char)*p); p++) {
			if (v > UINT64_MAX / 10 - 10)
				return -EINVAL;
			v = v * 10 + (uint64_t)(*p - '0');
		}
		if (p < end) {
			int shift = 0;

			switch (tolower((unsigned char)*p)) {
			case 'k':
				shift = 10;
				break;
			case 'm':
				shift = 20;
				break;
			case 'g':
				shift = 30;
				break;
			case 't':
				shift = 40;
				break;
			default:
				return -EINVAL;
			}
			if (p + 1 != end || v > (UINT64_MAX >> shift))
				return -EINVAL;
			v <<= shift;
		}
		out->limit = v;
	}
	q = memchr(s, '?', alen); /* hfields (RFC 6068) are ignored */
	if (q)
		alen = (size_t)(q - s);
	for (size_t i = 0; i < alen; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= alen || (h = hexval(s[i + 1])) < 0 ||
			    (l = hexval(s[i + 2])) < 0)
				return -EINVAL;
			c = h * 16 + l;
			i += 2;
		}
		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '"')
			return -EINVAL;
		if (c == '@')
			at = true;
		if (o + 1 >= sizeof(out->addr))
			return -EINVAL;
		out->addr[o++] = (char)c;
	}
	out->addr[o] = '\0';
	if (!at || out->addr[0] == '@' || out->addr[o - 1] == '@')
		return -EINVAL;
	return 0;
}

int dmarc_rua_parse(const char *rua, struct dmarc_rua *out, size_t max, size_t *n)
{
	const char *p = rua;
	int rc = 0;

	*n = 0;
	if (!rua)
		return -EINVAL;
	while (*p) {
		const char *e = strchr(p, ','), *end;

		end = e ? e : p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if (end - p > 7 && !strncasecmp(p, "mailto:", 7) && *n < max) {
			if (rua_one(p + 7, (size_t)(end - p - 7), &out[*n]) == 0)
				(*n)++;
			else
				rc = -EINVAL;
		}
		if (!e)
			break;
		p = e + 1;
	}
	return rc;
}

/* ---- XML --------------------------------------------------------------------- */

int dmarc_report_xml(const struct dmarc_report_meta *m, const struct store_dmarc_agg *recs,
		     size_t n, char **out, size_t *outlen)
{
	struct notice_buf b;
	const struct store_dmarc_row *pol;

	if (!m || !recs || n == 0 || !m->org_name || !m->email || !m->report_id)
		return -EINVAL;
	pol = &recs[0].r;
	notice_init(&b, DMARC_REPORT_MAX_XML);
	notice_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
	xml_elem(&b, 2, "version", "1.0");
	notice_str(&b, "  <report_metadata>\n");
	xml_elem(&b, 4, "org_name", m->org_name);
	xml_elem(&b, 4, "email", m->email);
	if (m->extra_contact && m->extra_contact[0])
		xml_elem(&b, 4, "extra_contact_info", m->extra_contact);
	xml_elem(&b, 4, "report_id", m->report_id);
	notice_str(&b, "    <date_range>\n");
	xml_elem_int(&b, 6, "begin", m->begin);
	xml_elem_int(&b, 6, "end", m->end);
	notice_str(&b, "    </date_range>\n  </report_metadata>\n  <policy_published>\n");
	xml_elem(&b, 4, "domain", pol->policy_domain);
	xml_elem(&b, 4, "adkim", pol->adkim[0] ? pol->adkim : "r");
	xml_elem(&b, 4, "aspf", pol->aspf[0] ? pol->aspf : "r");
	xml_elem(&b, 4, "p", pol->p[0] ? pol->p : "none");
	xml_elem(&b, 4, "sp", pol->sp[0] ? pol->sp : pol->p[0] ? pol->p : "none");
	xml_elem_int(&b, 4, "pct", pol->pct);
	xml_elem(&b, 4, "fo", pol->fo[0] ? pol->fo : "0");
	notice_str(&b, "  </policy_published>\n");
	for (size_t i = 0; i < n && !b.err; i++) {
		const struct store_dmarc_row *r = &recs[i].r;

		notice_str(&b, "  <record>\n    <row>\n");
		xml_elem(&b, 6, "source_ip", r->source_ip);
		xml_elem_int(&b, 6, "count", recs[i].count);
		notice_str(&b, "      <policy_evaluated>\n");
		xml_elem(&b, 8, "disposition", r->disposition);
		xml_elem(&b, 8, "dkim", r->dkim_eval);
		xml_elem(&b, 8, "spf", r->spf_eval);
		if (r->reason[0]) {
			notice_str(&b, "        <reason>\n");
			xml_elem(&b, 10, "type", r->reason);
			notice_str(&b, "        </reason>\n");
		}
		notice_str(&b, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
		xml_elem(&b, 6, "header_from", r->header_from);
		notice_str(&b, "    </identifiers>\n    <auth_results>\n");
		if (r->dkim_domain[0]) {
			notice_str(&b, "      <dkim>\n");
			xml_elem(&b, 8, "domain", r->dkim_domain);
			if (r->dkim_selector[0])
				xml_elem(&b, 8, "selector", r->dkim_selector);
			xml_elem(&b, 8, "result", r->dkim_result);
			notice_str(&b, "      </dkim>\n");
		}
		notice_str(&b, "      <spf>\n");
		xml_elem(&b, 8, "domain", r->spf_domain);
		xml_elem(&b, 8, "scope", r->spf_scope[0] ? r->spf_scope : "mfrom");
		xml_elem(&b, 8, "result", r->spf_result[0] ? r->spf_result : "none");
		notice_str(&b, "      </spf>\n    </auth_results>\n  </record>\n");
	}
	notice_str(&b, "</feedback>\n");
	return notice_finish(&b, out, outlen);
}

int dmarc_report_gzip(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z;
	unsigned char *buf = NULL;
	uLong cap;
	int rc;

	if (!in || len > DMARC_REPORT_MAX_XML)
		return -EINVAL;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)len) + 32;
	buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		rc = -EIO;
		goto out;
	}
	*out = buf;
	*outlen = z.total_out;
	buf = NULL;
	rc = 0;
out:
	deflateEnd(&z);
	free(buf);
	return rc;
}

int dmarc_report_filename(const char *receiver, const char *policy_domain, int64_t begin,
			  int64_t end, char *out, size_t outlen)
{
	if (!receiver || !policy_domain || !receiver[0] || !policy_domain[0] ||
	    strpbrk(receiver, "!/\\\" \t\r\n") || strpbrk(policy_domain, "!/\\\" \t\r\n"))
		return -EINVAL;
	return str_fmt(out, outlen, "%s!%s!%lld!%lld.xml.gz", receiver, policy_domain,
		       (long long)begin, (long long)end) < 0
		   ? -E2BIG
		   : 0;
}

/* ---- the message --------------------------------------------------------------- */

/* A header value: control characters removed. */
static void hdr_value(struct notice_buf *b, const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x20 && *s != 0x7f)
			notice_add(b, s, 1);
}

/* A display name as a quoted-string. */
static void hdr_quoted(struct notice_buf *b, const char *s)
{
	notice_str(b, "\"");
	for (; s && *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			continue;
		if (*s == '"' || *s == '\\')
			notice_str(b, "\\");
		notice_add(b, s, 1);
	}
	notice_str(b, "\"");
}

int dmarc_report_message(const struct dmarc_report_mail *m, const unsigned char *gz, size_t gzlen,
			 char **out, size_t *outlen)
{
	struct notice_buf b;
	char date[64], fname[600], boundary[128], begin[32], end[32];
	unsigned char line[80];
	struct tm tm;
	time_t t;

	if (!m || !gz || !m->from || !m->submitter || !m->policy_domain || !m->report_id ||
	    !m->message_id || m->nto == 0 || !m->to)
		return -EINVAL;
	if (dmarc_report_filename(m->submitter, m->policy_domain, m->begin, m->end, fname,
				  sizeof(fname)) < 0)
		return -EINVAL;
	if (str_fmt(boundary, sizeof(boundary), "=_dmarc_%s", m->message_id) < 0 ||
	    strpbrk(boundary, "\"\r\n"))
		return -EINVAL;
	notice_init(&b, DMARC_REPORT_MAX_MSG);
	rfc5322_date(m->now, date, sizeof(date));
	t = (time_t)m->begin;
	if (!gmtime_r(&t, &tm) || !strftime(begin, sizeof(begin), "%Y-%m-%d %H:%M:%S", &tm))
		return -EINVAL;
	t = (time_t)m->end;
	if (!gmtime_r(&t, &tm) || !strftime(end, sizeof(end), "%Y-%m-%d %H:%M:%S", &tm))
		return -EINVAL;

	notice_str(&b, "From: ");
	if (m->org_name && m->org_name[0]) {
		hdr_quoted(&b, m->org_name);
		notice_str(&b, " ");
	}
	notice_str(&b, "<");
	hdr_value(&b, m->from);
	notice_str(&b, ">\r\nTo: ");
	for (size_t i = 0; i < m->nto; i++) {
		notice_str(&b, i ? ",\r\n\t<" : "<");
		hdr_value(&b, m->to[i]);
		notice_str(&b, ">");
	}
	notice_str(&b, "\r\nSubject: Report Domain: ");
	hdr_value(&b, m->policy_domain);
	notice_str(&b, " Submitter: ");
	hdr_value(&b, m->submitter);
	notice_str(&b, " Report-ID: <");
	hdr_value(&b, m->report_id);
	notice_fmt(&b, ">\r\nDate: %s\r\nMessage-ID: <", date);
	hdr_value(&b, m->message_id);
	notice_str(&b, ">\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
	notice_fmt(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary);
	notice_str(&b, "This is a MIME-encapsulated message.\r\n\r\n");
	notice_fmt(&b,
		   "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: 8bit\r\n\r\n",
		   boundary);
	notice_str(&b, "This is a DMARC aggregate report (RFC 7489) for ");
	hdr_value(&b, m->policy_domain);
	notice_fmt(&b, ",\r\ncovering %s to %s UTC.\r\n", begin, end);
	notice_str(&b, "The report is the attached gzip'd XML document.\r\n\r\n");
	notice_fmt(&b, "--%s\r\nContent-Type: application/gzip; name=\"", boundary);
	hdr_value(&b, fname);
	notice_str(&b, "\"\r\nContent-Disposition: attachment; filename=\"");
	hdr_value(&b, fname);
	notice_str(&b, "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	for (size_t off = 0; off < gzlen && !b.err; off += 57) {
		size_t k = gzlen - off < 57 ? gzlen - off : 57;
		int w = EVP_EncodeBlock(line, gz + off, (int)k);

		notice_add(&b, (const char *)line, (size_t)w);
		notice_str(&b, "\r\n");
	}
	notice_fmt(&b, "\r\n--%s--\r\n", boundary);
	return notice_finish(&b, out, outlen);
}

/* ---- the daily job ------------------------------------------------------------- */

int64_t dmarc_report_next(int64_t now, int64_t offset)
{
	int64_t t = now - now % 86400 + offset % 86400;

	return t < now ? t + 86400 : t;
}

struct periods {
	struct store_dmarc_period *v;
	size_t n, cap;
};

static int period_cb(const struct store_dmarc_period *p, void *arg)
{
	struct periods *ps = arg;

	if (ps->n == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 16;
		struct store_dmarc_period *nv;

		if (ncap > 100000)
			return 1; /* the rest next run */
		nv = realloc(ps->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		ps->v = nv;
		ps->cap = ncap;
	}
	ps->v[ps->n++] = *p;
	return 0;
}

struct aggs {
	struct store_dmarc_agg *v;
	size_t n, cap;
};

static int agg_cb(const struct store_dmarc_agg *a, void *arg)
{
	struct aggs *as = arg;

	if (as->n == DMARC_REPORT_MAX_RECORDS)
		return 1;
	if (as->n == as->cap) {
		size_t ncap = as->cap ? as->cap * 2 : 16;
		struct store_dmarc_agg *nv = realloc(as->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		as->v = nv;
		as->cap = ncap;
	}
	as->v[as->n++] = *a;
	return 0;
}

static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* Same organizational domain (or, without a PSL, the same name). */
static bool same_org(const struct dmarc_report_opts *o, const char *a, const char *b)
{
	if (o->psl)
		return dmarc_aligned(o->psl, a, b, false);
	return strcasecmp(a, b) == 0;
}

/* Queues one report; STORE_OK, or a store code (the claim is given up). */
static int send_one(struct store *st, const struct dmarc_report_opts *o,
		    const struct store_dmarc_period *p, const struct aggs *as,
		    const char *submitter, const char *const *to, const uint64_t *limits,
		    size_t nto, char *qid_out)
{
	struct dmarc_report_meta meta = {0};
	struct dmarc_report_mail mail = {0};
	struct store_message msg = {0};
	const struct store_message *msgs[1] = {&msg};
	struct store_msg_rcpt rcpts[DMARC_REPORT_MAX_RUA];
	const char *fit[DMARC_REPORT_MAX_RUA];
	char report_id[STORE_DMARC_ID_LEN], msgid[QUEUE_ID_LEN + 300], day[16];
	char *xml = NULL, *data = NULL;
	unsigned char *gz = NULL;
	size_t xlen = 0, gzlen = 0, dlen = 0, nfit = 0;
	struct tm tm;
	time_t t = (time_t)p->begin;
	int rc;

	if (!gmtime_r(&t, &tm) || !strftime(day, sizeof(day), "%Y%m%d", &tm))
		return STORE_INVALID;
	if (str_fmt(report_id, sizeof(report_id), "%s.%s@%s", day, p->policy_domain, submitter) < 0)
		return STORE_INVALID;
	queue_id_new(msg.queue_id);
	(void)str_fmt(msgid, sizeof(msgid), "dmarc.%s@%s", msg.queue_id, o->hostname);

	meta.org_name = o->org_name;
	meta.email = o->from;
	meta.report_id = report_id;
	meta.begin = p->begin;
	meta.end = p->end;
	rc = dmarc_report_xml(&meta, as->v, as->n, &xml, &xlen);
	if (rc == 0)
		rc = dmarc_report_gzip(xml, xlen, &gz, &gzlen);
	if (rc < 0) {
		rc = rc == -ENOMEM ? STORE_TEMPFAIL : STORE_INVALID;
		goto out;
	}
	mail.from = o->from;
	mail.org_name = o->org_name;
	mail.submitter = submitter;
	mail.policy_domain = p->policy_domain;
	mail.report_id = report_id;
	mail.message_id = msgid;
	mail.begin = p->begin;
	mail.end = p->end;
	mail.now = o->now;
	mail.to = to;
	mail.nto = nto;
	/* the size limits are those of the whole message as it is sent */
	if ((rc = dmarc_report_message(&mail, gz, gzlen, &data, &dlen)) < 0) {
		rc = rc == -ENOMEM ? STORE_TEMPFAIL : STORE_INVALID;
		goto out;
	}
	for (size_t i = 0; i < nto; i++)
		if (limits[i] == 0 || dlen <= limits[i])
			fit[nfit++] = to[i];
		else
			log_info("dmarc",
				 "domain=%s to=<%s> msg=\"report over the size limit\" "
				 "size=%zu limit=%llu",
				 p->policy_domain, to[i], dlen, (unsigned long long)limits[i]);
	if (nfit == 0) {
		rc = STORE_NOTFOUND;
		goto out;
	}
	if (nfit != nto) { /* the To: field names only those it goes to */
		free(data);
		data = NULL;
		mail.to = fit;
		mail.nto = nfit;
		if ((rc = dmarc_report_message(&mail, gz, gzlen, &data, &dlen)) < 0) {
			rc = rc == -ENOMEM ? STORE_TEMPFAIL : STORE_INVALID;
			goto out;
		}
	}
	rc = store_dmarc_claim(st, report_id, p->policy_domain, p->begin, p->end, o->now);
	if (rc < 0)
		goto out; /* STORE_EXISTS: another run or node made it */
	memset(rcpts, 0, sizeof(rcpts));
	for (size_t i = 0; i < nfit; i++) {
		struct store_rcpt cls;

		rcpts[i].address = fit[i];
		if (store_rcpt_lookup(st, fit[i], &cls) == STORE_OK && cls.cls == STORE_RCPT_LOCAL)
			rcpts[i].mailbox_id = cls.mailbox_id;
	}
	msg.sender = o->from;
	msg.client_addr = "127.0.0.1";
	msg.helo = o->hostname;
	msg.received_at = o->now;
	for (size_t i = 0; i < dlen; i++)
		if ((unsigned char)data[i] >= 0x80) {
			msg.flags = STORE_MSG_8BITMIME | STORE_MSG_SMTPUTF8 | STORE_MSG_LOCAL;
			break;
		}
	msg.rcpts = rcpts;
	msg.nrcpts = nfit;
	msg.data = data;
	msg.len = dlen;
	rc = store_messages_commit(st, msgs, 1);
	if (rc < 0) {
		if (store_dmarc_unclaim(st, report_id) < 0)
			log_warn("dmarc",
				 "report_id=%s msg=\"claim not given up; this report is "
				 "lost\"",
				 report_id);
		goto out;
	}
	(void)str_copy(qid_out, QUEUE_ID_LEN + 1, msg.queue_id);
	log_info("dmarc", "qid=%s domain=%s report_id=%s records=%zu size=%zu to=<%s>%s",
		 msg.queue_id, p->policy_domain, report_id, as->n, dlen, fit[0],
		 nfit > 1 ? " (and others)" : "");
	if (store_dmarc_mark(st, report_id, p->policy_domain, p->begin, p->end, msg.queue_id) < 0)
		log_warn("dmarc",
			 "report_id=%s msg=\"rows not marked; the claim keeps them from "
			 "being sent again\"",
			 report_id);
	rc = STORE_OK;
out:
	free(xml);
	free(gz);
	free(data);
	return rc;
}

int dmarc_report_run(struct store *st, const struct dmarc_report_opts *opts,
		     struct dmarc_report_stats *stats)
{
	struct dmarc_report_opts o = *opts;
	struct periods ps = {0};
	struct aggs as = {0};
	const char *submitter;
	int rc;

	memset(stats, 0, sizeof(*stats));
	if (!o.from || !strchr(o.from, '@') || !o.hostname || !o.hostname[0])
		return STORE_INVALID;
	if (!o.org_name || !o.org_name[0])
		o.org_name = o.hostname;
	if (o.now <= 0)
		o.now = time_now();
	if (o.retention <= 0)
		o.retention = DMARC_REPORT_RETENTION;
	submitter = domain_of(o.from);

	rc = store_dmarc_due(st, o.now - o.now % 86400, period_cb, &ps);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < ps.n; i++) {
		const struct store_dmarc_period *p = &ps.v[i];
		struct dmarc_rua rua[DMARC_REPORT_MAX_RUA];
		const char *to[DMARC_REPORT_MAX_RUA];
		uint64_t limits[DMARC_REPORT_MAX_RUA];
		char qid[QUEUE_ID_LEN + 1] = "", rid[STORE_DMARC_ID_LEN];
		size_t nrua = 0, nto = 0;
		bool later = false;

		as.n = 0;
		rc = store_dmarc_aggregate(st, p->policy_domain, p->begin, p->end, agg_cb, &as);
		if (rc < 0 || as.n == 0) {
			stats->failed += rc < 0;
			continue;
		}
		(void)dmarc_rua_parse(as.v[0].r.rua, rua, ARRAY_LEN(rua), &nrua);
		for (size_t k = 0; k < nrua; k++) {
			const char *dd = domain_of(rua[k].addr);
			int ok = 1;

			if (!same_org(&o, dd, p->policy_domain))
				ok = o.verify ? o.verify(o.verify_arg, p->policy_domain, dd) : 0;
			if (ok < 0)
				later = true;
			if (ok != 1) {
				log_info("dmarc", "domain=%s to=<%s> msg=\"%s\"", p->policy_domain,
					 rua[k].addr,
					 ok < 0 ? "cannot verify the external destination yet"
						: "external destination not authorized (RFC 7489 "
						  "7.1)");
				continue;
			}
			to[nto] = rua[k].addr;
			limits[nto++] = rua[k].limit;
		}
		if (nto == 0) {
			if (later) {
				stats->failed++;
				continue;
			}
			rc = STORE_NOTFOUND;
		} else {
			rc = send_one(st, &o, p, &as, submitter, to, limits, nto, qid);
		}
		if (rc == STORE_OK) {
			stats->reports++;
			stats->records += as.n;
			continue;
		}
		if (rc == STORE_TEMPFAIL) {
			stats->failed++;
			continue;
		}
		/* claimed before, nowhere to send it, or not buildable: the rows
		 * will not make a report, so they are marked */
		stats->skipped++;
		if (str_fmt(rid, sizeof(rid), "skipped.%lld.%s", (long long)p->begin,
			    p->policy_domain) < 0 ||
		    store_dmarc_mark(st, rid, p->policy_domain, p->begin, p->end, "") < 0)
			stats->failed++;
	}
	rc = store_dmarc_purge(st, o.now - o.retention, &stats->purged);
out:
	free(ps.v);
	free(as.v);
	return rc;
}

int dmarc_report_daily(struct store *st, const struct config *cfg, int64_t now,
		       struct dmarc_report_stats *stats)
{
	struct dmarc_report_opts o = {0};
	char from[sizeof(cfg->dmarc.report_from)];
	psl_ctx_t *psl;
	int rc;

	memset(stats, 0, sizeof(*stats));
	if (cfg->dmarc.report_from[0])
		(void)str_copy(from, sizeof(from), cfg->dmarc.report_from);
	else if (str_fmt(from, sizeof(from), "dmarc-reports@%s", cfg->node.hostname) < 0)
		return STORE_INVALID;
	psl = psl_latest(NULL);
	o.org_name = cfg->dmarc.report_org;
	o.from = from;
	o.hostname = cfg->node.hostname;
	o.now = now;
	o.retention = cfg->dmarc.report_retention;
	o.psl = psl;
	rc = dmarc_report_run(st, &o, stats);
	psl_free(psl);
	if (rc < 0)
		log_err("dmarc", "msg=\"report job failed: %s\" rc=%d", store_last_error(st), rc);
	else
		log_info("dmarc",
			 "msg=\"report job done\" reports=%zu records=%zu skipped=%zu failed=%zu "
			 "purged=%lld",
			 stats->reports, stats->records, stats->skipped, stats->failed,
			 (long long)stats->purged);
	return rc;
}
