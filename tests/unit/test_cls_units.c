/* test_cls_units.c -- the fine-tuning classifier run unit by unit for `finetune --stages`
 * (cls_units.h), without MPI: the tiny classifier (drop path, dropout and local attention on) cut
 * at every one of the 16 contiguous splits of its 5 units into stages, each stage in its own arena
 * and each boundary crossed through a packed message copied into a fresh buffer, gives bitwise
 * the loss, logits, parameter gradients and BatchNorm buffers of classifier_train_step; every
 * tensor and buffer belongs to a unit; the FLOP-balanced split of the unit table minimises the
 * largest stage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cls_units.h"
#include "errors.h"
#include "rng.h"
#include "support_dnn.h"

static char g_err[I2P_ERR_LEN];

static void tiny_config(classifier_config *c)
{
    classifier_config_default(c);
    model3d_config_tiny(&c->enc);
    c->enc.k[0] = 6; c->enc.k[1] = 3; c->enc.k[2] = 3;
    c->enc.depths[2] = 2;
    c->enc.drop_path = 0.3;
    c->radius[0] = 1.3; c->radius[1] = 1.5; c->radius[2] = 2.2;
    c->n_classes = 5;
    c->head_hidden = 8;
}

/* One micro-batch through the stages of sp in one process; the head's loss into *loss. */
static void run_split(classifier *m, const pipe_split *sp, const classifier_batch *b, double *loss)
{
    int S = sp->stages;
    arena ar[CLS_UNITS];
    cls_units u[CLS_UNITS];
    m3_run r[CLS_UNITS];
    float *fmsg[CLS_UNITS + 1] = {0}, *bmsg[CLS_UNITS + 1] = {0};
    memset(m->st.grads, 0, sizeof(float) * (size_t)m->st.n_params);
    for (int s = 0; s < S; s++) {
        arena_init(&ar[s], (size_t)1 << 20);
        r[s] = (m3_run){.c = &m->st.cache, .a = &ar[s], .P = m->st.params, .G = m->st.grads, .buf = m->st.buffers,
                        .train = 1, .err = g_err};
        int lo = sp->first[s], hi = sp->first[s + 1];
        assert_int_equal(cls_units_prepare(&r[s], m, &u[s], b), 0);
        if (lo > 0) cls_msg_attach(&u[s], lo, 0, fmsg[lo]);
        for (int k = lo; k < hi; k++) {
            int rc = cls_units_forward(&r[s], m, &u[s], k, b);
            if (rc) printf("forward unit %d: %s\n", k, g_err);
            assert_int_equal(rc, 0);
        }
        if (hi < CLS_UNITS) {
            long n = cls_msg_floats(m, b->B, hi);
            fmsg[hi] = malloc(sizeof(float) * (size_t)n);
            cls_msg_pack(m, &u[s], hi, 0, fmsg[hi]);
        }
    }
    *loss = u[S - 1].loss;
    for (int s = S - 1; s >= 0; s--) {
        int lo = sp->first[s], hi = sp->first[s + 1];
        if (hi < CLS_UNITS) cls_msg_attach(&u[s], hi, 1, bmsg[hi]);
        for (int k = hi - 1; k >= lo; k--) assert_int_equal(cls_units_backward(&r[s], m, &u[s], k, b), 0);
        if (lo > 0) {
            bmsg[lo] = malloc(sizeof(float) * (size_t)cls_msg_floats(m, b->B, lo));
            cls_msg_pack(m, &u[s], lo, 1, bmsg[lo]);
        }
    }
    for (int s = 0; s < S; s++) arena_free(&ar[s]);
    for (int k = 0; k <= CLS_UNITS; k++) {
        free(fmsg[k]);
        free(bmsg[k]);
    }
}

static void test_units_bitwise(void **state)
{
    (void)state;
    classifier_config cc;
    tiny_config(&cc);
    int B = 3, P = cc.enc.points;
    rng_t g;
    rng_seed(&g, 5, 1);
    float *pts = malloc(sizeof(float) * (size_t)(B * P * 3));
    for (long i = 0; i < (long)B * P * 3; i++) pts[i] = (float)rng_range(&g, -1, 1);
    int32_t labels[3] = {4, 0, 2};
    classifier_batch b = {.B = B, .points = pts, .labels = labels, .drop_key = 77};
    classifier *ref;
    assert_int_equal(classifier_create(&ref, &cc, B, 9, &g_dnn, g_err), 0);
    double LA;
    assert_int_equal(classifier_train_step(ref, &b, &LA, NULL, g_err), 0);
    long np = classifier_n_params(ref), nb = classifier_n_buffers(ref);
    int splits = 0, dropped = 0;
    for (long i = 0; i < np; i++) dropped += classifier_grads(ref)[i] == 0;
    assert_true(dropped < np); /* a gradient to compare */
    /* every composition of the 5 units: bit i set = a cut before unit i + 1 */
    for (int mask = 0; mask < 1 << (CLS_UNITS - 1); mask++) {
        pipe_split sp = {.stages = 1, .first = {0}};
        for (int i = 0; i < CLS_UNITS - 1; i++)
            if (mask >> i & 1) sp.first[sp.stages++] = i + 1;
        sp.first[sp.stages] = CLS_UNITS;
        classifier *m;
        assert_int_equal(classifier_create(&m, &cc, B, 9, &g_dnn, g_err), 0);
        double LB;
        run_split(m, &sp, &b, &LB);
        assert_memory_equal(&LA, &LB, sizeof(double));
        assert_memory_equal(classifier_grads(ref), classifier_grads(m), sizeof(float) * (size_t)np);
        assert_memory_equal(classifier_buffers(ref), classifier_buffers(m), sizeof(float) * (size_t)nb);
        classifier_free(m);
        splits++;
    }
    assert_int_equal(splits, 16);
    /* negative control: another drop_key changes the gradient */
    classifier *other;
    assert_int_equal(classifier_create(&other, &cc, B, 9, &g_dnn, g_err), 0);
    classifier_batch b2 = b;
    b2.drop_key = 78;
    pipe_split one = {.stages = 1, .first = {0, CLS_UNITS}};
    double LC;
    run_split(other, &one, &b2, &LC);
    assert_true(memcmp(classifier_grads(ref), classifier_grads(other), sizeof(float) * (size_t)np) != 0);
    classifier_free(other);
    classifier_free(ref);
    free(pts);
}

static void test_tensor_units_and_split(void **state)
{
    (void)state;
    classifier_config cc;
    tiny_config(&cc);
    classifier *m;
    assert_int_equal(classifier_create(&m, &cc, 2, 9, &g_dnn, g_err), 0);
    int seen[CLS_UNITS] = {0};
    for (int i = 0; i < classifier_n_tensors(m); i++) {
        int u = cls_unit_of_tensor(classifier_get_tensor(m, i)->name);
        assert_true(u >= 0 && u < CLS_UNITS);
        seen[u]++;
    }
    for (int i = 0; i < m->st.n_buffer_tensors; i++) assert_true(cls_unit_of_tensor(m->st.buffer_tensors[i].name) >= 0);
    for (int u = 0; u < CLS_UNITS; u++) assert_true(seen[u] > 0);
    assert_int_equal(cls_unit_of_tensor("decoder.0.x"), -1);
    pipe_unit_table t;
    cls_units_table(m, &t);
    assert_int_equal(t.n, CLS_UNITS);
    for (int S = 1; S <= CLS_UNITS; S++) {
        pipe_split sp;
        assert_int_equal(pipe_split_units(&sp, S, "", &t, g_err), 0);
        double worst = 0, best_worst = 1e300;
        for (int s = 0; s < S; s++) {
            double sum = 0;
            for (int u = sp.first[s]; u < sp.first[s + 1]; u++) sum += t.flops[u];
            if (sum > worst) worst = sum;
        }
        for (int mask = 0; mask < 1 << (CLS_UNITS - 1); mask++) { /* every split into S stages */
            if (__builtin_popcount((unsigned)mask) != S - 1) continue;
            double w = 0, sum = t.flops[0];
            for (int u = 1; u < CLS_UNITS; u++) {
                if (mask >> (u - 1) & 1) {
                    if (sum > w) w = sum;
                    sum = 0;
                }
                sum += t.flops[u];
            }
            if (sum > w) w = sum;
            if (w < best_worst) best_worst = w;
        }
        assert_true(worst == best_worst);
    }
    pipe_split sp;
    assert_int_equal(pipe_split_units(&sp, 6, "", &t, g_err), -1);
    assert_non_null(strstr(g_err, "--stages 6: the network has only 5 pipeline units (embed0, encoder.0, encoder.1, "
                                   "encoder.2, head)"));
    assert_int_equal(pipe_split_units(&sp, 2, "1,4", &t, g_err), 0);
    assert_int_equal(sp.first[1], 1);
    assert_int_equal(pipe_split_units(&sp, 2, "2,2", &t, g_err), -1);
    classifier_free(m);
}

int main(int argc, char **argv)
{
    omp_set_num_threads(1);
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_bitwise),
        cmocka_unit_test(test_tensor_units_and_split),
    };
    int rc = cmocka_run_group_tests(tests, dnn_group_setup, dnn_group_teardown);
    MPI_Finalize();
    return rc;
}
