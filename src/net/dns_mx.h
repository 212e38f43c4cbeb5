/* SPDX-License-Identifier: MIT */
/*
 * dns_mx: where to deliver mail for a domain (RFC 5321 section 5.1).
 *
 * Blocking look-ups on top of c-ares, for the delivery worker's threads:
 * each call makes its own c-ares channel, waits with poll() until the
 * answer or the time-out, and frees the channel, so calls from several
 * threads never share state. dns_mx_global_init() must run once, before
 * any thread is started.
 *
 * Results (every look-up answers OK, PERMFAIL or TEMPFAIL):
 *   DNS_OK        *n entries filled (at least one);
 *   DNS_PERMFAIL  the name does not exist (NXDOMAIN), a domain without MX
 *                 has no A/AAAA either, or it publishes a null MX
 *                 (RFC 7505): the mail cannot be delivered;
 *   DNS_TEMPFAIL  SERVFAIL, REFUSED, time-out, no server reachable, out
 *                 of memory: try again later;
 *   DNS_INVALID   the caller passed something malformed.
 * A domain with no MX record gets one implicit MX: the domain itself,
 * preference 0. MX hosts come back sorted by preference (ties shuffled).
 *
 * opts->server ("host:port", "[v6]:port") replaces the resolv.conf servers.
 */
#ifndef MXG_DNS_MX_H
#define MXG_DNS_MX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/util.h"

enum dns_rc {
	DNS_OK = 0,
	DNS_PERMFAIL = -1,
	DNS_TEMPFAIL = -2,
	DNS_INVALID = -3,
};

#define DNS_NAME_LEN 256
#define DNS_MAX_MX 16
#define DNS_MAX_ADDRS 8

struct dns_opts {
	const char *server; /* NULL or "": the system resolver configuration */
	int timeout_ms;	    /* whole look-up */
};

struct dns_mx {
	char host[DNS_NAME_LEN];
	uint16_t pref;
};

struct dns_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Process-wide c-ares initialisation (start-up only). */
int dns_mx_global_init(void) MXG_WUR;
void dns_mx_global_cleanup(void);

/* MX hosts of domain, best first. why gets a reason on failure. */
int dns_mx_lookup(const struct dns_opts *o, const char *domain, struct dns_mx *out, size_t max,
		  size_t *n, char *why, size_t whylen) MXG_WUR;
/* The IPv4 and IPv6 addresses of host (an IP literal is returned as is),
 * with port set. NXDOMAIN or no address at all is DNS_PERMFAIL. */
int dns_addr_lookup(const struct dns_opts *o, const char *host, uint16_t port, struct dns_addr *out,
		    size_t max, size_t *n, char *why, size_t whylen) MXG_WUR;

#endif
