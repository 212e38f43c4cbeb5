/* SPDX-License-Identifier: MIT */
/*
 * arena: one memory pool per message, created with its maximum.
 *
 * Everything parsed from a message (parts, headers, decoded bodies, text,
 * URLs, findings) is allocated here and freed at once by arena_free. An
 * allocation that would take the arena past its maximum fails (NULL) and
 * the arena stays usable: callers turn that into a named finding or a
 * tempfail, never into silent growth. Pointers returned live until
 * arena_free. Not thread-safe: one arena belongs to one message on one
 * thread at a time. (Idea from rspamd's mem_pool.)
 */
#ifndef MXG_ARENA_H
#define MXG_ARENA_H

#include <stddef.h>

#include "core/util.h"

struct arena;

/* max: the most bytes the arena may hand out (chunk overhead included). */
struct arena *arena_new(size_t max);
void arena_free(struct arena *a);
/* Aligned to 16 bytes; NULL when over the maximum or out of memory. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
/* Copies n bytes and adds a NUL (not counted in n). */
char *arena_memdup(struct arena *a, const void *p, size_t n);
/* Bytes handed out so far. */
size_t arena_used(const struct arena *a);
/* Bytes still available before the maximum. */
size_t arena_left(const struct arena *a);
/* Shrinks the last allocation p (of old size) to n bytes, returning the
 * space to the arena; p must be the most recent allocation. */
void arena_shrink_last(struct arena *a, void *p, size_t old, size_t n);

#endif
