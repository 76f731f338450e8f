/* test_step_options.c -- how a train step runs must not change what it computes:
 *  - one transformer stage of two blocks (key bias, per-sample drop-path scales with zeros among
 *    them): forward + backward with activation recomputation (m3_run.recompute) gives bitwise the
 *    same parameter gradients and input gradient as without, and keeps fewer bytes in the arena
 *    after the forward;
 *  - the whole tiny network (drop path on, two blocks per stage): the same losses and gradients
 *    bitwise with model3d_set_step_options(recompute = 1), and a smaller step arena;
 *  - the backward's progress reports (grads_final): lo never rises, reaches the encoder's first
 *    stage, and the gradients reported final are never touched afterwards (a snapshot taken at
 *    each report equals the step's final gradients).
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

#include "arena.h"
#include "errors.h"
#include "m3_layers.h"
#include "m3_layout.h"
#include "model3d.h"
#include "rng.h"
#include "support_dnn.h"
#include "support_inputs.h"

static char g_err[I2P_ERR_LEN];

/* ---- one stage, with and without recomputation ---- */

enum { SB = 3, ST = 7, SC = 16, SH = 2, SD = 2 };

typedef struct {
    float *G, *dx0;
    size_t arena_after_forward; /* bytes in use after the forward */
} stage_result;


static void run_stage(int recompute, const float *P, long n_params, const m3_stage *st, stage_result *out)
{
    nn_cache cache;
    assert_int_equal(nn_cache_init(&cache, &g_dnn, 256, g_err), 0);
    arena a;
    arena_init(&a, (size_t)1 << 20);
    long N = SB * ST;
    float *G = calloc((size_t)n_params, sizeof(float)), buf[1] = {0};
    m3_run r = {.c = &cache, .a = &a, .P = P, .G = G, .buf = buf, .train = 1, .err = g_err,
                .recompute = recompute};
    rng_t g;
    rng_seed(&g, 11, 0);
    float *x0 = arena_floats(&a, N * SC), *ctr = arena_floats(&a, N * 3), *kb = arena_floats(&a, N);
    float *drop[SD], *draw = arena_floats(&a, N * SC), *dnormed = arena_floats(&a, N * SC);
    float *dx0 = calloc((size_t)(N * SC), sizeof(float));
    for (long i = 0; i < N * SC; i++) x0[i] = (float)rng_range(&g, -1, 1);
    for (long i = 0; i < N * 3; i++) ctr[i] = (float)rng_range(&g, -1, 1);
    for (long i = 0; i < N; i++) kb[i] = i % ST == ST - 1 ? -1e5f : 0.0f; /* one padded key per sample */
    for (int i = 0; i < SD; i++) {
        drop[i] = arena_floats(&a, SB);
        for (int b = 0; b < SB; b++) drop[i][b] = (b + i) % 3 == 0 ? 0.0f : 1.25f;
    }
    m3_stage_extra ex = {.pairbias = NULL, .drop_attn = (const float *const *)drop,
                         .drop_mlp = (const float *const *)drop};
    m3_stage_state s;
    assert_int_equal(m3_stage_forward_ex(&r, st, &s, x0, ctr, kb, &ex, SB, ST, SH, 1), 0);
    out->arena_after_forward = arena_in_use(&a);
    for (long i = 0; i < N * SC; i++) dnormed[i] = (float)rng_range(&g, -1, 1);
    memset(draw, 0, sizeof(float) * (size_t)(N * SC));
    assert_int_equal(m3_stage_backward(&r, st, &s, draw, dnormed, dx0, SH), 0);
    out->G = G;
    out->dx0 = dx0;
    arena_free(&a);
    nn_cache_free(&cache);
}

static void test_stage_recompute_bitwise(void **state)
{
    (void)state;
    m3_block blocks[SD + 1];
    memset(blocks, 0, sizeof blocks);
    m3_stage st = {.blocks = blocks, .depth = SD};
    m3_layout L = {0};
    st.pos = m3_layout_pos(&L, SC, "pos");
    m3_layout_blocks(&L, &st, SC, "stage");
    st.norm = m3_layout_norm(&L, SC, "norm");
    float *P = malloc(sizeof(float) * (size_t)L.n_params);
    rng_t g;
    rng_seed(&g, 5, 0);
    for (long i = 0; i < L.n_params; i++) P[i] = (float)rng_range(&g, -0.5, 0.5);
    stage_result plain, again;
    run_stage(0, P, L.n_params, &st, &plain);
    run_stage(1, P, L.n_params, &st, &again);
    printf("stage arena after forward: %zu bytes kept, %zu with recomputation\n",
           plain.arena_after_forward, again.arena_after_forward);
    assert_true(again.arena_after_forward < plain.arena_after_forward);
    long nz = 0;
    for (long i = 0; i < L.n_params; i++) nz += plain.G[i] != 0;
    assert_true(nz > L.n_params / 2); /* the comparison is not of zeros */
    assert_memory_equal(plain.G, again.G, sizeof(float) * (size_t)L.n_params);
    assert_memory_equal(plain.dx0, again.dx0, sizeof(float) * (size_t)(SB * ST * SC));
    free(plain.G);
    free(plain.dx0);
    free(again.G);
    free(again.dx0);
    free(P);
}

/* ---- the whole network ---- */

typedef m3_test_inputs inputs;

/* B random samples of the tiny configuration with two blocks per stage and drop path 0.4 (seed
 * 2024, mask keys 77.., drop key 9) */
static void make_inputs(inputs *in, int B)
{
    model3d_config c;
    model3d_config_tiny(&c);
    c.depths[0] = c.depths[1] = c.depths[2] = 2;
    c.drop_path = 0.4;
    m3_test_inputs_make(in, &c, B, 2024, 77, 9);
}

/* The progress reports of one step: lo in order, and a snapshot of the gradients each report
 * declared final. */
typedef struct {
    const float *grads;
    float *snap;
    long n, lo;        /* lowest lo so far (n before the first report) */
    int reports, rose;
} progress_log;

static void on_final(void *ctx, long lo)
{
    progress_log *p = ctx;
    p->reports++;
    if (lo > p->lo) p->rose = 1;
    if (lo < p->lo) {
        memcpy(p->snap + lo, p->grads + lo, sizeof(float) * (size_t)(p->lo - lo));
        p->lo = lo;
    }
}

static void test_model_recompute_and_progress(void **state)
{
    (void)state;
    inputs in;
    make_inputs(&in, 2);
    model3d *m;
    assert_int_equal(model3d_create(&m, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    long n = model3d_n_params(m);
    model3d_losses a, b;
    assert_int_equal(model3d_train_step(m, &in.batch, &a, g_err), 0);
    float *ga = malloc(sizeof(float) * (size_t)n);
    memcpy(ga, model3d_grads(m), sizeof(float) * (size_t)n);
    model3d_alloc_info plain, again;
    model3d_alloc_stats(m, &plain);

    model3d *m2; /* a fresh model: its arena grows only as far as the recomputing step needs */
    assert_int_equal(model3d_create(&m2, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    progress_log p = {.grads = model3d_grads(m2), .snap = calloc((size_t)n, sizeof(float)), .n = n, .lo = n};
    model3d_set_step_options(m2, 1, on_final, &p);
    assert_int_equal(model3d_train_step(m2, &in.batch, &b, g_err), 0);
    model3d_alloc_stats(m2, &again);
    printf("step arena: %ld bytes, %ld with recomputation; %d progress reports, lowest offset %ld of %ld\n",
           plain.step_arena_bytes, again.step_arena_bytes, p.reports, p.lo, n);
    assert_true(a.loss == b.loss && a.loss_3d == b.loss_3d && a.loss_2d == b.loss_2d);
    assert_memory_equal(ga, model3d_grads(m2), sizeof(float) * (size_t)n);
    assert_true(again.step_arena_bytes <= plain.step_arena_bytes);
    /* progress: falling, down to encoder.0 (the embeddings before it are final at the return),
     * and what was declared final stayed so */
    assert_false(p.rose);
    assert_true(p.reports >= 8);
    const model3d_tensor *e0 = NULL;
    for (int t = 0; t < model3d_n_tensors(m2); t++)
        if (!strcmp(model3d_get_tensor(m2, t)->name, "encoder.0.pos.fc1.weight")) e0 = model3d_get_tensor(m2, t);
    assert_non_null(e0);
    assert_int_equal(p.lo, e0->offset);
    assert_memory_equal(p.snap + p.lo, model3d_grads(m2) + p.lo, sizeof(float) * (size_t)(n - p.lo));
    free(p.snap);
    free(ga);
    model3d_free(m);
    model3d_free(m2);
    m3_test_inputs_free(&in);
}

/* embed0 under recompute on a tiny network with a large scale 0 (512 points, 128 groups of 16,
 * the spec's widths): losses and gradients bitwise those without, and the step
 * arena's peak (the bytes ever in use at once) below that of embed0's whole-rows phase (its
 * backward runs by rows) and well below the peak without recompute, where embed0's backward comes
 * on top of everything the later parts saved (and of its own activations). */
static void test_model_recompute_embed0_memory(void **state)
{
    (void)state;
    model3d_config c;
    model3d_config_tiny(&c);
    c.points = 512;
    c.groups[0] = 128;
    c.k[0] = 16;
    c.embed_hidden[0] = 128; c.embed_hidden[1] = 256; c.embed_hidden[2] = 512;
    c.groups[1] = 64; c.groups[2] = 16; /* the later parts at the spec's widths, one block each */
    c.dims[0] = 96; c.dims[1] = 192; c.dims[2] = 384;
    c.dec_dims[0] = 384; c.dec_dims[1] = 192;
    c.heads = 6;
    enum { NB = 2 };
    inputs in;
    m3_test_inputs_make(&in, &c, NB, 2024, 77, 9);
    model3d *m[2];
    model3d_losses L[2];
    model3d_alloc_info info[2];
    for (int v = 0; v < 2; v++) {
        assert_int_equal(model3d_create(&m[v], &c, NB, 3, &g_dnn, g_err), 0);
        model3d_set_step_options(m[v], v, NULL, NULL);
        assert_int_equal(model3d_train_step(m[v], &in.batch, &L[v], g_err), 0);
        model3d_alloc_stats(m[v], &info[v]);
    }
    long n = model3d_n_params(m[0]);
    long R = (long)NB * c.groups[0] * c.k[0];
    /* embed0's phase in its whole-rows backward (m3_group_backward_rows with rows 0): the backward's
     * block (max(2c, c + 2a + b, 3a + b)), h3 (c) and conv4's output gradient (cout) per row; by rows
     * (4 chunks of 1024 rows here) it holds R max(b, 2a) floats and a chunk's temporaries instead */
    long phase = R * (1024 + 512 + c.dims[0]) * (long)sizeof(float);
    printf("step arena peak: %ld bytes, %ld with recompute; embed0's whole-rows phase %ld\n",
           info[0].step_arena_bytes, info[1].step_arena_bytes, phase);
    assert_true(L[0].loss == L[1].loss && L[0].loss_3d == L[1].loss_3d && L[0].loss_2d == L[1].loss_2d);
    assert_memory_equal(model3d_grads(m[0]), model3d_grads(m[1]), sizeof(float) * (size_t)n);
    assert_true(info[1].step_arena_bytes < phase);
    assert_true(info[1].step_arena_bytes < info[0].step_arena_bytes * 60 / 100); /* 53 % when written */
    for (int v = 0; v < 2; v++) model3d_free(m[v]);
    m3_test_inputs_free(&in);
}

int main(void)
{
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_recompute_bitwise),
        cmocka_unit_test(test_model_recompute_and_progress),
        cmocka_unit_test(test_model_recompute_embed0_memory),
    };
    return cmocka_run_group_tests(tests, dnn_group_setup, dnn_group_teardown);
}
