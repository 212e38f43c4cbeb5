/* SPDX-License-Identifier: MIT */
/*
 * pipeline: the content checks of one message, off the event loop.
 *
 * Each SMTP worker owns one pipeline: a small pool of scanning threads
 * (scan.threads) fed from the loop. A job carries one complete message;
 * a thread parses it once with the MIME engine and runs every enabled
 * check on it, in the order of the check table (pipeline.c). Checks add
 * named symbols with scores ("every point explained") and may refuse the
 * message (a 5xx reply) or ask for it to be tried later (a 4xx: an engine
 * that is down never means "clean"). The callback runs on the loop thread
 * with the verdict.
 *
 * Deadline: a job not finished within scan.timeout gets a TEMPFAIL verdict
 * at once (counted in metrics); the thread's late result is thrown away.
 *
 * Checks: a check is a table entry with per-thread state (a YARA scanner,
 * a clamd connection...) made by thread_init when the pipeline starts and
 * freed by thread_free; run() gets that state and a struct scan_ctx to
 * read the message and record what it finds. Checks must not keep
 * pointers into the ctx past run(). A check's thread_init failing stops
 * the worker's start-up with the check's reason.
 *
 * Lifetimes: the request (and the bytes and strings it points to) must
 * stay valid until the callback; the result passed to the callback lives
 * until the callback returns. Reloading rules = new workers (SIGHUP), so a
 * pipeline's checks never change while it runs.
 */
#ifndef MXG_SCAN_PIPELINE_H
#define MXG_SCAN_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/util.h"
#include "mime/mime.h"

struct scan_pipeline;
struct scan_ctx;

/* What is scanned: the message as received (no trace headers of ours). */
struct scan_request {
	const char *qid;
	const char *client; /* address as text */
	const char *helo;
	const char *sender; /* "" for <> */
	const char *const *rcpts;
	size_t nrcpts;
	const char *data;
	size_t len;
	bool tls;
	/* what the session already knows (DNS lists, FCrDNS, reputation):
	 * added to the result as they are, so the score explains them too */
	const struct scan_symbol *pre;
	size_t npre;
};

struct scan_symbol;

enum scan_action {
	SCAN_ACCEPT = 0,
	SCAN_REJECT = 1,   /* refuse with reply (5xx) */
	SCAN_TEMPFAIL = 2, /* refuse with reply (4xx): try again later */
};

#define SCAN_NAME_LEN 96
#define SCAN_DETAIL_LEN 256
#define SCAN_REPLY_LEN 512
#define SCAN_MAX_SYMBOLS 256
#define SCAN_DOMAIN_LEN 256
#define SCAN_MAX_DOMAINS 200

struct scan_symbol {
	char name[SCAN_NAME_LEN];     /* "AV_CLAMD:Eicar-Test-Signature" */
	double score;		      /* points added to the message */
	char detail[SCAN_DETAIL_LEN]; /* where and why: "2/a.zip/eicar.com" */
};

struct scan_result {
	enum scan_action action;
	char reply[SCAN_REPLY_LEN]; /* for REJECT / TEMPFAIL: the whole SMTP reply */
	const struct scan_symbol *symbols;
	size_t nsymbols;
	double score; /* sum of the symbol scores */
	int64_t ms;   /* time spent scanning */
	/* registrable domains of the message's URLs, for the URI lists the
	 * session asks on its loop (scan_ctx_domains) */
	const char (*domains)[SCAN_DOMAIN_LEN];
	size_t ndomains;
	/* what a check left for learning after the verdict (Bayes tokens),
	 * with the value it judged by; see scan_result_take_learn() */
	void *learn;
	void (*learn_free)(void *learn);
	double learn_value;
	/* the file-type policy's findings (scan/filetype.h flags) and the
	 * reply that refuses them: each recipient's policy decides */
	unsigned filetypes;
	char filetype_reply[SCAN_REPLY_LEN];
};

typedef void (*scan_cb)(const struct scan_result *res, void *arg);

/* A content check. */
struct scan_check {
	const char *name; /* "mime", "av_clamd", "av_yara", ... */
	/* May be NULL. Runs once per pipeline, before any thread_init: what
	 * it makes (a compiled rule set...) is passed to every thread_init
	 * and must be safe to read from all threads at once. shared_free
	 * runs after the last thread_free. */
	int (*shared_new)(const struct config *cfg, struct metrics *m, void **shared, char *err,
			  size_t errlen);
	void (*shared_free)(void *shared);
	/* May be NULL. Makes the thread's state; err gets a reason. */
	int (*thread_init)(const struct config *cfg, struct metrics *m, void **state, char *err,
			   size_t errlen);
	/* Instead of thread_init for a check with shared_new: the same, plus
	 * what shared_new made. */
	int (*thread_init_shared)(const struct config *cfg, struct metrics *m, void *shared,
				  void **state, char *err, size_t errlen);
	void (*thread_free)(void *state);
	/* Runs in a scanning thread; records through ctx. */
	void (*run)(void *state, struct scan_ctx *ctx);
};

/* ---- for checks (scanning thread) --------------------------------------- */

const struct scan_request *scan_ctx_request(const struct scan_ctx *ctx);
/* The parsed message (never NULL inside run()). */
const struct mime_msg *scan_ctx_mime(const struct scan_ctx *ctx);
/* Adds a symbol (a name given twice keeps the first). */
void scan_ctx_symbol(struct scan_ctx *ctx, const char *name, double score, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Gives the registrable domains of the message's URLs (copied; at most
 * SCAN_MAX_DOMAINS; a second call replaces the first). */
void scan_ctx_domains(struct scan_ctx *ctx, const char (*d)[SCAN_DOMAIN_LEN], size_t n);
/* Leaves obj for the session to learn from after the verdict (at most one
 * per job; a second call frees the first); free_fn frees it if nobody
 * takes it. */
void scan_ctx_learn(struct scan_ctx *ctx, void *obj, void (*free_fn)(void *), double value);
/* Records a file-type finding (flag of scan/filetype.h) and, the first
 * time, the reply that refuses the message for it ("554 5.7.0 ..."). */
void scan_ctx_filetype(struct scan_ctx *ctx, unsigned flag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Refuses the message; the first refusal's reply is kept, and a REJECT
 * beats a TEMPFAIL. reply is "5xx x.x.x text" / "4xx x.x.x text". */
void scan_ctx_reject(struct scan_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void scan_ctx_tempfail(struct scan_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True once the message is refused (later checks may skip work). */
bool scan_ctx_refused(const struct scan_ctx *ctx);
/* Milliseconds left before the job's deadline (<= 0: past it). */
int64_t scan_ctx_time_left(const struct scan_ctx *ctx);

/* ---- for the worker (loop thread) --------------------------------------- */

/* The score of a symbol the session adds itself (SPF, DNS lists...):
 * def, or the override of the scores folder (scan/scores.h). */
double scan_pipeline_score(const struct scan_pipeline *p, const char *name, double def);

/* Takes what scan_ctx_learn left (the caller frees it with learn_free),
 * from inside the callback; NULL if nothing. */
void *scan_result_take_learn(const struct scan_result *r);

struct scan_pipeline *scan_pipeline_new(struct event_base *base, const struct config *cfg,
					struct metrics *m, char *err, size_t errlen);
/* Returns 0 (the callback will run exactly once) or -ENOMEM. */
int scan_submit(struct scan_pipeline *p, const struct scan_request *req, scan_cb cb,
		void *arg) MXG_WUR;
size_t scan_pending(const struct scan_pipeline *p);
/* Waits for the running jobs, runs every pending callback, stops. */
void scan_pipeline_free(struct scan_pipeline *p);

#endif
