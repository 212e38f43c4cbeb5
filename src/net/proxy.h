/* SPDX-License-Identifier: MIT */
/*
 * proxy: the PROXY protocol header that load balancers put in front of a
 * connection (HAProxy's proxy-protocol.txt, versions 1 and 2).
 *
 * proxy_parse() looks at the first bytes of a connection and answers
 * 1 (complete: *used bytes belong to the header, *out holds the original
 * client), 0 (need more bytes; never more than PROXY_HEADER_MAX), or
 * -EINVAL (not a valid header: close the connection). A "LOCAL" (v2) or
 * "UNKNOWN" (v1) header is valid and leaves out->family = AF_UNSPEC: the
 * connection's own peer address then stands. TLVs are skipped.
 */
#ifndef MXG_PROXY_H
#define MXG_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_HEADER_MAX 536 /* v2: 16 + the largest address block we accept */

struct proxy_info {
	int family; /* AF_INET, AF_INET6, or AF_UNSPEC for LOCAL/UNKNOWN */
	struct sockaddr_storage src;
	socklen_t srclen;
};

int proxy_parse(const uint8_t *buf, size_t len, struct proxy_info *out, size_t *used);

#endif
