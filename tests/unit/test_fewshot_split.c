/* test_fewshot_split.c -- the few-shot draw (fewshot_plan_make): exact counts, disjoint, every cloud
 * of its class, classes distinct and ascending; a function of (seed, way, shot, fold) only (a
 * larger query keeps the training clouds; another fold or seed differs); classes and clouds drawn
 * uniformly (frequencies over many folds); a short class is an error naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "errors.h"
#include "fewshot_split.h"

enum { C = 10, N = 10 * 20 + 45 }; /* class c holds 20 + c clouds, interleaved */
static int32_t labels[N];
static const char names[] = "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9";

static void make_labels(void)
{
    long n = 0, left[C];
    for (int c = 0; c < C; c++) left[c] = 20 + c;
    while (n < N)
        for (int c = 0; c < C; c++)
            if (left[c]) { labels[n++] = c; left[c]--; }
}

static void check_plan(const fewshot_plan *p)
{
    char used[N] = {0};
    for (long i = 0; i < p->way; i++) {
        if (i) assert_true(p->classes[i] > p->classes[i - 1]);
        for (long j = 0; j < p->shot; j++) {
            long r = p->train[i * p->shot + j];
            assert_int_equal(labels[r], p->classes[i]);
            if (j) assert_true(r > p->train[i * p->shot + j - 1]);
            assert_int_equal(used[r]++, 0);
        }
        for (long j = 0; j < p->query; j++) {
            long r = p->test[i * p->query + j];
            assert_int_equal(labels[r], p->classes[i]);
            assert_int_equal(used[r]++, 0);
        }
    }
}

static void test_plan_properties(void **state)
{
    (void)state;
    make_labels();
    char err[I2P_ERR_LEN];
    fewshot_plan a, b, c;
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 5, 4, 6, 3, 7, &a, err), 0);
    check_plan(&a);
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 5, 4, 6, 3, 7, &b, err), 0);
    assert_memory_equal(a.classes, b.classes, 5 * sizeof *a.classes);
    assert_memory_equal(a.train, b.train, 20 * sizeof *a.train);
    assert_memory_equal(a.test, b.test, 30 * sizeof *a.test);
    fewshot_plan_free(&b);
    /* a larger query keeps the classes and the training clouds, and the first test clouds' set grows */
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 5, 4, 15, 3, 7, &c, err), 0);
    check_plan(&c);
    assert_memory_equal(a.classes, c.classes, 5 * sizeof *a.classes);
    assert_memory_equal(a.train, c.train, 20 * sizeof *a.train);
    fewshot_plan_free(&c);
    /* another fold, another seed: another draw */
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 5, 4, 6, 4, 7, &b, err), 0);
    assert_true(memcmp(a.train, b.train, 20 * sizeof *a.train) != 0);
    fewshot_plan_free(&b);
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 5, 4, 6, 3, 8, &b, err), 0);
    assert_true(memcmp(a.train, b.train, 20 * sizeof *a.train) != 0);
    fewshot_plan_free(&b);
    fewshot_plan_free(&a);
}

/* Over F folds of 3-way 2-shot: each class is drawn with probability 3/10, and each cloud of class 0
 * (20 of them) is a training cloud with probability 2/20 when its class is drawn. */
static void test_plan_uniform(void **state)
{
    (void)state;
    make_labels();
    enum { F = 4000 };
    long cls[C] = {0}, cloud[N] = {0}, drawn0 = 0;
    char err[I2P_ERR_LEN];
    for (long f = 0; f < F; f++) {
        fewshot_plan p;
        assert_int_equal(fewshot_plan_make(labels, N, C, names, 3, 2, 1, f, 1, &p, err), 0);
        for (int i = 0; i < 3; i++) {
            cls[p.classes[i]]++;
            if (p.classes[i] == 0) {
                drawn0++;
                cloud[p.train[i * 2]]++;
                cloud[p.train[i * 2 + 1]]++;
            }
        }
        fewshot_plan_free(&p);
    }
    for (int c = 0; c < C; c++) {
        double fr = (double)cls[c] / F;   /* binomial sd sqrt(.3 .7 / 4000) = 0.0072 */
        assert_true(fabs(fr - 0.3) < 0.03);
    }
    for (long r = 0; r < N; r++) {
        if (labels[r] != 0) { assert_int_equal(cloud[r], 0); continue; }
        double fr = (double)cloud[r] / (double)drawn0; /* sd sqrt(.1 .9 / 1200) = 0.0087 */
        assert_true(fabs(fr - 0.1) < 0.035);
    }
}

static void test_plan_errors(void **state)
{
    (void)state;
    make_labels();
    char err[I2P_ERR_LEN];
    fewshot_plan p;
    /* class 0 holds 20 clouds: 15 + 6 is one too many */
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 2, 15, 6, 0, 1, &p, err), -1);
    assert_non_null(strstr(err, "class 0 'c0' has 20 clouds, fewer than --shot 15 + --query 6 = 21"));
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 2, 14, 6, 0, 1, &p, err), 0);
    fewshot_plan_free(&p);
    assert_int_equal(fewshot_plan_make(labels, N, C, "", 2, 15, 6, 0, 1, &p, err), -1);
    assert_non_null(strstr(err, "class 0 '0' has 20 clouds"));  /* no names: the label */
    assert_int_equal(fewshot_plan_make(labels, N, C, names, 11, 1, 1, 0, 1, &p, err), -1);
    assert_non_null(strstr(err, "--way 11: must be between 1 and the 10 classes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_properties),
        cmocka_unit_test(test_plan_uniform),
        cmocka_unit_test(test_plan_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
