/* SPDX-License-Identifier: MIT */
/*
 * store_policy: argument rules of store_policy.h, then the backend.
 */
#include "store/store_policy.h"

#include <ctype.h>
#include <string.h>

#include "store/store_private.h"

/* Normalises the scope's name into out ("" for global). */
static int scope_name(struct store *st, enum store_scope sc, const char *name, char *out,
		      size_t outlen)
{
	switch (sc) {
	case STORE_SCOPE_GLOBAL:
		if (name && name[0])
			return store_invalid(st, "the global scope has no name");
		out[0] = '\0';
		return STORE_OK;
	case STORE_SCOPE_ACCOUNT:
		if (!name)
			return store_invalid(st, "no account");
		if (store_account_ok(st, name))
			return STORE_INVALID;
		return str_copy(out, outlen, name) ? store_invalid(st, "account name too long")
						   : STORE_OK;
	case STORE_SCOPE_DOMAIN:
		return store_norm_domain(st, name, out, outlen);
	case STORE_SCOPE_MAILBOX:
		return store_norm_addr(st, name, out, outlen);
	}
	return store_invalid(st, "bad scope");
}

static bool key_ok(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n >= STORE_POLICY_KEY_LEN)
		return false;
	for (const char *p = key; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
			return false;
	return true;
}

static bool value_ok(const char *v)
{
	return v && strlen(v) < STORE_ADDR_LEN && store_text_ok(v);
}

int store_policy_set(struct store *st, enum store_scope sc, const char *name, const char *key,
		     const char *value)
{
	char n[STORE_ADDR_LEN];
	int rc;

	if ((rc = scope_name(st, sc, name, n, sizeof(n))))
		return rc;
	if (!key_ok(key))
		return store_invalid(st, "bad setting name");
	if (value && !value_ok(value))
		return store_invalid(st, "bad setting value");
	return st->ops->policy->set(st, sc, n, key, value);
}

static int list_args(struct store *st, enum store_scope sc, const char *name,
		     enum store_policy_kind kind, const char *pattern, char *n, size_t nlen)
{
	int rc;

	if ((rc = scope_name(st, sc, name, n, nlen)))
		return rc;
	if (kind != STORE_POLICY_ALLOW && kind != STORE_POLICY_BLOCK)
		return store_invalid(st, "a list entry is allow or block");
	if (!value_ok(pattern) || !pattern[0] || strpbrk(pattern, " \t"))
		return store_invalid(st, "bad list pattern");
	return STORE_OK;
}

int store_policy_list_add(struct store *st, enum store_scope sc, const char *name,
			  enum store_policy_kind kind, const char *pattern)
{
	char n[STORE_ADDR_LEN];
	int rc = list_args(st, sc, name, kind, pattern, n, sizeof(n));

	return rc ? rc : st->ops->policy->list_add(st, sc, n, kind, pattern);
}

int store_policy_list_remove(struct store *st, enum store_scope sc, const char *name,
			     enum store_policy_kind kind, const char *pattern)
{
	char n[STORE_ADDR_LEN];
	int rc = list_args(st, sc, name, kind, pattern, n, sizeof(n));

	return rc ? rc : st->ops->policy->list_remove(st, sc, n, kind, pattern);
}

int store_policy_get(struct store *st, enum store_scope sc, const char *name, store_policy_cb cb,
		     void *arg)
{
	char n[STORE_ADDR_LEN];
	int rc;

	if (!cb)
		return store_invalid(st, "no callback");
	if ((rc = scope_name(st, sc, name, n, sizeof(n))))
		return rc;
	return st->ops->policy->get(st, sc, n, cb, arg);
}

int store_policy_resolve(struct store *st, int64_t mailbox_id, int64_t domain_id,
			 store_policy_cb cb, void *arg)
{
	if (!cb)
		return store_invalid(st, "no callback");
	return st->ops->policy->resolve(st, mailbox_id, domain_id, cb, arg);
}
