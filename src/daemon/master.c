/* SPDX-License-Identifier: MIT */
#include "daemon/master.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "daemon/worker.h"
#include "net/tls.h"
#include "scan/av_yara.h"
#include "scan/sarules.h"
#include "scan/scores.h"
#include "smtp/limits.h"
#include "store/store.h"

#define MAX_SMTP_WORKERS 32
#define MAX_CHILDREN (2 * (MAX_SMTP_WORKERS + 2))
/* How long a stop waits for workers to drain before SIGKILL. */
#define STOP_DEADLINE_S 45
/* A worker that dies sooner than this after its start is crash-looping. */
#define CRASH_LOOP_S 2
#define RESTART_DELAY_MAX_S 30
/* Clients tracked at once by the per-client limits (about 150 B each). */
#define LIMITS_TABLE_ENTRIES 65536

struct child {
	int kind; /* enum worker_kind; WORKER_NONE for a free slot */
	int index;
	pid_t pid;
	bool retiring; /* replaced by a reload: not restarted */
	int64_t started;
	int64_t next_start; /* when a dead worker may be started again */
	int fast_deaths;    /* consecutive deaths within CRASH_LOOP_S */
	const struct config *cfg;
};

struct master {
	struct config *cfg; /* current generation */
	struct metrics *metrics;
	int nsmtp;
	/* per worker: smtp.listen sockets, then smtp.proxy_listen ones */
	int smtp_fds[MAX_SMTP_WORKERS][2 * CONFIG_MAX_LISTEN];
	size_t nlisten; /* all of them */
	size_t nproxy;	/* how many at the end expect a PROXY header */
	int http_fd;
	int nudge[2];
	SSL_CTX *tls;
	struct limits *limits;
	unsigned rules_gen; /* data_dir/rules/GEN: the current rules snapshot */
	struct child children[MAX_CHILDREN];
	bool stopping;
};

static const char *kind_name(int kind)
{
	switch (kind) {
	case WORKER_SMTP:
		return "smtp";
	case WORKER_DELIVERY:
		return "delivery";
	case WORKER_HTTP:
		return "http";
	}
	return "none";
}

static int bind_one(const char *hostport, char *err, size_t errlen)
{
	char host[256], portstr[8];
	uint16_t port;
	struct addrinfo hints = {0}, *ai = NULL;
	int fd = -1, one = 1, r;

	if (parse_hostport(hostport, host, sizeof(host), &port) < 0) {
		(void)str_fmt(err, errlen, "bad listen address %s", hostport);
		return -1;
	}
	(void)str_fmt(portstr, sizeof(portstr), "%u", port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(host, portstr, &hints, &ai);
	if (r != 0) {
		(void)str_fmt(err, errlen, "%s: %s", hostport, gai_strerror(r));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0)
		goto fail;
	freeaddrinfo(ai);
	return fd;
fail:
	(void)str_fmt(err, errlen, "%s: %s", hostport, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return -1;
}

static int bind_all(struct master *m)
{
	const struct config *cfg = m->cfg;
	char err[512];

	m->nlisten = cfg->smtp.nlisten + cfg->smtp.nproxy_listen;
	m->nproxy = cfg->smtp.nproxy_listen;
	for (int w = 0; w < m->nsmtp; w++) {
		for (size_t i = 0; i < m->nlisten; i++) {
			const char *addr = i < cfg->smtp.nlisten
					       ? cfg->smtp.listen[i]
					       : cfg->smtp.proxy_listen[i - cfg->smtp.nlisten];
			m->smtp_fds[w][i] = bind_one(addr, err, sizeof(err));
			if (m->smtp_fds[w][i] < 0) {
				log_err("bind", "kind=smtp reason=\"%s\"", err);
				return -1;
			}
		}
	}
	m->http_fd = bind_one(cfg->http.listen, err, sizeof(err));
	if (m->http_fd < 0) {
		log_err("bind", "kind=http reason=\"%s\"", err);
		return -1;
	}
	return 0;
}

/* Creates the directories the workers write to and, when we run as root,
 * gives them (and an existing store file) to the unprivileged user; then
 * drops privileges for good. Nothing after this runs as root. */
/* lchown of path and what it holds, depth levels down (no links followed);
 * failures are logged, never fatal. */
static void chown_tree(const char *path, uid_t uid, gid_t gid, int depth)
{
	struct dirent *e;
	DIR *d;

	if (lchown(path, uid, gid) < 0) {
		if (errno != ENOENT)
			log_warn("startup", "reason=\"chown %s: %s\"", path, strerror(errno));
		return;
	}
	if (depth <= 0 || !(d = opendir(path)))
		return;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    str_fmt(p, sizeof(p), "%s/%s", path, e->d_name) < 0 || lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			chown_tree(p, uid, gid, depth - 1);
		else if (lchown(p, uid, gid) < 0)
			log_warn("startup", "reason=\"chown %s: %s\"", p, strerror(errno));
	}
	closedir(d);
}

static int prepare_and_drop(const struct config *cfg)
{
	const char *db = config_sqlite_path(cfg);
	char dbdir[PATH_MAX];
	struct passwd *pw;

	if (mkdir_p(cfg->node.data_dir, 0750) < 0) {
		log_err("startup", "reason=\"cannot create %s: %s\"", cfg->node.data_dir,
			strerror(errno));
		return -1;
	}
	dbdir[0] = '\0';
	if (db) {
		char *slash;
		(void)str_copy(dbdir, sizeof(dbdir), db);
		slash = strrchr(dbdir, '/');
		if (slash && slash != dbdir)
			*slash = '\0';
		if (mkdir_p(dbdir, 0750) < 0) {
			log_err("startup", "reason=\"cannot create %s: %s\"", dbdir,
				strerror(errno));
			return -1;
		}
	}
	if (geteuid() != 0)
		return 0;
	if (!cfg->node.user[0]) {
		log_err("startup", "reason=\"running as root needs node.user (an unprivileged "
				   "user for the workers)\"");
		return -1;
	}
	pw = getpwnam(cfg->node.user);
	if (!pw) {
		log_err("startup",
			"reason=\"user '%s' does not exist (create it, or set "
			"node.user)\"",
			cfg->node.user);
		return -1;
	}
	if (chown(cfg->node.data_dir, pw->pw_uid, pw->pw_gid) < 0)
		log_warn("startup", "reason=\"chown %s: %s\"", cfg->node.data_dir, strerror(errno));
	if (db) {
		static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
		if (chown(dbdir, pw->pw_uid, pw->pw_gid) < 0)
			log_warn("startup", "reason=\"chown %s: %s\"", dbdir, strerror(errno));
		for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
			char f[PATH_MAX + 16];
			if (str_fmt(f, sizeof(f), "%s%s", db, suffixes[i]) == 0 &&
			    chown(f, pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT)
				log_warn("startup", "reason=\"chown %s: %s\"", f, strerror(errno));
		}
	}
	/* caches the CLI may have made as root (compiled rules): the workers
	 * must read and update them */
	{
		char cache[PATH_MAX];
		if (str_fmt(cache, sizeof(cache), "%s/cache", cfg->node.data_dir) == 0)
			chown_tree(cache, pw->pw_uid, pw->pw_gid, 3);
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_err("startup", "reason=\"cannot drop privileges to %s: %s\"", cfg->node.user,
			strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_err("startup", "reason=\"privileges were not dropped\"");
		return -1;
	}
	log_info("privileges", "user=%s uid=%ld", cfg->node.user, (long)pw->pw_uid);
	return 0;
}

static int prepare_store(const struct config *cfg)
{
	struct store *st = NULL;
	char err[512];
	int rc;

	if (store_open(cfg->store.url, (int)cfg->store.busy_timeout, &st, err, sizeof(err)) !=
	    STORE_OK) {
		log_err("store", "reason=\"%s\"", err);
		return -1;
	}
	rc = store_migrate(st);
	if (rc != STORE_OK)
		log_err("store", "op=migrate reason=\"%s\"", store_last_error(st));
	else
		log_info("store", "url=%s schema=%d", cfg->store.url, store_schema_version(st));
	/* No delivery worker of this node runs yet: whatever this node had
	 * claimed before a crash is due again now, not when the lease ends. */
	if (rc == STORE_OK && store_queue_release_node(st, cfg->node.hostname) != STORE_OK)
		log_warn("store", "op=release_node reason=\"%s\"", store_last_error(st));
	store_close(st);
	return rc == STORE_OK ? 0 : -1;
}

/* In the child: keep only this worker's descriptors, restore signals. */
static void child_setup(struct master *m, const struct child *c)
{
	sigset_t none;
	char name[32];

	sigemptyset(&none);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int w = 0; w < m->nsmtp; w++)
		for (size_t i = 0; i < m->nlisten; i++)
			if (!(c->kind == WORKER_SMTP && w == c->index))
				close(m->smtp_fds[w][i]);
	if (c->kind != WORKER_HTTP)
		close(m->http_fd);
	if (c->kind == WORKER_DELIVERY)
		close(m->nudge[1]);
	else
		close(m->nudge[0]);
	if (c->kind == WORKER_SMTP)
		(void)str_fmt(name, sizeof(name), "smtp/%d", c->index);
	else
		(void)str_copy(name, sizeof(name), kind_name(c->kind));
	log_init(name, (enum log_level)c->cfg->log.level);
}

static void publish_workers(struct master *m)
{
	size_t n = 0;

	for (size_t i = 0; i < MAX_CHILDREN && n < METRICS_MAX_WORKERS; i++) {
		const struct child *c = &m->children[i];
		if (c->kind == WORKER_NONE || c->retiring)
			continue;
		m->metrics->workers[n].kind = c->kind;
		m->metrics->workers[n].index = c->index;
		m->metrics->workers[n].pid = c->pid;
		m->metrics->workers[n].started = c->started;
		n++;
	}
	m->metrics->nworkers = n;
}

static void start_child(struct master *m, struct child *c)
{
	struct worker_ctx ctx = {0};
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		log_err("fork", "kind=%s reason=\"%s\"", kind_name(c->kind), strerror(errno));
		c->next_start = time_now() + 1;
		return;
	}
	if (pid == 0) {
		child_setup(m, c);
		ctx.cfg = c->cfg;
		ctx.metrics = m->metrics;
		ctx.index = c->index;
		ctx.http_fd = m->http_fd;
		ctx.nudge_rd = m->nudge[0];
		ctx.nudge_wr = m->nudge[1];
		ctx.tls = m->tls;
		ctx.limits = m->limits;
		if (c->kind == WORKER_SMTP) {
			ctx.smtp_fds = m->smtp_fds[c->index];
			ctx.nsmtp_fds = m->nlisten;
			ctx.nsmtp_proxy_fds = m->nproxy;
			_exit(smtp_worker_main(&ctx));
		}
		if (c->kind == WORKER_DELIVERY)
			_exit(delivery_worker_main(&ctx));
		_exit(http_worker_main(&ctx));
	}
	c->pid = pid;
	c->started = time_now();
	log_info("worker_start", "kind=%s index=%d worker_pid=%ld", kind_name(c->kind), c->index,
		 (long)pid);
	publish_workers(m);
}

static struct child *add_child(struct master *m, int kind, int index)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &m->children[i];
		if (c->kind != WORKER_NONE)
			continue;
		memset(c, 0, sizeof(*c));
		c->kind = kind;
		c->index = index;
		c->cfg = m->cfg;
		return c;
	}
	return NULL;
}

static void add_generation(struct master *m)
{
	for (int i = 0; i < m->nsmtp; i++)
		add_child(m, WORKER_SMTP, i);
	add_child(m, WORKER_DELIVERY, 0);
	add_child(m, WORKER_HTTP, 0);
}

/* A delivery worker died without releasing its claims: make them due now. */
static void release_dead_owner(const struct config *cfg, pid_t pid)
{
	struct store *st = NULL;
	char err[256], owner[300];

	if (str_fmt(owner, sizeof(owner), "%s:%ld", cfg->node.hostname, (long)pid) < 0 ||
	    store_open(cfg->store.url, (int)cfg->store.busy_timeout, &st, err, sizeof(err)) !=
		STORE_OK)
		return; /* the leases then simply run out */
	if (store_queue_release(st, owner) != STORE_OK)
		log_warn("store", "op=release owner=%s reason=\"%s\"", owner, store_last_error(st));
	store_close(st);
}

/* ---- rules snapshots ---------------------------------------------------- */

/* Workers compile the YARA rules and read the hash lists when they start.
 * They must read exactly what was checked: a worker restarted after a crash
 * must not pick up a rule file someone is half-way through editing. So the
 * master copies the rule folders into data_dir/snapshots/rules.GEN/ when it starts
 * and on every reload, checks that copy, and points the workers there. */
#define RULES_SNAPSHOT_MAX (64 * 1024 * 1024)

static int remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[PATH_MAX];

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (str_fmt(p, sizeof(p), "%s/%s", path, e->d_name) < 0 || lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			(void)remove_tree(p);
		else
			(void)unlink(p);
	}
	closedir(d);
	return rmdir(path) < 0 ? -errno : 0;
}

static int copy_file(const char *from, const char *to, size_t *budget)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if ((size_t)n > *budget) {
			rc = -EFBIG;
			goto out;
		}
		*budget -= (size_t)n;
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			goto out;
		}
	}
	if (n < 0)
		rc = -errno;
out:
	close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* Copies the regular files of src into dst (created). */
static int copy_dir(const char *src, const char *dst, size_t *budget, char *err, size_t errlen)
{
	DIR *d = opendir(src);
	struct dirent *e;
	int rc = 0;

	if (!d) {
		(void)str_fmt(err, errlen, "%s: %s", src, strerror(errno));
		return -1;
	}
	if (mkdir_p(dst, 0750) < 0) {
		(void)str_fmt(err, errlen, "%s: %s", dst, strerror(errno));
		closedir(d);
		return -1;
	}
	while ((e = readdir(d)) && rc == 0) {
		char a[PATH_MAX], b[PATH_MAX];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		if (str_fmt(a, sizeof(a), "%s/%s", src, e->d_name) < 0 ||
		    str_fmt(b, sizeof(b), "%s/%s", dst, e->d_name) < 0 || stat(a, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		rc = copy_file(a, b, budget);
		if (rc < 0)
			(void)str_fmt(err, errlen, "%s: %s", a, strerror(-rc));
	}
	closedir(d);
	return rc < 0 ? -1 : 0;
}

/* Snapshots cfg's rule folders as generation gen, checks the copy, and
 * points cfg at it. On failure nothing of it is left and err says why. */
static int rules_snapshot(struct config *cfg, unsigned gen, char *err, size_t errlen)
{
	char dir[PATH_MAX], y[PATH_MAX], h[PATH_MAX];
	size_t budget = RULES_SNAPSHOT_MAX;

	if (str_fmt(dir, sizeof(dir), "%s/snapshots/rules.%u", cfg->node.data_dir, gen) < 0 ||
	    str_fmt(y, sizeof(y), "%s/yara", dir) < 0 ||
	    str_fmt(h, sizeof(h), "%s/hashes", dir) < 0) {
		(void)str_copy(err, errlen, "data_dir too long");
		return -1;
	}
	(void)remove_tree(dir);
	if ((cfg->av.yara_rules[0] && copy_dir(cfg->av.yara_rules, y, &budget, err, errlen) < 0) ||
	    (cfg->av.hash_lists[0] && copy_dir(cfg->av.hash_lists, h, &budget, err, errlen) < 0))
		goto fail;
	/* the folders beside the YARA rules that the content checks read
	 * from the same place: phishing lists (urlcheck), our SpamAssassin
	 * rules (sarules) */
	if (cfg->av.yara_rules[0]) {
		static const char *const siblings[] = {"phish", "spam", "scores"};
		const char *slash = strrchr(cfg->av.yara_rules, '/');
		for (size_t i = 0; slash && i < ARRAY_LEN(siblings); i++) {
			char from[PATH_MAX], to[PATH_MAX];
			struct stat st;
			if (str_fmt(from, sizeof(from), "%.*s/%s",
				    (int)(slash - cfg->av.yara_rules), cfg->av.yara_rules,
				    siblings[i]) < 0 ||
			    str_fmt(to, sizeof(to), "%s/%s", dir, siblings[i]) < 0) {
				(void)str_copy(err, errlen, "rules folder name too long");
				goto fail;
			}
			if (stat(from, &st) == 0 && S_ISDIR(st.st_mode) &&
			    copy_dir(from, to, &budget, err, errlen) < 0)
				goto fail;
		}
	}
	if (cfg->av.yara_rules[0])
		(void)str_copy(cfg->av.yara_rules, sizeof(cfg->av.yara_rules), y);
	if (cfg->av.hash_lists[0])
		(void)str_copy(cfg->av.hash_lists, sizeof(cfg->av.hash_lists), h);
	if (av_yara_rules_check(cfg, err, errlen) < 0)
		goto fail;
	{
		char sdir[PATH_MAX];
		struct scores *sc = NULL;
		scores_dir(cfg->av.yara_rules, sdir, sizeof(sdir));
		if (scores_load(sdir, &sc, err, errlen) < 0)
			goto fail;
		scores_free(sc);
	}
	{
		/* SpamAssassin-format rules: compiled once here, so the workers
		 * (which all load the same files) read the compiled databases
		 * from the cache instead of each compiling them (seconds of
		 * CPU for Debian's set). A rule that cannot be used is skipped
		 * and reported by `mxguard rules check`; only an unreadable
		 * file refuses the generation. */
		struct sarules_db *db = NULL;
		if (sarules_db_load_config(cfg, &db, err, errlen) < 0)
			goto fail;
		if (db)
			log_info("sa_rules", "loaded=%zu skipped=%zu", sarules_db_nloaded(db),
				 sarules_db_nskipped(db));
		sarules_db_free(db);
	}
	return 0;
fail:
	(void)remove_tree(dir);
	return -1;
}

/* Removes rules snapshots older than keep (the current and the draining
 * generation stay). */
static void rules_prune(const struct config *cfg, unsigned keep)
{
	char dir[PATH_MAX];

	if (keep >= 2 &&
	    str_fmt(dir, sizeof(dir), "%s/snapshots/rules.%u", cfg->node.data_dir, keep - 2) == 0)
		(void)remove_tree(dir);
}

/* Frees a configuration of an older generation once no worker uses it. */
static void config_release(struct master *m, const struct config *cfg)
{
	if (cfg == m->cfg)
		return;
	for (size_t i = 0; i < MAX_CHILDREN; i++)
		if (m->children[i].kind != WORKER_NONE && m->children[i].cfg == cfg)
			return;
	free((void *)cfg);
}

static void reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < MAX_CHILDREN; i++) {
			struct child *c = &m->children[i];
			int64_t now = time_now();
			bool clean;

			if (c->kind == WORKER_NONE || c->pid != pid)
				continue;
			clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
			if (WIFSIGNALED(status))
				log_msg(m->stopping || c->retiring ? LOG_INFO : LOG_ERR,
					"worker_exit", "kind=%s index=%d worker_pid=%ld signal=%d",
					kind_name(c->kind), c->index, (long)pid, WTERMSIG(status));
			else
				log_msg(clean || m->stopping ? LOG_INFO : LOG_ERR, "worker_exit",
					"kind=%s index=%d worker_pid=%ld status=%d",
					kind_name(c->kind), c->index, (long)pid,
					WEXITSTATUS(status));
			c->pid = 0;
			if (c->kind == WORKER_DELIVERY && !clean)
				release_dead_owner(c->cfg, pid);
			if (c->kind == WORKER_SMTP && !clean && !c->retiring) {
				/* its sessions are gone: stop counting them */
				limits_worker_reset(m->limits, c->index);
				__atomic_store_n(&m->metrics->smtp_active[c->index], 0,
						 __ATOMIC_RELAXED);
			}
			if (c->retiring || m->stopping) {
				if (c->retiring) {
					const struct config *old = c->cfg;
					c->kind = WORKER_NONE;
					config_release(m, old);
				}
				break;
			}
			metrics_add(m->metrics, M_WORKER_RESTARTS, 1);
			if (now - c->started < CRASH_LOOP_S)
				c->fast_deaths++;
			else
				c->fast_deaths = 0;
			/* 0, 1, 2, 4 ... seconds: a crash loop must not spin. */
			c->next_start = now;
			if (c->fast_deaths > 1) {
				int64_t d = (int64_t)1 << (c->fast_deaths - 2);
				c->next_start =
				    now + (d > RESTART_DELAY_MAX_S ? RESTART_DELAY_MAX_S : d);
			}
			break;
		}
	}
	publish_workers(m);
}

static size_t live_children(const struct master *m)
{
	size_t n = 0;

	for (size_t i = 0; i < MAX_CHILDREN; i++)
		if (m->children[i].kind != WORKER_NONE && m->children[i].pid > 0)
			n++;
	return n;
}

static void signal_all(struct master *m, int sig, bool only_retiring)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		const struct child *c = &m->children[i];
		if (c->kind != WORKER_NONE && c->pid > 0 && (!only_retiring || c->retiring))
			kill(c->pid, sig);
	}
}

/* On stop: new connections are refused at once (a load balancer moves on)
 * while the workers finish what they have. */
static void close_listeners(struct master *m)
{
	for (int w = 0; w < m->nsmtp; w++)
		for (size_t i = 0; i < m->nlisten; i++)
			close(m->smtp_fds[w][i]);
	close(m->http_fd);
	m->nlisten = 0;
}

static bool listeners_equal(const struct config *a, const struct config *b)
{
	if (a->smtp.nlisten != b->smtp.nlisten || strcmp(a->http.listen, b->http.listen) ||
	    a->smtp.nproxy_listen != b->smtp.nproxy_listen)
		return false;
	for (size_t i = 0; i < a->smtp.nproxy_listen; i++)
		if (strcmp(a->smtp.proxy_listen[i], b->smtp.proxy_listen[i]))
			return false;
	for (size_t i = 0; i < a->smtp.nlisten; i++)
		if (strcmp(a->smtp.listen[i], b->smtp.listen[i]))
			return false;
	return a->smtp.workers == b->smtp.workers;
}

/* The pid file that `mxguard rules reload` signals. Written after the
 * privileges are dropped, so its folder must be writable by node.user. */
static int pid_file_write(const struct config *cfg, char *path, size_t pathlen)
{
	char buf[32];
	int fd, n, rc = 0;

	if (config_pid_file(cfg, path, pathlen) < 0) {
		log_err("startup", "reason=\"pid file path too long\"");
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		log_err("startup", "reason=\"cannot write the pid file %s: %s\"", path,
			strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* SIGHUP: a new generation of workers with the new configuration; the old
 * one drains. A configuration that does not parse changes nothing. */
static void reload(struct master *m)
{
	struct config *ncfg = malloc(sizeof(*ncfg));
	char err[1024];

	if (!ncfg) {
		log_err("reload", "reason=\"out of memory\"");
		return;
	}
	if (config_load(m->cfg->path, ncfg, err, sizeof(err)) < 0) {
		log_err("reload", "status=refused reason=\"%s\"", err);
		free(ncfg);
		return;
	}
	/* New workers with rules that do not compile would not start: keep the
	 * old generation running instead. */
	if (rules_snapshot(ncfg, m->rules_gen + 1, err, sizeof(err)) < 0) {
		log_err("reload", "status=refused reason=\"rules: %s\"", err);
		free(ncfg);
		return;
	}
	m->rules_gen++;
	rules_prune(ncfg, m->rules_gen);
	if (!listeners_equal(m->cfg, ncfg)) {
		log_warn("reload", "reason=\"listener or worker count changes need a restart; "
				   "keeping the old ones\"");
		memcpy(ncfg->smtp.listen, m->cfg->smtp.listen, sizeof(ncfg->smtp.listen));
		ncfg->smtp.nlisten = m->cfg->smtp.nlisten;
		memcpy(ncfg->smtp.proxy_listen, m->cfg->smtp.proxy_listen,
		       sizeof(ncfg->smtp.proxy_listen));
		ncfg->smtp.nproxy_listen = m->cfg->smtp.nproxy_listen;
		memcpy(ncfg->http.listen, m->cfg->http.listen, sizeof(ncfg->http.listen));
		ncfg->smtp.workers = m->cfg->smtp.workers;
	}
	/* The old struct stays alive while a draining worker's slot points to
	 * it; config_release() frees it when the last of them is gone. */
	{
		struct config *old = m->cfg;
		m->cfg = ncfg;
		config_release(m, old);
	}
	log_init("master", (enum log_level)ncfg->log.level);
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &m->children[i];
		if (c->kind == WORKER_NONE)
			continue;
		c->retiring = true;
		if (c->pid == 0) {
			const struct config *old = c->cfg;
			c->kind = WORKER_NONE;
			config_release(m, old);
		}
	}
	signal_all(m, SIGTERM, true);
	add_generation(m);
	log_info("reload", "status=ok config=%s", m->cfg->path);
}

int master_run(const struct config *cfg0)
{
	struct master m;
	sigset_t set;
	int64_t stop_deadline = 0;
	long ncpu;
	char pid_path[PATH_MAX];

	memset(&m, 0, sizeof(m));
	m.cfg = malloc(sizeof(*m.cfg));
	if (!m.cfg)
		fatal("out of memory");
	memcpy(m.cfg, cfg0, sizeof(*m.cfg));
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m.nsmtp = m.cfg->smtp.workers ? (int)m.cfg->smtp.workers : (int)(ncpu > 0 ? ncpu : 1);
	if (m.nsmtp > MAX_SMTP_WORKERS)
		m.nsmtp = MAX_SMTP_WORKERS;

	/* Every session is a descriptor: allow as many as the system lets us. */
	{
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				log_warn("startup", "reason=\"cannot raise the descriptor limit\"");
		}
	}

	/* Signals are handled synchronously with sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (m.cfg->smtp.tls_cert[0] || m.cfg->smtp.tls_key[0]) {
		char err[512];
		/* Read the key while we are still root; workers inherit it. */
		m.tls =
		    tls_server_ctx_new(m.cfg->smtp.tls_cert, m.cfg->smtp.tls_key, err, sizeof(err));
		if (!m.tls) {
			log_err("startup", "reason=\"TLS: %s\"", err);
			free(m.cfg);
			return 1;
		}
	}
	if (bind_all(&m) < 0 || prepare_and_drop(m.cfg) < 0 || prepare_store(m.cfg) < 0 ||
	    pid_file_write(m.cfg, pid_path, sizeof(pid_path)) < 0) {
		free(m.cfg);
		return 1;
	}
	{
		/* as the workers' user: the rules must compile for them */
		char err[1024], old[PATH_MAX];
		if (str_fmt(old, sizeof(old), "%s/snapshots", m.cfg->node.data_dir) == 0)
			(void)remove_tree(old); /* a previous run's snapshots */
		if (rules_snapshot(m.cfg, m.rules_gen, err, sizeof(err)) < 0) {
			log_err("startup", "reason=\"rules: %s\"", err);
			free(m.cfg);
			return 1;
		}
	}
	if (pipe2(m.nudge, O_NONBLOCK | O_CLOEXEC) < 0)
		fatal("pipe: %s", strerror(errno));
	m.metrics = metrics_new();
	m.limits = limits_new(LIMITS_TABLE_ENTRIES);
	m.metrics->started = time_now();
	add_generation(&m);
	log_info("ready", "smtp=%s smtp_workers=%d http=%s pid=%ld", m.cfg->smtp.listen[0], m.nsmtp,
		 m.cfg->http.listen, (long)getpid());

	for (;;) {
		struct timespec ts = {0, 200 * 1000 * 1000};
		siginfo_t info;
		int sig;
		int64_t now = time_now();

		if (!m.stopping) {
			for (size_t i = 0; i < MAX_CHILDREN; i++) {
				struct child *c = &m.children[i];
				if (c->kind != WORKER_NONE && !c->retiring && c->pid == 0 &&
				    c->next_start <= now)
					start_child(&m, c);
			}
		} else {
			if (live_children(&m) == 0)
				break;
			if (now >= stop_deadline) {
				log_warn("stop", "reason=\"drain deadline passed\" killing=%zu",
					 live_children(&m));
				signal_all(&m, SIGKILL, false);
				stop_deadline = now + 5;
			}
		}
		sig = sigtimedwait(&set, &info, &ts);
		if (sig == SIGCHLD) {
			reap(&m);
		} else if (sig == SIGTERM || sig == SIGINT) {
			if (!m.stopping) {
				log_info("stop", "signal=%d workers=%zu", sig, live_children(&m));
				m.stopping = true;
				stop_deadline = now + STOP_DEADLINE_S;
				close_listeners(&m);
				signal_all(&m, SIGTERM, false);
			}
		} else if (sig == SIGHUP && !m.stopping) {
			reload(&m);
		}
	}
	log_info("stopped", "pid=%ld", (long)getpid());
	(void)unlink(pid_path);
	for (size_t i = 0; i < MAX_CHILDREN; i++)
		if (m.children[i].kind != WORKER_NONE && m.children[i].cfg != m.cfg) {
			const struct config *old = m.children[i].cfg;
			m.children[i].kind = WORKER_NONE;
			config_release(&m, old);
		}
	free(m.cfg);
	metrics_free(m.metrics);
	limits_free(m.limits);
	SSL_CTX_free(m.tls);
	return 0;
}
