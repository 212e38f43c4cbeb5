/* SPDX-License-Identifier: MIT */
/*
 * arena: a chain of chunks; small allocations are carved from the current
 * chunk, big ones get a chunk of their own. The maximum counts every byte
 * of every chunk, so the arena can never hold more than it was created
 * with.
 */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, used;
	_Alignas(ARENA_ALIGN) unsigned char mem[];
};

struct arena {
	struct arena_chunk *head; /* current chunk first */
	size_t max, total;	  /* chunk bytes allowed, allocated */
	size_t handed;		  /* bytes given to callers */
};

struct arena *arena_new(size_t max)
{
	struct arena *a = calloc(1, sizeof(*a));

	if (a)
		a->max = max;
	return a;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c, *n;

	if (!a)
		return;
	for (c = a->head; c; c = n) {
		n = c->next;
		free(c);
	}
	free(a);
}

static struct arena_chunk *chunk_new(struct arena *a, size_t size)
{
	struct arena_chunk *c;

	if (size > SIZE_MAX - sizeof(*c) || a->total + size > a->max)
		return NULL;
	c = malloc(sizeof(*c) + size);
	if (!c)
		return NULL;
	c->size = size;
	c->used = 0;
	a->total += size;
	return c;
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t need;

	if (n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;
	if (c && c->size - c->used >= need) {
		void *p = c->mem + c->used;
		c->used += need;
		a->handed += need;
		return p;
	}
	if (need > ARENA_CHUNK / 4) {
		/* big: its own chunk, linked behind the current one */
		struct arena_chunk *big = chunk_new(a, need);
		if (!big)
			return NULL;
		big->used = need;
		if (c) {
			big->next = c->next;
			c->next = big;
		} else {
			big->next = NULL;
			a->head = big;
		}
		a->handed += need;
		return big->mem;
	}
	c = chunk_new(a, ARENA_CHUNK);
	if (!c)
		return NULL;
	c->next = a->head;
	a->head = c;
	c->used = need;
	a->handed += need;
	return c->mem;
}

void *arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

char *arena_memdup(struct arena *a, const void *p, size_t n)
{
	char *d;

	if (n == SIZE_MAX)
		return NULL;
	d = arena_alloc(a, n + 1);
	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

size_t arena_used(const struct arena *a)
{
	return a->handed;
}

size_t arena_left(const struct arena *a)
{
	return a->max > a->total ? a->max - a->total : 0;
}

void arena_shrink_last(struct arena *a, void *p, size_t old, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t o = (old + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	size_t k = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (!c || k >= o || (unsigned char *)p + o != c->mem + c->used)
		return; /* not the last small allocation: keep it as it is */
	c->used -= o - k;
	a->handed -= o - k;
}
