/* SPDX-License-Identifier: MIT */
/*
 * bayes: tokenizer, classifier, learning and the pipeline check (see
 * bayes.h for the choices).
 */
#include "scan/bayes.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/log.h"

#define BAYES_MAX_FEATURES 400000 /* features made per message, before de-duplication */
#define BAYES_MAX_HEADER 2048	  /* bytes of one header value read */
#define BAYES_MAX_RECEIVED 2	  /* newest Received fields read */
#define BAYES_MAX_PARTS 64	  /* parts whose type / name are read */
#define BAYES_MAX_URLS 256	  /* URLs read per message */
#define BAYES_LONG_KEEP 12	  /* bytes of a long word kept after "L:" */
#define BAYES_WORD_BUF 64	  /* normalised bytes kept while reading a word */

/* The fixed SipHash key: changing it invalidates every learnt count. */
static const uint8_t bayes_key[16] = {'m', 'x', 'g', 'u', 'a', 'r', 'd', '-',
				      'b', 'a', 'y', 'e', 's', '-', 'v', '1'};

/* ---- SipHash-2-4 (Aumasson and Bernstein, 2012) ------------------------- */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL64(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL64(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL64(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL64(v[2], 32);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t x = 0;

	for (int i = 7; i >= 0; i--)
		x = (x << 8) | p[i];
	return x;
}

uint64_t bayes_siphash(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t k0 = le64(key), k1 = le64(key + 8), b = (uint64_t)len << 56;
	uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
			 k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t m = le64(p + i);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= b;
	sip_round(v);
	sip_round(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t bayes_feature_hash(const char *feature, size_t len)
{
	uint64_t h = bayes_siphash(bayes_key, feature, len);

	return h ? h : 1; /* 0 marks an empty cache slot */
}

/* ---- feature sink ------------------------------------------------------- */

/* Where features go: a callback (debugging) or an array of hashes. */
struct sink {
	bayes_feature_cb cb;
	void *arg;
	uint64_t *v;
	size_t n, cap;
	bool oom;
	size_t text_left; /* body text bytes still to read */
	size_t urls_left;
};

static void emit(struct sink *k, const char *f, size_t len)
{
	if (k->cb) {
		k->cb(f, len, k->arg);
		return;
	}
	if (k->n == k->cap) {
		size_t ncap = k->cap ? k->cap * 2 : 1024;
		uint64_t *nv;

		if (k->cap >= BAYES_MAX_FEATURES || k->oom)
			return;
		if (ncap > BAYES_MAX_FEATURES)
			ncap = BAYES_MAX_FEATURES;
		if (!(nv = realloc(k->v, ncap * sizeof(*nv)))) {
			k->oom = true;
			return;
		}
		k->v = nv;
		k->cap = ncap;
	}
	k->v[k->n++] = bayes_feature_hash(f, len);
}

/* prefix + a [+ ' ' d ' ' + b] into buf, then emit. */
static void emit_feature(struct sink *k, const char *prefix, const char *a, size_t alen, unsigned d,
			 const char *b, size_t blen)
{
	char buf[BAYES_FEATURE_LEN];
	size_t plen = strlen(prefix), n = 0;

	if (plen + alen + blen + 4 >= sizeof(buf))
		return;
	memcpy(buf, prefix, plen);
	n = plen;
	memcpy(buf + n, a, alen);
	n += alen;
	if (d) {
		buf[n++] = ' ';
		buf[n++] = (char)('0' + d);
		buf[n++] = ' ';
		memcpy(buf + n, b, blen);
		n += blen;
	}
	buf[n] = '\0';
	emit(k, buf, n);
}

/* ---- words -------------------------------------------------------------- */

struct stream {
	struct sink *k;
	const char *prefix;
	bool osb;     /* pairs of words as well */
	bool keep_ip; /* IPv4 addresses as their /24 (Received) */
	/* the BAYES_WINDOW - 1 previous words, a ring */
	char prev[BAYES_WINDOW - 1][BAYES_WORD_MAX + 1];
	size_t prevlen[BAYES_WINDOW - 1];
	size_t nprev, head;
};

/* A word made: the features it contributes. */
static void stream_word(struct stream *s, const char *w, size_t len)
{
	emit_feature(s->k, s->prefix, w, len, 0, NULL, 0);
	if (!s->osb)
		return;
	for (size_t d = 1; d <= s->nprev; d++) {
		size_t i = (s->head + (BAYES_WINDOW - 1) - d) % (BAYES_WINDOW - 1);
		emit_feature(s->k, s->prefix, s->prev[i], s->prevlen[i], (unsigned)d, w, len);
	}
	memcpy(s->prev[s->head], w, len);
	s->prevlen[s->head] = len;
	s->head = (s->head + 1) % (BAYES_WINDOW - 1);
	if (s->nprev < BAYES_WINDOW - 1)
		s->nprev++;
}

/* One code point of s[0..len): its value and length; -1 for a byte that
 * does not start a well-formed sequence (length 1). */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *n)
{
	uint32_t cp;
	size_t need;

	*n = 1;
	if (s[0] < 0x80)
		return s[0];
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return -1;
	}
	if (len < need)
		return -1;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*n = need;
	return (int32_t)cp;
}

static size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Simple case folding of the scripts spam is mostly written in. */
static uint32_t fold(uint32_t cp)
{
	if (cp >= 'A' && cp <= 'Z')
		return cp + 32;
	if (cp < 0xc0)
		return cp;
	if (cp <= 0xde && cp != 0xd7)
		return cp + 32;
	if ((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14a && cp <= 0x177))
		return cp | 1;
	if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
		return (cp & 1) ? cp + 1 : cp;
	if (cp == 0x178)
		return 0xff;
	if (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2)
		return cp + 32;
	if (cp >= 0x410 && cp <= 0x42f)
		return cp + 32;
	if (cp >= 0x400 && cp <= 0x40f)
		return cp + 80;
	return cp;
}

/* Characters that are words on their own: Han, kana, Hangul, emoji. */
static bool single_char_word(uint32_t cp)
{
	return (cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
	       (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) ||
	       (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x2ffff) ||
	       (cp >= 0x1f000 && cp <= 0x1faff) || (cp >= 0x2600 && cp <= 0x27bf);
}

/* Non-ASCII code points that separate words (punctuation, symbols, spaces). */
static bool separator(uint32_t cp)
{
	if (cp >= 0x80 && cp <= 0xbf)
		return cp != 0xaa && cp != 0xb5 && cp != 0xba;
	return cp == 0xd7 || cp == 0xf7 || (cp >= 0x2000 && cp <= 0x2bff) ||
	       (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xe000 && cp <= 0xf8ff) ||
	       (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff0f) ||
	       (cp >= 0xff1a && cp <= 0xff20) || cp >= 0xfff0;
}

static bool ascii_word(int32_t cp)
{
	return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
	       cp == '$';
}

static bool word_char(int32_t cp)
{
	if (cp < 0)
		return false;
	if (cp < 0x80)
		return ascii_word(cp);
	return !separator((uint32_t)cp) && !single_char_word((uint32_t)cp);
}

/* A word being read: its normalised bytes (the first BAYES_WORD_BUF),
 * its normalised length, and the raw ASCII for the IPv4 test. */
struct word {
	char buf[BAYES_WORD_BUF];
	size_t len;   /* normalised length, may exceed the buffer */
	size_t chars; /* characters read */
	bool ascii;
	char raw[24];
	size_t rawlen;
	size_t digits; /* length of the digit run being read */
};

static void word_put(struct word *w, const char *b, size_t n)
{
	if (w->len + n <= sizeof(w->buf))
		memcpy(w->buf + w->len, b, n);
	w->len += n;
}

static void word_end_digits(struct word *w)
{
	char t[2] = {'N', (char)('0' + (w->digits > 9 ? 9 : w->digits))};

	if (w->digits)
		word_put(w, t, 2);
	w->digits = 0;
}

static void word_add(struct word *w, uint32_t cp)
{
	char b[4];

	w->chars++;
	if (cp >= 0x80)
		w->ascii = false;
	if (w->rawlen < sizeof(w->raw))
		w->raw[w->rawlen] = cp < 0x80 ? (char)cp : '?';
	w->rawlen++;
	if (cp >= '0' && cp <= '9') {
		w->digits++;
		return;
	}
	word_end_digits(w);
	word_put(w, b, utf8_put(fold(cp), b));
}

/* a.b.c.d with four numbers up to 255: writes "ip:a.b.c" into out. */
static bool ipv4_net(const struct word *w, char *out, size_t outlen)
{
	unsigned v[4];
	char tail;
	char raw[sizeof(w->raw) + 1];

	if (w->rawlen >= sizeof(w->raw))
		return false;
	memcpy(raw, w->raw, w->rawlen);
	raw[w->rawlen] = '\0';
	if (sscanf(raw, "%3u.%3u.%3u.%3u%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4)
		return false;
	if (v[0] > 255 || v[1] > 255 || v[2] > 255 || v[3] > 255)
		return false;
	return str_fmt(out, outlen, "ip:%u.%u.%u", v[0], v[1], v[2]) == 0;
}

static void word_finish(struct stream *s, struct word *w)
{
	char ip[24];

	word_end_digits(w);
	if (w->chars == 0)
		goto reset;
	if (w->chars == 1 && w->ascii)
		goto reset; /* "a", "I", a lone digit */
	if (s->keep_ip && ipv4_net(w, ip, sizeof(ip))) {
		stream_word(s, ip, strlen(ip));
	} else if (w->len > BAYES_WORD_MAX) {
		char l[2 + BAYES_LONG_KEEP];
		size_t n = BAYES_LONG_KEEP;

		/* cut at a character boundary */
		while (n > 0 && ((unsigned char)w->buf[n] & 0xc0) == 0x80)
			n--;
		memcpy(l, "L:", 2);
		memcpy(l + 2, w->buf, n);
		stream_word(s, l, n + 2);
	} else {
		stream_word(s, w->buf, w->len);
	}
reset:
	memset(w, 0, sizeof(*w));
	w->ascii = true;
}

static void split_text(struct stream *s, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	struct word w;
	size_t i = 0, n, n2;

	memset(&w, 0, sizeof(w));
	w.ascii = true;
	while (i < len) {
		int32_t cp = utf8_next(p + i, len - i, &n);

		if (word_char(cp)) {
			word_add(&w, (uint32_t)cp);
			i += n;
			continue;
		}
		if (cp >= 0 && single_char_word((uint32_t)cp)) {
			char b[4];
			size_t bl = utf8_put((uint32_t)cp, b);

			word_finish(s, &w);
			stream_word(s, b, bl);
			i += n;
			continue;
		}
		/* joiners stay inside a word when a word character follows */
		if (w.chars &&
		    (cp == '.' || cp == '-' || cp == '\'' || cp == '_' || cp == '@' || cp == ',') &&
		    i + n < len) {
			int32_t next = utf8_next(p + i + n, len - i - n, &n2);
			bool ok =
			    cp == ',' ? (w.digits && next >= '0' && next <= '9') : word_char(next);
			if (ok) {
				word_add(&w, (uint32_t)cp);
				i += n;
				continue;
			}
		}
		word_finish(s, &w);
		i += n;
	}
	word_finish(s, &w);
}

void bayes_features_text(const char *prefix, const char *text, size_t len, bool osb,
			 bayes_feature_cb cb, void *arg)
{
	struct sink k = {.cb = cb, .arg = arg};
	struct stream s = {.k = &k, .prefix = prefix ? prefix : "", .osb = osb};

	if (text)
		split_text(&s, text, len);
}

/* ---- the message -------------------------------------------------------- */

static void text_stream(struct sink *k, const char *prefix, bool osb, bool keep_ip,
			struct mime_slice v, size_t max)
{
	struct stream s = {.k = k, .prefix = prefix, .osb = osb, .keep_ip = keep_ip};

	if (v.ptr)
		split_text(&s, v.ptr, v.len < max ? v.len : max);
}

/* prefix + v lower-cased (ASCII), when it fits a feature. */
static void emit_lower(struct sink *k, const char *prefix, const char *v, size_t len)
{
	char b[BAYES_FEATURE_LEN];
	size_t plen = strlen(prefix);

	if (!len || plen + len >= sizeof(b))
		return;
	memcpy(b, prefix, plen);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		b[plen + i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	b[plen + len] = '\0';
	emit(k, b, plen + len);
}

static bool name_is(struct mime_slice n, const char *want)
{
	return n.len == strlen(want) && !strncasecmp(n.ptr, want, n.len);
}

/* The domain of a Message-ID: between '@' and '>' (or the end). */
static void msgid_domain(struct sink *k, struct mime_slice v)
{
	const char *at = v.ptr ? memchr(v.ptr, '@', v.len) : NULL;
	const char *end;

	if (!at)
		return;
	at++;
	end = at;
	while (end < v.ptr + v.len && *end != '>' && *end != ' ')
		end++;
	if (end - at <= 64)
		emit_lower(k, "MID:", at, (size_t)(end - at));
}

static void headers(struct sink *k, const struct mime_part *root)
{
	size_t received = 0;

	for (size_t i = 0; i < root->nheaders; i++) {
		const struct mime_header *h = &root->headers[i];

		if (name_is(h->name, "Subject"))
			text_stream(k, "S:", true, false, h->value, BAYES_MAX_HEADER);
		else if (name_is(h->name, "From"))
			text_stream(k, "F:", true, false, h->value, BAYES_MAX_HEADER);
		else if (name_is(h->name, "To"))
			text_stream(k, "T:", true, false, h->value, BAYES_MAX_HEADER);
		else if (name_is(h->name, "Reply-To"))
			text_stream(k, "R:", true, false, h->value, BAYES_MAX_HEADER);
		else if (name_is(h->name, "Received") && received++ < BAYES_MAX_RECEIVED)
			text_stream(k, "H:", false, true, h->value, BAYES_MAX_HEADER);
		else if (name_is(h->name, "X-Mailer") || name_is(h->name, "User-Agent"))
			text_stream(k, "M:", false, false, h->value, BAYES_MAX_HEADER);
		else if (name_is(h->name, "Message-ID"))
			msgid_domain(k, h->value);
	}
}

/* "U:" host and its last two labels, "UP:" words of the first path segment. */
static void url_features(struct sink *k, const struct mime_url *u)
{
	const char *h = u->host.ptr, *p, *end, *seg;
	size_t dots = 0;

	if (h && u->host.len) {
		emit_lower(k, "U:", h, u->host.len);
		for (size_t i = u->host.len; i > 0; i--)
			if (h[i - 1] == '.' && ++dots == 2) {
				emit_lower(k, "U:", h + i, u->host.len - i);
				break;
			}
	}
	if (!u->url.ptr)
		return;
	end = u->url.ptr + u->url.len;
	p = memmem(u->url.ptr, u->url.len, "://", 3);
	if (!p)
		return;
	p += 3;
	while (p < end && *p != '/' && *p != '?' && *p != '#')
		p++;
	if (p >= end || *p != '/')
		return;
	seg = ++p;
	while (p < end && *p != '/' && *p != '?' && *p != '#')
		p++;
	if (p > seg) {
		struct mime_slice sl = {seg, (size_t)(p - seg)};
		text_stream(k, "UP:", false, false, sl, 128);
	}
}

/* The extension of a file name, lower-cased: "A:pdf". */
static void filename_ext(struct sink *k, struct mime_slice fn)
{
	const char *dot;

	if (!fn.ptr || !fn.len)
		return;
	dot = memrchr(fn.ptr, '.', fn.len);
	if (!dot || (size_t)(fn.ptr + fn.len - dot - 1) > 10)
		return;
	emit_lower(k, "A:", dot + 1, (size_t)(fn.ptr + fn.len - dot - 1));
}

static void parts(struct sink *k, const struct mime_msg *m)
{
	size_t np = mime_msg_nparts(m), seen = 0;

	for (size_t i = 0; i < np; i++) {
		const struct mime_part *p = mime_msg_part(m, i);

		if (p->origin != MIME_FROM_MIME)
			continue;
		if (seen++ < BAYES_MAX_PARTS) {
			emit_lower(k, "CT:", p->type.ptr, p->type.len);
			emit_lower(k, "CS:", p->charset.ptr, p->charset.len);
			filename_ext(k, p->filename);
		}
		if (p->kind == MIME_KIND_LEAF && (p->flags & MIME_PF_TEXT) &&
		    !(p->flags & MIME_PF_ATTACHMENT) && k->text_left > 0) {
			size_t n = p->text.len < k->text_left ? p->text.len : k->text_left;
			text_stream(k, "", true, false, p->text, n);
			k->text_left -= n;
		}
		for (size_t u = 0; u < p->nurls && k->urls_left > 0; u++, k->urls_left--)
			url_features(k, &p->urls[u]);
	}
}

static void features(struct sink *k, const struct mime_msg *m)
{
	const struct mime_part *root = mime_msg_root(m);

	k->text_left = BAYES_MAX_TEXT;
	k->urls_left = BAYES_MAX_URLS;
	if (!root)
		return;
	headers(k, root);
	parts(k, m);
}

void bayes_features_msg(const struct mime_msg *m, bayes_feature_cb cb, void *arg)
{
	struct sink k = {.cb = cb, .arg = arg};

	if (m && cb)
		features(&k, m);
}

struct bayes_tokens {
	uint64_t *v;
	size_t n;
	char digest[STORE_BAYES_DIGEST_LEN];
};

/* Sorts v[0..n) ascending: LSD radix sort, a byte a pass (tmp holds n).
 * The features of a message (thousands of hashes) were sorted with qsort
 * before: 4% of the content layer's CPU, measured; this is a fraction. A
 * pass whose byte is the same in every value is skipped. */
static void sort_u64(uint64_t *v, uint64_t *tmp, size_t n)
{
	uint32_t cnt[8][256];
	uint64_t *src = v, *dst = tmp, *sw;

	if (n < 2)
		return;
	memset(cnt, 0, sizeof(cnt));
	for (size_t i = 0; i < n; i++)
		for (unsigned b = 0; b < 8; b++)
			cnt[b][(v[i] >> (8 * b)) & 255]++;
	for (unsigned b = 0; b < 8; b++) {
		uint32_t sum = 0;

		if (cnt[b][(src[0] >> (8 * b)) & 255] == n)
			continue;
		for (unsigned d = 0; d < 256; d++) {
			uint32_t c = cnt[b][d];
			cnt[b][d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[b][(src[i] >> (8 * b)) & 255]++] = src[i];
		sw = src;
		src = dst;
		dst = sw;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
}

/* SHA-256 hex of Message-ID, Subject and the body as written. */
static int digest(const struct mime_msg *m, char out[STORE_BAYES_DIGEST_LEN])
{
	const struct mime_part *root = mime_msg_root(m);
	const struct mime_header *h;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int rc = -ENOMEM;

	if (!c)
		return -ENOMEM;
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		goto out;
	if (root) {
		if ((h = mime_part_header(root, "Message-ID")) && h->value.ptr)
			EVP_DigestUpdate(c, h->value.ptr, h->value.len);
		EVP_DigestUpdate(c, "\n", 1);
		if ((h = mime_part_header(root, "Subject")) && h->value.ptr)
			EVP_DigestUpdate(c, h->value.ptr, h->value.len);
		EVP_DigestUpdate(c, "\n", 1);
		if (root->body.ptr)
			EVP_DigestUpdate(c, root->body.ptr, root->body.len);
	}
	if (EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	for (unsigned i = 0; i < mdlen; i++) {
		static const char hex[] = "0123456789abcdef";
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * mdlen] = '\0';
	rc = 0;
out:
	EVP_MD_CTX_free(c);
	return rc;
}

int bayes_tokenize(const struct mime_msg *m, struct bayes_tokens **out)
{
	struct sink k = {0};
	struct bayes_tokens *t = NULL;
	size_t n = 0;
	int rc = -ENOMEM;

	*out = NULL;
	if (!m)
		return -EINVAL;
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	features(&k, m);
	if (k.oom)
		goto out;
	if ((rc = digest(m, t->digest)) < 0)
		goto out;
	if (k.n > 1) {
		uint64_t *tmp = malloc(k.n * sizeof(*tmp));

		if (!tmp) {
			rc = -ENOMEM;
			goto out;
		}
		sort_u64(k.v, tmp, k.n);
		free(tmp);
	}
	for (size_t i = 0; i < k.n; i++)
		if (n == 0 || k.v[n - 1] != k.v[i])
			k.v[n++] = k.v[i];
	if (n > BAYES_MAX_TOKENS)
		n = BAYES_MAX_TOKENS; /* the smallest hashes: a fixed sample */
	t->v = k.v;
	t->n = n;
	k.v = NULL;
	*out = t;
	t = NULL;
	rc = 0;
out:
	free(k.v);
	bayes_tokens_free(t);
	return rc;
}

void bayes_tokens_free(struct bayes_tokens *t)
{
	if (!t)
		return;
	free(t->v);
	free(t);
}

size_t bayes_tokens_count(const struct bayes_tokens *t)
{
	return t ? t->n : 0;
}

const uint64_t *bayes_tokens_values(const struct bayes_tokens *t)
{
	return t ? t->v : NULL;
}

const char *bayes_tokens_digest(const struct bayes_tokens *t)
{
	return t ? t->digest : "";
}

/* ---- the math ------------------------------------------------------------ */

double bayes_token_prob(uint32_t spam, uint32_t ham, int64_t nspam, int64_t nham)
{
	double ps, ph, p, n = (double)spam + (double)ham;

	if (n == 0 || nspam <= 0 || nham <= 0)
		return BAYES_FW_X;
	/* a token can be in more messages than learnt after an expiry or a
	 * stale total: cap the ratios at 1 */
	ps = (double)spam / (double)nspam;
	ph = (double)ham / (double)nham;
	if (ps > 1)
		ps = 1;
	if (ph > 1)
		ph = 1;
	p = ps / (ps + ph);
	return (BAYES_FW_S * BAYES_FW_X + n * p) / (BAYES_FW_S + n);
}

double bayes_chi2q(double x2, unsigned v)
{
	double m = x2 / 2.0, sum, term;

	if (x2 <= 0 || v < 2)
		return 1.0;
	sum = term = exp(-m);
	for (unsigned i = 1; i < v / 2; i++) {
		term *= m / i;
		sum += term;
	}
	return sum < 1.0 ? sum : 1.0;
}

double bayes_combine(const double *f, size_t n)
{
	double lh = 0, ls = 0, h, s;

	if (n == 0)
		return 0.5;
	for (size_t i = 0; i < n; i++) {
		/* keep the logs finite */
		double x = f[i] < 1e-9 ? 1e-9 : f[i] > 1 - 1e-9 ? 1 - 1e-9 : f[i];
		lh += log(x);
		ls += log(1.0 - x);
	}
	h = bayes_chi2q(-2.0 * lh, (unsigned)(2 * n));
	s = bayes_chi2q(-2.0 * ls, (unsigned)(2 * n));
	return (1.0 + h - s) / 2.0;
}

static const struct {
	const char *name;
	double lo, score;
} bands[] = {
    {"BAYES_99", 0.99, 3.5},	{"BAYES_95", 0.95, 3.0},  {"BAYES_80", 0.80, 2.0},
    {"BAYES_60", 0.60, 1.5},	{"BAYES_50", 0.40, 0.8},  {"BAYES_40", 0.20, -0.001},
    {"BAYES_20", 0.05, -0.001}, {"BAYES_05", 0.01, -0.5}, {"BAYES_00", 0.0, -1.9},
};
#define BAYES_999_LO 0.999
#define BAYES_999_SCORE 0.2

const char *bayes_symbol(double p, double *score)
{
	for (size_t i = 0; i < ARRAY_LEN(bands); i++)
		if (p >= bands[i].lo) {
			if (score)
				*score = bands[i].score;
			return bands[i].name;
		}
	if (score)
		*score = bands[ARRAY_LEN(bands) - 1].score;
	return bands[ARRAY_LEN(bands) - 1].name;
}

/* ---- classification ---------------------------------------------------- */

struct cache_ent {
	uint64_t token; /* 0: empty */
	uint32_t spam, ham;
};

struct bayes {
	struct store *st;
	struct bayes_table *tab; /* shared, not owned; NULL: the store alone */
	struct bayes_params p;
	struct cache_ent *cache;
	size_t cap, count; /* cap: power of two, 0 without cache */
	struct store_bayes_totals tot;
	bool have_tot;
	int64_t tot_at_us; /* monotonic */
};

void bayes_params_from_config(const struct config *cfg, struct bayes_params *p)
{
	p->min_spam = cfg->bayes.min_spam;
	p->min_ham = cfg->bayes.min_ham;
	p->cache_tokens = cfg->bayes.cache_tokens;
	p->cache_ttl = cfg->bayes.cache_ttl;
	p->max_tokens = cfg->bayes.max_tokens;
}

static int store_errno(int rc)
{
	switch (rc) {
	case STORE_OK:
		return 0;
	case STORE_INVALID:
		return -EINVAL;
	default:
		return -EAGAIN;
	}
}

struct bayes *bayes_new(struct store *st, const struct bayes_params *p)
{
	struct bayes *b;

	if (!st || !p || (b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->st = st;
	b->p = *p;
	if (p->cache_tokens > 0) {
		size_t cap = 1024;
		while (cap < (size_t)p->cache_tokens * 2)
			cap <<= 1;
		if (!(b->cache = calloc(cap, sizeof(*b->cache)))) {
			free(b);
			return NULL;
		}
		b->cap = cap;
	}
	return b;
}

void bayes_free(struct bayes *b)
{
	if (!b)
		return;
	free(b->cache);
	free(b);
}

static void cache_clear(struct bayes *b)
{
	if (b->cache && b->count)
		memset(b->cache, 0, b->cap * sizeof(*b->cache));
	b->count = 0;
}

void bayes_invalidate(struct bayes *b)
{
	if (!b)
		return;
	cache_clear(b);
	b->have_tot = false;
	bayes_table_kick(b->tab);
}

void bayes_use_table(struct bayes *b, struct bayes_table *t)
{
	if (b)
		b->tab = t;
}

static size_t cache_pos(const struct bayes *b, uint64_t token)
{
	size_t i = (size_t)(token ^ (token >> 29)) & (b->cap - 1);

	while (b->cache[i].token && b->cache[i].token != token)
		i = (i + 1) & (b->cap - 1);
	return i;
}

static void cache_put(struct bayes *b, const struct store_bayes_count *c)
{
	size_t i;

	if (!b->cap || !c->token)
		return;
	if (b->count >= (size_t)b->p.cache_tokens)
		cache_clear(b); /* full: start over (bounded, simple) */
	i = cache_pos(b, c->token);
	if (!b->cache[i].token)
		b->count++;
	b->cache[i].token = c->token;
	b->cache[i].spam = c->spam;
	b->cache[i].ham = c->ham;
}

/* Totals at most cache_ttl old; a moved generation drops the cache. */
static int refresh(struct bayes *b)
{
	int64_t now = time_mono_us();
	struct store_bayes_totals t;
	int rc;

	if (b->have_tot && now - b->tot_at_us < b->p.cache_ttl * 1000000)
		return 0;
	if ((rc = store_bayes_totals(b->st, &t)))
		return store_errno(rc);
	if (!b->have_tot || t.generation != b->tot.generation)
		cache_clear(b);
	b->tot = t;
	b->have_tot = true;
	b->tot_at_us = now;
	return 0;
}

static int cmp_strength(const void *a, const void *b)
{
	double x = fabs(*(const double *)a - 0.5), y = fabs(*(const double *)b - 0.5);

	return x > y ? -1 : x < y;
}

/* cnt[i] = the counts of t->v[i], through the thread's cache and the
 * store. */
static int counts_from_store(struct bayes *b, const struct bayes_tokens *t,
			     struct store_bayes_count *cnt)
{
	struct store_bayes_count *mc = NULL;
	uint64_t *miss = NULL;
	size_t *missidx = NULL, nm = 0;
	int rc = -ENOMEM;

	if (!(miss = malloc(t->n * sizeof(*miss))) || !(missidx = malloc(t->n * sizeof(*missidx))))
		goto out;
	for (size_t i = 0; i < t->n; i++) {
		cnt[i].token = t->v[i];
		if (b->cap) {
			size_t k = cache_pos(b, t->v[i]);
			if (b->cache[k].token) {
				cnt[i].spam = b->cache[k].spam;
				cnt[i].ham = b->cache[k].ham;
				continue;
			}
		}
		missidx[nm] = i;
		miss[nm++] = t->v[i]; /* still sorted: t->v is */
	}
	if (nm) {
		if (!(mc = malloc(nm * sizeof(*mc))))
			goto out;
		if ((rc = store_bayes_get(b->st, miss, nm, mc))) {
			rc = store_errno(rc);
			goto out;
		}
		for (size_t j = 0; j < nm; j++) {
			cnt[missidx[j]] = mc[j];
			cache_put(b, &mc[j]);
		}
	}
	rc = 0;
out:
	free(miss);
	free(missidx);
	free(mc);
	return rc;
}

/* The verdict from the counts of the message's tokens. */
static int score(const struct store_bayes_count *cnt, size_t n, struct bayes_result *out)
{
	double *f = NULL;
	size_t nf = 0;

	if (!(f = malloc(n * sizeof(*f))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		double p;

		if (cnt[i].spam == 0 && cnt[i].ham == 0)
			continue;
		out->nknown++;
		p = bayes_token_prob(cnt[i].spam, cnt[i].ham, out->nspam, out->nham);
		if (fabs(p - 0.5) >= BAYES_MIN_STRENGTH)
			f[nf++] = p;
	}
	if (nf == 0)
		goto out; /* nothing known that matters: no verdict */
	qsort(f, nf, sizeof(*f), cmp_strength);
	if (nf > BAYES_SIGNIFICANT)
		nf = BAYES_SIGNIFICANT;
	out->prob = bayes_combine(f, nf);
	out->ntokens = nf;
	out->verdict = true;
	out->symbol = bayes_symbol(out->prob, &out->score);
	if (out->prob >= BAYES_999_LO)
		out->score += BAYES_999_SCORE;
out:
	free(f);
	return 0;
}

int bayes_classify_tokens(struct bayes *b, const struct bayes_tokens *t, struct bayes_result *out)
{
	const struct bayes_snap *snap = NULL;
	struct store_bayes_count *cnt = NULL;
	struct store_bayes_totals tot;
	int rc;

	if (!b || !t || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->prob = -1;
	/* the shared snapshot when there is one, else the store */
	if ((snap = bayes_table_acquire(b->tab))) {
		bayes_snap_totals(snap, &tot);
	} else {
		if ((rc = refresh(b)) < 0)
			return rc;
		tot = b->tot;
	}
	out->nspam = tot.nspam;
	out->nham = tot.nham;
	rc = 0;
	if (tot.nspam < b->p.min_spam || tot.nham < b->p.min_ham || t->n == 0)
		goto out;
	rc = -ENOMEM;
	if (!(cnt = malloc(t->n * sizeof(*cnt))))
		goto out;
	if (snap)
		bayes_snap_get(snap, t->v, t->n, cnt);
	else if ((rc = counts_from_store(b, t, cnt)) < 0)
		goto out;
	rc = score(cnt, t->n, out);
out:
	bayes_table_release(b->tab, snap);
	free(cnt);
	return rc;
}

int bayes_classify(struct bayes *b, const struct mime_msg *m, struct bayes_result *out)
{
	struct bayes_tokens *t = NULL;
	int rc;

	if ((rc = bayes_tokenize(m, &t)) < 0)
		return rc;
	rc = bayes_classify_tokens(b, t, out);
	bayes_tokens_free(t);
	return rc;
}

/* ---- learning ------------------------------------------------------------ */

int bayes_expire(struct store *st, int64_t max_tokens, int64_t *removed)
{
	return store_errno(
	    store_bayes_expire(st, time_now(), BAYES_EXPIRE_AGE, max_tokens, removed));
}

/* After a learn: expiry once the table is past its bound. A single
 * message (autolearn) looks at the count only every 256 generations. */
static int maybe_expire(struct store *st, const struct bayes_params *p, size_t n)
{
	struct store_bayes_totals t;
	int rc;

	if (!p || p->max_tokens <= 0)
		return 0;
	if (n == 1) {
		if ((rc = store_bayes_totals(st, &t)))
			return store_errno(rc);
		if (t.generation % 256 != 0)
			return 0;
	}
	if ((rc = store_bayes_stats(st, &t)))
		return store_errno(rc);
	if (t.ntokens <= p->max_tokens)
		return 0;
	return bayes_expire(st, p->max_tokens, NULL);
}

int bayes_learn_tokens(struct store *st, const struct bayes_tokens *const *t, size_t n,
		       enum store_bayes_class cls, const struct bayes_params *p,
		       enum store_bayes_outcome *outcomes)
{
	struct store_bayes_item *items;
	int rc;

	if (!st || (n && !t))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (!(items = calloc(n, sizeof(*items))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!t[i]) {
			rc = -EINVAL;
			goto out;
		}
		(void)str_copy(items[i].digest, sizeof(items[i].digest), t[i]->digest);
		items[i].cls = cls;
		items[i].tokens = t[i]->v;
		items[i].ntokens = t[i]->n;
	}
	if ((rc = store_errno(store_bayes_learn(st, items, n, time_now()))) < 0)
		goto out;
	if (outcomes)
		for (size_t i = 0; i < n; i++)
			outcomes[i] = items[i].outcome;
	rc = maybe_expire(st, p, n);
out:
	free(items);
	return rc;
}

int bayes_learn_store(struct store *st, const struct bayes_tokens *t, bool spam,
		      const struct bayes_params *p, enum store_bayes_outcome *outcome)
{
	return bayes_learn_tokens(st, &t, 1, spam ? STORE_BAYES_SPAM : STORE_BAYES_HAM, p, outcome);
}

static int learn_msg(struct bayes *b, struct store *st, const struct mime_msg *m,
		     enum store_bayes_class cls, enum store_bayes_outcome *outcome)
{
	struct bayes_tokens *t = NULL;
	int rc;

	if ((rc = bayes_tokenize(m, &t)) < 0)
		return rc;
	rc = bayes_learn_tokens(st, (const struct bayes_tokens *const *)&t, 1, cls,
				b ? &b->p : NULL, outcome);
	bayes_tokens_free(t);
	bayes_invalidate(b);
	return rc;
}

int bayes_learn(struct bayes *b, struct store *st, const struct mime_msg *m, bool spam,
		enum store_bayes_outcome *outcome)
{
	return learn_msg(b, st, m, spam ? STORE_BAYES_SPAM : STORE_BAYES_HAM, outcome);
}

int bayes_unlearn(struct bayes *b, struct store *st, const struct mime_msg *m,
		  enum store_bayes_outcome *outcome)
{
	return learn_msg(b, st, m, STORE_BAYES_FORGET, outcome);
}

/* ---- autolearn ---------------------------------------------------------- */

enum bayes_autolearn bayes_autolearn_decision(double score, double bayes_prob,
					      const struct config *cfg)
{
	double own = 0;

	if (!cfg || !cfg->bayes.enabled || !cfg->bayes.autolearn || isnan(score))
		return BAYES_AUTOLEARN_NONE;
	if (bayes_prob >= 0) {
		(void)bayes_symbol(bayes_prob, &own);
		if (bayes_prob >= BAYES_999_LO)
			own += BAYES_999_SCORE;
	}
	score -= own;
	if (score >= cfg->bayes.autolearn_spam)
		return bayes_prob >= 0.99 ? BAYES_AUTOLEARN_NONE : BAYES_AUTOLEARN_SPAM;
	if (score <= cfg->bayes.autolearn_ham)
		return bayes_prob >= 0 && bayes_prob <= 0.01 ? BAYES_AUTOLEARN_NONE
							     : BAYES_AUTOLEARN_HAM;
	return BAYES_AUTOLEARN_NONE;
}

/* ---- the pipeline check ------------------------------------------------- */

struct bayes_thread {
	struct store *st;
	struct bayes *b;
	bool autolearn; /* keep the tokens for the session's autolearn */
};

static void bayes_thread_free(void *state)
{
	struct bayes_thread *s = state;

	if (!s)
		return;
	bayes_free(s->b);
	store_close(s->st);
	free(s);
}

/* The process's token table (bayes_table.h), shared by the threads of a
 * pipeline: its own store connection, a refresh every cache_ttl. NULL
 * shared (bayes off, or bayes.memory = 0): every thread reads the store. */
static int bayes_shared_new(const struct config *cfg, struct metrics *m, void **shared, char *err,
			    size_t errlen)
{
	struct store *st = NULL;
	char why[256];

	(void)m;
	*shared = NULL;
	if (!cfg->bayes.enabled || cfg->bayes.memory <= 0)
		return 0;
	if (store_open(cfg->store.url, (int)cfg->store.busy_timeout, &st, why, sizeof(why))) {
		(void)str_fmt(err, errlen, "bayes: cannot open the store: %s", why);
		return -EIO;
	}
	if (!(*shared =
		  bayes_table_new(st, cfg->bayes.memory, cfg->bayes.cache_ttl * 1000, true))) {
		(void)str_copy(err, errlen, "bayes: cannot make the token table");
		return -ENOMEM;
	}
	return 0;
}

static void bayes_shared_free(void *shared)
{
	bayes_table_free(shared);
}

static int bayes_thread_init_shared(const struct config *cfg, struct metrics *m, void *shared,
				    void **state, char *err, size_t errlen)
{
	struct bayes_thread *s;
	struct bayes_params p;
	char why[256];
	int rc;

	(void)m;
	*state = NULL;
	if (!cfg->bayes.enabled)
		return 0;
	if (!(s = calloc(1, sizeof(*s)))) {
		(void)str_copy(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = store_open(cfg->store.url, (int)cfg->store.busy_timeout, &s->st, why, sizeof(why));
	if (rc) {
		(void)str_fmt(err, errlen, "bayes: cannot open the store: %s", why);
		bayes_thread_free(s);
		return -EIO;
	}
	bayes_params_from_config(cfg, &p);
	s->autolearn = cfg->bayes.autolearn;
	if (!(s->b = bayes_new(s->st, &p))) {
		(void)str_copy(err, errlen, "out of memory");
		bayes_thread_free(s);
		return -ENOMEM;
	}
	bayes_use_table(s->b, shared);
	*state = s;
	return 0;
}

static int bayes_thread_init(const struct config *cfg, struct metrics *m, void **state, char *err,
			     size_t errlen)
{
	return bayes_thread_init_shared(cfg, m, NULL, state, err, errlen);
}

static void tokens_free_cb(void *t)
{
	bayes_tokens_free(t);
}

static void bayes_run(void *state, struct scan_ctx *ctx)
{
	struct bayes_thread *s = state;
	struct bayes_tokens *t = NULL;
	struct bayes_result r;
	int rc;

	if (!s || scan_ctx_refused(ctx))
		return;
	if ((rc = bayes_tokenize(scan_ctx_mime(ctx), &t)) < 0 ||
	    (rc = bayes_classify_tokens(s->b, t, &r)) < 0) {
		bayes_tokens_free(t);
		const char *why = rc == -EAGAIN ? store_last_error(s->st) : strerror(-rc);
		const char *qid = scan_ctx_request(ctx)->qid;

		log_warn("bayes", "qid=%s classification failed: %s", qid ? qid : "-", why);
		scan_ctx_symbol(ctx, "BAYES_UNAVAILABLE", 0, "%s", why);
		return;
	}
	/* the tokens stay with the verdict for autolearn (the session
	 * decides once the score is final) */
	if (s->autolearn)
		scan_ctx_learn(ctx, t, tokens_free_cb, r.verdict ? r.prob : -1);
	else
		bayes_tokens_free(t);
	if (!r.verdict)
		return;
	scan_ctx_symbol(ctx, r.symbol, r.prob >= BAYES_999_LO ? r.score - BAYES_999_SCORE : r.score,
			"p=%.4f tokens=%zu", r.prob, r.ntokens);
	if (r.prob >= BAYES_999_LO)
		scan_ctx_symbol(ctx, "BAYES_999", BAYES_999_SCORE, "p=%.4f tokens=%zu", r.prob,
				r.ntokens);
}

const struct scan_check bayes_check = {
    .name = "bayes",
    .shared_new = bayes_shared_new,
    .shared_free = bayes_shared_free,
    .thread_init = bayes_thread_init,
    .thread_init_shared = bayes_thread_init_shared,
    .thread_free = bayes_thread_free,
    .run = bayes_run,
};
