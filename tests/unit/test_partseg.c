/* test_partseg.c -- part segmentation pieces: mIoU on a hand-computed case and against an
 * independent numpy implementation (Point-M2AE's loop) on random labels, the restricted argmax, the
 * part table, and finite differences for the new layers (3-NN interpolation, LeakyReLU).
 */
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

#include "errors.h"
#include "part_table.h"
#include "partseg_impl.h"
#include "ref_python.h"
#include "rng.h"
#include "seg_metrics.h"

static char g_err[I2P_ERR_LEN];

static void test_miou_hand_case(void **state)
{
    (void)state;
    part_table t;
    assert_int_equal(part_table_from_counts(&t, (int[]){2, 3}, 2, g_err), 0);
    const int32_t truth[3][4] = {{0, 0, 1, 1}, {2, 2, 3, 3}, {2, 2, 2, 2}};
    const int32_t pred[3][4] = {{0, 1, 1, 1}, {2, 2, 3, 3}, {3, 3, 3, 3}};
    const int32_t cat[3] = {0, 1, 1};
    double iou[3];
    for (int i = 0; i < 3; i++) iou[i] = seg_shape_iou(&t, cat[i], pred[i], truth[i], 4);
    /* shape 0: part 0 1/2, part 1 2/3; shape 1: parts 2, 3 exact, part 4 absent in both (1);
     * shape 2: parts 2 and 3 0, part 4 absent (1) */
    assert_true(fabs(iou[0] - (0.5 + 2.0 / 3) / 2) < 1e-12);
    assert_true(fabs(iou[1] - 1.0) < 1e-12);
    assert_true(fabs(iou[2] - 1.0 / 3) < 1e-12);
    double inst, cls, per[2];
    seg_miou(&t, cat, iou, 3, &inst, &cls, per);
    assert_true(fabs(inst - (7.0 / 12 + 1 + 1.0 / 3) / 3) < 1e-12);
    assert_true(fabs(cls - (7.0 / 12 + 2.0 / 3) / 2) < 1e-12);
    assert_true(fabs(per[1] - 2.0 / 3) < 1e-12);
}

/* Random shapes (some parts absent in truth or prediction) against numpy, Point-M2AE's formula. */
static void test_miou_against_numpy(void **state)
{
    (void)state;
    if (!python_has_modules("test_miou_against_numpy", "numpy")) skip();
    part_table t;
    assert_int_equal(part_table_parse(&t, "4 2 3 1 3", g_err), 0);
    enum { S = 40, N = 30 };
    int32_t cat[S], truth[S][N], pred[S][N];
    double iou[S];
    rng_t r;
    rng_seed(&r, 5, 0);
    char path[128];
    snprintf(path, sizeof path, "/tmp/i2pmae-miou-%d.txt", (int)getpid());
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "4 2 3 1 3\n");
    for (int s = 0; s < S; s++) {
        cat[s] = (int)rng_below(&r, 4); /* category 4 has no shapes: left out of the class mean */
        int lo = t.first[cat[s]], n = t.count[cat[s]];
        int used = 1 + (int)rng_below(&r, (uint64_t)n); /* truth uses only the first `used` parts */
        for (int i = 0; i < N; i++) {
            truth[s][i] = lo + (int)rng_below(&r, (uint64_t)used);
            pred[s][i] = rng_uniform(&r) < 0.6 ? truth[s][i] : lo + (int)rng_below(&r, (uint64_t)n);
        }
        iou[s] = seg_shape_iou(&t, cat[s], pred[s], truth[s], N);
        fprintf(fp, "%d", cat[s]);
        for (int i = 0; i < N; i++) fprintf(fp, " %d %d", truth[s][i], pred[s][i]);
        fprintf(fp, "\n");
    }
    fclose(fp);
    double inst, cls;
    seg_miou(&t, cat, iou, S, &inst, &cls, NULL);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import numpy as np\n"
             "L=open('%s').read().split('\\n')\n"
             "counts=[int(x) for x in L[0].split()]; first=np.cumsum([0]+counts)\n"
             "shape_ious={c:[] for c in range(len(counts))}\n"
             "for line in L[1:]:\n"
             "    if not line: continue\n"
             "    v=[int(x) for x in line.split()]; c=v[0]; a=np.array(v[1:]).reshape(-1,2); segl=a[:,0]; segp=a[:,1]\n"
             "    parts=list(range(first[c],first[c+1])); pi=[]\n"
             "    for l in parts:\n"
             "        if np.sum(segl==l)==0 and np.sum(segp==l)==0: pi.append(1.0)\n"
             "        else: pi.append(np.sum((segl==l)&(segp==l))/float(np.sum((segl==l)|(segp==l))))\n"
             "    shape_ious[c].append(np.mean(pi))\n"
             "allv=[x for c in shape_ious for x in shape_ious[c]]\n"
             "cm=np.mean([np.mean(v) for v in shape_ious.values() if v])\n"
             "print('%%.15f %%.15f' %% (np.mean(allv), cm))\n\" > %s.out",
             path, path);
    assert_int_equal(run_reference(cmd), 0);
    char out[160];
    snprintf(out, sizeof out, "%s.out", path);
    FILE *pp = fopen(out, "r");
    assert_non_null(pp);
    double ninst = -1, ncls = -1;
    int got = fscanf(pp, "%lf %lf", &ninst, &ncls);
    fclose(pp);
    unlink(path);
    unlink(out);
    assert_int_equal(got, 2);
    printf("instance mIoU %.12f (numpy %.12f), class mIoU %.12f (numpy %.12f)\n", inst, ninst, cls, ncls);
    assert_true(fabs(inst - ninst) < 1e-12);
    assert_true(fabs(cls - ncls) < 1e-12);
    assert_true(inst > 0.1 && inst < 0.95); /* not a degenerate case */
}

static void test_predict_restricted(void **state)
{
    (void)state;
    part_table t;
    assert_int_equal(part_table_from_counts(&t, (int[]){2, 2}, 2, g_err), 0);
    /* the overall argmax (part 0) lies outside category 1 */
    const float logits[2 * 4] = {9, 1, 2, 3, 9, 1, 5, 5};
    int32_t pred[2];
    seg_predict(&t, 1, logits, 2, pred);
    assert_int_equal(pred[0], 3);
    assert_int_equal(pred[1], 2); /* tie: the first */
}

static void test_part_table(void **state)
{
    (void)state;
    part_table t;
    assert_int_equal(part_table_parse(&t, "4 2 2", g_err), 0);
    assert_int_equal(t.n_parts, 8);
    assert_int_equal(part_table_category(&t, 3), 0);
    assert_int_equal(part_table_category(&t, 4), 1);
    assert_int_equal(part_table_category(&t, 7), 2);
    assert_int_equal(part_table_category(&t, 8), -1);
    char s[64];
    part_table_format(&t, s, sizeof s);
    assert_string_equal(s, "4 2 2");
    assert_int_equal(part_table_parse(&t, "4 x 2", g_err), -1);
    assert_non_null(strstr(g_err, "bad part count"));
    assert_int_equal(part_table_parse(&t, "4 0", g_err), -1);
    assert_int_equal(part_table_parse(&t, "", g_err), -1);
}

/* The 3 nearest centres against a brute-force sort; weights sum to 1; the backward of the
 * interpolation by finite differences of L = sum(out * R). */
static void test_interp(void **state)
{
    (void)state;
    enum { B = 2, N = 7, G = 5, C = 3 };
    float xyz[B * N * 3], ctr[B * G * 3], src[B * G * C], R[B * N * C], out[B * N * C], dsrc[B * G * C] = {0};
    int32_t idx[B * N * 3];
    float w[B * N * 3];
    rng_t r;
    rng_seed(&r, 3, 0);
    for (int i = 0; i < B * N * 3; i++) xyz[i] = (float)rng_range(&r, -1, 1);
    for (int i = 0; i < B * G * 3; i++) ctr[i] = (float)rng_range(&r, -1, 1);
    for (int i = 0; i < B * G * C; i++) src[i] = (float)rng_range(&r, -1, 1);
    for (int i = 0; i < B * N * C; i++) R[i] = (float)rng_range(&r, -1, 1);
    seg_interp_weights(idx, w, xyz, ctr, B, N, G);
    for (int t = 0; t < B * N; t++) {
        int b = t / N;
        double d[G];
        for (int g = 0; g < G; g++) {
            d[g] = 0;
            for (int k = 0; k < 3; k++) d[g] += pow((double)xyz[t * 3 + k] - ctr[(b * G + g) * 3 + k], 2);
        }
        double sw = 0;
        for (int i = 0; i < 3; i++) {
            int rank = 0; /* how many centres are strictly nearer */
            for (int g = 0; g < G; g++) rank += d[g] < d[idx[t * 3 + i]];
            assert_int_equal(rank, i);
            sw += w[t * 3 + i];
        }
        assert_true(fabs(sw - 1) < 1e-6);
        assert_true(w[t * 3] >= w[t * 3 + 1] && w[t * 3 + 1] >= w[t * 3 + 2]);
    }
    seg_interp_backward(dsrc, R, C, idx, w, B, N, G, C);
    double worst = 0;
    for (int i = 0; i < B * G * C; i++) {
        double lp = 0, lm = 0, h = 1e-2;
        float keep = src[i];
        src[i] = keep + (float)h;
        seg_interp_forward(out, C, src, idx, w, B, N, G, C);
        for (int j = 0; j < B * N * C; j++) lp += (double)out[j] * R[j];
        src[i] = keep - (float)h;
        seg_interp_forward(out, C, src, idx, w, B, N, G, C);
        for (int j = 0; j < B * N * C; j++) lm += (double)out[j] * R[j];
        src[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - dsrc[i]) > worst) worst = fabs(fd - dsrc[i]);
    }
    printf("interpolation backward vs finite differences: max |diff| %.3e\n", worst);
    assert_true(worst < 1e-4);
}

static void test_leaky(void **state)
{
    (void)state;
    float x[6] = {-2, -0.5f, 0.3f, 1.5f, -1, 2}, y[6], R[6] = {1, -2, 3, 0.5f, 2, -1}, dx[6] = {0};
    seg_leaky_backward(dx, R, x, 6, 0.2f);
    for (int i = 0; i < 6; i++) {
        float keep = x[i];
        double h = 1e-3, lp = 0, lm = 0;
        x[i] = keep + (float)h;
        seg_leaky_forward(y, x, 6, 0.2f);
        for (int j = 0; j < 6; j++) lp += (double)y[j] * R[j];
        x[i] = keep - (float)h;
        seg_leaky_forward(y, x, 6, 0.2f);
        for (int j = 0; j < 6; j++) lm += (double)y[j] * R[j];
        x[i] = keep;
        assert_true(fabs((lp - lm) / (2 * h) - dx[i]) < 1e-3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_miou_hand_case),     cmocka_unit_test(test_miou_against_numpy),
        cmocka_unit_test(test_predict_restricted), cmocka_unit_test(test_part_table),
        cmocka_unit_test(test_interp),             cmocka_unit_test(test_leaky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
