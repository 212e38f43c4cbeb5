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
	CFG_ADDR,      /* host:port */
	CFG_ADDR_LIST, /* comma separated host:port */
	CFG_LEVEL,     /* error/warn/info/debug */
	CFG_PATH,      /* made absolute */
	CFG_URL,       /* store url: sqlite:path made absolute */
	CFG_CIDR_LIST, /* comma separated addr/prefix */
};

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	size_t offset;
	size_t size; /* for strings: buffer size */
	const char *def;
	int64_t min, max;
};

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
    STR("store", "url", CFG_URL, store.url, "sqlite:var/mxguard.db"),
    NUM("store", "busy_timeout", CFG_INT, store.busy_timeout, "5000", 100, 600000),
    NUM("store", "commit_batch", CFG_INT, store.commit_batch, "64", 1, 4096),
    {"smtp", "listen", CFG_ADDR_LIST, OFF(smtp.listen), 0, "127.0.0.1:2525", 0, 0},
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
    NUM("smtp", "proxy_protocol", CFG_BOOL, smtp.proxy_protocol, "no", 0, 1),
    STR("smtp", "proxy_trusted", CFG_CIDR_LIST, smtp.proxy_trusted, ""),
    NUM("limits", "per_ip_sessions", CFG_INT, limits.per_ip_sessions, "20", 1, 100000),
    NUM("limits", "per_ip_rate", CFG_INT, limits.per_ip_rate, "120", 1, 1000000),
    NUM("limits", "per_net_rate", CFG_INT, limits.per_net_rate, "600", 1, 10000000),
    NUM("limits", "command_rate", CFG_INT, limits.command_rate, "200", 1, 1000000),
    NUM("limits", "greet_delay", CFG_INT, limits.greet_delay, "0", 0, 30000),
    STR("limits", "allow_networks", CFG_CIDR_LIST, limits.allow_networks, ""),
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
    NUM("log", "level", CFG_LEVEL, log.level, "info", 0, 3),
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
		char tmp[CONFIG_MAX_LISTEN * CONFIG_ADDR_LEN], *save = NULL, *tok;
		if (str_copy(tmp, sizeof(tmp), v) < 0)
			return "value too long";
		cfg->smtp.nlisten = 0;
		for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
			if (cfg->smtp.nlisten == CONFIG_MAX_LISTEN)
				return "too many addresses";
			if (check_addr(tok) < 0)
				return "not host:port";
			if (str_copy(cfg->smtp.listen[cfg->smtp.nlisten++], CONFIG_ADDR_LEN, tok) <
			    0)
				return "address too long";
		}
		if (cfg->smtp.nlisten == 0)
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
			if (k->type == CFG_INT || k->type == CFG_SIZE || k->type == CFG_DURATION)
				(void)str_fmt(err, errlen,
					      "%s:%d: %s.%s = '%.64s': %s (allowed %lld..%lld)",
					      name, lineno, section, key, val, why,
					      (long long)k->min, (long long)k->max);
			else
				(void)str_fmt(err, errlen, "%s:%d: %s.%s = '%.64s': %s", name,
					      lineno, section, key, val, why);
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

const char *config_sqlite_path(const struct config *cfg)
{
	if (strncmp(cfg->store.url, "sqlite:", 7) != 0)
		return NULL;
	return cfg->store.url + 7;
}
