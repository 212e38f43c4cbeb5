/* SPDX-License-Identifier: MIT */
#include "net/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "core/util.h"

#define V1_MAX 107 /* "PROXY TCP6 " + two IPv6 + two ports + CRLF */

static const uint8_t v2sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static int parse_port(const char *s, uint16_t *port)
{
	int64_t v;

	if (!*s || (s[0] == '0' && s[1]) || parse_int64(s, 0, 65535, &v) < 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct proxy_info *out, size_t *used)
{
	char line[V1_MAX + 1], *f[6], *save = NULL;
	const uint8_t *crlf = NULL;
	uint16_t sport, dport;
	size_t n, nf = 0;

	for (size_t i = 0; i + 1 < len && i < V1_MAX; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n') {
			crlf = buf + i;
			break;
		}
	if (!crlf)
		return len >= V1_MAX ? -EINVAL : 0;
	n = (size_t)(crlf - buf);
	memcpy(line, buf, n);
	line[n] = '\0';
	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (nf == 6)
			return -EINVAL;
		f[nf++] = t;
	}
	if (nf < 2 || strcmp(f[0], "PROXY") != 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	*used = n + 2;
	if (!strcmp(f[1], "UNKNOWN")) {
		out->family = AF_UNSPEC;
		return 1;
	}
	if (nf != 6 || parse_port(f[4], &sport) < 0 || parse_port(f[5], &dport) < 0)
		return -EINVAL;
	if (!strcmp(f[1], "TCP4")) {
		struct sockaddr_in *a = (struct sockaddr_in *)&out->src;
		struct in_addr d;
		if (inet_pton(AF_INET, f[2], &a->sin_addr) != 1 ||
		    inet_pton(AF_INET, f[3], &d) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons(sport);
		out->family = AF_INET;
		out->srclen = sizeof(*a);
		return 1;
	}
	if (!strcmp(f[1], "TCP6")) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->src;
		struct in6_addr d;
		if (inet_pton(AF_INET6, f[2], &a->sin6_addr) != 1 ||
		    inet_pton(AF_INET6, f[3], &d) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(sport);
		out->family = AF_INET6;
		out->srclen = sizeof(*a);
		return 1;
	}
	return -EINVAL;
}

static int parse_v2(const uint8_t *buf, size_t len, struct proxy_info *out, size_t *used)
{
	size_t blen;
	uint8_t ver_cmd, fam;

	if (len < 16)
		return 0;
	ver_cmd = buf[12];
	fam = buf[13];
	blen = ((size_t)buf[14] << 8) | buf[15];
	if ((ver_cmd >> 4) != 2 || 16 + blen > PROXY_HEADER_MAX)
		return -EINVAL;
	if (len < 16 + blen)
		return 0;
	memset(out, 0, sizeof(*out));
	*used = 16 + blen;
	switch (ver_cmd & 0x0f) {
	case 0: /* LOCAL: health checks from the balancer itself */
		out->family = AF_UNSPEC;
		return 1;
	case 1: /* PROXY */
		break;
	default:
		return -EINVAL;
	}
	switch (fam) {
	case 0x11: { /* TCP over IPv4 */
		struct sockaddr_in *a = (struct sockaddr_in *)&out->src;
		if (blen < 12)
			return -EINVAL;
		a->sin_family = AF_INET;
		memcpy(&a->sin_addr, buf + 16, 4);
		memcpy(&a->sin_port, buf + 24, 2);
		out->family = AF_INET;
		out->srclen = sizeof(*a);
		return 1;
	}
	case 0x21: { /* TCP over IPv6 */
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->src;
		if (blen < 36)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		memcpy(&a->sin6_addr, buf + 16, 16);
		memcpy(&a->sin6_port, buf + 48, 2);
		out->family = AF_INET6;
		out->srclen = sizeof(*a);
		return 1;
	}
	case 0x00: /* UNSPEC: keep the connection's address */
		out->family = AF_UNSPEC;
		return 1;
	default:
		return -EINVAL; /* UDP, unix sockets: not for SMTP */
	}
}

int proxy_parse(const uint8_t *buf, size_t len, struct proxy_info *out, size_t *used)
{
	size_t k = len < 12 ? len : 12;

	if (len == 0)
		return 0;
	if (memcmp(buf, v2sig, k) == 0)
		return len < 12 ? 0 : parse_v2(buf, len, out, used);
	if (memcmp(buf, "PROXY ", len < 6 ? len : 6) == 0)
		return len < 6 ? 0 : parse_v1(buf, len, out, used);
	return -EINVAL;
}
