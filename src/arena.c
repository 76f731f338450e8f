/* arena.c -- bump allocator over one reserved address range, or chunks (see arena.h). */
#include "arena.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Chunks of at least this size are 2 MiB aligned and advised as transparent huge pages: the first
 * step touches its activations through far fewer page faults (7.5x fewer in a spec-size step) and
 * every later step meets fewer TLB misses (with nn_eltwise.c's serial small adds: ~11 % less user
 * CPU per step, docs/performance.md); the first step pays for it in system time (the kernel
 * zeroes whole 2 MiB pages). The kernel may ignore the advice; the contents are the same. */
#define ARENA_HUGE_BYTES ((size_t)2 << 20)

void *arena_chunk_alloc(size_t n)
{
    void *p = NULL;
    size_t align = n >= ARENA_HUGE_BYTES ? ARENA_HUGE_BYTES : 64;
    if (posix_memalign(&p, align, n)) return NULL;
#ifdef MADV_HUGEPAGE
    if (align == ARENA_HUGE_BYTES) (void)madvise(p, n / ARENA_HUGE_BYTES * ARENA_HUGE_BYTES, MADV_HUGEPAGE);
#endif
    return p;
}

/* The address range an arena reserves at its first allocation: one contiguous stack, whose pages
 * become resident only when first touched, so its memory is the most ever in use at once (a
 * chunked stack also holds the tails it skipped and chunks sized for other phases of the step:
 * docs/pretrain.md, "Memory and `--recompute`"). MAP_NORESERVE: no commit charge for the
 * untouched part. Where the kernel refuses (strict overcommit, an address-space limit) the arena
 * falls back to chunks. */
#define ARENA_RESERVE ((size_t)64 << 30)

static void reserve(arena *a)
{
    void *p = mmap(NULL, ARENA_RESERVE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, ARENA_RESERVE, MADV_HUGEPAGE);
#endif
    a->chunk[0] = p;
    a->size[0] = ARENA_RESERVE;
    a->n_chunks = 1;
    a->n_mallocs = 1;
    a->reserved = 1;
}

void arena_init(arena *a, size_t default_bytes)
{
    memset(a, 0, sizeof *a);
    a->default_bytes = default_bytes;
}

void arena_free(arena *a)
{
    for (int i = 0; i < a->n_chunks; i++) {
        if (i == 0 && a->reserved) munmap(a->chunk[0], a->size[0]);
        else free(a->chunk[i]);
    }
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
    if (a->n_chunks == 0) reserve(a);
    while (a->cur < a->n_chunks && a->off + bytes > a->size[a->cur]) {
        a->cur++;
        a->off = 0;
    }
    if (a->cur == a->n_chunks) {
        if (a->n_chunks == ARENA_MAX_CHUNKS) { a->failed = 1; return NULL; }
        size_t n = bytes > a->default_bytes ? bytes : a->default_bytes;
        void *p = arena_chunk_alloc(n);
        if (!p) { a->failed = 1; return NULL; }
        a->chunk[a->n_chunks] = p;
        a->size[a->n_chunks] = n;
        a->n_chunks++;
        a->n_mallocs++;
        a->off = 0;
    }
    void *p = a->chunk[a->cur] + a->off;
    a->off += bytes;
    size_t used = arena_in_use(a);
    if (used > a->peak) a->peak = used;
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

size_t arena_bytes(const arena *a)
{
    if (a->reserved) return a->peak;
    size_t n = 0;
    for (int i = 0; i < a->n_chunks; i++) n += a->size[i];
    return n;
}

size_t arena_in_use(const arena *a)
{
    size_t n = 0;
    for (int i = 0; i < a->cur && i < a->n_chunks; i++) n += a->size[i];
    return n + a->off;
}
