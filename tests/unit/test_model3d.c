/* test_model3d.c -- the whole 3D network at a tiny configuration (docs/model3d.md's test config):
 *  - parameter table: names, order, sizes, decay flags;
 *  - finite differences of the total loss w.r.t. parameters of every tensor (central, float32,
 *    eps 1e-3 on the entry with the largest |gradient| of every tensor, plus one random entry of
 *    every third tensor; tolerance
 *    |fd - an| <= 5e-2 * max(|fd|, |an|) + 2e-3 * (1e-3 / eps) -- looser than per layer because
 *    max-pools, Chamfer nearest neighbours and ReLU kinks make the loss piecewise smooth; an entry
 *    that fails is retried with eps/4 and eps/16 (a crossed kink disappears, a wrong gradient not;
 *    float32 roundoff of the loss grows as 1/eps, hence the scaled absolute term));
 *  - determinism (same inputs and keys -> bitwise same losses and gradients);
 *  - no allocation after the first step (arena chunks and primitives stay constant), in fp32 and
 *    in bf16 mixed precision;
 *  - bf16: the bf16 copy of the weights follows every change of the parameters (a step after an
 *    update equals, bitwise, a step of a fresh model given the updated parameters);
 *  - encode_global shape, finiteness and independence from masking;
 *  - the encoder's BatchNorm statistics of one batch (model3d_encoder_bn_batch_stats) against the
 *    running update of a training step on the same clouds;
 *  - padding of the first stage (model3d_set_pad_multiple): to the batch's largest visible count
 *    (multiples 1 and 4) the step does fewer matmul FLOPs than at the fixed bound (0), and its loss
 *    and gradients equal the bound's up to rounding (|loss diff| <= 1e-6 |loss|, every gradient
 *    entry within 1e-5 of the largest |gradient|), over masks that give different capacities;
 *    the same padding twice gives the same bits, and a model stepping through masks of different
 *    capacities gives a fresh model's bits at each.
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

#include "errors.h"
#include "model3d.h"
#include "rng.h"
#include "support_dnn.h"
#include "support_inputs.h"

#define FD_EPS 1e-3f
#define FD_REL 5e-2
#define FD_ABS 2e-3

typedef m3_test_inputs inputs;

/* B random samples of the tiny configuration (seed 2024, mask keys 77.., drop key 5) */
static void make_inputs(inputs *in, int B)
{
    model3d_config c;
    model3d_config_tiny(&c);
    m3_test_inputs_make(in, &c, B, 2024, 77, 5);
}

static char g_err[I2P_ERR_LEN];

static void test_param_table(void **state)
{
    (void)state;
    model3d_config c;
    model3d_config_tiny(&c);
    model3d *m;
    assert_int_equal(model3d_create(&m, &c, 2, 1, &g_dnn, g_err), 0);
    const model3d_tensor *t0 = model3d_get_tensor(m, 0);
    assert_string_equal(t0->name, "embed0.conv1.weight");
    assert_int_equal(t0->shape[0], 8);
    assert_int_equal(t0->shape[1], 3);
    long total = 0;
    int saw_qkv = 0, saw_token = 0;
    for (int i = 0; i < model3d_n_tensors(m); i++) {
        const model3d_tensor *t = model3d_get_tensor(m, i);
        assert_int_equal(t->offset, total);
        total += t->count;
        if (!strcmp(t->name, "encoder.2.blocks.0.attn.qkv.weight")) {
            saw_qkv = 1;
            assert_int_equal(t->shape[0], 144);
            assert_int_equal(t->decay, 1);
        }
        if (!strcmp(t->name, "decoder.mask_token")) { saw_token = 1; assert_int_equal(t->decay, 0); }
        if (strstr(t->name, ".bias") || strstr(t->name, "norm")) assert_int_equal(t->decay, 0);
    }
    assert_int_equal(total, model3d_n_params(m));
    assert_true(saw_qkv && saw_token);
    const model3d_tensor *last = model3d_get_tensor(m, model3d_n_tensors(m) - 1);
    assert_string_equal(last->name, "rec_head_2d.bias");
    assert_int_equal(last->count, 4 * 2 * 6);
    /* 9 BatchNorms: mean and var each */
    assert_int_equal(model3d_n_buffers(m), 2 * (8 + 32 + 12 + 24 + 24 + 48 + 24 * 3));
    model3d_free(m);
}

static void test_fd_whole_model(void **state)
{
    (void)state;
    inputs in;
    make_inputs(&in, 2);
    model3d *m;
    assert_int_equal(model3d_create(&m, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    model3d_losses L;
    int rc = model3d_train_step(m, &in.batch, &L, g_err);
    if (rc) printf("train_step: %s\n", g_err);
    assert_int_equal(rc, 0);
    printf("loss %.6f = 3d %.6f + 2d %.6f\n", L.loss, L.loss_3d, L.loss_2d);
    assert_true(isfinite(L.loss) && L.loss_3d > 0 && L.loss_2d > 0);
    long n = model3d_n_params(m);
    float *an = malloc(sizeof(float) * (size_t)n);
    memcpy(an, model3d_grads(m), sizeof(float) * (size_t)n);
    float *p = model3d_params(m);
    rng_t r;
    rng_seed(&r, 9, 9);
    int bad = 0, checked = 0, zero_tensors = 0;
    for (int ti = 0; ti < model3d_n_tensors(m); ti++) {
        const model3d_tensor *t = model3d_get_tensor(m, ti);
        long best = 0;
        for (long i = 1; i < t->count; i++)
            if (fabsf(an[t->offset + i]) > fabsf(an[t->offset + best])) best = i;
        if (an[t->offset + best] == 0) zero_tensors++;
        long picks[2] = {best, (long)rng_below(&r, (uint64_t)t->count)};
        for (int q = 0; q < (ti % 3 == 0 ? 2 : 1); q++) {
            long i = t->offset + picks[q];
            double a = an[i], fd = 0, tol = 0;
            /* a kink crossed within +-eps shows up as disagreement that shrinks with eps:
               retry with eps/4 and eps/16 before calling it a failure */
            for (int tries = 0; tries < 3; tries++) {
                float eps = FD_EPS / (float)(1 << (2 * tries)), keep = p[i];
                model3d_losses lp, lm;
                p[i] = keep + eps;
                assert_int_equal(model3d_train_step(m, &in.batch, &lp, g_err), 0);
                p[i] = keep - eps;
                assert_int_equal(model3d_train_step(m, &in.batch, &lm, g_err), 0);
                p[i] = keep;
                fd = (lp.loss - lm.loss) / (2.0 * eps);
                tol = FD_REL * fmax(fabs(fd), fabs(a)) + FD_ABS * (FD_EPS / eps); /* roundoff ~ 1/eps */
                if (fabs(fd - a) <= tol) break;
                printf("%-40s [%ld] eps %.2g: fd %.6g analytic %.6g (retry)\n", t->name, picks[q], eps, fd, a);
            }
            checked++;
            if (fabs(fd - a) > tol) {
                bad++;
                printf("%-40s [%ld] fd %.6g analytic %.6g NOT OK\n", t->name, picks[q], fd, a);
            }
        }
    }
    printf("FD: %d of %d entries outside tolerance; %d tensors with all-zero gradient\n", bad, checked,
           zero_tensors);
    /* encoder.0.norm has no consumer in training (stage-0 normalised output is unused): 2 tensors */
    assert_true(zero_tensors <= 2);
    assert_int_equal(bad, 0);
    free(an);
    model3d_free(m);
    m3_test_inputs_free(&in);
}

static void determinism_and_no_alloc(nn_precision prec)
{
    inputs in;
    make_inputs(&in, 2);
    model3d *m;
    assert_int_equal(model3d_create(&m, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    assert_int_equal(model3d_set_precision(m, prec, g_err), 0);
    model3d_losses a, b;
    assert_int_equal(model3d_train_step(m, &in.batch, &a, g_err), 0);
    long n = model3d_n_params(m);
    float *ga = malloc(sizeof(float) * (size_t)n);
    memcpy(ga, model3d_grads(m), sizeof(float) * (size_t)n);
    model3d_alloc_info s1, s2;
    model3d_alloc_stats(m, &s1);
    /* other masks (different keys) must not allocate either: the tiny bounds are below the pad
     * multiple, so every capacity is fixed */
    uint64_t keys2[2] = {1234, 5678};
    model3d_batch other = in.batch;
    other.mask_keys = keys2;
    for (int i = 0; i < 3; i++) assert_int_equal(model3d_train_step(m, &other, &b, g_err), 0);
    assert_int_equal(model3d_train_step(m, &in.batch, &b, g_err), 0);
    model3d_alloc_stats(m, &s2);
    printf("%s: after step 1: %ld arena chunks, %ld primitives (%ld bytes); after 5: %ld, %ld\n",
           nn_precision_name(prec), s1.arena_chunks, s1.primitives, s1.primitive_bytes, s2.arena_chunks,
           s2.primitives);
    assert_int_equal(s1.arena_chunks, s2.arena_chunks);
    assert_int_equal(s1.primitives, s2.primitives);
    assert_int_equal(s1.primitive_bytes, s2.primitive_bytes);
    assert_true(a.loss == b.loss);
    assert_memory_equal(ga, model3d_grads(m), sizeof(float) * (size_t)n);
    free(ga);
    model3d_free(m);
    m3_test_inputs_free(&in);
}

static void test_determinism_and_no_alloc(void **state)
{
    (void)state;
    determinism_and_no_alloc(NN_FP32);
}

static int bf16_supported(void)
{
    nn_cache c;
    char err[I2P_ERR_LEN];
    if (nn_cache_init(&c, &g_dnn, 1, err)) return 0;
    int ok = nn_cache_set_precision(&c, NN_BF16, err) == 0;
    nn_cache_free(&c);
    return ok;
}

static void test_bf16_no_alloc_and_weight_copy(void **state)
{
    (void)state;
    if (!bf16_supported()) { skip(); return; }
    determinism_and_no_alloc(NN_BF16);
    inputs in;
    make_inputs(&in, 2);
    model3d *a, *b;
    assert_int_equal(model3d_create(&a, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    assert_int_equal(model3d_create(&b, &in.cfg, 2, 4, &g_dnn, g_err), 0);
    assert_int_equal(model3d_set_precision(a, NN_BF16, g_err), 0);
    assert_int_equal(model3d_set_precision(b, NN_BF16, g_err), 0);
    model3d_losses la, lb, l32;
    assert_int_equal(model3d_train_step(a, &in.batch, &la, g_err), 0);
    /* micro-batches of one optimiser step (the parameters not taken for writing between them) and
       eval batches share one bf16 copy of the weights */
    model3d_alloc_info i0, i1;
    model3d_alloc_stats(a, &i0);
    assert_int_equal(model3d_train_step(a, &in.batch, &lb, g_err), 0);
    assert_int_equal(model3d_train_step(a, &in.batch, &lb, g_err), 0);
    float *gl = malloc(sizeof(float) * 2 * (size_t)in.cfg.dims[2]);
    assert_int_equal(model3d_encode_global(a, 2, in.batch.points, gl, g_err), 0);
    free(gl);
    model3d_alloc_stats(a, &i1);
    printf("bf16 weight copies: %ld after the first step, %ld after 2 more steps and an eval batch\n",
           i0.bf16_weight_copies, i1.bf16_weight_copies);
    assert_int_equal(i0.bf16_weight_copies, 1);
    assert_int_equal(i1.bf16_weight_copies, 1);
    assert_true(la.loss == lb.loss);
    long n = model3d_n_params(a);
    float *pa = model3d_params(a);
    for (long i = 0; i < n; i++) pa[i] -= 0.05f * model3d_grads(a)[i] + 1e-3f * pa[i]; /* an update */
    memcpy(model3d_params(b), pa, sizeof(float) * (size_t)n);
    memcpy(model3d_buffers(b), model3d_buffers(a), sizeof(float) * (size_t)model3d_n_buffers(a));
    assert_int_equal(model3d_train_step(a, &in.batch, &la, g_err), 0);
    assert_int_equal(model3d_train_step(b, &in.batch, &lb, g_err), 0);
    printf("bf16 after an update: loss %.9g, fresh model %.9g\n", la.loss, lb.loss);
    assert_true(la.loss == lb.loss);
    assert_memory_equal(model3d_grads(a), model3d_grads(b), sizeof(float) * (size_t)n);
    /* and bf16 is really in use: the fp32 step of the same state differs */
    memcpy(model3d_buffers(b), model3d_buffers(a), sizeof(float) * (size_t)model3d_n_buffers(a));
    assert_int_equal(model3d_set_precision(b, NN_FP32, g_err), 0);
    assert_int_equal(model3d_train_step(b, &in.batch, &l32, g_err), 0);
    printf("fp32 of the same state: loss %.9g\n", l32.loss);
    assert_true(l32.loss != lb.loss);
    model3d_free(a);
    model3d_free(b);
    m3_test_inputs_free(&in);
}

static void test_encode_global(void **state)
{
    (void)state;
    inputs in;
    make_inputs(&in, 2);
    model3d *m;
    assert_int_equal(model3d_create(&m, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    float g1[2 * 48], g2[2 * 48];
    int rc = model3d_encode_global(m, 2, in.points, g1, g_err);
    if (rc) printf("encode_global: %s\n", g_err);
    assert_int_equal(rc, 0);
    for (int i = 0; i < 96; i++) assert_true(isfinite(g1[i]));
    /* sample 1 alone gives the same feature (eval BN: no batch coupling) */
    assert_int_equal(model3d_encode_global(m, 1, in.points + 64 * 3, g2, g_err), 0);
    for (int i = 0; i < 48; i++) assert_true(fabsf(g1[48 + i] - g2[i]) < 1e-5f);
    model3d_free(m);
    m3_test_inputs_free(&in);
}

/* The index of the buffer tensor called name, or -1. */
static int buffer_index(const model3d *m, const char *name)
{
    for (int i = 0; i < model3d_n_buffer_tensors(m); i++)
        if (!strcmp(model3d_get_buffer_tensor(m, i)->name, name)) return i;
    return -1;
}

/* model3d_encoder_bn_batch_stats (svm --bn-stats data): the six encoder BatchNorms' means and
 * unbiased variances of one batch, the model left as it was, drop path off; embed0's two checked
 * against a training step on the same clouds, an independent path (the step's masked forward, whose
 * embed0 sees every group), through the running update it makes: (1 - 0.1) running + 0.1 statistic
 * (torch's momentum, unbiased variance), within 1e-6 relative (float against double unbiasing). */
static void test_encoder_bn_batch_stats(void **state)
{
    (void)state;
    inputs in;
    make_inputs(&in, 2);
    model3d *m;
    assert_int_equal(model3d_create(&m, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    const model3d_config *c = &in.cfg;
    long V = model3d_encoder_bn_values(m), nb = model3d_n_buffers(m), np = model3d_n_params(m);
    long bn_c[6] = {c->embed_hidden[0], c->embed_hidden[2], c->dims[0], c->dims[1], c->dims[1], c->dims[2]};
    assert_int_equal(V, 2 * (bn_c[0] + bn_c[1] + bn_c[2] + bn_c[3] + bn_c[4] + bn_c[5]));
    float *p0 = malloc(sizeof(float) * (size_t)np), *b0 = malloc(sizeof(float) * (size_t)nb);
    double *st = malloc(sizeof(double) * (size_t)V), *sd = malloc(sizeof(double) * (size_t)V);
    memcpy(p0, model3d_params(m), sizeof(float) * (size_t)np);
    memcpy(b0, model3d_buffers(m), sizeof(float) * (size_t)nb);
    int rc = model3d_encoder_bn_batch_stats(m, 2, in.points, st, g_err);
    if (rc) printf("bn stats: %s\n", g_err);
    assert_int_equal(rc, 0);
    assert_memory_equal(p0, model3d_params(m), sizeof(float) * (size_t)np);
    assert_memory_equal(b0, model3d_buffers(m), sizeof(float) * (size_t)nb);
    for (int i = 0, at = 0; i < 6; at += 2 * (int)bn_c[i], i++)
        for (long j = 0; j < bn_c[i]; j++) {
            assert_true(isfinite(st[at + j]));
            assert_true(st[at + bn_c[i] + j] >= 0);
        }
    assert_int_equal(model3d_encoder_bn_batch_stats(m, 1, in.points, sd, g_err), -1); /* one sample */
    /* drop path off: with drop_path 0.5 (the same weights: same seed) the same values */
    model3d_config cd = in.cfg;
    cd.drop_path = 0.5;
    model3d *md;
    assert_int_equal(model3d_create(&md, &cd, 2, 3, &g_dnn, g_err), 0);
    assert_int_equal(model3d_encoder_bn_batch_stats(md, 2, in.points, sd, g_err), 0);
    assert_memory_equal(st, sd, sizeof(double) * (size_t)V);
    /* embed0.bn1 (stats [0, 2a)) and embed0.bn2 (stats [2a, 2a + 2c)) against a training step */
    model3d_losses L;
    assert_int_equal(model3d_train_step(m, &in.batch, &L, g_err), 0);
    const float *after = model3d_buffers(m);
    const char *names[4] = {"embed0.bn1.running_mean", "embed0.bn1.running_var", "embed0.bn2.running_mean",
                            "embed0.bn2.running_var"};
    long first[4] = {0, bn_c[0], 2 * bn_c[0], 2 * bn_c[0] + bn_c[1]};
    for (int t = 0; t < 4; t++) {
        int i = buffer_index(m, names[t]);
        assert_true(i >= 0);
        const model3d_tensor *bt = model3d_get_buffer_tensor(m, i);
        assert_int_equal(bt->count, bn_c[t / 2]);
        double worst = 0;
        for (long j = 0; j < bt->count; j++) {
            double want = (1.0 - NN_BN_MOMENTUM) * b0[bt->offset + j] + NN_BN_MOMENTUM * st[first[t] + j];
            double d = fabs(after[bt->offset + j] - want) / (fabs(want) + 1e-6);
            if (d > worst) worst = d;
        }
        printf("%s: the training step's running update against the re-estimated statistic: %.2e relative\n",
               names[t], worst);
        assert_true(worst < 1e-6);
    }
    model3d_set_encoder_bn_stats(m, st);
    int i = buffer_index(m, "merge2.bn2.running_var");
    assert_true(i >= 0);
    assert_true(model3d_buffers(m)[model3d_get_buffer_tensor(m, i)->offset] == (float)st[V - bn_c[5]]);
    free(p0);
    free(b0);
    free(st);
    free(sd);
    model3d_free(md);
    model3d_free(m);
    m3_test_inputs_free(&in);
}

/* One train step of a fresh model (seed 3) with pad multiple q on batch: loss, gradients (malloc'd)
 * and matmul FLOPs of the step. */
static double padded_step(const inputs *in, const model3d_batch *batch, int q, float **grads, double *flops)
{
    model3d *m;
    assert_int_equal(model3d_create(&m, &in->cfg, 2, 3, &g_dnn, g_err), 0);
    assert_int_equal(model3d_set_pad_multiple(m, q, g_err), 0);
    model3d_alloc_info i0, i1;
    model3d_alloc_stats(m, &i0);
    model3d_losses l;
    int rc = model3d_train_step(m, batch, &l, g_err);
    if (rc) printf("pad %d: %s\n", q, g_err);
    assert_int_equal(rc, 0);
    model3d_alloc_stats(m, &i1);
    *flops = i1.matmul_flops - i0.matmul_flops;
    long n = model3d_n_params(m);
    *grads = malloc(sizeof(float) * (size_t)n);
    memcpy(*grads, model3d_grads(m), sizeof(float) * (size_t)n);
    model3d_free(m);
    return l.loss;
}

static void test_pad_multiple(void **state)
{
    (void)state;
    /* the tiny network with 32 scale-0 tokens in neighbourhoods of 8: scale-0 bound 32, counts ~20 */
    model3d_config c;
    model3d_config_tiny(&c);
    c.groups[0] = 32;
    c.k[1] = 8;
    inputs in;
    m3_test_inputs_make(&in, &c, 2, 2024, 77, 5);
    model3d *m;
    assert_int_equal(model3d_create(&m, &in.cfg, 2, 3, &g_dnn, g_err), 0);
    assert_int_not_equal(model3d_set_pad_multiple(m, -1, g_err), 0);
    long n = model3d_n_params(m);
    /* m (pad 1) steps through all the masks, its arena and primitives meeting capacities that grow
     * and shrink: each step must equal a fresh model's */
    assert_int_equal(model3d_set_pad_multiple(m, 1, g_err), 0);
    uint64_t keysets[4][2] = {{77, 78}, {1234, 5678}, {9, 10}, {3, 4}};
    int fewer = 0;
    for (int k = 0; k < 4; k++) {
        model3d_batch b = in.batch;
        b.mask_keys = keysets[k];
        float *g0, *gq;
        double f0, fq;
        double l0 = padded_step(&in, &b, 0, &g0, &f0);
        for (int q = 1; q <= 4; q += 3) {
            double lq = padded_step(&in, &b, q, &gq, &fq);
            float gmax = 0, dmax = 0;
            for (long i = 0; i < n; i++) {
                gmax = fmaxf(gmax, fabsf(g0[i]));
                dmax = fmaxf(dmax, fabsf(g0[i] - gq[i]));
            }
            printf("keys %d, pad %d: matmul GFLOP %.6f (bound: %.6f), loss %.9g (bound: %.9g), max |grad diff| "
                   "%.3g of max |grad| %.3g\n", k, q, fq / 1e9, f0 / 1e9, lq, l0, dmax, gmax);
            assert_true(fq <= f0);
            fewer += fq < f0;
            assert_true(fabs(lq - l0) <= 1e-6 * fabs(l0));
            assert_true(dmax <= 1e-5f * gmax);
            if (q == 1) {
                model3d_losses lm;
                assert_int_equal(model3d_train_step(m, &b, &lm, g_err), 0);
                assert_true(lm.loss == lq);
                assert_memory_equal(model3d_grads(m), gq, sizeof(float) * (size_t)n);
            }
            if (q == 4) { /* the same padding again: the same bits */
                float *gr;
                double fr, lr = padded_step(&in, &b, q, &gr, &fr);
                assert_true(lr == lq && fr == fq);
                assert_memory_equal(gr, gq, sizeof(float) * (size_t)n);
                free(gr);
            }
            free(gq);
        }
        free(g0);
    }
    /* the masks must have exercised a capacity below the bound */
    assert_true(fewer >= 2);
    model3d_free(m);
    m3_test_inputs_free(&in);
}

int main(void)
{
    /* tiny shapes: one thread (OpenMP barriers on a loaded 2-core machine cost 50x the work) */
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_table),
        cmocka_unit_test(test_fd_whole_model),
        cmocka_unit_test(test_determinism_and_no_alloc),
        cmocka_unit_test(test_bf16_no_alloc_and_weight_copy),
        cmocka_unit_test(test_encode_global),
        cmocka_unit_test(test_encoder_bn_batch_stats),
        cmocka_unit_test(test_pad_multiple),
    };
    return cmocka_run_group_tests(tests, dnn_group_setup, dnn_group_teardown);
}
