/* test_classifier.c -- the fine-tuning classifier's own layers and contract (docs/finetune.md).
 *
 * Finite differences: for a layer y = f(x, params) the scalar L = sum(y * R) (R fixed random; the
 * loss itself for the cross-entropy) is differentiated analytically and by central differences in
 * float32 with eps 1e-3 on up to 24 entries of every input and parameter tensor.
 * Tolerance: |fd - an| <= 1e-2 * max(|fd|, |an|) + 2e-3 (as tests/unit/test_nn_layers.c).
 * Layers: attention with a per-(query, key) bias (local attention), smoothing cross-entropy
 * (eps 0.2 and 0), the head with fixed dropout masks (train-mode BatchNorm), both poolings.
 * Also: masked keys get probability exactly 0 and the biased attention equals a double-precision
 * loop (1e-5); the cross-entropy equals a hand-written value; load_encoder copies by name and names
 * the mismatched tensor; the eval forward is deterministic and the same for B = 4 as for two
 * B = 2 calls (bitwise); a train step depends on drop_key only; config JSON round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "classifier_impl.h"
#include "errors.h"
#include "losses.h"
#include "m3_layout.h"
#include "rng.h"
#include "support_dnn.h"
#include "support_inputs.h"

#define FD_EPS 1e-3f
#define FD_REL 1e-2
#define FD_ABS 2e-3
#define MAX_IN 12

static char g_err[I2P_ERR_LEN];

/* n floats uniform in [lo, hi) from stream 7 of seed */
static float *rnd(long n, uint64_t seed, double lo, double hi)
{
    return test_uniform(n, seed, 7, lo, hi);
}

/* ---- finite-difference harness ---- */

typedef struct fd_case fd_case;
struct fd_case {
    double (*loss)(fd_case *t);   /* forward, then the scalar */
    void (*grad)(fd_case *t);     /* analytic gradients into dx (zeroed before) */
    float *x[MAX_IN], *dx[MAX_IN];
    long nx[MAX_IN];
    const char *name[MAX_IN];
    int n_in;
    float *R, *out;
    long n_out;
    long B, T, C, H;
    float *bias, *att;            /* attention */
    int32_t *labels;              /* cross-entropy */
    double eps;
    cls_pooling mode;             /* pooling */
    int32_t *arg;
    m3_run run;                   /* head */
    cls_head head;
    cls_head_state hs;
    float *mask1, *mask2;
};

static void add_input(fd_case *t, const char *name, float *x, float *dx, long n)
{
    t->name[t->n_in] = name;
    t->x[t->n_in] = x;
    t->dx[t->n_in] = dx;
    t->nx[t->n_in++] = n;
}

static double dot_R(fd_case *t)
{
    double L = 0;
    for (long i = 0; i < t->n_out; i++) L += (double)t->out[i] * t->R[i];
    return L;
}

static int fd_check(fd_case *t, const char *what)
{
    for (int a = 0; a < t->n_in; a++) memset(t->dx[a], 0, sizeof(float) * (size_t)t->nx[a]);
    t->loss(t);
    t->grad(t);
    int bad = 0;
    for (int a = 0; a < t->n_in; a++) {
        long n = t->nx[a], step = n > 24 ? n / 24 : 1;
        double worst = 0;
        for (long i = 0; i < n; i += step) {
            float keep = t->x[a][i];
            t->x[a][i] = keep + FD_EPS;
            double lp = t->loss(t);
            t->x[a][i] = keep - FD_EPS;
            double lm = t->loss(t);
            t->x[a][i] = keep;
            double fd = (lp - lm) / (2.0 * FD_EPS), an = t->dx[a][i];
            double tol = FD_REL * fmax(fabs(fd), fabs(an)) + FD_ABS;
            if (fabs(fd - an) > worst) worst = fabs(fd - an);
            if (fabs(fd - an) > tol) {
                printf("%s %s[%ld]: fd %.6g analytic %.6g NOT OK\n", what, t->name[a], i, fd, an);
                bad++;
            }
        }
        printf("%-40s %-22s max|fd-an| %.2e\n", what, t->name[a], worst);
    }
    printf("%s: %s\n", what, bad ? "NOT OK" : "OK");
    return bad;
}

/* ---- attention with a per-(query, key) bias ---- */

static double attn_loss(fd_case *t)
{
    int rc = nn_attention_forward_bias(&g_cache, t->out, t->att, t->x[0], NULL, t->bias, t->B, t->T, t->C, t->H, g_err);
    if (rc) printf("%s\n", g_err);
    assert_int_equal(rc, 0);
    return dot_R(t);
}

static void attn_grad(fd_case *t)
{
    assert_int_equal(nn_attention_backward(&g_cache, t->dx[0], t->R, t->x[0], t->att, t->B, t->T, t->C,
                                           t->H, g_err), 0);
}

static void test_attention_pair_bias(void **state)
{
    (void)state;
    fd_case t = {.loss = attn_loss, .grad = attn_grad, .B = 2, .T = 7, .C = 8, .H = 2};
    long B = t.B, T = t.T, C = t.C, H = t.H, hd = C / H;
    float *qkv = rnd(B * T * 3 * C, 1, -1, 1), *dqkv = malloc(sizeof(float) * (size_t)(B * T * 3 * C));
    float *ctr = rnd(B * T * 3, 2, -1, 1);
    t.bias = malloc(sizeof(float) * (size_t)(B * T * T));
    cls_local_bias(t.bias, ctr, B, T, 1.2);
    long far = 0;
    for (long i = 0; i < B * T * T; i++) far += t.bias[i] != 0;
    printf("masked (query, key) pairs: %ld of %ld\n", far, B * T * T);
    assert_true(far > 0 && far < B * T * (T - 1));
    t.att = malloc(sizeof(float) * (size_t)(B * H * T * T));
    t.n_out = B * T * C;
    t.out = malloc(sizeof(float) * (size_t)t.n_out);
    t.R = rnd(t.n_out, 3, -1, 1);
    add_input(&t, "qkv", qkv, dqkv, B * T * 3 * C);
    int bad = fd_check(&t, "attention (T,T) bias");
    /* against a double loop: masked keys have probability exactly 0 */
    attn_loss(&t);
    double md = 0;
    for (long b = 0; b < B; b++)
        for (long h = 0; h < H; h++)
            for (long q = 0; q < T; q++) {
                double s[16], mx = -1e300, z = 0;
                for (long k = 0; k < T; k++) {
                    double d = 0;
                    for (long e = 0; e < hd; e++)
                        d += (double)qkv[(b * T + q) * 3 * C + h * hd + e] * qkv[(b * T + k) * 3 * C + C + h * hd + e];
                    s[k] = d / sqrt((double)hd) + t.bias[(b * T + q) * T + k];
                    if (s[k] > mx) mx = s[k];
                }
                for (long k = 0; k < T; k++) z += (s[k] = exp(s[k] - mx));
                for (long k = 0; k < T; k++) {
                    float a = t.att[((b * H + h) * T + q) * T + k];
                    if (t.bias[(b * T + q) * T + k] != 0 && a != 0.0f) bad++;
                    if (fabs(a - s[k] / z) > md) md = fabs(a - s[k] / z);
                }
                for (long e = 0; e < hd; e++) {
                    double o = 0;
                    for (long k = 0; k < T; k++) o += s[k] / z * qkv[(b * T + k) * 3 * C + 2 * C + h * hd + e];
                    double dd = fabs(o - t.out[(b * T + q) * C + h * hd + e]);
                    if (dd > md) md = dd;
                }
            }
    printf("biased attention vs double loop: max diff %.2e (tolerance 1e-5)\n", md);
    bad += md > 1e-5;
    assert_int_equal(bad, 0);
    free(qkv); free(dqkv); free(ctr); free(t.bias); free(t.att); free(t.out); free(t.R);
}

/* ---- cross-entropy with label smoothing ---- */

static double xent_loss(fd_case *t)
{
    return loss_xent_forward(t->x[0], t->labels, t->B, t->C, t->eps);
}

static void xent_grad(fd_case *t)
{
    loss_xent_backward(t->dx[0], t->x[0], t->labels, t->B, t->C, t->eps, 1.0);
}

static void test_smoothing_cross_entropy(void **state)
{
    (void)state;
    int bad = 0;
    int32_t labels[5] = {0, 3, 2, 3, 1};
    for (int e = 0; e < 2; e++) {
        fd_case t = {.loss = xent_loss, .grad = xent_grad, .B = 5, .C = 4, .eps = e ? 0.0 : 0.2, .labels = labels};
        float *z = rnd(t.B * t.C, 5 + (uint64_t)e, -3, 3), *dz = malloc(sizeof(float) * (size_t)(t.B * t.C));
        add_input(&t, "logits", z, dz, t.B * t.C);
        bad += fd_check(&t, e ? "cross-entropy eps 0" : "cross-entropy eps 0.2");
        free(z);
        free(dz);
    }
    /* one row by hand: logits (2, 0, -1), label 0, eps 0.2 -> targets (0.8, 0.1, 0.1) */
    float z[3] = {2, 0, -1};
    int32_t l = 0;
    double lse = log(exp(2.0) + exp(0.0) + exp(-1.0));
    double want = -(0.8 * (2 - lse) + 0.1 * (0 - lse) + 0.1 * (-1 - lse));
    double got = loss_xent_forward(z, &l, 1, 3, 0.2);
    printf("hand example: %.12f want %.12f\n", got, want);
    bad += fabs(got - want) > 1e-12;
    bad += fabs(loss_xent_forward(z, &l, 1, 3, 0.0) - (lse - 2)) > 1e-12;
    assert_int_equal(bad, 0);
}

/* ---- the head with fixed dropout masks ---- */

static double head_loss(fd_case *t)
{
    arena_reset(t->run.a);
    int rc = cls_head_forward(&t->run, &t->head, t->out, &t->hs, t->x[0], t->mask1, t->mask2, t->B);
    if (rc) printf("%s\n", g_err);
    assert_int_equal(rc, 0);
    return dot_R(t);
}

static void head_grad(fd_case *t)
{
    assert_int_equal(cls_head_backward(&t->run, &t->head, t->dx[0], t->R, &t->hs, t->x[0], t->B), 0);
}

static void test_head_fixed_dropout(void **state)
{
    (void)state;
    long B = 6, d = 5, H = 7, n = 4;
    fd_case t = {.loss = head_loss, .grad = head_grad, .B = B};
    m3_layout L = {0};
    model3d_tensor tensors[16], bufs[8];
    for (int pass = 0; pass < 2; pass++) {
        L = pass ? (m3_layout){.tensors = tensors, .buffer_tensors = bufs} : (m3_layout){0};
        t.head.fc1 = m3_layout_linear(&L, (int)d, (int)H, 1, "fc1");
        t.head.bn1 = m3_layout_bn(&L, (int)H, "bn1");
        t.head.fc2 = m3_layout_linear(&L, (int)H, (int)H, 1, "fc2");
        t.head.bn2 = m3_layout_bn(&L, (int)H, "bn2");
        t.head.fc3 = m3_layout_linear(&L, (int)H, (int)n, 1, "fc3");
    }
    float *P = rnd(L.n_params, 11, -0.8, 0.8), *G = calloc((size_t)L.n_params, sizeof(float));
    float *buf = rnd(L.n_buffers, 12, 0.5, 1.5);
    arena a;
    arena_init(&a, 1 << 20);
    t.run = (m3_run){.c = &g_cache, .a = &a, .P = P, .G = G, .buf = buf, .train = 1, .err = g_err};
    float *inp = rnd(B * d, 13, -1, 1), *dinp = malloc(sizeof(float) * (size_t)(B * d));
    t.mask1 = rnd(B * H, 14, 0, 1);
    t.mask2 = rnd(B * H, 15, 0, 1);
    for (long i = 0; i < B * H; i++) {
        t.mask1[i] = t.mask1[i] < 0.5f ? 0.0f : 2.0f;
        t.mask2[i] = t.mask2[i] < 0.5f ? 0.0f : 2.0f;
    }
    t.n_out = B * n;
    t.out = malloc(sizeof(float) * (size_t)t.n_out);
    t.R = rnd(t.n_out, 16, -1, 1);
    add_input(&t, "input", inp, dinp, B * d);
    for (int i = 0; i < L.n_tensors; i++) add_input(&t, tensors[i].name, P + tensors[i].offset, G + tensors[i].offset,
                                                    tensors[i].count);
    int bad = fd_check(&t, "head (train BN, fixed dropout)");
    assert_int_equal(bad, 0);
    free(P); free(G); free(buf); free(inp); free(dinp); free(t.mask1); free(t.mask2); free(t.out); free(t.R);
    arena_free(&a);
}

/* ---- pooling ---- */

static double pool_loss(fd_case *t)
{
    cls_pool_forward(t->mode, t->out, t->arg, t->x[0], t->B, t->T, t->C);
    return dot_R(t);
}

static void pool_grad(fd_case *t)
{
    cls_pool_backward(t->mode, t->dx[0], t->R, t->arg, t->B, t->T, t->C);
}

static void test_pooling(void **state)
{
    (void)state;
    int bad = 0;
    for (int m = 0; m < 2; m++) {
        fd_case t = {.loss = pool_loss, .grad = pool_grad, .B = 3, .T = 5, .C = 6,
                     .mode = m ? CLS_POOL_CONCAT : CLS_POOL_MEAN_PLUS_MAX};
        long B = t.B, T = t.T, C = t.C;
        /* values at least 0.09 apart within a column, so no +-eps step changes the max */
        float *x = malloc(sizeof(float) * (size_t)(B * T * C)), *dx = malloc(sizeof(float) * (size_t)(B * T * C));
        rng_t r;
        rng_seed(&r, 21, (uint64_t)m);
        for (long b = 0; b < B; b++)
            for (long c = 0; c < C; c++) {
                int perm[5] = {0, 1, 2, 3, 4};
                for (int i = 4; i > 0; i--) {
                    int j = (int)rng_below(&r, (uint64_t)i + 1), k = perm[i];
                    perm[i] = perm[j];
                    perm[j] = k;
                }
                for (long tt = 0; tt < T; tt++)
                    x[(b * T + tt) * C + c] = 0.1f * (float)perm[tt] + (float)rng_range(&r, 0, 0.01) - 0.2f;
            }
        t.n_out = m ? B * 2 * C : B * C;
        t.out = malloc(sizeof(float) * (size_t)t.n_out);
        t.R = rnd(t.n_out, 22, -1, 1);
        t.arg = malloc(sizeof(int32_t) * (size_t)(B * C));
        add_input(&t, "tokens", x, dx, B * T * C);
        bad += fd_check(&t, m ? "pool concat(mean, max)" : "pool mean + max");
        /* forward by hand for one column */
        double s = 0, mx = -1e30;
        for (long tt = 0; tt < T; tt++) {
            s += x[tt * C];
            if (x[tt * C] > mx) mx = x[tt * C];
        }
        double want0 = m ? s / T : s / T + mx, got0 = t.out[0];
        bad += fabs(got0 - want0) > 1e-6;
        if (m) bad += fabs(t.out[C] - mx) > 0;
        free(x); free(dx); free(t.out); free(t.R); free(t.arg);
    }
    assert_int_equal(bad, 0);
}

/* ---- the classifier as a whole ---- */

static void tiny_config(classifier_config *c)
{
    classifier_config_default(c);
    model3d_config_tiny(&c->enc);
    c->enc.k[0] = 6; c->enc.k[1] = 3; c->enc.k[2] = 3; /* fine-tuning group sizes differ from pre-training's */
    c->enc.depths[2] = 2;
    c->enc.drop_path = 0.3;
    c->radius[0] = 1.3; c->radius[1] = 1.5; c->radius[2] = 2.2;
    c->n_classes = 5;
    c->head_hidden = 8;
}

static void test_load_encoder_by_name(void **state)
{
    (void)state;
    classifier_config cc;
    tiny_config(&cc);
    model3d_config pc;
    model3d_config_tiny(&pc);
    pc.depths[2] = 2;
    model3d *pre = NULL;
    classifier *c = NULL, *fresh = NULL;
    assert_int_equal(model3d_create(&pre, &pc, 2, 5, &g_dnn, g_err), 0);
    /* give the buffers recognisable values */
    for (long i = 0; i < model3d_n_buffers(pre); i++) model3d_buffers(pre)[i] = 0.5f + 0.001f * (float)i;
    assert_int_equal(classifier_create(&c, &cc, 2, 9, &g_dnn, g_err), 0);
    assert_int_equal(classifier_create(&fresh, &cc, 2, 9, &g_dnn, g_err), 0);
    int rc = classifier_load_encoder(c, pre, g_err);
    if (rc) printf("%s\n", g_err);
    assert_int_equal(rc, 0);
    int copied = 0, kept = 0, bad = 0;
    for (int i = 0; i < classifier_n_tensors(c); i++) {
        const model3d_tensor *t = classifier_get_tensor(c, i);
        const float *src = NULL;
        for (int j = 0; j < model3d_n_tensors(pre); j++)
            if (!strcmp(model3d_get_tensor(pre, j)->name, t->name)) src = model3d_params(pre) + model3d_get_tensor(pre, j)->offset;
        int is_new = !strncmp(t->name, "norm.", 5) || !strncmp(t->name, "head.", 5);
        if (is_new) {
            bad += src != NULL || memcmp(classifier_params(c) + t->offset, classifier_params(fresh) + t->offset,
                                         sizeof(float) * (size_t)t->count) != 0;
            kept++;
        } else {
            bad += !src || memcmp(classifier_params(c) + t->offset, src, sizeof(float) * (size_t)t->count) != 0;
            copied++;
        }
    }
    for (int i = 0; i < classifier_n_buffer_tensors(c); i++) {
        const model3d_tensor *t = classifier_get_buffer_tensor(c, i);
        const float *src = NULL;
        for (int j = 0; j < model3d_n_buffer_tensors(pre); j++)
            if (!strcmp(model3d_get_buffer_tensor(pre, j)->name, t->name))
                src = model3d_buffers(pre) + model3d_get_buffer_tensor(pre, j)->offset;
        if (!strncmp(t->name, "head.", 5)) bad += src != NULL;
        else bad += !src || memcmp(classifier_buffers(c) + t->offset, src, sizeof(float) * (size_t)t->count) != 0;
    }
    printf("load_encoder: %d tensors copied, %d new kept, %d wrong\n", copied, kept, bad);
    assert_int_equal(bad, 0);
    assert_true(copied > 0 && kept == 12);
    model3d_free(pre);

    /* another width: the first tensor whose shape differs is named */
    pc.dims[0] = 18;
    assert_int_equal(model3d_create(&pre, &pc, 2, 5, &g_dnn, g_err), 0);
    assert_int_not_equal(classifier_load_encoder(c, pre, g_err), 0);
    printf("dims differ: %s\n", g_err);
    assert_non_null(strstr(g_err, "'embed0.conv4.weight'"));
    assert_non_null(strstr(g_err, "(18,32)"));
    model3d_free(pre);
    /* another depth: a block the classifier lacks, or one the checkpoint lacks */
    pc.dims[0] = 12;
    pc.depths[2] = 3;
    assert_int_equal(model3d_create(&pre, &pc, 2, 5, &g_dnn, g_err), 0);
    assert_int_not_equal(classifier_load_encoder(c, pre, g_err), 0);
    printf("deeper checkpoint: %s\n", g_err);
    assert_non_null(strstr(g_err, "'encoder.2.blocks.2.norm1.weight'"));
    model3d_free(pre);
    pc.depths[2] = 1;
    assert_int_equal(model3d_create(&pre, &pc, 2, 5, &g_dnn, g_err), 0);
    assert_int_not_equal(classifier_load_encoder(c, pre, g_err), 0);
    printf("shallower checkpoint: %s\n", g_err);
    assert_non_null(strstr(g_err, "'encoder.2.blocks.1.norm1.weight' missing"));
    model3d_free(pre);
    classifier_free(c);
    classifier_free(fresh);
}

static float *tiny_points(int B, int P, uint64_t seed) { return rnd((long)B * P * 3, seed, -1, 1); }

static void test_eval_deterministic_and_split(void **state)
{
    (void)state;
    classifier_config cc;
    tiny_config(&cc);
    classifier *c = NULL;
    assert_int_equal(classifier_create(&c, &cc, 4, 3, &g_dnn, g_err), 0);
    /* non-trivial running statistics: one train step first */
    int P = cc.enc.points, n = cc.n_classes;
    float *pts = tiny_points(4, P, 31);
    int32_t labels[4] = {0, 1, 2, 4};
    classifier_batch b = {.B = 4, .points = pts, .labels = labels, .drop_key = 1};
    double loss;
    assert_int_equal(classifier_train_step(c, &b, &loss, NULL, g_err), 0);
    float l4[20], again[20], half[20];
    int bad = 0;
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        assert_int_equal(classifier_forward(c, 4, pts, l4, g_err), 0);
        assert_int_equal(classifier_forward(c, 4, pts, again, g_err), 0);
        assert_int_equal(classifier_forward(c, 2, pts, half, g_err), 0);
        assert_int_equal(classifier_forward(c, 2, pts + 2 * P * 3, half + 2 * n, g_err), 0);
        int same = !memcmp(l4, again, sizeof(float) * (size_t)(4 * n)), split = !memcmp(l4, half, sizeof(float) * (size_t)(4 * n));
        double md = 0;
        for (int i = 0; i < 4 * n; i++) md = fmax(md, fabs(l4[i] - half[i]));
        printf("%d thread(s): repeat bitwise %s, B=4 vs 2+2 bitwise %s (max diff %.3g)\n", threads,
               same ? "equal" : "DIFFERENT", split ? "equal" : "DIFFERENT", md);
        bad += !same + !split;
    }
    omp_set_num_threads(1);
    assert_int_equal(bad, 0);
    free(pts);
    classifier_free(c);
}

static void test_train_step_depends_on_drop_key_only(void **state)
{
    (void)state;
    classifier_config cc;
    tiny_config(&cc);
    classifier *c = NULL;
    assert_int_equal(classifier_create(&c, &cc, 4, 3, &g_dnn, g_err), 0);
    int P = cc.enc.points;
    long np = classifier_n_params(c), nbuf = classifier_n_buffers(c);
    float *pts = tiny_points(4, P, 41), *g1 = malloc(sizeof(float) * (size_t)np), *buf0 = malloc(sizeof(float) * (size_t)nbuf);
    memcpy(buf0, classifier_buffers(c), sizeof(float) * (size_t)nbuf);
    int32_t labels[4] = {3, 1, 0, 4};
    classifier_batch b = {.B = 4, .points = pts, .labels = labels, .drop_key = 77};
    double l1, l2, l3;
    assert_int_equal(classifier_train_step(c, &b, &l1, NULL, g_err), 0);
    memcpy(g1, classifier_grads(c), sizeof(float) * (size_t)np);
    memcpy(classifier_buffers(c), buf0, sizeof(float) * (size_t)nbuf); /* BN running stats back */
    assert_int_equal(classifier_train_step(c, &b, &l2, NULL, g_err), 0);
    int same = l1 == l2 && !memcmp(g1, classifier_grads(c), sizeof(float) * (size_t)np);
    b.drop_key = 78;
    assert_int_equal(classifier_train_step(c, &b, &l3, NULL, g_err), 0);
    printf("drop_key 77: loss %.9f twice %s; drop_key 78: loss %.9f\n", l1, same ? "bitwise equal" : "DIFFERENT", l3);
    assert_true(same);
    assert_true(l3 != l1);
    /* contract errors */
    b.B = 1;
    assert_int_not_equal(classifier_train_step(c, &b, &l1, NULL, g_err), 0);
    printf("B 1: %s\n", g_err);
    b.B = 4;
    labels[2] = 5;
    assert_int_not_equal(classifier_train_step(c, &b, &l1, NULL, g_err), 0);
    printf("label 5: %s\n", g_err);
    assert_non_null(strstr(g_err, "sample 2"));
    free(pts); free(g1); free(buf0);
    classifier_free(c);
}

static void test_config_json(void **state)
{
    (void)state;
    classifier_config a, b;
    classifier_config_default(&a);
    a.pooling = CLS_POOL_CONCAT;
    a.radius[2] = 1.92;
    a.smoothing = 0;
    a.n_classes = 15;
    cJSON *j = classifier_config_to_json(&a);
    char *s = cJSON_PrintUnformatted(j);
    printf("%s\n", s);
    cJSON *k = cJSON_Parse(s);
    assert_int_equal(classifier_config_from_json(k, &b, g_err), 0);
    assert_memory_equal(&a, &b, sizeof a);
    cJSON_DeleteItemFromObject(k, "smoothing");
    assert_int_not_equal(classifier_config_from_json(k, &b, g_err), 0);
    printf("%s\n", g_err);
    assert_non_null(strstr(g_err, "'smoothing'"));
    cJSON_Delete(j);
    cJSON_Delete(k);
    free(s);
    /* the default is the spec's ModelNet40 model */
    classifier_config_default(&a);
    assert_int_equal(classifier_config_check(&a, g_err), 0);
    assert_int_equal(a.enc.points, 1024);
    assert_int_equal(a.enc.k[0], 48);
    assert_true(a.smoothing == 0.2 && a.radius[0] == 0.24 && a.n_classes == 40 && a.head_hidden == 256);
}

int main(int argc, char **argv)
{
    omp_set_num_threads(1);
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_pair_bias),
        cmocka_unit_test(test_smoothing_cross_entropy),
        cmocka_unit_test(test_head_fixed_dropout),
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_load_encoder_by_name),
        cmocka_unit_test(test_eval_deterministic_and_split),
        cmocka_unit_test(test_train_step_depends_on_drop_key_only),
        cmocka_unit_test(test_config_json),
    };
    int rc = cmocka_run_group_tests(tests, dnn_cache_group_setup, dnn_cache_group_teardown);
    MPI_Finalize();
    return rc;
}
