/* SPDX-License-Identifier: MIT */
/*
 * store_quarantine: argument rules of store_quarantine.h, then the backend.
 */
#include "store/store_quarantine.h"

#include <string.h>

#include "store/store_private.h"

int store_quarantine_list(struct store *st, const struct store_quarantine_query *q,
			  store_quarantine_cb cb, void *arg)
{
	struct store_quarantine_query nq;
	char dom[STORE_DOMAIN_LEN], rcpt[STORE_ADDR_LEN];
	int rc;

	if (!q || !cb)
		return store_invalid(st, "no query or callback");
	nq = *q;
	if (nq.account && (rc = store_account_ok(st, nq.account)))
		return rc;
	if (nq.domain) {
		if ((rc = store_norm_domain(st, nq.domain, dom, sizeof(dom))))
			return rc;
		nq.domain = dom;
	}
	if (nq.rcpt) {
		if ((rc = store_norm_addr(st, nq.rcpt, rcpt, sizeof(rcpt))))
			return rc;
		nq.rcpt = rcpt;
	}
	if (nq.queue_id && !store_queue_id_ok(nq.queue_id))
		return store_invalid(st, "bad queue id");
	if (nq.search && (!store_text_ok(nq.search) || strlen(nq.search) >= STORE_ADDR_LEN))
		return store_invalid(st, "bad search text");
	return st->ops->quarantine->list(st, &nq, cb, arg);
}

int store_quarantine_get(struct store *st, int64_t id, struct store_quarantine_entry *out,
			 char **verdict, void **data, size_t *len)
{
	if (!out || id <= 0 || (data && !len))
		return store_invalid(st, "bad quarantine id");
	return st->ops->quarantine->get(st, id, out, verdict, data, len);
}

int store_quarantine_release(struct store *st, int64_t id, const char *new_queue_id, const char *by,
			     int64_t now)
{
	if (id <= 0)
		return store_invalid(st, "bad quarantine id");
	if (!store_queue_id_ok(new_queue_id))
		return store_invalid(st, "bad queue id");
	if (by && !store_text_ok(by))
		return store_invalid(st, "bad releaser name");
	return st->ops->quarantine->release(st, id, new_queue_id, by, now);
}

int store_quarantine_delete(struct store *st, int64_t id, const char *by)
{
	if (id <= 0)
		return store_invalid(st, "bad quarantine id");
	if (by && !store_text_ok(by))
		return store_invalid(st, "bad name");
	return st->ops->quarantine->remove(st, id, by);
}

int store_quarantine_expire(struct store *st, int64_t now, size_t *n)
{
	return st->ops->quarantine->expire(st, now, n);
}

int store_quarantine_count(struct store *st, int64_t *n)
{
	if (!n)
		return store_invalid(st, "no counter");
	return st->ops->quarantine->count(st, n);
}
