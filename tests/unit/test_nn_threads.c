/* test_nn_threads.c -- the backwards whose sums oneDNN 2.6 split between threads (the linear weight
 * gradient over more than 1024 rows, layer and batch normalisation's parameter gradients, batch
 * normalisation's input gradient) give the same bits at 1, 2 and 3 OpenMP threads (a fresh nn_cache
 * per thread count: oneDNN fixes a primitive's thread split when it is created), and the same values
 * as sums in double written here (relative to the sum of the terms' magnitudes: 1e-5, float32).
 * The linear weight gradient also in bf16 precision (bf16 inputs, f32 sums), against the double sums
 * of the inputs rounded to bf16 here (their products are exact in float32); the bias gradient the same
 * in both precisions.
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

#include "errors.h"
#include "nn.h"
#include "support_dnn.h"
#include "support_inputs.h"

#define REL_TOL 1e-5

enum { OP_LINEAR, OP_LAYERNORM, OP_BATCHNORM };

typedef struct {
    int op;
    nn_precision prec; /* linear only */
    long M, K, N; /* linear: rows, inputs, outputs; norms: rows M, channels K */
    float *inp, *w, *b, *dout, *mean, *var;
} grad_case;

static void case_make(grad_case *t, int op, long M, long K, long N)
{
    t->op = op, t->prec = NN_FP32, t->M = M, t->K = K, t->N = N;
    long C = op == OP_LINEAR ? N : K;
    t->inp = test_uniform(M * K, 11, 1, -2, 2);
    t->w = test_uniform(op == OP_LINEAR ? N * K : K, 12, 1, 0.5, 1.5);
    t->b = test_uniform(K, 13, 1, -1, 1);
    t->dout = test_uniform(M * C, 14, 1, -1, 1);
    long ns = op == OP_LAYERNORM ? M : K;
    t->mean = calloc(ns, sizeof(float));
    t->var = calloc(ns, sizeof(float));
}

static void case_free(grad_case *t)
{
    free(t->inp), free(t->w), free(t->b), free(t->dout), free(t->mean), free(t->var);
}

/* The gradients (dinp, dw, db, zeroed first) at nthr threads with a fresh cache; the norms' statistics
 * come from their forward. */
static void run_at(grad_case *t, int nthr, float *dinp, float *dw, float *db)
{
    char err[I2P_ERR_LEN];
    nn_cache c;
    omp_set_num_threads(nthr);
    assert_int_equal(nn_cache_init(&c, &g_dnn, 16, err), 0);
    assert_int_equal(nn_cache_set_precision(&c, t->prec, err), 0);
    long M = t->M, K = t->K;
    if (t->op == OP_LINEAR) {
        assert_int_equal(nn_linear_backward(&c, dinp, dw, db, t->dout, t->inp, t->w, M, K, t->N, err), 0);
    } else {
        float *y = malloc(sizeof(float) * M * K);
        if (t->op == OP_LAYERNORM)
            assert_int_equal(nn_layernorm_forward(&c, y, t->mean, t->var, t->inp, t->w, t->b, M, K, err) ||
                             nn_layernorm_backward(&c, dinp, dw, db, t->dout, t->inp, t->w, t->b, t->mean,
                                                   t->var, M, K, err), 0);
        else
            assert_int_equal(nn_batchnorm_forward_train(&c, y, t->mean, t->var, t->inp, t->w, t->b, NULL, NULL,
                                                        M, K, err) ||
                             nn_batchnorm_backward(&c, dinp, dw, db, t->dout, t->inp, t->w, t->b, t->mean,
                                                   t->var, M, K, err), 0);
        free(y);
    }
    nn_cache_free(&c);
}

/* |got - want| <= REL_TOL * scale for every entry. */
static void expect_close(const char *what, const float *got, const double *want, const double *scale, long n)
{
    for (long i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > REL_TOL * scale[i] + 1e-30) {
            fail_msg("%s[%ld] = %.9g, want %.9g (scale %.3g)", what, i, got[i], want[i], scale[i]);
        }
}

/* x rounded to bf16 (nearest even; no subnormals or non-finite values arise here). */
static double bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* An input of the weight gradient's products as the matmul reads it. */
static double grad_input(const grad_case *t, float x)
{
    return t->prec == NN_BF16 ? bf16_round(x) : x;
}

/* The parameter gradients (and batch norm's dinp) in double, with the magnitudes of their terms. */
static void check_values(grad_case *t, const float *dinp, const float *dw, const float *db)
{
    long M = t->M, K = t->K, N = t->N;
    if (t->op == OP_LINEAR) {
        double *want = calloc(N * K, sizeof(double)), *scale = calloc(N * K, sizeof(double));
        for (long i = 0; i < M; i++)
            for (long n = 0; n < N; n++)
                for (long k = 0; k < K; k++) {
                    double v = grad_input(t, t->dout[i * N + n]) * grad_input(t, t->inp[i * K + k]);
                    want[n * K + k] += v, scale[n * K + k] += fabs(v);
                }
        expect_close("linear dw", dw, want, scale, N * K);
        free(want), free(scale);
        double *gb = calloc(N, sizeof(double)), *sb = calloc(N, sizeof(double)); /* db: f32 dout in both */
        for (long i = 0; i < M; i++)
            for (long n = 0; n < N; n++) gb[n] += t->dout[i * N + n], sb[n] += fabs(t->dout[i * N + n]);
        expect_close("linear db", db, gb, sb, N);
        free(gb), free(sb);
        return;
    }
    int ln = t->op == OP_LAYERNORM;
    double *gw = calloc(K, sizeof(double)), *gb = calloc(K, sizeof(double)), *sw = calloc(K, sizeof(double)),
           *sb = calloc(K, sizeof(double));
    for (long i = 0; i < M; i++)
        for (long j = 0; j < K; j++) {
            long s = ln ? i : j;
            double xhat = (t->inp[i * K + j] - (double)t->mean[s]) / sqrt((double)t->var[s] + 1e-5);
            double g = t->dout[i * K + j];
            gw[j] += g * xhat, sw[j] += fabs(g * xhat), gb[j] += g, sb[j] += fabs(g);
        }
    expect_close(ln ? "layernorm dw" : "batchnorm dw", dw, gw, sw, K);
    expect_close(ln ? "layernorm db" : "batchnorm db", db, gb, sb, K);
    if (!ln) { /* dx = w rstd (dout - (db + xhat dw) / M), terms bounded by w rstd (|g| + (sb + |xhat| sw) / M) */
        double *want = malloc(sizeof(double) * M * K), *scale = malloc(sizeof(double) * M * K);
        for (long i = 0; i < M; i++)
            for (long j = 0; j < K; j++) {
                double rstd = 1 / sqrt((double)t->var[j] + 1e-5), xhat = (t->inp[i * K + j] - (double)t->mean[j]) * rstd;
                double g = t->dout[i * K + j], f = t->w[j] * rstd;
                want[i * K + j] = f * (g - (gb[j] + xhat * gw[j]) / M);
                scale[i * K + j] = fabs(f) * (fabs(g) + (sb[j] + fabs(xhat) * sw[j]) / M);
            }
        expect_close("batchnorm dinp", dinp, want, scale, M * K);
        free(want), free(scale);
    }
    free(gw), free(gb), free(sw), free(sb);
}

static void check_case_prec(int op, nn_precision prec, long M, long K, long N)
{
    grad_case t;
    case_make(&t, op, M, K, N);
    t.prec = prec;
    long nd = M * K, nw = op == OP_LINEAR ? N * K : K, nb = op == OP_LINEAR ? N : K;
    float *g1[3], *g[3];
    for (int a = 0; a < 3; a++) {
        long n = a == 0 ? nd : a == 1 ? nw : nb;
        g1[a] = calloc(n, sizeof(float));
        g[a] = calloc(n, sizeof(float));
    }
    run_at(&t, 1, g1[0], g1[1], g1[2]);
    check_values(&t, g1[0], g1[1], g1[2]);
    for (int nthr = 2; nthr <= 3; nthr++) {
        for (int a = 0; a < 3; a++) memset(g[a], 0, sizeof(float) * (a == 0 ? nd : a == 1 ? nw : nb));
        run_at(&t, nthr, g[0], g[1], g[2]);
        assert_memory_equal(g[0], g1[0], sizeof(float) * nd);
        assert_memory_equal(g[1], g1[1], sizeof(float) * nw);
        assert_memory_equal(g[2], g1[2], sizeof(float) * nb);
    }
    for (int a = 0; a < 3; a++) free(g1[a]), free(g[a]);
    case_free(&t);
}

static void check_case(int op, long M, long K, long N)
{
    check_case_prec(op, NN_FP32, M, K, N);
}

/* 2500 rows: two 1024-row chunks and a shorter one; dW (8,3) was split at 2 threads by oneDNN 2.6. */
static void test_linear_dw_threads(void **state)
{
    (void)state;
    check_case(OP_LINEAR, 2500, 3, 8);
    check_case(OP_LINEAR, 2048, 3, 8);
    check_case(OP_LINEAR, 4096, 24, 40);
}

/* bf16 (K and N at least NN_BF16_MIN_DIM): the same chunks, read in bf16. */
static void test_linear_dw_bf16_threads(void **state)
{
    (void)state;
    check_case_prec(OP_LINEAR, NN_BF16, 2500, 16, 24);
    check_case_prec(OP_LINEAR, NN_BF16, 4096, 24, 40);
    check_case_prec(OP_LINEAR, NN_BF16, 3072, 384, 384);
}

/* The chunked weight gradient over M rows, bitwise, is the sum written here of the chunks' own products
 * (each one nn_linear_backward over the chunk's rows alone, onto zeros) added in chunk order, then added
 * to dw: acc = P0, acc += P1, ..., dw += acc. Whole (nn_linear_backward over M) and in pieces
 * (nn_linear_dw_begin / add / finish, pieces of 2 chunks, 1 chunk and the rest), at 1 to 5 threads
 * (2 to NN_SIDE_MAX = 4: full chunks computed side by side, one per thread; 1 and 5: each chunk split
 * between all threads). The same sum in reverse chunk order must differ (the comparison can fail). */
static void check_chunk_order(nn_precision prec, long M, long K, long N)
{
    char err[I2P_ERR_LEN];
    long R = nn_linear_dw_rows(), NK = N * K, n_chunks = (M + R - 1) / R;
    float *inp = test_uniform(M * K, 21, 1, -2, 2), *dout = test_uniform(M * N, 22, 1, -1, 1);
    float *dw0 = test_uniform(NK, 23, 1, -1, 1), *prod = malloc(sizeof(float) * NK * n_chunks);
    float *want = malloc(sizeof(float) * NK), *back = malloc(sizeof(float) * NK), *got = malloc(sizeof(float) * NK);
    float *work = malloc(sizeof(float) * 2 * NK);
    nn_cache c;
    omp_set_num_threads(1);
    assert_int_equal(nn_cache_init(&c, &g_dnn, 16, err), 0);
    assert_int_equal(nn_cache_set_precision(&c, prec, err), 0);
    for (long j = 0; j < n_chunks; j++) {
        long r0 = j * R, rows = M - r0 < R ? M - r0 : R;
        memset(prod + j * NK, 0, sizeof(float) * NK);
        assert_int_equal(nn_linear_backward(&c, NULL, prod + j * NK, NULL, dout + r0 * N, inp + r0 * K, NULL, rows,
                                            K, N, err), 0);
    }
    nn_cache_free(&c);
    for (long i = 0; i < NK; i++) {
        float acc = prod[i], rev = prod[(n_chunks - 1) * NK + i];
        for (long j = 1; j < n_chunks; j++) acc += prod[j * NK + i], rev += prod[(n_chunks - 1 - j) * NK + i];
        want[i] = dw0[i] + acc, back[i] = dw0[i] + rev;
    }
    assert_true(memcmp(want, back, sizeof(float) * NK) != 0);
    for (int nthr = 1; nthr <= NN_SIDE_MAX + 1; nthr++) {
        omp_set_num_threads(nthr);
        assert_int_equal(nn_cache_init(&c, &g_dnn, 16, err), 0);
        assert_int_equal(nn_cache_set_precision(&c, prec, err), 0);
        memcpy(got, dw0, sizeof(float) * NK);
        assert_int_equal(nn_linear_backward(&c, NULL, got, NULL, dout, inp, NULL, M, K, N, err), 0);
        assert_memory_equal(got, want, sizeof(float) * NK);
        nn_dw_sum sum;
        long piece[] = {2 * R, R, M - 3 * R};
        nn_linear_dw_begin(&sum, work, K, N);
        for (long p = 0, r0 = 0; p < 3; r0 += piece[p], p++)
            assert_int_equal(nn_linear_dw_add(&c, &sum, dout + r0 * N, inp + r0 * K, piece[p], err), 0);
        memcpy(got, dw0, sizeof(float) * NK);
        assert_int_equal(nn_linear_dw_finish(&sum, got, err), 0);
        assert_memory_equal(got, want, sizeof(float) * NK);
        nn_cache_free(&c);
    }
    free(inp), free(dout), free(dw0), free(prod), free(want), free(back), free(got), free(work);
}

/* 4.5 chunks: N > K (K = 3 and 24 x 40: the products summed as dW^T) and N < K (40 x 24: as dW), f32;
 * bf16 for a bf16 layer.
 * 9.5 chunks: several groups of full chunks side by side (dw_add_side), then the partial one. */
static void test_linear_dw_chunk_order(void **state)
{
    (void)state;
    check_chunk_order(NN_FP32, 4608, 3, 40);
    check_chunk_order(NN_FP32, 4608, 24, 40);
    check_chunk_order(NN_FP32, 4608, 40, 24);
    check_chunk_order(NN_BF16, 4608, 24, 40);
    check_chunk_order(NN_FP32, 9728, 24, 40);
    check_chunk_order(NN_BF16, 9728, 40, 24);
}

/* The bias gradient (nn_col_sums_add; in a bf16 layer nn_col_sums_to_bf16_add, summed while dout is
 * converted) is the same in both precisions, bitwise, at 1 to 3 threads, onto a nonzero db; the fused
 * conversion writes nn_to_bf16's bits. 70000 x 128 values: past the size from which the conversion
 * streams its stores, and a last row block of 112 rows. Values against double sums: check_values. */
static void check_bias_grad(long M, long N)
{
    char err[I2P_ERR_LEN];
    long K = 16;
    float *inp = test_uniform(M * K, 31, 1, -2, 2), *dout = test_uniform(M * N, 32, 1, -1, 1);
    float *w = test_uniform(N * K, 33, 1, -1, 1), *db0 = test_uniform(N, 34, 1, -1, 1);
    float *want = malloc(sizeof(float) * N), *got = malloc(sizeof(float) * N), *dinp = malloc(sizeof(float) * M * K);
    uint16_t *conv = malloc(sizeof(uint16_t) * M * N), *ref = malloc(sizeof(uint16_t) * M * N);
    double *sc = malloc(sizeof(double) * nn_col_sums_scratch(N));
    nn_cache c;
    omp_set_num_threads(1);
    memcpy(want, db0, sizeof(float) * N);
    nn_col_sums_add(want, dout, M, N, sc);
    for (long n = 0; n < N; n++) { /* db0 + the double sum, rounded: within a float ulp or two */
        double d = 0, a = 0;
        for (long i = 0; i < M; i++) d += dout[i * N + n], a += fabs(dout[i * N + n]);
        assert_true(fabs(want[n] - (db0[n] + d)) <= 1e-6 * (a + fabs(db0[n])));
    }
    for (int nthr = 1; nthr <= 3; nthr++)
        for (int prec = NN_FP32; prec <= NN_BF16; prec++) {
            omp_set_num_threads(nthr);
            assert_int_equal(nn_cache_init(&c, &g_dnn, 16, err), 0);
            assert_int_equal(nn_cache_set_precision(&c, (nn_precision)prec, err), 0);
            memcpy(got, db0, sizeof(float) * N);
            assert_int_equal(nn_linear_backward(&c, dinp, NULL, got, dout, inp, w, M, K, N, err), 0);
            assert_memory_equal(got, want, sizeof(float) * N);
            nn_cache_free(&c);
            memcpy(got, db0, sizeof(float) * N);
            nn_col_sums_to_bf16_add(got, conv, dout, M, N, sc);
            assert_memory_equal(got, want, sizeof(float) * N);
            nn_to_bf16(ref, dout, M * N);
            assert_memory_equal(conv, ref, sizeof(uint16_t) * M * N);
        }
    free(inp), free(dout), free(w), free(db0), free(want), free(got), free(dinp), free(conv), free(ref);
    free(sc);
}

static void test_linear_bias_grad(void **state)
{
    (void)state;
    check_bias_grad(2500, 24);
    check_bias_grad(70000, 128);
}

static void test_layernorm_threads(void **state)
{
    (void)state;
    check_case(OP_LAYERNORM, 300, 24, 0);
    check_case(OP_LAYERNORM, 256, 12, 0);
}

/* channels 12 and 24 took oneDNN's bnorm_tbb_jit, whose sums depended on the thread count */
static void test_batchnorm_threads(void **state)
{
    (void)state;
    check_case(OP_BATCHNORM, 512, 12, 0);
    check_case(OP_BATCHNORM, 700, 24, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_dw_threads),
        cmocka_unit_test(test_linear_dw_bf16_threads),
        cmocka_unit_test(test_linear_dw_chunk_order),
        cmocka_unit_test(test_linear_bias_grad),
        cmocka_unit_test(test_layernorm_threads),
        cmocka_unit_test(test_batchnorm_threads),
    };
    return cmocka_run_group_tests(tests, dnn_group_setup, dnn_group_teardown);
}
