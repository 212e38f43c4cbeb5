/* SPDX-License-Identifier: MIT */
/*
 * config: the node configuration file, parsed into an immutable struct.
 *
 * Format: INI-like. "[section]" lines, then "key = value" lines; "#" starts
 * a comment line. Every key is declared once in the table in config.c with
 * its type, default, minimum and maximum. An unknown section or key, a
 * duplicate key, or a value out of range is an error reported as
 * "file:line: reason" and the file is refused as a whole.
 *
 * Tenant settings (domains, mailboxes, routes) are not here: they live in
 * the store. A reload parses a new struct and swaps it whole.
 */
#ifndef MXG_CONFIG_H
#define MXG_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTEN 8
#define CONFIG_ADDR_LEN 300
#define CONFIG_MAX_DNSBL_ZONES 64 /* [dnsbl ZONE] sections */
#define CONFIG_MAX_DNSBL_CODES 16 /* codes = ... entries per zone */
#define CONFIG_DNSBL_ZONE_LEN 181 /* + 72 for the reversed IPv6 address */
#define CONFIG_SYMBOL_LEN 48	  /* [A-Z0-9_], a symbol on the message */
#define CONFIG_MAX_URIBL_ZONES 16 /* [uribl ZONE] sections (same keys as dnsbl) */

/* One return code of a DNS list (127.0.0.x) and the symbol it means. */
struct config_dnsbl_code {
	uint32_t code; /* the IPv4 answer, host byte order */
	char symbol[CONFIG_SYMBOL_LEN];
	bool has_weight; /* "127.0.0.2:SYM:4.5": its own weight */
	double weight;
};

/* A [dnsbl ZONE] section: a DNS blocklist, or an allowlist (allow = yes). */
struct config_dnsbl_zone {
	char zone[CONFIG_DNSBL_ZONE_LEN]; /* lower case, no trailing dot */
	double weight;			  /* default 1, or -1 for an allowlist */
	bool allow;			  /* a hit never lets the check reject */
	char symbol[CONFIG_SYMBOL_LEN];	  /* unmapped codes; default RBL_ZONE */
	char server[CONFIG_ADDR_LEN];	  /* "IP:port"; "": the [dns] servers */
	struct config_dnsbl_code codes[CONFIG_MAX_DNSBL_CODES];
	size_t ncodes;
	int line; /* of the section header, for messages */
};

struct config {
	char path[PATH_MAX];
	struct {
		char hostname[256];
		char user[64]; /* workers drop to it when started as root */
		char data_dir[PATH_MAX];
		char pid_file[PATH_MAX]; /* "": data_dir/mxguardd.pid */
	} node;
	struct {
		char url[PATH_MAX + 32]; /* sqlite:PATH or postgresql://... */
		int64_t busy_timeout;	 /* ms a writer waits for a lock */
		int64_t commit_batch;	 /* messages per group commit */
	} store;
	struct {
		char listen[CONFIG_MAX_LISTEN][CONFIG_ADDR_LEN];
		size_t nlisten;
		int64_t workers; /* 0: one per core */
		int64_t max_sessions;
		int64_t max_message_size;
		int64_t max_recipients;
		int64_t max_line_length;
		int64_t max_errors;
		int64_t max_commands;
		int64_t timeout_command;
		int64_t timeout_data;
		bool reject_bare_lf;
		char banner[256];
		char tls_cert[PATH_MAX]; /* PEM chain; empty: no STARTTLS */
		char tls_key[PATH_MAX];
		/* listeners behind a load balancer: a PROXY v1/v2 header first */
		char proxy_listen[CONFIG_MAX_LISTEN][CONFIG_ADDR_LEN];
		size_t nproxy_listen;
		char proxy_trusted[1024]; /* CIDRs allowed to send PROXY headers */
	} smtp;
	struct {
		int64_t per_ip_sessions;   /* concurrent sessions per client address */
		int64_t per_ip_rate;	   /* connections per minute per address */
		int64_t per_net_rate;	   /* connections per minute per /24 or /64 */
		int64_t command_rate;	   /* commands per second per session */
		int64_t greet_delay;	   /* ms to wait before the banner (pregreet) */
		char allow_networks[1024]; /* CIDRs exempt from these limits */
	} limits;
	struct {
		int64_t threads; /* scanning threads per SMTP worker */
		int64_t timeout; /* seconds a message may take to scan */
		/* SpamAssassin rule files/folders, comma separated; "": none */
		char sa_rules[4096];
	} scan;
	struct {
		char clamd[PATH_MAX];	   /* socket path or host:port; "": engine 1 off */
		int64_t clamd_timeout;	   /* ms per clamd operation */
		int64_t clamd_max_stream;  /* bytes; <= clamd's StreamMaxLength */
		char on_failure[16];	   /* "tempfail" or "pass" (with a symbol) */
		char yara_rules[PATH_MAX]; /* folder of *.yar; "": no YARA */
		char hash_lists[PATH_MAX]; /* folder of hash lists; "": none */
		bool block_executables;	   /* no: score only */
		bool block_macros;
		bool block_encrypted;
	} av;
	struct {
		bool enabled;
		int64_t half_life;	 /* seconds for a verdict count to halve */
		int64_t reject_spam;	 /* refuse an address with this many spam, no ham */
		int64_t reject_net_spam; /* same for its /24 or /64 */
	} reputation;
	struct {
		bool enabled;
		int64_t min_spam; /* learnt spam needed before a verdict */
		int64_t min_ham;  /* learnt ham needed before a verdict */
		bool autolearn;
		double autolearn_spam; /* score (without BAYES_*) that learns spam */
		double autolearn_ham;  /* score (without BAYES_*) that learns ham */
		int64_t cache_tokens;  /* token counts cached per scanning thread */
		int64_t cache_ttl;     /* s a cached count may lag the store */
		int64_t max_tokens;    /* expiry keeps at most this many tokens */
		int64_t memory;	       /* bytes for the shared token table; 0: none */
	} bayes;
	struct {
		bool enabled;
		int64_t expire;	     /* s: pairs not seen for this long are removed */
		int64_t max_domains; /* correspondents' domains compared per recipient */
		int64_t established; /* messages sent to an address that make it established */
	} relationships;
	struct {
		int64_t threads;
		int64_t per_destination;
		int64_t lifetime;
		int64_t lease;
		int64_t retry_min;
		int64_t retry_max;
		int64_t connect_timeout;
		int64_t timeout;
		int64_t batch;
		char relayhost[CONFIG_ADDR_LEN];
		char dns_server[CONFIG_ADDR_LEN];
	} delivery;
	struct {
		char listen[CONFIG_ADDR_LEN];
	} http;
	struct {
		/* ARC sealing (auth/arc): off unless all three are set; the
		 * authserv-id is node.hostname, as in Authentication-Results */
		char domain[256];   /* d= */
		char selector[64];  /* s= */
		char key[PATH_MAX]; /* PEM RSA private key (ARC is rsa-sha256) */
	} arc;
	struct {
		int64_t level;
	} log;
	struct {
		char servers[CONFIG_ADDR_LEN]; /* "IP:port, ..."; "": resolv.conf */
		int64_t timeout;	       /* ms per look-up */
		int64_t cache_size;	       /* entries per worker; 0: no cache */
		int64_t max_inflight;	       /* look-ups at the servers per worker */
		int64_t negative_ttl;	       /* s, negative answers without SOA */
		int64_t max_ttl;	       /* s, cap on every cached answer */
	} dns;
	struct {
		bool enabled;
		double reject_score; /* sum of weights that rejects at RCPT */
		int64_t budget;	     /* ms from connect; late zones are skipped */
		struct config_dnsbl_zone zones[CONFIG_MAX_DNSBL_ZONES];
		size_t nzones;
	} dnsbl;
	struct {
		bool enabled;
		int64_t budget;		  /* ms for all the look-ups of a message */
		int64_t max_domains;	  /* registrable domains asked per message */
		char allow_domains[1024]; /* never asked: "example.com, ..." */
		struct config_dnsbl_zone zones[CONFIG_MAX_URIBL_ZONES];
		size_t nzones;
	} uribl;
	struct {
		bool reports;		  /* send aggregate reports (rua) */
		char report_org[256];	  /* org_name; "": node.hostname */
		char report_from[320];	  /* From of the reports; "": dmarc-reports@hostname */
		int64_t report_hour;	  /* seconds after 00:00 UTC the daily job runs */
		int64_t report_retention; /* seconds rows are kept */
	} dmarc;
};

/* Fills every field with its default. */
void config_defaults(struct config *cfg);
/* Parses path over the defaults. On error returns a negative code and puts
 * "path:line: reason" into err. Relative paths in the file are resolved
 * against the current directory. */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Same, from a string (tests, fuzzing); name is used in messages. */
int config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
		 size_t errlen) __attribute__((warn_unused_result));

/* Parses a "codes" value ("127.0.0.2:SYM[:weight], ...") into z->codes.
 * Returns 0, or a negative code with a static reason in *why. Exposed for
 * the fuzzer (tests/fuzz/fuzz_dnsbl_codes.c). */
int config_dnsbl_codes_parse(const char *v, struct config_dnsbl_zone *z, const char **why)
    __attribute__((warn_unused_result));

/* The master's pid file: node.pid_file, or data_dir/mxguardd.pid. */
int config_pid_file(const struct config *cfg, char *buf, size_t len)
    __attribute__((warn_unused_result));

/* The SQLite path of a sqlite: URL, or NULL for other backends. */
const char *config_sqlite_path(const struct config *cfg);

#endif
