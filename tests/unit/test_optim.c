/* test_optim.c -- AdamW against a double-precision transcription of torch.optim.AdamW (decay only
 * on flagged tensors), and the cosine schedule against timm's CosineLRScheduler values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "errors.h"
#include "optim.h"

static void test_adamw_matches_reference(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    model3d_tensor t[2];
    memset(t, 0, sizeof t);
    t[0].offset = 0; t[0].count = 3; t[0].decay = 1;
    t[1].offset = 3; t[1].count = 2; t[1].decay = 0;
    float p[5] = {0.5f, -1.0f, 2.0f, 0.1f, -0.3f};
    double rp[5], rm[5] = {0}, rv[5] = {0};
    for (int i = 0; i < 5; i++) rp[i] = p[i];
    adamw_config c;
    adamw_config_default(&c);
    adamw_state s;
    assert_int_equal(adamw_init(&s, 5, err), 0);
    double lr = 1e-2;
    for (int step = 1; step <= 5; step++) {
        float g[5];
        for (int i = 0; i < 5; i++) g[i] = (float)(0.3 * sin(step + i) + 0.1 * i);
        adamw_step(&s, &c, lr, p, g, t, 2);
        for (int i = 0; i < 5; i++) {
            if (i < 3) rp[i] *= 1 - lr * c.weight_decay;
            rm[i] = 0.9 * rm[i] + 0.1 * g[i];
            rv[i] = 0.999 * rv[i] + 0.001 * (double)g[i] * g[i];
            double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
            rp[i] -= lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + 1e-8);
        }
    }
    for (int i = 0; i < 5; i++) assert_true(fabs(p[i] - rp[i]) < 1e-6 * (1 + fabs(rp[i])));
    adamw_free(&s);
}

static void test_cosine_schedule(void **state)
{
    (void)state;
    cosine_schedule s;
    cosine_schedule_default(&s);
    assert_true(fabs(cosine_lr(&s, 0) - 1e-6) < 1e-15);
    assert_true(fabs(cosine_lr(&s, 5) - (1e-6 + 5 * (1e-3 - 1e-6) / 10)) < 1e-15);
    assert_true(fabs(cosine_lr(&s, 10) - (1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + cos(M_PI * 10 / 400)))) < 1e-15);
    assert_true(fabs(cosine_lr(&s, 200) - (1e-6 + 0.5 * (1e-3 - 1e-6))) < 1e-15);
    assert_true(cosine_lr(&s, 300) > 1e-6 * 10); /* training stops at 300: never at the floor */
    assert_true(fabs(cosine_lr(&s, 400) - 1e-6) < 1e-15);
}

/* torch.nn.utils.clip_grad_norm_([p], 10.0) gave these (torch 1.13, float32). */
static void test_clip_grad_norm_matches_torch(void **state)
{
    (void)state;
    float g[4] = {30, 40, 0, -1.5f};
    double n = clip_grad_norm(g, 4, 10.0);
    assert_true(fabs(n - 50.02249526977539) < 1e-5);
    const float want[4] = {5.997302055358887f, 7.996402740478516f, 0.0f, -0.29986512660980225f};
    for (int i = 0; i < 4; i++) assert_true(fabsf(g[i] - want[i]) <= 1e-6f * (1 + fabsf(want[i])));
    float h[2] = {3, 4};
    assert_true(fabs(clip_grad_norm(h, 2, 10.0) - 5.0) < 1e-12);
    assert_true(h[0] == 3.0f && h[1] == 4.0f);         /* below the bound: unchanged */
    float z[2] = {300, 400};
    assert_true(fabs(clip_grad_norm(z, 2, 0) - 500.0) < 1e-9);
    assert_true(z[0] == 300.0f && z[1] == 400.0f);     /* max_norm 0: no clipping */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_reference),
        cmocka_unit_test(test_cosine_schedule),
        cmocka_unit_test(test_clip_grad_norm_matches_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
