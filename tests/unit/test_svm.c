/* test_svm.c -- the liblinear wrapper on synthetic features with known answers: well separated
 * Gaussian clusters are classified perfectly, random labels are not learnt beyond chance on held-out
 * data, training is deterministic, C selection by cross-validation avoids an underfitting C, and
 * bad arguments are errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "rng.h"
#include "svm.h"

enum { DIM = 16, CLASSES = 5, N = 400 };

/* Class c has mean 3 * e_c (unit vectors along axis c) and N(0, 0.3^2) noise: separable. */
static void clusters(float *x, int32_t *y, long n, uint64_t seed, double spread)
{
    rng_t r;
    rng_seed(&r, seed, 1);
    for (long i = 0; i < n; i++) {
        y[i] = (int32_t)(i % CLASSES);
        for (int j = 0; j < DIM; j++)
            x[i * DIM + j] = (float)((j == y[i] ? 3.0 : 0.0) + spread * rng_normal(&r));
    }
}

static double accuracy(const int32_t *a, const int32_t *b, long n)
{
    long c = 0;
    for (long i = 0; i < n; i++) c += a[i] == b[i];
    return (double)c / (double)n;
}

static void test_separable_clusters(void **state)
{
    (void)state;
    float *x = malloc(sizeof(float) * N * DIM), *xt = malloc(sizeof(float) * N * DIM);
    int32_t y[N], yt[N], pred[N];
    clusters(x, y, N, 1, 0.3);
    clusters(xt, yt, N, 2, 0.3);
    char err[I2P_ERR_LEN];
    svm_classifier *m;
    assert_int_equal(svm_train(x, y, N, DIM, 1.0, 7, &m, err), 0);
    svm_predict(m, xt, N, DIM, pred);
    assert_true(accuracy(pred, yt, N) == 1.0);
    svm_free(m);
    /* the spec's C = 0.0093 on these well-scaled features still separates them */
    assert_int_equal(svm_train(x, y, N, DIM, 0.0093, 7, &m, err), 0);
    svm_predict(m, xt, N, DIM, pred);
    assert_true(accuracy(pred, yt, N) > 0.99);
    svm_free(m);
    free(x);
    free(xt);
}

static void test_random_labels_not_learnt(void **state)
{
    (void)state;
    float *x = malloc(sizeof(float) * N * DIM), *xt = malloc(sizeof(float) * N * DIM);
    int32_t y[N], yt[N], pred[N];
    clusters(x, y, N, 3, 1.0);
    clusters(xt, yt, N, 4, 1.0);
    rng_t r;
    rng_seed(&r, 5, 0);
    for (long i = 0; i < N; i++) { y[i] = (int32_t)rng_below(&r, CLASSES); yt[i] = (int32_t)rng_below(&r, CLASSES); }
    char err[I2P_ERR_LEN];
    svm_classifier *m;
    assert_int_equal(svm_train(x, y, N, DIM, 1.0, 7, &m, err), 0);
    svm_predict(m, xt, N, DIM, pred);
    assert_true(accuracy(pred, yt, N) < 0.35); /* chance is 0.2 */
    svm_free(m);
    free(x);
    free(xt);
}

static void test_deterministic(void **state)
{
    (void)state;
    float *x = malloc(sizeof(float) * N * DIM);
    int32_t y[N], p1[N], p2[N];
    clusters(x, y, N, 6, 1.5); /* overlapping: the solver's order matters */
    char err[I2P_ERR_LEN];
    svm_classifier *a, *b;
    assert_int_equal(svm_train(x, y, N, DIM, 0.5, 11, &a, err), 0);
    rand(); /* disturb the global rand() state between the two runs */
    assert_int_equal(svm_train(x, y, N, DIM, 0.5, 11, &b, err), 0);
    svm_predict(a, x, N, DIM, p1);
    svm_predict(b, x, N, DIM, p2);
    assert_memory_equal(p1, p2, sizeof p1);
    double c1, c2;
    assert_int_equal(svm_cross_validate(x, y, N, DIM, 0.5, 5, 3, &c1, err), 0);
    assert_int_equal(svm_cross_validate(x, y, N, DIM, 0.5, 5, 3, &c2, err), 0);
    assert_true(c1 == c2);
    svm_free(a);
    svm_free(b);
    free(x);
}

static void test_select_c(void **state)
{
    (void)state;
    float *x = malloc(sizeof(float) * N * DIM);
    int32_t y[N];
    clusters(x, y, N, 8, 0.3);
    for (long i = 0; i < N * DIM; i++) x[i] *= 1e-3f; /* tiny features: a tiny C cannot fit */
    double grid[] = {1e-6, 1e-2, 1e2}, acc[3], best = 0;
    char err[I2P_ERR_LEN];
    assert_int_equal(svm_select_c(x, y, N, DIM, grid, 3, 4, 1, &best, acc, err), 0);
    /* 1e-2 and 1e2 both separate the clusters: the tie goes to the smaller C */
    assert_true(best == 1e-2);
    assert_true(acc[1] > 0.99 && acc[2] > 0.99);
    assert_true(acc[0] < 0.5);
    free(x);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float x[DIM] = {0};
    int32_t y[1] = {0};
    char err[I2P_ERR_LEN];
    svm_classifier *m;
    assert_int_equal(svm_train(x, y, 1, DIM, 1.0, 1, &m, err), -1);
    assert_non_null(strstr(err, "at least 2"));
    assert_int_equal(svm_train(x, y, 1, DIM, 0.0, 1, &m, err), -1);
    double acc;
    assert_int_equal(svm_cross_validate(x, y, 1, DIM, 1.0, 5, 1, &acc, err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separable_clusters),
        cmocka_unit_test(test_random_labels_not_learnt),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_select_c),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
