/* test_pointops.c -- FPS and kNN against brute-force references written independently here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "pointops.h"
#include "rng.h"

static void random_cloud(float *p, long n, uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed, 0);
    for (long i = 0; i < 3 * n; i++) p[i] = (float)rng_range(&r, -1, 1);
}

static float d2(const float *a, const float *b)
{
    float dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return dx * dx + dy * dy + dz * dz;
}

/* Brute force FPS: O(M^2 P), recomputes min distance to the whole selected set each time. With
 * skip_origin, points of squared norm <= 1e-3 are no candidates (index 0 if none is left). */
static void fps_brute(const float *p, long P, long M, int skip_origin, int32_t *out)
{
    out[0] = 0;
    for (long m = 1; m < M; m++) {
        float best = -1;
        long arg = 0;
        for (long i = 0; i < P; i++) {
            if (skip_origin && d2(p + 3 * i, (const float[3]){0, 0, 0}) <= 1e-3) continue;
            float dmin = FLT_MAX;
            for (long j = 0; j < m; j++) {
                float d = d2(p + 3 * i, p + 3 * out[j]);
                if (d < dmin) dmin = d;
            }
            if (dmin > best) { best = dmin; arg = i; }
        }
        out[m] = (int32_t)arg;
    }
}

static void test_fps_matches_brute_force(void **state)
{
    (void)state;
    long P = 300, M = 40;
    float *p = malloc(sizeof(float) * 3 * P);
    random_cloud(p, P, 11);
    int32_t a[40], b[40];
    fps_sample(p, P, M, 0, a);
    fps_brute(p, P, M, 0, b);
    for (long m = 0; m < M; m++) assert_int_equal(a[m], b[m]);
    free(p);
}

/* The official kernel's rule: a cloud with points at and near the origin (and the first point
 * there too) -- plain FPS picks some of them, the rule none after index 0. */
static void test_fps_skip_origin(void **state)
{
    (void)state;
    long P = 300, M = 60;
    float *p = malloc(sizeof(float) * 3 * P);
    random_cloud(p, P, 5);
    for (long i = 0; i < P; i++) { /* on the unit sphere, every tenth within sqrt(1e-3) ~ 0.0316 of 0 */
        float n = sqrtf(d2(p + 3 * i, (const float[3]){0, 0, 0}));
        for (int d = 0; d < 3; d++) p[3 * i + d] *= (i % 10 != 5 ? 1.0f : 0.015f) / n;
    }
    for (int d = 0; d < 3; d++) p[3 * 7 + d] = 0; /* one exactly at the origin */
    int32_t plain[60], skip[60], want[60];
    fps_sample(p, P, M, 0, plain);
    fps_sample(p, P, M, 1, skip);
    fps_brute(p, P, M, 1, want);
    int plain_near = 0;
    for (long m = 0; m < M; m++) {
        assert_int_equal(skip[m], want[m]);
        const float *q = p + 3 * skip[m];
        if (m > 0) assert_true(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] > 1e-3f);
        const float *r = p + 3 * plain[m];
        plain_near += m > 0 && r[0] * r[0] + r[1] * r[1] + r[2] * r[2] <= 1e-3f;
    }
    assert_true(plain_near > 0); /* the cloud does exercise the rule */
    /* every point near the origin: index 0 over and over, as the kernel's besti = 0 */
    for (long i = 0; i < 3 * P; i++) p[i] *= 0.01f;
    fps_sample(p, P, 5, 1, skip);
    for (long m = 0; m < 5; m++) assert_int_equal(skip[m], 0);
    free(p);
}

static void test_fps_batch_equals_single(void **state)
{
    (void)state;
    long B = 5, P = 200, M = 32;
    float *p = malloc(sizeof(float) * 3 * P * B);
    random_cloud(p, P * B, 3);
    int32_t *a = malloc(sizeof(int32_t) * B * M), one[32];
    fps_sample_batch(p, B, P, M, 1, a);
    for (long b = 0; b < B; b++) {
        fps_sample(p + b * P * 3, P, M, 1, one);
        for (long m = 0; m < M; m++) assert_int_equal(a[b * M + m], one[m]);
    }
    free(p);
    free(a);
}

/* Brute force kNN: full sort by (distance, index). */
static const float *g_d;
static int cmp_idx(const void *x, const void *y)
{
    int32_t i = *(const int32_t *)x, j = *(const int32_t *)y;
    if (g_d[i] < g_d[j]) return -1;
    if (g_d[i] > g_d[j]) return 1;
    return (i > j) - (i < j);
}

/* knn_query of the Q queries q against the full sort of the distances by (distance, index), every
 * rank below k. */
static void knn_case(const float *p, long P, const float *q, long Q, int k)
{
    int32_t *idx = malloc(sizeof(int32_t) * Q * k), *ord = malloc(sizeof(int32_t) * P);
    float *d = malloc(sizeof(float) * P);
    knn_query(p, P, q, Q, k, idx);
    for (long j = 0; j < Q; j++) {
        for (long i = 0; i < P; i++) { d[i] = d2(p + 3 * i, q + 3 * j); ord[i] = (int32_t)i; }
        g_d = d;
        qsort(ord, (size_t)P, sizeof(int32_t), cmp_idx);
        for (int t = 0; t < k; t++) {
            if (idx[j * k + t] != ord[t])
                fail_msg("P %ld k %d query %ld rank %d: %d, want %d", P, k, j, t, idx[j * k + t], ord[t]);
        }
    }
    free(idx); free(ord); free(d);
}

static void test_knn_matches_sort(void **state)
{
    (void)state;
    long P = 257, Q = 31;
    float *p = malloc(sizeof(float) * 3 * P), *q = malloc(sizeof(float) * 3 * Q);
    random_cloud(p, P, 5);
    random_cloud(q, Q, 6);
    knn_case(p, P, q, Q, 16);
    free(p); free(q);
}

static void test_knn_ties_by_index(void **state)
{
    (void)state;
    /* Four points at the same distance from the query: the lower indices must come first. */
    float p[] = {1, 0, 0, 0, 1, 0, -1, 0, 0, 0, -1, 0, 5, 5, 5};
    float q[] = {0, 0, 0};
    int32_t idx[3];
    knn_query(p, 5, q, 1, 3, idx);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 2);
}

/* Ties among many points, after the k best are full: point i at distance 1, 2 or 3 (i % 3); the 16
 * nearest are the 16 lowest i with i % 3 == 0, later equal distances never displacing them. */
static void test_knn_ties_across_blocks(void **state)
{
    (void)state;
    long P = 200;
    float *p = malloc(sizeof(float) * 3 * P), q[] = {0, 0, 0};
    for (long i = 0; i < P; i++) p[3 * i] = (float)(1 + i % 3), p[3 * i + 1] = 0, p[3 * i + 2] = 0;
    int32_t idx[16];
    knn_query(p, P, q, 1, 16, idx);
    for (int t = 0; t < 16; t++) assert_int_equal(idx[t], 3 * t);
    free(p);
}

/* kNN against the full sort on the cases that steer its paths (pointops.c: a 16-lane threshold
 * search for k <= 16 on AVX-512 CPUs, select_topk otherwise): P not a multiple of 16, P below 16
 * (lanes without points), k = 1 .. 17, clouds with many duplicate points (equal distances, also
 * straddling the threshold), one with more equal distances than the candidate buffer holds, and a
 * query far outside (distances of one size). */
static void knn_paths(void)
{
    long sizes[] = {3, 5, 15, 16, 17, 33, 200, 513, 2048};
    int ks[] = {1, 3, 8, 15, 16, 17};
    float *p = malloc(sizeof(float) * 3 * 2048), q[3 * 12];
    for (int grid = 0; grid < 2; grid++)
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            long P = sizes[si];
            random_cloud(p, P, 40 + (uint64_t)si);
            if (grid) /* coordinates on a coarse grid: many duplicates and equal distances */
                for (long i = 0; i < 3 * P; i++) p[i] = roundf(p[i] * 2) / 2;
            for (int j = 0; j < 12; j++) /* queries: cloud points, then random ones */
                for (int c = 0; c < 3; c++) q[3 * j + c] = j < 6 ? p[3 * ((j * 37) % P) + c] : (float)(j - 8) * 0.3f;
            for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
                if (ks[ki] <= P) knn_case(p, P, q, 12, ks[ki]);
        }
    /* 400 points at distance exactly 1 from the origin (the 6 unit axis points over and over), one
       at 0 and one at 4: more equal distances than the candidates kept (select_topk's path) */
    long P = 402;
    for (long i = 0; i < 3 * P; i++) p[i] = 0;
    for (long i = 0; i < 400; i++) p[3 * i + i % 3] = i % 6 < 3 ? 1.0f : -1.0f;
    p[3 * 400] = 2.0f;
    float o[3] = {0, 0, 0};
    knn_case(p, P, o, 1, 16);
    float far[3] = {1e18f, 0, 0};
    knn_case(p, P, far, 1, 16);
    /* a NaN coordinate (the commands reject such clouds before; here the order among NaN is
       select_topk's own): indices in range and distinct */
    random_cloud(p, 40, 77);
    p[3 * 5 + 1] = NAN;
    int32_t idx[16];
    knn_query(p, 40, o, 1, 16, idx);
    for (int t = 0; t < 16; t++) {
        assert_in_range(idx[t], 0, 39);
        for (int u = 0; u < t; u++) assert_int_not_equal(idx[t], idx[u]);
    }
    free(p);
}

/* FPS against the brute force on clouds with duplicate points (equal distances: the lowest index
 * wins) and P not a multiple of 16, with and without skip_origin. */
static void fps_paths(void)
{
    long sizes[] = {7, 16, 33, 250};
    float *p = malloc(sizeof(float) * 3 * 250);
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int skip = 0; skip < 2; skip++) {
            long P = sizes[si], M = P < 40 ? P : 40;
            random_cloud(p, P, 60 + (uint64_t)si);
            for (long i = 0; i < 3 * P; i++) p[i] = roundf(p[i] * 2) / 2; /* a coarse grid: duplicates */
            int32_t a[40], b[40];
            fps_sample(p, P, M, skip, a);
            fps_brute(p, P, M, skip, b);
            for (long m = 0; m < M; m++)
                if (a[m] != b[m]) fail_msg("P %ld skip %d pick %ld: %d, want %d", P, skip, m, a[m], b[m]);
        }
    free(p);
}

/* check on the paths of this CPU (AVX-512 ones where it has them), then on the plain loops, which
 * otherwise run only on CPUs without AVX-512 (pointops_allow_avx512). */
static void on_both_paths(void (*check)(void))
{
    check();
    int was = pointops_allow_avx512(0);
    check();
    pointops_allow_avx512(was);
}

static void test_knn_paths(void **state)
{
    (void)state;
    on_both_paths(knn_paths);
}

static void test_fps_paths(void **state)
{
    (void)state;
    on_both_paths(fps_paths);
}

/* pc_all_finite (blocks of 1024 without a branch) against the scalar isfinite: finite extremes
 * (FLT_MAX, subnormals, -0) pass; one NaN, +inf or -inf anywhere (either side of a block boundary,
 * the first and the last element) fails; so do lengths below and above a block. */
static void test_all_finite(void **state)
{
    (void)state;
    enum { N = 2500 };
    static float v[N];
    const float finite[] = {0.0f, -0.0f, 1.5f, -FLT_MAX, FLT_MAX, FLT_MIN / 8, -FLT_MIN / 8};
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (long i = 0; i < N; i++) v[i] = finite[i % 7];
    assert_int_equal(pc_all_finite(v, N), 1);
    assert_int_equal(pc_all_finite(v, 0), 1);
    const long at[] = {0, 1, 1023, 1024, 1025, 2047, 2048, N - 1};
    for (int b = 0; b < 4; b++)
        for (int j = 0; j < 8; j++) {
            float keep = v[at[j]];
            v[at[j]] = bad[b];
            assert_int_equal(pc_all_finite(v, N), 0);
            assert_int_equal(pc_all_finite(v, at[j] + 1), 0);
            assert_int_equal(pc_all_finite(v, at[j]), 1); /* the bad value just past the end */
            v[at[j]] = keep;
        }
}

static void test_normalize_unit_sphere(void **state)
{
    (void)state;
    long P = 100;
    float p[300];
    random_cloud(p, P, 9);
    for (long i = 0; i < 3 * P; i++) p[i] = p[i] * 7.0f + 3.0f;
    pc_normalize_unit_sphere(p, P);
    double c[3] = {0, 0, 0}, m = 0;
    for (long i = 0; i < P; i++) {
        double s = 0;
        for (int d = 0; d < 3; d++) { c[d] += p[3 * i + d]; s += (double)p[3 * i + d] * p[3 * i + d]; }
        if (s > m) m = s;
    }
    for (int d = 0; d < 3; d++) assert_true(fabs(c[d] / P) < 1e-5);
    assert_true(fabs(sqrt(m) - 1.0) < 1e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fps_matches_brute_force),
        cmocka_unit_test(test_fps_skip_origin),
        cmocka_unit_test(test_fps_batch_equals_single),
        cmocka_unit_test(test_knn_matches_sort),
        cmocka_unit_test(test_knn_ties_by_index),
        cmocka_unit_test(test_knn_ties_across_blocks),
        cmocka_unit_test(test_knn_paths),
        cmocka_unit_test(test_fps_paths),
        cmocka_unit_test(test_all_finite),
        cmocka_unit_test(test_normalize_unit_sphere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
