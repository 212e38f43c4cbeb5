/* SPDX-License-Identifier: MIT */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

enum cfg_type {
	CFG_INT,      /* plain integer */
	CFG_SIZE,     /* bytes with k/M/G suffix */
	CFG_DURATION, /* seconds with s/m/h/d/w suffix */
	CFG_BOOL,     /* yes/no/true/false/on/off */
	CFG_STRING,
	CFG_ADDR,	 /* host:port */
	CFG_ADDR_LIST,	 /* comma separated host:port */
	CFG_LEVEL,	 /* error/warn/info/debug */
	CFG_PATH,	 /* made absolute */
	CFG_URL,	 /* store url: sqlite:path made absolute */
	CFG_CIDR_LIST,	 /* comma separated addr/prefix */
	CFG_MSEC,	 /* milliseconds: 500ms, or s/m/h/d/w as for durations */
	CFG_SCORE,	 /* a decimal score: 5, -2.5 (stored as double) */
	CFG_SERVER_LIST, /* comma separated IP:port (name servers) */
	CFG_CHOICE,	 /* one of the words in choices ("a|b") */
	CFG_SOCKET,	 /* "": off; /absolute/socket/path or host:port */
	CFG_CLOCK,	 /* a time of day "HH:MM" (UTC), stored as seconds after 00:00 */
};

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	size_t offset;
	size_t size; /* for strings: buffer size */
	const char *def;
	int64_t min, max;
	const char *choices; /* CFG_CHOICE: "word|word" */
};

#define CHOICE(sec, k, f, d, words)                                                                \
	{                                                                                          \
		sec, k, CFG_CHOICE, OFF(f), SZ(f), d, 0, 0, words                                  \
	}
#define OFF(f) offsetof(struct config, f)
#define SZ(f) sizeof(((struct config *)0)->f)
#define NUM(sec, k, t, f, d, lo, hi)                                                               \
	{                                                                                          \
		sec, k, t, OFF(f), 0, d, lo, hi                                                    \
	}
#define STR(sec, k, t, f, d)                                                                       \
	{                                                                                          \
		sec, k, t, OFF(f), SZ(f), d, 0, 0                                                  \
	}

/* The one table of every knob: its default and its bounds. */
static const struct cfg_key cfg_keys[] = {
    STR("node", "hostname", CFG_STRING, node.hostname, ""),
    STR("node", "user", CFG_STRING, node.user, "mxguard"),
    STR("node", "data_dir", CFG_PATH, node.data_dir, "var"),
    STR("node", "pid_file", CFG_PATH, node.pid_file, ""),
    STR("store", "url", CFG_URL, store.url, "sqlite:var/mxguard.db"),
    NUM("store", "busy_timeout", CFG_INT, store.busy_timeout, "5000", 100, 600000),
    NUM("store", "commit_batch", CFG_INT, store.commit_batch, "64", 1, 4096),
    {"smtp", "listen", CFG_ADDR_LIST, OFF(smtp.listen), OFF(smtp.nlisten), "127.0.0.1:2525", 1, 0},
    NUM("smtp", "workers", CFG_INT, smtp.workers, "0", 0, 256),
    NUM("smtp", "max_sessions", CFG_INT, smtp.max_sessions, "1000", 1, 1000000),
    NUM("smtp", "max_message_size", CFG_SIZE, smtp.max_message_size, "25M", 1024,
	1024LL * 1024 * 1024),
    NUM("smtp", "max_recipients", CFG_INT, smtp.max_recipients, "100", 1, 10000),
    NUM("smtp", "max_line_length", CFG_INT, smtp.max_line_length, "2048", 512, 65536),
    NUM("smtp", "max_errors", CFG_INT, smtp.max_errors, "20", 1, 1000),
    NUM("smtp", "max_commands", CFG_INT, smtp.max_commands, "10000", 10, 10000000),
    NUM("smtp", "timeout_command", CFG_DURATION, smtp.timeout_command, "5m", 1, 3600),
    NUM("smtp", "timeout_data", CFG_DURATION, smtp.timeout_data, "10m", 1, 7200),
    NUM("smtp", "reject_bare_lf", CFG_BOOL, smtp.reject_bare_lf, "yes", 0, 1),
    STR("smtp", "banner", CFG_STRING, smtp.banner, "ESMTP mxguard"),
    STR("smtp", "tls_cert", CFG_PATH, smtp.tls_cert, ""),
    STR("smtp", "tls_key", CFG_PATH, smtp.tls_key, ""),
    {"smtp", "proxy_listen", CFG_ADDR_LIST, OFF(smtp.proxy_listen), OFF(smtp.nproxy_listen), "", 0,
     0},
    STR("smtp", "proxy_trusted", CFG_CIDR_LIST, smtp.proxy_trusted, ""),
    NUM("limits", "per_ip_sessions", CFG_INT, limits.per_ip_sessions, "20", 1, 100000),
    NUM("limits", "per_ip_rate", CFG_INT, limits.per_ip_rate, "120", 1, 1000000),
    NUM("limits", "per_net_rate", CFG_INT, limits.per_net_rate, "600", 1, 10000000),
    NUM("limits", "command_rate", CFG_INT, limits.command_rate, "200", 1, 1000000),
    NUM("limits", "greet_delay", CFG_INT, limits.greet_delay, "0", 0, 30000),
    STR("limits", "allow_networks", CFG_CIDR_LIST, limits.allow_networks, ""),
    NUM("scan", "threads", CFG_INT, scan.threads, "2", 1, 64),
    NUM("scan", "timeout", CFG_DURATION, scan.timeout, "60s", 1, 3600),
    STR("scan", "sa_rules", CFG_STRING, scan.sa_rules, "/usr/share/spamassassin"),
    STR("av", "clamd", CFG_SOCKET, av.clamd, ""),
    NUM("av", "clamd_timeout", CFG_MSEC, av.clamd_timeout, "10s", 100, 600000),
    NUM("av", "clamd_max_stream", CFG_SIZE, av.clamd_max_stream, "25M", 1024,
	4LL * 1024 * 1024 * 1024 - 1),
    CHOICE("av", "on_failure", av.on_failure, "tempfail", "tempfail|pass"),
    STR("av", "yara_rules", CFG_PATH, av.yara_rules, "rules/yara"),
    STR("av", "hash_lists", CFG_PATH, av.hash_lists, "rules/hashes"),
    NUM("av", "block_executables", CFG_BOOL, av.block_executables, "yes", 0, 1),
    NUM("av", "block_macros", CFG_BOOL, av.block_macros, "no", 0, 1),
    NUM("av", "block_encrypted", CFG_BOOL, av.block_encrypted, "no", 0, 1),
    NUM("reputation", "enabled", CFG_BOOL, reputation.enabled, "yes", 0, 1),
    NUM("reputation", "half_life", CFG_DURATION, reputation.half_life, "7d", 3600, 365 * 86400),
    NUM("reputation", "reject_spam", CFG_INT, reputation.reject_spam, "20", 1, 1000000),
    NUM("reputation", "reject_net_spam", CFG_INT, reputation.reject_net_spam, "100", 1, 10000000),
    NUM("bayes", "enabled", CFG_BOOL, bayes.enabled, "yes", 0, 1),
    NUM("bayes", "min_spam", CFG_INT, bayes.min_spam, "200", 1, 1000000),
    NUM("bayes", "min_ham", CFG_INT, bayes.min_ham, "200", 1, 1000000),
    NUM("bayes", "autolearn", CFG_BOOL, bayes.autolearn, "yes", 0, 1),
    NUM("bayes", "autolearn_spam", CFG_SCORE, bayes.autolearn_spam, "12", -1000, 1000),
    NUM("bayes", "autolearn_ham", CFG_SCORE, bayes.autolearn_ham, "0.1", -1000, 1000),
    NUM("bayes", "cache_tokens", CFG_INT, bayes.cache_tokens, "200000", 0, 50000000),
    NUM("bayes", "cache_ttl", CFG_DURATION, bayes.cache_ttl, "60s", 0, 86400),
    NUM("bayes", "max_tokens", CFG_INT, bayes.max_tokens, "2000000", 10000, 1000000000),
    NUM("bayes", "memory", CFG_SIZE, bayes.memory, "256M", 0, 64LL * 1024 * 1024 * 1024),
    NUM("relationships", "enabled", CFG_BOOL, relationships.enabled, "yes", 0, 1),
    NUM("relationships", "expire", CFG_DURATION, relationships.expire, "365d", 7 * 86400,
	10 * 365 * 86400LL),
    NUM("relationships", "max_domains", CFG_INT, relationships.max_domains, "500", 10, 5000),
    NUM("relationships", "established", CFG_INT, relationships.established, "2", 1, 1000),
    NUM("delivery", "threads", CFG_INT, delivery.threads, "32", 1, 1024),
    NUM("delivery", "per_destination", CFG_INT, delivery.per_destination, "10", 1, 1024),
    NUM("delivery", "lifetime", CFG_DURATION, delivery.lifetime, "5d", 60, 60 * 86400),
    NUM("delivery", "lease", CFG_DURATION, delivery.lease, "10m", 10, 86400),
    NUM("delivery", "retry_min", CFG_DURATION, delivery.retry_min, "1m", 1, 86400),
    NUM("delivery", "retry_max", CFG_DURATION, delivery.retry_max, "1h", 1, 7 * 86400),
    NUM("delivery", "connect_timeout", CFG_DURATION, delivery.connect_timeout, "30s", 1, 600),
    NUM("delivery", "timeout", CFG_DURATION, delivery.timeout, "5m", 1, 3600),
    NUM("delivery", "batch", CFG_INT, delivery.batch, "200", 1, 10000),
    STR("delivery", "relayhost", CFG_STRING, delivery.relayhost, ""),
    STR("delivery", "dns_server", CFG_STRING, delivery.dns_server, ""),
    STR("http", "listen", CFG_ADDR, http.listen, "127.0.0.1:8025"),
    STR("arc", "domain", CFG_STRING, arc.domain, ""),
    STR("arc", "selector", CFG_STRING, arc.selector, ""),
    STR("arc", "key", CFG_PATH, arc.key, ""),
    NUM("log", "level", CFG_LEVEL, log.level, "info", 0, 3),
    STR("dns", "servers", CFG_SERVER_LIST, dns.servers, ""),
    NUM("dns", "timeout", CFG_MSEC, dns.timeout, "2s", 100, 30000),
    NUM("dns", "cache_size", CFG_INT, dns.cache_size, "10000", 0, 1000000),
    NUM("dns", "max_inflight", CFG_INT, dns.max_inflight, "1000", 1, 100000),
    NUM("dns", "negative_ttl", CFG_DURATION, dns.negative_ttl, "60s", 0, 86400),
    NUM("dns", "max_ttl", CFG_DURATION, dns.max_ttl, "1d", 0, 7 * 86400),
    NUM("dnsbl", "enabled", CFG_BOOL, dnsbl.enabled, "yes", 0, 1),
    NUM("dnsbl", "reject_score", CFG_SCORE, dnsbl.reject_score, "5", 0, 100000),
    NUM("dnsbl", "budget", CFG_MSEC, dnsbl.budget, "2s", 100, 30000),
    NUM("uribl", "enabled", CFG_BOOL, uribl.enabled, "yes", 0, 1),
    NUM("uribl", "budget", CFG_MSEC, uribl.budget, "2s", 100, 30000),
    NUM("uribl", "max_domains", CFG_INT, uribl.max_domains, "20", 1, 200),
    STR("uribl", "allow_domains", CFG_STRING, uribl.allow_domains, ""),
    NUM("dmarc", "reports", CFG_BOOL, dmarc.reports, "off", 0, 1),
    STR("dmarc", "report_org", CFG_STRING, dmarc.report_org, ""),
    STR("dmarc", "report_from", CFG_STRING, dmarc.report_from, ""),
    NUM("dmarc", "report_hour", CFG_CLOCK, dmarc.report_hour, "00:30", 0, 86399),
    NUM("dmarc", "report_retention", CFG_DURATION, dmarc.report_retention, "14d", 86400,
	366 * 86400),
};

static int make_absolute(char *dst, size_t dstlen, const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || path[0] == '\0')
		return str_copy(dst, dstlen, path);
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	return str_fmt(dst, dstlen, "%s/%s", cwd, path);
}

/* "addr" or "addr/prefix", IPv4 or IPv6. */
static int cidr_check(const char *v)
{
	char addr[64];
	const char *slash = strchr(v, '/');
	unsigned char tmp[16];
	int64_t bits, max;

	if (str_copyn(addr, sizeof(addr), v, slash ? (size_t)(slash - v) : strlen(v)) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, addr, tmp) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, addr, tmp) == 1)
		max = 128;
	else
		return -EINVAL;
	if (slash && parse_int64(slash + 1, 0, max, &bits) < 0)
		return -EINVAL;
	return 0;
}

static int check_addr(const char *v)
{
	char host[256];
	uint16_t port;

	return parse_hostport(v, host, sizeof(host), &port);
}

/* "500ms" or a duration ("2s", "1m") -> milliseconds. */
static int parse_msec(const char *v, int64_t *out)
{
	size_t n = strlen(v);
	char num[32];
	int64_t x;

	if (n > 2 && !strcmp(v + n - 2, "ms")) {
		if (str_copyn(num, sizeof(num), v, n - 2) < 0 ||
		    parse_int64(num, 0, INT64_MAX / 2, out) < 0)
			return -EINVAL;
		return 0;
	}
	if (parse_duration(v, &x) < 0 || x > INT64_MAX / 2000)
		return -EINVAL;
	*out = x * 1000;
	return 0;
}

/* A decimal score: an optional sign, digits, an optional fraction of at
 * most 6 digits. No exponent, no inf/nan, no locale. */
static int parse_score(const char *v, double *out)
{
	const char *p = v;
	double x = 0, scale = 1;
	int digits = 0, frac = 0;
	bool neg = false;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	for (; *p >= '0' && *p <= '9'; p++, digits++)
		if (digits < 9)
			x = x * 10 + (*p - '0');
		else
			return -ERANGE;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, frac++) {
			if (frac == 6)
				return -EINVAL;
			scale /= 10;
			x += (*p - '0') * scale;
		}
		if (frac == 0)
			return -EINVAL;
	}
	if (*p || digits == 0)
		return -EINVAL;
	*out = neg ? -x : x;
	return 0;
}

/* Name servers: IP literals with a port (no names: resolving the resolver
 * would need a resolver). */
static int check_server_list(const char *v)
{
	char tmp[CONFIG_ADDR_LEN], *save = NULL, *tok;
	int n = 0;

	if (str_copy(tmp, sizeof(tmp), v) < 0)
		return -EINVAL;
	for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char host[64];
		unsigned char bin[16];
		uint16_t port;

		if (++n > 8 || parse_hostport(tok, host, sizeof(host), &port) < 0 ||
		    (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1))
			return -EINVAL;
	}
	return 0;
}

/* Stores value v for key k; returns NULL or a static reason. */
static const char *cfg_set(struct config *cfg, const struct cfg_key *k, const char *v)
{
	char *base = (char *)cfg;
	int64_t n = 0;

	switch (k->type) {
	case CFG_INT:
		if (parse_int64(v, INT64_MIN, INT64_MAX, &n) < 0)
			return "not an integer";
		break;
	case CFG_SIZE:
		if (parse_size(v, &n) < 0)
			return "not a size (e.g. 512k, 25M, 1G)";
		break;
	case CFG_DURATION:
		if (parse_duration(v, &n) < 0)
			return "not a duration (e.g. 30s, 5m, 2h, 5d)";
		break;
	case CFG_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on"))
			n = 1;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off"))
			n = 0;
		else
			return "not a boolean (yes or no)";
		*(bool *)(base + k->offset) = n != 0;
		return NULL;
	case CFG_LEVEL:
		if (!strcmp(v, "error"))
			n = LOG_ERR;
		else if (!strcmp(v, "warn"))
			n = LOG_WARN;
		else if (!strcmp(v, "info"))
			n = LOG_INFO;
		else if (!strcmp(v, "debug"))
			n = LOG_DEBUG;
		else
			return "not a log level (error, warn, info, debug)";
		break;
	case CFG_ADDR:
		if (check_addr(v) < 0)
			return "not host:port";
		FALLTHROUGH;
	case CFG_STRING:
		if (str_copy(base + k->offset, k->size, v) < 0)
			return "value too long";
		return NULL;
	case CFG_PATH:
		if (make_absolute(base + k->offset, k->size, v) < 0)
			return "path too long";
		return NULL;
	case CFG_MSEC:
		if (parse_msec(v, &n) < 0)
			return "not a duration (e.g. 500ms, 2s, 1m)";
		break;
	case CFG_SCORE: {
		double d;
		if (parse_score(v, &d) < 0)
			return "not a score (e.g. 5, -2.5)";
		if (d < (double)k->min || d > (double)k->max)
			return "value out of range";
		*(double *)(base + k->offset) = d;
		return NULL;
	}
	case CFG_SERVER_LIST:
		if (check_server_list(v) < 0)
			return "not a list of IP:port (at most 8)";
		if (str_copy(base + k->offset, k->size, v) < 0)
			return "value too long";
		return NULL;
	case CFG_CHOICE: {
		const char *w = k->choices;
		size_t vl = strlen(v);
		for (;;) {
			const char *bar = strchr(w, '|');
			size_t wl = bar ? (size_t)(bar - w) : strlen(w);
			if (wl == vl && !strncmp(w, v, vl))
				break;
			if (!bar)
				return "not an allowed value";
			w = bar + 1;
		}
		return str_copy(base + k->offset, k->size, v) < 0 ? "value too long" : NULL;
	}
	case CFG_CLOCK:
		if (strlen(v) != 5 || v[2] != ':' || !isdigit((unsigned char)v[0]) ||
		    !isdigit((unsigned char)v[1]) || !isdigit((unsigned char)v[3]) ||
		    !isdigit((unsigned char)v[4]) || (v[0] - '0') * 10 + (v[1] - '0') > 23 ||
		    v[3] > '5')
			return "not a time of day (HH:MM, UTC)";
		n = ((v[0] - '0') * 10 + (v[1] - '0')) * 3600 +
		    ((v[3] - '0') * 10 + (v[4] - '0')) * 60;
		break;
	case CFG_SOCKET:
		if (v[0] && v[0] != '/' && check_addr(v) < 0)
			return "not an absolute socket path or host:port";
		return str_copy(base + k->offset, k->size, v) < 0 ? "value too long" : NULL;
	case CFG_CIDR_LIST: {
		char tmp[1024], *save = NULL, *tok;
		if (str_copy(tmp, sizeof(tmp), v) < 0)
			return "value too long";
		for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
			if (cidr_check(tok) < 0)
				return "not a network (e.g. 192.0.2.0/24, 2001:db8::/32)";
		if (str_copy(base + k->offset, k->size, v) < 0)
			return "value too long";
		return NULL;
	}
	case CFG_URL:
		if (!strncmp(v, "sqlite:", 7)) {
			char abs[PATH_MAX];
			if (!v[7])
				return "sqlite: needs a path";
			if (make_absolute(abs, sizeof(abs), v + 7) < 0 ||
			    str_fmt(base + k->offset, k->size, "sqlite:%s", abs) < 0)
				return "path too long";
			return NULL;
		}
		if (!strncmp(v, "postgresql://", 13) || !strncmp(v, "postgres://", 11)) {
			if (str_copy(base + k->offset, k->size, v) < 0)
				return "value too long";
			return NULL;
		}
		return "store url must start with sqlite: or postgresql://";
	case CFG_ADDR_LIST: {
		/* size holds the offset of the count; min is the fewest allowed */
		char tmp[CONFIG_MAX_LISTEN * CONFIG_ADDR_LEN], *save = NULL, *tok;
		char(*list)[CONFIG_ADDR_LEN] = (char(*)[CONFIG_ADDR_LEN])(base + k->offset);
		size_t *count = (size_t *)(base + k->size);
		if (str_copy(tmp, sizeof(tmp), v) < 0)
			return "value too long";
		*count = 0;
		for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
			if (*count == CONFIG_MAX_LISTEN)
				return "too many addresses";
			if (check_addr(tok) < 0)
				return "not host:port";
			if (str_copy(list[(*count)++], CONFIG_ADDR_LEN, tok) < 0)
				return "address too long";
		}
		if ((int64_t)*count < k->min)
			return "needs at least one address";
		return NULL;
	}
	}
	if (n < k->min || n > k->max)
		return "value out of range";
	*(int64_t *)(base + k->offset) = n;
	return NULL;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < ARRAY_LEN(cfg_keys); i++) {
		const char *why = cfg_set(cfg, &cfg_keys[i], cfg_keys[i].def);
		if (why)
			fatal("config default %s.%s: %s", cfg_keys[i].section, cfg_keys[i].key,
			      why);
	}
	if (gethostname(cfg->node.hostname, sizeof(cfg->node.hostname)) < 0 ||
	    !cfg->node.hostname[0])
		(void)str_copy(cfg->node.hostname, sizeof(cfg->node.hostname), "localhost");
	cfg->node.hostname[sizeof(cfg->node.hostname) - 1] = '\0';
}

/* ---- [dnsbl ZONE] sections ---------------------------------------------- */

enum {
	ZK_WEIGHT = 1 << 0,
	ZK_CODES = 1 << 1,
	ZK_ALLOW = 1 << 2,
	ZK_SYMBOL = 1 << 3,
	ZK_SERVER = 1 << 4,
};

static const struct {
	const char *key;
	unsigned bit;
} zone_keys[] = {
    {"weight", ZK_WEIGHT}, {"codes", ZK_CODES},	  {"allow", ZK_ALLOW},
    {"symbol", ZK_SYMBOL}, {"server", ZK_SERVER},
};

#define ZONE_WEIGHT_MAX 1000.0

static bool symbol_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n > 0 && n < CONFIG_SYMBOL_LEN;
}

/* A DNS zone name: letters, digits, '-' and '_', labels of 1..63, at
 * least two labels; made lower case, a trailing dot dropped. */
static int zone_name_check(char *z)
{
	size_t n = strlen(z), label = 0, labels = 1;

	if (n && z[n - 1] == '.')
		z[--n] = '\0';
	if (n == 0 || n >= CONFIG_DNSBL_ZONE_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = z[i];
		if (c >= 'A' && c <= 'Z')
			z[i] = (char)(c + 32);
		else if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
			labels++;
			continue;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			     c == '_'))
			return -EINVAL;
		if (++label > 63)
			return -EINVAL;
	}
	return label > 0 && labels >= 2 ? 0 : -EINVAL;
}

int config_dnsbl_codes_parse(const char *v, struct config_dnsbl_zone *z, const char **why)
{
	char tmp[CONFIG_MAX_DNSBL_CODES * 80], *save = NULL, *tok;

	z->ncodes = 0;
	if (str_copy(tmp, sizeof(tmp), v) < 0) {
		*why = "value too long";
		return -EINVAL;
	}
	for (tok = strtok_r(tmp, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct config_dnsbl_code *c;
		char *sym = strchr(tok, ':'), *w;
		struct in_addr a;

		if (!sym) {
			*why = "want CODE:SYMBOL[:WEIGHT], e.g. 127.0.0.2:ZEN_SBL";
			return -EINVAL;
		}
		*sym++ = '\0';
		w = strchr(sym, ':');
		if (w)
			*w++ = '\0';
		if (inet_pton(AF_INET, tok, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
			*why = "a return code is an address in 127.0.0.0/8";
			return -EINVAL;
		}
		if (!symbol_valid(sym)) {
			*why = "a symbol is 1 to 47 of A-Z, 0-9 and _";
			return -EINVAL;
		}
		for (size_t i = 0; i < z->ncodes; i++)
			if (z->codes[i].code == ntohl(a.s_addr)) {
				*why = "duplicate return code";
				return -EINVAL;
			}
		if (z->ncodes == CONFIG_MAX_DNSBL_CODES) {
			*why = "too many return codes (at most 16)";
			return -EINVAL;
		}
		c = &z->codes[z->ncodes];
		memset(c, 0, sizeof(*c));
		c->code = ntohl(a.s_addr);
		(void)str_copy(c->symbol, sizeof(c->symbol), sym);
		if (w) {
			if (parse_score(w, &c->weight) < 0 || c->weight < -ZONE_WEIGHT_MAX ||
			    c->weight > ZONE_WEIGHT_MAX) {
				*why = "a weight is a number from -1000 to 1000";
				return -EINVAL;
			}
			c->has_weight = true;
		}
		z->ncodes++;
	}
	if (z->ncodes == 0) {
		*why = "needs at least one CODE:SYMBOL";
		return -EINVAL;
	}
	return 0;
}

/* Opens [dnsbl NAME] or [uribl NAME] (kind): returns NULL or a static
 * reason. */
static const char *zone_open(struct config *cfg, const char *kind, char *name, int line,
			     struct config_dnsbl_zone **out)
{
	bool uribl = !strcmp(kind, "uribl");
	struct config_dnsbl_zone *zones = uribl ? cfg->uribl.zones : cfg->dnsbl.zones, *z;
	size_t *nzones = uribl ? &cfg->uribl.nzones : &cfg->dnsbl.nzones;
	size_t o = 0;

	if (zone_name_check(name) < 0)
		return "not a DNS zone name";
	for (size_t i = 0; i < *nzones; i++)
		if (!strcmp(zones[i].zone, name))
			return "duplicate zone";
	if (*nzones == (uribl ? CONFIG_MAX_URIBL_ZONES : CONFIG_MAX_DNSBL_ZONES))
		return uribl ? "too many zones (at most 16)" : "too many zones (at most 64)";
	z = &zones[(*nzones)++];
	memset(z, 0, sizeof(*z));
	(void)str_copy(z->zone, sizeof(z->zone), name);
	z->weight = 1;
	z->line = line;
	o = (size_t)snprintf(z->symbol, sizeof(z->symbol), uribl ? "URIBL_" : "RBL_");
	for (const char *p = name; *p && o < sizeof(z->symbol) - 1; p++)
		z->symbol[o++] = (*p >= 'a' && *p <= 'z')   ? (char)(*p - 32)
				 : (*p >= '0' && *p <= '9') ? *p
							    : '_';
	z->symbol[o] = '\0';
	*out = z;
	return NULL;
}

static const char *zone_set(struct config_dnsbl_zone *z, unsigned bit, const char *v)
{
	const char *why = NULL;

	switch (bit) {
	case ZK_WEIGHT:
		if (parse_score(v, &z->weight) < 0 || z->weight < -ZONE_WEIGHT_MAX ||
		    z->weight > ZONE_WEIGHT_MAX)
			return "not a weight (a number from -1000 to 1000)";
		return NULL;
	case ZK_CODES:
		return config_dnsbl_codes_parse(v, z, &why) < 0 ? why : NULL;
	case ZK_ALLOW:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on"))
			z->allow = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off"))
			z->allow = false;
		else
			return "not a boolean (yes or no)";
		return NULL;
	case ZK_SYMBOL:
		if (!symbol_valid(v))
			return "a symbol is 1 to 47 of A-Z, 0-9 and _";
		(void)str_copy(z->symbol, sizeof(z->symbol), v);
		return NULL;
	case ZK_SERVER:
		if (!*v || strchr(v, ',') || check_server_list(v) < 0)
			return "not IP:port";
		return str_copy(z->server, sizeof(z->server), v) < 0 ? "value too long" : NULL;
	}
	return "unknown key";
}

/* The end of a zone section: what depends on several keys. */
static const char *zone_close(struct config_dnsbl_zone *z, unsigned seen)
{
	if (z->allow && !(seen & ZK_WEIGHT))
		z->weight = -1;
	if (z->allow && z->weight > 0)
		return "an allowlist (allow = yes) needs weight <= 0";
	for (size_t i = 0; i < z->ncodes; i++)
		if (z->allow && z->codes[i].has_weight && z->codes[i].weight > 0)
			return "an allowlist (allow = yes) needs code weights <= 0";
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
		 size_t errlen)
{
	char section[64] = "";
	bool seen[ARRAY_LEN(cfg_keys)] = {false};
	struct config_dnsbl_zone *zone = NULL; /* inside [dnsbl ZONE] or [uribl ZONE] */
	const char *zkind = "dnsbl";
	unsigned zone_seen = 0;
	size_t pos = 0;
	int lineno = 0;

	while (pos < len) {
		char line[4096], *l, *eq, *key, *val;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		const struct cfg_key *k = NULL;
		const char *why;
		size_t i;

		lineno++;
		if (n >= sizeof(line)) {
			(void)str_fmt(err, errlen, "%s:%d: line too long", name, lineno);
			return -EINVAL;
		}
		if (memchr(text + pos, '\0', n)) {
			(void)str_fmt(err, errlen, "%s:%d: NUL byte", name, lineno);
			return -EINVAL;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		l = trim(line);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');
			if (!e || e[1]) {
				(void)str_fmt(err, errlen, "%s:%d: malformed section header", name,
					      lineno);
				return -EINVAL;
			}
			*e = '\0';
			if (zone && (why = zone_close(zone, zone_seen))) {
				(void)str_fmt(err, errlen, "%s:%d: [%s %s]: %s", name, zone->line,
					      zkind, zone->zone, why);
				return -EINVAL;
			}
			zone = NULL;
			if ((!strncmp(l + 1, "dnsbl", 5) || !strncmp(l + 1, "uribl", 5)) &&
			    isspace((unsigned char)l[6])) {
				char *zn = trim(l + 6);
				zkind = l[1] == 'u' ? "uribl" : "dnsbl";
				why = zone_open(cfg, zkind, zn, lineno, &zone);
				if (why) {
					(void)str_fmt(err, errlen, "%s:%d: [%s %.64s]: %s", name,
						      lineno, zkind, zn, why);
					return -EINVAL;
				}
				zone_seen = 0;
				(void)str_copy(section, sizeof(section), "dnsbl zone");
				continue;
			}
			for (i = 0; i < ARRAY_LEN(cfg_keys); i++)
				if (!strcmp(cfg_keys[i].section, l + 1))
					break;
			if (i == ARRAY_LEN(cfg_keys)) {
				(void)str_fmt(err, errlen, "%s:%d: unknown section [%.64s]", name,
					      lineno, l + 1);
				return -EINVAL;
			}
			(void)str_copy(section, sizeof(section), l + 1);
			continue;
		}
		eq = strchr(l, '=');
		if (!eq) {
			(void)str_fmt(err, errlen, "%s:%d: expected key = value", name, lineno);
			return -EINVAL;
		}
		*eq = '\0';
		key = trim(l);
		val = trim(eq + 1);
		if (!section[0]) {
			(void)str_fmt(err, errlen, "%s:%d: key '%.64s' outside of a [section]",
				      name, lineno, key);
			return -EINVAL;
		}
		if (zone) {
			unsigned bit = 0;
			for (i = 0; i < ARRAY_LEN(zone_keys); i++)
				if (!strcmp(zone_keys[i].key, key))
					bit = zone_keys[i].bit;
			if (!bit) {
				(void)str_fmt(err, errlen, "%s:%d: unknown key '%.64s' in [%s %s]",
					      name, lineno, key, zkind, zone->zone);
				return -EINVAL;
			}
			if (zone_seen & bit) {
				(void)str_fmt(err, errlen, "%s:%d: duplicate key '%s' in [%s %s]",
					      name, lineno, key, zkind, zone->zone);
				return -EINVAL;
			}
			zone_seen |= bit;
			why = zone_set(zone, bit, val);
			if (why) {
				(void)str_fmt(err, errlen, "%s:%d: [%s %s] %s = '%.64s': %s", name,
					      lineno, zkind, zone->zone, key, val, why);
				return -EINVAL;
			}
			continue;
		}
		for (i = 0; i < ARRAY_LEN(cfg_keys); i++) {
			if (!strcmp(cfg_keys[i].section, section) &&
			    !strcmp(cfg_keys[i].key, key)) {
				k = &cfg_keys[i];
				break;
			}
		}
		if (!k) {
			(void)str_fmt(err, errlen, "%s:%d: unknown key '%.64s' in [%s]", name,
				      lineno, key, section);
			return -EINVAL;
		}
		if (seen[i]) {
			(void)str_fmt(err, errlen, "%s:%d: duplicate key '%s.%s'", name, lineno,
				      section, key);
			return -EINVAL;
		}
		seen[i] = true;
		why = cfg_set(cfg, k, val);
		if (why) {
			if (k->type == CFG_INT || k->type == CFG_SIZE || k->type == CFG_DURATION ||
			    k->type == CFG_MSEC || k->type == CFG_SCORE)
				(void)str_fmt(err, errlen,
					      "%s:%d: %s.%s = '%.64s': %s (allowed %lld..%lld)",
					      name, lineno, section, key, val, why,
					      (long long)k->min, (long long)k->max);
			else if (k->type == CFG_CHOICE)
				(void)str_fmt(err, errlen, "%s:%d: %s.%s = '%.64s': %s (%s)", name,
					      lineno, section, key, val, why, k->choices);
			else
				(void)str_fmt(err, errlen, "%s:%d: %s.%s = '%.64s': %s", name,
					      lineno, section, key, val, why);
			return -EINVAL;
		}
	}
	if (zone) {
		const char *why = zone_close(zone, zone_seen);
		if (why) {
			(void)str_fmt(err, errlen, "%s:%d: [%s %s]: %s", name, zone->line, zkind,
				      zone->zone, why);
			return -EINVAL;
		}
	}
	if (!cfg->smtp.tls_cert[0] != !cfg->smtp.tls_key[0]) {
		(void)str_fmt(err, errlen, "%s: smtp.tls_cert and smtp.tls_key go together", name);
		return -EINVAL;
	}
	if (cfg->delivery.retry_min > cfg->delivery.retry_max) {
		(void)str_fmt(err, errlen, "%s: delivery.retry_min is above delivery.retry_max",
			      name);
		return -EINVAL;
	}
	return 0;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	config_defaults(cfg);
	if (make_absolute(cfg->path, sizeof(cfg->path), path) < 0) {
		(void)str_fmt(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	f = fopen(path, "r");
	if (!f) {
		(void)str_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return -ENOENT;
	}
	for (;;) {
		size_t r;
		if (len == cap) {
			char *nb;
			if (cap >= 1024 * 1024) {
				fclose(f);
				free(buf);
				(void)str_fmt(err, errlen, "%s: file larger than 1 MiB", path);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (!nb) {
				fclose(f);
				free(buf);
				(void)str_fmt(err, errlen, "%s: out of memory", path);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = fread(buf + len, 1, cap - len, f);
		if (r == 0)
			break;
		len += r;
	}
	fclose(f);
	rc = config_parse(path, buf ? buf : "", len, cfg, err, errlen);
	free(buf);
	return rc;
}

int config_pid_file(const struct config *cfg, char *buf, size_t len)
{
	if (cfg->node.pid_file[0])
		return str_copy(buf, len, cfg->node.pid_file);
	return str_fmt(buf, len, "%s/mxguardd.pid", cfg->node.data_dir);
}

const char *config_sqlite_path(const struct config *cfg)
{
	if (strncmp(cfg->store.url, "sqlite:", 7) != 0)
		return NULL;
	return cfg->store.url + 7;
}
