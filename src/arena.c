/* arena.c -- chunked bump allocator (see arena.h). */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

void arena_init(arena *a, size_t default_bytes)
{
    memset(a, 0, sizeof *a);
    a->default_bytes = default_bytes;
}

void arena_free(arena *a)
{
    for (int i = 0; i < a->n_chunks; i++) free(a->chunk[i]);
    memset(a, 0, sizeof *a);
}

void arena_reset(arena *a)
{
    a->cur = 0;
    a->off = 0;
}

void *arena_alloc(arena *a, size_t bytes)
{
    bytes = (bytes + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    while (a->cur < a->n_chunks && a->off + bytes > a->size[a->cur]) {
        a->cur++;
        a->off = 0;
    }
    if (a->cur == a->n_chunks) {
        if (a->n_chunks == ARENA_MAX_CHUNKS) { a->failed = 1; return NULL; }
        size_t n = bytes > a->default_bytes ? bytes : a->default_bytes;
        void *p = NULL;
        if (posix_memalign(&p, 64, n)) { a->failed = 1; return NULL; }
        a->chunk[a->n_chunks] = p;
        a->size[a->n_chunks] = n;
        a->n_chunks++;
        a->n_mallocs++;
        a->off = 0;
    }
    void *p = a->chunk[a->cur] + a->off;
    a->off += bytes;
    return p;
}

float *arena_floats(arena *a, long n)
{
    return arena_alloc(a, sizeof(float) * (size_t)n);
}

float *arena_zeros(arena *a, long n)
{
    float *p = arena_floats(a, n);
    if (p) memset(p, 0, sizeof(float) * (size_t)n);
    return p;
}

int *arena_ints(arena *a, long n)
{
    return arena_alloc(a, sizeof(int) * (size_t)n);
}

arena_mark_t arena_mark(const arena *a)
{
    arena_mark_t m = {a->cur, a->off};
    return m;
}

void arena_release(arena *a, arena_mark_t m)
{
    a->cur = m.cur;
    a->off = m.off;
}
