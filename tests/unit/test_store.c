/* SPDX-License-Identifier: MIT */
/*
 * Store contract tests, run against the SQLite backend (the PostgreSQL
 * backend must pass the same cases). Each test gets a fresh database in its
 * own temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/util.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	char path[128];
	char url[160];
	struct store *st;
	bool mounted; /* dir is a tmpfs we mounted */
};

static int open_store(struct fixture *f, int busy_ms)
{
	char err[256] = "";
	int rc = store_open(f->url, busy_ms, &f->st, err, sizeof(err));

	if (rc)
		print_error("store_open %s: %s\n", f->url, err);
	return rc;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	(void)str_copy(f->dir, sizeof(f->dir), "/tmp/mxg-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (str_fmt(f->path, sizeof(f->path), "%s/mxguard.db", f->dir) < 0 ||
	    str_fmt(f->url, sizeof(f->url), "sqlite:%s", f->path) < 0)
		return -1;
	if (open_store(f, 2000) || store_migrate(f->st))
		return -1;
	*state = f;
	return 0;
}

static void rm_db(const char *path)
{
	char p[200];

	unlink(path);
	if (!str_fmt(p, sizeof(p), "%s-wal", path))
		unlink(p);
	if (!str_fmt(p, sizeof(p), "%s-shm", path))
		unlink(p);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	rm_db(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static int count_domain(const struct store_domain *d, void *arg)
{
	(void)d;
	(*(int *)arg)++;
	return 0;
}

struct mb_seen {
	int mailboxes, aliases;
	char last_target[STORE_ADDR_LEN];
};

static int count_mailbox(const struct store_mailbox *m, void *arg)
{
	struct mb_seen *s = arg;

	if (m->target[0]) {
		s->aliases++;
		(void)str_copy(s->last_target, sizeof(s->last_target), m->target);
	} else {
		s->mailboxes++;
	}
	return 0;
}

static enum store_rcpt_class lookup(struct store *st, const char *addr, char *mailbox)
{
	struct store_rcpt r;

	assert_int_equal(store_rcpt_lookup(st, addr, &r), STORE_OK);
	if (mailbox)
		(void)str_copy(mailbox, STORE_ADDR_LEN, r.mailbox);
	if (r.cls == STORE_RCPT_LOCAL)
		assert_true(r.mailbox_id > 0);
	return r.cls;
}

#define MAX_SEEN 64
struct q_seen {
	int n;
	char qid[MAX_SEEN][QUEUE_ID_LEN + 1];
	char state[MAX_SEEN][16];
	char rcpt[MAX_SEEN][STORE_ADDR_LEN];
	int attempts[MAX_SEEN];
	bool leased[MAX_SEEN];
};

static int collect_queue(const struct store_queue_entry *e, void *arg)
{
	struct q_seen *s = arg;

	if (s->n < MAX_SEEN) {
		(void)str_copy(s->qid[s->n], sizeof(s->qid[0]), e->queue_id);
		(void)str_copy(s->state[s->n], sizeof(s->state[0]), e->state);
		(void)str_copy(s->rcpt[s->n], sizeof(s->rcpt[0]), e->rcpt);
		s->attempts[s->n] = e->attempts;
		s->leased[s->n] = e->leased;
	}
	s->n++;
	return 0;
}

struct log_seen {
	int n;
	int stop_after; /* 0: never */
	char event[MAX_SEEN][16];
	char rcpt[MAX_SEEN][STORE_ADDR_LEN];
	int64_t ts[MAX_SEEN];
};

static int collect_log(const struct store_log_entry *e, void *arg)
{
	struct log_seen *s = arg;

	if (s->n < MAX_SEEN) {
		(void)str_copy(s->event[s->n], sizeof(s->event[0]), e->event);
		(void)str_copy(s->rcpt[s->n], sizeof(s->rcpt[0]), e->rcpt);
		s->ts[s->n] = e->ts;
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static struct log_seen search_log(struct store *st, const struct store_log_query *q)
{
	struct log_seen s = {0};

	assert_int_equal(store_log_search(st, q, collect_log, &s), STORE_OK);
	return s;
}

static int64_t queued(struct store *st)
{
	int64_t n = -1;

	assert_int_equal(store_queue_count(st, &n), STORE_OK);
	return n;
}

/* ---- tests ------------------------------------------------------------ */

static void test_open_migrate(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	char err[256] = "";

	assert_int_equal(store_schema_version(f->st), STORE_SCHEMA_VERSION);
	assert_int_equal(store_migrate(f->st), STORE_OK);
	assert_int_equal(store_migrate(f->st), STORE_OK);
	assert_int_equal(store_schema_version(f->st), STORE_SCHEMA_VERSION);
	assert_int_equal(store_ping(f->st), STORE_OK);

	/* On disk: WAL mode, and one row per applied migration. */
	{
		sqlite3 *db;
		sqlite3_stmt *q;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
		sqlite3_finalize(q);
		assert_int_equal(sqlite3_prepare_v2(db,
						    "SELECT COUNT(*), MAX(version) FROM "
						    "schema_migrations",
						    -1, &q, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(q, 0), STORE_SCHEMA_VERSION);
		assert_int_equal(sqlite3_column_int(q, 1), STORE_SCHEMA_VERSION);
		sqlite3_finalize(q);
		sqlite3_close(db);
	}

	/* A second connection sees the migrated schema and migrates nothing. */
	assert_int_equal(store_open(f->url, 1000, &st, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_migrate(st), STORE_OK);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);

	/* A schema newer than this program is refused, not downgraded. */
	{
		sqlite3 *db;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (99, 0)",
					      NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(db);
		assert_int_equal(store_migrate(f->st), STORE_INVALID);
		assert_non_null(strstr(store_last_error(f->st), "newer"));
	}

	assert_int_equal(store_open("postgresql://db/mxguard", 1000, &st, err, sizeof(err)),
			 STORE_INVALID);
	assert_null(st);
	assert_non_null(strstr(err, "PostgreSQL backend not built yet"));
	assert_int_equal(store_open("postgres://db/mxguard", 1000, &st, err, sizeof(err)),
			 STORE_INVALID);
	assert_int_equal(store_open("mysql://db", 1000, &st, err, sizeof(err)), STORE_INVALID);
	assert_int_equal(store_open("sqlite:/nonexistent-dir/x/y.db", 1000, &st, err, sizeof(err)),
			 STORE_TEMPFAIL);
}

static void test_addr_split(void **state)
{
	char local[64], dom[64];

	(void)state;
	assert_int_equal(store_addr_split("Joe@Ex.COM", local, sizeof(local), dom, sizeof(dom)),
			 STORE_OK);
	assert_string_equal(local, "Joe");
	assert_string_equal(dom, "ex.com");
	assert_int_equal(store_addr_split("\"a@b\"@x.org", local, sizeof(local), dom, sizeof(dom)),
			 STORE_OK);
	assert_string_equal(local, "\"a@b\"");
	assert_string_equal(dom, "x.org");
	assert_int_equal(store_addr_split("nobody", local, sizeof(local), dom, sizeof(dom)),
			 STORE_INVALID);
	assert_int_equal(store_addr_split("@x.org", local, sizeof(local), dom, sizeof(dom)),
			 STORE_INVALID);
	assert_int_equal(store_addr_split("a@", local, sizeof(local), dom, sizeof(dom)),
			 STORE_INVALID);
}

static void test_tenancy(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_domain d;
	struct mb_seen seen = {0};
	char mb[STORE_ADDR_LEN];
	int64_t acc1 = 0, acc2 = 0;
	int n = 0;

	assert_int_equal(store_account_ensure(st, "acme", &acc1), STORE_OK);
	assert_int_equal(store_account_ensure(st, "acme", &acc2), STORE_OK);
	assert_true(acc1 > 0);
	assert_int_equal(acc1, acc2);

	assert_int_equal(store_domain_add(st, "acme", "Example.COM"), STORE_OK);
	assert_int_equal(store_domain_add(st, "acme", "example.com"), STORE_EXISTS);
	assert_int_equal(store_domain_add(st, NULL, "other.org"), STORE_OK);
	assert_int_equal(store_domain_add(st, "acme", "bad domain"), STORE_INVALID);
	assert_int_equal(store_domain_add(st, "acme", "a..b"), STORE_INVALID);
	assert_int_equal(store_domain_get(st, "EXAMPLE.com", &d), STORE_OK);
	assert_string_equal(d.name, "example.com");
	assert_string_equal(d.account, "acme");
	assert_string_equal(d.catchall, "");
	assert_int_equal(store_domain_get(st, "other.org", &d), STORE_OK);
	assert_string_equal(d.account, "default");
	assert_int_equal(store_domain_get(st, "nope.org", &d), STORE_NOTFOUND);
	assert_int_equal(store_domain_list(st, count_domain, &n), STORE_OK);
	assert_int_equal(n, 2);

	/* mailboxes: case-insensitive (ASCII) local parts, UTF-8 allowed */
	assert_int_equal(store_mailbox_add(st, "Alice@Example.com"), STORE_OK);
	assert_int_equal(store_mailbox_add(st, "ALICE@example.com"), STORE_EXISTS);
	assert_int_equal(store_mailbox_add(st, "bob@example.com"), STORE_OK);
	assert_int_equal(store_mailbox_add(st, "j\xc3\xbcrgen@example.com"), STORE_OK);
	assert_int_equal(store_mailbox_add(st, "carol@other.org"), STORE_OK);
	assert_int_equal(store_mailbox_add(st, "x@unknown.net"), STORE_NOTFOUND);
	assert_int_equal(store_mailbox_add(st, "noat"), STORE_INVALID);
	assert_int_equal(store_mailbox_add(st, "bad\xff@example.com"), STORE_INVALID);
	assert_int_equal(store_mailbox_add(st, "ctl\n@example.com"), STORE_INVALID);

	assert_int_equal(lookup(st, "alice@EXAMPLE.COM", mb), STORE_RCPT_LOCAL);
	assert_string_equal(mb, "Alice@example.com");
	assert_int_equal(lookup(st, "J\xc3\xbcRGEN@example.com", mb), STORE_RCPT_LOCAL);
	assert_string_equal(mb, "j\xc3\xbcrgen@example.com");
	/* Only ASCII folds: U+00DC is not U+00FC. */
	assert_int_equal(lookup(st, "j\xc3\x9crgen@example.com", NULL), STORE_RCPT_UNKNOWN_MAILBOX);
	assert_int_equal(lookup(st, "nobody@example.com", NULL), STORE_RCPT_UNKNOWN_MAILBOX);
	assert_int_equal(lookup(st, "alice@foreign.net", NULL), STORE_RCPT_FOREIGN_DOMAIN);
	assert_int_equal(lookup(st, "alice@[192.0.2.1]", NULL), STORE_RCPT_FOREIGN_DOMAIN);
	assert_int_equal(store_domain_get(st, "[192.0.2.1]", &d), STORE_NOTFOUND);
	{
		struct store_rcpt r;
		assert_int_equal(store_rcpt_lookup(st, "no-domain", &r), STORE_INVALID);
	}

	/* aliases, within and across domains */
	assert_int_equal(store_alias_add(st, "Sales@example.com", "alice@example.com"), STORE_OK);
	assert_int_equal(store_alias_add(st, "sales@example.com", "bob@example.com"), STORE_EXISTS);
	assert_int_equal(store_alias_add(st, "bob@example.com", "alice@example.com"), STORE_EXISTS);
	assert_int_equal(store_alias_add(st, "x@example.com", "ghost@example.com"), STORE_NOTFOUND);
	assert_int_equal(store_alias_add(st, "info@other.org", "BOB@example.com"), STORE_OK);
	assert_int_equal(store_mailbox_add(st, "SALES@example.com"), STORE_EXISTS);
	assert_int_equal(lookup(st, "SALES@example.com", mb), STORE_RCPT_LOCAL);
	assert_string_equal(mb, "Alice@example.com");
	assert_int_equal(lookup(st, "info@other.org", mb), STORE_RCPT_LOCAL);
	assert_string_equal(mb, "bob@example.com");

	/* An exact mailbox wins over the catch-all. */
	assert_int_equal(store_domain_set_catchall(st, "example.com", "bob@example.com"), STORE_OK);
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_OK);
	assert_string_equal(d.catchall, "bob@example.com");
	assert_int_equal(lookup(st, "whoever@example.com", mb), STORE_RCPT_LOCAL);
	assert_string_equal(mb, "bob@example.com");
	assert_int_equal(lookup(st, "alice@example.com", mb), STORE_RCPT_LOCAL);
	assert_string_equal(mb, "Alice@example.com");
	assert_int_equal(store_domain_set_catchall(st, "example.com", "carol@other.org"),
			 STORE_INVALID);
	assert_int_equal(store_domain_set_catchall(st, "example.com", "ghost@example.com"),
			 STORE_NOTFOUND);
	assert_int_equal(store_domain_set_catchall(st, "example.com", NULL), STORE_OK);
	assert_int_equal(lookup(st, "whoever@example.com", NULL), STORE_RCPT_UNKNOWN_MAILBOX);

	assert_int_equal(store_mailbox_list(st, "example.com", count_mailbox, &seen), STORE_OK);
	assert_int_equal(seen.mailboxes, 3);
	assert_int_equal(seen.aliases, 1);
	assert_string_equal(seen.last_target, "Alice@example.com");
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_mailbox_list(st, NULL, count_mailbox, &seen), STORE_OK);
	assert_int_equal(seen.mailboxes, 4);
	assert_int_equal(seen.aliases, 2);
	assert_int_equal(store_mailbox_list(st, "nope.org", count_mailbox, &seen), STORE_NOTFOUND);

	/* removals */
	assert_int_equal(store_alias_remove(st, "sales@EXAMPLE.com"), STORE_OK);
	assert_int_equal(store_alias_remove(st, "sales@example.com"), STORE_NOTFOUND);
	assert_int_equal(lookup(st, "sales@example.com", NULL), STORE_RCPT_UNKNOWN_MAILBOX);
	assert_int_equal(store_domain_set_catchall(st, "example.com", "bob@example.com"), STORE_OK);
	/* Removing a mailbox drops the aliases to it and clears the catch-all. */
	assert_int_equal(store_mailbox_remove(st, "Bob@example.com"), STORE_OK);
	assert_int_equal(store_mailbox_remove(st, "bob@example.com"), STORE_NOTFOUND);
	assert_int_equal(lookup(st, "info@other.org", NULL), STORE_RCPT_UNKNOWN_MAILBOX);
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_OK);
	assert_string_equal(d.catchall, "");

	assert_int_equal(store_domain_set_catchall(st, "example.com", "alice@example.com"),
			 STORE_OK);
	assert_int_equal(store_domain_remove(st, "example.com"), STORE_OK);
	assert_int_equal(store_domain_remove(st, "example.com"), STORE_NOTFOUND);
	assert_int_equal(lookup(st, "alice@example.com", NULL), STORE_RCPT_FOREIGN_DOMAIN);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_mailbox_list(st, NULL, count_mailbox, &seen), STORE_OK);
	assert_int_equal(seen.mailboxes, 1);
	/* It can come back, empty. */
	assert_int_equal(store_domain_add(st, "acme", "example.com"), STORE_OK);
	assert_int_equal(lookup(st, "alice@example.com", NULL), STORE_RCPT_UNKNOWN_MAILBOX);
}

static void test_routes(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_route r[STORE_MAX_ROUTES + 1];
	struct store_domain d;

	memset(r, 0, sizeof(r));
	assert_int_equal(store_domain_add(st, "acme", "example.com"), STORE_OK);
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_OK);
	assert_int_equal(d.nroutes, 0);

	(void)str_copy(r[0].host, sizeof(r[0].host), "mx2.internal");
	r[0].port = 2525;
	(void)str_copy(r[1].host, sizeof(r[1].host), "2001:db8::1");
	r[1].port = 25;
	(void)str_copy(r[2].host, sizeof(r[2].host), "mx1.internal");
	r[2].port = 25;
	assert_int_equal(store_domain_set_routes(st, "example.com", r, 3), STORE_OK);
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_OK);
	assert_int_equal(d.nroutes, 3);
	assert_string_equal(d.routes[0].host, "mx2.internal");
	assert_int_equal(d.routes[0].port, 2525);
	assert_string_equal(d.routes[1].host, "2001:db8::1");
	assert_string_equal(d.routes[2].host, "mx1.internal");

	assert_int_equal(store_domain_set_routes(st, "example.com", &r[2], 1), STORE_OK);
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_OK);
	assert_int_equal(d.nroutes, 1);
	assert_string_equal(d.routes[0].host, "mx1.internal");

	for (size_t i = 0; i < ARRAY_LEN(r); i++) {
		(void)str_copy(r[i].host, sizeof(r[i].host), "h.example");
		r[i].port = 25;
	}
	assert_int_equal(store_domain_set_routes(st, "example.com", r, STORE_MAX_ROUTES + 1),
			 STORE_INVALID);
	r[0].port = 0;
	assert_int_equal(store_domain_set_routes(st, "example.com", r, 1), STORE_INVALID);
	r[0].port = 25;
	assert_int_equal(store_domain_set_routes(st, "nope.org", r, 1), STORE_NOTFOUND);
	/* The failed calls changed nothing. */
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_OK);
	assert_int_equal(d.nroutes, 1);
	assert_int_equal(store_domain_set_routes(st, "example.com", NULL, 0), STORE_OK);
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_OK);
	assert_int_equal(d.nroutes, 0);
}

/* A message with its own storage. */
struct test_msg {
	struct store_message m;
	struct store_msg_rcpt r[4];
	char body[256];
};

static void make_msg(struct test_msg *t, const char *sender, const char *r1, const char *r2)
{
	memset(t, 0, sizeof(*t));
	queue_id_new(t->m.queue_id);
	t->m.sender = sender;
	t->m.client_addr = "192.0.2.1";
	t->m.helo = "client.example";
	t->m.received_at = time_now();
	t->m.flags = STORE_MSG_8BITMIME;
	t->r[0].address = r1;
	t->r[0].mailbox_id = 1;
	t->m.nrcpts = 1;
	if (r2) {
		t->r[1].address = r2;
		t->m.nrcpts = 2;
	}
	t->m.rcpts = t->r;
	(void)str_fmt(t->body, sizeof(t->body), "From: <%s>\r\nSubject: test %s\r\n\r\nbody",
		      sender, t->m.queue_id);
	/* binary-safe: a NUL and bytes after it */
	memcpy(t->body + strlen(t->body), "\0with nul\r\n", 12);
	t->m.data = t->body;
	t->m.len = strlen(t->body) + 11; /* include the NUL and what follows */
}

static void test_queue(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct test_msg a, b, c;
	const struct store_message *batch[2];
	struct store_delivery d[8];
	struct q_seen qs = {0};
	struct log_seen ls;
	struct store_log_query q = {0};
	size_t n = 99;
	int64_t now = time_now() + 5, lease = 60;
	void *data;
	size_t len;
	int64_t mid_a = 0, mid_b = 0, r_a1 = 0, r_a2 = 0, r_b = 0;

	make_msg(&a, "sender@remote.example", "alice@Example.COM", "bob@example.com");
	make_msg(&b, "", "carol@example.com", NULL);
	/* queue ids are time ordered; make sure they differ */
	b.m.queue_id[QUEUE_ID_LEN - 1] = b.m.queue_id[QUEUE_ID_LEN - 1] == 'A' ? 'B' : 'A';
	batch[0] = &a.m;
	batch[1] = &b.m;
	assert_int_equal(store_messages_commit(st, batch, 2), STORE_OK);
	assert_int_equal(queued(st), 3);

	/* claim with a lease */
	assert_int_equal(store_queue_claim(st, "node1/d", now, lease, d, 8, &n), STORE_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(d[i].queue_id, a.m.queue_id)) {
			mid_a = d[i].message_id;
			if (!strcmp(d[i].rcpt, "alice@example.com"))
				r_a1 = d[i].rcpt_id;
			else
				r_a2 = d[i].rcpt_id;
			assert_string_equal(d[i].sender, "sender@remote.example");
			assert_int_equal(d[i].flags, STORE_MSG_8BITMIME);
		} else {
			assert_string_equal(d[i].queue_id, b.m.queue_id);
			assert_string_equal(d[i].sender, "");
			mid_b = d[i].message_id;
			r_b = d[i].rcpt_id;
		}
		assert_string_equal(d[i].domain, "example.com");
		assert_int_equal(d[i].attempts, 0);
	}
	assert_true(mid_a && mid_b && r_a1 && r_a2 && r_b);
	assert_int_equal(d[0].size, (int64_t)a.m.len);

	assert_int_equal(store_message_load(st, mid_a, &data, &len), STORE_OK);
	assert_int_equal(len, a.m.len);
	assert_memory_equal(data, a.body, len);
	free(data);

	/* A second claim before the lease runs out gets nothing... */
	assert_int_equal(store_queue_claim(st, "node2/d", now + lease - 1, lease, d, 8, &n),
			 STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_queue_list(st, NULL, collect_queue, &qs), STORE_OK);
	assert_int_equal(qs.n, 3);
	assert_true(qs.leased[0] && qs.leased[1] && qs.leased[2]);
	/* ...and everything once it has. */
	assert_int_equal(store_queue_claim(st, "node2/d", now + lease, lease, d, 8, &n), STORE_OK);
	assert_int_equal(n, 3);
	now += lease;

	/* outcomes */
	{
		struct store_outcome o[3] = {
		    {r_a1, STORE_DELIVERED, 0, "mx.example.com:25", "250 2.0.0 ok"},
		    {r_a2, STORE_DEFERRED, now + 300, "mx.example.com:25", "451 4.3.0 later"},
		    {r_b, STORE_BOUNCED, 0, "", "550 5.1.1 no such user"},
		};
		assert_int_equal(store_queue_record(st, o, 3), STORE_OK);
	}
	assert_int_equal(queued(st), 1);
	/* b had only final recipients: gone from the queue, log kept */
	assert_int_equal(store_message_load(st, mid_b, &data, &len), STORE_NOTFOUND);
	assert_int_equal(store_queue_list(st, b.m.queue_id, collect_queue, &qs), STORE_NOTFOUND);
	q.queue_id = b.m.queue_id;
	ls = search_log(st, &q);
	assert_int_equal(ls.n, 2);
	assert_string_equal(ls.event[0], "received");
	assert_string_equal(ls.event[1], "bounced");
	/* a stays with one delivered and one queued recipient */
	memset(&qs, 0, sizeof(qs));
	assert_int_equal(store_queue_list(st, a.m.queue_id, collect_queue, &qs), STORE_OK);
	assert_int_equal(qs.n, 2);
	assert_string_equal(qs.rcpt[0], "alice@example.com");
	assert_string_equal(qs.state[0], "delivered");
	assert_string_equal(qs.state[1], "queued");
	assert_int_equal(qs.attempts[1], 1);
	assert_false(qs.leased[1]);

	/* deferred: not due before next_attempt, retry makes it due now */
	assert_int_equal(store_queue_claim(st, "node1/d", now, lease, d, 8, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_queue_retry(st, a.m.queue_id, now, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_queue_retry(st, "NOSUCHQUEUEID000", now, &n), STORE_NOTFOUND);
	assert_int_equal(store_queue_claim(st, "node1/d", now, lease, d, 8, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].rcpt_id, r_a2);
	assert_int_equal(d[0].attempts, 1);
	/* shutdown: release the lease, another owner claims at once */
	assert_int_equal(store_queue_release(st, "node1/d"), STORE_OK);
	assert_int_equal(store_queue_claim(st, "node3:77", now, lease, d, 8, &n), STORE_OK);
	assert_int_equal(n, 1);
	/* a node's restart releases what any of its processes held ("node3:*"),
	 * and only that: "node30:1" is another node */
	assert_int_equal(store_queue_release_node(st, "node30"), STORE_OK);
	assert_int_equal(store_queue_claim(st, "x:1", now, lease, d, 8, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_queue_release_node(st, "node3"), STORE_OK);
	assert_int_equal(store_queue_claim(st, "node3:78", now, lease, d, 8, &n), STORE_OK);
	assert_int_equal(n, 1);
	{
		struct store_outcome o = {r_a2, STORE_DELIVERED, 0, "mx:25", "250 ok"};
		struct store_outcome again = {r_a2, STORE_BOUNCED, 0, "", "late"};
		assert_int_equal(store_queue_record(st, &o, 1), STORE_OK);
		/* a late report for a removed recipient is ignored */
		assert_int_equal(store_queue_record(st, &again, 1), STORE_OK);
	}
	assert_int_equal(queued(st), 0);
	assert_int_equal(store_message_load(st, mid_a, &data, &len), STORE_NOTFOUND);
	q.queue_id = a.m.queue_id;
	ls = search_log(st, &q);
	assert_int_equal(ls.n, 5); /* 2 received, delivered, deferred, delivered */

	/* all or nothing: a batch with a duplicate queue id stores nothing */
	make_msg(&c, "x@remote.example", "alice@example.com", NULL);
	batch[0] = &c.m;
	batch[1] = &c.m;
	assert_int_equal(store_messages_commit(st, batch, 2), STORE_EXISTS);
	assert_int_equal(queued(st), 0);
	assert_int_equal(store_queue_list(st, c.m.queue_id, collect_queue, &qs), STORE_NOTFOUND);
	q.queue_id = c.m.queue_id;
	assert_int_equal(search_log(st, &q).n, 0);

	/* retry --all and delete */
	assert_int_equal(store_messages_commit(st, batch, 1), STORE_OK);
	assert_int_equal(store_queue_retry(st, NULL, now, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_queue_delete(st, c.m.queue_id), STORE_OK);
	assert_int_equal(store_queue_delete(st, c.m.queue_id), STORE_NOTFOUND);
	assert_int_equal(queued(st), 0);
	ls = search_log(st, &q);
	assert_int_equal(ls.n, 2);
	assert_string_equal(ls.event[1], "deleted");

	/* bad input */
	assert_int_equal(store_queue_claim(st, "", now, lease, d, 8, &n), STORE_INVALID);
	assert_int_equal(store_queue_claim(st, "o", now, 0, d, 8, &n), STORE_INVALID);
	c.m.nrcpts = 0;
	assert_int_equal(store_messages_commit(st, batch, 1), STORE_INVALID);
}

static void add_log(struct store *st, int64_t ts, const char *qid, const char *event,
		    const char *sender, const char *rcpt)
{
	struct store_log_entry e = {ts, qid, event, sender, rcpt, "detail"};

	assert_int_equal(store_log_add(st, &e), STORE_OK);
}

static void test_log_search(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	struct store_log_query q = {0};
	struct log_seen s;

	add_log(st, 1000, "QA", "received", "Boss@Corp.example", "alice@example.com");
	add_log(st, 1001, "QA", "delivered", "Boss@Corp.example", "alice@example.com");
	add_log(st, 2000, "QB", "received", "news@list.example", "bob@example.com");
	add_log(st, 3000, "QC", "received", "100%_off@spam.example", "carol@example.com");
	add_log(st, 3001, "QC", "bounced", "100%_off@spam.example", "carol@example.com");

	s = search_log(st, &q);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.ts[0], 1000); /* oldest first */
	assert_int_equal(s.ts[4], 3001);

	q.queue_id = "QA";
	s = search_log(st, &q);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.event[1], "delivered");
	q.queue_id = "Q";
	assert_int_equal(search_log(st, &q).n, 0); /* exact */
	q.queue_id = NULL;

	q.sender = "boss@corp"; /* substring, any case */
	assert_int_equal(search_log(st, &q).n, 2);
	q.sender = "%_"; /* wildcards are literal */
	assert_int_equal(search_log(st, &q).n, 2);
	q.sender = "_";
	assert_int_equal(search_log(st, &q).n, 2);
	q.sender = NULL;

	q.rcpt = "BOB@";
	s = search_log(st, &q);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.rcpt[0], "bob@example.com");
	q.rcpt = NULL;

	q.since = 2000;
	s = search_log(st, &q);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ts[0], 2000);

	/* limit: the newest rows, still oldest first */
	q.since = 0;
	q.limit = 2;
	s = search_log(st, &q);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ts[0], 3000);
	assert_int_equal(s.ts[1], 3001);

	/* a callback returning non-zero stops the walk */
	q.limit = 0;
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(store_log_search(st, &q, collect_log, &s), STORE_OK);
	assert_int_equal(s.n, 2);
}

/* A writer holding the lock longer than busy_timeout: TEMPFAIL, never a
 * wrong answer, and nothing kept. */
static void test_reputation(void **state)
{
	struct fixture *f = *state;
	struct store *st = f->st;
	const char *keys[2] = {"192.0.2.7", "192.0.2.0/24"};
	struct store_reputation r[2];
	int64_t t0 = 1700000000, hl = 3600;

	assert_int_equal(store_reputation_get(st, keys, 2, t0, hl, r), STORE_OK);
	assert_true(r[0].spam == 0 && r[0].ham == 0 && r[0].updated_at == 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_reputation_record(st, keys, 2, true, t0, hl), STORE_OK);
	assert_int_equal(store_reputation_record(st, keys, 1, false, t0, hl), STORE_OK);
	assert_int_equal(store_reputation_get(st, keys, 2, t0, hl, r), STORE_OK);
	assert_true(r[0].spam > 3.99 && r[0].spam < 4.01);
	assert_true(r[0].ham > 0.99 && r[0].ham < 1.01);
	assert_true(r[1].ham == 0);
	/* one half-life later, half of it */
	assert_int_equal(store_reputation_get(st, keys, 2, t0 + hl, hl, r), STORE_OK);
	assert_true(r[0].spam > 1.99 && r[0].spam < 2.01);
	assert_true(r[1].spam > 1.99 && r[1].spam < 2.01);
	/* a new verdict decays the old count first */
	assert_int_equal(store_reputation_record(st, keys, 1, true, t0 + 2 * hl, hl), STORE_OK);
	assert_int_equal(store_reputation_get(st, keys, 1, t0 + 2 * hl, hl, r), STORE_OK);
	assert_true(r[0].spam > 1.99 && r[0].spam < 2.01);
	/* operator actions survive verdicts; bad keys are refused */
	assert_int_equal(store_reputation_set_action(st, "192.0.2.0/24", STORE_REP_BLOCK, "x", t0),
			 STORE_OK);
	assert_int_equal(store_reputation_record(st, keys, 2, true, t0, hl), STORE_OK);
	assert_int_equal(store_reputation_get(st, keys, 2, t0, hl, r), STORE_OK);
	assert_int_equal(r[1].action, STORE_REP_BLOCK);
	assert_string_equal(r[1].note, "x");
	assert_int_equal(store_reputation_set_action(st, "drop table", STORE_REP_BLOCK, "", t0),
			 STORE_INVALID);
	assert_int_equal(store_reputation_remove(st, "198.51.100.1"), STORE_NOTFOUND);
	assert_int_equal(store_reputation_remove(st, "192.0.2.7"), STORE_OK);
}

static void test_busy_tempfail(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	sqlite3 *db;
	struct store_domain d;

	store_close(f->st);
	f->st = NULL;
	assert_int_equal(open_store(f, 100), STORE_OK);
	st = f->st;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_domain_add(st, "acme", "example.com"), STORE_TEMPFAIL);
	assert_non_null(strstr(store_last_error(st), "locked"));
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_domain_get(st, "example.com", &d), STORE_NOTFOUND);
	assert_int_equal(store_domain_add(st, "acme", "example.com"), STORE_OK);
}

/* Fills a 1 MiB tmpfs until a commit fails: it must fail with TEMPFAIL,
 * keep nothing of that batch, and leave every earlier message intact. */
#define FULL_BODY (24 * 1024)
#define FULL_MAX 200

static void fill_body(char *buf, size_t len, int i)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (char)('A' + (int)((k * 7 + (size_t)i * 13) % 26));
}

/* A fresh tmpfs of 1 MiB (root only); the test skips when there is none.
 * The teardown unmounts even when an assertion failed. */
static int setup_full(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	(void)str_copy(f->dir, sizeof(f->dir), "/tmp/mxg-full-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (str_fmt(f->path, sizeof(f->path), "%s/mxguard.db", f->dir) < 0 ||
	    str_fmt(f->url, sizeof(f->url), "sqlite:%s", f->path) < 0)
		return -1;
	if (geteuid() == 0 && mount("tmpfs", f->dir, "tmpfs", 0, "size=1m") == 0)
		f->mounted = true;
	return 0;
}

static int teardown_full(void **state)
{
	struct fixture *f = *state;
	char filler[200];

	store_close(f->st);
	rm_db(f->path);
	if (!str_fmt(filler, sizeof(filler), "%s/filler", f->dir))
		unlink(filler);
	if (f->mounted && umount(f->dir) < 0)
		print_error("umount %s: %s\n", f->dir, strerror(errno));
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_disk_full(void **state)
{
	struct fixture *f = *state;
	char filler[200], err[256];
	char qids[FULL_MAX][QUEUE_ID_LEN + 1];
	char *body, *expect;
	int committed = 0, rc = STORE_OK, fd;
	struct store_delivery *d;
	size_t n;

	if (!f->mounted) {
		print_message("SKIP test_disk_full: %s\n", geteuid() != 0
							       ? "needs root to mount a 1 MiB tmpfs"
							       : "mount -t tmpfs failed");
		skip();
	}
	assert_int_equal(str_fmt(filler, sizeof(filler), "%s/filler", f->dir), 0);
	body = test_malloc(FULL_BODY);
	expect = test_malloc(FULL_BODY);
	d = test_calloc(FULL_MAX, sizeof(*d));

	/* Space to free later, to show the store recovers. */
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	memset(body, 'F', FULL_BODY);
	for (int k = 0; k < 6; k++)
		assert_int_equal(write(fd, body, FULL_BODY), FULL_BODY);
	close(fd);

	assert_int_equal(store_open(f->url, 1000, &f->st, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_migrate(f->st), STORE_OK);
	while (committed < FULL_MAX) {
		struct store_msg_rcpt r = {"rcpt@example.com", 0};
		struct store_message m = {.sender = "s@example.org",
					  .client_addr = "192.0.2.9",
					  .helo = "h",
					  .received_at = time_now(),
					  .rcpts = &r,
					  .nrcpts = 1,
					  .data = body,
					  .len = FULL_BODY};
		const struct store_message *batch[1] = {&m};

		queue_id_new(m.queue_id);
		m.queue_id[QUEUE_ID_LEN - 3] = (char)('A' + committed / 26 % 26);
		m.queue_id[QUEUE_ID_LEN - 2] = (char)('A' + committed % 26);
		fill_body(body, FULL_BODY, committed);
		rc = store_messages_commit(f->st, batch, 1);
		if (rc != STORE_OK)
			break;
		memcpy(qids[committed++], m.queue_id, sizeof(qids[0]));
	}
	print_message("disk full after %d messages: %s\n", committed, store_last_error(f->st));
	assert_int_equal(rc, STORE_TEMPFAIL);
	assert_true(committed > 0);
	assert_true(strstr(store_last_error(f->st), "full") ||
		    strstr(store_last_error(f->st), "I/O"));
	assert_int_equal(queued(f->st), committed);
	store_close(f->st);
	f->st = NULL;

	/* Reopen on the still-full disk: everything committed is there. */
	assert_int_equal(store_open(f->url, 1000, &f->st, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_migrate(f->st), STORE_OK);
	assert_int_equal(queued(f->st), committed);
	for (int i = 0; i < committed; i++) {
		struct q_seen qs = {0};
		assert_int_equal(store_queue_list(f->st, qids[i], collect_queue, &qs), STORE_OK);
		assert_int_equal(qs.n, 1);
	}

	/* Free some space: the store works again and every body is intact. */
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(store_queue_claim(f->st, "t", time_now() + 1, 60, d, FULL_MAX, &n),
			 STORE_OK);
	assert_int_equal(n, (size_t)committed);
	for (size_t i = 0; i < n; i++) {
		void *data;
		size_t len;
		int idx = -1;

		for (int k = 0; k < committed; k++)
			if (!strcmp(qids[k], d[i].queue_id))
				idx = k;
		assert_true(idx >= 0);
		assert_int_equal(store_message_load(f->st, d[i].message_id, &data, &len), STORE_OK);
		assert_int_equal(len, FULL_BODY);
		fill_body(expect, FULL_BODY, idx);
		assert_memory_equal(data, expect, FULL_BODY);
		free(data);
	}
	test_free(body);
	test_free(expect);
	test_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addr_split),
	    cmocka_unit_test_setup_teardown(test_open_migrate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tenancy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_search, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reputation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_busy_tempfail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disk_full, setup_full, teardown_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
