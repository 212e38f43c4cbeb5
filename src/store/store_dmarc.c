/* SPDX-License-Identifier: MIT */
/*
 * store_dmarc: argument rules of store_dmarc.h, then the backend.
 */
#include "store/store_dmarc.h"

#include <string.h>

#include "store/store_private.h"

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

/* A field of a row: terminated, and text the store accepts ("" allowed). */
static bool field_ok(const char *f, size_t size)
{
	return memchr(f, '\0', size) && (!f[0] || store_text_ok(f));
}

#define FIELD_OK(r, f) field_ok((r)->f, sizeof((r)->f))

static bool report_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n >= STORE_DMARC_ID_LEN)
		return false;
	for (; *id; id++)
		if ((unsigned char)*id <= 0x20 || *id == 0x7f)
			return false;
	return true;
}

int store_dmarc_record(struct store *st, const struct store_dmarc_row *r)
{
	struct store_dmarc_row n;
	int rc;

	if (!r)
		return store_invalid(st, "no row");
	if (!FIELD_OK(r, header_from) || !FIELD_OK(r, rua) || !FIELD_OK(r, source_ip) ||
	    !FIELD_OK(r, disposition) || !FIELD_OK(r, reason) || !FIELD_OK(r, fo) ||
	    !FIELD_OK(r, dkim_eval) || !FIELD_OK(r, spf_eval) || !FIELD_OK(r, dkim_domain) ||
	    !FIELD_OK(r, dkim_selector) || !FIELD_OK(r, dkim_result) || !FIELD_OK(r, spf_domain) ||
	    !FIELD_OK(r, spf_scope) || !FIELD_OK(r, spf_result) || !FIELD_OK(r, p) ||
	    !FIELD_OK(r, sp) || !TERMINATED(r->adkim) || !TERMINATED(r->aspf))
		return store_invalid(st, "bad DMARC row field");
	if (!r->rua[0] || !r->source_ip[0] || !r->disposition[0])
		return store_invalid(st, "a DMARC row needs rua, source_ip and disposition");
	if (r->pct < 0 || r->pct > 100)
		return store_invalid(st, "pct is 0..100");
	memcpy(&n, r, sizeof(n));
	if ((rc =
		 store_norm_domain(st, r->policy_domain, n.policy_domain, sizeof(n.policy_domain))))
		return rc;
	/* domains compare case-insensitively: one form, so that they group */
	str_lower_ascii(n.header_from);
	str_lower_ascii(n.dkim_domain);
	str_lower_ascii(n.spf_domain);
	if (n.ts <= 0)
		n.ts = time_now();
	return st->ops->dmarc->record(st, &n);
}

int store_dmarc_due(struct store *st, int64_t before, store_dmarc_period_cb cb, void *arg)
{
	if (!cb)
		return store_invalid(st, "no callback");
	return st->ops->dmarc->due(st, before, cb, arg);
}

int store_dmarc_aggregate(struct store *st, const char *policy_domain, int64_t begin, int64_t end,
			  store_dmarc_agg_cb cb, void *arg)
{
	char d[STORE_DOMAIN_LEN];
	int rc;

	if (!cb)
		return store_invalid(st, "no callback");
	if (end < begin)
		return store_invalid(st, "the period ends before it begins");
	if ((rc = store_norm_domain(st, policy_domain, d, sizeof(d))))
		return rc;
	return st->ops->dmarc->aggregate(st, d, begin, end, cb, arg);
}

int store_dmarc_claim(struct store *st, const char *report_id, const char *policy_domain,
		      int64_t begin, int64_t end, int64_t now)
{
	char d[STORE_DOMAIN_LEN];
	int rc;

	if (!report_id_ok(report_id))
		return store_invalid(st, "bad report id");
	if (end < begin)
		return store_invalid(st, "the period ends before it begins");
	if ((rc = store_norm_domain(st, policy_domain, d, sizeof(d))))
		return rc;
	return st->ops->dmarc->claim(st, report_id, d, begin, end, now > 0 ? now : time_now());
}

int store_dmarc_unclaim(struct store *st, const char *report_id)
{
	if (!report_id_ok(report_id))
		return store_invalid(st, "bad report id");
	return st->ops->dmarc->unclaim(st, report_id);
}

int store_dmarc_mark(struct store *st, const char *report_id, const char *policy_domain,
		     int64_t begin, int64_t end, const char *queue_id)
{
	char d[STORE_DOMAIN_LEN];
	int rc;

	if (!report_id_ok(report_id))
		return store_invalid(st, "bad report id");
	if (!queue_id || (queue_id[0] && !store_queue_id_ok(queue_id)))
		return store_invalid(st, "bad queue id");
	if ((rc = store_norm_domain(st, policy_domain, d, sizeof(d))))
		return rc;
	return st->ops->dmarc->mark(st, report_id, d, begin, end, queue_id);
}

int store_dmarc_purge(struct store *st, int64_t before, int64_t *n)
{
	int64_t dummy;

	return st->ops->dmarc->purge(st, before, n ? n : &dummy);
}
