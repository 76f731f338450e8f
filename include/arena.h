/* arena.h -- a bump allocator for the activations of one training step.
 *
 * Memory is one address range reserved at the first allocation (pages resident once touched), or
 * where that fails chunks; both are kept across resets, so a step that asks for the same sizes in
 * the same order as an earlier one allocates nothing; n_mallocs counts the ranges and chunks ever
 * allocated.
 * arena_mark / arena_release give stack-like reuse inside a step (e.g. per-block backward scratch).
 */
#ifndef I2P_ARENA_H
#define I2P_ARENA_H

#include <stddef.h>

#define ARENA_MAX_CHUNKS 1024

typedef struct {
    char *chunk[ARENA_MAX_CHUNKS];
    size_t size[ARENA_MAX_CHUNKS];
    int n_chunks;
    int cur;                /* chunk in use */
    size_t off;             /* bytes used in chunk cur */
    size_t default_bytes;   /* minimum size of a new chunk */
    long n_mallocs;
    int failed;             /* set once an allocation failed (checked by arena_ok) */
    size_t peak;            /* the most bytes ever in use at once (arena_in_use) */
    int reserved;           /* chunk 0 is a reserved address range (arena.c), touched as used */
} arena;

typedef struct { int cur; size_t off; } arena_mark_t;

void arena_init(arena *a, size_t default_bytes);
void arena_free(arena *a);
void arena_reset(arena *a);
/* 64-byte aligned; NULL (and a->failed) when out of memory. Contents are undefined. */
void *arena_alloc(arena *a, size_t bytes);
float *arena_floats(arena *a, long n);            /* uninitialised */
float *arena_zeros(arena *a, long n);             /* zero-filled */
int *arena_ints(arena *a, long n);
/* The arena's chunk allocator, for other long-lived large buffers: n bytes released with free(),
 * 2 MiB aligned and advised as transparent huge pages when n >= 2 MiB, else 64-byte aligned. NULL
 * when out of memory. */
void *arena_chunk_alloc(size_t n);
/* The arena's memory: with a reserved range the most bytes ever in use (what has been touched),
 * else its chunks' total size. */
size_t arena_bytes(const arena *a);
/* Bytes in use: the chunks before the current one whole (with any tail skipped) plus the current
 * one's used part. */
size_t arena_in_use(const arena *a);
arena_mark_t arena_mark(const arena *a);
void arena_release(arena *a, arena_mark_t m);

#endif
