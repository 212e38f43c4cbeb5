/* SPDX-License-Identifier: MIT */
/*
 * store_dkim: argument rules of store_dkim.h, then the backend.
 */
#include "store/store_dkim.h"

#include <ctype.h>
#include <string.h>

#include "store/store_private.h"

/* A selector: one or more DNS labels of letters, digits, '-' and '_',
 * lower-cased into out. */
static int norm_selector(struct store *st, const char *sel, char *out, size_t outlen)
{
	size_t n = sel ? strlen(sel) : 0, label = 0;

	if (n == 0 || n >= outlen || n >= STORE_DKIM_SELECTOR_LEN)
		return store_invalid(st, "bad selector (1 to 63 characters)");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)sel[i];

		if (c == '.') {
			if (label == 0 || i + 1 == n)
				return store_invalid(st, "bad selector (empty label)");
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			label++;
		} else {
			return store_invalid(st, "bad selector (letters, digits, '-', '_', '.')");
		}
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return STORE_OK;
}

static bool printable(const char *s, size_t max, bool lines)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (n >= max || c >= 0x7f || (c < 0x20 && !(lines && (c == '\n' || c == '\r'))))
			return false;
	}
	return n > 0;
}

const char *store_dkim_state_name(enum store_dkim_state s)
{
	switch (s) {
	case STORE_DKIM_PENDING:
		return "pending";
	case STORE_DKIM_ACTIVE:
		return "active";
	case STORE_DKIM_RETIRED:
		return "retired";
	}
	return "unknown";
}

int store_dkim_add(struct store *st, const struct store_dkim_key *k)
{
	struct store_dkim_key n;
	int rc;

	if (!k)
		return store_invalid(st, "no key");
	memcpy(&n, k, sizeof(n));
	if ((rc = store_norm_domain(st, k->domain, n.domain, sizeof(n.domain))) ||
	    (rc = norm_selector(st, k->selector, n.selector, sizeof(n.selector))))
		return rc;
	if (strcmp(k->algorithm, "rsa-sha256") != 0 && strcmp(k->algorithm, "ed25519-sha256") != 0)
		return store_invalid(st, "algorithm is rsa-sha256 or ed25519-sha256");
	if (!memchr(k->private_key, '\0', sizeof(k->private_key)) ||
	    !printable(k->private_key, STORE_DKIM_PEM_LEN, true) ||
	    !strstr(k->private_key, "-----BEGIN "))
		return store_invalid(st, "the private key is not PEM text");
	if (!memchr(k->dns_record, '\0', sizeof(k->dns_record)) ||
	    !printable(k->dns_record, STORE_DKIM_RECORD_LEN, false))
		return store_invalid(st, "bad DNS record text");
	n.state = STORE_DKIM_PENDING;
	n.activated_at = 0;
	if (n.created_at <= 0)
		n.created_at = time_now();
	return st->ops->dkim->add(st, &n);
}

int store_dkim_list(struct store *st, const char *domain, store_dkim_cb cb, void *arg)
{
	char d[STORE_DOMAIN_LEN];
	int rc;

	if (!cb)
		return store_invalid(st, "no callback");
	if (domain && (rc = store_norm_domain(st, domain, d, sizeof(d))))
		return rc;
	return st->ops->dkim->list(st, domain ? d : NULL, cb, arg);
}

int store_dkim_activate(struct store *st, const char *domain, const char *selector, int64_t now)
{
	char d[STORE_DOMAIN_LEN], s[STORE_DKIM_SELECTOR_LEN];
	int rc;

	if ((rc = store_norm_domain(st, domain, d, sizeof(d))) ||
	    (rc = norm_selector(st, selector, s, sizeof(s))))
		return rc;
	return st->ops->dkim->activate(st, d, s, now > 0 ? now : time_now());
}

int store_dkim_remove(struct store *st, const char *domain, const char *selector)
{
	char d[STORE_DOMAIN_LEN], s[STORE_DKIM_SELECTOR_LEN];
	int rc;

	if ((rc = store_norm_domain(st, domain, d, sizeof(d))) ||
	    (rc = norm_selector(st, selector, s, sizeof(s))))
		return rc;
	return st->ops->dkim->remove(st, d, s);
}

int store_dkim_active(struct store *st, const char *domain, struct store_dkim_key *out)
{
	char d[STORE_DOMAIN_LEN];
	int rc;

	if (!out)
		return store_invalid(st, "no output");
	if ((rc = store_norm_domain(st, domain, d, sizeof(d))))
		return rc;
	return st->ops->dkim->active(st, d, out);
}
