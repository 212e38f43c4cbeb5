/* SPDX-License-Identifier: MIT */
/*
 * tnef: the attachment records of a TNEF stream ([MS-OXTNEF]).
 *
 * A stream is the signature, a 16-bit key, then attributes:
 *
 *   level (1 byte: 1 message, 2 attachment) | id (32 bits: type << 16 |
 *   tag) | length (32 bits) | data | checksum (16 bits: sum of the data
 *   bytes)
 *
 * all little-endian. attAttachRenddata opens an attachment; the
 * attributes of level 2 that follow describe it, up to the next
 * attAttachRenddata or the end. attAttachment carries a MAPI property
 * block:
 *
 *   count (32) | count x { type (16) | id (16) | [named: GUID (16 bytes),
 *   kind (32), kind 0: id (32), kind 1: length (32) + UTF-16 name,
 *   padded to 4] | value }
 *
 * where a value is fixed-size (4, 8 or 16 bytes) or, for strings, binary
 * and objects, a count (32) of { length (32) | bytes padded to 4 };
 * multi-valued types (0x1000) carry a count too. Every read below goes
 * through struct rd, which refuses to step past the end, so a declared
 * length or count can only make the reader stop early, never read or
 * allocate more.
 */
#include "mime/tnef.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* attribute tags (low 16 bits of the id) */
#define ATT_ATTACH_DATA 0x800f
#define ATT_ATTACH_TITLE 0x8010
#define ATT_ATTACH_RENDDATA 0x9002
#define ATT_ATTACHMENT 0x9005

#define LVL_MESSAGE 1
#define LVL_ATTACHMENT 2

/* MAPI property ids and types */
#define PR_DISPLAY_NAME 0x3001
#define PR_ATTACH_DATA 0x3701 /* _BIN (PT_BINARY) or _OBJ (PT_OBJECT) */
#define PR_ATTACH_FILENAME 0x3704
#define PR_ATTACH_LONG_FILENAME 0x3707
#define PR_ATTACH_MIME_TAG 0x370e

#define PT_STRING8 0x001e
#define PT_UNICODE 0x001f
#define PT_OBJECT 0x000d
#define PT_BINARY 0x0102
#define MV_FLAG 0x1000

#define TNEF_IID_LEN 16 /* an object value starts with its interface id */

/* one name candidate, in order of preference */
enum name_src { NAME_LONG, NAME_TITLE, NAME_SHORT, NAME_DISPLAY, NAME_SOURCES };

struct cand {
	struct mime_slice s;
	enum tnef_text enc;
	bool set;
};

struct pending {
	bool open;
	struct cand name[NAME_SOURCES];
	struct mime_slice mime_type;
	struct mime_slice data, prop_data;
	bool has_data, has_prop_data, prop_embedded;
};

struct tnef {
	const unsigned char *d;
	size_t len, pos;
	const char *err;
	unsigned flags;
	struct pending cur;
};

/* A bounded cursor over bytes. */
struct rd {
	const unsigned char *p;
	size_t n, o;
};

static bool rd_skip(struct rd *r, size_t k)
{
	if (k > r->n - r->o)
		return false;
	r->o += k;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->n - r->o < 2)
		return false;
	*v = (uint16_t)(r->p[r->o] | r->p[r->o + 1] << 8);
	r->o += 2;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (r->n - r->o < 4)
		return false;
	*v = (uint32_t)r->p[r->o] | (uint32_t)r->p[r->o + 1] << 8 | (uint32_t)r->p[r->o + 2] << 16 |
	     (uint32_t)r->p[r->o + 3] << 24;
	r->o += 4;
	return true;
}

/* k bytes, then the padding to a multiple of 4 (which may be missing at
 * the very end). */
static bool rd_bytes_padded(struct rd *r, size_t k, struct mime_slice *s)
{
	size_t pad = (4 - k % 4) % 4;

	if (k > r->n - r->o)
		return false;
	s->ptr = (const char *)r->p + r->o;
	s->len = k;
	r->o += k;
	r->o += pad < r->n - r->o ? pad : r->n - r->o;
	return true;
}

bool tnef_is(const char *data, size_t len)
{
	return len >= 6 && !memcmp(data, TNEF_SIGNATURE, 4);
}

int tnef_new(const char *data, size_t len, struct tnef **out)
{
	struct tnef *t;

	*out = NULL;
	if (!tnef_is(data, len))
		return -EINVAL;
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->d = (const unsigned char *)data;
	t->len = len;
	t->pos = 6; /* signature and legacy key */
	*out = t;
	return 0;
}

void tnef_free(struct tnef *t)
{
	free(t);
}

const char *tnef_error(const struct tnef *t)
{
	return t->err;
}

unsigned tnef_flags(const struct tnef *t)
{
	return t->flags;
}

static struct mime_slice strip_nuls(struct mime_slice s, enum tnef_text enc)
{
	if (enc == TNEF_TEXT_UTF16LE) {
		s.len &= ~(size_t)1;
		while (s.len >= 2 && !s.ptr[s.len - 1] && !s.ptr[s.len - 2])
			s.len -= 2;
	} else {
		/* a NUL ends the string; what follows is padding */
		const char *z = memchr(s.ptr, '\0', s.len);
		if (z)
			s.len = (size_t)(z - s.ptr);
	}
	return s;
}

static void cand_set(struct cand *c, struct mime_slice s, enum tnef_text enc)
{
	s = strip_nuls(s, enc);
	if (!s.len || c->set)
		return;
	c->s = s;
	c->enc = enc;
	c->set = true;
}

/* Size of one value of a fixed-size property type, 0 for the types that
 * carry lengths, -1 for a type we do not know (the block cannot be read
 * further then). */
static int fixed_size(uint16_t base)
{
	switch (base) {
	case 0x0001: /* PT_NULL */
	case 0x0002: /* PT_SHORT, padded */
	case 0x0003: /* PT_LONG */
	case 0x0004: /* PT_FLOAT */
	case 0x000a: /* PT_ERROR */
	case 0x000b: /* PT_BOOLEAN, padded */
		return 4;
	case 0x0005: /* PT_DOUBLE */
	case 0x0006: /* PT_CURRENCY */
	case 0x0007: /* PT_APPTIME */
	case 0x0014: /* PT_I8 */
	case 0x0040: /* PT_SYSTIME */
		return 8;
	case 0x0048: /* PT_CLSID */
		return 16;
	case PT_STRING8:
	case PT_UNICODE:
	case PT_BINARY:
	case PT_OBJECT:
		return 0;
	default:
		return -1;
	}
}

/* Records what the property (id, type) with first value v means. */
static void prop_note(struct pending *a, uint16_t id, uint16_t type, struct mime_slice v)
{
	enum tnef_text enc = type == PT_UNICODE ? TNEF_TEXT_UTF16LE : TNEF_TEXT_8BIT;
	bool str = type == PT_STRING8 || type == PT_UNICODE;

	switch (id) {
	case PR_ATTACH_LONG_FILENAME:
		if (str)
			cand_set(&a->name[NAME_LONG], v, enc);
		break;
	case PR_ATTACH_FILENAME:
		if (str)
			cand_set(&a->name[NAME_SHORT], v, enc);
		break;
	case PR_DISPLAY_NAME:
		if (str)
			cand_set(&a->name[NAME_DISPLAY], v, enc);
		break;
	case PR_ATTACH_MIME_TAG:
		if (type == PT_STRING8 && !a->mime_type.len)
			a->mime_type = strip_nuls(v, TNEF_TEXT_8BIT);
		break;
	case PR_ATTACH_DATA:
		if (a->has_prop_data)
			break;
		if (type == PT_OBJECT) {
			if (v.len < TNEF_IID_LEN)
				break;
			v.ptr += TNEF_IID_LEN;
			v.len -= TNEF_IID_LEN;
			a->prop_embedded = true;
		} else if (type != PT_BINARY) {
			break;
		}
		a->prop_data = v;
		a->has_prop_data = true;
		break;
	default:
		break;
	}
}

/* The MAPI property block of attAttachment. */
static int read_props(struct tnef *t, struct pending *a, const unsigned char *p, size_t n)
{
	struct rd r = {p, n, 0};
	uint32_t count;

	if (!rd_u32(&r, &count))
		goto bad;
	for (uint32_t i = 0; i < count; i++) {
		uint16_t type, id, base;
		uint32_t nvals = 1, kind, k;
		int fs;
		bool first = true;

		if (!rd_u16(&r, &type) || !rd_u16(&r, &id))
			goto bad;
		if (id >= 0x8000) { /* a named property: GUID, then an id or a name */
			struct mime_slice name;
			if (!rd_skip(&r, 16) || !rd_u32(&r, &kind) || !rd_u32(&r, &k))
				goto bad;
			if (kind != 0 && !rd_bytes_padded(&r, k, &name))
				goto bad;
		}
		base = type & (uint16_t)~MV_FLAG;
		if ((fs = fixed_size(base)) < 0) {
			t->err = "unknown MAPI property type";
			return -EBADMSG;
		}
		if ((type & MV_FLAG) || fs == 0) {
			if (!rd_u32(&r, &nvals))
				goto bad;
			/* every value takes at least 4 bytes: a count beyond that is a lie */
			if (nvals > (r.n - r.o) / 4)
				goto bad;
		}
		for (uint32_t v = 0; v < nvals; v++, first = false) {
			struct mime_slice s;
			if (fs > 0) {
				if (!rd_skip(&r, (size_t)fs))
					goto bad;
				continue;
			}
			if (!rd_u32(&r, &k) || !rd_bytes_padded(&r, k, &s))
				goto bad;
			if (first && !(type & MV_FLAG))
				prop_note(a, id, base, s);
		}
	}
	return 0;
bad:
	t->err = "MAPI property block truncated";
	return -EBADMSG;
}

/* Moves the attachment being read to out (1), or says there is none (0). */
static int emit(struct tnef *t, struct tnef_attachment *out)
{
	struct pending *a = &t->cur;

	if (!a->open)
		return 0;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < NAME_SOURCES; i++)
		if (a->name[i].set) {
			out->name = a->name[i].s;
			out->name_enc = a->name[i].enc;
			break;
		}
	out->mime_type = a->mime_type;
	if (a->has_data)
		out->data = a->data;
	else if (a->has_prop_data && !a->prop_embedded)
		out->data = a->prop_data;
	if (a->has_prop_data && a->prop_embedded)
		out->object = a->prop_data;
	memset(a, 0, sizeof(*a));
	if (!out->name.len && !out->data.len && !out->object.len)
		return 0; /* nothing to scan: a rendering record on its own */
	return 1;
}

/* The stream is malformed: the attachment being read is still handed
 * back (it may be all a scanner needs), then only -EBADMSG. */
static int fail(struct tnef *t, const char *why, struct tnef_attachment *out)
{
	if (!t->err)
		t->err = why;
	return emit(t, out) ? 1 : -EBADMSG;
}

int tnef_next(struct tnef *t, struct tnef_attachment *out)
{
	struct pending *a = &t->cur;

	if (t->err)
		return fail(t, t->err, out);
	while (t->pos < t->len) {
		struct rd r = {t->d, t->len, t->pos};
		uint32_t id, n;
		uint16_t sum, want = 0;
		uint8_t lvl = t->d[t->pos];
		const unsigned char *data;
		int rc;

		r.o++;
		if (!rd_u32(&r, &id) || !rd_u32(&r, &n))
			return fail(t, "attribute header truncated", out);
		if (lvl != LVL_MESSAGE && lvl != LVL_ATTACHMENT)
			return fail(t, "bad attribute level", out);
		if (n > r.n - r.o || r.n - r.o - n < 2)
			return fail(t, "attribute length past the end", out);
		data = r.p + r.o;
		r.o += n;
		if (!rd_u16(&r, &sum))
			return fail(t, "attribute header truncated", out); /* checked above */
		for (uint32_t i = 0; i < n; i++)
			want = (uint16_t)(want + data[i]);
		if (want != sum)
			t->flags |= TNEF_F_BAD_CHECKSUM;
		t->pos = r.o;
		if (lvl != LVL_ATTACHMENT)
			continue;
		if ((id & 0xffff) == ATT_ATTACH_RENDDATA) {
			/* a new attachment: hand back the one before, if any */
			rc = emit(t, out);
			a->open = true;
			if (rc)
				return 1;
			continue;
		}
		a->open = true; /* tolerate attributes before attAttachRenddata */
		switch (id & 0xffff) {
		case ATT_ATTACH_TITLE:
			cand_set(&a->name[NAME_TITLE], (struct mime_slice){(const char *)data, n},
				 TNEF_TEXT_8BIT);
			break;
		case ATT_ATTACH_DATA:
			if (!a->has_data) {
				a->data = (struct mime_slice){(const char *)data, n};
				a->has_data = true;
			}
			break;
		case ATT_ATTACHMENT:
			if (read_props(t, a, data, n) < 0)
				return fail(t, t->err, out);
			break;
		default:
			break;
		}
	}
	return emit(t, out);
}
