/* SPDX-License-Identifier: MIT */
#include "store/store_async.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

enum job_kind { JOB_LOOKUP, JOB_COMMIT, JOB_REP_GET, JOB_REP_RECORD, JOB_CALL };

struct job {
	struct job *next;
	enum job_kind kind;
	int rc;
	char address[STORE_ADDR_LEN];
	struct store_rcpt rcpt;
	const struct store_message *msg;
	store_async_lookup_cb lookup_cb;
	store_async_commit_cb commit_cb;
	store_async_rep_cb rep_cb;
	char rep_keys[2][STORE_REP_KEY_LEN];
	struct store_reputation rep[2];
	int64_t half_life;
	bool spam;
	store_async_fn fn; /* JOB_CALL */
	store_async_call_cb call_cb;
	void *arg;
};

struct job_list {
	struct job *head, *tail;
	size_t n;
};

struct store_async {
	struct event_base *base;
	struct metrics *metrics;
	struct store *store;
	size_t batch;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job_list queued; /* loop -> thread */
	struct job_list done;	/* thread -> loop */
	bool stopping;
	size_t pending;
	int pipe_rd, pipe_wr;
	struct event *ev;
};

static void list_push(struct job_list *l, struct job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->n++;
}

static struct job *list_take_all(struct job_list *l)
{
	struct job *h = l->head;

	l->head = l->tail = NULL;
	l->n = 0;
	return h;
}

static void run_commits(struct store_async *sa, struct job **jobs, size_t n)
{
	const struct store_message *msgs[4096];
	int rc;

	for (size_t i = 0; i < n; i++)
		msgs[i] = jobs[i]->msg;
	rc = store_messages_commit(sa->store, msgs, n);
	if (rc == STORE_OK) {
		metrics_add(sa->metrics, M_STORE_COMMITS, 1);
		metrics_add(sa->metrics, M_STORE_COMMITTED_MESSAGES, (int64_t)n);
		for (size_t i = 0; i < n; i++)
			jobs[i]->rc = STORE_OK;
		return;
	}
	metrics_add(sa->metrics, M_STORE_ERRORS, 1);
	log_warn("store_error", "op=commit batch=%zu rc=%d reason=\"%s\"", n, rc,
		 store_last_error(sa->store));
	if (n == 1) {
		jobs[0]->rc = rc;
		return;
	}
	/* One bad message must not fail its neighbours: retry one by one. */
	for (size_t i = 0; i < n; i++)
		run_commits(sa, &jobs[i], 1);
}

static void run_batch(struct store_async *sa, struct job *head)
{
	struct job *commits[4096];
	size_t nc = 0;

	for (struct job *j = head; j; j = j->next) {
		if (j->kind == JOB_REP_GET || j->kind == JOB_REP_RECORD) {
			const char *keys[2] = {j->rep_keys[0], j->rep_keys[1]};
			if (j->kind == JOB_REP_GET)
				j->rc = store_reputation_get(sa->store, keys, 2, time_now(),
							     j->half_life, j->rep);
			else
				j->rc = store_reputation_record(sa->store, keys, 2, j->spam,
								time_now(), j->half_life);
			if (j->rc == STORE_TEMPFAIL)
				log_warn("store_error", "op=reputation reason=\"%s\"",
					 store_last_error(sa->store));
			continue;
		}
		if (j->kind == JOB_CALL) {
			j->rc = j->fn(sa->store, j->arg);
			if (j->rc == STORE_TEMPFAIL) {
				metrics_add(sa->metrics, M_STORE_ERRORS, 1);
				log_warn("store_error", "op=call reason=\"%s\"",
					 store_last_error(sa->store));
			}
			continue;
		}
		if (j->kind == JOB_LOOKUP) {
			j->rc = store_rcpt_lookup(sa->store, j->address, &j->rcpt);
			if (j->rc == STORE_TEMPFAIL) {
				metrics_add(sa->metrics, M_STORE_ERRORS, 1);
				log_warn("store_error", "op=lookup reason=\"%s\"",
					 store_last_error(sa->store));
			}
			continue;
		}
		commits[nc++] = j;
		if (nc == sa->batch || nc == ARRAY_LEN(commits)) {
			run_commits(sa, commits, nc);
			nc = 0;
		}
	}
	if (nc)
		run_commits(sa, commits, nc);
}

static void *store_thread(void *arg)
{
	struct store_async *sa = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&sa->lock);
	for (;;) {
		struct job *head, *next;

		while (!sa->queued.head && !sa->stopping)
			pthread_cond_wait(&sa->cond, &sa->lock);
		if (!sa->queued.head && sa->stopping)
			break;
		head = list_take_all(&sa->queued);
		pthread_mutex_unlock(&sa->lock);

		run_batch(sa, head);

		pthread_mutex_lock(&sa->lock);
		for (; head; head = next) {
			next = head->next;
			list_push(&sa->done, head);
		}
		/* Wake the loop; a full pipe already means it is awake. */
		if (write(sa->pipe_wr, "", 1) < 0) {
		}
	}
	pthread_mutex_unlock(&sa->lock);
	return NULL;
}

static void deliver_done(struct store_async *sa)
{
	struct job *head, *next;

	pthread_mutex_lock(&sa->lock);
	head = list_take_all(&sa->done);
	pthread_mutex_unlock(&sa->lock);
	for (; head; head = next) {
		next = head->next;
		sa->pending--;
		if (head->kind == JOB_LOOKUP)
			head->lookup_cb(head->rc, head->rc == STORE_OK ? &head->rcpt : NULL,
					head->arg);
		else if (head->kind == JOB_COMMIT)
			head->commit_cb(head->rc, head->arg);
		else if (head->kind == JOB_REP_GET)
			head->rep_cb(head->rc, head->rep, head->arg);
		else if (head->kind == JOB_CALL && head->call_cb)
			head->call_cb(head->rc, head->arg);
		free(head);
	}
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	char drain[256];

	(void)what;
	while (read(fd, drain, sizeof(drain)) > 0) {
	}
	deliver_done(arg);
}

struct store_async *store_async_new(struct event_base *base, const struct config *cfg,
				    struct metrics *m, char *err, size_t errlen)
{
	struct store_async *sa = calloc(1, sizeof(*sa));
	int fds[2];

	if (!sa) {
		(void)str_copy(err, errlen, "out of memory");
		return NULL;
	}
	sa->base = base;
	sa->metrics = m;
	sa->batch = (size_t)cfg->store.commit_batch;
	if (store_open(cfg->store.url, (int)cfg->store.busy_timeout, &sa->store, err, errlen) !=
	    STORE_OK) {
		free(sa);
		return NULL;
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		(void)str_fmt(err, errlen, "pipe: %s", strerror(errno));
		store_close(sa->store);
		free(sa);
		return NULL;
	}
	sa->pipe_rd = fds[0];
	sa->pipe_wr = fds[1];
	pthread_mutex_init(&sa->lock, NULL);
	pthread_cond_init(&sa->cond, NULL);
	sa->ev = event_new(base, sa->pipe_rd, EV_READ | EV_PERSIST, on_pipe, sa);
	if (!sa->ev || event_add(sa->ev, NULL) < 0 ||
	    pthread_create(&sa->thread, NULL, store_thread, sa) != 0) {
		(void)str_copy(err, errlen, "cannot start the store thread");
		if (sa->ev)
			event_free(sa->ev);
		close(sa->pipe_rd);
		close(sa->pipe_wr);
		store_close(sa->store);
		free(sa);
		return NULL;
	}
	return sa;
}

static int submit(struct store_async *sa, struct job *j)
{
	pthread_mutex_lock(&sa->lock);
	list_push(&sa->queued, j);
	sa->pending++;
	pthread_cond_signal(&sa->cond);
	pthread_mutex_unlock(&sa->lock);
	return 0;
}

int store_async_lookup(struct store_async *sa, const char *address, store_async_lookup_cb cb,
		       void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->kind = JOB_LOOKUP;
	if (str_copy(j->address, sizeof(j->address), address) < 0) {
		free(j);
		return -ENAMETOOLONG;
	}
	j->lookup_cb = cb;
	j->arg = arg;
	return submit(sa, j);
}

int store_async_commit(struct store_async *sa, const struct store_message *msg,
		       store_async_commit_cb cb, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->kind = JOB_COMMIT;
	j->msg = msg;
	j->commit_cb = cb;
	j->arg = arg;
	return submit(sa, j);
}

static struct job *rep_job(enum job_kind kind, const char *ip, const char *net, int64_t half_life)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = kind;
	j->half_life = half_life;
	if (str_copy(j->rep_keys[0], sizeof(j->rep_keys[0]), ip) < 0 ||
	    str_copy(j->rep_keys[1], sizeof(j->rep_keys[1]), net) < 0) {
		free(j);
		return NULL;
	}
	return j;
}

int store_async_reputation(struct store_async *sa, const char *ip, const char *net,
			   int64_t half_life, store_async_rep_cb cb, void *arg)
{
	struct job *j = rep_job(JOB_REP_GET, ip, net, half_life);

	if (!j)
		return -ENOMEM;
	j->rep_cb = cb;
	j->arg = arg;
	return submit(sa, j);
}

int store_async_reputation_record(struct store_async *sa, const char *ip, const char *net,
				  bool spam, int64_t half_life)
{
	struct job *j = rep_job(JOB_REP_RECORD, ip, net, half_life);

	if (!j)
		return -ENOMEM;
	j->spam = spam;
	return submit(sa, j);
}

int store_async_call(struct store_async *sa, store_async_fn fn, store_async_call_cb cb, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->kind = JOB_CALL;
	j->fn = fn;
	j->call_cb = cb;
	j->arg = arg;
	return submit(sa, j);
}

size_t store_async_pending(const struct store_async *sa)
{
	return sa->pending;
}

void store_async_free(struct store_async *sa)
{
	if (!sa)
		return;
	pthread_mutex_lock(&sa->lock);
	sa->stopping = true;
	pthread_cond_signal(&sa->cond);
	pthread_mutex_unlock(&sa->lock);
	pthread_join(sa->thread, NULL);
	deliver_done(sa);
	event_free(sa->ev);
	close(sa->pipe_rd);
	close(sa->pipe_wr);
	store_close(sa->store);
	pthread_mutex_destroy(&sa->lock);
	pthread_cond_destroy(&sa->cond);
	free(sa);
}
