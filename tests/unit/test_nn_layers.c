/* test_nn_layers.c -- every layer backward of nn.h against central finite differences.
 *
 * For a layer y = f(x, params), the scalar L = sum(y * R) (R fixed random) is differentiated both
 * ways: analytically (backward with dout = R, gradients zeroed first) and by central differences
 * in float32 with eps = 1e-3 on a sample of up to 24 entries of every input and parameter.
 * Tolerance: |fd - an| <= 1e-2 * max(|fd|, |an|) + 2e-3 (float32 forward, L of order 1-10).
 * Also checked: backward accumulates (a second call doubles the gradients).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "nn.h"
#include "rng.h"
#include "support_dnn.h"
#include "support_inputs.h"
#include "support_ref.h"

#define FD_EPS 1e-3f
#define FD_REL 1e-2
#define FD_ABS 2e-3

static char g_err[I2P_ERR_LEN];

/* n floats uniform in [lo, hi) from stream 7 of seed */
static float *rnd(long n, uint64_t seed, double lo, double hi)
{
    return test_uniform(n, seed, 7, lo, hi);
}

/* The layer under test: forward into out (n_out), backward with dout into the registered grads. */
typedef struct layer_case layer_case;
struct layer_case {
    int (*forward)(layer_case *t, float *out);
    int (*backward)(layer_case *t, const float *dout);
    float *x[4], *dx[4];
    long nx[4];
    int n_in;
    long n_out;
    long B, T, C, H, K, N;  /* shapes, by layer */
    float *save[4];         /* forward state (stats, att, argmax) */
    int32_t *arg;
};

static double loss_of(layer_case *t, const float *R, float *out)
{
    int rc = t->forward(t, out);
    if (rc) printf("forward: %s\n", g_err);
    assert_int_equal(rc, 0);
    double L = 0;
    for (long i = 0; i < t->n_out; i++) L += (double)out[i] * R[i];
    return L;
}

static void fd_check(layer_case *t, const char *name)
{
    float *R = rnd(t->n_out, 99, -1, 1);
    float *out = malloc(sizeof(float) * (size_t)t->n_out);
    for (int a = 0; a < t->n_in; a++) memset(t->dx[a], 0, sizeof(float) * (size_t)t->nx[a]);
    loss_of(t, R, out);
    int rc = t->backward(t, R);
    if (rc) printf("%s: %s\n", name, g_err);
    assert_int_equal(rc, 0);
    int bad = 0;
    for (int a = 0; a < t->n_in; a++) {
        long n = t->nx[a], step = n > 24 ? n / 24 : 1;
        for (long i = 0; i < n; i += step) {
            float keep = t->x[a][i];
            t->x[a][i] = keep + FD_EPS;
            double lp = loss_of(t, R, out);
            t->x[a][i] = keep - FD_EPS;
            double lm = loss_of(t, R, out);
            t->x[a][i] = keep;
            double fd = (lp - lm) / (2.0 * FD_EPS), an = t->dx[a][i];
            double tol = FD_REL * fmax(fabs(fd), fabs(an)) + FD_ABS;
            if (fabs(fd - an) > tol) {
                printf("%s: input %d [%ld]: fd %.6g analytic %.6g NOT OK\n", name, a, i, fd, an);
                bad++;
            }
        }
    }
    /* accumulation: a second backward adds the same again */
    float *first = malloc(sizeof(float) * (size_t)t->nx[0]);
    memcpy(first, t->dx[0], sizeof(float) * (size_t)t->nx[0]);
    loss_of(t, R, out);
    assert_int_equal(t->backward(t, R), 0);
    for (long i = 0; i < t->nx[0]; i++)
        if (fabs(t->dx[0][i] - 2 * first[i]) > 1e-4 * (1 + fabs(first[i]))) { bad++; break; }
    printf("%s: %s\n", name, bad ? "NOT OK" : "OK");
    assert_int_equal(bad, 0);
    free(first);
    free(R);
    free(out);
}

static void case_alloc(layer_case *t, int a, long n, uint64_t seed, double lo, double hi)
{
    t->x[a] = rnd(n, seed, lo, hi);
    t->dx[a] = calloc((size_t)n, sizeof(float));
    t->nx[a] = n;
    if (a + 1 > t->n_in) t->n_in = a + 1;
}

static void case_free(layer_case *t)
{
    for (int a = 0; a < 4; a++) { free(t->x[a]); free(t->dx[a]); free(t->save[a]); }
    free(t->arg);
}

/* ---- linear ---- */
static int lin_fwd(layer_case *t, float *out)
{
    return nn_linear_forward(&g_cache, out, t->x[0], t->x[1], t->x[2], t->B, t->K, t->N, g_err);
}
static int lin_bwd(layer_case *t, const float *dout)
{
    return nn_linear_backward(&g_cache, t->dx[0], t->dx[1], t->dx[2], dout, t->x[0], t->x[1], t->B, t->K,
                              t->N, g_err);
}
static void test_linear(void **state)
{
    (void)state;
    layer_case t = {.forward = lin_fwd, .backward = lin_bwd, .B = 7, .K = 5, .N = 6};
    case_alloc(&t, 0, t.B * t.K, 1, -1, 1);
    case_alloc(&t, 1, t.N * t.K, 2, -1, 1);
    case_alloc(&t, 2, t.N, 3, -1, 1);
    t.n_out = t.B * t.N;
    fd_check(&t, "linear");
    /* forward value against a direct sum */
    float out[42];
    lin_fwd(&t, out);
    double s = t.x[2][1];
    for (long k = 0; k < t.K; k++) s += (double)t.x[0][2 * t.K + k] * t.x[1][1 * t.K + k];
    assert_true(fabs(out[2 * t.N + 1] - s) < 1e-5);
    case_free(&t);
}

/* nn_linear_backward_set: dinp overwritten (NaN before) = nn_linear_backward's += into zeros, bitwise;
 * dw and db accumulated as there. M 2500 > the weight gradient's row chunk, so its chunked sum runs. */
static void test_linear_set(void **state)
{
    (void)state;
    long M = 2500, K = 40, N = 24;
    float *x = rnd(M * K, 11, -1, 1), *w = rnd(N * K, 12, -1, 1), *dout = rnd(M * N, 13, -1, 1);
    float *di1 = malloc(sizeof(float) * (size_t)(M * K)), *di2 = calloc((size_t)(M * K), sizeof(float));
    float *dw1 = rnd(N * K, 14, -1, 1), *dw2 = rnd(N * K, 14, -1, 1), *db1 = rnd(N, 15, -1, 1), *db2 = rnd(N, 15, -1, 1);
    for (long i = 0; i < M * K; i++) di1[i] = NAN;
    assert_int_equal(nn_linear_backward_set(&g_cache, di1, dw1, db1, dout, x, w, M, K, N, g_err), 0);
    assert_int_equal(nn_linear_backward(&g_cache, di2, dw2, db2, dout, x, w, M, K, N, g_err), 0);
    assert_memory_equal(di1, di2, sizeof(float) * (size_t)(M * K));
    assert_memory_equal(dw1, dw2, sizeof(float) * (size_t)(N * K));
    assert_memory_equal(db1, db2, sizeof(float) * (size_t)N);
    /* and it is a product: one entry against a direct sum */
    double s = 0;
    for (long n = 0; n < N; n++) s += (double)dout[7 * N + n] * w[n * K + 3];
    assert_true(fabs(di1[7 * K + 3] - s) < 1e-5);
    free(x); free(w); free(dout); free(di1); free(di2); free(dw1); free(dw2); free(db1); free(db2);
}

/* The packed weights (M >= NN_WPACK_ROWS, nn.h): forward and backward data against direct sums in
 * double (|error| <= 1e-5 (1 + sum |terms|), f32 accumulation over K = 40 or N = 72, N not a multiple
 * of oneDNN's 64-column blocks); the first rows the same bits as a call of fewer rows than
 * NN_WPACK_ROWS (plain weights); and a change of w seen by the next call (no stale packed copy). */
static int packed_check(const char *name, const float *got, const float *a, long sa0, long sa1, const float *b,
                        long sb0, long sb1, const float *bias, long rows, long n, long cols)
{
    double *ref = malloc(sizeof(double) * (size_t)(rows * cols)), *as = malloc(sizeof(double) * (size_t)(rows * cols));
    ref_matmul(ref, as, a, sa0, sa1, b, sb0, sb1, rows, n, cols);
    int bad = 0;
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++) {
            double bj = bias ? bias[j] : 0, s = ref[i * cols + j] + bj, scale = as[i * cols + j] + fabs(bj);
            if (fabs(got[i * cols + j] - s) > 1e-5 * (1 + scale)) bad++;
        }
    printf("%s: %ld x %ld against the double sums: %s\n", name, rows, cols, bad ? "NOT OK" : "OK");
    free(ref);
    free(as);
    return bad;
}

static void test_linear_packed(void **state)
{
    (void)state;
    long M = NN_WPACK_ROWS + 77, Ms = NN_WPACK_ROWS / 4, K = 40, N = 72;
    float *x = rnd(M * K, 21, -1, 1), *w = rnd(N * K, 22, -1, 1), *b = rnd(N, 23, -1, 1);
    float *dout = rnd(M * N, 24, -1, 1);
    float *y = malloc(sizeof(float) * (size_t)(M * N)), *ys = malloc(sizeof(float) * (size_t)(Ms * N));
    float *dx = malloc(sizeof(float) * (size_t)(M * K)), *dxs = malloc(sizeof(float) * (size_t)(Ms * K));
    int bad = 0;
    for (int round = 0; round < 2; round++) {
        if (round) /* new weights: the next calls must see them */
            for (long i = 0; i < N * K; i++) w[i] = -0.5f * w[i] + 0.125f;
        assert_int_equal(nn_linear_forward(&g_cache, y, x, w, b, M, K, N, g_err), 0);
        assert_int_equal(nn_linear_forward(&g_cache, ys, x, w, b, Ms, K, N, g_err), 0);
        bad += packed_check("packed forward", y, x, K, 1, w, 1, K, b, M, K, N);
        if (memcmp(y, ys, sizeof(float) * (size_t)(Ms * N))) { printf("packed forward: rows differ from plain NOT OK\n"); bad++; }
        assert_int_equal(nn_linear_backward_set(&g_cache, dx, NULL, NULL, dout, x, w, M, K, N, g_err), 0);
        assert_int_equal(nn_linear_backward_set(&g_cache, dxs, NULL, NULL, dout, x, w, Ms, K, N, g_err), 0);
        bad += packed_check("packed input gradient", dx, dout, N, 1, w, K, 1, NULL, M, N, K);
        if (memcmp(dx, dxs, sizeof(float) * (size_t)(Ms * K))) { printf("packed input gradient: rows differ NOT OK\n"); bad++; }
    }
    assert_int_equal(bad, 0);
    free(x); free(w); free(b); free(dout); free(y); free(ys); free(dx); free(dxs);
}

/* ---- layer norm ---- */
static int ln_fwd(layer_case *t, float *out)
{
    return nn_layernorm_forward(&g_cache, out, t->save[0], t->save[1], t->x[0], t->x[1], t->x[2], t->B,
                                t->C, g_err);
}
static int ln_bwd(layer_case *t, const float *dout)
{
    return nn_layernorm_backward(&g_cache, t->dx[0], t->dx[1], t->dx[2], dout, t->x[0], t->x[1], t->x[2],
                                 t->save[0], t->save[1], t->B, t->C, g_err);
}
static void test_layernorm(void **state)
{
    (void)state;
    layer_case t = {.forward = ln_fwd, .backward = ln_bwd, .B = 5, .C = 8};
    case_alloc(&t, 0, t.B * t.C, 4, -2, 2);
    case_alloc(&t, 1, t.C, 5, 0.5, 1.5);
    case_alloc(&t, 2, t.C, 6, -1, 1);
    t.save[0] = malloc(sizeof(float) * 5);
    t.save[1] = malloc(sizeof(float) * 5);
    t.n_out = t.B * t.C;
    fd_check(&t, "layernorm");
    case_free(&t);
}

/* ---- batch norm (training statistics) ---- */
static int bn_fwd(layer_case *t, float *out)
{
    return nn_batchnorm_forward_train(&g_cache, out, t->save[0], t->save[1], t->x[0], t->x[1], t->x[2],
                                      NULL, NULL, t->B, t->C, g_err);
}
static int bn_bwd(layer_case *t, const float *dout)
{
    return nn_batchnorm_backward(&g_cache, t->dx[0], t->dx[1], t->dx[2], dout, t->x[0], t->x[1], t->x[2],
                                 t->save[0], t->save[1], t->B, t->C, g_err);
}
static void test_batchnorm(void **state)
{
    (void)state;
    layer_case t = {.forward = bn_fwd, .backward = bn_bwd, .B = 9, .C = 4};
    case_alloc(&t, 0, t.B * t.C, 7, -2, 2);
    case_alloc(&t, 1, t.C, 8, 0.5, 1.5);
    case_alloc(&t, 2, t.C, 9, -1, 1);
    t.save[0] = malloc(sizeof(float) * 4);
    t.save[1] = malloc(sizeof(float) * 4);
    t.n_out = t.B * t.C;
    fd_check(&t, "batchnorm");
    /* running statistics: momentum 0.1, unbiased variance */
    float rm[4] = {0}, rv[4] = {1, 1, 1, 1}, out[36];
    assert_int_equal(nn_batchnorm_forward_train(&g_cache, out, t.save[0], t.save[1], t.x[0], t.x[1], t.x[2],
                                                rm, rv, t.B, t.C, g_err), 0);
    double m = 0, v = 0;
    for (long i = 0; i < t.B; i++) m += t.x[0][i * 4 + 2];
    m /= t.B;
    for (long i = 0; i < t.B; i++) v += (t.x[0][i * 4 + 2] - m) * (t.x[0][i * 4 + 2] - m);
    assert_true(fabs(rm[2] - 0.1 * m) < 1e-5);
    assert_true(fabs(rv[2] - (0.9 + 0.1 * v / (t.B - 1))) < 1e-5);
    case_free(&t);
}

/* ---- activations ---- */
static int act_fwd(layer_case *t, float *out)
{
    return nn_act_forward(&g_cache, (nn_act)t->H, out, t->x[0], t->nx[0], g_err);
}
static int act_bwd(layer_case *t, const float *dout)
{
    return nn_act_backward(&g_cache, (nn_act)t->H, t->dx[0], dout, t->x[0], t->nx[0], g_err);
}
static void test_gelu_relu(void **state)
{
    (void)state;
    layer_case t = {.forward = act_fwd, .backward = act_bwd, .H = NN_GELU};
    case_alloc(&t, 0, 30, 10, -3, 3);
    t.n_out = 30;
    fd_check(&t, "gelu");
    /* relu: keep inputs away from the kink */
    for (long i = 0; i < 30; i++) t.x[0][i] += t.x[0][i] > 0 ? 0.1f : -0.1f;
    t.H = NN_RELU;
    fd_check(&t, "relu");
    case_free(&t);
}

/* ---- attention core with padded keys ---- */
static int att_fwd(layer_case *t, float *out)
{
    return nn_attention_forward(&g_cache, out, t->save[0], t->x[0], t->save[1], t->B, t->T, t->C, t->H, g_err);
}
static int att_bwd(layer_case *t, const float *dout)
{
    return nn_attention_backward(&g_cache, t->dx[0], dout, t->x[0], t->save[0], t->B, t->T, t->C, t->H, g_err);
}
static void test_attention(void **state)
{
    (void)state;
    layer_case t = {.forward = att_fwd, .backward = att_bwd, .B = 2, .T = 5, .C = 8, .H = 2};
    case_alloc(&t, 0, t.B * t.T * 3 * t.C, 11, -1, 1);
    long natt = t.B * t.H * t.T * t.T;
    t.save[0] = malloc(sizeof(float) * (size_t)natt);
    t.save[1] = calloc((size_t)(t.B * t.T), sizeof(float));
    t.save[1][1 * t.T + 4] = -1e5f; /* sample 1, key 4 padded */
    t.save[1][1 * t.T + 3] = -1e5f;
    t.n_out = t.B * t.T * t.C;
    fd_check(&t, "attention");
    /* forward against a direct computation for (b=1, h=1, query 2) */
    float *out = malloc(sizeof(float) * (size_t)t.n_out);
    att_fwd(&t, out);
    long C = t.C, hd = 4, b = 1, h = 1, i = 2;
    const float *q = t.x[0];
    double s[5], mx = -1e30, z = 0;
    for (long j = 0; j < 5; j++) {
        double d = 0;
        for (long e = 0; e < hd; e++)
            d += (double)q[(b * 5 + i) * 3 * C + h * hd + e] * q[(b * 5 + j) * 3 * C + C + h * hd + e];
        s[j] = d / 2.0 + t.save[1][b * 5 + j];
        if (s[j] > mx) mx = s[j];
    }
    for (long j = 0; j < 5; j++) z += exp(s[j] - mx);
    for (long e = 0; e < hd; e++) {
        double o = 0;
        for (long j = 0; j < 5; j++) o += exp(s[j] - mx) / z * q[(b * 5 + j) * 3 * C + 2 * C + h * hd + e];
        assert_true(fabs(out[(b * 5 + i) * C + h * hd + e] - o) < 1e-5);
    }
    free(out);
    case_free(&t);
}

/* ---- attention in blocks of samples ----
 * nn_attention_* run the (B,H,T,T) chain in blocks of samples (nn_attention.c); every op works per
 * sample (the matmuls per batch element, the softmax per row), so sample b of a batch call must give
 * the bits of a call on sample b alone: output, probabilities and the three gradients, with a key
 * bias and a pair bias that differ per sample. T = 256, H = 6: 1.5 MB of f32 scores per sample, so
 * B = 7 runs in several blocks, the last one partial (with nn_attention.c's 4 MB: blocks of 2).
 * The batch calls run at 1, 2 and 3 threads against the 1-thread per-sample calls: at 2 and 3 the
 * full blocks run side by side (2 and then 1 on all threads, or 3; then the partial one), each on
 * one-thread primitives (slot 1 and up must have been created), each block once (as many primitive
 * executions as at 1 thread). */
static int side_prims(void)
{
    int n = 0;
    for (int i = 0; i < g_cache.n_prims; i++) {
        const nn_prim *p = &g_cache.prims[i];
        n += (p->kind == NN_K_ATT_QK || p->kind == NN_K_ATT_DP) && p->one_thread && p->key[9] > 1;
    }
    return n;
}

static int attention_blocks_case(nn_precision prec)
{
    long B = 7, T = 256, C = 12, H = 6, nx = T * C, ns = H * T * T;
    size_t es = prec == NN_BF16 ? 2 : 4; /* bytes per saved probability */
    float *qkv = rnd(B * 3 * nx, 31, -2, 2), *dout = rnd(B * nx, 32, -1, 1);
    float *kb = calloc((size_t)(B * T), sizeof(float)), *pb = calloc((size_t)(B * T * T), sizeof(float));
    for (long b = 0; b < B; b++) {
        for (long t = T - 3 * b; t < T; t++) kb[b * T + t] = -1e5f;
        for (long i = 0; i < T; i++)
            for (long j = 0; j < T; j++)
                if (i != j && (i * 7 + j * 3 + b) % 5 == 0) pb[(b * T + i) * T + j] = -1e5f;
    }
    float *out = malloc(sizeof(float) * (size_t)(B * nx)), *att = malloc(sizeof(float) * (size_t)(B * ns)),
          *dqkv = malloc(sizeof(float) * (size_t)(B * 3 * nx)), *o1 = malloc(sizeof(float) * (size_t)(B * nx)),
          *a1 = malloc(sizeof(float) * (size_t)(B * ns)), *g1 = calloc((size_t)(B * 3 * nx), sizeof(float));
    for (long b = 0; b < B; b++) { /* one sample per call, 1 thread: the reference bits */
        assert_int_equal(nn_attention_forward_bias(&g_cache, o1 + b * nx, (float *)((char *)a1 + es * (size_t)(b * ns)),
                                                   qkv + b * 3 * nx, kb + b * T, pb + b * T * T, 1, T, C, H, g_err),
                         0);
        assert_int_equal(nn_attention_backward(&g_cache, g1 + b * 3 * nx, dout + b * nx, qkv + b * 3 * nx,
                                               (float *)((char *)a1 + es * (size_t)(b * ns)), 1, T, C, H, g_err),
                         0);
    }
    int bad_all = 0;
    long n_exec1 = 0;
    for (int nthr = 1; nthr <= 3; nthr++) {
        omp_set_num_threads(nthr);
        memset(out, 0xff, sizeof(float) * (size_t)(B * nx)); /* NaNs where a call writes nothing */
        memset(att, 0xff, sizeof(float) * (size_t)(B * ns));
        memset(dqkv, 0, sizeof(float) * (size_t)(B * 3 * nx)); /* the gradient is added to dqkv */
        long n0 = g_cache.n_exec;
        assert_int_equal(nn_attention_forward_bias(&g_cache, out, att, qkv, kb, pb, B, T, C, H, g_err), 0);
        assert_int_equal(nn_attention_backward(&g_cache, dqkv, dout, qkv, att, B, T, C, H, g_err), 0);
        omp_set_num_threads(1);
        if (nthr == 1) n_exec1 = g_cache.n_exec - n0;
        if (g_cache.n_exec - n0 != n_exec1) { /* each block once, side by side or not */
            printf("attention in blocks, %d threads: %ld executions, at 1 thread %ld: NOT OK\n", nthr,
                   g_cache.n_exec - n0, n_exec1);
            bad_all++;
        }
        int bad[3] = {0, 0, 0};
        for (long b = 0; b < B; b++) {
            bad[0] += memcmp(o1 + b * nx, out + b * nx, sizeof(float) * (size_t)nx) != 0;
            size_t oa = es * (size_t)(b * ns);
            bad[1] += memcmp((char *)a1 + oa, (char *)att + oa, es * (size_t)ns) != 0;
            bad[2] += memcmp(g1 + b * 3 * nx, dqkv + b * 3 * nx, sizeof(float) * (size_t)(3 * nx)) != 0;
        }
        const char *names[] = {"output", "probabilities", "dqkv"};
        for (int i = 0; i < 3; i++)
            printf("attention in blocks, %s, %d threads: %s per-sample bits: %d of %ld samples differ: %s\n",
                   nn_precision_name(prec), nthr, names[i], bad[i], B, bad[i] ? "NOT OK" : "OK");
        bad_all += bad[0] + bad[1] + bad[2];
    }
    free(qkv); free(dout); free(kb); free(pb); free(out); free(att); free(dqkv); free(o1); free(a1); free(g1);
    return bad_all;
}

static void test_attention_blocks(void **state)
{
    (void)state;
    int bad = attention_blocks_case(NN_FP32);
    if (nn_cache_set_precision(&g_cache, NN_BF16, g_err) == 0) {
        bad += attention_blocks_case(NN_BF16);
        assert_int_equal(nn_cache_set_precision(&g_cache, NN_FP32, g_err), 0);
    } else
        printf("no bf16 here (%s): f32 only\n", g_err);
    assert_int_equal(bad, 0);
    /* slots 1 and 2 (key slot + 1 = 2, 3) of the score and score-gradient products: side by side ran */
    assert_true(side_prims() >= 4);
}

/* ---- max-pool over neighbours ---- */
static int mp_fwd(layer_case *t, float *out)
{
    nn_maxpool_forward(out, t->arg, t->x[0], t->B, t->K, t->C);
    return 0;
}
static int mp_bwd(layer_case *t, const float *dout)
{
    nn_maxpool_backward(t->dx[0], dout, t->arg, t->B, t->K, t->C);
    return 0;
}
static void test_maxpool(void **state)
{
    (void)state;
    layer_case t = {.forward = mp_fwd, .backward = mp_bwd, .B = 3, .K = 4, .C = 5};
    case_alloc(&t, 0, 60, 12, -1, 1);
    t.arg = malloc(sizeof(int32_t) * 15);
    t.n_out = 15;
    fd_check(&t, "maxpool");
    case_free(&t);
}

/* ---- nn_add: the serial loop below NN_ADD_SERIAL_MAX (16384) elements and the oneDNN binary
 * primitive above give bitwise the float sums a[i] + b[i], also in place (out == a). */
static void test_add_paths(void **state)
{
    (void)state;
    const long sizes[] = {1, 96, 16384, 16385, 40000};
    rng_t r;
    rng_seed(&r, 7, 0);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        long n = sizes[s];
        float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n),
              *out = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n);
        for (long i = 0; i < n; i++) {
            a[i] = (float)rng_normal(&r) * 1e3f;
            b[i] = (float)rng_normal(&r) * 1e-3f;
            want[i] = a[i] + b[i];
        }
        assert_int_equal(nn_add(&g_cache, out, a, b, n, g_err), 0);
        assert_memory_equal(out, want, sizeof(float) * (size_t)n);
        assert_int_equal(nn_accumulate(&g_cache, a, b, n, g_err), 0);
        assert_memory_equal(a, want, sizeof(float) * (size_t)n);
        free(a); free(b); free(out); free(want);
    }
}

int main(void)
{
    /* tiny shapes: one thread (OpenMP barriers on a loaded 2-core machine cost 50x the work) */
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_set),
        cmocka_unit_test(test_linear_packed),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_batchnorm), cmocka_unit_test(test_gelu_relu),
        cmocka_unit_test(test_attention), cmocka_unit_test(test_attention_blocks), cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_add_paths),
    };
    return cmocka_run_group_tests(tests, dnn_cache_group_setup, dnn_cache_group_teardown);
}
