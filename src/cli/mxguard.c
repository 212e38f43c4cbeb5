/* SPDX-License-Identifier: MIT */
/*
 * mxguard: the command line for tenants (domains, mailboxes, aliases,
 * routes), the queue and the message log.
 *
 * It reads the node configuration (-c FILE, else $MXGUARD_CONF, else
 * /etc/mxguard/mxguard.conf if it exists, else ./etc/mxguard.conf), opens
 * the store named there and brings its schema up to date before any
 * command. Listing commands take --json and then print one JSON document.
 *
 * Exit status: 0 done, 1 failed (one line on stderr; a store that cannot
 * answer prints the backend's reason), 2 usage error.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/mime.h"
#include "mime/mime_json.h"
#include "net/cidr.h"
#include "scan/av_yara.h"
#include "scan/sarules.h"
#include "scan/scores.h"
#include "store/store.h"

#ifndef MXG_VERSION
#define MXG_VERSION "unknown"
#endif

#define EXIT_USAGE 2

static const struct {
	const char *name;
	unsigned bit;
	bool value;
} opt_table[] = {
    {"json", O_JSON, false},	    {"account", O_ACCOUNT, true}, {"route", O_ROUTE, true},
    {"clear", O_CLEAR, false},	    {"all", O_ALL, false},	  {"qid", O_QID, true},
    {"sender", O_SENDER, true},	    {"rcpt", O_RCPT, true},	  {"since", O_SINCE, true},
    {"limit", O_LIMIT, true},	    {"text", O_TEXT, false},	  {"domain", O_DOMAIN, true},
    {"held", O_HELD, false},	    {"learn", O_LEARN, false},	  {"search", O_SEARCH, true},
    {"mime", O_MIME, false},	    {"spam", O_SPAM, false},	  {"ham", O_HAM, false},
    {"selector", O_SELECTOR, true}, {"type", O_TYPE, true},	  {"now", O_NOW, false},
};
_Static_assert(ARRAY_LEN(opt_table) <= CLI_MAX_OPTS, "raise CLI_MAX_OPTS");

/* ---- output helpers --------------------------------------------------- */

void errorf(const struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", c->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reports a failed store call; returns the exit status. */
int store_fail(const struct cli *c, int rc, const char *what)
{
	const char *why = store_last_error(c->st);

	switch (rc) {
	case STORE_TEMPFAIL:
		errorf(c, "%s: store unavailable: %s", what, why);
		break;
	case STORE_NOTFOUND:
	case STORE_EXISTS:
	case STORE_INVALID:
		errorf(c, "%s: %s", what, why);
		break;
	default:
		errorf(c, "%s: %s", what, strerror(-rc));
		break;
	}
	return EXIT_FAILURE;
}

const char *opt_val(const struct cli *c, unsigned bit)
{
	for (size_t i = 0; i < ARRAY_LEN(opt_table); i++)
		if (opt_table[i].bit == bit)
			return c->val[i];
	return NULL;
}

/* UTC ISO-8601; "-" for 0. */
const char *iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		(void)str_copy(buf, len, "-");
	return buf;
}

/* Display width of UTF-8 text: one column per code point. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* A table of text cells printed with aligned columns. */

void table_init(struct table *t, size_t ncols, const char *const *head)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	for (size_t i = 0; i < ncols; i++)
		t->head[i] = head[i];
}

int table_add(struct table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		char **n = realloc(t->cells, cap * t->ncols * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *v = strdup(row[i] ? row[i] : "");

		if (!v) {
			for (size_t k = 0; k < i; k++)
				free(t->cells[t->nrows * t->ncols + k]);
			return -ENOMEM;
		}
		t->cells[t->nrows * t->ncols + i] = v;
	}
	t->nrows++;
	return 0;
}

/* Prints one row; padding is only written before a later non-empty cell,
 * so lines carry no trailing blanks. */
static void print_row(const char *const *cells, const size_t *width, size_t ncols)
{
	size_t pad = 0;

	for (size_t i = 0; i < ncols; i++) {
		if (cells[i][0]) {
			for (; pad > 0; pad--)
				fputc(' ', stdout);
			fputs(cells[i], stdout);
		}
		pad += width[i] + 2 - text_width(cells[i]);
	}
	fputc('\n', stdout);
}

void table_print(const struct table *t, const char *empty)
{
	size_t width[TABLE_MAX_COLS] = {0};

	if (t->nrows == 0) {
		puts(empty);
		return;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		width[i] = text_width(t->head[i]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t w = text_width(t->cells[r * t->ncols + i]);
			if (w > width[i])
				width[i] = w;
		}
	}
	print_row(t->head, width, t->ncols);
	for (size_t r = 0; r < t->nrows; r++)
		print_row((const char *const *)&t->cells[r * t->ncols], width, t->ncols);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

int json_print(const struct cli *c, json_t *doc)
{
	if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0) {
		errorf(c, "cannot write JSON");
		return EXIT_FAILURE;
	}
	fputc('\n', stdout);
	return EXIT_SUCCESS;
}

/* Appends obj (reference stolen) to arr. */
int json_push(json_t *arr, json_t *obj)
{
	if (!obj || json_array_append_new(arr, obj) < 0)
		return -ENOMEM;
	return 0;
}

/* Ends a listing: prints it, frees it, returns the exit status. */
int listing_end(struct cli *c, struct listing *l, int rc, const char *what, const char *empty)
{
	int status;

	if (rc != STORE_OK)
		status = store_fail(c, rc, what);
	else if (l->json)
		status = json_print(c, l->json);
	else {
		table_print(&l->t, empty);
		status = EXIT_SUCCESS;
	}
	json_decref(l->json);
	table_free(&l->t);
	return status;
}

int listing_start(struct cli *c, struct listing *l, size_t ncols, const char *const *head)
{
	table_init(&l->t, ncols, head);
	l->json = NULL;
	if (c->opts & O_JSON) {
		l->json = json_array();
		if (!l->json) {
			errorf(c, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* ---- argument helpers ------------------------------------------------- */

/* "h:p,[v6]:p,..." -> routes. */
static int parse_routes(const struct cli *c, const char *s, struct store_route *r, size_t *n)
{
	char buf[STORE_MAX_ROUTES * (STORE_DOMAIN_LEN + 8)], *save = NULL, *tok;

	*n = 0;
	if (str_copy(buf, sizeof(buf), s) < 0) {
		errorf(c, "routes too long");
		return -EINVAL;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*n == STORE_MAX_ROUTES) {
			errorf(c, "at most %d routes", STORE_MAX_ROUTES);
			return -EINVAL;
		}
		memset(&r[*n], 0, sizeof(r[*n]));
		if (parse_hostport(tok, r[*n].host, sizeof(r[*n].host), &r[*n].port) < 0) {
			errorf(c, "bad route '%s' (want HOST:PORT or [IPv6]:PORT)", tok);
			return -EINVAL;
		}
		(*n)++;
	}
	if (*n == 0) {
		errorf(c, "no route given");
		return -EINVAL;
	}
	return 0;
}

/* "host:port" for display, brackets around IPv6 literals. */
static void route_text(const struct store_route *r, char *buf, size_t len)
{
	if (strchr(r->host, ':'))
		(void)str_fmt(buf, len, "[%s]:%u", r->host, r->port);
	else
		(void)str_fmt(buf, len, "%s:%u", r->host, r->port);
}

/* ---- domain ----------------------------------------------------------- */

static int cmd_domain_add(struct cli *c)
{
	const char *account = opt_val(c, O_ACCOUNT), *routes = opt_val(c, O_ROUTE);
	struct store_route r[STORE_MAX_ROUTES];
	size_t n = 0;
	int rc;

	if (routes && parse_routes(c, routes, r, &n) < 0)
		return EXIT_USAGE;
	if ((rc = store_domain_add(c->st, account ? account : "default", c->pos[0])))
		return store_fail(c, rc, "domain add");
	/* Two calls: a failing route update leaves the domain without
	 * routes, which the message says. */
	if (n && (rc = store_domain_set_routes(c->st, c->pos[0], r, n)))
		return store_fail(c, rc, "domain added, but setting its routes failed");
	return EXIT_SUCCESS;
}

static int domain_row(const struct store_domain *d, void *arg)
{
	struct listing *l = arg;
	char routes[STORE_MAX_ROUTES * (STORE_DOMAIN_LEN + 10)] = "", one[STORE_DOMAIN_LEN + 10];
	size_t off = 0;

	if (l->json) {
		json_t *o = json_pack("{s:s, s:s, s:s?, s:b, s:[]}", "domain", d->name, "account",
				      d->account, "catchall", d->catchall[0] ? d->catchall : NULL,
				      "require_tls", d->require_tls, "routes");
		json_t *arr = o ? json_object_get(o, "routes") : NULL;

		for (size_t i = 0; arr && i < d->nroutes; i++)
			if (json_push(arr, json_pack("{s:s, s:i}", "host", d->routes[i].host,
						     "port", (int)d->routes[i].port)) < 0) {
				json_decref(o);
				return -ENOMEM;
			}
		return json_push(l->json, o);
	}
	for (size_t i = 0; i < d->nroutes; i++) {
		route_text(&d->routes[i], one, sizeof(one));
		if (str_fmt(routes + off, sizeof(routes) - off, "%s%s", i ? "," : "", one) < 0)
			break;
		off += strlen(routes + off);
	}
	{
		const char *row[] = {d->name, d->account, d->catchall[0] ? d->catchall : "-",
				     d->require_tls ? "required" : "optional",
				     routes[0] ? routes : "(MX)"};
		return table_add(&l->t, row);
	}
}

static int cmd_domain_list(struct cli *c)
{
	static const char *const head[] = {"DOMAIN", "ACCOUNT", "CATCH-ALL", "TLS", "ROUTES"};
	struct listing l;

	if (listing_start(c, &l, ARRAY_LEN(head), head) < 0)
		return EXIT_FAILURE;
	return listing_end(c, &l, store_domain_list(c->st, domain_row, &l), "domain list",
			   "no domains");
}

static int cmd_domain_remove(struct cli *c)
{
	int rc = store_domain_remove(c->st, c->pos[0]);

	return rc ? store_fail(c, rc, "domain remove") : EXIT_SUCCESS;
}

static int cmd_domain_route(struct cli *c)
{
	struct store_route r[STORE_MAX_ROUTES];
	size_t n = 0;
	int rc;

	if ((c->npos == 2) == !!(c->opts & O_CLEAR)) {
		errorf(c, "domain route: give HOST:PORT[,...] or --clear");
		return EXIT_USAGE;
	}
	if (c->npos == 2 && parse_routes(c, c->pos[1], r, &n) < 0)
		return EXIT_USAGE;
	rc = store_domain_set_routes(c->st, c->pos[0], r, n);
	return rc ? store_fail(c, rc, "domain route") : EXIT_SUCCESS;
}

static int cmd_domain_catchall(struct cli *c)
{
	char addr[STORE_ADDR_LEN];
	const char *mb = NULL;
	int rc;

	if ((c->npos == 2) == !!(c->opts & O_CLEAR)) {
		errorf(c, "domain catchall: give MAILBOX or --clear");
		return EXIT_USAGE;
	}
	if (c->npos == 2) {
		mb = c->pos[1];
		/* A bare local part means a mailbox of this domain. */
		if (!strchr(mb, '@')) {
			if (str_fmt(addr, sizeof(addr), "%s@%s", mb, c->pos[0]) < 0) {
				errorf(c, "address too long");
				return EXIT_FAILURE;
			}
			mb = addr;
		}
	}
	rc = store_domain_set_catchall(c->st, c->pos[0], mb);
	return rc ? store_fail(c, rc, "domain catchall") : EXIT_SUCCESS;
}

static int cmd_domain_require_tls(struct cli *c)
{
	const char *v = c->pos[1];
	int rc;

	if (strcmp(v, "yes") && strcmp(v, "no")) {
		errorf(c, "domain require-tls: say yes or no");
		return EXIT_USAGE;
	}
	rc = store_domain_set_require_tls(c->st, c->pos[0], !strcmp(v, "yes"));
	return rc ? store_fail(c, rc, "domain require-tls") : EXIT_SUCCESS;
}

/* ---- reputation -------------------------------------------------------- */

static const char *const rep_action_names[] = {"-", "allow", "block"};

static int rep_row(const struct store_reputation *r, void *arg)
{
	struct listing *l = arg;
	char spam[32], ham[32], ut[32];
	const char *act =
	    (unsigned)r->action < ARRAY_LEN(rep_action_names) ? rep_action_names[r->action] : "?";

	if (l->json)
		return json_push(l->json,
				 json_pack("{s:s, s:f, s:f, s:s, s:s, s:I}", "key", r->key, "spam",
					   r->spam, "ham", r->ham, "action", act, "note", r->note,
					   "updated_at", (json_int_t)r->updated_at));
	(void)str_fmt(spam, sizeof(spam), "%.1f", r->spam);
	(void)str_fmt(ham, sizeof(ham), "%.1f", r->ham);
	{
		const char *row[] = {
		    r->key, spam, ham, act, iso_time(r->updated_at, ut, sizeof(ut)), r->note};
		return table_add(&l->t, row);
	}
}

static int cmd_reputation_list(struct cli *c)
{
	static const char *const head[] = {"ADDRESS/NETWORK", "SPAM",	 "HAM",
					   "ACTION",	      "UPDATED", "NOTE"};
	struct listing l;

	if (listing_start(c, &l, ARRAY_LEN(head), head) < 0)
		return EXIT_FAILURE;
	return listing_end(
	    c, &l,
	    store_reputation_list(c->st, time_now(), c->cfg.reputation.half_life, rep_row, &l),
	    "reputation list", "no reputation entries");
}

static int rep_key(struct cli *c, char *key)
{
	if (cidr_rep_key_norm(c->pos[0], key) < 0) {
		errorf(c, "%s: give an address, a /24 (IPv4) or a /64 (IPv6)", c->pos[0]);
		return -1;
	}
	return 0;
}

static int rep_set(struct cli *c, enum store_rep_action a, const char *what)
{
	char key[64];
	int rc;

	if (rep_key(c, key) < 0)
		return EXIT_USAGE;
	rc = store_reputation_set_action(c->st, key, a, c->npos > 1 ? c->pos[1] : "", time_now());
	return rc ? store_fail(c, rc, what) : EXIT_SUCCESS;
}

static int cmd_reputation_block(struct cli *c)
{
	return rep_set(c, STORE_REP_BLOCK, "reputation block");
}

static int cmd_reputation_allow(struct cli *c)
{
	return rep_set(c, STORE_REP_ALLOW, "reputation allow");
}

static int cmd_reputation_clear(struct cli *c)
{
	char key[64];
	int rc;

	if (rep_key(c, key) < 0)
		return EXIT_USAGE;
	rc = store_reputation_remove(c->st, key);
	return rc ? store_fail(c, rc, "reputation clear") : EXIT_SUCCESS;
}

/* ---- mailbox, alias --------------------------------------------------- */

static int cmd_mailbox_add(struct cli *c)
{
	int rc = store_mailbox_add(c->st, c->pos[0]);

	return rc ? store_fail(c, rc, "mailbox add") : EXIT_SUCCESS;
}

static int cmd_mailbox_remove(struct cli *c)
{
	int rc = store_mailbox_remove(c->st, c->pos[0]);

	return rc ? store_fail(c, rc, "mailbox remove") : EXIT_SUCCESS;
}

static int mailbox_row(const struct store_mailbox *m, void *arg)
{
	struct listing *l = arg;

	if (l->json)
		return json_push(l->json, json_pack("{s:s, s:s, s:s?}", "address", m->address,
						    "type", m->target[0] ? "alias" : "mailbox",
						    "target", m->target[0] ? m->target : NULL));
	{
		const char *row[] = {m->address, m->target[0] ? "alias" : "mailbox",
				     m->target[0] ? m->target : ""};
		return table_add(&l->t, row);
	}
}

static int cmd_mailbox_list(struct cli *c)
{
	static const char *const head[] = {"ADDRESS", "TYPE", "TARGET"};
	struct listing l;

	if (listing_start(c, &l, ARRAY_LEN(head), head) < 0)
		return EXIT_FAILURE;
	return listing_end(c, &l,
			   store_mailbox_list(c->st, c->npos ? c->pos[0] : NULL, mailbox_row, &l),
			   "mailbox list", "no mailboxes");
}

static int cmd_alias_add(struct cli *c)
{
	int rc = store_alias_add(c->st, c->pos[0], c->pos[1]);

	return rc ? store_fail(c, rc, "alias add") : EXIT_SUCCESS;
}

static int cmd_alias_remove(struct cli *c)
{
	int rc = store_alias_remove(c->st, c->pos[0]);

	return rc ? store_fail(c, rc, "alias remove") : EXIT_SUCCESS;
}

/* ---- queue ------------------------------------------------------------ */

static json_t *queue_json(const struct store_queue_entry *e)
{
	char rt[32], nt[32];

	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:s?, s:I, s:I, s:s, s:b}", "queue_id",
	    e->queue_id, "sender", e->sender, "rcpt", e->rcpt, "state", e->state, "attempts",
	    e->attempts, "received", iso_time(e->received_at, rt, sizeof(rt)), "received_at",
	    (json_int_t)e->received_at, "next_attempt",
	    strcmp(e->state, "queued") ? NULL : iso_time(e->next_attempt, nt, sizeof(nt)),
	    "next_attempt_at", (json_int_t)e->next_attempt, "size", (json_int_t)e->size,
	    "last_reply", e->last_reply, "leased", e->leased);
}

static int queue_row(const struct store_queue_entry *e, void *arg)
{
	struct listing *l = arg;
	char rt[32], nt[32], size[32], att[16];

	if (l->json)
		return json_push(l->json, queue_json(e));
	(void)str_fmt(size, sizeof(size), "%lld", (long long)e->size);
	(void)str_fmt(att, sizeof(att), "%d", e->attempts);
	{
		const char *row[] = {
		    e->queue_id,
		    iso_time(e->received_at, rt, sizeof(rt)),
		    e->sender[0] ? e->sender : "<>",
		    e->rcpt,
		    e->leased ? "delivering" : e->state,
		    att,
		    strcmp(e->state, "queued") ? "-" : iso_time(e->next_attempt, nt, sizeof(nt)),
		    size,
		    e->last_reply};
		return table_add(&l->t, row);
	}
}

static int cmd_queue_list(struct cli *c)
{
	static const char *const head[] = {"QUEUE-ID",	   "RECEIVED", "SENDER",
					   "RECIPIENT",	   "STATE",    "ATTEMPTS",
					   "NEXT-ATTEMPT", "SIZE",     "LAST-REPLY"};
	struct listing l;

	if (listing_start(c, &l, ARRAY_LEN(head), head) < 0)
		return EXIT_FAILURE;
	return listing_end(c, &l, store_queue_list(c->st, NULL, queue_row, &l), "queue list",
			   "queue is empty");
}

/* queue show: the recipients of one message and its log so far. */
struct show {
	json_t *rcpts, *log;
	struct table rt, lt;
	char sender[STORE_ADDR_LEN];
	int64_t received_at, size;
};

static int show_rcpt(const struct store_queue_entry *e, void *arg)
{
	struct show *s = arg;
	char nt[32], att[16];

	(void)str_copy(s->sender, sizeof(s->sender), e->sender);
	s->received_at = e->received_at;
	s->size = e->size;
	if (s->rcpts)
		return json_push(s->rcpts, queue_json(e));
	(void)str_fmt(att, sizeof(att), "%d", e->attempts);
	{
		const char *row[] = {
		    e->rcpt, e->leased ? "delivering" : e->state, att,
		    strcmp(e->state, "queued") ? "-" : iso_time(e->next_attempt, nt, sizeof(nt)),
		    e->last_reply};
		return table_add(&s->rt, row);
	}
}

static json_t *log_json(const struct store_log_entry *e)
{
	char ts[32];

	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "time",
			 iso_time(e->ts, ts, sizeof(ts)), "ts", (json_int_t)e->ts, "queue_id",
			 e->queue_id, "event", e->event, "sender", e->sender, "rcpt", e->rcpt,
			 "detail", e->detail);
}

static int show_log(const struct store_log_entry *e, void *arg)
{
	struct show *s = arg;
	char ts[32];

	if (s->log)
		return json_push(s->log, log_json(e));
	{
		const char *row[] = {iso_time(e->ts, ts, sizeof(ts)), e->event, e->rcpt, e->detail};
		return table_add(&s->lt, row);
	}
}

static int cmd_queue_show(struct cli *c)
{
	static const char *const rhead[] = {"RECIPIENT", "STATE", "ATTEMPTS", "NEXT-ATTEMPT",
					    "LAST-REPLY"};
	static const char *const lhead[] = {"TIME", "EVENT", "RECIPIENT", "DETAIL"};
	struct store_log_query q = {.queue_id = c->pos[0]};
	struct show s;
	char rt[32];
	bool gone;
	int rc, status = EXIT_FAILURE;

	memset(&s, 0, sizeof(s));
	table_init(&s.rt, ARRAY_LEN(rhead), rhead);
	table_init(&s.lt, ARRAY_LEN(lhead), lhead);
	if ((c->opts & O_JSON) && (!(s.rcpts = json_array()) || !(s.log = json_array()))) {
		errorf(c, "out of memory");
		goto out;
	}
	/* A message that left the queue still has its log. */
	rc = store_queue_list(c->st, c->pos[0], show_rcpt, &s);
	if (rc && rc != STORE_NOTFOUND) {
		status = store_fail(c, rc, "queue show");
		goto out;
	}
	gone = rc == STORE_NOTFOUND;
	if ((rc = store_log_search(c->st, &q, show_log, &s))) {
		status = store_fail(c, rc, "queue show");
		goto out;
	}
	if (gone && (s.log ? json_array_size(s.log) : s.lt.nrows) == 0) {
		errorf(c, "queue show: no message %s in the queue or the log", c->pos[0]);
		goto out;
	}
	if (s.rcpts) {
		json_t *doc =
		    json_pack("{s:s, s:b, s:s?, s:s?, s:I, s:I, s:O, s:O}", "queue_id", c->pos[0],
			      "queued", !gone, "sender", gone ? NULL : s.sender, "received",
			      gone ? NULL : iso_time(s.received_at, rt, sizeof(rt)), "received_at",
			      (json_int_t)s.received_at, "size", (json_int_t)s.size, "recipients",
			      s.rcpts, "log", s.log);
		status = json_print(c, doc);
		json_decref(doc);
		goto out;
	}
	if (gone) {
		printf("queue-id:  %s (no longer in the queue)\n\n", c->pos[0]);
	} else {
		printf("queue-id:  %s\nsender:    %s\nreceived:  %s\nsize:      %lld\n\n",
		       c->pos[0], s.sender[0] ? s.sender : "<>",
		       iso_time(s.received_at, rt, sizeof(rt)), (long long)s.size);
		table_print(&s.rt, "no recipients");
		fputc('\n', stdout);
	}
	table_print(&s.lt, "no log entries");
	status = EXIT_SUCCESS;
out:
	json_decref(s.rcpts);
	json_decref(s.log);
	table_free(&s.rt);
	table_free(&s.lt);
	return status;
}

static int cmd_queue_retry(struct cli *c)
{
	size_t n = 0;
	int rc;

	if ((c->npos == 1) == !!(c->opts & O_ALL)) {
		errorf(c, "queue retry: give QUEUE-ID or --all");
		return EXIT_USAGE;
	}
	rc = store_queue_retry(c->st, c->npos ? c->pos[0] : NULL, time_now(), &n);
	if (rc)
		return store_fail(c, rc, "queue retry");
	printf("%zu recipient%s scheduled for delivery now\n", n, n == 1 ? "" : "s");
	return EXIT_SUCCESS;
}

static int cmd_queue_delete(struct cli *c)
{
	int rc = store_queue_delete(c->st, c->pos[0]);

	return rc ? store_fail(c, rc, "queue delete") : EXIT_SUCCESS;
}

/* ---- log -------------------------------------------------------------- */

static int log_row(const struct store_log_entry *e, void *arg)
{
	struct listing *l = arg;
	char ts[32];

	if (l->json)
		return json_push(l->json, log_json(e));
	{
		const char *row[] = {iso_time(e->ts, ts, sizeof(ts)), e->queue_id, e->event,
				     e->sender[0] ? e->sender : "<>", e->rcpt,	   e->detail};
		return table_add(&l->t, row);
	}
}

static int cmd_log(struct cli *c)
{
	static const char *const head[] = {"TIME",   "QUEUE-ID",  "EVENT",
					   "SENDER", "RECIPIENT", "DETAIL"};
	struct store_log_query q = {
	    .queue_id = opt_val(c, O_QID),
	    .sender = opt_val(c, O_SENDER),
	    .rcpt = opt_val(c, O_RCPT),
	};
	const char *since = opt_val(c, O_SINCE), *limit = opt_val(c, O_LIMIT);
	struct listing l;
	int64_t v;

	if (since) {
		if (parse_duration(since, &v) < 0 || v <= 0) {
			errorf(c, "log: bad --since '%s' (want e.g. 90s, 15m, 2h, 7d)", since);
			return EXIT_USAGE;
		}
		q.since = time_now() - v;
	}
	if (limit) {
		if (parse_int64(limit, 1, 1000000, &v) < 0) {
			errorf(c, "log: bad --limit '%s' (1 to 1000000)", limit);
			return EXIT_USAGE;
		}
		q.limit = (size_t)v;
	}
	if (listing_start(c, &l, ARRAY_LEN(head), head) < 0)
		return EXIT_FAILURE;
	return listing_end(c, &l, store_log_search(c->st, &q, log_row, &l), "log",
			   "no log entries");
}

/* ---- misc ------------------------------------------------------------- */

static int cmd_config_check(struct cli *c)
{
	/* open_store() already parsed the file; getting here means it is good. */
	(void)c;
	puts("ok");
	return EXIT_SUCCESS;
}

static int cmd_version(struct cli *c)
{
	(void)c;
	printf("mxguard %s (store schema %d)\n", MXG_VERSION, STORE_SCHEMA_VERSION);
	return EXIT_SUCCESS;
}

/* Reads FILE (or stdin for "-") whole, up to max bytes. */
/* rules check: compiles the YARA rules and reads the hash lists of the
 * configuration, keeps nothing; a broken file is named with its line. */
static int cmd_rules_check(struct cli *c)
{
	struct av_yara_db *db = NULL;
	struct sarules_db *sa = NULL;
	char err[1024];

	if (av_yara_db_load(c->cfg.av.yara_rules, c->cfg.av.hash_lists, &db, err, sizeof(err)) <
	    0) {
		errorf(c, "rules refused: %s", err);
		return EXIT_FAILURE;
	}
	if (!(c->opts & O_JSON))
		printf("ok: %zu YARA rules from %s, %zu hashes from %s\n", av_yara_db_nrules(db),
		       c->cfg.av.yara_rules[0] ? c->cfg.av.yara_rules : "(none)",
		       av_yara_db_nhashes(db),
		       c->cfg.av.hash_lists[0] ? c->cfg.av.hash_lists : "(none)");
	av_yara_db_free(db);
	{
		/* score overrides (rules/scores beside the YARA rules) */
		struct scores *sc = NULL;
		char dir[PATH_MAX];
		scores_dir(c->cfg.av.yara_rules, dir, sizeof(dir));
		if (scores_load(dir, &sc, err, sizeof(err)) < 0) {
			errorf(c, "scores refused: %s", err);
			return EXIT_FAILURE;
		}
		if (!(c->opts & O_JSON))
			printf("ok: %zu score overrides from %s\n", scores_count(sc),
			       dir[0] ? dir : "(none)");
		scores_free(sc);
	}
	/* SpamAssassin-format rules (scan.sa_rules and rules/spam) */
	if (sarules_db_load_config(&c->cfg, &sa, err, sizeof(err)) < 0) {
		errorf(c, "SpamAssassin rules refused: %s", err);
		return EXIT_FAILURE;
	}
	if (sa && sarules_db_report(sa, c->opts & O_JSON, stdout) < 0) {
		sarules_db_free(sa);
		errorf(c, "cannot write the report");
		return EXIT_FAILURE;
	}
	if (!sa)
		printf((c->opts & O_JSON) ? "{\"loaded\": 0, \"skipped\": 0}\n"
					  : "SpamAssassin rules: none configured\n");
	sarules_db_free(sa);
	return EXIT_SUCCESS;
}

/* rules reload: checks the rules, then sends SIGHUP to the running
 * mxguardd named by the pid file (its new workers load the new rules;
 * the old ones drain). Refuses to signal with rules that do not load. */
static int cmd_rules_reload(struct cli *c)
{
	char path[PATH_MAX], buf[32], comm[64], proc[64];
	int64_t pid;
	FILE *f;
	size_t n;

	if (cmd_rules_check(c) != EXIT_SUCCESS)
		return EXIT_FAILURE;
	if (config_pid_file(&c->cfg, path, sizeof(path)) < 0 || !(f = fopen(path, "r"))) {
		errorf(c, "cannot read the pid file %s: %s (is mxguardd running?)", path,
		       strerror(errno));
		return EXIT_FAILURE;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	if (parse_int64(buf, 2, INT32_MAX, &pid) < 0) {
		errorf(c, "%s: not a process id", path);
		return EXIT_FAILURE;
	}
	/* never signal a process that is not mxguardd (a stale pid file) */
	(void)str_fmt(proc, sizeof(proc), "/proc/%lld/comm", (long long)pid);
	comm[0] = '\0';
	if ((f = fopen(proc, "r"))) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
	}
	if (strcmp(comm, "mxguardd\n") != 0) {
		errorf(c, "process %lld of %s is not mxguardd (stale pid file?)", (long long)pid,
		       path);
		return EXIT_FAILURE;
	}
	if (kill((pid_t)pid, SIGHUP) < 0) {
		errorf(c, "cannot signal mxguardd (pid %lld): %s", (long long)pid, strerror(errno));
		return EXIT_FAILURE;
	}
	printf("reload requested (mxguardd pid %lld)\n", (long long)pid);
	return EXIT_SUCCESS;
}

static int cmd_help(struct cli *c);

static const struct cmd cmds[] = {
    {"domain", "add", 1, 1, O_ACCOUNT | O_ROUTE, NEED_STORE, cmd_domain_add,
     "domain add DOMAIN [--account NAME] [--route HOST:PORT[,HOST:PORT...]]"},
    {"domain", "list", 0, 0, O_JSON, NEED_STORE, cmd_domain_list, "domain list [--json]"},
    {"domain", "remove", 1, 1, 0, NEED_STORE, cmd_domain_remove, "domain remove DOMAIN"},
    {"domain", "route", 1, 2, O_CLEAR, NEED_STORE, cmd_domain_route,
     "domain route DOMAIN (HOST:PORT[,HOST:PORT...] | --clear)"},
    {"domain", "catchall", 1, 2, O_CLEAR, NEED_STORE, cmd_domain_catchall,
     "domain catchall DOMAIN (MAILBOX | --clear)"},
    {"domain", "require-tls", 2, 2, 0, NEED_STORE, cmd_domain_require_tls,
     "domain require-tls DOMAIN (yes | no)"},
    {"reputation", "list", 0, 0, O_JSON, NEED_STORE, cmd_reputation_list,
     "reputation list [--json]"},
    {"reputation", "block", 1, 2, 0, NEED_STORE, cmd_reputation_block,
     "reputation block (ADDRESS | NETWORK/24 | NETWORK/64) [NOTE]"},
    {"reputation", "allow", 1, 2, 0, NEED_STORE, cmd_reputation_allow,
     "reputation allow (ADDRESS | NETWORK/24 | NETWORK/64) [NOTE]"},
    {"reputation", "clear", 1, 1, 0, NEED_STORE, cmd_reputation_clear,
     "reputation clear (ADDRESS | NETWORK)"},
    {"mailbox", "add", 1, 1, 0, NEED_STORE, cmd_mailbox_add, "mailbox add ADDRESS"},
    {"mailbox", "list", 0, 1, O_JSON, NEED_STORE, cmd_mailbox_list,
     "mailbox list [DOMAIN] [--json]"},
    {"mailbox", "remove", 1, 1, 0, NEED_STORE, cmd_mailbox_remove, "mailbox remove ADDRESS"},
    {"alias", "add", 2, 2, 0, NEED_STORE, cmd_alias_add, "alias add ALIAS MAILBOX"},
    {"alias", "remove", 1, 1, 0, NEED_STORE, cmd_alias_remove, "alias remove ALIAS"},
    {"relationships", "list", 1, 1, O_JSON, NEED_STORE, cmd_rel_list,
     "relationships list MAILBOX [--json]"},
    {"relationships", "add", 2, 2, 0, NEED_STORE, cmd_rel_add,
     "relationships add MAILBOX REMOTE   (one message MAILBOX sent to REMOTE)"},
    {"relationships", "trust", 2, 2, 0, NEED_STORE, cmd_rel_trust,
     "relationships trust MAILBOX REMOTE   (established at once)"},
    {"relationships", "remove", 2, 2, 0, NEED_STORE, cmd_rel_remove,
     "relationships remove MAILBOX REMOTE"},
    {"relationships", "expire", 0, 0, 0, NEED_STORE, cmd_rel_expire, "relationships expire"},
    {"queue", "list", 0, 0, O_JSON, NEED_STORE, cmd_queue_list, "queue list [--json]"},
    {"queue", "show", 1, 1, O_JSON, NEED_STORE, cmd_queue_show, "queue show QUEUE-ID [--json]"},
    {"queue", "retry", 0, 1, O_ALL, NEED_STORE, cmd_queue_retry, "queue retry (QUEUE-ID | --all)"},
    {"queue", "delete", 1, 1, 0, NEED_STORE, cmd_queue_delete, "queue delete QUEUE-ID"},
    {"log", NULL, 0, 0, O_JSON | O_QID | O_SENDER | O_RCPT | O_SINCE | O_LIMIT, NEED_STORE, cmd_log,
     "log [--qid QUEUE-ID] [--sender TEXT] [--rcpt TEXT] [--since DURATION] [--limit N] "
     "[--json]"},
    {"policy", "set", 3, 4, 0, NEED_STORE, cmd_policy_set,
     "policy set (global | account NAME | domain DOMAIN | mailbox ADDRESS) KEY VALUE"},
    {"policy", "unset", 2, 3, 0, NEED_STORE, cmd_policy_unset, "policy unset SCOPE [NAME] KEY"},
    {"policy", "show", 1, 2, O_JSON, NEED_STORE, cmd_policy_show,
     "policy show SCOPE [NAME] [--json]   (a mailbox: the settings in effect)"},
    {"policy", "allow", 2, 3, 0, NEED_STORE, cmd_policy_list_add,
     "policy allow SCOPE [NAME] (ADDRESS | @DOMAIN | DOMAIN | IP[/LEN])"},
    {"policy", "block", 2, 3, 0, NEED_STORE, cmd_policy_list_add,
     "policy block SCOPE [NAME] (ADDRESS | @DOMAIN | DOMAIN | IP[/LEN])"},
    {"policy", "unlist", 3, 4, 0, NEED_STORE, cmd_policy_list_remove,
     "policy unlist SCOPE [NAME] (allow | block) PATTERN"},
    {"quarantine", "list", 0, 0,
     O_JSON | O_DOMAIN | O_ACCOUNT | O_RCPT | O_HELD | O_SEARCH | O_LIMIT, NEED_STORE,
     cmd_quarantine_list,
     "quarantine list [--domain D] [--account A] [--rcpt ADDRESS] [--held] [--search TEXT] "
     "[--limit N] [--json]"},
    {"quarantine", "show", 1, 1, O_JSON | O_TEXT, NEED_STORE, cmd_quarantine_show,
     "quarantine show ID [--json | --text]   (--text: the held message itself)"},
    {"quarantine", "release", 1, 1, O_LEARN, NEED_STORE, cmd_quarantine_release,
     "quarantine release ID [--learn]   (--learn: also learn it as ham)"},
    {"quarantine", "delete", 1, 1, 0, NEED_STORE, cmd_quarantine_delete, "quarantine delete ID"},
    {"quarantine", "expire", 0, 0, 0, NEED_STORE, cmd_quarantine_expire,
     "quarantine expire   (what the daemon does every hour)"},
    {"config", "check", 0, 0, 0, NEED_CONFIG, cmd_config_check, "config check"},
    {"rules", "check", 0, 0, O_JSON, NEED_CONFIG, cmd_rules_check, "rules check [--json]"},
    {"rules", "reload", 0, 0, 0, NEED_CONFIG, cmd_rules_reload, "rules reload"},
    {"scan", NULL, 1, CLI_MANY, O_TEXT | O_JSON | O_RCPT | O_MIME, NEED_STORE, cmd_scan,
     "scan (FILE | -)... [--rcpt MAILBOX] [--json]   (the verdict, every symbol explained); "
     "scan --mime FILE [--text]   (the MIME tree)"},
    {"learn", NULL, 1, CLI_MANY, O_SPAM | O_HAM, NEED_STORE, cmd_learn,
     "learn (--spam | --ham) (FILE | DIR) ...   (Bayes; one transaction per 500)"},
    {"unlearn", NULL, 1, CLI_MANY, 0, NEED_STORE, cmd_unlearn, "unlearn (FILE | DIR) ..."},
    {"bayes", "stats", 0, 0, O_JSON, NEED_STORE, cmd_bayes_stats, "bayes stats [--json]"},
    {"bayes", "expire", 0, 0, 0, NEED_STORE, cmd_bayes_expire, "bayes expire"},
    {"bayes", "classify", 1, CLI_MANY, 0, NEED_STORE, cmd_bayes_classify,
     "bayes classify (FILE | DIR) ...   (FILE, p, symbol, tokens per line)"},
    {"dkim", "keygen", 1, 1, O_SELECTOR | O_TYPE, NEED_STORE, cmd_dkim_keygen,
     "dkim keygen DOMAIN [--selector S] [--type rsa|ed25519]"},
    {"dkim", "list", 0, 1, O_JSON, NEED_STORE, cmd_dkim_list, "dkim list [DOMAIN] [--json]"},
    {"dkim", "activate", 2, 2, 0, NEED_STORE, cmd_dkim_activate, "dkim activate DOMAIN SELECTOR"},
    {"dkim", "remove", 2, 2, 0, NEED_STORE, cmd_dkim_remove, "dkim remove DOMAIN SELECTOR"},
    {"dmarc", "report", 0, 0, O_NOW, NEED_STORE, cmd_dmarc_report, "dmarc report --now"},
    {"version", NULL, 0, 0, 0, NEED_NOTHING, cmd_version, "version"},
    {"help", NULL, 0, 0, 0, NEED_NOTHING, cmd_help, "help"},
};

static void usage(FILE *f, const char *prog)
{
	fprintf(f, "usage: %s [-c CONFIG] COMMAND ...\n\ncommands:\n", prog);
	for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
		fprintf(f, "  %s\n", cmds[i].usage);
	fprintf(f, "\nThe configuration is -c CONFIG, else $MXGUARD_CONF, else "
		   "/etc/mxguard/mxguard.conf if it exists, else ./etc/mxguard.conf.\n"
		   "Times are UTC. Exit status: 0 ok, 1 failed, 2 usage error.\n");
}

static int cmd_help(struct cli *c)
{
	usage(stdout, c->prog);
	return EXIT_SUCCESS;
}

/* ---- main ------------------------------------------------------------- */

/* Parses the options and positional arguments after the command words. */
static int parse_args(struct cli *c, const struct cmd *cmd, int argc, char **argv)
{
	bool opts_done = false;

	if (!(c->files = calloc((size_t)argc + 1, sizeof(*c->files)))) {
		errorf(c, "out of memory");
		return -ENOMEM;
	}

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *eq;
		size_t k, namelen;

		if (opts_done || a[0] != '-' || a[1] != '-') {
			if (c->npos == cmd->max_pos) {
				errorf(c, "too many arguments; usage: %s", cmd->usage);
				return -EINVAL;
			}
			if (c->npos < MAX_POS)
				c->pos[c->npos] = a;
			c->npos++;
			c->files[c->nfiles++] = a;
			continue;
		}
		if (!a[2]) {
			opts_done = true;
			continue;
		}
		eq = strchr(a + 2, '=');
		namelen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		for (k = 0; k < ARRAY_LEN(opt_table); k++)
			if (strlen(opt_table[k].name) == namelen &&
			    !strncmp(opt_table[k].name, a + 2, namelen))
				break;
		if (k == ARRAY_LEN(opt_table) || !(cmd->allowed & opt_table[k].bit)) {
			errorf(c, "unknown option %s; usage: %s", a, cmd->usage);
			return -EINVAL;
		}
		if (opt_table[k].value) {
			if (eq)
				c->val[k] = eq + 1;
			else if (i + 1 < argc)
				c->val[k] = argv[++i];
			else {
				errorf(c, "%s needs a value; usage: %s", a, cmd->usage);
				return -EINVAL;
			}
		} else if (eq) {
			errorf(c, "%s takes no value", opt_table[k].name);
			return -EINVAL;
		}
		c->opts |= opt_table[k].bit;
	}
	if (c->npos < cmd->min_pos) {
		errorf(c, "missing arguments; usage: %s", cmd->usage);
		return -EINVAL;
	}
	return 0;
}

static const struct cmd *find_cmd(int argc, char **argv, int *used)
{
	for (size_t i = 0; i < ARRAY_LEN(cmds); i++) {
		if (strcmp(cmds[i].group, argv[0]) != 0)
			continue;
		if (!cmds[i].verb) {
			*used = 1;
			return &cmds[i];
		}
		if (argc > 1 && !strcmp(cmds[i].verb, argv[1])) {
			*used = 2;
			return &cmds[i];
		}
	}
	return NULL;
}

static const char *config_path(const char *given)
{
	const char *env = getenv("MXGUARD_CONF");

	if (given)
		return given;
	if (env && *env)
		return env;
	if (access("/etc/mxguard/mxguard.conf", F_OK) == 0)
		return "/etc/mxguard/mxguard.conf";
	return "etc/mxguard.conf";
}

/* Loads the configuration, opens the store and migrates it. */
static int open_store(struct cli *c, bool store)
{
	char err[512];
	int rc;

	if (config_load(c->conf_path, &c->cfg, err, sizeof(err)) < 0) {
		/* config check prints the bare file:line: reason */
		if (store)
			errorf(c, "bad configuration: %s", err);
		else
			fprintf(stderr, "%s\n", err);
		return EXIT_FAILURE;
	}
	if (!store)
		return EXIT_SUCCESS;
	if (config_sqlite_path(&c->cfg)) {
		/* The embedded store: make its directory on first use, as the
		 * daemon would (the daemon gives it to node.user at start). */
		char dir[PATH_MAX];
		char *slash;
		(void)str_copy(dir, sizeof(dir), config_sqlite_path(&c->cfg));
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir_p(dir, 0750) < 0) {
				errorf(c, "cannot create %s: %s", dir, strerror(errno));
				return EXIT_FAILURE;
			}
		}
	}
	rc = store_open(c->cfg.store.url, (int)c->cfg.store.busy_timeout, &c->st, err, sizeof(err));
	if (rc) {
		errorf(c, "cannot open the store: %s", err);
		return EXIT_FAILURE;
	}
	if ((rc = store_migrate(c->st)))
		return store_fail(c, rc, "store migration");
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	struct cli c;
	const struct cmd *cmd;
	const char *conf = NULL;
	int i = 1, used = 0, status;

	memset(&c, 0, sizeof(c));
	c.prog = "mxguard";
	log_init("cli", LOG_WARN);
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
			if (i + 1 >= argc) {
				errorf(&c, "%s needs a file", argv[i]);
				return EXIT_USAGE;
			}
			conf = argv[i + 1];
			i += 2;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout, c.prog);
			return EXIT_SUCCESS;
		} else if (!strcmp(argv[i], "--version")) {
			return cmd_version(&c);
		} else {
			errorf(&c, "unknown option %s", argv[i]);
			usage(stderr, c.prog);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr, c.prog);
		return EXIT_USAGE;
	}
	cmd = find_cmd(argc - i, argv + i, &used);
	if (!cmd) {
		errorf(&c, "unknown command '%s%s%s'", argv[i], i + 1 < argc ? " " : "",
		       i + 1 < argc ? argv[i + 1] : "");
		usage(stderr, c.prog);
		return EXIT_USAGE;
	}
	c.verb = cmd->verb ? cmd->verb : cmd->group;
	if (parse_args(&c, cmd, argc - i - used, argv + i + used) < 0) {
		free(c.files);
		return EXIT_USAGE;
	}
	c.conf_path = config_path(conf);
	if (cmd->need != NEED_NOTHING &&
	    (status = open_store(&c, cmd->need == NEED_STORE)) != EXIT_SUCCESS)
		goto out;
	status = cmd->run(&c);
out:
	free(c.files);
	store_close(c.st);
	if (fflush(stdout) != 0 && status == EXIT_SUCCESS) {
		errorf(&c, "write error: %s", strerror(errno));
		status = EXIT_FAILURE;
	}
	return status;
}
