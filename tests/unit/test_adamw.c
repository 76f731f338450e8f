/* test_adamw.c -- AdamW against closed forms (first step = sign step, bias correction makes a
 * constant gradient move lr per step, decoupled decay only on decay tensors) and the spec's cosine
 * schedule at known epochs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "adamw.h"

static model3d_tensor tensor(long off, long count, int decay)
{
    model3d_tensor t;
    memset(&t, 0, sizeof t);
    t.offset = off;
    t.count = count;
    t.decay = decay;
    return t;
}

static void test_first_step_and_decay(void **state)
{
    (void)state;
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f}, g[4] = {0.3f, -4.0f, 2e-3f, -1e-2f}, m[4] = {0}, v[4] = {0};
    model3d_tensor t[2] = {tensor(0, 2, 1), tensor(2, 2, 0)};
    double lr = 1e-3, wd = 0.05;
    adamw_update(p, g, m, v, t, 2, lr, wd, 1);
    /* step 1: m_hat = g, v_hat = g^2, so the step is lr * sign(g) (eps negligible) */
    assert_true(fabs(p[0] - (1.0 * (1 - lr * wd) - lr)) < 1e-6);
    assert_true(fabs(p[1] - (-2.0 * (1 - lr * wd) + lr)) < 1e-6);
    assert_true(fabs(p[2] - (0.5 - lr)) < 1e-6);      /* no decay */
    assert_true(fabs(p[3] - (3.0 + lr)) < 1e-6);
    assert_true(fabs(m[1] - 0.1 * -4.0) < 1e-6);
    assert_true(fabs(v[1] - 0.001 * 16.0) < 1e-6);
}

static void test_constant_gradient(void **state)
{
    (void)state;
    float p[1] = {0}, g[1] = {0.7f}, m[1] = {0}, v[1] = {0};
    model3d_tensor t = tensor(0, 1, 1);
    for (long s = 1; s <= 50; s++) adamw_update(p, g, m, v, &t, 1, 1e-2, 0.0, s);
    assert_true(fabs(p[0] - (-50 * 1e-2)) < 1e-4); /* bias correction: exactly lr per step */
}

static void test_cosine_schedule(void **state)
{
    (void)state;
    /* the spec: lr 1e-3, min 1e-6, warm-up 10 epochs from 1e-6, cosine over 400 */
    assert_true(fabs(cosine_lr(0, 1e-3, 1e-6, 1e-6, 10, 400) - 1e-6) < 1e-12);
    assert_true(fabs(cosine_lr(5, 1e-3, 1e-6, 1e-6, 10, 400) - (1e-6 + 5 * (1e-3 - 1e-6) / 10)) < 1e-12);
    double at10 = 1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + cos(M_PI * 10.0 / 400.0));
    assert_true(fabs(cosine_lr(10, 1e-3, 1e-6, 1e-6, 10, 400) - at10) < 1e-12);
    assert_true(fabs(cosine_lr(200, 1e-3, 1e-6, 1e-6, 10, 400) - (1e-6 + 0.5 * (1e-3 - 1e-6))) < 1e-12);
    double at299 = cosine_lr(299, 1e-3, 1e-6, 1e-6, 10, 400);
    assert_true(at299 > 1.50e-4 && at299 < 1.51e-4); /* the last epoch of the spec's 300 */
    assert_true(cosine_lr(400, 1e-3, 1e-6, 1e-6, 10, 400) == 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_step_and_decay),
        cmocka_unit_test(test_constant_gradient),
        cmocka_unit_test(test_cosine_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
