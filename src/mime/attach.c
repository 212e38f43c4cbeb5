/* SPDX-License-Identifier: MIT */
/*
 * attach: what an attachment really is, whatever its name or declared type
 * say (libmagic), and what it carries: archives opened with libarchive
 * (zip, 7z, rar, tar, gzip, bzip2, xz, and their combinations), each
 * member becoming a child part that goes through the same work list (so
 * archives in archives are opened without recursion, up to
 * max_archive_depth); encrypted entries detected; Office documents with
 * VBA macros flagged (OLE2 files with a _VBA_PROJECT stream, OOXML
 * packages with a vbaProject.bin member); TNEF (winmail.dat) read with
 * tnef.c, each attachment becoming a child part in the same way (TNEF
 * counts as one archive level, so TNEF inside TNEF is bounded too).
 *
 * Bombs: every member's bytes come out of the message's decoded budget,
 * and an archive whose members expand past max_archive_ratio times its
 * own size (once past ATTACH_RATIO_FLOOR) stops being read there with the
 * finding ARCHIVE_BOMB. Decompression is bounded by what we ask for, never
 * by what the archive declares.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <magic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"
#include "mime/tnef.h"

#define ATTACH_MAGIC_BYTES (256 * 1024)
#define ATTACH_RATIO_FLOOR (1024 * 1024)
#define ATTACH_NAME_MAX 512
#define ATTACH_READ_CHUNK (64 * 1024)

struct mime_attach {
	magic_t magic;
};

struct mime_attach *mime_attach_new(void)
{
	struct mime_attach *att = calloc(1, sizeof(*att));

	if (!att)
		return NULL;
	att->magic = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS |
				MAGIC_NO_CHECK_ENCODING);
	if (!att->magic || magic_load(att->magic, NULL) != 0) {
		mime_attach_free(att);
		return NULL;
	}
	return att;
}

void mime_attach_free(struct mime_attach *att)
{
	if (!att)
		return;
	if (att->magic)
		magic_close(att->magic);
	free(att);
}

static bool type_is(struct mime_slice t, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (t.len == strlen(list[i]) && !strncasecmp(t.ptr, list[i], t.len))
			return true;
	return false;
}

static bool name_ends(struct mime_slice n, const char *suffix)
{
	size_t l = strlen(suffix);
	return n.len >= l && !strncasecmp(n.ptr + n.len - l, suffix, l);
}

static const char *const archive_types[] = {
    "application/zip",		"application/x-7z-compressed",	"application/x-rar",
    "application/vnd.rar",	"application/x-rar-compressed", "application/x-tar",
    "application/gzip",		"application/x-gzip",		"application/x-bzip2",
    "application/x-xz",		"application/x-lzma",		"application/x-compress",
    "application/java-archive", "application/x-cpio",		"application/vnd.ms-cab-compressed",
};
static const char *const tnef_types[] = {"application/ms-tnef", "application/vnd.ms-tnef"};
static const char *const raw_types[] = {
    "application/gzip", "application/x-gzip", "application/x-bzip2",
    "application/x-xz", "application/x-lzma", "application/x-compress",
};

/* OLE2 compound file with a VBA project stream (UTF-16 names). */
static bool ole_has_macros(const char *d, size_t n)
{
	static const char vba[] = "_\0V\0B\0A\0_\0P\0R\0O\0J\0E\0C\0T\0";
	static const char mac[] = "M\0a\0c\0r\0o\0s\0";

	return memmem(d, n, vba, sizeof(vba) - 1) || memmem(d, n, mac, sizeof(mac) - 1);
}

static void open_archive(struct mime_msg *m, struct mime_part *p, bool raw)
{
	const struct mime_limits *lim = &m->e->lim;
	struct archive *ar = archive_read_new();
	struct archive_entry *ent;
	uint64_t expanded = 0, limit;
	uint32_t members = 0;
	int r;

	if (!ar)
		return;
	archive_read_support_filter_all(ar);
	archive_read_support_format_all(ar);
	if (raw)
		archive_read_support_format_raw(ar);
	if (archive_read_open_memory(ar, p->decoded.ptr, p->decoded.len) != ARCHIVE_OK) {
		mime_finding_add(m, "ARCHIVE_CORRUPT", p, archive_error_string(ar));
		goto out;
	}
	p->flags |= MIME_PF_ARCHIVE;
	limit = (uint64_t)p->decoded.len * lim->max_archive_ratio;
	if (limit < ATTACH_RATIO_FLOOR)
		limit = ATTACH_RATIO_FLOOR;
	while ((r = archive_read_next_header(ar, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname_utf8(ent);
		struct mime_part *c;
		char *buf;
		size_t got, want, have = 0, charged = 0;
		ssize_t k;

		if (!name)
			name = archive_entry_pathname(ent);
		if (!name || !*name)
			name = "data";
		if (archive_entry_filetype(ent) != AE_IFREG)
			continue;
		if (++members > lim->max_archive_members) {
			mime_finding_add(m, "ARCHIVE_TOO_MANY_MEMBERS", p, NULL);
			break;
		}
		if (archive_entry_is_encrypted(ent)) {
			p->flags |= MIME_PF_ENCRYPTED;
			mime_finding_add(m, "ARCHIVE_ENCRYPTED", p, NULL);
		}
		if (!(c = mime_part_new(m, p, MIME_FROM_ARCHIVE, name,
					strnlen(name, ATTACH_NAME_MAX))))
			break;
		c->archive_depth = p->archive_depth + 1;
		c->filename.ptr = arena_memdup(m->a, name, strnlen(name, ATTACH_NAME_MAX));
		c->filename.len = c->filename.ptr ? strlen(c->filename.ptr) : 0;
		c->type.ptr = "application/octet-stream";
		c->type.len = 24;
		c->cte = MIME_CTE_BINARY;
		c->flags |= MIME_PF_ATTACHMENT;
		if (name_ends(c->filename, "vbaProject.bin")) {
			p->flags |= MIME_PF_MACROS;
			mime_finding_add(m, "OFFICE_MACROS", p, NULL);
		}
		/* read no more than the budget and the ratio allow */
		want = limit - expanded > ATTACH_READ_CHUNK * 16 ? ATTACH_READ_CHUNK * 16
								 : (size_t)(limit - expanded) + 1;
		if (archive_entry_size_is_set(ent) && archive_entry_size(ent) >= 0 &&
		    (uint64_t)archive_entry_size(ent) < want)
			want = (size_t)archive_entry_size(ent) + 1;
		for (;;) {
			got = mime_budget_take(m, c, want);
			if (!got || !(buf = arena_alloc(m->a, got))) {
				mime_budget_return(m, got);
				c->flags |= MIME_PF_TRUNCATED;
				break;
			}
			charged += got;
			/* grow by copying: the arena frees everything at the end */
			if (have)
				memcpy(buf, c->decoded.ptr, have);
			k = 0;
			while (have < got &&
			       (k = archive_read_data(ar, buf + have, got - have)) > 0) {
				have += (size_t)k;
				expanded += (uint64_t)k;
				if (expanded > limit)
					break;
			}
			c->decoded.ptr = buf;
			c->decoded.len = have;
			if (k < 0) {
				if (archive_entry_is_encrypted(ent))
					c->flags |= MIME_PF_ENCRYPTED;
				else
					mime_finding_add(m, "ARCHIVE_CORRUPT", c,
							 archive_error_string(ar));
				break;
			}
			if (expanded > limit) {
				mime_finding_add(m, "ARCHIVE_BOMB", p, NULL);
				c->flags |= MIME_PF_TRUNCATED;
				goto out;
			}
			if (have < got || k == 0)
				break; /* the member is complete */
			want = got * 2;
		}
		mime_budget_return(m, charged > have ? charged - have : 0);
		if (c->archive_depth > lim->max_archive_depth)
			break;
	}
	if (r == ARCHIVE_FATAL) {
		if (archive_read_has_encrypted_entries(ar) > 0) {
			p->flags |= MIME_PF_ENCRYPTED;
			mime_finding_add(m, "ARCHIVE_ENCRYPTED", p, NULL);
		} else {
			mime_finding_add(m, "ARCHIVE_CORRUPT", p, archive_error_string(ar));
		}
	}
out:
	archive_read_free(ar);
}

/* A TNEF name (8 bit or UTF-16LE) as UTF-8 in the arena; "" if none. */
static struct mime_slice tnef_name(struct mime_msg *m, const struct tnef_attachment *ta,
				   unsigned *flags)
{
	struct mime_slice s = {"", 0};
	bool wide = ta->name_enc == TNEF_TEXT_UTF16LE;
	size_t n = ta->name.len < ATTACH_NAME_MAX ? ta->name.len : ATTACH_NAME_MAX;
	const char *u;
	size_t ulen;

	if (wide)
		n &= ~(size_t)1;
	if (!n || mime_cs_to_utf8(m->e->cs, wide ? "UTF-16LE" : NULL, wide ? 8 : 0, ta->name.ptr, n,
				  m->a, &u, &ulen, flags) < 0)
		return s;
	s.ptr = u;
	s.len = strnlen(u, ulen);
	return s;
}

static void tnef_child(struct mime_msg *m, struct mime_part *p, const struct tnef_attachment *ta,
		       struct mime_slice data, struct mime_slice name, unsigned f)
{
	struct mime_part *c = mime_part_new(
	    m, p, MIME_FROM_TNEF, name.len ? name.ptr : "attachment", name.len ? name.len : 10);

	if (!c)
		return;
	if (f & MIME_CS_REPLACED)
		c->flags |= MIME_PF_CHARSET_REPLACED;
	c->filename = name;
	c->archive_depth = p->archive_depth + 1;
	c->type.ptr = "application/octet-stream";
	c->type.len = 24;
	if (ta->mime_type.len && ta->mime_type.len < 128 &&
	    memchr(ta->mime_type.ptr, '/', ta->mime_type.len)) {
		char *ty = arena_memdup(m->a, ta->mime_type.ptr, ta->mime_type.len);
		if (ty) {
			for (char *q = ty; *q; q++)
				*q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
			c->type.ptr = ty;
			c->type.len = strlen(ty);
		}
	}
	c->cte = MIME_CTE_BINARY;
	c->flags |= MIME_PF_ATTACHMENT;
	c->raw = c->body = c->decoded = data;
}

/* The attachments of a TNEF stream become child parts: slices of p's
 * decoded bytes (nothing is copied, so nothing is charged to the budget),
 * decoded again by the work list like archive members. */
static void open_tnef(struct mime_msg *m, struct mime_part *p)
{
	const struct mime_limits *lim = &m->e->lim;
	struct tnef *t = NULL;
	struct tnef_attachment ta;
	uint32_t members = 0;

	if (tnef_new(p->decoded.ptr, p->decoded.len, &t) < 0)
		return;
	p->flags |= MIME_PF_ARCHIVE;
	while (tnef_next(t, &ta) == 1) {
		struct mime_slice name;
		unsigned f = 0;

		if (++members > lim->max_archive_members) {
			mime_finding_add(m, "TNEF_TOO_MANY_ATTACHMENTS", p, NULL);
			break;
		}
		if (m->parts_full || m->mem_full)
			break;
		name = tnef_name(m, &ta, &f);
		if (ta.data.len || !ta.object.len)
			tnef_child(m, p, &ta, ta.data, name, f);
		if (ta.object.len)
			tnef_child(m, p, &ta, ta.object, name, f);
	}
	if (tnef_error(t))
		mime_finding_add(m, "TNEF_CORRUPT", p, tnef_error(t));
	if (tnef_flags(t) & TNEF_F_BAD_CHECKSUM)
		mime_finding_add(m, "TNEF_BAD_CHECKSUM", p, NULL);
	tnef_free(t);
}

int mime_attach_inspect(struct mime_msg *m, struct mime_part *p)
{
	struct mime_attach *att = m->e->att;
	const char *t;
	size_t n = p->decoded.len < ATTACH_MAGIC_BYTES ? p->decoded.len : ATTACH_MAGIC_BYTES;

	if (!att || !p->decoded.len)
		return 0;
	t = magic_buffer(att->magic, p->decoded.ptr, n);
	if (t) {
		p->detected.ptr = arena_memdup(m->a, t, strlen(t));
		p->detected.len = p->detected.ptr ? strlen(t) : 0;
	}
	if (tnef_is(p->decoded.ptr, p->decoded.len)) {
		if (p->archive_depth >= m->e->lim.max_archive_depth) {
			mime_finding_add(m, "ARCHIVE_TOO_DEEP", p, NULL);
			return 0;
		}
		open_tnef(m, p);
	} else if (type_is(p->detected, archive_types, ARRAY_LEN(archive_types)) ||
		   (p->detected.len > 36 &&
		    !strncmp(p->detected.ptr, "application/vnd.openxmlformats-officedocument",
			     36)) ||
		   (p->detected.len &&
		    !strncmp(p->detected.ptr, "application/vnd.ms-excel.sheet.macro",
			     p->detected.len < 36 ? p->detected.len : 36))) {
		if (p->archive_depth >= m->e->lim.max_archive_depth) {
			mime_finding_add(m, "ARCHIVE_TOO_DEEP", p, NULL);
			return 0;
		}
		open_archive(m, p, type_is(p->detected, raw_types, ARRAY_LEN(raw_types)));
	} else if (type_is(p->type, tnef_types, ARRAY_LEN(tnef_types))) {
		mime_finding_add(m, "TNEF_CORRUPT", p, "no TNEF signature");
	} else if (p->decoded.len > 8 &&
		   !memcmp(p->decoded.ptr, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8)) {
		/* OLE2: Word, Excel, PowerPoint 97-2003 */
		if (ole_has_macros(p->decoded.ptr, p->decoded.len)) {
			p->flags |= MIME_PF_MACROS;
			mime_finding_add(m, "OFFICE_MACROS", p, NULL);
		}
	}
	return 0;
}
