/* test_classifier_ref.c -- the C fine-tuning classifier against the independent PyTorch reference
 * (tests/ref/classifier_ref.py, tiny encoder, B 4, seed 0; docs/finetune.md), tensor by tensor.
 *
 * File: the `--double` reference (float64 from the same float32 inputs and parameters, results
 * rounded to float32), two cases: /mm (mean+max pooling, smoothing 0.2, local attention on every
 * stage) and /cat (concat pooling, plain CE, local attention on stages 0 and 2). Parameters, BN
 * buffers, labels and the drop-path / dropout masks come from the file (forced masks).
 * Tolerances (stated per check, reported per tensor as OK / NOT OK):
 *  - loss: relative 1e-5;
 *  - activations, logits and eval logits: max|c - r| <= 1e-4 * max|r| + 1e-6;
 *  - gradients: max|c - r| <= 1e-4 * max|r| (of the tensor) + 1e-5 * (largest |r| of all gradients);
 *  - running stats after the step: 1e-5 relative + 1e-6;
 *  - local attention: the fraction of masked (query, key) pairs per stage equals the reference's
 *    exactly, and lies strictly between 0 and 1 where the radius is on (the mask does mask).
 * Skipped (never passed) when torch / h5py are missing.
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

#include "classifier.h"
#include "classifier_impl.h"
#include "errors.h"
#include "h5io.h"
#include "support_dnn.h"
#include "support_ref.h"
#include "tokenizer.h"

static char g_err[I2P_ERR_LEN];

/* 1 when the reference file is written, 0 (a SKIP line printed) when torch / h5py are missing;
 * a reference script that is there but fails fails the test. */
static int have_reference(void)
{
    return ref_file_ready("test_classifier_ref", "classifier_ref.py", "classifier-ref");
}

static void read_ints(h5file *f, const char *c, const char *key, int *v)
{
    char name[128];
    snprintf(name, sizeof name, "/%s/config/%s", c, key);
    assert_int_equal(h5_read_all(f, name, H5T_NATIVE_INT, v, g_err), 0);
}

static void read_doubles(h5file *f, const char *c, const char *key, double *v)
{
    char name[128];
    snprintf(name, sizeof name, "/%s/config/%s", c, key);
    assert_int_equal(h5_read_all(f, name, H5T_NATIVE_DOUBLE, v, g_err), 0);
}

static void read_config(h5file *f, const char *c, classifier_config *cfg, int *B)
{
    classifier_config_default(cfg);
    model3d_config_tiny(&cfg->enc);
    int pooling;
    read_ints(f, c, "points", &cfg->enc.points);
    read_ints(f, c, "groups", cfg->enc.groups);
    read_ints(f, c, "k", cfg->enc.k);
    read_ints(f, c, "dims", cfg->enc.dims);
    read_ints(f, c, "depths", cfg->enc.depths);
    read_ints(f, c, "heads", &cfg->enc.heads);
    read_ints(f, c, "embed_hidden", cfg->enc.embed_hidden);
    read_ints(f, c, "n_classes", &cfg->n_classes);
    read_ints(f, c, "head_hidden", &cfg->head_hidden);
    read_ints(f, c, "pooling", &pooling);
    read_ints(f, c, "batch", B);
    read_doubles(f, c, "drop_path", &cfg->enc.drop_path);
    read_doubles(f, c, "dropout", &cfg->dropout);
    read_doubles(f, c, "smoothing", &cfg->smoothing);
    read_doubles(f, c, "radius", cfg->radius);
    cfg->pooling = (cls_pooling)pooling;
}

/* Loads every parameter and buffer tensor of c from /<case>/params and /<case>/buffers by name. */
static void load_state(classifier *m, h5file *f, const char *c)
{
    char group[128];
    snprintf(group, sizeof group, "/%s/params", c);
    ref_load_tensors(f, group, classifier_get_tensor(m, 0), classifier_n_tensors(m), classifier_params(m));
    snprintf(group, sizeof group, "/%s/buffers", c);
    ref_load_tensors(f, group, classifier_get_buffer_tensor(m, 0), classifier_n_buffer_tensors(m),
                     classifier_buffers(m));
}

/* The masked fraction of the local-attention bias per stage, from the C tokenizer's centres. */
static int check_local_masks(h5file *f, const char *c, const classifier_config *cfg, int B, const float *points)
{
    double ref[3];
    char name[128];
    snprintf(name, sizeof name, "/%s/expected/masked_fraction", c);
    assert_int_equal(h5_read_all(f, name, H5T_NATIVE_DOUBLE, ref, g_err), 0);
    arena a;
    arena_init(&a, 1 << 20);
    m3_tokens tk;
    assert_int_equal(tokenizer_run(&cfg->enc, &a, points, B, &tk), 0);
    int bad = 0;
    for (int s = 0; s < 3; s++) {
        long G = cfg->enc.groups[s], n = (long)B * G * G, far = 0;
        if (cfg->radius[s] > 0) {
            float *bias = malloc(sizeof(float) * (size_t)n);
            cls_local_bias(bias, tk.ctr[s], B, G, cfg->radius[s]);
            for (long i = 0; i < n; i++) far += bias[i] == CLS_FAR_BIAS;
            free(bias);
        }
        double frac = (double)far / (double)n;
        int sbad = frac != ref[s] || (cfg->radius[s] > 0 && !(frac > 0 && frac < 1));
        printf("%s stage %d radius %.2f: masked fraction %.6f (ref %.6f)  %s\n", c, s, cfg->radius[s], frac,
               ref[s], sbad ? "NOT OK" : "OK");
        bad += sbad;
    }
    arena_free(&a);
    return bad;
}

static void run_case(const char *c)
{
    if (!have_reference()) skip();
    h5file f;
    assert_int_equal(h5_open_read(&f, ref_file_path(), MPI_COMM_SELF, g_err), 0);
    classifier_config cfg;
    int B = 0;
    read_config(&f, c, &cfg, &B);
    assert_true(B >= 2 && B <= 8);
    classifier *m = NULL;
    int rc = classifier_create(&m, &cfg, B, 7, &g_dnn, g_err);
    if (rc) printf("%s\n", g_err);
    assert_int_equal(rc, 0);
    load_state(m, &f, c);
    long P = cfg.enc.points, nb = cfg.enc.depths[0] + cfg.enc.depths[1] + cfg.enc.depths[2], n = cfg.n_classes;
    char name[256];
    snprintf(name, sizeof name, "/%s/inputs/points", c);
    float *points = ref_read_floats(&f, name, B * P * 3);
    snprintf(name, sizeof name, "/%s/inputs/drop_path", c);
    float *dp = ref_read_floats(&f, name, B * nb * 2);
    snprintf(name, sizeof name, "/%s/inputs/dropout", c);
    float *dr = ref_read_floats(&f, name, B * 2 * cfg.head_hidden);
    int32_t labels[8];
    snprintf(name, sizeof name, "/%s/inputs/labels", c);
    assert_true(points && dp && dr);
    assert_int_equal(h5_read_all(&f, name, H5T_NATIVE_INT32, labels, g_err), 0);
    int bad = check_local_masks(&f, c, &cfg, B, points);

    classifier_batch b = {.B = B, .points = points, .labels = labels, .drop_key = 99,
                          .forced_drop_path = dp, .forced_dropout = dr};
    double loss = 0, eloss = 0;
    float *logits = malloc(sizeof(float) * (size_t)(B * n));
    rc = classifier_train_step(m, &b, &loss, logits, g_err);
    if (rc) printf("%s\n", g_err);
    assert_int_equal(rc, 0);
    snprintf(name, sizeof name, "/%s/expected/loss", c);
    assert_int_equal(h5_read_all(&f, name, H5T_NATIVE_DOUBLE, &eloss, g_err), 0);
    int lbad = fabs(loss - eloss) > 1e-5 * fabs(eloss);
    printf("%s loss %.8f (ref %.8f)  %s\n", c, loss, eloss, lbad ? "NOT OK" : "OK");
    bad += lbad;
    /* activations (logits through the API as well) */
    const char *acts[] = {"enc0_out", "enc1_out", "enc2_out", "normed", "pooled", "logits"};
    float *buf = malloc(sizeof(float) * 100000);
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        long cnt = cls_activation(m, acts[i], buf);
        assert_true(cnt > 0 && cnt <= 100000);
        snprintf(name, sizeof name, "/%s/expected/activations/%s", c, acts[i]);
        float *r = ref_read_floats(&f, name, cnt);
        assert_non_null(r);
        char what[96];
        snprintf(what, sizeof what, "%s %s", c, acts[i]);
        bad += ref_compare(what, buf, r, cnt, 1e-4, 1e-6);
        if (!strcmp(acts[i], "logits")) bad += ref_compare("logits (train_step output)", logits, r, cnt, 1e-4, 1e-6);
        free(r);
    }
    free(buf);
    /* every gradient */
    char group[128], label[64];
    snprintf(group, sizeof group, "/%s/expected/grads", c);
    snprintf(label, sizeof label, "%s grad", c);
    bad += ref_compare_grads(&f, group, label, classifier_get_tensor(m, 0), classifier_n_tensors(m),
                             classifier_grads(m), 1e-4, 1e-5, NULL);
    /* running statistics after the step */
    snprintf(group, sizeof group, "/%s/expected/buffers", c);
    bad += ref_compare_tensors(&f, group, c, classifier_get_buffer_tensor(m, 0), classifier_n_buffer_tensors(m),
                               classifier_buffers(m), 1e-5, 1e-6);
    /* eval mode with the updated running statistics */
    assert_int_equal(classifier_forward(m, B, points, logits, g_err), 0);
    snprintf(name, sizeof name, "/%s/expected/eval_logits", c);
    float *r = ref_read_floats(&f, name, B * n);
    assert_non_null(r);
    bad += ref_compare("eval logits after the step", logits, r, B * n, 1e-4, 1e-6);
    free(r);
    printf("%s: %d NOT OK\n", c, bad);
    assert_int_equal(bad, 0);
    free(logits);
    free(points);
    free(dp);
    free(dr);
    classifier_free(m);
    h5_close(&f);
}

static void test_mean_plus_max_smoothing(void **state)
{
    (void)state;
    run_case("mm");
}

static void test_concat_plain_ce(void **state)
{
    (void)state;
    run_case("cat");
}

int main(int argc, char **argv)
{
    omp_set_num_threads(1); /* tiny shapes */
    MPI_Init(&argc, &argv);
    h5io_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mean_plus_max_smoothing),
        cmocka_unit_test(test_concat_plain_ce),
    };
    int rc = cmocka_run_group_tests(tests, dnn_group_setup, ref_group_teardown);
    MPI_Finalize();
    return rc;
}
