/* SPDX-License-Identifier: MIT */
/*
 * store_rel: argument rules and canonical forms of store_rel.h, then the
 * backend.
 */
#include "store/store_rel.h"

#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_private.h"

static bool has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

int store_rel_domain_norm(struct store *st, const char *domain, char *out, size_t outlen)
{
	char d[STORE_DOMAIN_LEN];
	char *a = NULL;
	int rc;

	if ((rc = store_norm_domain(st, domain, d, sizeof(d))))
		return rc;
	if (!has_non_ascii(d))
		return str_copy(out, outlen, d) ? store_invalid(st, "domain name too long")
						: STORE_OK;
	/* U-labels: the A-label form, so both spellings are one key */
	if (idn2_to_ascii_8z(d, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK &&
	    idn2_to_ascii_8z(d, &a, IDN2_NFC_INPUT | IDN2_TRANSITIONAL) != IDN2_OK)
		return store_invalid(st, "domain name is not a valid IDN");
	str_lower_ascii(a);
	rc = str_copy(out, outlen, a) ? store_invalid(st, "domain name too long") : STORE_OK;
	idn2_free(a);
	return rc;
}

int store_rel_addr_norm(struct store *st, const char *address, char *out, size_t outlen)
{
	char a[STORE_ADDR_LEN], local[STORE_ADDR_LEN], key[STORE_ADDR_LEN];
	char dom[STORE_DOMAIN_LEN], d[STORE_DOMAIN_LEN];
	int rc;

	if ((rc = store_norm_addr(st, address, a, sizeof(a))))
		return rc;
	if (store_addr_split(a, local, sizeof(local), dom, sizeof(dom)) ||
	    store_local_key(local, key, sizeof(key)))
		return store_invalid(st, "not an address (local@domain)");
	if (strpbrk(key, " \t"))
		return store_invalid(st, "malformed address");
	if ((rc = store_rel_domain_norm(st, dom, d, sizeof(d))))
		return rc;
	if (str_fmt(out, outlen, "%s@%s", key, d) < 0)
		return store_invalid(st, "address too long");
	return STORE_OK;
}

int store_rel_record(struct store *st, const char *local, enum store_rel_dir dir,
		     const char *const *remotes, size_t n, int64_t now)
{
	char l[STORE_ADDR_LEN];
	char(*r)[STORE_ADDR_LEN] = NULL;
	const char **v = NULL;
	int rc;

	if ((rc = store_rel_addr_norm(st, local, l, sizeof(l))))
		return rc;
	if (dir != STORE_REL_OUTBOUND && dir != STORE_REL_INBOUND)
		return store_invalid(st, "bad direction");
	if (n == 0)
		return STORE_OK;
	if (!remotes || n > STORE_REL_MAX_BATCH)
		return store_invalid(st, "bad number of remote addresses");
	if (now <= 0)
		return store_invalid(st, "bad time");
	r = calloc(n, sizeof(*r));
	v = calloc(n, sizeof(*v));
	if (!r || !v) {
		store_set_error(st, "out of memory");
		rc = STORE_TEMPFAIL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = store_rel_addr_norm(st, remotes[i], r[i], sizeof(r[i]))))
			goto out;
		v[i] = r[i];
	}
	rc = st->ops->rel->record(st, l, dir, v, n, now);
out:
	free(v);
	free(r);
	return rc;
}

/* Both addresses of a pair, canonical. */
static int pair_args(struct store *st, const char *local, const char *remote, char *l, char *r)
{
	int rc;

	if ((rc = store_rel_addr_norm(st, local, l, STORE_ADDR_LEN)))
		return rc;
	return store_rel_addr_norm(st, remote, r, STORE_ADDR_LEN);
}

int store_rel_get(struct store *st, const char *local, const char *remote, struct store_rel *out)
{
	char l[STORE_ADDR_LEN], r[STORE_ADDR_LEN];
	int rc;

	if (!out)
		return store_invalid(st, "no result");
	if ((rc = pair_args(st, local, remote, l, r)))
		return rc;
	return st->ops->rel->get(st, l, r, out);
}

int store_rel_list(struct store *st, const char *local, store_rel_cb cb, void *arg)
{
	char l[STORE_ADDR_LEN];
	int rc;

	if (!cb)
		return store_invalid(st, "no callback");
	if ((rc = store_rel_addr_norm(st, local, l, sizeof(l))))
		return rc;
	return st->ops->rel->list(st, l, cb, arg);
}

int store_rel_domain_get(struct store *st, const char *local_domain, const char *remote_domain,
			 struct store_rel_counts *out)
{
	char l[STORE_DOMAIN_LEN], r[STORE_DOMAIN_LEN];
	int rc;

	if (!out)
		return store_invalid(st, "no result");
	memset(out, 0, sizeof(*out));
	if ((rc = store_rel_domain_norm(st, local_domain, l, sizeof(l))) ||
	    (rc = store_rel_domain_norm(st, remote_domain, r, sizeof(r))))
		return rc;
	return st->ops->rel->domain_get(st, l, r, out);
}

int store_rel_domains(struct store *st, const char *local, size_t max, store_rel_domain_cb cb,
		      void *arg)
{
	char l[STORE_ADDR_LEN];
	int rc;

	if (!cb)
		return store_invalid(st, "no callback");
	if (max == 0 || max > STORE_REL_MAX_DOMAINS)
		return store_invalid(st, "bad number of domains");
	if ((rc = store_rel_addr_norm(st, local, l, sizeof(l))))
		return rc;
	return st->ops->rel->domains(st, l, max, cb, arg);
}

int store_rel_remove(struct store *st, const char *local, const char *remote)
{
	char l[STORE_ADDR_LEN], r[STORE_ADDR_LEN];
	int rc;

	if ((rc = pair_args(st, local, remote, l, r)))
		return rc;
	return st->ops->rel->remove(st, l, r);
}

int store_rel_expire(struct store *st, int64_t before, size_t *n)
{
	size_t dummy;

	if (before <= 0)
		return store_invalid(st, "bad time");
	return st->ops->rel->expire(st, before, n ? n : &dummy);
}
