/* test_finetune_data.c -- the fine-tuning metrics (confusion matrix, accuracy, mean class accuracy
 * with an absent class, argmax ties, CSV files) and the protocol sampling / augmentation (candidate
 * counts, FPS candidates, the random draw, scale-translate and scale-rotate against their formulas,
 * determinism per (seed, epoch, sample) whatever the order samples are drawn in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment.h"
#include "errors.h"
#include "finetune_data.h"
#include "metrics.h"
#include "pointops.h"
#include "rng.h"
#include "support_tmpdir.h"

static void test_confusion_and_accuracies(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    confusion c;
    assert_int_equal(confusion_init(&c, 4, err), 0);
    /* class 0: 3 of 4 right; class 1: 1 of 2; class 2: absent; class 3: 0 of 1 */
    const int32_t y[7] = {0, 0, 0, 0, 1, 1, 3};
    const int32_t p[7] = {0, 0, 0, 2, 1, 0, 1};
    confusion_add(&c, y, p, 7);
    assert_int_equal(confusion_total(&c), 7);
    assert_int_equal(confusion_correct(&c), 4);
    assert_true(fabs(confusion_accuracy(&c) - 4.0 / 7) < 1e-15);
    /* mean over the 3 classes present: (3/4 + 1/2 + 0) / 3 */
    assert_true(fabs(confusion_mean_class_accuracy(&c) - (0.75 + 0.5 + 0) / 3) < 1e-15);
    long t, r;
    confusion_class(&c, 0, &t, &r);
    assert_true(t == 4 && r == 3);
    confusion_class(&c, 2, &t, &r);
    assert_true(t == 0 && r == 0);
    assert_int_equal(c.counts[0 * 4 + 2], 1);  /* true 0 predicted 2 */
    assert_int_equal(c.counts[3 * 4 + 1], 1);
    confusion_reset(&c);
    assert_int_equal(confusion_total(&c), 0);
    assert_true(confusion_accuracy(&c) == 0 && confusion_mean_class_accuracy(&c) == 0);
    confusion_free(&c);
}

static void test_argmax_first_on_ties(void **state)
{
    (void)state;
    const float l[9] = {1, 3, 3, -1, -2, -0.5f, 7, 7, 7};
    int32_t p[3];
    logits_argmax(l, 3, 3, p);
    assert_int_equal(p[0], 1);
    assert_int_equal(p[1], 2);
    assert_int_equal(p[2], 0);
}

static void test_csv_files(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN], dir[64], path[256], line[256];
    assert_int_equal(test_tmpdir_make(dir, sizeof dir, "metrics"), 0);
    confusion c;
    assert_int_equal(confusion_init(&c, 3, err), 0);
    const int32_t y[4] = {0, 1, 1, 2}, p[4] = {0, 1, 2, 2};
    confusion_add(&c, y, p, 4);
    snprintf(path, sizeof path, "%s/confusion.csv", dir);
    assert_int_equal(confusion_write_csv(&c, path, "a\nb", err), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "true\\pred,a,b,2\n");  /* a name missing: its number */
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "a,1,0,0\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "b,0,1,1\n");
    fclose(f);
    snprintf(path, sizeof path, "%s/per_class.csv", dir);
    assert_int_equal(per_class_write_csv(&c, path, "a\nb\nc", err), 0);
    f = fopen(path, "r");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "id,class,samples,correct,accuracy\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "1,b,2,1,0.500000\n");
    fclose(f);
    snprintf(path, sizeof path, "%s/confusion.csv.partial", dir);
    assert_int_equal(access(path, F_OK), -1);             /* committed by rename */
    snprintf(path, sizeof path, "%s/nodir/confusion.csv", dir);
    assert_int_equal(confusion_write_csv(&c, path, "", err), -1);
    assert_non_null(strstr(err, "cannot create"));
    confusion_free(&c);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

static void test_protocol_names_and_counts(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    ft_protocol p;
    assert_int_equal(ft_protocol_parse("scanobjectnn", &p, err), 0);
    assert_int_equal(p, FT_SCANOBJECTNN);
    assert_string_equal(ft_protocol_name(p), "scanobjectnn");
    assert_int_equal(ft_protocol_parse("modelnet", &p, err), -1);
    assert_non_null(strstr(err, "--protocol modelnet: must be"));
    assert_int_equal(ft_fps_count(8192, 1024), 1200);   /* the official point_all */
    assert_int_equal(ft_fps_count(8192, 2048), 2400);
    assert_int_equal(ft_fps_count(2048, 2048), 2048);   /* all points */
    assert_int_equal(ft_fps_count(1100, 1024), 1100);
}

static float *cloud(long P, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)(3 * P));
    rng_t r;
    rng_seed(&r, seed, 1);
    for (long i = 0; i < 3 * P; i++) x[i] = (float)rng_range(&r, -1, 1);
    return x;
}

static void test_candidates_are_fps(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    enum { P = 600, PM = 256 };
    float *raw = cloud(P, 3);
    ft_sampler s;
    assert_int_equal(ft_sampler_init(&s, P, PM, err), 0);
    assert_int_equal(s.n_fps, 300);
    float *cand = malloc(sizeof(float) * 3 * 300), *want = malloc(sizeof(float) * 3 * 300);
    int32_t idx[300];
    ft_candidates(&s, raw, cand);
    fps_sample(raw, P, 300, s.skip_origin, idx);
    pc_gather(raw, idx, 300, want);
    assert_memory_equal(cand, want, sizeof(float) * 3 * 300);
    /* FPS to Pm (the test view) = the first Pm candidates */
    int32_t idx2[PM];
    fps_sample(raw, P, PM, s.skip_origin, idx2);
    assert_memory_equal(idx, idx2, sizeof idx2);
    ft_sampler_free(&s);
    /* n_fps == P: the candidates are the points themselves */
    assert_int_equal(ft_sampler_init(&s, PM, PM, err), 0);
    ft_candidates(&s, raw, cand);
    assert_memory_equal(cand, raw, sizeof(float) * 3 * PM);
    ft_sampler_free(&s);
    assert_int_equal(ft_sampler_init(&s, 100, PM, err), -1);  /* too few points */
    free(raw);
    free(cand);
    free(want);
}

static void test_choose_distinct_and_seeded(void **state)
{
    (void)state;
    enum { N = 1200, M = 1024 };
    int32_t work[N], a[M], b[M];
    rng_t r1, r2;
    rng_seed(&r1, 9, 4);
    rng_seed(&r2, 9, 4);
    ft_choose(N, M, &r1, work, a);
    ft_choose(N, M, &r2, work, b);
    assert_memory_equal(a, b, sizeof a);
    char seen[N] = {0};
    long in_order = 0;
    for (long i = 0; i < M; i++) {
        assert_true(a[i] >= 0 && a[i] < N);
        assert_int_equal(seen[a[i]], 0);
        seen[a[i]] = 1;
        in_order += a[i] == i;
    }
    assert_true(in_order < 20);  /* a random order, not the candidates' */
    rng_seed(&r2, 9, 5);
    ft_choose(N, M, &r2, work, b);
    assert_true(memcmp(a, b, sizeof a) != 0);
}

static void test_augment_formulas(void **state)
{
    (void)state;
    enum { P = 50 };
    float *x = cloud(P, 7), *y = malloc(sizeof(float) * 3 * P);
    memcpy(y, x, sizeof(float) * 3 * P);
    rng_t r, q;
    rng_seed(&r, 1, 2);
    q = r;
    ft_augment(FT_MODELNET40, y, P, &r);
    double s[3], t[3];
    for (int k = 0; k < 3; k++) s[k] = rng_range(&q, AUGMENT_SCALE_LO, AUGMENT_SCALE_HI);
    for (int k = 0; k < 3; k++) t[k] = rng_range(&q, -AUGMENT_SHIFT, AUGMENT_SHIFT);
    for (int k = 0; k < 3; k++) assert_true(s[k] >= 2.0 / 3 && s[k] < 1.5 && fabs(t[k]) <= 0.2);
    for (long i = 0; i < P; i++)
        for (int k = 0; k < 3; k++)
            assert_true(fabsf(y[i * 3 + k] - (float)(x[i * 3 + k] * s[k] + t[k])) < 1e-6f);
    memcpy(y, x, sizeof(float) * 3 * P);
    rng_seed(&r, 1, 3);
    q = r;
    ft_augment(FT_SCANOBJECTNN, y, P, &r);
    for (int k = 0; k < 3; k++) s[k] = rng_range(&q, 0.9, 1.1);
    double a = rng_range(&q, -M_PI, M_PI);
    for (long i = 0; i < P; i++) {
        double px = x[i * 3] * s[0], py = x[i * 3 + 1] * s[1], pz = x[i * 3 + 2] * s[2];
        assert_true(fabs(y[i * 3] - (px * cos(a) + pz * sin(a))) < 1e-5);
        assert_true(fabs(y[i * 3 + 1] - py) < 1e-6);
        assert_true(fabs(y[i * 3 + 2] - (-px * sin(a) + pz * cos(a))) < 1e-5);
        /* a rotation about y keeps the distance to the y axis */
        assert_true(fabs(hypot(y[i * 3], y[i * 3 + 2]) - hypot(px, pz)) < 1e-5);
    }
    free(x);
    free(y);
}

static void test_random_view_composes(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    enum { P = 700, PM = 512 };
    float *raw = cloud(P, 11);
    ft_sampler s;
    assert_int_equal(ft_sampler_init(&s, P, PM, err), 0);
    long nf = s.n_fps;
    float *cand = malloc(sizeof(float) * 3 * (size_t)nf), *out = malloc(sizeof(float) * 3 * PM),
          *want = malloc(sizeof(float) * 3 * PM);
    int32_t *work = malloc(sizeof(int32_t) * (size_t)nf), idx[PM];
    ft_candidates(&s, raw, cand);
    rng_t r, q;
    rng_seed(&r, 5, 6);
    q = r;
    ft_random_view(&s, FT_MODELNET40, cand, &r, out);
    ft_choose(nf, PM, &q, work, idx);
    pc_gather(cand, idx, PM, want);
    ft_augment(FT_MODELNET40, want, PM, &q);
    assert_memory_equal(out, want, sizeof(float) * 3 * PM);
    ft_sampler_free(&s);
    free(raw);
    free(cand);
    free(out);
    free(want);
    free(work);
}

/* A sample's training view depends on (seed, epoch, sample) only: not on what was drawn before. */
static void test_train_view_deterministic(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    enum { P = 400, PM = 256 };
    float *a = cloud(P, 1), *b = cloud(P, 2);
    float *v1 = malloc(sizeof(float) * 3 * PM), *v2 = malloc(sizeof(float) * 3 * PM),
          *v3 = malloc(sizeof(float) * 3 * PM);
    ft_sampler s1, s2;
    assert_int_equal(ft_sampler_init(&s1, P, PM, err), 0);
    assert_int_equal(ft_sampler_init(&s2, P, PM, err), 0);
    for (int proto = 0; proto < 2; proto++) {
        ft_train_view(&s1, (ft_protocol)proto, a, 3, 7, 42, v1);
        ft_train_view(&s2, (ft_protocol)proto, b, 3, 7, 43, v3);      /* another sample first */
        ft_train_view(&s2, (ft_protocol)proto, a, 3, 7, 42, v2);
        assert_memory_equal(v1, v2, sizeof(float) * 3 * PM);
        ft_train_view(&s2, (ft_protocol)proto, a, 3, 8, 42, v2);      /* next epoch: new view */
        assert_true(memcmp(v1, v2, sizeof(float) * 3 * PM) != 0);
        ft_train_view(&s2, (ft_protocol)proto, a, 4, 7, 42, v2);      /* another seed */
        assert_true(memcmp(v1, v2, sizeof(float) * 3 * PM) != 0);
    }
    /* vote streams differ per repeat and view */
    rng_t r1, r2;
    ft_vote_stream(&r1, 3, 0, 0, 5);
    ft_vote_stream(&r2, 3, 0, 1, 5);
    assert_true(rng_u64(&r1) != rng_u64(&r2));
    ft_vote_stream(&r1, 3, 1, 0, 5);
    ft_vote_stream(&r2, 3, 0, 0, 5);
    assert_true(rng_u64(&r1) != rng_u64(&r2));
    ft_sampler_free(&s1);
    ft_sampler_free(&s2);
    free(a);
    free(b);
    free(v1);
    free(v2);
    free(v3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confusion_and_accuracies),
        cmocka_unit_test(test_argmax_first_on_ties),
        cmocka_unit_test(test_csv_files),
        cmocka_unit_test(test_protocol_names_and_counts),
        cmocka_unit_test(test_candidates_are_fps),
        cmocka_unit_test(test_choose_distinct_and_seeded),
        cmocka_unit_test(test_augment_formulas),
        cmocka_unit_test(test_random_view_composes),
        cmocka_unit_test(test_train_view_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
