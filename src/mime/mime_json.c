/* SPDX-License-Identifier: MIT */
/*
 * mime_json: built without recursion (parts are visited in document order
 * and attached to their parent's node through an index table).
 */
#include "mime/mime_json.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

/* A JSON string from bytes that may not be UTF-8. */
static json_t *jstr(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	json_t *j;
	char *d;
	size_t o = 0;

	if (!p)
		return json_string("");
	if (utf8_valid(s, n))
		return json_stringn(p, n);
	if (n > (SIZE_MAX - 1) / 3 || !(d = malloc(n * 3 + 1)))
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (size_t l = 4; l >= 1; l--)
			if (i + l <= n && utf8_valid(s + i, l)) {
				k = l;
				break;
			}
		if (k) {
			memcpy(d + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(d + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	j = json_stringn(d, o);
	free(d);
	return j;
}

static json_t *jslice(struct mime_slice s)
{
	return jstr(s.ptr, s.len);
}

static const char *const flag_names[] = {
    "broken_encoding",
    "charset_replaced",
    "charset_unknown",
    "truncated",
    "attachment",
    "text",
    "html",
    "archive",
    "encrypted",
    "macros",
    "no_body",
    "unclosed",
};

static const char *kind_name(enum mime_kind k)
{
	return k == MIME_KIND_MULTIPART ? "multipart" : k == MIME_KIND_MESSAGE ? "message" : "leaf";
}

static const char *origin_name(enum mime_origin o)
{
	switch (o) {
	case MIME_FROM_UU:
		return "uuencode";
	case MIME_FROM_ARCHIVE:
		return "archive";
	case MIME_FROM_TNEF:
		return "tnef";
	case MIME_FROM_MIME:
		break;
	}
	return "mime";
}

static void sha256_hex(const char *p, size_t n, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)p, n, md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static json_t *part_json(const struct mime_part *p)
{
	json_t *o = json_object(), *fl = json_array(), *hd = json_array(), *urls;
	char hex[65];

	json_object_set_new(o, "path", jslice(p->path));
	json_object_set_new(o, "kind", json_string(kind_name(p->kind)));
	json_object_set_new(o, "origin", json_string(origin_name(p->origin)));
	json_object_set_new(o, "type", jslice(p->type));
	if (p->detected.len)
		json_object_set_new(o, "detected", jslice(p->detected));
	json_object_set_new(o, "cte", json_string(mime_cte_name(p->cte)));
	if (p->charset.len)
		json_object_set_new(o, "charset", jslice(p->charset));
	if (p->boundary.len)
		json_object_set_new(o, "boundary", jslice(p->boundary));
	if (p->disposition.len)
		json_object_set_new(o, "disposition", jslice(p->disposition));
	if (p->filename.len)
		json_object_set_new(o, "filename", jslice(p->filename));
	json_object_set_new(o, "size", json_integer((json_int_t)p->raw.len));
	json_object_set_new(o, "body_size", json_integer((json_int_t)p->body.len));
	if (p->kind == MIME_KIND_LEAF) {
		json_object_set_new(o, "decoded_size", json_integer((json_int_t)p->decoded.len));
		sha256_hex(p->decoded.ptr ? p->decoded.ptr : "", p->decoded.len, hex);
		json_object_set_new(o, "decoded_sha256", json_string(hex));
	}
	for (size_t i = 0; i < ARRAY_LEN(flag_names); i++)
		if (p->flags & (1u << i))
			json_array_append_new(fl, json_string(flag_names[i]));
	json_object_set_new(o, "flags", fl);
	for (size_t i = 0; i < p->nheaders; i++) {
		json_t *h = json_object();
		json_object_set_new(h, "name", jslice(p->headers[i].name));
		json_object_set_new(h, "value", jslice(p->headers[i].value));
		json_array_append_new(hd, h);
	}
	json_object_set_new(o, "headers", hd);
	if (p->flags & MIME_PF_TEXT)
		json_object_set_new(o, "text", jslice(p->text));
	if (p->nurls) {
		urls = json_array();
		for (size_t i = 0; i < p->nurls; i++) {
			const struct mime_url *u = &p->urls[i];
			json_t *j = json_object();
			json_object_set_new(j, "raw", jslice(u->raw));
			json_object_set_new(j, "url", jslice(u->url));
			json_object_set_new(j, "host", jslice(u->host));
			json_object_set_new(j, "host_ascii", jslice(u->host_ascii));
			if (u->flags & MIME_URL_HTML)
				json_object_set_new(j, "text", jslice(u->text));
			json_object_set_new(
			    j, "from", json_string(u->flags & MIME_URL_HTML ? "html" : "text"));
			if (u->flags & MIME_URL_IDN)
				json_object_set_new(j, "idn", json_true());
			if (u->flags & MIME_URL_BAD_HOST)
				json_object_set_new(j, "bad_host", json_true());
			json_array_append_new(urls, j);
		}
		json_object_set_new(o, "urls", urls);
	}
	if (p->kind != MIME_KIND_LEAF || p->first_child)
		json_object_set_new(o, "parts", json_array());
	return o;
}

json_t *mime_json_msg(const struct mime_msg *m)
{
	size_t n = mime_msg_nparts(m), leaves = 0;
	json_t **node = calloc(n ? n : 1, sizeof(*node));
	json_t *doc = json_object(), *fa = json_array(), *sum = json_object();

	if (!node || !doc)
		goto fail;
	for (const struct mime_part *p = mime_msg_root(m); p; p = mime_part_next(p)) {
		json_t *o = part_json(p);
		node[p->index] = o;
		if (!p->first_child)
			leaves++;
		if (p->parent)
			json_array_append_new(json_object_get(node[p->parent->index], "parts"), o);
	}
	json_object_set_new(doc, "parts", node[0]);
	for (size_t i = 0; i < mime_msg_nfindings(m); i++) {
		const struct mime_finding *f = mime_msg_finding(m, i);
		json_t *j = json_object();
		json_object_set_new(j, "name", json_string(f->name));
		json_object_set_new(j, "path", jslice(f->path));
		if (f->detail.len)
			json_object_set_new(j, "detail", jslice(f->detail));
		json_array_append_new(fa, j);
	}
	json_object_set_new(doc, "findings", fa);
	json_object_set_new(sum, "parts", json_integer((json_int_t)n));
	json_object_set_new(sum, "leaves", json_integer((json_int_t)leaves));
	json_object_set_new(sum, "findings", json_integer((json_int_t)mime_msg_nfindings(m)));
	json_object_set_new(doc, "summary", sum);
	free(node);
	return doc;
fail:
	free(node);
	json_decref(doc);
	json_decref(fa);
	json_decref(sum);
	return NULL;
}

void mime_json_print_text(FILE *f, const struct mime_msg *m)
{
	for (const struct mime_part *p = mime_msg_root(m); p; p = mime_part_next(p)) {
		json_t *name = p->filename.len ? jslice(p->filename) : NULL;
		fprintf(f, "%*s/%.*s", (int)(2 * (p->depth + p->archive_depth)), "",
			(int)p->path.len, p->path.ptr);
		fprintf(f, " %.*s", (int)p->type.len, p->type.ptr);
		if (p->detected.len)
			fprintf(f, " (%.*s)", (int)p->detected.len, p->detected.ptr);
		if (name)
			fprintf(f, " \"%s\"", json_string_value(name));
		if (p->kind == MIME_KIND_LEAF)
			fprintf(f, " %zu bytes", p->decoded.len);
		if (p->nurls)
			fprintf(f, " %zu urls", p->nurls);
		fputc('\n', f);
		json_decref(name);
	}
	for (size_t i = 0; i < mime_msg_nfindings(m); i++) {
		const struct mime_finding *fd = mime_msg_finding(m, i);
		fprintf(f, "finding %s at /%.*s\n", fd->name, (int)fd->path.len, fd->path.ptr);
	}
}
