/* test_model3d_alloc.c -- a training step allocates nothing after the first: this binary replaces
 * malloc / calloc / realloc / posix_memalign / aligned_alloc / memalign (for the whole process,
 * oneDNN and libgomp included) with counting wrappers around glibc's, and counts the calls made
 * during steps 3..6 (masks differ every step; B as at the first step).
 * oneDNN 2.6's dnnl_primitive_execute itself builds a small argument map on the heap at every call
 * (library internals, freed on return, ~8 small allocations). nn_exec reports those calls through
 * nn_exec_hook, defined here: allocations inside an execution are counted apart and must be the
 * same in every step; allocations anywhere else in a step after the first must be 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "model3d.h"
#include "optim.h"
#include "rng.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t s);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t a, size_t n);
extern void __libc_free(void *p);

static volatile int g_counting, g_inside;
static volatile long g_allocs, g_allocs_inside;

void nn_exec_hook(int inside);
void nn_exec_hook(int inside)
{
    g_inside = inside;
}

#ifndef __SANITIZE_ADDRESS__ /* ASan owns malloc: replacing it aborts (free(): invalid size) */
static void count(void)
{
    if (!g_counting) return;
    if (g_inside) __atomic_add_fetch(&g_allocs_inside, 1, __ATOMIC_RELAXED);
    else __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t s)
{
    count();
    return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}
void *memalign(size_t a, size_t n)
{
    count();
    return __libc_memalign(a, n);
}
void *aligned_alloc(size_t a, size_t n)
{
    return memalign(a, n);
}
int posix_memalign(void **out, size_t a, size_t n)
{
    void *p = memalign(a, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
void free(void *p)
{
    __libc_free(p);
}
#endif

static void test_no_allocation_after_first_step(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    printf("SKIP: the counting allocator cannot replace AddressSanitizer's (make test SAN=1)\n");
    skip();
#endif
    char err[I2P_ERR_LEN];
    model3d_config c;
    model3d_config_tiny(&c);
    c.drop_path = 0.1; /* stochastic depth on: its draws must not allocate either */
    enum { B = 3 };
    long P = c.points, V = c.views, g = c.grid, F = c.feat_dim;
    static float pts[B * 64 * 3], sal[B * 64], grids[B * 2 * 4 * 4 * 6];
    static int16_t pix[B * 2 * 64 * 2];
    rng_t r;
    rng_seed(&r, 3, 3);
    for (long i = 0; i < B * P * 3; i++) pts[i] = (float)rng_range(&r, -1, 1);
    for (long i = 0; i < B * P; i++) sal[i] = (float)rng_range(&r, 0, 0.1);
    for (long i = 0; i < B * V * g * g * F; i++) grids[i] = (float)rng_normal(&r);
    for (long i = 0; i < B * V * P * 2; i++) pix[i] = (int16_t)rng_below(&r, (uint64_t)c.image);
    dnn_ctx ctx;
    model3d *m;
    assert_int_equal(dnn_ctx_create(&ctx, err), 0);
    assert_int_equal(model3d_create(&m, &c, B, 1, &ctx, err), 0);
    adamw_config ac;
    adamw_config_default(&ac);
    adamw_state st;
    assert_int_equal(adamw_init(&st, model3d_n_params(m), err), 0);
    long counted = 0, inside_first = -1;
    for (int step = 0; step < 6; step++) {
        model3d_alloc_info before, after;
        model3d_alloc_stats(m, &before);
        uint64_t keys[B] = {(uint64_t)step * 10 + 1, (uint64_t)step * 10 + 2, (uint64_t)step * 10 + 3};
        model3d_batch bt = {.B = B, .points = pts, .point_saliency = sal, .grids = grids, .pixels = pix,
                            .mask_keys = keys, .drop_key = (uint64_t)step, .forced_visible = NULL};
        model3d_losses L;
        g_allocs = g_allocs_inside = 0;
        g_counting = step >= 2;
        int rc = model3d_train_step(m, &bt, &L, err);
        adamw_step(&st, &ac, 1e-3, model3d_params(m), model3d_grads(m), model3d_get_tensor(m, 0),
                   model3d_n_tensors(m));
        g_counting = 0;
        assert_int_equal(rc, 0);
        model3d_alloc_stats(m, &after);
        long execs = after.executions - before.executions;
        printf("step %d: loss %.5f, %ld oneDNN executions; allocations: %ld outside them, %ld inside%s\n", step,
               L.loss, execs, g_allocs, g_allocs_inside, step >= 2 ? "" : " (not counted: first steps)");
        if (step >= 2) {
            counted += g_allocs;
            if (inside_first < 0) inside_first = g_allocs_inside;
            assert_int_equal(g_allocs_inside, inside_first);
            assert_int_equal(after.primitives, before.primitives);
            assert_int_equal(after.arena_chunks, before.arena_chunks);
        }
    }
    printf("steps 3-6: %ld allocations outside oneDNN's execute: %s\n", counted, counted == 0 ? "OK" : "NOT OK");
    assert_int_equal(counted, 0);
    adamw_free(&st);
    model3d_free(m);
    dnn_ctx_destroy(&ctx);
}

int main(void)
{
    /* 2 threads: libgomp then keeps its thread team between parallel regions (with 1 thread it
       allocates a team struct at every region, runtime internals that would blur the count) */
    omp_set_num_threads(2);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_allocation_after_first_step)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
