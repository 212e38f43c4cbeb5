/* SPDX-License-Identifier: MIT */
/*
 * eval_util: what the sender-authentication drivers share (the evaluators
 * in tests/auth run by the integration suites, and bench/auth): reading a
 * whole file, and a resolver that asks one test name server.
 *
 * Ownership: eval_slurp's buffer is the caller's (free()); the resolver
 * is the caller's (resolver_free()), on base, which must outlive it.
 */
#ifndef MXG_TESTS_AUTH_EVAL_UTIL_H
#define MXG_TESTS_AUTH_EVAL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "net/resolver.h"

/* The contents of path, NUL-terminated (the NUL not counted in *len);
 * NULL when it cannot be opened. */
char *eval_slurp(const char *path, size_t *len);

/* A resolver for server ("HOST:PORT"): 2 s time-out, cache_size answers
 * cached (0: none). NULL on failure, with the reason on stderr. */
struct resolver *eval_resolver(struct event_base *base, const char *server, int64_t cache_size);

#endif
