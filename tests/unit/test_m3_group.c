/* test_m3_group.c -- the mini-PointNet (m3_group.c) on its own, in training mode:
 *  - forward against a direct double-precision transcription of the unfactorised network (conv3
 *    on the concat [g broadcast, h2] built explicitly, BatchNorm with batch statistics);
 *  - central finite differences of L = sum(out * R) w.r.t. every parameter entry (both column
 *    halves of conv3.weight included) and the input, float32, eps 1e-3 retried at eps/4, eps/16
 *    where a ReLU / max-pool kink is crossed; tolerance 1e-2 relative + 2e-3 (test_nn_layers.c's);
 *  - the backward accumulates into dinp and the parameter gradients (a second call doubles them);
 *  - a group's output does not depend on the other groups of the batch (eval mode, bitwise);
 *  - the light forward (statistics and argmaxes kept) then m3_group_backward_light (which rebuilds
 *    h3 and h2 itself) give bitwise the output, running statistics, input and parameter gradients
 *    of the full forward, with or without a scratch arena, keeping R (b + c) floats less;
 *  - so does the backward by rows (m3_group_backward_rows) in chunks of 1024 and 2048 rows (a
 *    partial last one), at 1 and 2 threads, with a lower arena peak;
 *  - the comparison of the last point again in bf16 precision, at widths where conv2..conv4 run
 *    bf16 (the whole-rows backwards then take bn2's input gradient through a sink, the by-rows one
 *    does not), and bf16 really in use (the fp32 gradients differ).
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

#include "arena.h"
#include "errors.h"
#include "m3_layers.h"
#include "rng.h"
#include "support_dnn.h"

#define FD_EPS 1e-3f
#define FD_REL 1e-2
#define FD_ABS 2e-3

enum { G = 3, K = 5, CIN = 3, A = 6, B = 7, C = 8, COUT = 5, R = G * K };

static char g_err[I2P_ERR_LEN];

/* The widths net_init builds (conv1 -> g_a, conv2 -> g_b, conv3 -> g_c, conv4 -> g_cout): A, B, C,
 * COUT but in the bf16 test, which needs layers of NN_BF16_MIN_DIM or more (WA, WB, WC, WCOUT) so
 * that conv2, conv3 and conv4 run bf16. */
enum { WA = 16, WB = 32, WC = 32, WCOUT = 16 };
static int g_a = A, g_b = B, g_c = C, g_cout = COUT;
static nn_cache *g_net_cache = &g_cache; /* the cache net_init's runs take */

static void fill(float *v, long n, uint64_t seed, double lo, double hi)
{
    rng_t r;
    rng_seed(&r, seed, 3);
    for (long i = 0; i < n; i++) v[i] = (float)rng_range(&r, lo, hi);
}

/* The network: parameters laid out one tensor after the other in P (gradients at the same offsets
 * in Gr); running statistics in buf. */
typedef struct {
    m3_group p;
    long n_params;
    float *P, *Gr, *buf;
    float inp[R * CIN], dinp[R * CIN];
    arena a;
    m3_run run;
} net;

static long take(long *off, long n)
{
    long o = *off;
    *off += n;
    return o;
}

static void net_init(net *n)
{
    memset(n, 0, sizeof *n);
    long off = 0, boff = 0;
    m3_group *p = &n->p;
    int dims[4][2] = {{g_a, CIN}, {g_b, g_a}, {g_c, 2 * g_b}, {g_cout, g_c}};
    m3_linear *conv[4] = {&p->conv1, &p->conv2, &p->conv3, &p->conv4};
    for (int i = 0; i < 4; i++) {
        conv[i]->out = dims[i][0];
        conv[i]->in = dims[i][1];
        conv[i]->w = take(&off, (long)dims[i][0] * dims[i][1]);
        conv[i]->b = take(&off, dims[i][0]);
    }
    m3_bn *bn[2] = {&p->bn1, &p->bn2};
    int bc[2] = {g_a, g_c};
    for (int i = 0; i < 2; i++) {
        bn[i]->C = bc[i];
        bn[i]->w = take(&off, bc[i]);
        bn[i]->b = take(&off, bc[i]);
        bn[i]->run_mean = take(&boff, bc[i]);
        bn[i]->run_var = take(&boff, bc[i]);
    }
    n->n_params = off;
    n->P = malloc(sizeof(float) * (size_t)off);
    n->Gr = calloc((size_t)off, sizeof(float));
    n->buf = calloc((size_t)boff, sizeof(float));
    fill(n->P, off, 11, -0.6, 0.6);
    for (int i = 0; i < 2; i++) /* BN scales away from 0 */
        for (int j = 0; j < bc[i]; j++) n->P[bn[i]->w + j] = 0.8f + 0.05f * (float)j;
    fill(n->inp, R * CIN, 12, -1, 1);
    arena_init(&n->a, 1 << 20);
    n->run = (m3_run){.c = g_net_cache, .a = &n->a, .P = n->P, .G = n->Gr, .buf = n->buf, .train = 1, .err = g_err};
}

static void net_free(net *n)
{
    free(n->P);
    free(n->Gr);
    free(n->buf);
    arena_free(&n->a);
}

static double loss_of(net *n, const float *Rw, float *out, m3_group_state *s)
{
    arena_reset(&n->a);
    int rc = m3_group_forward(&n->run, &n->p, out, s, n->inp, G, K);
    if (rc) printf("forward: %s\n", g_err);
    assert_int_equal(rc, 0);
    double L = 0;
    for (long i = 0; i < G * COUT; i++) L += (double)out[i] * Rw[i];
    return L;
}

/* ---- direct double transcription of the unfactorised network ---- */
static void ref_linear(double *out, const double *x, const float *w, const float *b, long M, long Kd, long N)
{
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
            double s = b[j];
            for (long q = 0; q < Kd; q++) s += x[i * Kd + q] * w[j * Kd + q];
            out[i * N + j] = s;
        }
}

static void ref_bn_relu(double *x, const float *w, const float *b, long M, long Cn)
{
    for (long j = 0; j < Cn; j++) {
        double m = 0, v = 0;
        for (long i = 0; i < M; i++) m += x[i * Cn + j];
        m /= (double)M;
        for (long i = 0; i < M; i++) v += (x[i * Cn + j] - m) * (x[i * Cn + j] - m);
        v /= (double)M;
        for (long i = 0; i < M; i++) {
            double y = (x[i * Cn + j] - m) / sqrt(v + 1e-5) * w[j] + b[j];
            x[i * Cn + j] = y > 0 ? y : 0;
        }
    }
}

static void ref_max(double *out, const double *x, long Cn)
{
    for (long gi = 0; gi < G; gi++)
        for (long j = 0; j < Cn; j++) {
            double m = x[gi * K * Cn + j];
            for (long i = 1; i < K; i++) m = fmax(m, x[(gi * K + i) * Cn + j]);
            out[gi * Cn + j] = m;
        }
}

static void ref_forward(const net *n, double *out)
{
    const m3_group *p = &n->p;
    const float *P = n->P;
    double x[R * CIN], h1[R * A], h2[R * B], g[G * B], cat[R * 2 * B], h3[R * C], h4[R * COUT];
    for (long i = 0; i < R * CIN; i++) x[i] = n->inp[i];
    ref_linear(h1, x, P + p->conv1.w, P + p->conv1.b, R, CIN, A);
    ref_bn_relu(h1, P + p->bn1.w, P + p->bn1.b, R, A);
    ref_linear(h2, h1, P + p->conv2.w, P + p->conv2.b, R, A, B);
    ref_max(g, h2, B);
    for (long i = 0; i < R; i++)
        for (long j = 0; j < B; j++) {
            cat[i * 2 * B + j] = g[(i / K) * B + j];
            cat[i * 2 * B + B + j] = h2[i * B + j];
        }
    ref_linear(h3, cat, P + p->conv3.w, P + p->conv3.b, R, 2 * B, C);
    ref_bn_relu(h3, P + p->bn2.w, P + p->bn2.b, R, C);
    ref_linear(h4, h3, P + p->conv4.w, P + p->conv4.b, R, C, COUT);
    ref_max(out, h4, COUT);
}

static void test_forward_reference(void **state)
{
    (void)state;
    net n;
    net_init(&n);
    float out[G * COUT], Rw[G * COUT] = {0};
    m3_group_state s;
    loss_of(&n, Rw, out, &s);
    double ref[G * COUT], worst = 0;
    ref_forward(&n, ref);
    for (long i = 0; i < G * COUT; i++) worst = fmax(worst, fabs(out[i] - ref[i]) / (1 + fabs(ref[i])));
    printf("forward vs double reference: worst %.3g\n", worst);
    assert_true(worst < 1e-5);
    net_free(&n);
}

/* Analytic gradients (params and input) of L into n->Gr, n->dinp (zeroed first) */
static void analytic(net *n, const float *Rw)
{
    float out[G * COUT];
    m3_group_state s;
    memset(n->Gr, 0, sizeof(float) * (size_t)n->n_params);
    memset(n->dinp, 0, sizeof n->dinp);
    loss_of(n, Rw, out, &s);
    int rc = m3_group_backward(&n->run, &n->p, n->dinp, Rw, &s, n->inp, G, K);
    if (rc) printf("backward: %s\n", g_err);
    assert_int_equal(rc, 0);
}

/* FD of entry x[i] against the analytic value an; 1 if outside tolerance after the retries. */
static int fd_entry(net *n, float *x, long i, double an, const float *Rw, const char *what)
{
    float out[G * COUT];
    m3_group_state s;
    double fd = 0, tol = 0;
    for (int tries = 0; tries < 3; tries++) {
        float eps = FD_EPS / (float)(1 << (2 * tries)), keep = x[i];
        x[i] = keep + eps;
        double lp = loss_of(n, Rw, out, &s);
        x[i] = keep - eps;
        double lm = loss_of(n, Rw, out, &s);
        x[i] = keep;
        fd = (lp - lm) / (2.0 * eps);
        tol = FD_REL * fmax(fabs(fd), fabs(an)) + FD_ABS * (FD_EPS / eps);
        if (fabs(fd - an) <= tol) return 0;
    }
    printf("%s [%ld]: fd %.6g analytic %.6g NOT OK\n", what, i, fd, an);
    return 1;
}

static void test_fd(void **state)
{
    (void)state;
    net n;
    net_init(&n);
    float Rw[G * COUT];
    fill(Rw, G * COUT, 99, -1, 1);
    analytic(&n, Rw);
    float *an = malloc(sizeof(float) * (size_t)n.n_params);
    memcpy(an, n.Gr, sizeof(float) * (size_t)n.n_params);
    float dinp[R * CIN];
    memcpy(dinp, n.dinp, sizeof dinp);
    int bad = 0;
    double w3_max[2] = {0, 0}; /* largest |gradient| of conv3.weight's global and per-point halves */
    for (long i = 0; i < n.n_params; i++) bad += fd_entry(&n, n.P, i, an[i], Rw, "param");
    for (long i = 0; i < C * 2 * B; i++)
        w3_max[(i % (2 * B)) >= B] = fmax(w3_max[(i % (2 * B)) >= B], fabs(an[n.p.conv3.w + i]));
    for (long i = 0; i < R * CIN; i++) bad += fd_entry(&n, n.inp, i, dinp[i], Rw, "input");
    printf("FD: %d of %ld entries outside tolerance; conv3.weight max |grad| global half %.3g, per-point half %.3g\n",
           bad, n.n_params + R * CIN, w3_max[0], w3_max[1]);
    assert_int_equal(bad, 0);
    assert_true(w3_max[0] > 1e-3 && w3_max[1] > 1e-3); /* both halves exercised */
    /* accumulation: a second backward on the same state adds the same again */
    float out[G * COUT];
    m3_group_state s;
    loss_of(&n, Rw, out, &s);
    memcpy(n.Gr, an, sizeof(float) * (size_t)n.n_params);
    memcpy(n.dinp, dinp, sizeof dinp);
    assert_int_equal(m3_group_backward(&n.run, &n.p, n.dinp, Rw, &s, n.inp, G, K), 0);
    for (long i = 0; i < n.n_params; i++) assert_true(fabs(n.Gr[i] - 2 * an[i]) <= 1e-5 * (1 + fabs(an[i])));
    for (long i = 0; i < R * CIN; i++) assert_true(fabs(n.dinp[i] - 2 * dinp[i]) <= 1e-5 * (1 + fabs(dinp[i])));
    free(an);
    net_free(&n);
}

/* eval mode: groups 0..1 and group 2 run apart give the output of the three together, bitwise */
static void test_eval_batch_independent(void **state)
{
    (void)state;
    net n;
    net_init(&n);
    for (long i = 0; i < A + C; i++) n.buf[i] = 0.1f * (float)(i % 5); /* running means */
    for (long i = A + C; i < 2 * (A + C); i++) n.buf[i] = 0.5f + 0.1f * (float)(i % 3); /* running vars */
    n.p.bn1.run_mean = 0, n.p.bn2.run_mean = A, n.p.bn1.run_var = A + C, n.p.bn2.run_var = 2 * A + C;
    n.run.train = 0;
    n.run.G = NULL;
    float all[G * COUT], part[G * COUT];
    m3_group_state s;
    arena_reset(&n.a);
    assert_int_equal(m3_group_forward(&n.run, &n.p, all, &s, n.inp, G, K), 0);
    arena_reset(&n.a);
    assert_int_equal(m3_group_forward(&n.run, &n.p, part, &s, n.inp, 2, K), 0);
    arena_reset(&n.a);
    assert_int_equal(m3_group_forward(&n.run, &n.p, part + 2 * COUT, &s, n.inp + 2 * K * CIN, 1, K), 0);
    assert_memory_equal(all, part, sizeof all);
    net_free(&n);
}

/* One forward + backward, light (with a scratch arena or not) or full: out, running statistics,
 * gradients, dinp; kept: the arena's bytes in use after the forward. */
static void run_light(int light, int scratch, float *out, float *buf, float *grads, float *dinp, size_t *kept)
{
    net n;
    net_init(&n);
    arena sa;
    arena_init(&sa, 1 << 20);
    if (scratch) n.run.scratch = &sa;
    float dout[G * COUT];
    fill(dout, G * COUT, 21, -1, 1);
    m3_group_state s;
    size_t before = arena_in_use(&n.a);
    if (light) assert_int_equal(m3_group_forward_light(&n.run, &n.p, out, &s, n.inp, G, K), 0);
    else assert_int_equal(m3_group_forward(&n.run, &n.p, out, &s, n.inp, G, K), 0);
    *kept = arena_in_use(&n.a) - before;
    if (light) {
        assert_null(s.h2);
        assert_int_equal(m3_group_backward(&n.run, &n.p, n.dinp, dout, &s, n.inp, G, K), -1); /* not kept */
        m3_run rr = n.run;
        if (scratch) rr.a = &sa;
        assert_int_equal(m3_group_backward_light(&rr, &n.p, n.dinp, dout, &s, n.inp, G, K), 0);
    } else {
        assert_int_equal(m3_group_backward(&n.run, &n.p, n.dinp, dout, &s, n.inp, G, K), 0);
    }
    memcpy(buf, n.buf, sizeof(float) * (size_t)(2 * (A + C)));
    memcpy(grads, n.Gr, sizeof(float) * (size_t)n.n_params);
    memcpy(dinp, n.dinp, sizeof(float) * (size_t)(R * CIN));
    arena_free(&sa);
    net_free(&n);
}

static void test_light_recompute_bitwise(void **state)
{
    (void)state;
    net n;
    net_init(&n);
    long np = n.n_params;
    net_free(&n);
    float out[3][G * COUT], buf[3][2 * (A + C)], dinp[3][R * CIN];
    float *grads[3];
    size_t kept[3];
    for (int v = 0; v < 3; v++) {
        grads[v] = malloc(sizeof(float) * (size_t)np);
        run_light(v > 0, v == 2, out[v], buf[v], grads[v], dinp[v], &kept[v]);
    }
    printf("kept by the forward: %zu bytes, light %zu, light with scratch %zu\n", kept[0], kept[1], kept[2]);
    long nz = 0;
    for (long i = 0; i < np; i++) nz += grads[0][i] != 0;
    assert_true(nz > np / 2);
    for (int v = 1; v < 3; v++) {
        assert_memory_equal(out[0], out[v], sizeof out[0]);
        assert_memory_equal(buf[0], buf[v], sizeof buf[0]);
        assert_memory_equal(dinp[0], dinp[v], sizeof dinp[0]);
        assert_memory_equal(grads[0], grads[v], sizeof(float) * (size_t)np);
        /* R (b + c) + G b floats less (each buffer rounded up to 64 bytes by the arena) */
        assert_true(kept[0] >= kept[v] + sizeof(float) * (size_t)(R * (B + C) + G * B));
        free(grads[v]);
    }
    free(grads[0]);
}

/* The by-rows backward (m3_group_backward_rows) on GR groups of KR points, R = 9600 rows: chunks
 * of 1024 rows (9 and a partial one of 384 rows), of 2048 (4 and a last of 1408: a partial weight
 * gradient chunk after a full one), at 1 and 2 threads, bitwise the whole-rows light backward and the
 * full forward and backward (output, running statistics, input and parameter gradients), holding
 * less of the arena at its peak. */
enum { GR = 300, KR = 32, RR = GR * KR };

typedef struct {
    float out[GR * WCOUT], buf[2 * (WA + WC)], dinp[RR * CIN];
    float *grads;
    size_t peak;
} rows_result;

/* rows 0: full forward and backward; rows < 0: light forward, whole-rows light backward; else by rows */
static void run_rows(long rows, int threads, rows_result *res)
{
    net n;
    net_init(&n);
    omp_set_num_threads(threads);
    float *inp = malloc(sizeof(float) * RR * CIN), *dinp = calloc(RR * CIN, sizeof(float)),
          *dout = malloc(sizeof(float) * GR * g_cout);
    fill(inp, RR * CIN, 31, -1, 1);
    fill(dout, GR * g_cout, 32, -1, 1);
    memset(res->out, 0, sizeof res->out);
    m3_group_state s;
    int rc = rows ? m3_group_forward_light(&n.run, &n.p, res->out, &s, inp, GR, KR)
                  : m3_group_forward(&n.run, &n.p, res->out, &s, inp, GR, KR);
    if (rc) printf("forward: %s\n", g_err);
    assert_int_equal(rc, 0);
    size_t base = arena_in_use(&n.a);
    n.a.peak = base;
    rc = !rows ? m3_group_backward(&n.run, &n.p, dinp, dout, &s, inp, GR, KR)
               : m3_group_backward_rows(&n.run, &n.p, dinp, dout, &s, inp, GR, KR, rows < 0 ? 0 : rows);
    if (rc) printf("backward: %s\n", g_err);
    assert_int_equal(rc, 0);
    res->peak = n.a.peak - base;
    memset(res->buf, 0, sizeof res->buf);
    memcpy(res->buf, n.buf, sizeof(float) * (size_t)(2 * (g_a + g_c)));
    memcpy(res->dinp, dinp, sizeof res->dinp);
    res->grads = malloc(sizeof(float) * (size_t)n.n_params);
    memcpy(res->grads, n.Gr, sizeof(float) * (size_t)n.n_params);
    omp_set_num_threads(1);
    free(inp);
    free(dinp);
    free(dout);
    net_free(&n);
}

/* run_rows' six variants (full; light; by 1024 and 2048 rows at 1 and 2 threads) bitwise equal */
static void check_rows_bitwise(void)
{
    net n;
    net_init(&n);
    long np = n.n_params;
    net_free(&n);
    static rows_result res[6];
    long rows[6] = {0, -1, 1024, 2048, 1024, 2048};
    int threads[6] = {1, 1, 1, 1, 2, 2};
    for (int v = 0; v < 6; v++) run_rows(rows[v], threads[v], &res[v]);
    printf("backward's arena peak: full %zu bytes, light %zu, by 1024 rows %zu, by 2048 rows %zu\n", res[0].peak,
           res[1].peak, res[2].peak, res[3].peak);
    long nz = 0;
    for (long i = 0; i < np; i++) nz += res[0].grads[i] != 0;
    assert_true(nz > np / 2);
    for (int v = 1; v < 6; v++) {
        assert_memory_equal(res[0].out, res[v].out, sizeof res[0].out);
        assert_memory_equal(res[0].buf, res[v].buf, sizeof res[0].buf);
        assert_memory_equal(res[0].dinp, res[v].dinp, sizeof res[0].dinp);
        assert_memory_equal(res[0].grads, res[v].grads, sizeof(float) * (size_t)np);
    }
    assert_true(res[2].peak < res[1].peak);
    for (int v = 0; v < 6; v++) free(res[v].grads);
}

static void test_rows_bitwise(void **state)
{
    (void)state;
    check_rows_bitwise();
}

/* The same in bf16 precision, at widths where conv2 and conv3 run bf16: the full backward takes
 * conv3's output gradient from bn2's backward in bf16 with its sums over k formed in the same pass
 * (m3_group.c), the light and by-rows backwards in separate passes; all give the same bits. */
static void test_rows_bitwise_bf16(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    nn_cache c;
    assert_int_equal(nn_cache_init(&c, &g_dnn, 1024, err), 0);
    if (nn_cache_set_precision(&c, NN_BF16, err)) {
        printf("skipped: %s\n", err);
        nn_cache_free(&c);
        skip();
        return;
    }
    g_a = WA, g_b = WB, g_c = WC, g_cout = WCOUT, g_net_cache = &c;
    check_rows_bitwise();
    static rows_result r16, r32; /* and bf16 is in use: fp32 gives other gradients */
    run_rows(0, 1, &r16);
    nn_cache c32;
    assert_int_equal(nn_cache_init(&c32, &g_dnn, 1024, err), 0);
    g_net_cache = &c32;
    run_rows(0, 1, &r32);
    g_net_cache = &g_cache;
    nn_cache_free(&c32);
    net n;
    net_init(&n);
    assert_memory_not_equal(r16.grads, r32.grads, sizeof(float) * (size_t)n.n_params);
    net_free(&n);
    free(r16.grads), free(r32.grads);
    g_a = A, g_b = B, g_c = C, g_cout = COUT;
    nn_cache_free(&c);
}

int main(void)
{
    omp_set_num_threads(1); /* tiny shapes */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_reference),
        cmocka_unit_test(test_fd),
        cmocka_unit_test(test_eval_batch_independent),
        cmocka_unit_test(test_light_recompute_bitwise),
        cmocka_unit_test(test_rows_bitwise),
        cmocka_unit_test(test_rows_bitwise_bf16),
    };
    return cmocka_run_group_tests(tests, dnn_cache_group_setup, dnn_cache_group_teardown);
}
