/* SPDX-License-Identifier: MIT */
/*
 * dkim_keys: key generation into the store, and the signer's key cache
 * (see dkim_keys.h).
 */
#include "auth/dkim_keys.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/dmarc.h"
#include "core/log.h"

void dkim_keys_default_selector(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, outlen, "mxg%Y%m", &tm))
		(void)str_copy(out, outlen, "mxg");
}

int dkim_keys_record_name(const char *domain, const char *selector, char *out, size_t outlen)
{
	if (!domain || !selector || !domain[0] || !selector[0])
		return -EINVAL;
	return str_fmt(out, outlen, "%s._domainkey.%s", selector, domain) < 0 ? -ENAMETOOLONG : 0;
}

int dkim_keys_generate(struct store *st, const char *domain, const char *selector,
		       enum dkim_key_type type, int64_t now, struct store_dkim_key *out)
{
	struct store_dkim_key *k = calloc(1, sizeof(*k));
	char *pem = NULL, *txt = NULL;
	int rc;

	if (!k)
		return -ENOMEM;
	if (!domain || (type != DKIM_KEY_RSA2048 && type != DKIM_KEY_ED25519)) {
		rc = -EINVAL;
		goto out;
	}
	if (now <= 0)
		now = time_now();
	rc = 0;
	if (selector && selector[0])
		rc = str_copy(k->selector, sizeof(k->selector), selector) < 0 ? -EINVAL : 0;
	else
		dkim_keys_default_selector(now, k->selector, sizeof(k->selector));
	if (rc < 0 || str_copy(k->domain, sizeof(k->domain), domain) < 0) {
		rc = -EINVAL;
		goto out;
	}
	if ((rc = dkim_keygen(type, &pem, &txt)) < 0)
		goto out;
	if (str_copy(k->private_key, sizeof(k->private_key), pem) < 0 ||
	    str_copy(k->dns_record, sizeof(k->dns_record), txt) < 0) {
		rc = -E2BIG;
		goto out;
	}
	(void)str_copy(k->algorithm, sizeof(k->algorithm),
		       type == DKIM_KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256");
	k->created_at = now;
	if ((rc = store_dkim_add(st, k)) < 0)
		goto out;
	if (out) {
		/* what the store made of it (selector lower-cased, state) */
		memcpy(out, k, sizeof(*out));
		str_lower_ascii(out->selector);
		str_lower_ascii(out->domain);
		out->state = STORE_DKIM_PENDING;
	}
out:
	if (pem) {
		explicit_bzero(pem, strlen(pem));
		free(pem);
	}
	free(txt);
	explicit_bzero(k, sizeof(*k));
	free(k);
	return rc;
}

/* ---- the signer -------------------------------------------------------------- */

/* A parsed key shared by the cache and the threads signing with it. */
struct dk_ref {
	int refs;
	struct dkim_key *key;
	char selector[STORE_DKIM_SELECTOR_LEN];
};

struct dk_entry {
	char domain[STORE_DOMAIN_LEN];
	struct dk_ref *ref; /* NULL: the domain has no active key */
	int64_t loaded_at;
};

struct dkim_signer {
	pthread_mutex_t mu;
	int64_t ttl;
	struct dk_entry *v;
	size_t n;
};

int dkim_signer_new(int64_t ttl, struct dkim_signer **out)
{
	struct dkim_signer *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->v = calloc(DKIM_KEYS_CACHE_MAX, sizeof(*s->v));
	if (!s->v) {
		free(s);
		return -ENOMEM;
	}
	s->ttl = ttl > 0 ? ttl : DKIM_KEYS_TTL;
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return 0;
}

/* Called with the lock held (or by the last user). */
static void ref_put(struct dk_ref *r)
{
	if (r && --r->refs == 0) {
		dkim_key_free(r->key);
		free(r);
	}
}

void dkim_signer_flush(struct dkim_signer *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n; i++)
		ref_put(s->v[i].ref);
	s->n = 0;
	pthread_mutex_unlock(&s->mu);
}

void dkim_signer_free(struct dkim_signer *s)
{
	if (!s)
		return;
	dkim_signer_flush(s);
	pthread_mutex_destroy(&s->mu);
	free(s->v);
	free(s);
}

/* The cached entry of domain, or NULL. Lock held. */
static struct dk_entry *find_locked(struct dkim_signer *s, const char *domain)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].domain, domain))
			return &s->v[i];
	return NULL;
}

/* Stores (domain -> ref) in the cache, replacing an older answer; the
 * oldest entry goes when the cache is full. Lock held; takes a reference. */
static void put_locked(struct dkim_signer *s, const char *domain, struct dk_ref *ref, int64_t now)
{
	struct dk_entry *e = find_locked(s, domain);

	if (!e) {
		if (s->n == DKIM_KEYS_CACHE_MAX) {
			size_t old = 0;

			for (size_t i = 1; i < s->n; i++)
				if (s->v[i].loaded_at < s->v[old].loaded_at)
					old = i;
			ref_put(s->v[old].ref);
			s->v[old] = s->v[--s->n];
		}
		e = &s->v[s->n++];
		memset(e, 0, sizeof(*e));
		(void)str_copy(e->domain, sizeof(e->domain), domain);
	} else {
		ref_put(e->ref);
	}
	e->ref = ref;
	if (ref)
		ref->refs++;
	e->loaded_at = now;
}

/* A referenced key for domain in *out (NULL: none). 0 or a negative code. */
static int key_for(struct dkim_signer *s, struct store *st, const char *domain, int64_t now,
		   struct dk_ref **out)
{
	struct store_dkim_key *k = NULL;
	struct dk_ref *ref = NULL;
	struct dk_entry *e;
	bool stale = false;
	char why[128];
	int rc;

	*out = NULL;
	pthread_mutex_lock(&s->mu);
	e = find_locked(s, domain);
	if (e && now - e->loaded_at < s->ttl && now >= e->loaded_at) {
		if (e->ref) {
			e->ref->refs++;
			*out = e->ref;
		}
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	stale = e != NULL;
	pthread_mutex_unlock(&s->mu);

	k = malloc(sizeof(*k));
	if (!k)
		return -ENOMEM;
	rc = store_dkim_active(st, domain, k);
	if (rc == STORE_OK) {
		ref = calloc(1, sizeof(*ref));
		if (!ref) {
			rc = -ENOMEM;
			goto out;
		}
		rc = dkim_key_from_pem(k->private_key, strlen(k->private_key), &ref->key, why,
				       sizeof(why));
		if (rc < 0) {
			log_err("dkim",
				"domain=%s selector=%s msg=\"the active key is unusable: %s\"",
				domain, k->selector, why);
			free(ref);
			ref = NULL; /* cached as "no key": mail goes out unsigned */
		} else {
			(void)str_copy(ref->selector, sizeof(ref->selector), k->selector);
		}
	} else if (rc != STORE_NOTFOUND && rc != STORE_INVALID) {
		/* the store cannot answer: an old answer is better than none */
		if (stale) {
			pthread_mutex_lock(&s->mu);
			e = find_locked(s, domain);
			if (e && e->ref) {
				e->ref->refs++;
				*out = e->ref;
			}
			pthread_mutex_unlock(&s->mu);
			rc = e ? 0 : rc;
		}
		goto out;
	}
	pthread_mutex_lock(&s->mu);
	put_locked(s, domain, ref, now);
	if (ref)
		ref->refs++; /* the caller's */
	pthread_mutex_unlock(&s->mu);
	*out = ref;
	rc = 0;
out:
	explicit_bzero(k, sizeof(*k));
	free(k);
	return rc;
}

/* The unfolded value of the one From field of msg's header into buf;
 * false if there is none or more than one. */
static bool from_field(const char *msg, size_t len, char *buf, size_t buflen)
{
	size_t i = 0, o = 0;
	int found = 0;
	bool in_from = false;

	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - msg) : len, le = e;

		if (le > i && msg[le - 1] == '\r')
			le--;
		if (le == i)
			break; /* the empty line */
		if (msg[i] == ' ' || msg[i] == '\t') {
			if (in_from)
				for (size_t k = i; k < le && o + 1 < buflen; k++)
					buf[o++] = msg[k];
		} else {
			in_from = le - i > 5 && !strncasecmp(msg + i, "from", 4) &&
				  (msg[i + 4] == ':' || msg[i + 4] == ' ' || msg[i + 4] == '\t');
			if (in_from) {
				const char *colon = memchr(msg + i, ':', le - i);

				if (++found > 1 || !colon)
					return false;
				for (size_t k = (size_t)(colon - msg) + 1; k < le && o + 1 < buflen;
				     k++)
					buf[o++] = msg[k];
			}
		}
		i = e + 1;
	}
	buf[o] = '\0';
	return found == 1;
}

int dkim_signer_sign(struct dkim_signer *s, struct store *st, const char *sender, const char *msg,
		     size_t len, int64_t now, struct dkim_signed *out)
{
	char from[DMARC_MAX_FROM], cand[2][STORE_DOMAIN_LEN];
	struct dkim_sign_opts so = {0};
	struct dk_ref *ref = NULL;
	size_t ncand = 0, naddr = 0;
	const char *at;
	int rc = 0;

	if (!s || !st || !msg || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (from_field(msg, len, from, sizeof(from)) &&
	    dmarc_from_domain(from, strlen(from), cand[0], sizeof(cand[0]), &naddr) == 0 &&
	    naddr == 1)
		ncand++;
	if (sender && (at = strrchr(sender, '@')) && at[1] &&
	    str_copy(cand[ncand], sizeof(cand[0]), at + 1) == 0) {
		str_lower_ascii(cand[ncand]);
		if (ncand == 0 || strcmp(cand[0], cand[ncand]) != 0)
			ncand++;
	}
	for (size_t i = 0; i < ncand && !ref; i++) {
		rc = key_for(s, st, cand[i], now > 0 ? now : time_now(), &ref);
		if (rc < 0)
			return rc;
		if (ref)
			(void)str_copy(out->domain, sizeof(out->domain), cand[i]);
	}
	if (!ref)
		return 0;
	(void)str_copy(out->selector, sizeof(out->selector), ref->selector);
	so.domain = out->domain;
	so.selector = out->selector;
	so.now = now;
	rc = dkim_sign(ref->key, &so, msg, len, &out->field);
	if (rc < 0)
		out->field = NULL;
	pthread_mutex_lock(&s->mu);
	ref_put(ref);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int dkim_signer_prepend(struct dkim_signer *s, struct store *st, const char *sender, void **body,
			size_t *len, const char *qid)
{
	struct dkim_signed sig;
	size_t flen;
	char *nb;
	int rc;

	if (!s)
		return 0;
	rc = dkim_signer_sign(s, st, sender, *body, *len, 0, &sig);
	if (rc == STORE_TEMPFAIL || rc == -ENOMEM)
		return STORE_TEMPFAIL; /* try again later rather than send it unsigned */
	if (rc < 0) {
		log_warn("dkim", "qid=%s domain=%s msg=\"not signed: %s\"", qid ? qid : "-",
			 sig.domain[0] ? sig.domain : "-", strerror(-rc));
		return 0;
	}
	if (!sig.field)
		return 0;
	flen = strlen(sig.field);
	nb = malloc(flen + *len + 1);
	if (!nb) {
		free(sig.field);
		log_warn("dkim", "qid=%s msg=\"not signed: out of memory\"", qid ? qid : "-");
		return 0;
	}
	memcpy(nb, sig.field, flen);
	memcpy(nb + flen, *body, *len);
	nb[flen + *len] = '\0';
	free(sig.field);
	free(*body);
	*body = nb;
	*len += flen;
	log_info("dkim", "qid=%s domain=%s selector=%s msg=\"signed\"", qid ? qid : "-", sig.domain,
		 sig.selector);
	return 0;
}
