/* test_nn_bf16.c -- the bf16 mixed-precision matmuls of nn.h (NN_BF16) against references computed
 * here in double.
 *
 * Rounding: bf16 keeps 8 significant bits, so rounding to nearest moves a value by at most
 * u16 = 2^-9 of its magnitude; f32 accumulation adds at most (n-1) u32 (u32 = 2^-24) of the sum of
 * the |terms| over a reduction of length n. A product of two bf16 values (8 + 8 bits) is exact in f32.
 * Hence, for y = sum_k a_k b_k over n terms (+ bias b0), per output element:
 *  (1) against the reference on the bf16-rounded inputs, in double:
 *        |y - ref_r| <= (n + 1) u32 (sum_k |a_k^r b_k^r| + |b0|)            [f32 accumulation only]
 *  (2) against the reference on the unrounded inputs, in double:
 *        |y - ref| <= (2 u16 + u16^2) sum_k |a_k b_k| + (n + 1) u32 (sum_k |a_k^r b_k^r| + |b0|)
 * Both are checked for the forward (n = K), the input gradient (n = N) and the weight gradient
 * (n = M, the batch reduction, accumulated into an f32 gradient that already holds values); the
 * bias gradient is an f32 sum of the unrounded output gradient: (M + 1) u32 sum |dout|.
 * The bf16 path must also differ from the f32 one (it is really taken), give the same bits with a
 * declared bf16 weight copy as without, and the conversion must round to nearest even.
 * Attention (softmax of bf16 products, then bf16 probabilities times bf16 values): checked against
 * the f32 path of the same library (itself checked against finite differences and PyTorch) with a
 * normwise bound 2^-5 max|f32| per tensor: rounding of the three inputs and of the probabilities
 * (4 u16 relative, ~8e-3) and the softmax's sensitivity to the score error, with margin.
 * The probabilities come back as bf16 (att's first half) and are compared as such; head dimensions
 * 64, 32 and 16 (stages 2, 1, 0 of the spec's network).
 * Below the threshold of nn.h (fewer than NN_BF16_MIN_DIM inputs or outputs) the results are the
 * f32 ones, bit for bit.
 * The fused forms equal the stored ones bitwise: BatchNorm's backward into a sink (rows handed over
 * piece by piece) and the linear backward from an output gradient given in bf16.
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
#include "support_inputs.h"
#include "support_ref.h"

#define U16 (1.0 / 512.0)       /* 2^-9: bf16 rounding, relative */
#define U32 (1.0 / 16777216.0)  /* 2^-24: f32 rounding, relative */

static dnn_ctx g_dnn;
static nn_cache g_c;
static char g_err[I2P_ERR_LEN];
static int g_bf16_ok;

static int setup(void **state)
{
    (void)state;
    if (dnn_ctx_create(&g_dnn, g_err) || nn_cache_init(&g_c, &g_dnn, 128, g_err)) return -1;
    g_bf16_ok = nn_cache_set_precision(&g_c, NN_BF16, g_err) == 0;
    if (!g_bf16_ok) printf("no bf16 support here: %s\n", g_err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nn_cache_free(&g_c);
    dnn_ctx_destroy(&g_dnn);
    return 0;
}

/* n floats uniform in [lo, hi) from stream 11 of seed */
static float *rnd(long n, uint64_t seed, double lo, double hi)
{
    return test_uniform(n, seed, 11, lo, hi);
}

/* The reference rounding, written independently of nn_bf16.c: nearest, ties to even, on the value
 * (not the bits): the two bf16 neighbours of x and the one with an even last mantissa bit on a tie. */
static double bf16_ref(float x)
{
    if (x == 0 || !isfinite(x)) return x;
    if (fabsf(x) < 1.17549435e-38f) return copysign(0.0, x); /* subnormal: flushed, as the CPU does */
    int e;
    frexp((double)x, &e);                   /* |x| in [2^(e-1), 2^e) */
    double ulp = ldexp(1.0, e - 8);         /* 8 significant bits */
    double lo = floor((double)x / ulp) * ulp, hi = lo + ulp;
    double dl = (double)x - lo, dh = hi - (double)x;
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return fmod(fabs(lo / ulp), 2.0) == 0 ? lo : hi;
}

static uint16_t bits_of(double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(u >> 16);
}

static void test_conversion(void **state)
{
    (void)state;
    float special[] = {1.0f, 1.00390625f /* 1 + 2^-8: tie, to even (1) */, 1.01171875f /* 1 + 3 2^-8: tie, up */,
                       -2.5f, 3.14159265f, 65504.0f, 1e-30f, 1e-40f /* subnormal */, -0.0f, INFINITY, -INFINITY,
                       3.4e38f /* rounds to inf */};
    long ns = (long)(sizeof special / sizeof special[0]);
    uint16_t out[16];
    nn_to_bf16(out, special, ns);
    int bad = 0;
    for (long i = 0; i < ns; i++) {
        /* 3.4e38 lies beyond the largest bf16 plus half an ulp: infinity */
        uint16_t want = special[i] == 3.4e38f ? 0x7f80 : bits_of(bf16_ref(special[i]));
        if (out[i] != want) { printf("convert %g: 0x%04x, want 0x%04x NOT OK\n", special[i], out[i], want); bad++; }
    }
    float nan = NAN;
    nn_to_bf16(out, &nan, 1);
    if ((out[0] & 0x7f80) != 0x7f80 || (out[0] & 0x7f) == 0) { printf("NaN -> 0x%04x NOT OK\n", out[0]); bad++; }
    /* a long array (vector path, several chunks) against the reference and the serial form */
    long n = 100003;
    float *x = rnd(n, 1, -1000, 1000);
    uint16_t *a = malloc(sizeof(uint16_t) * (size_t)n), *b = malloc(sizeof(uint16_t) * (size_t)n);
    nn_to_bf16(a, x, n);
    nn_to_bf16_serial(b, x, n);
    for (long i = 0; i < n; i++)
        if (a[i] != b[i] || a[i] != bits_of(bf16_ref(x[i]))) { bad++; break; }
    /* a conversion large enough to stream its stores past the caches (nn_bf16.c), into a destination
     * on a 64-byte line boundary and 3 values after one (each chunk's head converted one by one) */
    long nl = (1L << 23) + 1001;
    float *xl = rnd(nl, 2, -1e4, 1e4);
    uint16_t *al = malloc(sizeof(uint16_t) * (size_t)(nl + 35)), *bl = malloc(sizeof(uint16_t) * (size_t)nl);
    nn_to_bf16_serial(bl, xl, nl);
    for (long i = 0; i < nl && !bad; i++)
        if (bl[i] != bits_of(bf16_ref(xl[i]))) { printf("serial %ld NOT OK\n", i); bad++; }
    uint16_t *line = (uint16_t *)(((uintptr_t)al + 63) & ~(uintptr_t)63);
    for (int off = 0; off <= 3 && !bad; off += 3) {
        memset(line + off, 0xff, sizeof(uint16_t) * (size_t)nl);
        nn_to_bf16(line + off, xl, nl);
        if (memcmp(line + off, bl, sizeof(uint16_t) * (size_t)nl)) { printf("streamed, offset %d NOT OK\n", off); bad++; }
    }
    free(xl);
    free(al);
    free(bl);
    printf("bf16 conversion: %s\n", bad ? "NOT OK" : "OK");
    assert_int_equal(bad, 0);
    free(x);
    free(a);
    free(b);
}

/* A copy of x (n) rounded to bf16 by bf16_ref. */
static float *rounded(const float *x, long n)
{
    float *r = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) r[i] = (float)bf16_ref(x[i]);
    return r;
}

/* got (count) against base (NULL: 0) + ref on rounded inputs (bound 1) and on unrounded (bound 2). */
static int check_bounds(const char *name, const float *got, const float *base, const float *bias,
                        const double *ref_r, const double *abs_r, const double *ref, const double *abs_u,
                        long rows, long cols, long n)
{
    int bad = 0;
    double worst1 = 0, worst2 = 0;
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++) {
            long e = i * cols + j;
            double b0 = (base ? base[e] : 0) + (bias ? bias[j] : 0);
            double acc = (double)(n + 1) * U32 * (abs_r[e] + fabs(b0));
            double t1 = acc + 1e-30, t2 = (2 * U16 + U16 * U16) * abs_u[e] + acc + 1e-30;
            double d1 = fabs(got[e] - (ref_r[e] + b0)), d2 = fabs(got[e] - (ref[e] + b0));
            worst1 = fmax(worst1, d1 / t1);
            worst2 = fmax(worst2, d2 / t2);
            if (d1 > t1 || d2 > t2) bad++;
        }
    printf("%s: max error / bound: %.3f (bf16-rounded reference), %.3f (f32 reference): %s\n", name, worst1,
           worst2, bad ? "NOT OK" : "OK");
    return bad;
}

static void linear_case(long M, long K, long N)
{
    if (!g_bf16_ok) { skip(); return; }
    float *x = rnd(M * K, 2, -1, 1), *w = rnd(N * K, 3, -0.5, 0.5), *b = rnd(N, 4, -1, 1);
    float *dout = rnd(M * N, 5, -1, 1), *y = malloc(sizeof(float) * (size_t)(M * N));
    float *xr = rounded(x, M * K), *wr = rounded(w, N * K), *doutr = rounded(dout, M * N);
    float *y32 = malloc(sizeof(float) * (size_t)(M * N));
    float *dx0 = rnd(M * K, 6, -1, 1), *dw0 = rnd(N * K, 7, -1, 1), *db0 = rnd(N, 8, -1, 1);
    float *dx = malloc(sizeof(float) * (size_t)(M * K)), *dw = malloc(sizeof(float) * (size_t)(N * K)),
          *db = malloc(sizeof(float) * (size_t)N);
    long big = M * K > N * K ? M * K : N * K;
    big = big > M * N ? big : M * N;
    double *ref_r = malloc(sizeof(double) * (size_t)big), *abs_r = malloc(sizeof(double) * (size_t)big),
           *ref = malloc(sizeof(double) * (size_t)big), *abs_u = malloc(sizeof(double) * (size_t)big);
    char name[96];
    int bad = 0;

    /* forward: y (M,N) = x (M,K) w^T + b */
    assert_int_equal(nn_linear_forward(&g_c, y, x, w, b, M, K, N, g_err), 0);
    ref_matmul(ref_r, abs_r, xr, K, 1, wr, 1, K, M, K, N);
    ref_matmul(ref, abs_u, x, K, 1, w, 1, K, M, K, N);
    snprintf(name, sizeof name, "linear %ldx%ldx%ld forward", M, K, N);
    bad += check_bounds(name, y, NULL, b, ref_r, abs_r, ref, abs_u, M, N, K);
    /* the bf16 path is really taken: f32 differs by more than f32 rounding somewhere */
    g_c.precision = NN_FP32;
    assert_int_equal(nn_linear_forward(&g_c, y32, x, w, b, M, K, N, g_err), 0);
    g_c.precision = NN_BF16;
    double maxd = 0;
    for (long i = 0; i < M * N; i++) maxd = fmax(maxd, fabs(y[i] - y32[i]));
    printf("%s: max |bf16 - f32| %.3g (must exceed 1e-4)\n", name, maxd);
    if (!(maxd > 1e-4)) bad++;
    /* a declared bf16 copy of the weights gives the same bits */
    uint16_t *wcopy = malloc(sizeof(uint16_t) * (size_t)(N * K));
    nn_to_bf16(wcopy, w, N * K);
    nn_cache_set_bf16_weights(&g_c, w, wcopy, N * K);
    assert_int_equal(nn_linear_forward(&g_c, y32, x, w, b, M, K, N, g_err), 0);
    if (memcmp(y, y32, sizeof(float) * (size_t)(M * N))) { printf("%s: weight copy changes bits NOT OK\n", name); bad++; }

    /* backward, accumulating into gradients that hold values */
    memcpy(dx, dx0, sizeof(float) * (size_t)(M * K));
    memcpy(dw, dw0, sizeof(float) * (size_t)(N * K));
    memcpy(db, db0, sizeof(float) * (size_t)N);
    assert_int_equal(nn_linear_backward(&g_c, dx, dw, db, dout, x, w, M, K, N, g_err), 0);
    nn_cache_set_bf16_weights(&g_c, NULL, NULL, 0);
    ref_matmul(ref_r, abs_r, doutr, N, 1, wr, K, 1, M, N, K); /* dx (M,K) = dout (M,N) w (N,K) */
    ref_matmul(ref, abs_u, dout, N, 1, w, K, 1, M, N, K);
    snprintf(name, sizeof name, "linear %ldx%ldx%ld input gradient", M, K, N);
    bad += check_bounds(name, dx, dx0, NULL, ref_r, abs_r, ref, abs_u, M, K, N);
    ref_matmul(ref_r, abs_r, doutr, 1, N, xr, K, 1, N, M, K); /* dw (N,K) = dout^T (N,M) x (M,K) */
    ref_matmul(ref, abs_u, dout, 1, N, x, K, 1, N, M, K);
    snprintf(name, sizeof name, "linear %ldx%ldx%ld weight gradient", M, K, N);
    bad += check_bounds(name, dw, dw0, NULL, ref_r, abs_r, ref, abs_u, N, K, M);
    int bad_b = 0;
    for (long j = 0; j < N; j++) {
        double s = db0[j], as = fabs(db0[j]);
        for (long i = 0; i < M; i++) { s += dout[i * N + j]; as += fabs(dout[i * N + j]); }
        if (fabs(db[j] - s) > (double)(M + 1) * U32 * as + 1e-30) bad_b++;
    }
    printf("linear %ldx%ldx%ld bias gradient (f32 sum): %s\n", M, K, N, bad_b ? "NOT OK" : "OK");
    assert_int_equal(bad + bad_b, 0);
    free(wcopy);
    free(xr); free(wr); free(doutr);
    free(x); free(w); free(b); free(dout); free(y); free(y32);
    free(dx0); free(dw0); free(db0); free(dx); free(dw); free(db);
    free(ref_r); free(abs_r); free(ref); free(abs_u);
}

static void test_linear_small(void **state)
{
    (void)state;
    linear_case(37, 19, 23);
}

/* Reductions of the spec's shapes: K = 384 (encoder stage 2), N = 1536 (its MLP), M = 1024 rows. */
static void test_linear_long_reductions(void **state)
{
    (void)state;
    linear_case(1024, 384, 96);
    linear_case(64, 1536, 384);
    linear_case(NN_WPACK_ROWS + 3, 40, 72); /* packed weights, N not a multiple of 64 */
}

/* The float value of bf16 bits. */
static float bf16_value(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One attention forward + backward in bf16 against f32 (key padding in sample 0); under bf16 att
 * holds the probabilities as bf16 (its first B H T T 2-byte values). */
static int attention_case(long B, long T, long C, long H)
{
    long n = B * T * C, ns = B * H * T * T;
    float *qkv = rnd(3 * n, 21, -2, 2), *keybias = calloc((size_t)(B * T), sizeof(float));
    for (long t = T - 5; t < T; t++) keybias[t] = -1e5f; /* padding keys in sample 0 */
    float *dout = rnd(n, 22, -1, 1);
    float *o16 = malloc(sizeof(float) * (size_t)n), *o32 = malloc(sizeof(float) * (size_t)n);
    float *a16 = malloc(sizeof(float) * (size_t)ns), *a32 = malloc(sizeof(float) * (size_t)ns),
          *p16 = malloc(sizeof(float) * (size_t)ns);
    float *g16 = calloc((size_t)(3 * n), sizeof(float)), *g32 = calloc((size_t)(3 * n), sizeof(float));
    assert_int_equal(nn_attention_forward(&g_c, o16, a16, qkv, keybias, B, T, C, H, g_err), 0);
    assert_int_equal(nn_attention_backward(&g_c, g16, dout, qkv, a16, B, T, C, H, g_err), 0);
    g_c.precision = NN_FP32;
    assert_int_equal(nn_attention_forward(&g_c, o32, a32, qkv, keybias, B, T, C, H, g_err), 0);
    assert_int_equal(nn_attention_backward(&g_c, g32, dout, qkv, a32, B, T, C, H, g_err), 0);
    g_c.precision = NN_BF16;
    const uint16_t *pb = (const uint16_t *)a16;
    for (long j = 0; j < ns; j++) p16[j] = bf16_value(pb[j]);
    const struct { const char *name; const float *a, *b; long n; } t[] = {
        {"attention output", o16, o32, n}, {"attention probabilities", p16, a32, ns},
        {"attention dq", g16, g32, n}, {"attention dk", g16 + n, g32 + n, n},
        {"attention dv", g16 + 2 * n, g32 + 2 * n, n}};
    int bad = 0;
    for (int i = 0; i < 5; i++) {
        double md = 0, mx = 0;
        for (long j = 0; j < t[i].n; j++) {
            md = fmax(md, fabs(t[i].a[j] - t[i].b[j]));
            mx = fmax(mx, fabs(t[i].b[j]));
        }
        int ok = md <= mx / 32 && md > 0;
        printf("head dim %ld, %s: max |bf16 - f32| %.3g, bound %.3g (2^-5 max %.3g), nonzero: %s\n", C / H,
               t[i].name, md, mx / 32, mx, ok ? "OK" : "NOT OK");
        bad += !ok;
    }
    free(qkv); free(keybias); free(dout); free(o16); free(o32); free(a16); free(a32); free(p16);
    free(g16); free(g32);
    return bad;
}

/* Head dimensions 64 (stage 2), 32 (stage 1, the decoder) and 16 (stage 0). */
static void test_attention(void **state)
{
    (void)state;
    if (!g_bf16_ok) { skip(); return; }
    int bad = attention_case(2, 37, 128, 2) + attention_case(2, 37, 64, 2) + attention_case(2, 40, 96, 6);
    assert_int_equal(bad, 0);
}

/* Below the thresholds bf16 mode gives the f32 bits. */
static void test_thresholds(void **state)
{
    (void)state;
    if (!g_bf16_ok) { skip(); return; }
    long M = 50, K = 3, N = 40;
    float *x = rnd(M * K, 31, -1, 1), *w = rnd(N * K, 32, -1, 1), *y16 = malloc(sizeof(float) * (size_t)(M * N)),
          *y32 = malloc(sizeof(float) * (size_t)(M * N));
    assert_int_equal(nn_linear_forward(&g_c, y16, x, w, NULL, M, K, N, g_err), 0);
    g_c.precision = NN_FP32;
    assert_int_equal(nn_linear_forward(&g_c, y32, x, w, NULL, M, K, N, g_err), 0);
    g_c.precision = NN_BF16;
    assert_memory_equal(y16, y32, sizeof(float) * (size_t)(M * N));
    printf("below the threshold (K 3): f32 bits: OK\n");
    free(x); free(w); free(y16); free(y32);
}

/* The bf16-input path of the mini-PointNet (nn_batchnorm_relu_bf16 -> nn_linear_*_bf16in, with
 * nn_relu_backward_dst_bf16): the fused BN + ReLU + rounding against a double reference (the same
 * bf16 value, or its neighbour where the f32 arithmetic lands across a rounding midpoint: at most
 * 1 bf16 step, and in at most 1 % of the elements); the linear layers on a bf16 input give the bits
 * of the f32-input bf16 path on the same values (whose conversion they skip; the input gradient
 * overwritten = accumulated into zeros); ReLU's backward from
 * the bf16 output gives the bits of the f32 one; the statistics alone are those of the training
 * forward, bitwise; short rows (16-wide vector step, tails) convert as the reference. */
static void test_bf16_inputs(void **state)
{
    (void)state;
    int bad = 0;
    float *z = rnd(70, 41, -3, 3);
    for (long n = 0; n <= 70; n++) {
        uint16_t o[70];
        nn_to_bf16_serial(o, z, n);
        for (long i = 0; i < n; i++)
            if (o[i] != bits_of(bf16_ref(z[i]))) bad++;
    }
    if (bad) printf("short conversions: %d wrong NOT OK\n", bad);
    assert_int_equal(bad, 0);
    free(z);
    if (!g_bf16_ok) { skip(); return; }
    long M = 37, C = 80, N = 24;
    float *x = rnd(M * C, 42, -2, 3), *w = rnd(C, 43, 0.5, 1.5), *b = rnd(C, 44, -0.5, 0.5);
    float mean[80], var[80], mean2[80], var2[80], rm[80], rv[80], rm2[80], rv2[80];
    float *y = malloc(sizeof(float) * (size_t)(M * C));
    for (long j = 0; j < C; j++) rm[j] = rm2[j] = 0.1f * (float)j, rv[j] = rv2[j] = 1.0f + 0.01f * (float)j;
    assert_int_equal(nn_batchnorm_forward_train(&g_c, y, mean, var, x, w, b, rm, rv, M, C, g_err), 0);
    assert_int_equal(nn_batchnorm_stats_train(&g_c, mean2, var2, x, rm2, rv2, M, C, g_err), 0);
    assert_memory_equal(mean, mean2, sizeof mean);
    assert_memory_equal(var, var2, sizeof var);
    assert_memory_equal(rm, rm2, sizeof rm);
    assert_memory_equal(rv, rv2, sizeof rv);
    uint16_t *rb = malloc(sizeof(uint16_t) * (size_t)(M * C));
    assert_int_equal(nn_batchnorm_relu_bf16(&g_c, rb, x, w, b, mean, var, M, C, g_err), 0);
    long off = 0, far = 0;
    for (long i = 0; i < M * C; i++) {
        long j = i % C;
        double v = (double)w[j] * ((double)x[i] - mean[j]) / sqrt((double)var[j] + 1e-5) + b[j];
        uint16_t want = bits_of(bf16_ref((float)(v > 0 ? v : 0)));
        if (rb[i] == want) continue;
        off++;
        if (abs((int)rb[i] - (int)want) > 1 || (rb[i] & 0x8000) != (want & 0x8000)) far++;
    }
    printf("bn + relu -> bf16: %ld of %ld one bf16 step off, %ld further: %s\n", off, M * C, far,
           far == 0 && off * 100 <= M * C ? "OK" : "NOT OK");
    assert_int_equal(far, 0);
    assert_true(off * 100 <= M * C);
    /* a linear layer on rb equals the f32-input bf16 path on rb's values */
    float *xf = malloc(sizeof(float) * (size_t)(M * C));
    for (long i = 0; i < M * C; i++) {
        uint32_t u = (uint32_t)rb[i] << 16;
        memcpy(&xf[i], &u, sizeof u);
    }
    float *wl = rnd(N * C, 45, -1, 1), *bl = rnd(N, 46, -1, 1), *dout = rnd(M * N, 47, -1, 1);
    float *o1 = malloc(sizeof(float) * (size_t)(M * N)), *o2 = malloc(sizeof(float) * (size_t)(M * N));
    assert_int_equal(nn_linear_forward_bf16in(&g_c, o1, rb, wl, bl, M, C, N, g_err), 0);
    assert_int_equal(nn_linear_forward(&g_c, o2, xf, wl, bl, M, C, N, g_err), 0);
    assert_memory_equal(o1, o2, sizeof(float) * (size_t)(M * N));
    /* dinp overwritten (garbage before) = accumulated into zeros; dw, db accumulated */
    float *di1 = rnd(M * C, 48, -1, 1), *dw1 = rnd(N * C, 49, -1, 1), *db1 = rnd(N, 50, -1, 1);
    float *di2 = calloc((size_t)(M * C), sizeof(float)), *dw2 = rnd(N * C, 49, -1, 1), *db2 = rnd(N, 50, -1, 1);
    assert_int_equal(nn_linear_backward_bf16in(&g_c, di1, dw1, db1, dout, rb, wl, M, C, N, g_err), 0);
    assert_int_equal(nn_linear_backward(&g_c, di2, dw2, db2, dout, xf, wl, M, C, N, g_err), 0);
    assert_memory_equal(di1, di2, sizeof(float) * (size_t)(M * C));
    assert_memory_equal(dw1, dw2, sizeof(float) * (size_t)(N * C));
    assert_memory_equal(db1, db2, sizeof(float) * (size_t)N);
    /* nn_linear_backward_set of a bf16 layer: dinp overwritten (NaN before) = += into zeros */
    for (long i = 0; i < M * C; i++) di1[i] = NAN;
    memset(di2, 0, sizeof(float) * (size_t)(M * C));
    assert_int_equal(nn_linear_backward_set(&g_c, di1, dw1, db1, dout, xf, wl, M, C, N, g_err), 0);
    assert_int_equal(nn_linear_backward(&g_c, di2, dw2, db2, dout, xf, wl, M, C, N, g_err), 0);
    assert_memory_equal(di1, di2, sizeof(float) * (size_t)(M * C));
    assert_memory_equal(dw1, dw2, sizeof(float) * (size_t)(N * C));
    assert_memory_equal(db1, db2, sizeof(float) * (size_t)N);
    /* ReLU's backward from the bf16 output (in place) = from the f32 one */
    float *g1 = rnd(M * C, 51, -1, 1), *g2 = rnd(M * C, 51, -1, 1);
    nn_relu_backward_dst_bf16(g1, g1, rb, M * C);
    assert_int_equal(nn_relu_backward_dst(&g_c, g2, g2, xf, M * C, g_err), 0);
    assert_memory_equal(g1, g2, sizeof(float) * (size_t)(M * C));
    printf("bf16-input linear forward / backward and relu backward: the f32-input bits: OK\n");
    /* a bf16 input outside bf16 precision, or below the thresholds, is refused */
    g_c.precision = NN_FP32;
    assert_int_equal(nn_linear_forward_bf16in(&g_c, o1, rb, wl, bl, M, C, N, g_err), -1);
    g_c.precision = NN_BF16;
    assert_string_equal(g_err, "linear: a bf16 input needs bf16 precision and 16 inputs and outputs (K 80, N 24)");
    assert_int_equal(nn_linear_backward_bf16in(&g_c, di1, dw1, NULL, dout, rb, wl, M * C / 8, 8, N, g_err), -1);
    free(x); free(w); free(b); free(y); free(rb); free(xf); free(wl); free(bl); free(dout); free(o1); free(o2);
    free(di1); free(dw1); free(db1); free(di2); free(dw2); free(db2); free(g1); free(g2);
}

/* A sink that stores the rows it gets into a full (M,C) array and counts each row's visits. */
typedef struct {
    float *all;
    int *seen;
    long C, align, misaligned;
} store_sink;

static void store_rows(const float *rows, long r0, long r1, void *arg)
{
    store_sink *a = arg;
    if (r0 % a->align) a->misaligned++; /* only the team's thread that owns the piece writes here */
    memcpy(a->all + r0 * a->C, rows, sizeof(float) * (size_t)((r1 - r0) * a->C));
    for (long i = r0; i < r1; i++) a->seen[i]++;
}

/* nn_batchnorm_relu_backward_sink hands over the very rows nn_batchnorm_relu_backward (bf16 form)
 * writes, each row once, pieces starting at multiples of the align, with the same dw and db; at 1
 * and 2 threads. nn_linear_backward_bf16dout on dout rounded to bf16 gives nn_linear_backward's
 * dinp and dw on the f32 dout bitwise (M 2500: the chunked weight gradient), both accumulated onto
 * nonzero values; it refuses a layer below the thresholds and a bf16 dout outside bf16 precision. */
static void test_bf16_dout_and_sink(void **state)
{
    (void)state;
    if (!g_bf16_ok) { skip(); return; }
    long M = 3000, C = 48, align = 5;
    float *x = rnd(M * C, 61, -2, 3), *w = rnd(C, 62, 0.5, 1.5), *b = rnd(C, 63, -0.5, 0.5);
    float *g = rnd(M * C, 64, -1, 1), mean[48], var[48], rm[48] = {0}, rv[48];
    for (long j = 0; j < C; j++) rv[j] = 1;
    assert_int_equal(nn_batchnorm_stats_train(&g_c, mean, var, x, rm, rv, M, C, g_err), 0);
    float *want = malloc(sizeof(float) * (size_t)(M * C)), *got = malloc(sizeof(float) * (size_t)(M * C));
    float dw1[48] = {0}, db1[48] = {0}, dw2[48] = {0}, db2[48] = {0};
    int *seen = calloc((size_t)M, sizeof(int));
    float *scr = malloc(sizeof(float) * (size_t)nn_bn_sink_scratch(C, align));
    assert_int_equal(nn_batchnorm_relu_backward(&g_c, want, dw1, db1, g, x, w, b, mean, var, M, C, 1, g_err), 0);
    for (int nt = 1; nt <= 2; nt++) {
        omp_set_num_threads(nt);
        memset(seen, 0, sizeof(int) * (size_t)M);
        for (long j = 0; j < C; j++) dw2[j] = db2[j] = 0;
        store_sink a = {got, seen, C, align, 0};
        nn_rows_sink sink = {store_rows, &a, align};
        assert_int_equal(nn_batchnorm_relu_backward_sink(&g_c, &sink, scr, dw2, db2, g, x, w, b, mean, var, M, C,
                                                         g_err), 0);
        assert_int_equal(a.misaligned, 0);
        for (long i = 0; i < M; i++) assert_int_equal(seen[i], 1);
        assert_memory_equal(got, want, sizeof(float) * (size_t)(M * C));
        assert_memory_equal(dw1, dw2, sizeof dw1);
        assert_memory_equal(db1, db2, sizeof db1);
    }
    omp_set_num_threads(1);
    long Ml = 2500, K = 24, N = 40;
    float *dout = rnd(Ml * N, 65, -1, 1), *inp = rnd(Ml * K, 66, -1, 1), *wl = rnd(N * K, 67, -1, 1);
    float *di1 = rnd(Ml * K, 68, -1, 1), *di2 = rnd(Ml * K, 68, -1, 1), *dwa = rnd(N * K, 69, -1, 1),
          *dwb = rnd(N * K, 69, -1, 1);
    uint16_t *doutb = malloc(sizeof(uint16_t) * (size_t)(Ml * N));
    nn_to_bf16(doutb, dout, Ml * N);
    assert_int_equal(nn_linear_backward_bf16dout(&g_c, di1, dwa, doutb, inp, wl, Ml, K, N, g_err), 0);
    assert_int_equal(nn_linear_backward(&g_c, di2, dwb, NULL, dout, inp, wl, Ml, K, N, g_err), 0);
    assert_memory_equal(di1, di2, sizeof(float) * (size_t)(Ml * K));
    assert_memory_equal(dwa, dwb, sizeof(float) * (size_t)(N * K));
    /* the input in bf16 too (nn_linear_backward_bf16dout_in): the bits of the f32 input that rounds to it */
    uint16_t *inb = malloc(sizeof(uint16_t) * (size_t)(Ml * K));
    nn_to_bf16(inb, inp, Ml * K);
    float *di3 = rnd(Ml * K, 68, -1, 1), *dwc = rnd(N * K, 69, -1, 1);
    assert_int_equal(nn_linear_backward_bf16dout_in(&g_c, di3, dwc, doutb, inb, wl, Ml, K, N, 0, g_err), 0);
    assert_memory_equal(di3, di2, sizeof(float) * (size_t)(Ml * K));
    assert_memory_equal(dwc, dwb, sizeof(float) * (size_t)(N * K));
    /* set: dinp overwritten, the bits of nn_linear_backward_set (dw still accumulated) */
    float *di4 = rnd(Ml * K, 70, -1, 1), *di5 = rnd(Ml * K, 71, -1, 1);
    assert_int_equal(nn_linear_backward_bf16dout_in(&g_c, di4, dwc, doutb, inb, wl, Ml, K, N, 1, g_err), 0);
    assert_int_equal(nn_linear_backward_set(&g_c, di5, dwb, NULL, dout, inp, wl, Ml, K, N, g_err), 0);
    assert_memory_equal(di4, di5, sizeof(float) * (size_t)(Ml * K));
    assert_memory_equal(dwc, dwb, sizeof(float) * (size_t)(N * K));
    free(di4); free(di5);
    printf("bn backward into a sink, linear backward from a bf16 dout (and a bf16 input): the bits of the "
           "stored paths: OK\n");
    assert_int_equal(nn_linear_is_bf16(&g_c, K, N), 1);
    assert_int_equal(nn_linear_is_bf16(&g_c, 8, N), 0);
    assert_int_equal(nn_linear_backward_bf16dout(&g_c, di1, dwa, doutb, inp, wl, Ml * 3, 8, N, g_err), -1);
    assert_int_equal(nn_linear_backward_bf16dout_in(&g_c, di1, dwa, doutb, inb, wl, Ml * 3, 8, N, 0, g_err), -1);
    g_c.precision = NN_FP32;
    assert_int_equal(nn_linear_is_bf16(&g_c, K, N), 0);
    assert_int_equal(nn_linear_backward_bf16dout(&g_c, di1, dwa, doutb, inp, wl, Ml, K, N, g_err), -1);
    assert_int_equal(nn_linear_backward_bf16dout_in(&g_c, di1, dwa, doutb, inb, wl, Ml, K, N, 0, g_err), -1);
    g_c.precision = NN_BF16;
    free(inb); free(di3); free(dwc);
    free(x); free(w); free(b); free(g); free(want); free(got); free(seen); free(scr);
    free(dout); free(inp); free(wl); free(di1); free(di2); free(dwa); free(dwb); free(doutb);
}

/* nn_maxpool_forward_bf16 gives nn_maxpool_forward's maxima and winners (ties among them: values
 * repeated within a group, where the first must win) and nn_to_bf16's rounding of the input, in a
 * destination off the 64-byte lines (its streamed stores start at the first line boundary) and with
 * groups of a size that is no multiple of the 32-value blocks; at 1 and 2 threads. */
static void test_maxpool_bf16(void **state)
{
    (void)state;
    long G = 37, k = 7, C = 41, n = G * k * C;
    float *x = rnd(n, 71, -3, 3), *o1 = malloc(sizeof(float) * (size_t)(G * C)),
          *o2 = malloc(sizeof(float) * (size_t)(G * C));
    for (long g = 0; g < G; g++) /* every third column: rows 1 and 4 tie at the group's maximum */
        for (long j = 0; j < C; j += 3) {
            float *col = x + g * k * C + j, m = col[0];
            for (long i = 1; i < k; i++) m = col[i * C] > m ? col[i * C] : m;
            col[C] = col[4 * C] = m;
        }
    int32_t *a1 = malloc(sizeof(int32_t) * (size_t)(G * C)), *a2 = malloc(sizeof(int32_t) * (size_t)(G * C));
    uint16_t *want = malloc(sizeof(uint16_t) * (size_t)n), *buf = malloc(sizeof(uint16_t) * (size_t)(n + 35));
    nn_maxpool_forward(o1, a1, x, G, k, C);
    nn_to_bf16_serial(want, x, n);
    for (int nt = 1; nt <= 2; nt++) {
        omp_set_num_threads(nt);
        uint16_t *got = buf + 3;
        memset(buf, 0, sizeof(uint16_t) * (size_t)(n + 35));
        nn_maxpool_forward_bf16(o2, a2, got, x, G, k, C);
        assert_memory_equal(o2, o1, sizeof(float) * (size_t)(G * C));
        assert_memory_equal(a2, a1, sizeof(int32_t) * (size_t)(G * C));
        assert_memory_equal(got, want, sizeof(uint16_t) * (size_t)n);
        assert_int_equal(buf[0] | buf[1] | buf[2] | got[n], 0); /* nothing written outside */
    }
    omp_set_num_threads(1);
    printf("max-pool with the bf16 copy of its input: the maxima, winners and nn_to_bf16's bits: OK\n");
    free(x); free(o1); free(o2); free(a1); free(a2); free(want); free(buf);
}

static void test_precision_parse(void **state)
{
    (void)state;
    nn_precision p = NN_FP32;
    assert_int_equal(nn_precision_parse("bf16", &p, g_err), 0);
    assert_int_equal(p, NN_BF16);
    assert_string_equal(nn_precision_name(p), "bf16");
    assert_int_equal(nn_precision_parse("fp32", &p, g_err), 0);
    assert_int_equal(p, NN_FP32);
    assert_int_equal(nn_precision_parse("fp16", &p, g_err), -1);
    assert_string_equal(g_err, "--precision fp16: must be fp32 or bf16");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversion),   cmocka_unit_test(test_linear_small),
        cmocka_unit_test(test_linear_long_reductions), cmocka_unit_test(test_attention),
        cmocka_unit_test(test_thresholds),   cmocka_unit_test(test_bf16_inputs),
        cmocka_unit_test(test_precision_parse), cmocka_unit_test(test_bf16_dout_and_sink),
        cmocka_unit_test(test_maxpool_bf16),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
