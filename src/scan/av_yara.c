/* SPDX-License-Identifier: MIT */
#include "scan/av_yara.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <yara.h>

#include "core/log.h"

#define HASH_LINE_MAX 1024
#define HASH_NAME_MAX 64
#define HASH_ENTRIES_MAX (4u * 1024 * 1024)
#define HASH_FILE_MAX (256u * 1024 * 1024)
#define DIR_FILES_MAX 4096
#define YARA_MAX_HITS 16
#define YARA_TIMEOUT_MAX_S 60

struct hash_entry {
	unsigned char hash[32]; /* MD5 uses the first 16 */
	uint8_t kind;		/* 16 or 32: bytes of hash */
	int64_t size;		/* -1: any */
	uint32_t name;		/* offset in names */
};

struct av_yara_db {
	YR_RULES *rules; /* NULL: no rules */
	size_t nrules;
	struct hash_entry *ents;
	size_t nents, cap;
	char *names;
	size_t names_len, names_cap;
	size_t nmd5, nsha256;
};

static pthread_once_t yara_once = PTHREAD_ONCE_INIT;
static int yara_init_rc;

static void yara_init(void)
{
	yara_init_rc = yr_initialize();
}

struct av_yara_db *av_yara_db_new_empty(void)
{
	return calloc(1, sizeof(struct av_yara_db));
}

void av_yara_db_free(struct av_yara_db *db)
{
	if (!db)
		return;
	if (db->rules)
		yr_rules_destroy(db->rules);
	free(db->ents);
	free(db->names);
	free(db);
}

size_t av_yara_db_nrules(const struct av_yara_db *db)
{
	return db ? db->nrules : 0;
}

size_t av_yara_db_nhashes(const struct av_yara_db *db)
{
	return db ? db->nents : 0;
}

/* ---- hash lists ----------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct hash_entry *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return memcmp(x->hash, y->hash, x->kind);
}

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= HASH_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int names_add(struct av_yara_db *db, const char *s, size_t n, uint32_t *off)
{
	if (db->names_len + n + 1 > db->names_cap) {
		size_t cap = db->names_cap ? db->names_cap * 2 : 4096;
		char *nn;
		while (cap < db->names_len + n + 1)
			cap *= 2;
		if (cap > UINT32_MAX || !(nn = realloc(db->names, cap)))
			return -ENOMEM;
		db->names = nn;
		db->names_cap = cap;
	}
	memcpy(db->names + db->names_len, s, n);
	db->names[db->names_len + n] = '\0';
	*off = (uint32_t)db->names_len;
	db->names_len += n + 1;
	return 0;
}

/* One line (no newline, terminated). Returns NULL or a static reason. */
static const char *hash_line(struct av_yara_db *db, char *l)
{
	struct hash_entry e;
	char *p = l, *name, *end;
	size_t hexlen = 0, namelen;

	memset(&e, 0, sizeof(e));
	e.size = -1;
	while (hexval(p[hexlen]) >= 0)
		hexlen++;
	if (hexlen != 32 && hexlen != 64)
		return "want an MD5 (32 hex digits) or a SHA-256 (64)";
	e.kind = (uint8_t)(hexlen / 2);
	for (size_t i = 0; i < e.kind; i++)
		e.hash[i] = (unsigned char)(hexval(p[2 * i]) << 4 | hexval(p[2 * i + 1]));
	p += hexlen;
	if (*p == ':') { /* HEX:SIZE:NAME */
		char *colon = strchr(++p, ':');
		if (!colon)
			return "want HASH:SIZE:NAME";
		*colon = '\0';
		if (strcmp(p, "*") && parse_int64(p, 0, INT64_MAX, &e.size) < 0)
			return "the size is a number of bytes or *";
		name = colon + 1;
		end = name + strlen(name);
	} else if (*p == ' ' || *p == '\t') {
		while (*p == ' ' || *p == '\t')
			p++;
		name = p;
		end = name + strlen(name);
		while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
	} else if (*p == '\0') {
		name = l;
		end = l + hexlen;
	} else {
		return "want HASH [NAME] or HASH:SIZE:NAME";
	}
	namelen = (size_t)(end - name);
	if (!name_ok(name, namelen))
		return "a name is 1 to 63 of A-Z a-z 0-9 . _ -";
	if (db->nents == HASH_ENTRIES_MAX)
		return "too many hashes";
	if (db->nents == db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 256;
		struct hash_entry *ne = realloc(db->ents, cap * sizeof(*ne));
		if (!ne)
			return "out of memory";
		db->ents = ne;
		db->cap = cap;
	}
	if (names_add(db, name, namelen, &e.name) < 0)
		return "out of memory";
	db->ents[db->nents++] = e;
	if (e.kind == 16)
		db->nmd5++;
	else
		db->nsha256++;
	return NULL;
}

int av_yara_hashes_parse(struct av_yara_db *db, const char *name, const char *text, size_t len,
			 char *err, size_t errlen)
{
	size_t pos = 0;
	int lineno = 0, rc = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char line[HASH_LINE_MAX], *l;
		const char *why;

		lineno++;
		if (n >= sizeof(line)) {
			(void)str_fmt(err, errlen, "%s:%d: line too long", name, lineno);
			rc = -EINVAL;
			break;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		if (memchr(line, '\0', n)) {
			(void)str_fmt(err, errlen, "%s:%d: NUL byte", name, lineno);
			rc = -EINVAL;
			break;
		}
		for (l = line; *l == ' ' || *l == '\t'; l++) {
		}
		if (!*l || *l == '#')
			continue;
		if ((why = hash_line(db, l))) {
			(void)str_fmt(err, errlen, "%s:%d: %s", name, lineno, why);
			rc = -EINVAL;
			break;
		}
	}
	if (db->nents)
		qsort(db->ents, db->nents, sizeof(*db->ents), entry_cmp);
	return rc;
}

static const char *lookup_kind(const struct av_yara_db *db, uint8_t kind, const unsigned char *md,
			       size_t len)
{
	struct hash_entry key;
	const struct hash_entry *e;
	size_t lo = 0, hi = db->nents;

	memset(&key, 0, sizeof(key));
	key.kind = kind;
	memcpy(key.hash, md, kind);
	while (lo < hi) { /* the first entry >= key */
		size_t mid = lo + (hi - lo) / 2;
		if (entry_cmp(&db->ents[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (e = db->ents + lo; e < db->ents + db->nents && !entry_cmp(e, &key); e++)
		if (e->size < 0 || (uint64_t)e->size == (uint64_t)len)
			return db->names + e->name;
	return NULL;
}

/* With the digests already computed (sha256 must be set; md5 when the
 * list has MD5 entries). */
static const char *lookup_digests(const struct av_yara_db *db, const unsigned char *sha256,
				  const unsigned char *md5, size_t len)
{
	const char *n = NULL;

	if (db->nsha256)
		n = lookup_kind(db, 32, sha256, len);
	if (!n && db->nmd5 && md5)
		n = lookup_kind(db, 16, md5, len);
	return n;
}

const char *av_yara_hash_lookup(const struct av_yara_db *db, const void *data, size_t len)
{
	unsigned char sha[32], md5[16];
	unsigned n;

	if (!db->nents || !EVP_Digest(data, len, sha, &n, EVP_sha256(), NULL) ||
	    !EVP_Digest(data, len, md5, &n, EVP_md5(), NULL))
		return NULL;
	return lookup_digests(db, sha, md5, len);
}

/* ---- folders ---------------------------------------------------------------- */

static int name_sort(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && !strcmp(s + n - k, suffix);
}

/* The regular files of dir (not dot files), sorted; with a suffix filter
 * when yara is set. Caller frees each and the array. */
static int list_dir(const char *dir, bool yara, char ***out, size_t *count, char *err,
		    size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	*count = 0;
	if (!d) {
		rc = -errno;
		(void)str_fmt(err, errlen, "%s: %s", dir, strerror(errno));
		return rc;
	}
	v = calloc(DIR_FILES_MAX, sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		if (de->d_name[0] == '.' ||
		    (yara && !ends_with(de->d_name, ".yar") && !ends_with(de->d_name, ".yara")))
			continue;
		if (str_fmt(path, sizeof(path), "%s/%s", dir, de->d_name) < 0 ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == DIR_FILES_MAX) {
			(void)str_fmt(err, errlen, "%s: more than %d files", dir, DIR_FILES_MAX);
			rc = -E2BIG;
			goto out;
		}
		if (!(v[n] = strdup(path))) {
			rc = -ENOMEM;
			goto out;
		}
		n++;
	}
	qsort(v, n, sizeof(*v), name_sort);
	*out = v;
	*count = n;
	v = NULL;
out:
	if (v) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
	}
	if (rc == -ENOMEM)
		(void)str_fmt(err, errlen, "out of memory");
	closedir(d);
	return rc;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct compile_err {
	char *err;
	size_t errlen;
	int errors;
};

static void compile_cb(int level, const char *file, int line, const YR_RULE *rule, const char *msg,
		       void *arg)
{
	struct compile_err *ce = arg;

	(void)rule;
	if (level != YARA_ERROR_LEVEL_ERROR) {
		log_debug("yara_warning", "file=%s line=%d msg=\"%s\"", file ? file : "-", line,
			  msg);
		return;
	}
	if (ce->errors++ == 0)
		(void)str_fmt(ce->err, ce->errlen, "%s:%d: %s", file ? file : "?", line, msg);
}

static int load_rules(struct av_yara_db *db, const char *dir, char *err, size_t errlen)
{
	YR_COMPILER *comp = NULL;
	struct compile_err ce = {.err = err, .errlen = errlen};
	char **files = NULL;
	size_t nfiles = 0;
	int rc;

	if ((rc = list_dir(dir, true, &files, &nfiles, err, errlen)) < 0)
		return rc;
	if (nfiles == 0)
		goto out; /* an empty folder: no rules (not an error) */
	if (yr_compiler_create(&comp) != ERROR_SUCCESS) {
		rc = -ENOMEM;
		(void)str_fmt(err, errlen, "out of memory");
		goto out;
	}
	yr_compiler_set_callback(comp, compile_cb, &ce);
	for (size_t i = 0; i < nfiles && ce.errors == 0; i++) {
		FILE *f = fopen(files[i], "r");
		if (!f) {
			rc = -errno;
			(void)str_fmt(err, errlen, "%s: %s", files[i], strerror(errno));
			goto out;
		}
		(void)yr_compiler_add_file(comp, f, NULL, files[i]);
		fclose(f);
	}
	if (ce.errors) {
		rc = -EINVAL;
		goto out;
	}
	if (yr_compiler_get_rules(comp, &db->rules) != ERROR_SUCCESS) {
		rc = -ENOMEM;
		(void)str_fmt(err, errlen, "cannot build the YARA rule set");
		goto out;
	}
	{
		YR_RULE *r;
		yr_rules_foreach(db->rules, r) db->nrules++;
	}
out:
	if (comp)
		yr_compiler_destroy(comp);
	free_list(files, nfiles);
	return rc;
}

static int read_file(const char *path, char **out, size_t *outlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf = NULL;
	int rc = 0;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > HASH_FILE_MAX) {
		rc = -EFBIG;
		goto out;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		rc = -ENOMEM;
		goto out;
	}
	if (st.st_size && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		rc = -EIO;
		goto out;
	}
	*out = buf;
	*outlen = (size_t)st.st_size;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int load_hashes(struct av_yara_db *db, const char *dir, char *err, size_t errlen)
{
	char **files = NULL;
	size_t nfiles = 0;
	int rc;

	if ((rc = list_dir(dir, false, &files, &nfiles, err, errlen)) < 0)
		return rc;
	for (size_t i = 0; i < nfiles; i++) {
		char *text = NULL;
		size_t len = 0;
		if ((rc = read_file(files[i], &text, &len)) < 0) {
			(void)str_fmt(err, errlen, "%s: %s", files[i], strerror(-rc));
			break;
		}
		rc = av_yara_hashes_parse(db, files[i], text, len, err, errlen);
		free(text);
		if (rc < 0)
			break;
	}
	free_list(files, nfiles);
	return rc;
}

int av_yara_db_load(const char *rules_dir, const char *hash_dir, struct av_yara_db **out, char *err,
		    size_t errlen)
{
	struct av_yara_db *db = NULL;
	int rc;

	*out = NULL;
	pthread_once(&yara_once, yara_init);
	if (yara_init_rc != ERROR_SUCCESS) {
		(void)str_fmt(err, errlen, "libyara failed to initialise (%d)", yara_init_rc);
		return -EIO;
	}
	if (!(db = av_yara_db_new_empty())) {
		(void)str_fmt(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (rules_dir && rules_dir[0] && (rc = load_rules(db, rules_dir, err, errlen)) < 0)
		goto out;
	if (hash_dir && hash_dir[0] && (rc = load_hashes(db, hash_dir, err, errlen)) < 0)
		goto out;
	*out = db;
	db = NULL;
	rc = 0;
out:
	av_yara_db_free(db);
	return rc;
}

int av_yara_rules_check(const struct config *cfg, char *err, size_t errlen)
{
	struct av_yara_db *db = NULL;
	int rc = av_yara_db_load(cfg->av.yara_rules, cfg->av.hash_lists, &db, err, errlen);

	av_yara_db_free(db);
	return rc;
}

/* ---- scanning ------------------------------------------------------------------ */

struct yara_hit {
	enum av_yara_kind kind;
	char name[AV_YARA_NAME_LEN];
	const struct mime_part *part;
};

struct match_ctx {
	struct yara_hit *hits;
	size_t *nhits;
	const struct mime_part *part;
	size_t found;
};

static int match_cb(YR_SCAN_CONTEXT *sc, int msg, void *data, void *arg)
{
	struct match_ctx *mc = arg;
	const YR_RULE *rule = data;

	(void)sc;
	if (msg != CALLBACK_MSG_RULE_MATCHING)
		return CALLBACK_CONTINUE;
	mc->found++;
	if (*mc->nhits < YARA_MAX_HITS) {
		struct yara_hit *h = &mc->hits[(*mc->nhits)++];
		h->kind = AV_YARA_RULE;
		h->part = mc->part;
		(void)str_copy(h->name, sizeof(h->name), rule->identifier);
	}
	return CALLBACK_CONTINUE;
}

static unsigned nesting(const struct mime_part *p)
{
	return p->depth + 2 * p->archive_depth;
}

int av_yara_scan_msg(const struct av_yara_db *db, const struct mime_msg *m, int64_t deadline_us,
		     struct metrics *metrics, av_yara_cb cb, void *arg, char *why, size_t whylen)
{
	size_t nparts = mime_msg_nparts(m), nseen = 0, nhits = 0;
	unsigned char(*seen)[32] = malloc((nparts + 1) * 32);
	struct yara_hit hits[YARA_MAX_HITS];
	int rc = 0;

	if (!seen) {
		(void)str_fmt(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < nparts; i++) {
		const struct mime_part *p = mime_msg_part(m, i);
		unsigned char sha[32], md5[16];
		unsigned n;
		bool dup = false;
		const char *hname;

		if (p->kind != MIME_KIND_LEAF || !p->decoded.len)
			continue;
		if (!EVP_Digest(p->decoded.ptr, p->decoded.len, sha, &n, EVP_sha256(), NULL) ||
		    (db->nmd5 &&
		     !EVP_Digest(p->decoded.ptr, p->decoded.len, md5, &n, EVP_md5(), NULL))) {
			rc = -ENOMEM;
			(void)str_fmt(why, whylen, "hashing failed");
			break;
		}
		for (size_t k = 0; k < nseen && !dup; k++)
			dup = !memcmp(seen[k], sha, 32);
		if (dup)
			continue;
		memcpy(seen[nseen++], sha, 32);
		metrics_add(metrics, M_AV_YARA_SCANS, 1);
		if ((hname = lookup_digests(db, sha, db->nmd5 ? md5 : NULL, p->decoded.len))) {
			metrics_add(metrics, M_AV_HASH_FOUND, 1);
			if (nhits < YARA_MAX_HITS) {
				hits[nhits].kind = AV_YARA_HASH;
				hits[nhits].part = p;
				(void)str_copy(hits[nhits].name, sizeof(hits[nhits].name), hname);
				nhits++;
			}
		}
		if (db->rules) {
			struct match_ctx mc = {.hits = hits, .nhits = &nhits, .part = p};
			int64_t left_s = YARA_TIMEOUT_MAX_S;
			int yr;
			if (deadline_us > 0) {
				int64_t left_us = deadline_us - time_mono_us();
				if (left_us <= 0) {
					rc = -ETIMEDOUT;
					metrics_add(metrics, M_AV_YARA_TIMEOUTS, 1);
					(void)str_fmt(why, whylen, "no time left for YARA");
					break;
				}
				left_s = (left_us + 999999) / 1000000;
				if (left_s > YARA_TIMEOUT_MAX_S)
					left_s = YARA_TIMEOUT_MAX_S;
			}
			yr = yr_rules_scan_mem(db->rules, (const uint8_t *)p->decoded.ptr,
					       p->decoded.len,
					       SCAN_FLAGS_FAST_MODE | SCAN_FLAGS_NO_TRYCATCH |
						   SCAN_FLAGS_REPORT_RULES_MATCHING,
					       match_cb, &mc, (int)left_s);
			if (yr == ERROR_SCAN_TIMEOUT) {
				rc = -ETIMEDOUT;
				metrics_add(metrics, M_AV_YARA_TIMEOUTS, 1);
				(void)str_fmt(why, whylen, "YARA ran out of time");
				break;
			}
			if (yr != ERROR_SUCCESS) {
				rc = -EIO;
				metrics_add(metrics, M_AV_YARA_ERRORS, 1);
				(void)str_fmt(why, whylen, "YARA scan failed (error %d)", yr);
				break;
			}
			metrics_add(metrics, M_AV_YARA_FOUND, (int64_t)mc.found);
		}
	}
	free(seen);
	for (size_t a = 1; a < nhits; a++)
		for (size_t b = a; b > 0 && nesting(hits[b].part) > nesting(hits[b - 1].part);
		     b--) {
			struct yara_hit t = hits[b];
			hits[b] = hits[b - 1];
			hits[b - 1] = t;
		}
	for (size_t k = 0; k < nhits; k++)
		cb(arg, hits[k].kind, hits[k].name, hits[k].part);
	return rc < 0 ? rc : (int)nhits;
}

/* ---- the pipeline check ---------------------------------------------------------- */

struct yara_check {
	const struct config *cfg;
	struct metrics *metrics;
	struct av_yara_db *db;
};

struct yara_run {
	struct scan_ctx *ctx;
	const char *qid;
};

static void on_hit(void *arg, enum av_yara_kind kind, const char *name,
		   const struct mime_part *part)
{
	struct yara_run *r = arg;
	char sig[AV_YARA_NAME_LEN], path[160], sym[SCAN_NAME_LEN], q[200];
	const char *engine = kind == AV_YARA_RULE ? "AV_YARA" : "AV_HASH";

	if (part->path.len)
		str_token_copy(path, sizeof(path), part->path.ptr, part->path.len);
	else
		(void)str_copy(path, sizeof(path), "message");
	str_token_copy(sig, sizeof(sig), name, strlen(name));
	(void)str_fmt(sym, sizeof(sym), "%s:%s", engine, sig);
	scan_ctx_symbol(r->ctx, sym, 100, "%s", path);
	scan_ctx_reject(r->ctx, "554 5.7.0 Virus found: %s (in %s)", sig, path);
	log_info("av_found", "qid=%s engine=%s name=%s path=%s", r->qid,
		 kind == AV_YARA_RULE ? "yara" : "hash", sig, log_quote(q, sizeof(q), path));
}

static int yara_thread_init(const struct config *cfg, struct metrics *m, void **state, char *err,
			    size_t errlen)
{
	struct yara_check *s;
	int rc;

	*state = NULL;
	if (!cfg->av.yara_rules[0] && !cfg->av.hash_lists[0])
		return 0;
	if (!(s = calloc(1, sizeof(*s)))) {
		(void)str_copy(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cfg = cfg;
	s->metrics = m;
	if ((rc = av_yara_db_load(cfg->av.yara_rules, cfg->av.hash_lists, &s->db, err, errlen)) <
	    0) {
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static void yara_thread_free(void *state)
{
	struct yara_check *s = state;

	if (!s)
		return;
	av_yara_db_free(s->db);
	free(s);
}

static void yara_run(void *state, struct scan_ctx *ctx)
{
	struct yara_check *s = state;
	const struct scan_request *req = scan_ctx_request(ctx);
	struct yara_run r = {.ctx = ctx, .qid = req->qid ? req->qid : "-"};
	char why[256], q[300];
	bool was_refused;
	int rc;

	if (!s)
		return;
	was_refused = scan_ctx_refused(ctx);
	rc = av_yara_scan_msg(s->db, scan_ctx_mime(ctx),
			      time_mono_us() + scan_ctx_time_left(ctx) * 1000, s->metrics, on_hit,
			      &r, why, sizeof(why));
	if (rc > 0 && !was_refused)
		metrics_add(s->metrics, M_AV_REJECTS, 1);
	if (rc >= 0)
		return;
	if (!strcmp(s->cfg->av.on_failure, "pass")) {
		scan_ctx_symbol(ctx, "AV_YARA_FAIL", 0, "%s", why);
		metrics_add(s->metrics, M_AV_FAILURES_PASSED, 1);
		log_warn("av_fail", "qid=%s engine=yara action=pass reason=%s", r.qid,
			 log_quote(q, sizeof(q), why));
		return;
	}
	scan_ctx_tempfail(ctx, "451 4.7.0 Virus scanner not available, try again later");
	if (!was_refused)
		metrics_add(s->metrics, M_AV_TEMPFAILS, 1);
	log_warn("av_fail", "qid=%s engine=yara action=tempfail reason=%s", r.qid,
		 log_quote(q, sizeof(q), why));
}

const struct scan_check scan_check_av_yara = {
    .name = "av_yara",
    .thread_init = yara_thread_init,
    .thread_free = yara_thread_free,
    .run = yara_run,
};
