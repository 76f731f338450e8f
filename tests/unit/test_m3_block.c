/* test_m3_block.c -- the pre-norm transformer block (m3_block.c) against the same block written here
 * from the layer library's calls the way m3_block.c computed it before it kept its bf16 inputs: every
 * linear layer given its f32 input (and, under bf16, rounding it itself at each use: forward and
 * weight gradient). Bitwise equal: the output, the input gradient and every parameter gradient, in
 * fp32 and in bf16 (where the block keeps ln1, attn_out, ln2 and gelu only as bf16 copies), with key
 * padding and drop-path scales, at 1 and 2 threads. Width C = 16, the narrowest bf16 layer
 * (NN_BF16_MIN_DIM), and C = 8 (bf16 precision, f32 layers: the f32 path of the block).
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
#include "rng.h"
#include "support_dnn.h"

enum { BATCH = 3, TOK = 20, HEADS = 2 };

static char g_err[I2P_ERR_LEN];

static void fill(float *v, long n, uint64_t seed, double lo, double hi)
{
    rng_t r;
    rng_seed(&r, seed, 5);
    for (long i = 0; i < n; i++) v[i] = (float)rng_range(&r, lo, hi);
}

static long take(long *off, long n)
{
    long o = *off;
    *off += n;
    return o;
}

/* A block of width C with its parameters one after the other from offset 0. */
static long block_init(m3_block *p, int C)
{
    long off = 0;
    memset(p, 0, sizeof *p);
    p->C = C;
    m3_norm *nm[2] = {&p->norm1, &p->norm2};
    for (int i = 0; i < 2; i++) {
        nm[i]->C = C;
        nm[i]->w = take(&off, C);
        nm[i]->b = take(&off, C);
    }
    m3_linear *l[4] = {&p->qkv, &p->proj, &p->fc1, &p->fc2};
    int io[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
    for (int i = 0; i < 4; i++) {
        l[i]->in = io[i][0];
        l[i]->out = io[i][1];
        l[i]->w = take(&off, (long)io[i][0] * io[i][1]);
        l[i]->b = i == 0 ? -1 : take(&off, io[i][1]); /* qkv has no bias */
    }
    return off;
}

#define OK(x) assert_int_equal((x), 0)

/* The reference: forward and backward from the library's calls, every linear layer on its f32 input. */
static void reference(const m3_block *p, const float *P, float *Gr, float *out, float *dinp, const float *inp,
                      const float *dout, const float *kb, const float *da, const float *dm)
{
    long C = p->C, N = BATCH * TOK, n_att = BATCH * HEADS * TOK * TOK;
    nn_cache *c = &g_cache;
    float *ln1 = malloc(sizeof(float) * N * C), *m1 = malloc(sizeof(float) * N), *v1 = malloc(sizeof(float) * N),
          *qkv = malloc(sizeof(float) * N * 3 * C), *att = malloc(sizeof(float) * n_att),
          *ao = malloc(sizeof(float) * N * C), *x1 = malloc(sizeof(float) * N * C),
          *ln2 = malloc(sizeof(float) * N * C), *m2 = malloc(sizeof(float) * N), *v2 = malloc(sizeof(float) * N),
          *fc1 = malloc(sizeof(float) * N * 4 * C), *gl = malloc(sizeof(float) * N * 4 * C),
          *br = malloc(sizeof(float) * N * C), *dg = malloc(sizeof(float) * N * 4 * C),
          *df = malloc(sizeof(float) * N * 4 * C), *dl = malloc(sizeof(float) * N * C),
          *dx1 = malloc(sizeof(float) * N * C), *dat = malloc(sizeof(float) * N * C),
          *dq = calloc((size_t)(N * 3 * C), sizeof(float));
    OK(nn_layernorm_forward(c, ln1, m1, v1, inp, P + p->norm1.w, P + p->norm1.b, N, C, g_err));
    OK(nn_linear_forward(c, qkv, ln1, P + p->qkv.w, NULL, N, C, 3 * C, g_err));
    OK(nn_attention_forward_bias(c, ao, att, qkv, kb, NULL, BATCH, TOK, C, HEADS, g_err));
    OK(nn_linear_forward(c, out, ao, P + p->proj.w, P + p->proj.b, N, C, C, g_err));
    for (long i = 0; i < N * C; i++) out[i] *= da[i / (TOK * C)];
    OK(nn_add(c, x1, inp, out, N * C, g_err));
    OK(nn_layernorm_forward(c, ln2, m2, v2, x1, P + p->norm2.w, P + p->norm2.b, N, C, g_err));
    OK(nn_linear_forward(c, fc1, ln2, P + p->fc1.w, P + p->fc1.b, N, C, 4 * C, g_err));
    OK(nn_act_forward(c, NN_GELU, gl, fc1, N * 4 * C, g_err));
    OK(nn_linear_forward(c, out, gl, P + p->fc2.w, P + p->fc2.b, N, 4 * C, C, g_err));
    for (long i = 0; i < N * C; i++) out[i] *= dm[i / (TOK * C)];
    OK(nn_add(c, out, x1, out, N * C, g_err));
    /* backward */
    for (long i = 0; i < N * C; i++) br[i] = dout[i] * dm[i / (TOK * C)];
    OK(nn_linear_backward_set(c, dg, Gr + p->fc2.w, Gr + p->fc2.b, br, gl, P + p->fc2.w, N, 4 * C, C, g_err));
    OK(nn_act_backward_set(c, NN_GELU, df, dg, fc1, N * 4 * C, g_err));
    OK(nn_linear_backward_set(c, dl, Gr + p->fc1.w, Gr + p->fc1.b, df, ln2, P + p->fc1.w, N, C, 4 * C, g_err));
    memcpy(dx1, dout, sizeof(float) * N * C);
    OK(nn_layernorm_backward(c, dx1, Gr + p->norm2.w, Gr + p->norm2.b, dl, x1, P + p->norm2.w, P + p->norm2.b, m2,
                             v2, N, C, g_err));
    for (long i = 0; i < N * C; i++) br[i] = dx1[i] * da[i / (TOK * C)];
    OK(nn_linear_backward_set(c, dat, Gr + p->proj.w, Gr + p->proj.b, br, ao, P + p->proj.w, N, C, C, g_err));
    OK(nn_attention_backward(c, dq, dat, qkv, att, BATCH, TOK, C, HEADS, g_err));
    OK(nn_linear_backward_set(c, dl, Gr + p->qkv.w, NULL, dq, ln1, P + p->qkv.w, N, C, 3 * C, g_err));
    OK(nn_layernorm_backward(c, dinp, Gr + p->norm1.w, Gr + p->norm1.b, dl, inp, P + p->norm1.w, P + p->norm1.b,
                             m1, v1, N, C, g_err));
    OK(nn_accumulate(c, dinp, dx1, N * C, g_err));
    free(ln1); free(m1); free(v1); free(qkv); free(att); free(ao); free(x1); free(ln2); free(m2); free(v2);
    free(fc1); free(gl); free(br); free(dg); free(df); free(dl); free(dx1); free(dat); free(dq);
}

/* Block C in precision prec at nthr threads against the reference; returns whether the block kept
 * bf16 inputs (its state's ln1b). */
static int block_case(int C, nn_precision prec, int nthr)
{
    omp_set_num_threads(nthr);
    OK(nn_cache_set_precision(&g_cache, prec, g_err));
    m3_block p;
    long np = block_init(&p, C), N = BATCH * TOK;
    float *P = malloc(sizeof(float) * np), *G1 = calloc((size_t)np, sizeof(float)),
          *G2 = calloc((size_t)np, sizeof(float)), *inp = malloc(sizeof(float) * N * C),
          *dout = malloc(sizeof(float) * N * C), *o1 = malloc(sizeof(float) * N * C),
          *o2 = malloc(sizeof(float) * N * C), *d1 = calloc((size_t)(N * C), sizeof(float)),
          *d2 = calloc((size_t)(N * C), sizeof(float)), kb[BATCH * TOK] = {0};
    float da[BATCH] = {1.25f, 0.0f, 1.25f}, dm[BATCH] = {0.8f, 1.25f, 1.25f};
    fill(P, np, 21, -0.4, 0.4);
    fill(inp, N * C, 22, -2, 2);
    fill(dout, N * C, 23, -1, 1);
    for (long b = 0; b < BATCH; b++) /* the last 2 b keys of sample b padded */
        for (long t = TOK - 2 * b; t < TOK; t++) kb[b * TOK + t] = -1e5f;
    arena a;
    arena_init(&a, 1 << 20);
    m3_run r = {.c = &g_cache, .a = &a, .P = P, .G = G1, .train = 1, .err = g_err};
    m3_block_state s;
    OK(m3_block_forward(&r, &p, o1, &s, inp, kb, NULL, da, dm, BATCH, TOK, HEADS));
    OK(m3_block_backward(&r, &p, d1, dout, &s, inp, BATCH, TOK, HEADS));
    int kept = s.ln1b != NULL;
    assert_int_equal(kept, s.ln1 == NULL);
    reference(&p, P, G2, o2, d2, inp, dout, kb, da, dm);
    assert_memory_equal(o1, o2, sizeof(float) * N * C);
    assert_memory_equal(d1, d2, sizeof(float) * N * C);
    assert_memory_equal(G1, G2, sizeof(float) * np);
    printf("block C %d %s, %d thread(s): %s inputs kept; output, input and parameter gradients: the reference's "
           "bits\n", C, nn_precision_name(prec), nthr, kept ? "bf16" : "f32");
    arena_free(&a);
    free(P); free(G1); free(G2); free(inp); free(dout); free(o1); free(o2); free(d1); free(d2);
    OK(nn_cache_set_precision(&g_cache, NN_FP32, g_err));
    omp_set_num_threads(1);
    return kept;
}

static void test_block_fp32(void **state)
{
    (void)state;
    for (int t = 1; t <= 2; t++) assert_int_equal(block_case(16, NN_FP32, t), 0);
}

static void test_block_bf16(void **state)
{
    (void)state;
    if (nn_cache_set_precision(&g_cache, NN_BF16, g_err)) {
        printf("no bf16 here (%s)\n", g_err);
        skip();
        return;
    }
    for (int t = 1; t <= 2; t++) {
        assert_int_equal(block_case(16, NN_BF16, t), 1);
        assert_int_equal(block_case(8, NN_BF16, t), 0); /* layers below NN_BF16_MIN_DIM stay f32 */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_fp32),
        cmocka_unit_test(test_block_bf16),
    };
    return cmocka_run_group_tests(tests, dnn_cache_group_setup, dnn_cache_group_teardown);
}
