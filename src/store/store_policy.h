/* SPDX-License-Identifier: MIT */
/*
 * store_policy: per-recipient settings and sender/IP lists, at four
 * levels that inherit global > account > domain > mailbox.
 *
 * An item is either a setting (key = value; the meaning, defaults and
 * bounds of each key are the policy module's, src/policy/policy.c: the
 * store keeps text) or a list entry (allow or block; value is a pattern:
 * "user@example.com", "@example.com", "example.com" with its
 * subdomains, or an IP address or CIDR network).
 *
 * A scope is named by what it is: "" for global, the account name, the
 * domain, the mailbox address. Naming something that does not exist is
 * STORE_NOTFOUND.
 */
#ifndef MXG_STORE_POLICY_H
#define MXG_STORE_POLICY_H

#include "store/store.h"

enum store_scope {
	STORE_SCOPE_GLOBAL = 0,
	STORE_SCOPE_ACCOUNT = 1,
	STORE_SCOPE_DOMAIN = 2,
	STORE_SCOPE_MAILBOX = 3,
};

enum store_policy_kind {
	STORE_POLICY_SETTING = 0,
	STORE_POLICY_ALLOW = 1,
	STORE_POLICY_BLOCK = 2,
};

#define STORE_POLICY_KEY_LEN 64

struct store_policy_item {
	enum store_scope scope;
	enum store_policy_kind kind;
	char key[STORE_POLICY_KEY_LEN]; /* settings; "" for list entries */
	char value[STORE_ADDR_LEN];
};

typedef int (*store_policy_cb)(const struct store_policy_item *it, void *arg);

/* Sets key to value at a scope, or removes it (value NULL). */
int store_policy_set(struct store *st, enum store_scope sc, const char *name, const char *key,
		     const char *value) MXG_WUR;
/* Adds (STORE_EXISTS if present) or removes (STORE_NOTFOUND if absent) a
 * list entry; kind is STORE_POLICY_ALLOW or STORE_POLICY_BLOCK. */
int store_policy_list_add(struct store *st, enum store_scope sc, const char *name,
			  enum store_policy_kind kind, const char *pattern) MXG_WUR;
int store_policy_list_remove(struct store *st, enum store_scope sc, const char *name,
			     enum store_policy_kind kind, const char *pattern) MXG_WUR;
/* The items of one scope, settings first. */
int store_policy_get(struct store *st, enum store_scope sc, const char *name, store_policy_cb cb,
		     void *arg) MXG_WUR;
/* Every item that applies to a recipient (ids from store_rcpt_lookup),
 * broadest scope first, so a later setting overrides an earlier one. */
int store_policy_resolve(struct store *st, int64_t mailbox_id, int64_t domain_id,
			 store_policy_cb cb, void *arg) MXG_WUR;

/* ---- for backends ------------------------------------------------------ */

struct store_policy_ops {
	int (*set)(struct store *st, enum store_scope sc, const char *name, const char *key,
		   const char *value);
	int (*list_add)(struct store *st, enum store_scope sc, const char *name,
			enum store_policy_kind kind, const char *pattern);
	int (*list_remove)(struct store *st, enum store_scope sc, const char *name,
			   enum store_policy_kind kind, const char *pattern);
	int (*get)(struct store *st, enum store_scope sc, const char *name, store_policy_cb cb,
		   void *arg);
	int (*resolve)(struct store *st, int64_t mailbox_id, int64_t domain_id, store_policy_cb cb,
		       void *arg);
};

#endif
