/* test_partseg_ref.c -- the C part-segmentation network against the independent PyTorch reference
 * (tests/ref/partseg_ref.py, tiny encoder, B 3, seed 0; docs/partseg.md), tensor by tensor.
 *
 * File: the `--double` reference (float64 from the same float32 inputs and parameters, results
 * rounded to float32), case /seg: local attention on every stage, stage norms, 3-NN propagation of
 * the three scales, global max + mean and category features, head with a forced dropout mask,
 * drop path with forced masks, plain cross-entropy over all points.
 * Tolerances (stated per check, reported per tensor as OK / NOT OK):
 *  - loss: relative 1e-5;
 *  - activations, logits and eval logits: max|c - r| <= 1e-4 * max|r| + 1e-6;
 *  - gradients: max|c - r| <= 1e-4 * max|r| (of the tensor) + 1e-5 * (largest |r| of all gradients);
 *  - running stats after the step: 1e-5 relative + 1e-6.
 * Skipped (never passed) when torch / h5py are missing; a failing reference script is a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "h5io.h"
#include "partseg.h"
#include "support_dnn.h"
#include "support_ref.h"

static char g_err[I2P_ERR_LEN];

/* 1 when the reference file is written, 0 (a SKIP line printed) when torch / h5py are missing;
 * a reference script that is there but fails fails the test. */
static int have_reference(void)
{
    return ref_file_ready("test_partseg_ref", "partseg_ref.py", "partseg-ref");
}

static void read_ints(h5file *f, const char *key, int *v)
{
    char name[128];
    snprintf(name, sizeof name, "/seg/config/%s", key);
    assert_int_equal(h5_read_all(f, name, H5T_NATIVE_INT, v, g_err), 0);
}

static void read_doubles(h5file *f, const char *key, double *v)
{
    char name[128];
    snprintf(name, sizeof name, "/seg/config/%s", key);
    assert_int_equal(h5_read_all(f, name, H5T_NATIVE_DOUBLE, v, g_err), 0);
}

static void read_config(h5file *f, partseg_config *cfg, int *B)
{
    partseg_config_default(cfg);
    model3d_config_tiny(&cfg->enc);
    read_ints(f, "points", &cfg->enc.points);
    read_ints(f, "groups", cfg->enc.groups);
    read_ints(f, "k", cfg->enc.k);
    read_ints(f, "dims", cfg->enc.dims);
    read_ints(f, "depths", cfg->enc.depths);
    read_ints(f, "heads", &cfg->enc.heads);
    read_ints(f, "embed_hidden", cfg->enc.embed_hidden);
    read_ints(f, "n_categories", &cfg->n_categories);
    read_ints(f, "n_parts", &cfg->n_parts);
    read_ints(f, "prop_hidden", &cfg->prop_hidden);
    read_ints(f, "prop_out", &cfg->prop_out);
    read_ints(f, "label_dim", &cfg->label_dim);
    read_ints(f, "head", cfg->head);
    read_ints(f, "batch", B);
    read_doubles(f, "drop_path", &cfg->enc.drop_path);
    read_doubles(f, "dropout", &cfg->dropout);
    read_doubles(f, "radius", cfg->radius);
}

static void test_against_reference(void **state)
{
    (void)state;
    if (!have_reference()) skip();
    h5file f;
    assert_int_equal(h5_open_read(&f, ref_file_path(), MPI_COMM_SELF, g_err), 0);
    partseg_config cfg;
    int B = 0;
    read_config(&f, &cfg, &B);
    assert_true(B >= 2 && B <= 8);
    partseg *m = NULL;
    int rc = partseg_create(&m, &cfg, B, 7, &g_dnn, g_err);
    if (rc) printf("%s\n", g_err);
    assert_int_equal(rc, 0);
    /* every tensor of the reference is one of ours: the same count of parameters */
    ref_load_tensors(&f, "/seg/params", partseg_get_tensor(m, 0), partseg_n_tensors(m), partseg_params(m));
    ref_load_tensors(&f, "/seg/buffers", partseg_get_buffer_tensor(m, 0), partseg_n_buffer_tensors(m),
                     partseg_buffers(m));
    long N = cfg.enc.points, nb = cfg.enc.depths[0] + cfg.enc.depths[1] + cfg.enc.depths[2], n = cfg.n_parts;
    float *points = ref_read_floats(&f, "/seg/inputs/points", B * N * 3);
    float *dp = ref_read_floats(&f, "/seg/inputs/drop_path", B * nb * 2);
    float *dr = ref_read_floats(&f, "/seg/inputs/dropout", B * N * cfg.head[0]);
    assert_true(points && dp && dr);
    int32_t *category = malloc(sizeof(int32_t) * (size_t)B), *seg = malloc(sizeof(int32_t) * (size_t)(B * N));
    assert_int_equal(h5_read_all(&f, "/seg/inputs/category", H5T_NATIVE_INT32, category, g_err), 0);
    assert_int_equal(h5_read_all(&f, "/seg/inputs/seg", H5T_NATIVE_INT32, seg, g_err), 0);

    partseg_batch b = {.B = B, .points = points, .category = category, .seg = seg, .drop_key = 99,
                       .forced_drop_path = dp, .forced_dropout = dr};
    double loss = 0, eloss = 0;
    float *logits = malloc(sizeof(float) * (size_t)(B * N * n));
    rc = partseg_train_step(m, &b, &loss, logits, g_err);
    if (rc) printf("%s\n", g_err);
    assert_int_equal(rc, 0);
    assert_int_equal(h5_read_all(&f, "/seg/expected/loss", H5T_NATIVE_DOUBLE, &eloss, g_err), 0);
    int bad = fabs(loss - eloss) > 1e-5 * fabs(eloss);
    printf("loss %.8f (ref %.8f)  %s\n", loss, eloss, bad ? "NOT OK" : "OK");
    const char *acts[] = {"enc0_out", "enc1_out", "enc2_out", "prop0", "prop1", "prop2", "global", "label", "logits"};
    float *buf = malloc(sizeof(float) * 200000);
    char name[256];
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        long cnt = partseg_activation(m, acts[i], buf);
        assert_true(cnt > 0 && cnt <= 200000);
        snprintf(name, sizeof name, "/seg/expected/activations/%s", acts[i]);
        float *r = ref_read_floats(&f, name, cnt);
        assert_non_null(r);
        bad += ref_compare(acts[i], buf, r, cnt, 1e-4, 1e-6);
        if (!strcmp(acts[i], "logits")) bad += ref_compare("logits (train_step output)", logits, r, cnt, 1e-4, 1e-6);
        free(r);
    }
    free(buf);
    int nt = partseg_n_tensors(m), zero_ref = 0;
    bad += ref_compare_grads(&f, "/seg/expected/grads", "grad", partseg_get_tensor(m, 0), nt, partseg_grads(m), 1e-4,
                             1e-5, &zero_ref);
    printf("%d of %d reference gradients are all zero\n", zero_ref, nt);
    bad += zero_ref > 0; /* every tensor must take part, or the comparison proves little */
    bad += ref_compare_tensors(&f, "/seg/expected/buffers", "", partseg_get_buffer_tensor(m, 0),
                               partseg_n_buffer_tensors(m), partseg_buffers(m), 1e-5, 1e-6);
    assert_int_equal(partseg_forward(m, B, points, category, logits, g_err), 0);
    float *r = ref_read_floats(&f, "/seg/expected/eval_logits", B * N * n);
    assert_non_null(r);
    bad += ref_compare("eval logits after the step", logits, r, B * N * n, 1e-4, 1e-6);
    free(r);
    printf("seg: %d NOT OK\n", bad);
    assert_int_equal(bad, 0);
    free(logits);
    free(points);
    free(dp);
    free(dr);
    free(category);
    free(seg);
    partseg_free(m);
    h5_close(&f);
}

int main(int argc, char **argv)
{
    omp_set_num_threads(1); /* tiny shapes */
    MPI_Init(&argc, &argv);
    h5io_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
    };
    int rc = cmocka_run_group_tests(tests, dnn_group_setup, ref_group_teardown);
    MPI_Finalize();
    return rc;
}
