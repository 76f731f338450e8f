/* test_vit.c -- safetensors round trip and conversions, the seeded random models' bytes (the same
 * SHA-256 on every machine), and forward invariants: a block-range forward split into pipeline
 * pieces equals the whole forward bitwise, results do not depend on the batch size, and repeated
 * calls on cached plans give identical results. (Accuracy against PyTorch: tests/e2e/test_vit_ref.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "half.h"
#include "rng.h"
#include "safetensors.h"
#include "vit.h"

static void test_bf16_conversions(void **state)
{
    (void)state;
    assert_true(st_bf16_to_f32(st_f32_to_bf16(1.0f)) == 1.0f);
    assert_true(st_bf16_to_f32(st_f32_to_bf16(-3.0f)) == -3.0f);
    /* round to nearest even: 1 + 2^-8 is a tie in bf16 and goes down to 1 */
    assert_true(st_bf16_to_f32(st_f32_to_bf16(1.00390625f)) == 1.0f);
    assert_true(isnan(st_bf16_to_f32(st_f32_to_bf16(NAN))));
    assert_true(fabsf(st_bf16_to_f32(st_f32_to_bf16(3.0e38f)) - 3.0e38f) <= 3.0e38f / 256);
}

static void test_safetensors_round_trip(void **state)
{
    (void)state;
    const char *path = "/tmp/i2pmae-test-vit.safetensors";
    float a[6] = {1, -2, 3.5f, 0.25f, 1e-3f, 7};
    uint16_t h[6], b[6];
    for (int i = 0; i < 6; i++) h[i] = half_from_float(a[i]), b[i] = st_f32_to_bf16(a[i]);
    int64_t ids[3] = {0, 1, 2};
    st_entry e[] = {{"a", "F32", 2, {2, 3}, a}, {"h", "F16", 1, {6}, h},
                    {"b", "BF16", 3, {1, 2, 3}, b}, {"ids", "I64", 1, {3}, ids}};
    const char *meta[] = {"heads", "4"};
    char err[I2P_ERR_LEN];
    assert_int_equal(st_write(path, e, 4, meta, 1, err), 0);
    st_file f;
    assert_int_equal(st_open(&f, path, err), 0);
    assert_int_equal(f.n_tensors, 4);
    assert_string_equal(st_metadata(&f, "heads"), "4");
    float out[6];
    assert_int_equal(st_read_f32(&f, "a", 2, (int64_t[]){2, 3}, out, err), 0);
    assert_memory_equal(out, a, sizeof a);
    assert_int_equal(st_read_f32(&f, "h", 1, (int64_t[]){6}, out, err), 0);
    for (int i = 0; i < 6; i++) assert_true(fabsf(out[i] - a[i]) <= 1e-3f * fabsf(a[i]));
    assert_int_equal(st_read_f32(&f, "b", 3, (int64_t[]){1, 2, 3}, out, err), 0);
    for (int i = 0; i < 6; i++) assert_true(fabsf(out[i] - a[i]) <= 4e-3f * fabsf(a[i]));
    assert_int_equal(st_read_f32(&f, "a", 2, (int64_t[]){3, 2}, out, err), -1);
    assert_non_null(strstr(err, "tensor a: wrong shape [2, 3], expected [3, 2]"));
    assert_int_equal(st_read_f32(&f, "ids", 1, (int64_t[]){3}, out, err), -1);
    assert_non_null(strstr(err, "tensor ids: wrong dtype I64"));
    assert_int_equal(st_read_f32(&f, "nope", 1, (int64_t[]){3}, out, err), -1);
    assert_non_null(strstr(err, "tensor nope: missing"));
    char hex[65];
    st_sha256_hex(&f, hex);
    assert_int_equal(strlen(hex), 64);
    st_close(&f);
    unlink(path);
}

/* The seeded weights are pinned: a different hash means other machines get other models. */
static void test_random_weights_pinned(void **state)
{
    (void)state;
    dnn_ctx ctx;
    char err[I2P_ERR_LEN], sha[65], sha2[65];
    assert_int_equal(dnn_ctx_create(&ctx, err), 0);
    vit_model *m = NULL, *m2 = NULL;
    assert_int_equal(vit_load(&m, "random:tiny", VIT_FP32, &ctx, sha, err), 0);
    assert_string_equal(sha, "a18181294775ae60579f9a790bbf3b596ea8d9ff3faa27e1c3d36ccf4c539902");
    assert_int_equal(vit_load(&m2, "random:tiny", VIT_FP32, &ctx, sha2, err), 0);
    assert_string_equal(sha, sha2);
    assert_int_equal(vit_grid(m), 14);
    assert_int_equal(vit_get_config(m)->out_dim, 32);
    vit_free(m);
    vit_free(m2);
    dnn_ctx_destroy(&ctx);
}

typedef struct {
    float *patch, *cls, *sal;
} outputs;

/* Whole forward of B images into o (allocated here). */
static void forward(vit_model *m, int B, const float *img, outputs *o, const int *cuts, int n_cuts)
{
    const vit_config *c = vit_get_config(m);
    int G = vit_grid(m) * vit_grid(m);
    char err[I2P_ERR_LEN];
    float *tok = malloc(sizeof(float) * (size_t)vit_token_floats(m, B));
    o->patch = malloc(sizeof(float) * (size_t)(B * G * c->out_dim));
    o->cls = malloc(sizeof(float) * (size_t)(B * c->out_dim));
    o->sal = malloc(sizeof(float) * (size_t)(B * G));
    assert_int_equal(vit_embed(m, B, img, tok, err), 0);
    int a = 0;
    for (int i = 0; i <= n_cuts; i++) {
        int b = i < n_cuts ? cuts[i] : c->depth;
        assert_int_equal(vit_blocks(m, B, a, b, tok, b == c->depth ? o->sal : NULL, err), 0);
        a = b;
    }
    assert_int_equal(vit_head(m, B, tok, o->patch, o->cls, err), 0);
    free(tok);
}

static void outputs_free(outputs *o)
{
    free(o->patch);
    free(o->cls);
    free(o->sal);
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

static void test_block_ranges_and_batches(void **state)
{
    (void)state;
    dnn_ctx ctx;
    char err[I2P_ERR_LEN], sha[65];
    assert_int_equal(dnn_ctx_create(&ctx, err), 0);
    vit_model *m = NULL;
    assert_int_equal(vit_load(&m, "random:tiny", VIT_FP32, &ctx, sha, err), 0);
    const vit_config *c = vit_get_config(m);
    const int B = 3, S = c->image, G = vit_grid(m) * vit_grid(m), C = c->out_dim;
    size_t per = (size_t)3 * S * S;
    float *img = malloc(sizeof(float) * per * B);
    rng_t r;
    rng_seed(&r, 7, 0);
    for (size_t i = 0; i < per * B; i++) img[i] = (float)rng_normal(&r);

    outputs whole, split, again, one;
    forward(m, B, img, &whole, NULL, 0);
    forward(m, B, img, &split, (int[]){1}, 1); /* two pipeline stages: [0,1) and [1,2) */
    assert_memory_equal(whole.patch, split.patch, sizeof(float) * (size_t)(B * G * C));
    assert_memory_equal(whole.cls, split.cls, sizeof(float) * (size_t)(B * C));
    assert_memory_equal(whole.sal, split.sal, sizeof(float) * (size_t)(B * G));
    forward(m, B, img, &again, NULL, 0); /* cached plan, same answer */
    assert_memory_equal(whole.patch, again.patch, sizeof(float) * (size_t)(B * G * C));
    /* image 2 alone (a new plan for batch 1) matches its row of the batch of 3 */
    forward(m, 1, img + 2 * per, &one, NULL, 0);
    assert_true(max_rel(one.patch, whole.patch + 2 * G * C, (size_t)(G * C)) < 1e-6);
    assert_true(max_rel(one.sal, whole.sal + 2 * G, (size_t)G) < 1e-6);
    /* saliency: head-averaged softmax rows over the patch keys, so 0 < sum < 1 */
    double sum = 0;
    for (int i = 0; i < G; i++) sum += whole.sal[i];
    assert_true(sum > 0 && sum < 1);

    float *tok = malloc(sizeof(float) * (size_t)vit_token_floats(m, B));
    assert_int_equal(vit_blocks(m, B, 1, 5, tok, NULL, err), -1);
    assert_non_null(strstr(err, "block range [1, 5)"));
    free(tok);
    outputs_free(&whole);
    outputs_free(&split);
    outputs_free(&again);
    outputs_free(&one);
    free(img);
    vit_free(m);
    dnn_ctx_destroy(&ctx);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_conversions),
        cmocka_unit_test(test_safetensors_round_trip),
        cmocka_unit_test(test_random_weights_pinned),
        cmocka_unit_test(test_block_ranges_and_batches),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
