/* SPDX-License-Identifier: MIT */
/*
 * cli: what the files of the mxguard command share.
 *
 * mxguard.c parses the command line, opens the configuration and the store
 * and dispatches through its command table; a command is a function
 * int cmd_x(struct cli *c) that returns the exit status and reports its
 * own errors with errorf()/store_fail(). Listing commands print a table,
 * or one JSON document with --json (struct listing).
 */
#ifndef MXG_CLI_H
#define MXG_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "store/store.h"

#define EXIT_USAGE 2
#define MAX_POS 4
/* max_pos of a command that takes any number of FILEs (c->files) */
#define CLI_MANY ((size_t)-1)
#define CLI_MAX_OPTS 48
#define TABLE_MAX_COLS 10

enum opt_bit {
	O_JSON = 1 << 0,
	O_ACCOUNT = 1 << 1,
	O_ROUTE = 1 << 2,
	O_CLEAR = 1 << 3,
	O_ALL = 1 << 4,
	O_QID = 1 << 5,
	O_SENDER = 1 << 6,
	O_RCPT = 1 << 7,
	O_SINCE = 1 << 8,
	O_LIMIT = 1 << 9,
	O_TEXT = 1 << 10,
	O_DOMAIN = 1 << 11,
	O_HELD = 1 << 12,
	O_LEARN = 1 << 13,
	O_SEARCH = 1 << 14,
	O_MIME = 1 << 15,
	O_SPAM = 1 << 20,
	O_HAM = 1 << 16,
	O_SELECTOR = 1 << 17,
	O_TYPE = 1 << 18,
	O_NOW = 1 << 19,
};

/* One invocation: the parsed command line and what it opened. */
struct cli {
	const char *prog;
	const char *conf_path;
	const char *verb; /* the command's verb ("block"), or its group */
	struct config cfg;
	struct store *st;
	unsigned opts;		       /* enum opt_bit given */
	const char *val[CLI_MAX_OPTS]; /* by position in opt_table */
	const char *pos[MAX_POS];      /* the first positional arguments */
	size_t npos;		       /* how many there were in all */
	const char **files;	       /* every positional argument */
	size_t nfiles;
};

struct cmd {
	const char *group;
	const char *verb; /* NULL: the group is the command */
	size_t min_pos, max_pos;
	unsigned allowed;
	enum { NEED_NOTHING, NEED_CONFIG, NEED_STORE } need;
	int (*run)(struct cli *c);
	const char *usage;
};

struct table {
	size_t ncols, nrows, cap;
	const char *head[TABLE_MAX_COLS];
	char **cells; /* nrows * ncols, owned */
};

/* The listing state shared by the callbacks: a table or a JSON array. */
struct listing {
	struct table t;
	json_t *json;
};

void errorf(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a failed store call; returns the exit status. */
int store_fail(const struct cli *c, int rc, const char *what);
/* The value of an option given with a value, or NULL. */
const char *opt_val(const struct cli *c, unsigned bit);
/* UTC ISO-8601; "-" for 0. */
const char *iso_time(int64_t t, char *buf, size_t len);
void table_init(struct table *t, size_t ncols, const char *const *head);
int table_add(struct table *t, const char *const *row);
void table_print(const struct table *t, const char *empty);
void table_free(struct table *t);
int json_print(const struct cli *c, json_t *doc);
/* Appends obj (reference stolen) to arr. */
int json_push(json_t *arr, json_t *obj);
int listing_start(struct cli *c, struct listing *l, size_t ncols, const char *const *head);
/* Ends a listing: prints it, frees it, returns the exit status. */
int listing_end(struct cli *c, struct listing *l, int rc, const char *what, const char *empty);

/* Reads a file ("-": stdin) of at most max bytes into a malloc'd buffer.
 * 0 or -errno (-EFBIG when too large). */
int cli_read_file(const char *path, size_t max, char **out, size_t *outlen);

/* Commands in other files. */
int cmd_scan(struct cli *c);
int cmd_policy_set(struct cli *c);
int cmd_policy_unset(struct cli *c);
int cmd_policy_show(struct cli *c);
int cmd_policy_list_add(struct cli *c);
int cmd_policy_list_remove(struct cli *c);
int cmd_quarantine_list(struct cli *c);
int cmd_quarantine_show(struct cli *c);
int cmd_quarantine_release(struct cli *c);
int cmd_quarantine_delete(struct cli *c);
int cmd_quarantine_expire(struct cli *c);
int cmd_learn(struct cli *c);
int cmd_unlearn(struct cli *c);
int cmd_bayes_stats(struct cli *c);
int cmd_bayes_expire(struct cli *c);
int cmd_bayes_classify(struct cli *c);
int cmd_dkim_keygen(struct cli *c);
int cmd_dkim_list(struct cli *c);
int cmd_dkim_activate(struct cli *c);
int cmd_dkim_remove(struct cli *c);
int cmd_dmarc_report(struct cli *c);
int cmd_rel_list(struct cli *c);
int cmd_rel_add(struct cli *c);
int cmd_rel_trust(struct cli *c);
int cmd_rel_remove(struct cli *c);
int cmd_rel_expire(struct cli *c);

#endif
