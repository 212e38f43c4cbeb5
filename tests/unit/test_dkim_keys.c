/* SPDX-License-Identifier: MIT */
/*
 * DKIM signing keys: the store operations (add, list, activate, rotate,
 * remove, active), key generation into the store, and the signer's choice
 * of domain and key (auth/dkim_keys.h), on a fresh SQLite store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/dkim_keys.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_dkim.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char url[160], err[256];

	if (!f)
		return -1;
	(void)str_copy(f->dir, sizeof(f->dir), "/tmp/mxg-dkimkeys-XXXXXX");
	if (!mkdtemp(f->dir) || str_fmt(f->path, sizeof(f->path), "%s/m.db", f->dir) < 0 ||
	    str_fmt(url, sizeof(url), "sqlite:%s", f->path) < 0)
		return -1;
	if (store_open(url, 2000, &f->st, err, sizeof(err)) || store_migrate(f->st))
		return -1;
	if (store_domain_add(f->st, "default", "example.com") ||
	    store_domain_add(f->st, "default", "other.example"))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	store_close(f->st);
	unlink(f->path);
	if (!str_fmt(p, sizeof(p), "%s-wal", f->path))
		unlink(p);
	if (!str_fmt(p, sizeof(p), "%s-shm", f->path))
		unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static const char fake_pem[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

static struct store_dkim_key *mk(const char *domain, const char *sel, int64_t created)
{
	static struct store_dkim_key k;

	memset(&k, 0, sizeof(k));
	(void)str_copy(k.domain, sizeof(k.domain), domain);
	(void)str_copy(k.selector, sizeof(k.selector), sel);
	(void)str_copy(k.algorithm, sizeof(k.algorithm), "rsa-sha256");
	(void)str_copy(k.private_key, sizeof(k.private_key), fake_pem);
	(void)str_copy(k.dns_record, sizeof(k.dns_record), "v=DKIM1; k=rsa; p=AAAA");
	k.created_at = created;
	return &k;
}

struct seen {
	int n;
	char sel[8][STORE_DKIM_SELECTOR_LEN];
	enum store_dkim_state state[8];
	int64_t activated[8];
};

static int collect(const struct store_dkim_key *k, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8) {
		(void)str_copy(s->sel[s->n], sizeof(s->sel[0]), k->selector);
		s->state[s->n] = k->state;
		s->activated[s->n] = k->activated_at;
	}
	s->n++;
	return 0;
}

static void test_add_list_activate_rotate(void **state)
{
	struct fx *f = *state;
	struct store_dkim_key *out = calloc(1, sizeof(*out));
	struct seen s;

	assert_non_null(out);
	assert_int_equal(store_dkim_add(f->st, mk("Example.COM", "Sel1", 1000)), STORE_OK);
	assert_int_equal(store_dkim_add(f->st, mk("example.com", "sel1", 1001)), STORE_EXISTS);
	assert_int_equal(store_dkim_add(f->st, mk("example.com", "sel2", 2000)), STORE_OK);
	assert_int_equal(store_dkim_add(f->st, mk("other.example", "sel1", 1500)), STORE_OK);
	assert_int_equal(store_dkim_add(f->st, mk("nothosted.example", "a", 1)), STORE_NOTFOUND);
	assert_int_equal(store_dkim_add(f->st, mk("example.com", "bad sel", 1)), STORE_INVALID);
	assert_int_equal(store_dkim_add(f->st, mk("example.com", "a..b", 1)), STORE_INVALID);

	/* newest first, all pending, none active */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dkim_list(f->st, "example.com", collect, &s), STORE_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.sel[0], "sel2");
	assert_string_equal(s.sel[1], "sel1"); /* stored lower-cased */
	assert_int_equal(s.state[0], STORE_DKIM_PENDING);
	assert_int_equal(s.state[1], STORE_DKIM_PENDING);
	assert_int_equal(store_dkim_active(f->st, "example.com", out), STORE_NOTFOUND);

	/* activate sel1 */
	assert_int_equal(store_dkim_activate(f->st, "example.com", "sel1", 3000), STORE_OK);
	assert_int_equal(store_dkim_active(f->st, "EXAMPLE.com", out), STORE_OK);
	assert_string_equal(out->selector, "sel1");
	assert_string_equal(out->domain, "example.com");
	assert_string_equal(out->private_key, fake_pem);
	assert_int_equal(out->state, STORE_DKIM_ACTIVE);
	assert_int_equal(out->activated_at, 3000);
	/* again: no change */
	assert_int_equal(store_dkim_activate(f->st, "example.com", "sel1", 3500), STORE_OK);
	assert_int_equal(store_dkim_active(f->st, "example.com", out), STORE_OK);
	assert_int_equal(out->activated_at, 3000);

	/* rotate: sel2 active, sel1 retired but still listed */
	assert_int_equal(store_dkim_activate(f->st, "example.com", "sel2", 4000), STORE_OK);
	assert_int_equal(store_dkim_active(f->st, "example.com", out), STORE_OK);
	assert_string_equal(out->selector, "sel2");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dkim_list(f->st, "example.com", collect, &s), STORE_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.state[0], STORE_DKIM_ACTIVE);
	assert_int_equal(s.state[1], STORE_DKIM_RETIRED);
	assert_int_equal(s.activated[1], 3000);

	/* the other domain is untouched */
	assert_int_equal(store_dkim_active(f->st, "other.example", out), STORE_NOTFOUND);
	assert_int_equal(store_dkim_activate(f->st, "other.example", "nosuch", 1), STORE_NOTFOUND);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dkim_list(f->st, NULL, collect, &s), STORE_OK);
	assert_int_equal(s.n, 3);

	/* remove the retired key; removing twice is NOTFOUND */
	assert_int_equal(store_dkim_remove(f->st, "example.com", "sel1"), STORE_OK);
	assert_int_equal(store_dkim_remove(f->st, "example.com", "sel1"), STORE_NOTFOUND);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dkim_list(f->st, "example.com", collect, &s), STORE_OK);
	assert_int_equal(s.n, 1);
	/* removing the active key leaves the domain without one */
	assert_int_equal(store_dkim_remove(f->st, "example.com", "sel2"), STORE_OK);
	assert_int_equal(store_dkim_active(f->st, "example.com", out), STORE_NOTFOUND);

	/* a removed domain takes its keys with it */
	assert_int_equal(store_domain_remove(f->st, "other.example"), STORE_OK);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dkim_list(f->st, NULL, collect, &s), STORE_OK);
	assert_int_equal(s.n, 0);
	free(out);
}

static void test_generate_defaults(void **state)
{
	struct fx *f = *state;
	struct store_dkim_key *k = calloc(1, sizeof(*k));
	char name[200];

	assert_non_null(k);
	/* 2024-03-05 UTC */
	dkim_keys_default_selector(1709640000, name, sizeof(name));
	assert_string_equal(name, "mxg202403");
	assert_int_equal(
	    dkim_keys_generate(f->st, "example.com", NULL, DKIM_KEY_RSA2048, 1709640000, k), 0);
	assert_string_equal(k->selector, "mxg202403");
	assert_string_equal(k->algorithm, "rsa-sha256");
	assert_int_equal(k->state, STORE_DKIM_PENDING);
	assert_non_null(strstr(k->dns_record, "v=DKIM1; k=rsa; p="));
	assert_true(strlen(k->dns_record) > 300); /* a 2048-bit public key */
	assert_int_equal(dkim_keys_record_name(k->domain, k->selector, name, sizeof(name)), 0);
	assert_string_equal(name, "mxg202403._domainkey.example.com");
	/* the same month again collides */
	assert_int_equal(
	    dkim_keys_generate(f->st, "example.com", NULL, DKIM_KEY_RSA2048, 1709640000, NULL),
	    STORE_EXISTS);
	assert_int_equal(dkim_keys_generate(f->st, "example.com", "ed", DKIM_KEY_ED25519, 0, k), 0);
	assert_string_equal(k->algorithm, "ed25519-sha256");
	assert_non_null(strstr(k->dns_record, "k=ed25519"));
	assert_int_equal(
	    dkim_keys_generate(f->st, "nothosted.example", "x", DKIM_KEY_ED25519, 0, NULL),
	    STORE_NOTFOUND);
	free(k);
}

static const char msg_from_example[] = "From: Alice <alice@Example.COM>\r\n"
				       "To: bob@elsewhere.example\r\n"
				       "Subject: hello\r\n"
				       "\r\n"
				       "body\r\n";

static void test_signer_picks_domain(void **state)
{
	struct fx *f = *state;
	struct dkim_signer *sg = NULL;
	struct dkim_signed out;

	assert_int_equal(dkim_signer_new(300, &sg), 0);
	/* no active key anywhere: not signed */
	assert_int_equal(dkim_signer_sign(sg, f->st, "alice@example.com", msg_from_example,
					  strlen(msg_from_example), 1000, &out),
			 0);
	assert_null(out.field);

	/* an active key for example.com: signed with d= the From domain */
	assert_int_equal(dkim_keys_generate(f->st, "example.com", "s1", DKIM_KEY_ED25519, 0, NULL),
			 0);
	assert_int_equal(store_dkim_activate(f->st, "example.com", "s1", 0), STORE_OK);
	/* still the cached "no key" within the ttl */
	assert_int_equal(
	    dkim_signer_sign(sg, f->st, "", msg_from_example, strlen(msg_from_example), 1100, &out),
	    0);
	assert_null(out.field);
	/* after the ttl, the key is seen */
	assert_int_equal(
	    dkim_signer_sign(sg, f->st, "", msg_from_example, strlen(msg_from_example), 1400, &out),
	    0);
	assert_non_null(out.field);
	assert_string_equal(out.domain, "example.com");
	assert_string_equal(out.selector, "s1");
	assert_true(strncmp(out.field, "DKIM-Signature:", 15) == 0);
	assert_non_null(strstr(out.field, "d=example.com"));
	assert_non_null(strstr(out.field, "s=s1"));
	assert_non_null(strstr(out.field, "a=ed25519-sha256"));
	free(out.field);

	/* From a foreign domain, envelope sender hosted: the sender's domain */
	{
		static const char m2[] = "From: x@foreign.example\r\nSubject: s\r\n\r\nb\r\n";

		assert_int_equal(
		    dkim_signer_sign(sg, f->st, "bounce@example.com", m2, strlen(m2), 1400, &out),
		    0);
		assert_non_null(out.field);
		assert_string_equal(out.domain, "example.com");
		free(out.field);
		/* and neither hosted: unsigned */
		assert_int_equal(
		    dkim_signer_sign(sg, f->st, "y@foreign.example", m2, strlen(m2), 1400, &out),
		    0);
		assert_null(out.field);
	}

	/* rotation: the new key is used once the cache has expired */
	assert_int_equal(dkim_keys_generate(f->st, "example.com", "s2", DKIM_KEY_RSA2048, 0, NULL),
			 0);
	assert_int_equal(store_dkim_activate(f->st, "example.com", "s2", 0), STORE_OK);
	dkim_signer_flush(sg);
	{
		void *body = malloc(sizeof(msg_from_example));
		size_t len = strlen(msg_from_example);

		assert_non_null(body);
		memcpy(body, msg_from_example, sizeof(msg_from_example));
		assert_int_equal(dkim_signer_prepend(sg, f->st, "", &body, &len, "TESTQID"), 0);
		assert_true(len > strlen(msg_from_example));
		assert_true(strncmp(body, "DKIM-Signature:", 15) == 0);
		assert_non_null(strstr(body, "s=s2"));
		assert_non_null(strstr(body, "a=rsa-sha256"));
		/* the original follows the field unchanged */
		assert_memory_equal((char *)body + len - strlen(msg_from_example), msg_from_example,
				    strlen(msg_from_example));
		free(body);
	}
	dkim_signer_free(sg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_add_list_activate_rotate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_generate_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signer_picks_domain, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
