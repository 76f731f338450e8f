/* test_optim.c -- AdamW against a double-precision transcription of torch.optim.AdamW (decay only
 * on flagged tensors), and the cosine schedule against timm's CosineLRScheduler: the expected rates
 * come from tests/ref/cosine_ref.py (timm itself where installed, else its transcription of timm's
 * cosine_lr.py), run at test time, every epoch 0..t_initial+2 compared, tolerance 1e-12 relative. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Compares cosine_lr(s, t) for t = 0..s->epochs + 2 with cosine_ref.py's values; prints one line
 * per configuration. Returns the number of epochs that differ by more than 1e-12 relative. */
static int compare_with_reference(const cosine_schedule *s)
{
    const char *root = getenv("ROOT") ? getenv("ROOT") : ".";
    int last = s->epochs + 2;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/cosine_ref.py %.17g %d %d %.17g %.17g %d",
             root, s->base_lr, s->epochs, s->warmup_epochs, s->lr_min, s->warmup_lr_init, last);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256], source[128] = "";
    int n = 0, bad = 0;
    double worst = 0;
    while (fgets(line, sizeof line, p)) {
        if (line[0] == '#') {
            snprintf(source, sizeof source, "%s", line + 2);
            source[strcspn(source, "\n")] = 0;
            continue;
        }
        int t;
        double want;
        assert_int_equal(sscanf(line, "%d %lf", &t, &want), 2);
        assert_int_equal(t, n);
        double got = cosine_lr(s, t), rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
        if (rel > 1e-12) {
            printf("  epoch %d: ours %.17g, reference %.17g\n", t, got, want);
            bad++;
        }
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n, last + 1);
    printf("cosine lr %g, t_initial %d, warmup %d: %d epochs, max rel diff %.2e (tol 1e-12) %s [%s]\n",
           s->base_lr, s->epochs, s->warmup_epochs, n, worst, bad ? "NOT OK" : "OK", source);
    return bad;
}

static void test_cosine_schedule_matches_timm(void **state)
{
    (void)state;
    cosine_schedule s;
    cosine_schedule_default(&s); /* Point-MAE: 1e-3, 400 epochs, 10 warm-up, floors 1e-6 */
    int bad = compare_with_reference(&s);
    /* the test configuration (tests/e2e/pretrain_lib.sh) and one without warm-up */
    bad += compare_with_reference(&(cosine_schedule){.base_lr = 0.002, .epochs = 5, .warmup_epochs = 1,
                                                      .lr_min = 1e-6, .warmup_lr_init = 1e-6});
    bad += compare_with_reference(&(cosine_schedule){.base_lr = 5e-4, .epochs = 30, .warmup_epochs = 0,
                                                      .lr_min = 1e-5, .warmup_lr_init = 1e-6});
    assert_int_equal(bad, 0);
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
        cmocka_unit_test(test_cosine_schedule_matches_timm),
        cmocka_unit_test(test_clip_grad_norm_matches_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
