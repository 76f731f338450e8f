/* test_project.c -- hand-computed cases of the depth projection (spec section 2); the full
 * comparison with an independent numpy implementation is tests/e2e/test_project.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "project.h"

#define S 224

/* Two points spanning exactly 221 grid steps: g = 1, no centring shift, splats clamped by one. */
static void test_two_points_frame_and_splat(void **state)
{
    (void)state;
    const float pts[6] = {0, 0, 1, 221, 221, 2};
    project_frame fr;
    project_frame_compute(pts, 2, 0, S, &fr);
    assert_true(fr.g == 1.0f);
    assert_int_equal(fr.shift_row, 0);
    assert_int_equal(fr.shift_col, 0);
    int16_t pix[4];
    project_pixels_view(pts, 2, 0, S, &fr, pix);
    assert_int_equal(pix[0], 1);
    assert_int_equal(pix[1], 1);
    assert_int_equal(pix[2], 222);
    assert_int_equal(pix[3], 222);
    float *depth = malloc(sizeof(float) * S * S);
    project_depth_view(pts, 2, 0, S, &fr, depth);
    /* rows/cols -1 and 0 both land on 0: 2x2 splats of depth 1 at (0,0) */
    assert_true(depth[0] == 4.0f);
    assert_true(depth[1 * S + 1] == 1.0f);
    assert_true(depth[3 * S + 3] == 1.0f);
    assert_true(depth[4 * S + 4] == 0.0f);
    assert_true(depth[223 * S + 223] == 8.0f); /* 224 -> 223 twice per axis, depth 2 */
    assert_true(depth[220 * S + 220] == 2.0f);
    double sum = 0;
    for (int i = 0; i < S * S; i++) sum += depth[i];
    assert_true(fabs(sum - 25.0 * (1 + 2)) < 1e-9); /* every splat lands somewhere */
    free(depth);
}

/* A small cloud is centred: shift = 112 - floor((max d + min d)/2) - 1. */
static void test_centring_and_views(void **state)
{
    (void)state;
    /* x spans 0..10 (the larger range, g = 10/221), y spans 0..5, z is the depth */
    const float pts[9] = {0, 0, 7, 10, 5, 8, 5, 2.5f, 9};
    project_frame fr;
    project_frame_compute(pts, 3, 0, S, &fr);
    float g = 10.0f / 221.0f;
    assert_true(fr.g == g);
    int b_col_max = (int)floorf(5.0f / g);
    int ctr_col = (b_col_max + 3 + (0 - 1)) / 2;
    assert_int_equal(fr.shift_row, 112 - 111 - 1);
    assert_int_equal(fr.shift_col, 112 - ctr_col - 1);
    /* view 1 is (z,x,y): rows follow z */
    int axes[3];
    project_view_axes(1, axes);
    assert_int_equal(axes[0], 2);
    assert_int_equal(axes[1], 0);
    assert_int_equal(axes[2], 1);
    int16_t pix[6];
    project_frame_compute(pts, 3, 1, S, &fr);
    project_pixels_view(pts, 3, 1, S, &fr, pix);
    assert_true(pix[0] < pix[2] && pix[2] < pix[4]); /* z increases from point 0 to 2 */
}

static void test_normalise_background(void **state)
{
    (void)state;
    float depth[64] = {0}, img[3 * 64];
    depth[5] = 100.0f;
    project_normalise(depth, 8, img);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++) {
        assert_true(fabsf(img[c * 64] - (0.5f - mean[c]) / std[c]) < 1e-6f);
        assert_true(fabsf(img[c * 64 + 5] - (1.0f - mean[c]) / std[c]) < 1e-6f);
    }
}

/* The batch equals the per-view kernels and does not depend on the thread count. */
static void test_batch_threads(void **state)
{
    (void)state;
    const long n = 5, P = 300;
    float *pts = malloc(sizeof(float) * n * P * 3);
    unsigned s = 12345;
    for (long i = 0; i < n * P * 3; i++) {
        s = s * 1103515245u + 12345u;
        pts[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    long img_n = n * 3 * 3 * S * S;
    float *a = malloc(sizeof(float) * img_n), *b = malloc(sizeof(float) * img_n);
    int16_t *pa = malloc(sizeof(int16_t) * n * 3 * P * 2), *pb = malloc(sizeof(int16_t) * n * 3 * P * 2);
    char err[I2P_ERR_LEN];
    omp_set_num_threads(1);
    assert_int_equal(project_batch(pts, n, P, 3, S, a, pa, NULL, err), 0);
    omp_set_num_threads(2);
    assert_int_equal(project_batch(pts, n, P, 3, S, b, pb, NULL, err), 0);
    assert_memory_equal(a, b, sizeof(float) * img_n);
    assert_memory_equal(pa, pb, sizeof(int16_t) * n * 3 * P * 2);
    float *depth = malloc(sizeof(float) * S * S), *img = malloc(sizeof(float) * 3 * S * S);
    project_frame fr;
    project_frame_compute(pts + 4 * P * 3, P, 2, S, &fr);
    project_depth_view(pts + 4 * P * 3, P, 2, S, &fr, depth);
    project_normalise(depth, S, img);
    assert_memory_equal(img, a + (4 * 3 + 2) * 3L * S * S, sizeof(float) * 3 * S * S);
    for (long i = 0; i < n * 3 * P * 2; i++) assert_true(pa[i] >= 0 && pa[i] < S);
    free(pts), free(a), free(b), free(pa), free(pb), free(depth), free(img);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float pts[3] = {1, 2, 3}, img[3 * 64];
    char err[I2P_ERR_LEN];
    assert_int_equal(project_batch(pts, 1, 1, 0, 64, img, NULL, NULL, err), -1);
    assert_non_null(strstr(err, "--views 0"));
    assert_int_equal(project_batch(pts, 1, 1, 4, 64, img, NULL, NULL, err), -1);
    assert_int_equal(project_batch(pts, 1, 1, 1, 4, img, NULL, NULL, err), -1);
    /* one point: g falls back to 1 and the splat is centred */
    float im1[3 * 8 * 8];
    assert_int_equal(project_batch(pts, 1, 1, 1, 8, im1, NULL, NULL, err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_points_frame_and_splat),
        cmocka_unit_test(test_centring_and_views),
        cmocka_unit_test(test_normalise_background),
        cmocka_unit_test(test_batch_threads),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
