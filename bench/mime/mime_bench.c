/* SPDX-License-Identifier: MIT */
/*
 * mime_bench: parse-and-decode throughput of mxguard's MIME engine next to
 * GMime 3, in one process, over a corpus of messages.
 *
 * usage: mime_bench [-r REPEAT] [-c CHUNK] DIR...
 *
 * Every regular file under the DIRs (one level) is read into memory
 * first. Then, REPEAT times, the messages are taken in chunks of CHUNK and
 * each chunk is run through every engine in turn, the order rotating from
 * chunk to chunk, so that all engines see the same noise of a busy
 * machine. Engines:
 *
 *   mxguard/struct  mime_parse, options 0: structure, header fields
 *                   (RFC 2047/2231 decoded), transfer decoding of every leaf
 *   mxguard/text    + MIME_OPT_TEXT: text parts converted to UTF-8
 *   mxguard/all     MIME_OPT_ALL: + HTML to text, URLs, libmagic, archives,
 *                   TNEF, macros (more work than GMime does: not a pair)
 *   gmime/decode    g_mime_parser_construct_message, walk every part
 *                   (message/rfc822 included), read every header value
 *                   (decoded), write every leaf's content
 *                   (g_mime_part_get_content + g_mime_data_wrapper_
 *                   write_to_stream, transfer decoding) to a memory stream
 *   gmime/text      + text leaves through a charset filter to UTF-8
 *
 * Pairs compared: mxguard/struct with gmime/decode, mxguard/text with
 * gmime/text. Times are thread CPU time (what the work cost, whatever the
 * other processes did) and wall time; per engine the best and the median
 * pass are reported. Output: Markdown on stdout.
 */
#include <dirent.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mime/mime.h"

#define BENCH_MAX_MESSAGES 100000
#define BENCH_MAX_PASSES 100

enum engine_id { E_MXG_STRUCT, E_MXG_TEXT, E_MXG_ALL, E_GM_DECODE, E_GM_TEXT, E_COUNT };

static const char *const engine_names[E_COUNT] = {
    "mxguard/struct", "mxguard/text", "mxguard/all", "gmime/decode", "gmime/text",
};

struct corpus {
	GByteArray **msg;
	size_t n;
	uint64_t bytes;
};

struct bench {
	struct corpus c;
	struct mime_engine *mxg[3];
	double cpu[E_COUNT][BENCH_MAX_PASSES], wall[E_COUNT][BENCH_MAX_PASSES];
	uint64_t leaves[E_COUNT], decoded[E_COUNT]; /* of the last pass: work done */
	size_t failures[E_COUNT];
};

static double now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load_dir(struct corpus *c, const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	char path[4096];
	int rc = 0;

	if (!dh) {
		fprintf(stderr, "mime_bench: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	while ((de = readdir(dh))) {
		struct stat st;
		FILE *f;
		GByteArray *a;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (c->n == BENCH_MAX_MESSAGES) {
			rc = -E2BIG;
			break;
		}
		if (!(f = fopen(path, "rb"))) {
			rc = -errno;
			break;
		}
		a = g_byte_array_sized_new((guint)st.st_size);
		g_byte_array_set_size(a, (guint)st.st_size);
		if (fread(a->data, 1, a->len, f) != a->len) {
			fclose(f);
			g_byte_array_unref(a);
			rc = -EIO;
			break;
		}
		fclose(f);
		c->msg[c->n++] = a;
		c->bytes += a->len;
	}
	closedir(dh);
	return rc;
}

/* ---- mxguard ----------------------------------------------------------- */

static void run_mxg(struct bench *b, enum engine_id id, size_t from, size_t to)
{
	struct mime_engine *e = b->mxg[id - E_MXG_STRUCT];

	for (size_t i = from; i < to; i++) {
		struct mime_msg *m;
		if (mime_parse(e, (const char *)b->c.msg[i]->data, b->c.msg[i]->len, &m) < 0) {
			b->failures[id]++;
			continue;
		}
		for (size_t k = 0; k < mime_msg_nparts(m); k++) {
			const struct mime_part *p = mime_msg_part(m, k);
			if (p->kind == MIME_KIND_LEAF) {
				b->leaves[id]++;
				b->decoded[id] += p->decoded.len;
			}
		}
		mime_msg_free(m);
	}
}

/* ---- GMime ------------------------------------------------------------- */

struct gm_ctx {
	struct bench *b;
	enum engine_id id;
};

static void gm_headers(GMimeObject *o)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(o);
	int n = hl ? g_mime_header_list_get_count(hl) : 0;

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		(void)g_mime_header_get_value(h); /* unfolded and RFC 2047 decoded */
	}
}

static void gm_leaf(struct gm_ctx *x, GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *mem, *out;
	GMimeContentType *ct;
	const char *charset = NULL;

	x->b->leaves[x->id]++;
	if (!w)
		return;
	mem = g_mime_stream_mem_new();
	out = mem;
	ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	if (x->id == E_GM_TEXT && ct && g_mime_content_type_is_type(ct, "text", "*") &&
	    (charset = g_mime_content_type_get_parameter(ct, "charset")) &&
	    g_ascii_strcasecmp(charset, "utf-8") != 0) {
		GMimeFilter *f = g_mime_filter_charset_new(charset, "UTF-8");
		if (f) {
			out = g_mime_stream_filter_new(mem);
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(out), f);
			g_object_unref(f);
		}
	}
	if (g_mime_data_wrapper_write_to_stream(w, out) < 0)
		x->b->failures[x->id]++;
	g_mime_stream_flush(out);
	x->b->decoded[x->id] += (uint64_t)g_mime_stream_length(mem);
	if (out != mem)
		g_object_unref(out);
	g_object_unref(mem);
}

/* Every part in the tree, message/rfc822 included, without recursion on
 * the C stack (GMime itself bounds nothing: the corpus is tame). */
static void gm_walk(struct gm_ctx *x, GMimeObject *root)
{
	GPtrArray *stack = g_ptr_array_new();

	g_ptr_array_add(stack, root);
	while (stack->len) {
		GMimeObject *o = g_ptr_array_remove_index(stack, stack->len - 1);
		gm_headers(o);
		if (GMIME_IS_MULTIPART(o)) {
			int n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
			for (int i = n - 1; i >= 0; i--)
				g_ptr_array_add(stack,
						g_mime_multipart_get_part(GMIME_MULTIPART(o), i));
		} else if (GMIME_IS_MESSAGE_PART(o)) {
			GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
			if (m && g_mime_message_get_mime_part(m)) {
				gm_headers(GMIME_OBJECT(m));
				g_ptr_array_add(stack, g_mime_message_get_mime_part(m));
			}
		} else if (GMIME_IS_PART(o)) {
			gm_leaf(x, GMIME_PART(o));
		}
	}
	g_ptr_array_free(stack, TRUE);
}

static void run_gmime(struct bench *b, enum engine_id id, size_t from, size_t to)
{
	struct gm_ctx x = {b, id};

	for (size_t i = from; i < to; i++) {
		GMimeStream *s = g_mime_stream_mem_new();
		GMimeParser *p;
		GMimeMessage *m;

		/* the stream reads the loaded bytes in place (no copy, not owned) */
		g_mime_stream_mem_set_byte_array(GMIME_STREAM_MEM(s), b->c.msg[i]);
		p = g_mime_parser_new_with_stream(s);
		g_mime_parser_set_format(p, GMIME_FORMAT_MESSAGE);
		m = g_mime_parser_construct_message(p, NULL);
		if (!m) {
			b->failures[id]++;
		} else {
			gm_headers(GMIME_OBJECT(m));
			if (g_mime_message_get_mime_part(m))
				gm_walk(&x, g_mime_message_get_mime_part(m));
			g_object_unref(m);
		}
		g_object_unref(p);
		g_object_unref(s);
	}
}

/* ---- the run ----------------------------------------------------------- */

static void run_chunk(struct bench *b, enum engine_id id, size_t from, size_t to)
{
	if (id >= E_GM_DECODE)
		run_gmime(b, id, from, to);
	else
		run_mxg(b, id, from, to);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[BENCH_MAX_PASSES];

	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double best(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

static void report(const struct bench *b, int passes, size_t chunk)
{
	double mb = (double)b->c.bytes / 1e6;
	double med[E_COUNT];

	printf("Corpus: %zu messages, %.1f MB; %d passes, chunks of %zu messages, "
	       "engines interleaved per chunk.\n\n",
	       b->c.n, mb, passes, chunk);
	printf("| engine | CPU s best | CPU s median | MB/s (median CPU) | msg/s (median CPU) "
	       "| wall s median | leaves | decoded MB | failures |\n");
	printf("|---|---|---|---|---|---|---|---|---|\n");
	for (int e = 0; e < E_COUNT; e++) {
		med[e] = median(b->cpu[e], passes);
		printf("| %s | %.3f | %.3f | %.1f | %.0f | %.3f | %llu | %.1f | %zu |\n",
		       engine_names[e], best(b->cpu[e], passes), med[e], mb / med[e],
		       (double)b->c.n / med[e], median(b->wall[e], passes),
		       (unsigned long long)b->leaves[e], (double)b->decoded[e] / 1e6,
		       b->failures[e]);
	}
	printf("\n| pair | median CPU ratio (GMime time / mxguard time) | best-pass ratio |\n");
	printf("|---|---|---|\n");
	printf("| structure + transfer decoding: mxguard/struct vs gmime/decode | %.2fx | "
	       "%.2fx |\n",
	       med[E_GM_DECODE] / med[E_MXG_STRUCT],
	       best(b->cpu[E_GM_DECODE], passes) / best(b->cpu[E_MXG_STRUCT], passes));
	printf("| + charsets to UTF-8: mxguard/text vs gmime/text | %.2fx | %.2fx |\n",
	       med[E_GM_TEXT] / med[E_MXG_TEXT],
	       best(b->cpu[E_GM_TEXT], passes) / best(b->cpu[E_MXG_TEXT], passes));
	printf("| everything (not like for like): mxguard/all vs gmime/text | %.2fx | %.2fx |\n",
	       med[E_GM_TEXT] / med[E_MXG_ALL],
	       best(b->cpu[E_GM_TEXT], passes) / best(b->cpu[E_MXG_ALL], passes));
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	int passes = 5, opt, rc = 1;
	size_t chunk = 50;
	static const unsigned opts[3] = {0, MIME_OPT_TEXT, MIME_OPT_ALL};

	if (!b || !(b->c.msg = calloc(BENCH_MAX_MESSAGES, sizeof(*b->c.msg))))
		return 1;
	while ((opt = getopt(argc, argv, "r:c:")) != -1) {
		if (opt == 'r')
			passes = (int)strtol(optarg, NULL, 10);
		else if (opt == 'c')
			chunk = (size_t)strtoul(optarg, NULL, 10);
		else
			goto usage;
	}
	if (optind >= argc || passes < 1 || passes > BENCH_MAX_PASSES || chunk < 1)
		goto usage;
	for (int i = optind; i < argc; i++)
		if (load_dir(&b->c, argv[i]) < 0)
			goto out;
	if (!b->c.n) {
		fprintf(stderr, "mime_bench: no messages\n");
		goto out;
	}
	g_mime_init();
	for (int i = 0; i < 3; i++)
		if (!(b->mxg[i] = mime_engine_new(NULL, opts[i]))) {
			fprintf(stderr, "mime_bench: mime_engine_new failed\n");
			goto out;
		}
	/* one warm-up pass of each engine (page faults, iconv and libmagic
	 * loading, GLib type registration) */
	for (int e = 0; e < E_COUNT; e++)
		run_chunk(b, (enum engine_id)e, 0, b->c.n);
	for (int pass = 0; pass < passes; pass++) {
		size_t k = 0;
		memset(b->leaves, 0, sizeof(b->leaves));
		memset(b->decoded, 0, sizeof(b->decoded));
		for (size_t from = 0; from < b->c.n; from += chunk, k++) {
			size_t to = from + chunk < b->c.n ? from + chunk : b->c.n;
			for (int j = 0; j < E_COUNT; j++) {
				enum engine_id e =
				    (enum engine_id)((j + k + (size_t)pass) % E_COUNT);
				double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
				run_chunk(b, e, from, to);
				b->cpu[e][pass] += now(CLOCK_THREAD_CPUTIME_ID) - c0;
				b->wall[e][pass] += now(CLOCK_MONOTONIC) - w0;
			}
		}
		fprintf(stderr, "mime_bench: pass %d/%d done\n", pass + 1, passes);
	}
	report(b, passes, chunk);
	rc = 0;
	goto out;
usage:
	fprintf(stderr, "usage: mime_bench [-r REPEAT] [-c CHUNK] DIR...\n");
	rc = 2;
out:
	for (int i = 0; i < 3; i++)
		mime_engine_free(b->mxg[i]);
	for (size_t i = 0; i < b->c.n; i++)
		g_byte_array_unref(b->c.msg[i]);
	free(b->c.msg);
	free(b);
	return rc;
}
