/* SPDX-License-Identifier: MIT */
#include "scan/filetype.h"

#include "policy/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/metrics.h"

/* libmagic's names for programs (file 5.44). */
static const char *const exec_types[] = {
    "application/x-dosexec",	  "application/x-msdownload",
    "application/x-executable",	  "application/x-pie-executable",
    "application/x-sharedlib",	  "application/x-mach-binary",
    "application/x-elf",	  "application/vnd.microsoft.portable-executable",
    "application/x-ms-installer", "application/x-msi",
};

/* Extensions Windows runs (or opens with a script host) on a double click. */
static const char *const exec_exts[] = {
    "exe", "scr", "com", "pif", "bat", "cmd", "cpl", "msi", "msp", "jar", "js",
    "jse", "vbs", "vbe", "wsf", "wsh", "hta", "lnk", "ps1", "reg", "scf", "dll",
};

/* Extensions a reader takes for a document, a picture or an archive. */
static const char *const decoy_exts[] = {
    "pdf", "doc",  "docx", "xls", "xlsx", "ppt", "pptx", "rtf",	 "odt", "txt",
    "jpg", "jpeg", "png",  "gif", "bmp",  "htm", "html", "zip",	 "rar", "7z",
    "mp3", "mp4",  "avi",  "csv", "xml",  "eml", "tif",	 "tiff",
};

static bool in_list(const char *s, size_t n, const char *const *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(list[i]) == n && !strncasecmp(list[i], s, n))
			return true;
	return false;
}

/* The extension ending at end (exclusive) of name: [*ext, end). */
static bool ext_before(const char *name, const char *end, const char **ext)
{
	const char *p = end;

	while (p > name && p[-1] != '.' && p[-1] != '/' && p[-1] != '\\')
		p--;
	if (p == name || p[-1] != '.')
		return false;
	*ext = p;
	return true;
}

static unsigned classify_name(struct mime_slice fn)
{
	const char *name = fn.ptr, *end, *ext, *prev;
	unsigned f = 0;

	if (!fn.len || !fn.ptr)
		return 0;
	end = fn.ptr + fn.len;
	/* U+202E RIGHT-TO-LEFT OVERRIDE turns "gnp.exe" into "exe.png" on screen */
	if (memmem(name, fn.len, "\xe2\x80\xae", 3))
		f |= FILETYPE_DOUBLE_EXT;
	while (end > name && (end[-1] == ' ' || end[-1] == '.'))
		end--;
	if (!ext_before(name, end, &ext) ||
	    !in_list(ext, (size_t)(end - ext), exec_exts, ARRAY_LEN(exec_exts)))
		return f;
	f |= FILETYPE_RISKY_EXT;
	/* the dot of ext, then blanks that push the real extension out of view */
	end = ext - 1;
	while (end > name && (end[-1] == ' ' || end[-1] == '_'))
		end--;
	if (ext_before(name, end, &prev) &&
	    in_list(prev, (size_t)(end - prev), decoy_exts, ARRAY_LEN(decoy_exts)))
		f |= FILETYPE_DOUBLE_EXT;
	return f;
}

unsigned filetype_classify(const struct mime_part *p)
{
	unsigned f = 0;

	if (p->kind != MIME_KIND_LEAF)
		return 0;
	if (p->detected.len &&
	    in_list(p->detected.ptr, p->detected.len, exec_types, ARRAY_LEN(exec_types)))
		f |= FILETYPE_EXECUTABLE;
	f |= classify_name(p->filename);
	if (f & (FILETYPE_EXECUTABLE | FILETYPE_DOUBLE_EXT))
		f &= ~(unsigned)FILETYPE_RISKY_EXT;
	if (p->flags & MIME_PF_MACROS)
		f |= FILETYPE_MACROS;
	if ((p->flags & MIME_PF_ENCRYPTED) && (p->flags & MIME_PF_ARCHIVE))
		f |= FILETYPE_ENCRYPTED;
	return f;
}

const char *filetype_symbol(unsigned flag)
{
	switch (flag) {
	case FILETYPE_EXECUTABLE:
		return "FILETYPE_EXECUTABLE";
	case FILETYPE_DOUBLE_EXT:
		return "FILETYPE_DOUBLE_EXT";
	case FILETYPE_RISKY_EXT:
		return "FILETYPE_RISKY_EXT";
	case FILETYPE_MACROS:
		return "FILETYPE_MACROS";
	case FILETYPE_ENCRYPTED:
		return "FILETYPE_ENCRYPTED";
	}
	return "FILETYPE_UNKNOWN";
}

/* ---- the pipeline check ------------------------------------------------------ */

struct filetype_check {
	const struct config *cfg;
	struct metrics *metrics;
};

static int filetype_thread_init(const struct config *cfg, struct metrics *m, void **state,
				char *err, size_t errlen)
{
	struct filetype_check *s = calloc(1, sizeof(*s));

	if (!s) {
		(void)str_copy(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cfg = cfg;
	s->metrics = m;
	*state = s;
	return 0;
}

static void filetype_thread_free(void *state)
{
	free(state);
}

static void filetype_run(void *state, struct scan_ctx *ctx)
{
	struct filetype_check *s = state;
	const struct mime_msg *m = scan_ctx_mime(ctx);
	const char *qid = scan_ctx_request(ctx)->qid;

	for (size_t i = 0; i < mime_msg_nparts(m); i++) {
		const struct mime_part *p = mime_msg_part(m, i);
		unsigned f = filetype_classify(p);
		char path[160], name[160], q1[200], q2[200];

		if (!f)
			continue;
		str_token_copy(path, sizeof(path), p->path.ptr, p->path.len);
		if (!path[0])
			(void)str_copy(path, sizeof(path), "message");
		str_token_copy(name, sizeof(name), p->filename.ptr, p->filename.len);
		for (unsigned bit = 1; bit <= FILETYPE_ENCRYPTED; bit <<= 1) {
			bool block;
			double score;
			const char *what;

			if (!(f & bit))
				continue;
			switch (bit) {
			case FILETYPE_MACROS:
				block = s->cfg->av.block_macros;
				score = FILETYPE_SCORE_MACROS;
				what = "Office document with macros";
				break;
			case FILETYPE_ENCRYPTED:
				block = s->cfg->av.block_encrypted;
				score = FILETYPE_SCORE_ENCRYPTED;
				what = "Encrypted archive";
				break;
			case FILETYPE_RISKY_EXT:
				block = false;
				score = FILETYPE_SCORE_RISKY_EXT;
				what = "Risky file name";
				break;
			default:
				block = s->cfg->av.block_executables;
				score = FILETYPE_SCORE_EXECUTABLE;
				what = "Executable attachment";
				break;
			}
			metrics_add(s->metrics, M_AV_FILETYPE_HITS, 1);
			scan_ctx_symbol(ctx, filetype_symbol(bit), score, "%s%s%s", path,
					name[0] ? " " : "", name);
			log_info("filetype", "qid=%s kind=%s path=%s name=%s action=%s",
				 qid ? qid : "-", filetype_symbol(bit),
				 log_quote(q1, sizeof(q1), path), log_quote(q2, sizeof(q2), name),
				 block ? "block" : "score");
			/* the recipients' policies decide (file_* keys, whose
			 * default "node" is av.block_*): recorded, not refused */
			scan_ctx_filetype(ctx, bit, "554 5.7.0 %s refused: %s (in %s)", what,
					  name[0] ? name : "-", path);
		}
	}
}

void filetype_verdict(unsigned found, const struct config *cfg, struct policy_verdict *v)
{
	v->found[POLICY_KIND_EXECUTABLE] = found & (FILETYPE_EXECUTABLE | FILETYPE_DOUBLE_EXT);
	v->found[POLICY_KIND_MACROS] = found & FILETYPE_MACROS;
	v->found[POLICY_KIND_ENCRYPTED] = found & FILETYPE_ENCRYPTED;
	v->node_block[POLICY_KIND_EXECUTABLE] = cfg->av.block_executables;
	v->node_block[POLICY_KIND_MACROS] = cfg->av.block_macros;
	v->node_block[POLICY_KIND_ENCRYPTED] = cfg->av.block_encrypted;
}

const struct scan_check scan_check_filetype = {
    .name = "filetype",
    .thread_init = filetype_thread_init,
    .thread_free = filetype_thread_free,
    .run = filetype_run,
};
