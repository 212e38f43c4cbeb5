/* SPDX-License-Identifier: MIT */
/*
 * cidr: lists of IPv4/IPv6 networks ("192.0.2.0/24, 2001:db8::/32") and
 * membership tests for a client address. IPv4-mapped IPv6 addresses
 * (::ffff:192.0.2.1) match IPv4 networks. A bare address is a /32 or /128.
 */
#ifndef MXG_CIDR_H
#define MXG_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/util.h"

#define CIDR_LIST_MAX 64

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned bits;
};

struct cidr_list {
	struct cidr nets[CIDR_LIST_MAX];
	size_t n;
};

/* Parses a comma/space separated list; -EINVAL on a bad entry, -E2BIG if
 * there are more than CIDR_LIST_MAX. */
int cidr_list_parse(const char *text, struct cidr_list *out) MXG_WUR;
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* The address of sa as 16 bytes (IPv4 as ::ffff:a.b.c.d) and whether it is
 * IPv4; returns -EAFNOSUPPORT for other families. */
int cidr_addr16(const struct sockaddr *sa, uint8_t out[16], bool *v4) MXG_WUR;

/* The reputation keys of a client: its address ("192.0.2.7",
 * "2001:db8::1") and its network ("192.0.2.0/24", "2001:db8::/64"), in
 * canonical text. Buffers of at least 64 bytes. */
int cidr_rep_keys(const struct sockaddr *sa, char *ip, char *net) MXG_WUR;
/* Canonicalises an operator's key: an address, a /24 or a /64. -EINVAL for
 * anything else. */
int cidr_rep_key_norm(const char *in, char *out) MXG_WUR;

#endif
