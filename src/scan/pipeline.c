/* SPDX-License-Identifier: MIT */
#include "scan/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "scan/av_clamd.h"
#include "scan/av_yara.h"
#include "scan/bayes.h"
#include "scan/filetype.h"
#include "scan/headercheck.h"
#include "scan/sarules.h"
#include "scan/scores.h"
#include "scan/urlcheck.h"

/* ---- the checks, in the order they run ------------------------------------ */

static void mime_findings_run(void *state, struct scan_ctx *ctx);

/* The MIME engine's findings (MIME_TOO_DEEP, ARCHIVE_BOMB, ...) as
 * symbols. Their scores come from the rules layer; here they are named
 * so that every later point can be explained. */
static const struct scan_check scan_check_mime = {
    .name = "mime",
    .run = mime_findings_run,
};

/* File types first (cheap, may refuse), then the two independent
 * antivirus engines: YARA and hash lists in process, then clamd. */
static const struct scan_check *const checks[] = {
    &scan_check_mime, &scan_check_filetype, &scan_check_av_yara, &scan_check_av_clamd,
    &urlcheck_check,  &headercheck_check,   &sarules_check,	 &bayes_check,
};

#define NCHECKS ARRAY_LEN(checks)

/* ---- jobs ------------------------------------------------------------------ */

struct scan_job {
	struct scan_job *next;
	struct scan_pipeline *p;
	/* a private copy of the request: a job may outlive its session */
	struct scan_request req;
	char *strings; /* qid, client, helo, sender, rcpts: one allocation */
	const char **rcpts;
	char *data;
	struct scan_symbol *pre;
	scan_cb cb;
	void *arg;
	struct event *deadline;
	bool abandoned; /* the deadline answered for it */
	int64_t started_us;
	int64_t deadline_us;
	/* the verdict */
	struct scan_result res;
	struct scan_symbol *symbols;
	char (*domains)[SCAN_DOMAIN_LEN];
};

struct scan_ctx {
	struct scan_job *job;
	const struct mime_msg *mime;
};

struct scan_thread {
	struct scan_pipeline *p;
	pthread_t tid;
	struct mime_engine *mime;
	void *state[NCHECKS];
	bool started;
};

struct scan_pipeline {
	struct event_base *base;
	const struct config *cfg;
	struct metrics *metrics;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct scan_job *queued_head, *queued_tail;
	struct scan_job *done_head;
	bool stopping;
	size_t pending;
	int pipe_rd, pipe_wr;
	struct event *ev;
	size_t nthreads;
	struct scan_thread *threads;
	void *shared[NCHECKS]; /* made by each check's shared_new */
	struct scores *scores; /* symbol score overrides, read-only */
};

/* ---- for checks ---------------------------------------------------------- */

const struct scan_request *scan_ctx_request(const struct scan_ctx *ctx)
{
	return &ctx->job->req;
}

const struct mime_msg *scan_ctx_mime(const struct scan_ctx *ctx)
{
	return ctx->mime;
}

void scan_ctx_symbol(struct scan_ctx *ctx, const char *name, double score, const char *fmt, ...)
{
	struct scan_job *j = ctx->job;
	struct scan_symbol *sym;
	va_list ap;

	for (size_t i = 0; i < j->res.nsymbols; i++)
		if (!strcmp(j->symbols[i].name, name))
			return;
	if (j->res.nsymbols == SCAN_MAX_SYMBOLS)
		return;
	sym = &j->symbols[j->res.nsymbols++];
	(void)str_copy(sym->name, sizeof(sym->name), name);
	(void)scores_lookup(j->p->scores, name, &score);
	sym->score = score;
	sym->detail[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		if (vsnprintf(sym->detail, sizeof(sym->detail), fmt, ap) < 0)
			sym->detail[0] = '\0';
		va_end(ap);
	}
	j->res.score += score;
}

void scan_ctx_domains(struct scan_ctx *ctx, const char (*d)[SCAN_DOMAIN_LEN], size_t n)
{
	struct scan_job *j = ctx->job;

	if (n > SCAN_MAX_DOMAINS)
		n = SCAN_MAX_DOMAINS;
	free(j->domains);
	j->domains = NULL;
	j->res.domains = NULL;
	j->res.ndomains = 0;
	if (n == 0 || !(j->domains = malloc(n * sizeof(*j->domains))))
		return; /* out of memory: no URL lists for this one */
	memcpy(j->domains, d, n * sizeof(*j->domains));
	j->res.domains = (const char(*)[SCAN_DOMAIN_LEN])j->domains;
	j->res.ndomains = n;
}

void scan_ctx_filetype(struct scan_ctx *ctx, unsigned flag, const char *fmt, ...)
{
	struct scan_result *r = &ctx->job->res;
	va_list ap;

	if (!r->filetype_reply[0] && fmt) {
		va_start(ap, fmt);
		if (vsnprintf(r->filetype_reply, sizeof(r->filetype_reply), fmt, ap) < 0)
			r->filetype_reply[0] = '\0';
		va_end(ap);
	}
	r->filetypes |= flag;
}

void scan_ctx_learn(struct scan_ctx *ctx, void *obj, void (*free_fn)(void *), double value)
{
	struct scan_result *r = &ctx->job->res;

	if (r->learn && r->learn_free)
		r->learn_free(r->learn);
	r->learn = obj;
	r->learn_free = free_fn;
	r->learn_value = value;
}

double scan_pipeline_score(const struct scan_pipeline *p, const char *name, double def)
{
	(void)scores_lookup(p->scores, name, &def);
	return def;
}

void *scan_result_take_learn(const struct scan_result *r)
{
	/* the result handed to the callback is the job's own */
	struct scan_result *w = (struct scan_result *)r;
	void *obj = w->learn;

	w->learn = NULL;
	return obj;
}

static void refuse(struct scan_ctx *ctx, enum scan_action a, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void refuse(struct scan_ctx *ctx, enum scan_action a, const char *fmt, va_list ap)
{
	struct scan_job *j = ctx->job;

	if (j->res.action == SCAN_REJECT || (j->res.action == SCAN_TEMPFAIL && a == SCAN_TEMPFAIL))
		return;
	if (vsnprintf(j->res.reply, sizeof(j->res.reply), fmt, ap) < 0)
		(void)str_copy(j->res.reply, sizeof(j->res.reply),
			       a == SCAN_REJECT ? "554 5.7.0 Message refused"
						: "451 4.7.0 Try again later");
	j->res.action = a;
}

void scan_ctx_reject(struct scan_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	refuse(ctx, SCAN_REJECT, fmt, ap);
	va_end(ap);
}

void scan_ctx_tempfail(struct scan_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	refuse(ctx, SCAN_TEMPFAIL, fmt, ap);
	va_end(ap);
}

bool scan_ctx_refused(const struct scan_ctx *ctx)
{
	return ctx->job->res.action != SCAN_ACCEPT;
}

int64_t scan_ctx_time_left(const struct scan_ctx *ctx)
{
	return (ctx->job->deadline_us - time_mono_us()) / 1000;
}

static void mime_findings_run(void *state, struct scan_ctx *ctx)
{
	const struct mime_msg *m = scan_ctx_mime(ctx);

	(void)state;
	for (size_t i = 0; i < mime_msg_nfindings(m); i++) {
		const struct mime_finding *f = mime_msg_finding(m, i);
		scan_ctx_symbol(ctx, f->name, 0, "%.*s%s%.*s", (int)f->path.len, f->path.ptr,
				f->detail.len ? " " : "", (int)f->detail.len, f->detail.ptr);
	}
}

/* ---- threads ------------------------------------------------------------- */

static void job_run(struct scan_thread *t, struct scan_job *j)
{
	struct mime_msg *m = NULL;
	struct scan_ctx ctx = {.job = j};

	j->started_us = time_mono_us();
	for (size_t i = 0; i < j->req.npre; i++)
		scan_ctx_symbol(&ctx, j->req.pre[i].name, j->req.pre[i].score, "%s",
				j->req.pre[i].detail);
	if (mime_parse(t->mime, j->req.data, j->req.len, &m) < 0) {
		(void)str_copy(j->res.reply, sizeof(j->res.reply),
			       "451 4.3.0 Out of memory while scanning, try again later");
		j->res.action = SCAN_TEMPFAIL;
		goto out;
	}
	ctx.mime = m;
	for (size_t i = 0; i < NCHECKS; i++) {
		if (time_mono_us() > j->deadline_us)
			break; /* the loop has answered already */
		checks[i]->run(t->state[i], &ctx);
	}
out:
	mime_msg_free(m);
	j->res.ms = (time_mono_us() - j->started_us) / 1000;
}

static void *scan_thread_main(void *arg)
{
	struct scan_thread *t = arg;
	struct scan_pipeline *p = t->p;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct scan_job *j;

		while (!p->queued_head && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!p->queued_head)
			break;
		j = p->queued_head;
		p->queued_head = j->next;
		if (!p->queued_head)
			p->queued_tail = NULL;
		pthread_mutex_unlock(&p->lock);

		job_run(t, j);

		pthread_mutex_lock(&p->lock);
		j->next = p->done_head;
		p->done_head = j;
		if (write(p->pipe_wr, "", 1) < 0) {
			/* a full pipe means the loop is awake already */
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- the loop side ------------------------------------------------------- */

static void job_free(struct scan_job *j)
{
	if (j->deadline)
		event_free(j->deadline);
	free(j->strings);
	free(j->rcpts);
	free(j->data);
	free(j->pre);
	free(j->symbols);
	free(j->domains);
	if (j->res.learn && j->res.learn_free)
		j->res.learn_free(j->res.learn);
	free(j);
}

static void deliver(struct scan_pipeline *p, struct scan_job *j)
{
	metrics_add(p->metrics, M_SCAN_MESSAGES, 1);
	if (j->res.action == SCAN_REJECT)
		metrics_add(p->metrics, M_SCAN_REJECTED, 1);
	else if (j->res.action == SCAN_TEMPFAIL)
		metrics_add(p->metrics, M_SCAN_TEMPFAILED, 1);
	j->res.symbols = j->symbols;
	j->cb(&j->res, j->arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct scan_job *j = arg;
	struct scan_result r = {.action = SCAN_TEMPFAIL};

	(void)fd;
	(void)what;
	/* The thread may still be working on it: answer now, drop its result. */
	j->abandoned = true;
	metrics_add(j->p->metrics, M_SCAN_TIMEOUTS, 1);
	log_warn("scan_timeout", "qid=%s seconds=%lld", j->req.qid,
		 (long long)j->p->cfg->scan.timeout);
	(void)str_copy(r.reply, sizeof(r.reply),
		       "451 4.7.0 Scanning took too long, try again later");
	j->p->pending--;
	j->cb(&r, j->arg);
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct scan_pipeline *p = arg;
	struct scan_job *head, *next;
	char drain[256];

	(void)what;
	while (read(fd, drain, sizeof(drain)) > 0) {
	}
	pthread_mutex_lock(&p->lock);
	head = p->done_head;
	p->done_head = NULL;
	pthread_mutex_unlock(&p->lock);
	for (; head; head = next) {
		next = head->next;
		if (!head->abandoned) {
			p->pending--;
			deliver(p, head);
		}
		job_free(head);
	}
}

static void thread_states_free(struct scan_thread *t)
{
	for (size_t i = 0; i < NCHECKS; i++)
		if (t->state[i] && checks[i]->thread_free)
			checks[i]->thread_free(t->state[i]);
	mime_engine_free(t->mime);
}

struct scan_pipeline *scan_pipeline_new(struct event_base *base, const struct config *cfg,
					struct metrics *m, char *err, size_t errlen)
{
	struct scan_pipeline *p = calloc(1, sizeof(*p));
	struct mime_limits lim;
	int fds[2];

	if (!p) {
		(void)str_copy(err, errlen, "out of memory");
		return NULL;
	}
	p->base = base;
	p->cfg = cfg;
	p->metrics = m;
	p->pipe_rd = p->pipe_wr = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->nthreads = (size_t)cfg->scan.threads;
	p->threads = calloc(p->nthreads, sizeof(*p->threads));
	if (!p->threads || pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		(void)str_copy(err, errlen, "out of memory");
		goto fail;
	}
	p->pipe_rd = fds[0];
	p->pipe_wr = fds[1];
	p->ev = event_new(base, p->pipe_rd, EV_READ | EV_PERSIST, on_pipe, p);
	if (!p->ev || event_add(p->ev, NULL) < 0) {
		(void)str_copy(err, errlen, "cannot watch the scan pipe");
		goto fail;
	}
	{
		char dir[4096], why[512];
		scores_dir(cfg->av.yara_rules, dir, sizeof(dir));
		if (scores_load(dir, &p->scores, why, sizeof(why)) < 0) {
			(void)str_fmt(err, errlen, "scores: %s", why);
			goto fail;
		}
	}
	mime_limits_default(&lim);
	/* State shared by all threads (compiled rules), once per pipeline. */
	for (size_t c = 0; c < NCHECKS; c++) {
		char why[256] = "";
		if (checks[c]->shared_new &&
		    checks[c]->shared_new(cfg, m, &p->shared[c], why, sizeof(why)) < 0) {
			(void)str_fmt(err, errlen, "%s: %s", checks[c]->name, why);
			goto fail;
		}
	}
	/* Every thread gets its own engine and check states, then starts. */
	for (size_t i = 0; i < p->nthreads; i++) {
		struct scan_thread *t = &p->threads[i];
		t->p = p;
		t->mime = mime_engine_new(&lim, MIME_OPT_ALL);
		if (!t->mime) {
			(void)str_copy(err, errlen, "cannot start the MIME engine (libmagic?)");
			goto fail;
		}
		for (size_t c = 0; c < NCHECKS; c++) {
			char why[256] = "";
			int rc = 0;
			if (checks[c]->thread_init_shared)
				rc = checks[c]->thread_init_shared(cfg, m, p->shared[c],
								   &t->state[c], why, sizeof(why));
			else if (checks[c]->thread_init)
				rc = checks[c]->thread_init(cfg, m, &t->state[c], why, sizeof(why));
			if (rc < 0) {
				(void)str_fmt(err, errlen, "%s: %s", checks[c]->name, why);
				goto fail;
			}
		}
		if (pthread_create(&t->tid, NULL, scan_thread_main, t) != 0) {
			(void)str_copy(err, errlen, "cannot start a scanning thread");
			goto fail;
		}
		t->started = true;
	}
	return p;
fail:
	scan_pipeline_free(p);
	return NULL;
}

/* Copies the request so that a job never depends on its session. */
static int job_copy(struct scan_job *j, const struct scan_request *r)
{
	const char *src[4] = {r->qid ? r->qid : "", r->client ? r->client : "",
			      r->helo ? r->helo : "", r->sender ? r->sender : ""};
	size_t total = 0, off = 0;
	const char *dst[4];

	for (size_t i = 0; i < 4; i++)
		total += strlen(src[i]) + 1;
	for (size_t i = 0; i < r->nrcpts; i++)
		total += strlen(r->rcpts[i]) + 1;
	j->strings = malloc(total);
	j->rcpts = calloc(r->nrcpts ? r->nrcpts : 1, sizeof(*j->rcpts));
	j->data = malloc(r->len ? r->len : 1);
	j->symbols = calloc(SCAN_MAX_SYMBOLS, sizeof(*j->symbols));
	if (!j->strings || !j->rcpts || !j->data || !j->symbols)
		return -ENOMEM;
	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(src[i]) + 1;
		memcpy(j->strings + off, src[i], n);
		dst[i] = j->strings + off;
		off += n;
	}
	for (size_t i = 0; i < r->nrcpts; i++) {
		size_t n = strlen(r->rcpts[i]) + 1;
		memcpy(j->strings + off, r->rcpts[i], n);
		j->rcpts[i] = j->strings + off;
		off += n;
	}
	memcpy(j->data, r->data, r->len);
	if (r->npre) {
		j->pre = calloc(r->npre, sizeof(*j->pre));
		if (!j->pre)
			return -ENOMEM;
		memcpy(j->pre, r->pre, r->npre * sizeof(*j->pre));
	}
	j->req = *r;
	j->req.pre = j->pre;
	j->req.qid = dst[0];
	j->req.client = dst[1];
	j->req.helo = dst[2];
	j->req.sender = dst[3];
	j->req.rcpts = j->rcpts;
	j->req.data = j->data;
	return 0;
}

int scan_submit(struct scan_pipeline *p, const struct scan_request *req, scan_cb cb, void *arg)
{
	struct scan_job *j = calloc(1, sizeof(*j));
	struct timeval tv = {p->cfg->scan.timeout, 0};

	if (!j)
		return -ENOMEM;
	j->p = p;
	j->cb = cb;
	j->arg = arg;
	if (job_copy(j, req) < 0 || !(j->deadline = evtimer_new(p->base, on_deadline, j)) ||
	    evtimer_add(j->deadline, &tv) < 0) {
		job_free(j);
		return -ENOMEM;
	}
	j->deadline_us = time_mono_us() + p->cfg->scan.timeout * 1000000;
	pthread_mutex_lock(&p->lock);
	if (p->queued_tail)
		p->queued_tail->next = j;
	else
		p->queued_head = j;
	p->queued_tail = j;
	p->pending++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

size_t scan_pending(const struct scan_pipeline *p)
{
	return p->pending;
}

void scan_pipeline_free(struct scan_pipeline *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; p->threads && i < p->nthreads; i++)
		if (p->threads[i].started)
			pthread_join(p->threads[i].tid, NULL);
	/* every queued job was run by a thread before it stopped */
	if (p->ev)
		on_pipe(p->pipe_rd, EV_READ, p);
	for (size_t i = 0; p->threads && i < p->nthreads; i++)
		thread_states_free(&p->threads[i]);
	for (size_t c = 0; c < NCHECKS; c++)
		if (p->shared[c] && checks[c]->shared_free)
			checks[c]->shared_free(p->shared[c]);
	if (p->ev)
		event_free(p->ev);
	if (p->pipe_rd >= 0)
		close(p->pipe_rd);
	if (p->pipe_wr >= 0)
		close(p->pipe_wr);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->threads);
	scores_free(p->scores);
	free(p);
}
