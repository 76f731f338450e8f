/* test_data_order.c -- epoch shuffles (a permutation, seeded, different per epoch, uniform enough),
 * the cut of a global batch into per-rank micro-batches (the same global micro-batches for every
 * rank count; uneven splits rejected), and the scale-and-translate augmentation (ranges, seeded per
 * (seed, epoch, sample), applied as p * s + t). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "data_order.h"
#include "errors.h"

static void test_epoch_is_permutation(void **state)
{
    (void)state;
    enum { N = 1001 };
    int64_t p[N], q[N], r[N];
    data_order_epoch(5, 0, N, p);
    char seen[N] = {0};
    for (long i = 0; i < N; i++) {
        assert_true(p[i] >= 0 && p[i] < N);
        assert_int_equal(seen[p[i]], 0);
        seen[p[i]] = 1;
    }
    data_order_epoch(5, 0, N, q);
    assert_memory_equal(p, q, sizeof p);           /* seeded */
    data_order_epoch(5, 1, N, r);
    assert_true(memcmp(p, r, sizeof p) != 0);      /* a new order each epoch */
    data_order_epoch(6, 0, N, r);
    assert_true(memcmp(p, r, sizeof p) != 0);      /* the seed matters */
    long fixed = 0;
    for (long i = 0; i < N; i++) fixed += p[i] == i;
    assert_true(fixed < 10);                       /* expected 1 for a random permutation */
}

static void test_epoch_uniform(void **state)
{
    (void)state;
    /* position of sample 0 over 4000 epochs of n = 8: each position expected 500 times */
    long count[8] = {0};
    int64_t p[8];
    for (long e = 0; e < 4000; e++) {
        data_order_epoch(1, e, 8, p);
        for (int i = 0; i < 8; i++) if (p[i] == 0) count[i]++;
    }
    double chi2 = 0;
    for (int i = 0; i < 8; i++) chi2 += (count[i] - 500.0) * (count[i] - 500.0) / 500.0;
    assert_true(chi2 < 24.3); /* chi-square, 7 dof, p = 0.001 */
}

static void test_layout(void **state)
{
    (void)state;
    step_layout l;
    char err[I2P_ERR_LEN];
    assert_int_equal(step_layout_make(&l, 100, 8, 2, 2, err), 0);
    assert_int_equal(l.micro_per_step, 4);
    assert_int_equal(l.micro_per_rank, 2);
    assert_int_equal(l.steps_per_epoch, 12);
    long e, pos;
    step_position(&l, 13, &e, &pos);
    assert_int_equal(e, 1);
    assert_int_equal(pos, 8);
    assert_int_equal(step_micro_index(&l, 1, 1), 3);
    /* the global micro-batches of a step are the same for 1, 2 and 4 ranks */
    for (int R = 1; R <= 4; R *= 2) {
        assert_int_equal(step_layout_make(&l, 100, 8, 2, R, err), 0);
        int covered[4] = {0};
        for (int r = 0; r < R; r++)
            for (long j = 0; j < l.micro_per_rank; j++) covered[step_micro_index(&l, r, j)]++;
        for (int k = 0; k < 4; k++) assert_int_equal(covered[k], 1);
    }
    assert_int_equal(step_layout_make(&l, 100, 8, 0, 2, err), 0);
    assert_int_equal(l.micro, 4);
    assert_int_equal(step_layout_make(&l, 100, 10, 0, 4, err), -1);
    assert_non_null(strstr(err, "not divisible by the 4 data ranks"));
    assert_int_equal(step_layout_make(&l, 100, 8, 3, 1, err), -1);
    assert_non_null(strstr(err, "micro-batch x ranks"));
    assert_int_equal(step_layout_make(&l, 5, 8, 2, 1, err), -1);
    assert_non_null(strstr(err, "fewer than one batch"));
    /* issue 18 (13): micro x ranks used to overflow (UBSan: signed overflow) */
    assert_int_equal(step_layout_make(&l, 100, 8, 9223372036854775807L, 2, err), -1);
    assert_non_null(strstr(err, "more than --batch 8"));
}

static void test_augment(void **state)
{
    (void)state;
    double lo[3] = {9, 9, 9}, hi[3] = {-9, -9, -9}, tlo = 9, thi = -9;
    for (long s = 0; s < 2000; s++) {
        double sc[3], sh[3];
        augment_draw(3, 0, s, sc, sh);
        for (int k = 0; k < 3; k++) {
            assert_true(sc[k] >= 2.0 / 3.0 && sc[k] < 1.5);
            assert_true(sh[k] >= -0.2 && sh[k] < 0.2);
            if (sc[k] < lo[k]) lo[k] = sc[k];
            if (sc[k] > hi[k]) hi[k] = sc[k];
            if (sh[k] < tlo) tlo = sh[k];
            if (sh[k] > thi) thi = sh[k];
        }
    }
    for (int k = 0; k < 3; k++) assert_true(lo[k] < 0.68 && hi[k] > 1.48); /* range covered */
    assert_true(tlo < -0.19 && thi > 0.19);
    /* per-axis (anisotropic) and keyed by (seed, epoch, sample) */
    double a[3], b[3], c[3], d[3];
    augment_draw(3, 0, 7, a, b);
    assert_true(a[0] != a[1]);
    augment_draw(3, 0, 7, c, d);
    assert_memory_equal(a, c, sizeof a);
    augment_draw(3, 1, 7, c, d);
    assert_true(memcmp(a, c, sizeof a) != 0);
    /* applied as p * s + t */
    float pts[6] = {1, 2, 3, -1, 0, 0.5f};
    augment_draw(3, 2, 9, a, b);
    augment_scale_translate(pts, 2, 3, 2, 9);
    float want[6] = {1, 2, 3, -1, 0, 0.5f};
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(pts[i] - (float)(want[i] * a[i % 3] + b[i % 3])) < 1e-6f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_is_permutation),
        cmocka_unit_test(test_epoch_uniform),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_augment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
