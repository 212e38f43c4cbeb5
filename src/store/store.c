/* SPDX-License-Identifier: MIT */
/*
 * store: backend dispatch and the input rules shared by every backend.
 *
 * store_open() picks the backend from the URL scheme. Every public function
 * checks and normalises its arguments here (domains lower-cased and
 * checked, addresses split and rebuilt as local@domain) and then calls the
 * backend through its ops table, so SQLite and PostgreSQL see the same
 * input and give the same answers.
 */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

#include "store/store_private.h"

void store_set_error(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

/* Sets the error text and returns STORE_INVALID. */
int store_invalid(struct store *st, const char *why)
{
	store_set_error(st, "%s", why);
	return STORE_INVALID;
}

const char *store_last_error(struct store *st)
{
	if (!st)
		return "no store";
	return st->err[0] ? st->err : "no error";
}

/* Well-formed UTF-8 without control characters (C0, DEL). */
bool store_text_ok(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return utf8_valid((const unsigned char *)s, strlen(s));
}

/* Host name syntax: dot-separated labels of letters, digits, '-', '_' or
 * UTF-8 (U-labels), no empty label. The caller lower-cases. */
static bool domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253 || !store_text_ok(d))
		return false;
	for (const unsigned char *p = (const unsigned char *)d; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(*p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

int store_addr_split(const char *address, char *local, size_t locallen, char *dom, size_t domlen)
{
	const char *at;

	if (!address || !local || !dom)
		return STORE_INVALID;
	at = strrchr(address, '@');
	if (!at || at == address || !at[1])
		return STORE_INVALID;
	if (str_copyn(local, locallen, address, (size_t)(at - address)) < 0 ||
	    str_copy(dom, domlen, at + 1) < 0)
		return STORE_INVALID;
	str_lower_ascii(dom);
	return STORE_OK;
}

int store_local_key(const char *local, char *key, size_t keylen)
{
	if (str_copy(key, keylen, local) < 0)
		return STORE_INVALID;
	str_lower_ascii(key);
	return STORE_OK;
}

/* Checks a domain name and writes its lower-cased form into out. */
int store_norm_domain(struct store *st, const char *domain, char *out, size_t outlen)
{
	if (!domain || str_copy(out, outlen, domain) < 0) {
		store_set_error(st, "domain name missing or too long");
		return STORE_INVALID;
	}
	str_lower_ascii(out);
	if (!domain_ok(out)) {
		store_set_error(st, "not a valid domain name");
		return STORE_INVALID;
	}
	return STORE_OK;
}

/* Checks local@domain and writes it with the domain lower-cased. */
int store_norm_addr(struct store *st, const char *address, char *out, size_t outlen)
{
	char local[STORE_ADDR_LEN], dom[STORE_DOMAIN_LEN];

	if (store_addr_split(address, local, sizeof(local), dom, sizeof(dom)) < 0) {
		store_set_error(st, "not an address (local@domain)");
		return STORE_INVALID;
	}
	if (!store_text_ok(local) || !domain_ok(dom)) {
		store_set_error(st, "malformed address");
		return STORE_INVALID;
	}
	if (str_fmt(out, outlen, "%s@%s", local, dom) < 0) {
		store_set_error(st, "address too long");
		return STORE_INVALID;
	}
	return STORE_OK;
}

int store_open(const char *url, int busy_timeout_ms, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!url) {
		snprintf(err, errlen, "no store url");
		return STORE_INVALID;
	}
	if (busy_timeout_ms < 0)
		busy_timeout_ms = 0;
	if (!strncmp(url, "sqlite:", 7)) {
		const char *path = url + 7;

		/* sqlite:///abs/path is accepted as well as sqlite:/abs/path */
		if (!strncmp(path, "///", 3))
			path += 2;
		if (!*path) {
			snprintf(err, errlen, "sqlite: url without a path");
			return STORE_INVALID;
		}
		return store_sqlite_open(path, busy_timeout_ms, out, err, errlen);
	}
	if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
		snprintf(err, errlen, "PostgreSQL backend not built yet");
		return STORE_INVALID;
	}
	snprintf(err, errlen, "unknown store url scheme (want sqlite: or postgresql://)");
	return STORE_INVALID;
}

void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}

int store_migrate(struct store *st)
{
	return st->ops->migrate(st);
}

int store_schema_version(struct store *st)
{
	return st->ops->schema_version(st);
}

int store_ping(struct store *st)
{
	return st->ops->ping(st);
}

/* ---- tenancy ---------------------------------------------------------- */

int store_account_ok(struct store *st, const char *account)
{
	size_t len = account ? strlen(account) : 0;

	if (len == 0 || len >= sizeof(((struct store_domain *)0)->account) ||
	    !store_text_ok(account)) {
		store_set_error(st, "account name empty, too long or malformed");
		return STORE_INVALID;
	}
	return STORE_OK;
}

int store_account_ensure(struct store *st, const char *account, int64_t *id)
{
	int rc = store_account_ok(st, account);

	return rc ? rc : st->ops->account_ensure(st, account, id);
}

int store_domain_add(struct store *st, const char *account, const char *domain)
{
	char dom[STORE_DOMAIN_LEN];
	int rc;

	if (!account)
		account = "default";
	if ((rc = store_account_ok(st, account)) ||
	    (rc = store_norm_domain(st, domain, dom, sizeof(dom))))
		return rc;
	return st->ops->domain_add(st, account, dom);
}

int store_domain_remove(struct store *st, const char *domain)
{
	char dom[STORE_DOMAIN_LEN];
	int rc = store_norm_domain(st, domain, dom, sizeof(dom));

	return rc ? rc : st->ops->domain_remove(st, dom);
}

int store_domain_get(struct store *st, const char *domain, struct store_domain *out)
{
	char dom[STORE_DOMAIN_LEN];

	if (!domain)
		return store_invalid(st, "no domain");
	/* What cannot be a hosted domain (an address literal, say) is simply
	 * not one: the delivery worker then routes it by MX. */
	if (str_copy(dom, sizeof(dom), domain) == 0)
		str_lower_ascii(dom);
	else
		dom[0] = '\0';
	if (!domain_ok(dom)) {
		store_set_error(st, "no such domain: %s", domain);
		return STORE_NOTFOUND;
	}
	return st->ops->domain_get(st, dom, out);
}

int store_domain_list(struct store *st, store_domain_cb cb, void *arg)
{
	if (!cb)
		return store_invalid(st, "no callback");
	return st->ops->domain_list(st, cb, arg);
}

int store_domain_set_routes(struct store *st, const char *domain, const struct store_route *routes,
			    size_t n)
{
	char dom[STORE_DOMAIN_LEN];
	int rc = store_norm_domain(st, domain, dom, sizeof(dom));

	if (rc)
		return rc;
	if (n > STORE_MAX_ROUTES || (n && !routes)) {
		store_set_error(st, "at most %d routes", STORE_MAX_ROUTES);
		return STORE_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		if (!memchr(routes[i].host, '\0', sizeof(routes[i].host)) || !routes[i].host[0] ||
		    !store_text_ok(routes[i].host) || routes[i].port == 0) {
			store_set_error(st, "route %zu: bad host or port", i + 1);
			return STORE_INVALID;
		}
	}
	return st->ops->domain_set_routes(st, dom, routes, n);
}

int store_domain_set_catchall(struct store *st, const char *domain, const char *mailbox)
{
	char dom[STORE_DOMAIN_LEN], mb[STORE_ADDR_LEN];
	int rc = store_norm_domain(st, domain, dom, sizeof(dom));

	if (rc)
		return rc;
	if (!mailbox)
		return st->ops->domain_set_catchall(st, dom, NULL);
	if ((rc = store_norm_addr(st, mailbox, mb, sizeof(mb))))
		return rc;
	return st->ops->domain_set_catchall(st, dom, mb);
}

int store_domain_set_require_tls(struct store *st, const char *domain, bool on)
{
	char dom[STORE_DOMAIN_LEN];
	int rc = store_norm_domain(st, domain, dom, sizeof(dom));

	if (rc)
		return rc;
	return st->ops->domain_set_require_tls(st, dom, on);
}

/* "192.0.2.7", "192.0.2.0/24", "2001:db8::/64": printable, short. */
static int rep_key_ok(struct store *st, const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n >= STORE_REP_KEY_LEN)
		return store_invalid(st, "bad reputation key");
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF.:/", key[i]))
			return store_invalid(st, "bad reputation key");
	return STORE_OK;
}

int store_reputation_get(struct store *st, const char *const *keys, size_t n, int64_t now,
			 int64_t half_life, struct store_reputation *out)
{
	for (size_t i = 0; i < n; i++)
		if (rep_key_ok(st, keys[i]))
			return STORE_INVALID;
	return st->ops->reputation_get(st, keys, n, now, half_life, out);
}

int store_reputation_record(struct store *st, const char *const *keys, size_t n, bool spam,
			    int64_t now, int64_t half_life)
{
	for (size_t i = 0; i < n; i++)
		if (rep_key_ok(st, keys[i]))
			return STORE_INVALID;
	return st->ops->reputation_record(st, keys, n, spam, now, half_life);
}

int store_reputation_set_action(struct store *st, const char *key, enum store_rep_action a,
				const char *note, int64_t now)
{
	if (rep_key_ok(st, key))
		return STORE_INVALID;
	if (note && (strlen(note) >= 256 || !store_text_ok(note)))
		return store_invalid(st, "bad note");
	return st->ops->reputation_set_action(st, key, a, note ? note : "", now);
}

int store_reputation_remove(struct store *st, const char *key)
{
	if (rep_key_ok(st, key))
		return STORE_INVALID;
	return st->ops->reputation_remove(st, key);
}

int store_reputation_list(struct store *st, int64_t now, int64_t half_life, store_rep_cb cb,
			  void *arg)
{
	return st->ops->reputation_list(st, now, half_life, cb, arg);
}

int store_mailbox_add(struct store *st, const char *address)
{
	char a[STORE_ADDR_LEN];
	int rc = store_norm_addr(st, address, a, sizeof(a));

	return rc ? rc : st->ops->mailbox_add(st, a);
}

int store_mailbox_remove(struct store *st, const char *address)
{
	char a[STORE_ADDR_LEN];
	int rc = store_norm_addr(st, address, a, sizeof(a));

	return rc ? rc : st->ops->mailbox_remove(st, a);
}

int store_mailbox_list(struct store *st, const char *domain, store_mailbox_cb cb, void *arg)
{
	char dom[STORE_DOMAIN_LEN];
	int rc;

	if (!cb)
		return store_invalid(st, "no callback");
	if (!domain)
		return st->ops->mailbox_list(st, NULL, cb, arg);
	if ((rc = store_norm_domain(st, domain, dom, sizeof(dom))))
		return rc;
	return st->ops->mailbox_list(st, dom, cb, arg);
}

int store_alias_add(struct store *st, const char *alias, const char *mailbox)
{
	char a[STORE_ADDR_LEN], m[STORE_ADDR_LEN];
	int rc;

	if ((rc = store_norm_addr(st, alias, a, sizeof(a))) ||
	    (rc = store_norm_addr(st, mailbox, m, sizeof(m))))
		return rc;
	return st->ops->alias_add(st, a, m);
}

int store_alias_remove(struct store *st, const char *alias)
{
	char a[STORE_ADDR_LEN];
	int rc = store_norm_addr(st, alias, a, sizeof(a));

	return rc ? rc : st->ops->alias_remove(st, a);
}

int store_rcpt_lookup(struct store *st, const char *address, struct store_rcpt *out)
{
	char a[STORE_ADDR_LEN], local[STORE_ADDR_LEN], dom[STORE_DOMAIN_LEN];
	int rc;

	memset(out, 0, sizeof(*out));
	if (store_addr_split(address, local, sizeof(local), dom, sizeof(dom)) < 0 ||
	    !store_text_ok(local)) {
		store_set_error(st, "malformed address");
		return STORE_INVALID;
	}
	/* A domain we could never host (an address literal, ...) is foreign. */
	if (!domain_ok(dom)) {
		out->cls = STORE_RCPT_FOREIGN_DOMAIN;
		return STORE_OK;
	}
	if ((rc = store_norm_addr(st, address, a, sizeof(a))))
		return rc;
	return st->ops->rcpt_lookup(st, a, out);
}

/* ---- queue ------------------------------------------------------------ */

bool store_queue_id_ok(const char *qid)
{
	size_t len = qid ? strnlen(qid, QUEUE_ID_LEN + 1) : 0;

	return len > 0 && len <= QUEUE_ID_LEN && store_text_ok(qid);
}

int store_messages_commit(struct store *st, const struct store_message *const *msgs, size_t n)
{
	if (n == 0)
		return STORE_OK;
	if (!msgs)
		return store_invalid(st, "no messages");
	for (size_t i = 0; i < n; i++) {
		const struct store_message *m = msgs[i];

		if (!m || !store_queue_id_ok(m->queue_id) || !m->sender || m->nrcpts == 0 ||
		    !m->rcpts || (m->len && !m->data)) {
			store_set_error(
			    st, "message %zu: missing queue id, sender, recipients or data", i);
			return STORE_INVALID;
		}
		for (size_t j = 0; j < m->nrcpts; j++) {
			if (!m->rcpts[j].address || !m->rcpts[j].address[0]) {
				store_set_error(st, "message %s: empty recipient", m->queue_id);
				return STORE_INVALID;
			}
			if (m->rcpts[j].quarantine_until > 0 &&
			    (!m->quarantine || (m->quarantine->len && !m->quarantine->data))) {
				store_set_error(st,
						"message %s: quarantined recipient without a copy",
						m->queue_id);
				return STORE_INVALID;
			}
			if (m->rcpts[j].quarantine_until <= 0 && m->rcpts[j].tagged &&
			    (!store_queue_id_ok(m->tagged_queue_id) ||
			     !strcmp(m->tagged_queue_id, m->queue_id) ||
			     (m->tagged_len && !m->tagged_data))) {
				store_set_error(
				    st, "message %s: tagged recipient without a tagged copy",
				    m->queue_id);
				return STORE_INVALID;
			}
		}
	}
	return st->ops->messages_commit(st, msgs, n);
}

int store_queue_claim(struct store *st, const char *owner, int64_t now, int64_t lease,
		      struct store_delivery *out, size_t max, size_t *n)
{
	*n = 0;
	if (!owner || !*owner || lease <= 0 || (max && !out)) {
		store_set_error(st, "claim needs an owner, a positive lease and room");
		return STORE_INVALID;
	}
	if (max == 0)
		return STORE_OK;
	return st->ops->queue_claim(st, owner, now, lease, out, max, n);
}

int store_message_load(struct store *st, int64_t message_id, void **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	return st->ops->message_load(st, message_id, data, len);
}

int store_queue_record(struct store *st, const struct store_outcome *o, size_t n)
{
	if (n == 0)
		return STORE_OK;
	if (!o)
		return store_invalid(st, "no outcomes");
	for (size_t i = 0; i < n; i++) {
		if (o[i].kind != STORE_DELIVERED && o[i].kind != STORE_DEFERRED &&
		    o[i].kind != STORE_BOUNCED) {
			store_set_error(st, "outcome %zu: unknown kind %d", i, (int)o[i].kind);
			return STORE_INVALID;
		}
	}
	return st->ops->queue_record(st, o, n);
}

int store_queue_release(struct store *st, const char *owner)
{
	if (!owner)
		return store_invalid(st, "no owner");
	return st->ops->queue_release(st, owner);
}

int store_queue_release_node(struct store *st, const char *node)
{
	if (!node || !*node)
		return store_invalid(st, "no node");
	return st->ops->queue_release_node(st, node);
}

int store_queue_list(struct store *st, const char *queue_id, store_queue_cb cb, void *arg)
{
	if (!cb || (queue_id && !store_queue_id_ok(queue_id)))
		return store_invalid(st, "malformed queue id");
	return st->ops->queue_list(st, queue_id, cb, arg);
}

int store_queue_retry(struct store *st, const char *queue_id, int64_t now, size_t *n)
{
	*n = 0;
	if (queue_id && !store_queue_id_ok(queue_id))
		return store_invalid(st, "malformed queue id");
	return st->ops->queue_retry(st, queue_id, now, n);
}

int store_queue_delete(struct store *st, const char *queue_id)
{
	if (!store_queue_id_ok(queue_id))
		return store_invalid(st, "malformed queue id");
	return st->ops->queue_delete(st, queue_id);
}

int store_queue_count(struct store *st, int64_t *n)
{
	*n = 0;
	return st->ops->queue_count(st, n);
}

/* ---- message log ------------------------------------------------------ */

int store_log_add(struct store *st, const struct store_log_entry *e)
{
	if (!e || !e->event || !*e->event) {
		store_set_error(st, "log entry without an event");
		return STORE_INVALID;
	}
	return st->ops->log_add(st, e);
}

int store_log_search(struct store *st, const struct store_log_query *q, store_log_cb cb, void *arg)
{
	struct store_log_query all = {0};

	if (!cb)
		return store_invalid(st, "no callback");
	return st->ops->log_search(st, q ? q : &all, cb, arg);
}
