/* test_kernels_exact.c -- the vectorised hand-written kernels of the training step give bitwise the
 * results of plain scalar loops written here (the same float / double operations in the same order
 * per element or per channel: sums over rows in blocks of NN_ROW_BLOCK, nn.h), for 1, 2 and 3 OpenMP
 * threads: batch-norm batch statistics (mean and
 * biased variance from one pass of shifted sums, nn_batchnorm_forward_train; accurate against long
 * double where the mean dwarfs the spread, and the same in pieces of rows), the batch-norm backward (nn_batchnorm_backward), max-pool forward (values and argmax, with ties and a
 * NaN), AdamW (two steps over tensors with and without decay) and the bicubic sample. And
 * nn_act_backward_set gives the values of nn_act_backward into zeros (compared as floats: the sign of
 * a zero may differ, 0 + -0 being +0). And the fused BatchNorm -> ReLU passes give bitwise the
 * unfused primitives' results (test_bn_relu_fused). And the MSE loss (64 fixed blocks, 8 running sums
 * each) and its backward (overwriting) against scalar loops, and the loss within 1e-12 of a long double sum.
 * Odd sizes exercise the vector loops' tails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bicubic.h"
#include "errors.h"
#include "losses.h"
#include "nn.h"
#include "optim.h"
#include "rng.h"

static dnn_ctx g_dnn;
static nn_cache g_c;
static char g_err[I2P_ERR_LEN];
static const int THREADS[] = {1, 2, 3};
enum { N_THREADS = 3 };

static int setup(void **state)
{
    (void)state;
    if (dnn_ctx_create(&g_dnn, g_err)) return -1;
    return nn_cache_init(&g_c, &g_dnn, 16, g_err);
}

static int teardown(void **state)
{
    (void)state;
    nn_cache_free(&g_c);
    dnn_ctx_destroy(&g_dnn);
    return 0;
}

static float *normals(rng_t *r, long n, float scale, float shift)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) x[i] = (float)rng_normal(r) * scale + shift;
    return x;
}

static void test_batch_stats(void **state)
{
    (void)state;
    const long M = 4999, C = 67; /* 20 row blocks: two rounds of nn_row_block_sums, a partial last block */
    rng_t r;
    rng_seed(&r, 11, 0);
    float *x = normals(&r, M * C, 3.0f, 5.0f), *w = normals(&r, C, 1.0f, 1.0f), *b = normals(&r, C, 1.0f, 0.0f);
    float *out = malloc(sizeof(float) * (size_t)(M * C)), mean[67], var[67], want_mean[67], want_var[67];
    for (long j = 0; j < C; j++) { /* one pass in double of d = x - (row 0's x): sum d, sum d^2, rows in
                                      order within blocks, blocks in order */
        double k = x[j], s = 0, q = 0;
        for (long i0 = 0; i0 < M; i0 += NN_ROW_BLOCK) {
            double ps = 0, pq = 0;
            for (long i = i0; i < M && i < i0 + NN_ROW_BLOCK; i++) {
                double d = (double)x[i * C + j] - k;
                ps += d;
                pq += d * d;
            }
            s += ps;
            q += pq;
        }
        double m = s / (double)M, v = q / (double)M - m * m;
        want_mean[j] = (float)(k + m);
        want_var[j] = v > 0 ? (float)v : 0.0f;
    }
    for (int t = 0; t < N_THREADS; t++) {
        omp_set_num_threads(THREADS[t]);
        memset(mean, 0xff, sizeof mean);
        memset(var, 0xff, sizeof var);
        assert_int_equal(nn_batchnorm_forward_train(&g_c, out, mean, var, x, w, b, NULL, NULL, M, C, g_err), 0);
        assert_memory_equal(mean, want_mean, sizeof mean);
        assert_memory_equal(var, want_var, sizeof var);
    }
    free(x); free(w); free(b); free(out);
}

/* The one-pass statistics are accurate where an unshifted sum of squares is not: against two passes
 * in long double, channels of mean 1000 and spread 0.01 (the sum of x^2 in double would lose ~1e-5 of
 * the variance to cancellation), of mean -3 and spread 2, and a constant one (variance exactly 0);
 * mean within 1e-7 and variance within 1e-6 relative. And the rows given in pieces (multiples of
 * NN_ROW_BLOCK, then the rest) give the whole-rows statistics and running update bitwise. */
static void test_batch_stats_shifted(void **state)
{
    (void)state;
    const long M = 3001, C = 21;
    rng_t r;
    rng_seed(&r, 23, 0);
    float *x = malloc(sizeof(float) * (size_t)(M * C));
    for (long i = 0; i < M; i++)
        for (long j = 0; j < C; j++) {
            double n = rng_normal(&r);
            x[i * C + j] = j == C - 1 ? 7.25f : j % 2 ? (float)(1000.0 + 0.01 * n) : (float)(-3.0 + 2.0 * n);
        }
    float mean[21], var[21], rm[21], rv[21], mean2[21], var2[21], rm2[21], rv2[21];
    for (long j = 0; j < C; j++) rm[j] = rm2[j] = 0.5f, rv[j] = rv2[j] = 2.0f;
    assert_int_equal(nn_batchnorm_stats_train(&g_c, mean, var, x, rm, rv, M, C, g_err), 0);
    for (long j = 0; j < C; j++) {
        long double s = 0, q = 0;
        for (long i = 0; i < M; i++) s += x[i * C + j];
        s /= M;
        for (long i = 0; i < M; i++) q += (x[i * C + j] - s) * (x[i * C + j] - s);
        q /= M;
        if (j == C - 1) {
            assert_true(mean[j] == 7.25f && var[j] == 0.0f);
            continue;
        }
        if (fabsl(mean[j] - s) > 1e-7L * fabsl(s) || fabsl(var[j] - q) > 1e-6L * q)
            fail_msg("channel %ld: mean %.9g var %.9g, long double %.9Lg %.9Lg", j, mean[j], var[j], s, q);
    }
    double *acc = malloc(sizeof(double) * (size_t)nn_bn_acc_doubles(C));
    const long pieces[] = {3 * NN_ROW_BLOCK, 5 * NN_ROW_BLOCK, M - 8 * NN_ROW_BLOCK};
    for (int t = 0; t < N_THREADS; t++) {
        omp_set_num_threads(THREADS[t]);
        for (long j = 0; j < C; j++) rm2[j] = 0.5f, rv2[j] = 2.0f;
        nn_bn_stats_begin(acc, x, C);
        for (long q = 0, r0 = 0; q < 3; r0 += pieces[q], q++) nn_bn_stats_rows(acc, x + r0 * C, pieces[q], C);
        nn_bn_stats_end(acc, mean2, var2, rm2, rv2, M, C);
        assert_memory_equal(mean2, mean, sizeof mean);
        assert_memory_equal(var2, var, sizeof var);
        assert_memory_equal(rm2, rm, sizeof rm);
        assert_memory_equal(rv2, rv, sizeof rv);
    }
    free(x); free(acc);
}

/* nn_batchnorm_backward against scalar loops: per column, dgamma and dbeta summed in double in row
 * order within blocks of NN_ROW_BLOCK rows, the blocks' sums in block order, 1 / sqrt(var + eps)
 * formed per element, the input gradient accumulated onto a nonzero start. */
static void test_batchnorm_backward(void **state)
{
    (void)state;
    const long M = 4397, C = 37; /* two rounds of row blocks, a partial last block */
    const float eps = 1e-5f;
    rng_t r;
    rng_seed(&r, 13, 0);
    float *x = normals(&r, M * C, 2.0f, 1.0f), *g = normals(&r, M * C, 1.0f, 0.0f),
          *d0 = normals(&r, M * C, 1.0f, 0.0f), *w = normals(&r, C, 1.0f, 1.0f), *b = normals(&r, C, 1.0f, 0.0f);
    float *out = malloc(sizeof(float) * (size_t)(M * C)), *want = malloc(sizeof(float) * (size_t)(M * C)),
          *dinp = malloc(sizeof(float) * (size_t)(M * C));
    float mean[37], var[37], dw0[37], db0[37], want_dw[37], want_db[37], dw[37], db[37];
    double sw[37], sb[37];
    assert_int_equal(nn_batchnorm_forward_train(&g_c, out, mean, var, x, w, b, NULL, NULL, M, C, g_err), 0);
    for (long j = 0; j < C; j++) {
        dw0[j] = 0.25f * (float)j;
        db0[j] = -0.5f;
        sw[j] = sb[j] = 0;
        for (long i0 = 0; i0 < M; i0 += NN_ROW_BLOCK) {
            double pw = 0, pb = 0;
            for (long i = i0; i < M && i < i0 + NN_ROW_BLOCK; i++) {
                float rstd = 1.0f / sqrtf(var[j] + eps);
                pw += (double)g[i * C + j] * ((x[i * C + j] - mean[j]) * rstd);
                pb += g[i * C + j];
            }
            sw[j] += pw;
            sb[j] += pb;
        }
        want_dw[j] = dw0[j] + (float)sw[j];
        want_db[j] = db0[j] + (float)sb[j];
    }
    for (long i = 0; i < M; i++)
        for (long j = 0; j < C; j++) {
            float rstd = 1.0f / sqrtf(var[j] + eps), xhat = (x[i * C + j] - mean[j]) * rstd;
            want[i * C + j] = d0[i * C + j] + w[j] * rstd * (g[i * C + j] - ((float)sb[j] + xhat * (float)sw[j]) *
                                                                               (1.0f / (float)M));
        }
    for (int t = 0; t < N_THREADS; t++) {
        omp_set_num_threads(THREADS[t]);
        memcpy(dinp, d0, sizeof(float) * (size_t)(M * C));
        memcpy(dw, dw0, sizeof dw);
        memcpy(db, db0, sizeof db);
        assert_int_equal(nn_batchnorm_backward(&g_c, dinp, dw, db, g, x, w, b, mean, var, M, C, g_err), 0);
        assert_memory_equal(dinp, want, sizeof(float) * (size_t)(M * C));
        assert_memory_equal(dw, want_dw, sizeof dw);
        assert_memory_equal(db, want_db, sizeof db);
    }
    free(x); free(g); free(d0); free(w); free(b); free(out); free(want); free(dinp);
}

/* The fused BatchNorm -> ReLU passes against the unfused primitives they replace, bitwise, at a channel
 * count oneDNN's jit batch norm takes (128: fused multiply-add) and one it leaves to its plain C++
 * kernel (67), for 1, 2 and 3 threads: the forward (nn_batchnorm_relu_train against
 * nn_batchnorm_apply_train then the ReLU primitive), the backward with ReLU's folded in
 * (nn_batchnorm_relu_backward against nn_relu_backward_dst then nn_batchnorm_backward into zeros, and
 * its NN_BN_PRIM form given the primitive's output), and the bf16 form (against nn_batchnorm_relu_bf16,
 * nn_relu_backward_dst_bf16, nn_batchnorm_backward). Column 0's scale is subnormal, so that its BN
 * output is positive where its bf16 rounding is zero (ReLU's mask must be the rounding's). */
static void bn_relu_case(long M, long C)
{
    rng_t r;
    rng_seed(&r, 17, (uint64_t)C);
    size_t n = (size_t)(M * C);
    float *x = normals(&r, M * C, 2.0f, 1.0f), *g = normals(&r, M * C, 1.0f, 0.0f), *w = normals(&r, C, 1.0f, 1.0f),
          *b = normals(&r, C, 0.5f, 0.0f);
    float *y = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n),
          *gm = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
    uint16_t *tb = malloc(sizeof(uint16_t) * n);
    float *mean = malloc(sizeof(float) * (size_t)C), *var = malloc(sizeof(float) * (size_t)C);
    float *dw = malloc(sizeof(float) * (size_t)C), *db = malloc(sizeof(float) * (size_t)C),
          *want_dw = malloc(sizeof(float) * (size_t)C), *want_db = malloc(sizeof(float) * (size_t)C);
    double *acc = malloc(sizeof(double) * (size_t)(3 * C + nn_bn_acc_doubles(C)));
    w[0] = 1e-39f;
    b[0] = 0.0f;
    assert_int_equal(nn_batchnorm_forward_train(&g_c, y, mean, var, x, w, b, NULL, NULL, M, C, g_err), 0);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        if (!bf16) {
            assert_int_equal(nn_batchnorm_apply_train(&g_c, ref, x, w, b, mean, var, M, C, g_err), 0);
            assert_int_equal(nn_act_forward(&g_c, NN_RELU, ref, ref, M * C, g_err), 0);
            assert_int_equal(nn_relu_backward_dst(&g_c, gm, g, ref, M * C, g_err), 0);
        } else {
            assert_int_equal(nn_batchnorm_relu_bf16(&g_c, tb, x, w, b, mean, var, M, C, g_err), 0);
            nn_relu_backward_dst_bf16(gm, g, tb, M * C);
        }
        memset(want, 0, sizeof(float) * n);
        for (long j = 0; j < C; j++) want_dw[j] = want_db[j] = 0.5f * (float)j;
        assert_int_equal(nn_batchnorm_backward(&g_c, want, want_dw, want_db, gm, x, w, b, mean, var, M, C, g_err), 0);
        for (int t = 0; t < N_THREADS; t++) {
            omp_set_num_threads(THREADS[t]);
            if (!bf16) {
                memset(got, 0xff, sizeof(float) * n);
                assert_int_equal(nn_batchnorm_relu_train(&g_c, got, x, w, b, mean, var, M, C, g_err), 0);
                assert_memory_equal(got, ref, sizeof(float) * n);
            }
            for (int prim = 0; prim < 2 - bf16; prim++) {
                for (long j = 0; j < C; j++) dw[j] = db[j] = 0.5f * (float)j;
                memset(got, 0xff, sizeof(float) * n); /* NaNs: every element must be written */
                if (!prim)
                    assert_int_equal(nn_batchnorm_relu_backward(&g_c, got, dw, db, g, x, w, b, mean, var, M, C,
                                                                bf16, g_err), 0);
                else { /* the primitive's output in place, read for the mask */
                    assert_int_equal(nn_batchnorm_apply_train(&g_c, got, x, w, b, mean, var, M, C, g_err), 0);
                    nn_batchnorm_relu_backward_rows(got, dw, db, g, x, w, b, mean, var, got, NN_BN_PRIM, NN_BN_EPS,
                                                    M, C, acc);
                }
                assert_memory_equal(got, want, sizeof(float) * n);
                assert_memory_equal(dw, want_dw, sizeof(float) * (size_t)C);
                assert_memory_equal(db, want_db, sizeof(float) * (size_t)C);
            }
        }
    }
    free(x); free(g); free(w); free(b); free(y); free(ref); free(got); free(gm); free(want); free(tb);
    free(mean); free(var); free(dw); free(db); free(want_dw); free(want_db); free(acc);
}

static void test_bn_relu_fused(void **state)
{
    (void)state;
    bn_relu_case(1001, 128);
    bn_relu_case(999, 67);
}

static void test_maxpool_forward(void **state)
{
    (void)state;
    const long G = 37, k = 9, C = 19;
    rng_t r;
    rng_seed(&r, 12, 0);
    float *x = normals(&r, G * k * C, 2.0f, 0.0f), *out = malloc(sizeof(float) * (size_t)(G * C)),
          *want = malloc(sizeof(float) * (size_t)(G * C));
    int32_t *arg = malloc(sizeof(int32_t) * (size_t)(G * C)), *want_arg = malloc(sizeof(int32_t) * (size_t)(G * C));
    for (long i = 0; i < G * k * C; i++) x[i] = roundf(x[i]); /* few distinct values: many ties */
    x[5 * k * C + 3] = NAN;                                     /* a NaN first in its window */
    x[(7 * k + 4) * C + 2] = NAN;                               /* and one in the middle of one */
    for (long g = 0; g < G; g++)
        for (long j = 0; j < C; j++) {
            float best = x[g * k * C + j];
            int32_t a = 0;
            for (long i = 1; i < k; i++)
                if (x[(g * k + i) * C + j] > best) {
                    best = x[(g * k + i) * C + j];
                    a = (int32_t)i;
                }
            want[g * C + j] = best;
            want_arg[g * C + j] = a;
        }
    for (int t = 0; t < N_THREADS; t++) {
        omp_set_num_threads(THREADS[t]);
        nn_maxpool_forward(out, arg, x, G, k, C);
        assert_memory_equal(out, want, sizeof(float) * (size_t)(G * C));
        assert_memory_equal(arg, want_arg, sizeof(int32_t) * (size_t)(G * C));
    }
    free(x); free(out); free(want); free(arg); free(want_arg);
}

/* nn_maxpool_backward_set writes every element of dinp (NaNs before), bitwise a memset to 0 then
 * nn_maxpool_backward (-0 routed gives +0), at 1, 2 and 3 threads. */
static void test_maxpool_backward_set(void **state)
{
    (void)state;
    const long G = 37, k = 9, C = 19, n = G * k * C;
    rng_t r;
    rng_seed(&r, 13, 0);
    float *dout = normals(&r, G * C, 1.0f, 0.0f), *want = malloc(sizeof(float) * (size_t)n),
          *got = malloc(sizeof(float) * (size_t)n);
    int32_t *arg = malloc(sizeof(int32_t) * (size_t)(G * C));
    for (long i = 0; i < G * C; i++) arg[i] = (int32_t)rng_below(&r, (uint64_t)k);
    dout[3] = -0.0f;
    arg[G * C - 1] = (int32_t)(k - 1); /* the last row's last element */
    memset(want, 0, sizeof(float) * (size_t)n);
    for (long g = 0; g < G; g++)
        for (long j = 0; j < C; j++) want[(g * k + arg[g * C + j]) * C + j] += dout[g * C + j];
    for (int t = 0; t < N_THREADS; t++) {
        omp_set_num_threads(THREADS[t]);
        memset(got, 0xff, sizeof(float) * (size_t)n);
        nn_maxpool_backward_set(got, dout, arg, G, k, C);
        assert_memory_equal(got, want, sizeof(float) * (size_t)n);
    }
    free(dout); free(want); free(got); free(arg);
}

static void test_adamw(void **state)
{
    (void)state;
    model3d_tensor T[3] = {{.offset = 0, .count = 5, .decay = 1},
                           {.offset = 5, .count = 1001, .decay = 0},
                           {.offset = 1006, .count = 37, .decay = 1}};
    const long n = 1043;
    const double lr = 3e-3;
    adamw_config ac;
    adamw_config_default(&ac);
    rng_t r;
    rng_seed(&r, 13, 0);
    float *p0 = normals(&r, n, 1.0f, 0.0f), *g1 = normals(&r, n, 0.1f, 0.0f), *g2 = normals(&r, n, 0.1f, 0.0f);
    float *want = malloc(sizeof(float) * (size_t)n), *m = calloc((size_t)n, sizeof(float)),
          *v = calloc((size_t)n, sizeof(float)), *p = malloc(sizeof(float) * (size_t)n);
    memcpy(want, p0, sizeof(float) * (size_t)n);
    for (int step = 1; step <= 2; step++) { /* torch 1.13's single-tensor AdamW, element by element */
        const float *g = step == 1 ? g1 : g2;
        double bc1 = 1.0 - pow(ac.beta1, step), bc2 = 1.0 - pow(ac.beta2, step);
        float b1 = (float)ac.beta1, b2 = (float)ac.beta2, step_size = (float)(lr / bc1),
              bc2_sqrt = (float)sqrt(bc2), eps = (float)ac.eps;
        for (int t = 0; t < 3; t++) {
            float decay = T[t].decay ? (float)(1.0 - lr * ac.weight_decay) : 1.0f;
            for (long i = T[t].offset; i < T[t].offset + T[t].count; i++) {
                want[i] *= decay;
                m[i] = m[i] * b1 + g[i] * (1 - b1);
                v[i] = v[i] * b2 + g[i] * g[i] * (1 - b2);
                float denom = sqrtf(v[i]) / bc2_sqrt + eps;
                want[i] += -step_size * (m[i] / denom);
            }
        }
    }
    for (int t = 0; t < N_THREADS; t++) {
        omp_set_num_threads(THREADS[t]);
        adamw_state s;
        assert_int_equal(adamw_init(&s, n, g_err), 0);
        memcpy(p, p0, sizeof(float) * (size_t)n);
        adamw_step(&s, &ac, lr, p, g1, T, 3);
        adamw_step(&s, &ac, lr, p, g2, T, 3);
        assert_memory_equal(p, want, sizeof(float) * (size_t)n);
        assert_memory_equal(s.m, m, sizeof(float) * (size_t)n);
        assert_memory_equal(s.v, v, sizeof(float) * (size_t)n);
        adamw_free(&s);
    }
    free(p0); free(g1); free(g2); free(want); free(m); free(v); free(p);
}

static void test_bicubic_sample(void **state)
{
    (void)state;
    const int g = 5, S = 37, Cs[] = {23, 75}; /* 75: two blocks of 32 channels and a tail of 11 */
    rng_t r;
    rng_seed(&r, 14, 0);
    for (int k = 0; k < 2; k++) {
        const int C = Cs[k];
        float *grid = normals(&r, (long)g * g * C, 1.0f, 0.0f), out[75], want[75];
        const int pix[][2] = {{0, 0}, {3, 36}, {18, 19}, {36, 1}, {29, 7}};
        for (size_t q = 0; q < sizeof pix / sizeof pix[0]; q++) {
            int ry[4], cx[4];
            float wy[4], wx[4];
            bicubic_taps(g, S, pix[q][0], ry, wy);
            bicubic_taps(g, S, pix[q][1], cx, wx);
            for (int c = 0; c < C; c++) {
                want[c] = 0.0f;
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) want[c] += wy[a] * wx[b] * grid[((long)ry[a] * g + cx[b]) * C + c];
            }
            bicubic_sample(grid, g, C, S, pix[q][0], pix[q][1], out);
            assert_memory_equal(out, want, sizeof(float) * (size_t)C);
        }
        free(grid);
    }
}

static void test_act_backward_set(void **state)
{
    (void)state;
    const long n = 40013; /* above the serial-add threshold: the accumulating path's add is a primitive */
    rng_t r;
    rng_seed(&r, 15, 0);
    float *x = normals(&r, n, 3.0f, 0.0f), *dout = normals(&r, n, 1.0f, 0.0f);
    float *acc = calloc((size_t)n, sizeof(float)), *set = malloc(sizeof(float) * (size_t)n);
    const nn_act acts[] = {NN_GELU, NN_RELU};
    for (int a = 0; a < 2; a++)
        for (int t = 0; t < N_THREADS; t++) {
            omp_set_num_threads(THREADS[t]);
            memset(acc, 0, sizeof(float) * (size_t)n);
            memset(set, 0xff, sizeof(float) * (size_t)n); /* NaNs: every element must be written */
            assert_int_equal(nn_act_backward(&g_c, acts[a], acc, dout, x, n, g_err), 0);
            assert_int_equal(nn_act_backward_set(&g_c, acts[a], set, dout, x, n, g_err), 0);
            long differ = 0;
            for (long i = 0; i < n; i++) differ += !(set[i] == acc[i]);
            assert_int_equal(differ, 0);
        }
    free(x); free(dout); free(acc); free(set);
}

/* The MSE loss: 64 blocks of n/64 elements (block b from n b / 64), in each element i of the block
 * into running sum i % 8 while 8 remain, the rest into sum 0; sums combined ((0+1)+(2+3))+((4+5)+(6+7)),
 * blocks in order, / n. Backward: dpred = 0 + (float)(2 dloss / n) (pred - target), elementwise. */
static void test_loss_mse(void **state)
{
    (void)state;
    const long sizes[][2] = {{37, 101}, {1, 5}, {3, 1000}};
    rng_t r;
    rng_seed(&r, 16, 0);
    for (int k = 0; k < 3; k++) {
        long M = sizes[k][0], D = sizes[k][1], n = M * D;
        float *p = normals(&r, n, 1.0f, 0.5f), *t = normals(&r, n, 2.0f, 0.0f), *g0 = normals(&r, n, 1.0f, 0.0f);
        float *g = malloc(sizeof(float) * (size_t)n), *want_g = malloc(sizeof(float) * (size_t)n);
        double want = 0;
        long double exact = 0;
        for (int blk = 0; blk < 64; blk++) {
            double a[8] = {0};
            long i0 = n * blk / 64, i1 = n * (blk + 1) / 64, i = i0;
            for (; i + 8 <= i1; i += 8)
                for (int l = 0; l < 8; l++) a[l] += ((double)p[i + l] - t[i + l]) * ((double)p[i + l] - t[i + l]);
            for (; i < i1; i++) a[0] += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);
            want += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        }
        want /= n;
        for (long i = 0; i < n; i++) exact += ((long double)p[i] - t[i]) * ((long double)p[i] - t[i]);
        float s = (float)(2.0 * 0.75 / n);
        for (long i = 0; i < n; i++) want_g[i] = 0.0f + s * (p[i] - t[i]);
        for (int th = 0; th < N_THREADS; th++) {
            omp_set_num_threads(THREADS[th]);
            double got = loss_mse_forward(p, t, M, D);
            assert_memory_equal(&got, &want, sizeof got);
            assert_true(fabsl(got - exact / n) <= 1e-12L * (exact / n));
            memcpy(g, g0, sizeof(float) * (size_t)n);
            loss_mse_backward_set(g, p, t, M, D, 0.75); /* over g0: every value must be written */
            assert_memory_equal(g, want_g, sizeof(float) * (size_t)n);
        }
        free(p); free(t); free(g0); free(g); free(want_g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_stats),
        cmocka_unit_test(test_batch_stats_shifted),
        cmocka_unit_test(test_batchnorm_backward),
        cmocka_unit_test(test_bn_relu_fused),
        cmocka_unit_test(test_maxpool_forward),
        cmocka_unit_test(test_maxpool_backward_set),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_bicubic_sample),
        cmocka_unit_test(test_act_backward_set),
        cmocka_unit_test(test_loss_mse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
