/* SPDX-License-Identifier: MIT */
#include "net/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int cidr_addr16(const struct sockaddr *sa, uint8_t out[16], bool *v4)
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, v4mapped, 12);
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*v4 = true;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		*v4 = memcmp(out, v4mapped, 12) == 0;
		return 0;
	}
	return -EAFNOSUPPORT;
}

static int cidr_parse_one(const char *tok, struct cidr *c)
{
	char addr[64];
	const char *slash = strchr(tok, '/');
	int64_t bits;

	if (str_copyn(addr, sizeof(addr), tok, slash ? (size_t)(slash - tok) : strlen(tok)) < 0)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
	} else {
		return -EINVAL;
	}
	if (slash) {
		if (parse_int64(slash + 1, 0, c->bits, &bits) < 0)
			return -EINVAL;
		c->bits = (unsigned)bits;
	}
	return 0;
}

int cidr_list_parse(const char *text, struct cidr_list *out)
{
	char tmp[2048], *save = NULL, *tok;

	out->n = 0;
	if (str_copy(tmp, sizeof(tmp), text) < 0)
		return -EINVAL;
	for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (out->n == CIDR_LIST_MAX)
			return -E2BIG;
		if (cidr_parse_one(tok, &out->nets[out->n]) < 0)
			return -EINVAL;
		out->n++;
	}
	return 0;
}

static int keys_from16(const uint8_t a[16], bool v4, char *ip, char *net)
{
	uint8_t m[16];

	memcpy(m, a, 16);
	if (v4) {
		if (!inet_ntop(AF_INET, a + 12, ip, 64))
			return -EINVAL;
		m[15] = 0;
		if (!inet_ntop(AF_INET, m + 12, net, 64))
			return -EINVAL;
		return str_fmt(net + strlen(net), 64 - strlen(net), "/24");
	}
	if (!inet_ntop(AF_INET6, a, ip, 64))
		return -EINVAL;
	memset(m + 8, 0, 8);
	if (!inet_ntop(AF_INET6, m, net, 64))
		return -EINVAL;
	return str_fmt(net + strlen(net), 64 - strlen(net), "/64");
}

int cidr_rep_keys(const struct sockaddr *sa, char *ip, char *net)
{
	uint8_t a[16];
	bool v4;

	if (cidr_addr16(sa, a, &v4) < 0)
		return -EINVAL;
	return keys_from16(a, v4, ip, net);
}

int cidr_rep_key_norm(const char *in, char *out)
{
	struct cidr c;
	uint8_t a[16] = {0};
	char ip[64], net[64];

	if (cidr_parse_one(in, &c) < 0)
		return -EINVAL;
	if (c.family == AF_INET) {
		a[10] = a[11] = 0xff;
		memcpy(a + 12, c.addr, 4);
	} else {
		memcpy(a, c.addr, 16);
	}
	if (keys_from16(a, c.family == AF_INET, ip, net) < 0)
		return -EINVAL;
	if (c.bits == (c.family == AF_INET ? 32u : 128u))
		return str_copy(out, 64, ip);
	if (c.bits == (c.family == AF_INET ? 24u : 64u))
		return str_copy(out, 64, net);
	return -EINVAL;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	uint8_t a[16];
	bool v4;

	if (cidr_addr16(sa, a, &v4) < 0)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const struct cidr *c = &l->nets[i];
		if (c->family == AF_INET && v4 && prefix_equal(a + 12, c->addr, c->bits))
			return true;
		if (c->family == AF_INET6 && prefix_equal(a, c->addr, c->bits))
			return true;
	}
	return false;
}
