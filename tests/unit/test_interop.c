/* test_interop.c -- the official I2P-MAE names of our 3D network (interop.h) at the spec's
 * configuration: the counts the official pre-training state dict has (295 tensors with CLIP
 * aside, 17,622,808 parameters), names and shapes of the layouts that differ (Conv1d [out,in,1],
 * mask_token [1,384], num_batches_tracked []), and the fusion conv's column swap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "interop.h"
#include "support_dnn.h"

static char g_err[I2P_ERR_LEN];

static const interop_entry *find(const interop_entry *e, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(e[i].official, name)) return &e[i];
    return NULL;
}

static void expect_shape(const interop_entry *e, int n, const char *name, int rank, long a, long b, long c)
{
    const interop_entry *t = find(e, n, name);
    if (!t) printf("missing %s\n", name);
    assert_non_null(t);
    assert_int_equal(t->rank, rank);
    long want[3] = {a, b, c};
    for (int i = 0; i < rank; i++) assert_int_equal(t->shape[i], want[i]);
}

static void test_spec_counts_and_names(void **state)
{
    (void)state;
    model3d_config cfg;
    model3d_config_default(&cfg);
    model3d *m;
    assert_int_equal(model3d_create(&m, &cfg, 1, 1, &g_dnn, g_err), 0);
    interop_entry *e;
    int n;
    assert_int_equal(interop_table(m, &e, &n, g_err), 0);
    long params = 0;
    int bn_counts = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].layout == IO_BN_COUNT) bn_counts++;
        else if (!e[i].buffer) params += interop_numel(&e[i]);
        for (int j = 0; j < i; j++) assert_string_not_equal(e[i].official, e[j].official);
    }
    printf("%d tensors, %ld parameters, %d BatchNorm layers\n", n, params, bn_counts);
    assert_int_equal(n, 295);
    assert_int_equal(params, 17622808L);
    assert_int_equal(bn_counts, 9);
    expect_shape(e, n, "h_encoder.token_embed.0.first_conv.0.weight", 3, 128, 3, 1);
    expect_shape(e, n, "h_encoder.token_embed.0.first_conv.3.weight", 3, 256, 128, 1);
    expect_shape(e, n, "h_encoder.token_embed.2.second_conv.3.weight", 3, 384, 384, 1);
    expect_shape(e, n, "h_encoder.token_embed.1.first_conv.1.running_var", 1, 96, 0, 0);
    expect_shape(e, n, "h_encoder.token_embed.1.first_conv.1.num_batches_tracked", 0, 0, 0, 0);
    expect_shape(e, n, "h_encoder.encoder_pos_embeds.1.2.weight", 2, 192, 192, 0);
    expect_shape(e, n, "h_encoder.encoder_blocks.2.blocks.4.attn.qkv.weight", 2, 1152, 384, 0);
    expect_shape(e, n, "h_encoder.encoder_norms.0.weight", 1, 96, 0, 0);
    expect_shape(e, n, "mask_token", 2, 1, 384, 0);
    expect_shape(e, n, "h_decoder.1.blocks.0.mlp.fc2.weight", 2, 192, 768, 0);
    expect_shape(e, n, "decoder_pos_embeds.0.0.weight", 2, 384, 3, 0);
    expect_shape(e, n, "token_prop.0.fuse.net.0.weight", 3, 192, 576, 1);
    expect_shape(e, n, "token_prop.0.extraction.operation.0.net2.1.weight", 1, 192, 0, 0);
    expect_shape(e, n, "decoder_norm.bias", 1, 192, 0, 0);
    expect_shape(e, n, "rec_head_3d.weight", 3, 24, 192, 1);
    expect_shape(e, n, "rec_head_2d.weight", 3, 12288, 192, 1);
    assert_int_equal(find(e, n, "token_prop.0.fuse.net.0.weight")->layout, IO_FUSE);
    free(e);
    model3d_free(m);
}

/* The fine-tuning model (official I2P_MAE_ModelNet40): the encoder without encoder_norms (231
 * tensors), norm (2) and cls_head_finetune (3 Linear + 2 BN with num_batches_tracked: 16). */
static void test_classifier_names(void **state)
{
    (void)state;
    classifier_config cfg;
    classifier_config_default(&cfg);
    classifier *c;
    assert_int_equal(classifier_create(&c, &cfg, 2, 1, &g_dnn, g_err), 0);
    interop_entry *e;
    int n;
    assert_int_equal(interop_classifier_table(c, &e, &n, g_err), 0);
    printf("fine-tuning: %d tensors\n", n);
    assert_int_equal(n, 249);
    for (int i = 0; i < n; i++) assert_null(strstr(e[i].official, "encoder_norms"));
    expect_shape(e, n, "h_encoder.token_embed.0.first_conv.0.weight", 3, 128, 3, 1);
    expect_shape(e, n, "h_encoder.encoder_blocks.2.blocks.4.mlp.fc2.weight", 2, 384, 1536, 0);
    expect_shape(e, n, "norm.weight", 1, 384, 0, 0);
    expect_shape(e, n, "cls_head_finetune.0.weight", 2, 256, 384, 0);
    expect_shape(e, n, "cls_head_finetune.1.running_mean", 1, 256, 0, 0);
    expect_shape(e, n, "cls_head_finetune.5.num_batches_tracked", 0, 0, 0, 0);
    expect_shape(e, n, "cls_head_finetune.4.weight", 2, 256, 256, 0);
    expect_shape(e, n, "cls_head_finetune.8.weight", 2, 40, 256, 0);
    expect_shape(e, n, "cls_head_finetune.8.bias", 1, 40, 0, 0);
    free(e);
    classifier_free(c);
}

/* Ours (D1, D0 + C1) = [interpolated | skip]; official = [skip | interpolated]. */
static void test_fuse_swap(void **state)
{
    (void)state;
    model3d_config cfg;
    model3d_config_tiny(&cfg);
    model3d *m;
    assert_int_equal(model3d_create(&m, &cfg, 1, 1, &g_dnn, g_err), 0);
    interop_entry *e;
    int n;
    assert_int_equal(interop_table(m, &e, &n, g_err), 0);
    const interop_entry *f = find(e, n, "token_prop.0.fuse.net.0.weight");
    assert_non_null(f);
    long D1 = cfg.dec_dims[1], D0 = cfg.dec_dims[0], C1 = cfg.dims[1], W = D0 + C1, N = D1 * W;
    float *ours = model3d_params(m) + f->ours->offset;
    for (long i = 0; i < N; i++) ours[i] = (float)i;
    float *off = malloc(sizeof(float) * (size_t)N);
    interop_to_official(f, off);
    for (long r = 0; r < D1; r++) {
        for (long j = 0; j < C1; j++) assert_true(off[r * W + j] == (float)(r * W + D0 + j)); /* skip first */
        for (long j = 0; j < D0; j++) assert_true(off[r * W + C1 + j] == (float)(r * W + j));
    }
    memset(ours, 0, sizeof(float) * (size_t)N);
    interop_from_official(f, off);
    for (long i = 0; i < N; i++) assert_true(ours[i] == (float)i);
    free(off);
    free(e);
    model3d_free(m);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_counts_and_names),
        cmocka_unit_test(test_classifier_names),
        cmocka_unit_test(test_fuse_swap),
    };
    int rc = cmocka_run_group_tests(tests, dnn_group_setup, dnn_group_teardown);
    MPI_Finalize();
    return rc;
}
