/* SPDX-License-Identifier: MIT */
#include "smtp/limits.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "net/cidr.h"

/* Slots probed for a key before giving up (open addressing). */
#define PROBE 16

enum entry_kind { E_FREE = 0, E_IP = 1, E_NET = 2 };

struct limits_entry {
	uint8_t kind;
	uint8_t key[16];
	int64_t last_ms;     /* last use, for eviction */
	double tokens;	     /* token bucket */
	int64_t refilled_ms; /* when tokens were last topped up */
	uint16_t sessions[LIMITS_MAX_WORKERS];
};

struct limits {
	pthread_mutex_t lock;
	size_t nentries;
	size_t maplen;
	struct limits_entry entries[];
};

struct limits *limits_new(size_t entries)
{
	size_t len = sizeof(struct limits) + entries * sizeof(struct limits_entry);
	pthread_mutexattr_t a;
	struct limits *l;

	l = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (l == MAP_FAILED)
		fatal("mmap of the limits table failed");
	memset(l, 0, len);
	l->nentries = entries;
	l->maplen = len;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&l->lock, &a);
	pthread_mutexattr_destroy(&a);
	return l;
}

void limits_free(struct limits *l)
{
	if (l)
		munmap(l, l->maplen);
}

static void lock(struct limits *l)
{
	/* A holder that died left the table in a usable state: every update is
	 * a few stores to one entry. Mark it consistent and go on. */
	if (pthread_mutex_lock(&l->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&l->lock);
}

static uint64_t hash_key(uint8_t kind, const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ULL ^ kind;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return h;
}

static unsigned total_sessions(const struct limits_entry *e)
{
	unsigned n = 0;

	for (int i = 0; i < LIMITS_MAX_WORKERS; i++)
		n += e->sessions[i];
	return n;
}

/* Finds or makes the entry for key; NULL when the probe window is full of
 * entries that cannot be evicted (live sessions). */
static struct limits_entry *entry_get(struct limits *l, uint8_t kind, const uint8_t key[16],
				      int64_t now, bool create)
{
	size_t start = (size_t)(hash_key(kind, key) % l->nentries);
	struct limits_entry *victim = NULL;

	for (size_t i = 0; i < PROBE; i++) {
		struct limits_entry *e = &l->entries[(start + i) % l->nentries];
		if (e->kind == kind && memcmp(e->key, key, 16) == 0)
			return e;
		if (e->kind == E_FREE) {
			if (!victim || victim->kind != E_FREE)
				victim = e;
			continue;
		}
		if (total_sessions(e) == 0 &&
		    (!victim || (victim->kind != E_FREE && e->last_ms < victim->last_ms)))
			victim = e;
	}
	if (!create || !victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->kind = kind;
	memcpy(victim->key, key, 16);
	victim->tokens = -1; /* full on first use */
	victim->refilled_ms = now;
	return victim;
}

/* Token bucket of capacity per_minute, refilled continuously. */
static bool take_token(struct limits_entry *e, int64_t per_minute, int64_t now)
{
	double cap = (double)per_minute;

	if (e->tokens < 0)
		e->tokens = cap;
	e->tokens += (double)(now - e->refilled_ms) * cap / 60000.0;
	if (e->tokens > cap)
		e->tokens = cap;
	e->refilled_ms = now;
	if (e->tokens < 1.0)
		return false;
	e->tokens -= 1.0;
	return true;
}

static void net_key(const uint8_t addr[16], bool v4, uint8_t out[16])
{
	memcpy(out, addr, 16);
	/* /24 for IPv4 (the last octet), /64 for IPv6 */
	if (v4)
		out[15] = 0;
	else
		memset(out + 8, 0, 8);
}

enum limits_verdict limits_connect(struct limits *l, const struct config *cfg, int worker,
				   const struct sockaddr *sa)
{
	uint8_t addr[16], net[16];
	struct limits_entry *ip, *nt;
	enum limits_verdict v = LIMITS_OK;
	int64_t now = time_now_ms();
	bool v4;

	if (!l || worker < 0 || worker >= LIMITS_MAX_WORKERS || cidr_addr16(sa, addr, &v4) < 0)
		return LIMITS_OK;
	net_key(addr, v4, net);
	lock(l);
	ip = entry_get(l, E_IP, addr, now, true);
	nt = entry_get(l, E_NET, net, now, true);
	if (ip && total_sessions(ip) >= (unsigned)cfg->limits.per_ip_sessions)
		v = LIMITS_IP_SESSIONS;
	else if (ip && !take_token(ip, cfg->limits.per_ip_rate, now))
		v = LIMITS_IP_RATE;
	else if (nt && !take_token(nt, cfg->limits.per_net_rate, now))
		v = LIMITS_NET_RATE;
	if (ip) {
		ip->last_ms = now;
		if (v == LIMITS_OK && ip->sessions[worker] < UINT16_MAX)
			ip->sessions[worker]++;
	}
	if (nt)
		nt->last_ms = now;
	pthread_mutex_unlock(&l->lock);
	return v;
}

void limits_disconnect(struct limits *l, int worker, const struct sockaddr *sa)
{
	uint8_t addr[16];
	struct limits_entry *ip;
	bool v4;

	if (!l || worker < 0 || worker >= LIMITS_MAX_WORKERS || cidr_addr16(sa, addr, &v4) < 0)
		return;
	lock(l);
	ip = entry_get(l, E_IP, addr, time_now_ms(), false);
	if (ip && ip->sessions[worker] > 0)
		ip->sessions[worker]--;
	pthread_mutex_unlock(&l->lock);
}

void limits_worker_reset(struct limits *l, int worker)
{
	if (!l || worker < 0 || worker >= LIMITS_MAX_WORKERS)
		return;
	lock(l);
	for (size_t i = 0; i < l->nentries; i++)
		l->entries[i].sessions[worker] = 0;
	pthread_mutex_unlock(&l->lock);
}

const char *limits_verdict_name(enum limits_verdict v)
{
	switch (v) {
	case LIMITS_OK:
		return "ok";
	case LIMITS_IP_SESSIONS:
		return "per_ip_sessions";
	case LIMITS_IP_RATE:
		return "per_ip_rate";
	case LIMITS_NET_RATE:
		return "per_net_rate";
	}
	return "?";
}
