/* test_pipe.c -- the pieces of pipeline-parallel pre-training that need no MPI:
 *  - pipe_units: the tiny network run unit by unit, cut at every one of the 32 contiguous splits
 *    into stages, each stage in its own arena and each boundary crossed through a packed message
 *    copied into a fresh buffer, gives bitwise the losses, parameter gradients and BatchNorm
 *    buffers of model3d_train_step; and each unit's backward writes only its own tensors' gradients
 *    (what a stage's per-unit accumulation and overlapped reduction rely on);
 *  - pipe_schedule: GPipe and 1F1B orders for S = 1..4 stages and M = 1..7 micro-batches run to
 *    the end in a simulated pipeline (no deadlock), each micro-batch once forward then backward in
 *    ascending order, and no slot reused before its micro-batch's backward;
 *  - pipe_split: every tensor of the network belongs to a unit; the FLOP-balanced split minimises
 *    the largest stage (checked against all splits); hand-set splits and their errors;
 *  - pipe_own: tensors assigned to their unit's stage as merged ranges with packed offsets, and
 *    the ranges zeroed and packed (and back) element by element as written out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "pipe_own.h"
#include "pipe_schedule.h"
#include "pipe_split.h"
#include "pipe_units.h"
#include "support_dnn.h"
#include "support_inputs.h"

static char g_err[I2P_ERR_LEN];

typedef m3_test_inputs inputs;

/* two random samples of the tiny configuration (seed 99, mask keys 11 and 12, drop key 9) */
static void make_inputs(inputs *in)
{
    model3d_config c;
    model3d_config_tiny(&c);
    m3_test_inputs_make(in, &c, 2, 99, 11, 9);
}

/* One micro-batch through the stages of sp in one process; losses into *L. */
static void run_split(model3d *m, const pipe_split *sp, const model3d_batch *b, model3d_losses *L)
{
    int S = sp->stages;
    arena ar[PIPE_UNITS];
    pipe_units u[PIPE_UNITS];
    m3_run r[PIPE_UNITS];
    float *fmsg[PIPE_UNITS + 1] = {0}, *bmsg[PIPE_UNITS + 1] = {0};
    memset(m->st.grads, 0, sizeof(float) * (size_t)m->st.n_params);
    for (int s = 0; s < S; s++) {
        arena_init(&ar[s], (size_t)1 << 20);
        r[s] = (m3_run){.c = &m->st.cache, .a = &ar[s], .P = m->st.params, .G = m->st.grads, .buf = m->st.buffers,
                        .train = 1, .err = g_err};
        int lo = sp->first[s], hi = sp->first[s + 1];
        assert_int_equal(pipe_units_prepare(&r[s], m, &u[s], b), 0);
        if (lo > 0) pipe_msg_attach(&m->cfg, &u[s], lo, 0, fmsg[lo]);
        for (int k = lo; k < hi; k++) {
            int rc = pipe_units_forward(&r[s], m, &u[s], k, b);
            if (rc) printf("forward unit %d: %s\n", k, g_err);
            assert_int_equal(rc, 0);
        }
        if (hi < PIPE_UNITS) {
            long n = pipe_msg_floats(&m->cfg, b->B, hi, 0);
            fmsg[hi] = aligned_alloc(64, sizeof(float) * (size_t)n);
            pipe_msg_pack(&m->cfg, &u[s], hi, 0, fmsg[hi]);
        }
    }
    *L = u[S - 1].loss;
    for (int s = S - 1; s >= 0; s--) {
        int lo = sp->first[s], hi = sp->first[s + 1];
        assert_int_equal(pipe_units_backward_begin(&r[s], m, &u[s], lo, hi), 0);
        if (hi < PIPE_UNITS) pipe_msg_attach(&m->cfg, &u[s], hi, 1, bmsg[hi]);
        for (int k = hi - 1; k >= lo; k--) assert_int_equal(pipe_units_backward(&r[s], m, &u[s], k), 0);
        if (lo > 0) {
            long n = pipe_msg_floats(&m->cfg, b->B, lo, 1);
            assert_int_equal(n, pipe_msg_floats(&m->cfg, b->B, lo, 0));
            bmsg[lo] = aligned_alloc(64, sizeof(float) * (size_t)n);
            pipe_msg_pack(&m->cfg, &u[s], lo, 1, bmsg[lo]);
        }
    }
    for (int s = 0; s < S; s++) arena_free(&ar[s]);
    for (int k = 0; k <= PIPE_UNITS; k++) {
        free(fmsg[k]);
        free(bmsg[k]);
    }
}

static void test_units_bitwise(void **state)
{
    (void)state;
    inputs in;
    make_inputs(&in);
    model3d *ref;
    assert_int_equal(model3d_create(&ref, &in.cfg, 2, 5, &g_dnn, g_err), 0);
    model3d_losses LA;
    assert_int_equal(model3d_train_step(ref, &in.batch, &LA, g_err), 0);
    long np = model3d_n_params(ref), nb = model3d_n_buffers(ref);
    int splits = 0;
    /* every composition of the 5 units: bit i set = a cut before unit i + 1 */
    for (int mask = 0; mask < 1 << (PIPE_UNITS - 1); mask++) {
        pipe_split sp = {.stages = 1, .first = {0}};
        for (int i = 0; i < PIPE_UNITS - 1; i++)
            if (mask >> i & 1) sp.first[sp.stages++] = i + 1;
        sp.first[sp.stages] = PIPE_UNITS;
        model3d *m;
        assert_int_equal(model3d_create(&m, &in.cfg, 2, 5, &g_dnn, g_err), 0);
        model3d_losses LB;
        run_split(m, &sp, &in.batch, &LB);
        assert_memory_equal(&LA.loss, &LB.loss, sizeof(double));
        assert_memory_equal(&LA.loss_3d, &LB.loss_3d, sizeof(double));
        assert_memory_equal(&LA.loss_2d, &LB.loss_2d, sizeof(double));
        assert_memory_equal(model3d_grads(ref), model3d_grads(m), sizeof(float) * (size_t)np);
        assert_memory_equal(model3d_buffers(ref), model3d_buffers(m), sizeof(float) * (size_t)nb);
        model3d_free(m);
        splits++;
    }
    assert_int_equal(splits, 32);
    model3d_free(ref);
    m3_test_inputs_free(&in);
}

/* What a stage's per-unit accumulation and overlapped reduction rely on (pipe_step.c): the
 * backward of unit k writes the gradients of unit k's tensors only, so those of units >= k are
 * final once it is done. One stage holding all six units; before and after each unit's backward
 * the gradients of every other unit's tensors are the same bits, and the unit's own changed. */
static void test_unit_grads_final(void **state)
{
    (void)state;
    inputs in;
    make_inputs(&in);
    model3d *m;
    assert_int_equal(model3d_create(&m, &in.cfg, 2, 5, &g_dnn, g_err), 0);
    long np = model3d_n_params(m);
    int nt = model3d_n_tensors(m);
    float *before = malloc(sizeof(float) * (size_t)np);
    assert_non_null(before);
    arena ar;
    arena_init(&ar, (size_t)1 << 20);
    m3_run r = {.c = &m->st.cache, .a = &ar, .P = m->st.params, .G = m->st.grads, .buf = m->st.buffers,
                .train = 1, .err = g_err};
    pipe_units u;
    memset(m->st.grads, 0, sizeof(float) * (size_t)np);
    assert_int_equal(pipe_units_prepare(&r, m, &u, &in.batch), 0);
    for (int k = 0; k < PIPE_UNITS; k++) assert_int_equal(pipe_units_forward(&r, m, &u, k, &in.batch), 0);
    assert_int_equal(pipe_units_backward_begin(&r, m, &u, 0, PIPE_UNITS), 0);
    for (int k = PIPE_UNITS - 1; k >= 0; k--) {
        memcpy(before, m->st.grads, sizeof(float) * (size_t)np);
        assert_int_equal(pipe_units_backward(&r, m, &u, k), 0);
        int own_changed = 0;
        for (int i = 0; i < nt; i++) {
            const model3d_tensor *T = model3d_get_tensor(m, i);
            int same = !memcmp(before + T->offset, m->st.grads + T->offset, sizeof(float) * (size_t)T->count);
            if (pipe_unit_of_tensor(T->name) == k) own_changed |= !same;
            else if (!same) fail_msg("unit %d's backward wrote the gradient of %s", k, T->name);
        }
        if (!own_changed) fail_msg("unit %d's backward wrote none of its gradients", k);
    }
    arena_free(&ar);
    free(before);
    model3d_free(m);
    m3_test_inputs_free(&in);
}

/* Runs the S stages' orders against each other: F(j) on s needs F(j) on s-1, B(j) on s needs B(j)
 * on s+1 (and F(j) on s). Fails on a deadlock, a bad order or a slot reused too early. */
static void simulate(int kind, int S, long M)
{
    pipe_op ops[4][14];
    long slots[4], pos[4] = {0}, fdone[4][7], bdone[4][7];
    for (int s = 0; s < S; s++) {
        slots[s] = pipe_schedule_make(kind, S, s, M, ops[s]);
        assert_true(slots[s] >= 1 && slots[s] <= M);
        if (kind == PIPE_1F1B) assert_true(slots[s] <= S - s);
        for (long j = 0; j < M; j++) fdone[s][j] = bdone[s][j] = 0;
    }
    for (int progress = 1; progress;) {
        progress = 0;
        for (int s = 0; s < S; s++) {
            if (pos[s] == 2 * M) continue;
            pipe_op o = ops[s][pos[s]];
            long j = o.micro;
            assert_true(j >= 0 && j < M);
            int ready;
            if (o.op == 'F') {
                ready = s == 0 || fdone[s - 1][j];
                /* the slot's previous micro-batch is done */
                if (ready && j >= slots[s]) assert_true(bdone[s][j - slots[s]]);
                if (ready) {
                    assert_false(fdone[s][j]);
                    if (j > 0) assert_true(fdone[s][j - 1]);
                    fdone[s][j] = 1;
                }
            } else {
                assert_int_equal(o.op, 'B');
                ready = fdone[s][j] && (s == S - 1 || bdone[s + 1][j]);
                if (ready) {
                    assert_false(bdone[s][j]);
                    if (j > 0) assert_true(bdone[s][j - 1]);
                    bdone[s][j] = 1;
                }
            }
            if (ready) {
                pos[s]++;
                progress = 1;
            }
        }
    }
    for (int s = 0; s < S; s++) assert_int_equal(pos[s], 2 * M); /* else: deadlock */
}

static void test_schedules(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++)
        for (int S = 1; S <= 4; S++)
            for (long M = 1; M <= 7; M++) simulate(kind, S, M);
    pipe_op ops[8];
    assert_int_equal(pipe_schedule_make(PIPE_1F1B, 3, 0, 4, ops), 3);
    const char *want = "FFFBFBBB";
    for (int i = 0; i < 8; i++) assert_int_equal(ops[i].op, want[i]);
    assert_int_equal(pipe_schedule_make(PIPE_GPIPE, 3, 0, 4, ops), 4);
    assert_int_equal(pipe_schedule_parse("1f1b"), PIPE_1F1B);
    assert_int_equal(pipe_schedule_parse("gpipe"), PIPE_GPIPE);
    assert_int_equal(pipe_schedule_parse("zb"), -1);
}

static void test_split(void **state)
{
    (void)state;
    model3d_config c;
    model3d_config_default(&c);
    c.views = 3;
    c.feat_dim = 512;
    model3d *m;
    model3d_config t;
    model3d_config_tiny(&t);
    assert_int_equal(model3d_create(&m, &t, 1, 1, &g_dnn, g_err), 0);
    for (int i = 0; i < model3d_n_tensors(m); i++) assert_true(pipe_unit_of_tensor(model3d_get_tensor(m, i)->name) >= 0);
    for (int i = 0; i < model3d_n_buffer_tensors(m); i++)
        assert_true(pipe_unit_of_tensor(model3d_get_buffer_tensor(m, i)->name) >= 0);
    assert_int_equal(pipe_unit_of_tensor("decoder.mask_token"), PIPE_DEC);
    assert_int_equal(pipe_unit_of_tensor("embed0.bn1.running_mean"), PIPE_EMBED0);
    assert_int_equal(pipe_unit_of_tensor("encoder.0.norm.weight"), PIPE_ENC0);
    assert_int_equal(pipe_unit_of_tensor("merge2.bn1.running_var"), PIPE_ENC2);
    assert_int_equal(pipe_unit_of_tensor("rec_head_2d.weight"), PIPE_HEADS);
    assert_int_equal(pipe_unit_of_tensor("cls_head.fc"), -1);
    model3d_free(m);

    double f[PIPE_UNITS];
    pipe_unit_flops(&c, f);
    for (int u = 0; u < PIPE_UNITS; u++) assert_true(f[u] > 0);
    for (int S = 1; S <= PIPE_UNITS; S++) {
        pipe_split sp;
        assert_int_equal(pipe_split_make(&sp, S, "", f, g_err), 0);
        assert_int_equal(sp.first[0], 0);
        assert_int_equal(sp.first[S], PIPE_UNITS);
        double worst = 0, best = 1e300;
        for (int s = 0; s < S; s++) {
            assert_true(sp.first[s + 1] > sp.first[s]);
            double x = 0;
            for (int u = sp.first[s]; u < sp.first[s + 1]; u++) x += f[u];
            if (x > worst) worst = x;
        }
        /* brute force over all splits into S parts */
        for (int mask = 0; mask < 1 << (PIPE_UNITS - 1); mask++) {
            if (__builtin_popcount((unsigned)mask) != S - 1) continue;
            double w = 0, x = 0;
            for (int u = 0; u < PIPE_UNITS; u++) {
                x += f[u];
                if (u == PIPE_UNITS - 1 || (mask >> u & 1)) {
                    if (x > w) w = x;
                    x = 0;
                }
            }
            if (w < best) best = w;
        }
        assert_true(worst == best);
    }
    char desc[512];
    pipe_split sp;
    assert_int_equal(pipe_split_make(&sp, 2, "5,1", f, g_err), 0);
    assert_int_equal(sp.first[1], 5);
    pipe_split_describe(&sp, f, desc, sizeof desc);
    assert_non_null(strstr(desc, "stage 0: embed0+encoder.0+encoder.1+encoder.2+decoder ("));
    assert_non_null(strstr(desc, "stage 1: heads ("));
    assert_int_equal(pipe_split_make(&sp, 7, "", f, g_err), -1);
    assert_non_null(strstr(g_err, "only 6 pipeline units"));
    assert_int_equal(pipe_split_make(&sp, 2, "2,2", f, g_err), -1);
    assert_non_null(strstr(g_err, "cover it exactly"));
    assert_int_equal(pipe_split_make(&sp, 2, "1,1,3", f, g_err), -1);
    assert_int_equal(pipe_split_make(&sp, 2, "0,6", f, g_err), -1);
    assert_int_equal(pipe_split_make(&sp, 2, "2,4,", f, g_err), -1);
    assert_int_equal(pipe_split_make(&sp, 2, "2;4", f, g_err), -1);
}

static void test_own(void **state)
{
    (void)state;
    pipe_split sp = {.stages = 2, .first = {0, 2, 4}};
    /* tensors of units 0, 0, 2, 1, 3 at 0..3, 3..5, 5..9, 9..10, 12..14 */
    const model3d_tensor T[5] = {{.name = "a", .offset = 0, .count = 3}, {.name = "b", .offset = 3, .count = 2},
                                 {.name = "c", .offset = 5, .count = 4}, {.name = "d", .offset = 9, .count = 1},
                                 {.name = "e", .offset = 12, .count = 2}};
    const int unit[5] = {0, 0, 2, 1, 3};
    pipe_range_list own[2] = {{0}};
    for (int i = 0; i < 5; i++)
        assert_int_equal(pipe_own_tensor(own, &sp, unit[i], &T[i], "tensor", g_err), unit[i] >= 2);
    /* stage 0: [0, 5) merged, [9, 10) at 5; stage 1: [5, 9) at 0, [12, 14) at 4 */
    assert_int_equal(own[0].n, 2);
    assert_int_equal(own[0].total, 6);
    assert_true(own[0].r[0].off == 0 && own[0].r[0].count == 5 && own[0].r[0].at == 0);
    assert_true(own[0].r[1].off == 9 && own[0].r[1].count == 1 && own[0].r[1].at == 5);
    assert_int_equal(own[1].n, 2);
    assert_int_equal(own[1].total, 6);
    assert_true(own[1].r[0].off == 5 && own[1].r[0].count == 4 && own[1].r[0].at == 0);
    assert_true(own[1].r[1].off == 12 && own[1].r[1].count == 2 && own[1].r[1].at == 4);
    assert_int_equal(pipe_own_tensor(own, &sp, 4, &T[0], "buffer", g_err), -1);
    assert_string_equal(g_err, "pipeline: buffer a belongs to no unit");

    float x[14];
    for (int i = 0; i < 14; i++) x[i] = (float)(i + 1);
    pipe_ranges_zero(x, &own[1]);
    const float xz[14] = {1, 2, 3, 4, 5, 0, 0, 0, 0, 10, 11, 12, 0, 0};
    assert_memory_equal(x, xz, sizeof x);

    /* packed (stage 1: [5, 9) at 0, [12, 14) at 4) back to its offsets, the rest untouched */
    const double packed[6] = {-0.5, -1, -2, -3, -4, -5};
    for (int i = 0; i < 14; i++) x[i] = (float)(100 + i);
    pipe_ranges_unpack(x, packed, &own[1]);
    const float xu[14] = {100, 101, 102, 103, 104, -0.5f, -1, -2, -3, 109, 110, 111, -4, -5};
    assert_memory_equal(x, xu, sizeof x);

    /* checkpoint slices: parameters and buffers at their offsets, moments packed */
    pipe_own_slices sl = {0};
    assert_int_equal(pipe_own_slices_make(&sl, own[1].r, own[1].n, own[0].r, own[0].n, g_err), 0);
    ckpt_part w[3], r[3], w2[3];
    pipe_own_parts(&sl, 1, 1, w);
    pipe_own_parts(&sl, 0, 1, r);
    pipe_own_parts(&sl, 1, 0, w2);
    assert_true(w[0].n == 2 && w[0].s[1].off == 12 && w[0].s[1].at == 12 && w[0].s[1].count == 2);
    assert_true(w[1].n == 2 && w[1].s[1].off == 12 && w[1].s[1].at == 4);
    assert_true(w[2].n == 2 && w[2].s[1].off == 9 && w[2].s[1].at == 9 && w[2].s[1].count == 1);
    assert_true(!r[0].s && !r[2].s && r[1].s == w[1].s && r[1].n == 2); /* reading: own moments only */
    assert_true(w2[0].s && w2[0].n == 0 && w2[1].n == 0 && w2[2].n == 0); /* another replica writes none */
    pipe_own_slices_free(&sl);

    /* AdamW on packed moments, range by range = adamw_step over the whole arrays, bitwise */
    pipe_own_tensors ot = {0};
    assert_int_equal(pipe_own_tensors_alloc(&ot, 5, g_err), 0);
    pipe_range_list mine = {0};
    for (int i = 0; i < 5; i++) {
        if (unit[i] < 2) continue;
        int n_before = mine.n;
        assert_int_equal(pipe_range_add(&mine, T[i].offset, T[i].count), 0);
        pipe_own_tensors_note(&ot, &mine, n_before, &T[i]);
    }
    pipe_own_tensors_end(&ot, &mine);
    adamw_config c;
    adamw_config_default(&c);
    adamw_state whole = {0}, part = {0};
    assert_int_equal(adamw_init(&whole, 14, g_err), 0);
    assert_int_equal(adamw_init(&part, 6, g_err), 0);
    float p1[14], p2[14], gr[14];
    model3d_tensor tw[2] = {T[2], T[4]};
    tw[1].decay = 1;
    ot.t[1].decay = 1;
    for (int i = 0; i < 14; i++) p1[i] = p2[i] = 0.1f * (float)(i - 7), gr[i] = 0.01f * (float)(i * i % 5 - 2);
    for (int s = 0; s < 3; s++) {
        adamw_step(&whole, &c, 1e-2, p1, gr, tw, 2);
        pipe_own_adamw(&part, &c, 1e-2, p2, gr, &mine, &ot);
    }
    assert_memory_equal(p1, p2, sizeof p1);
    assert_int_equal(part.step, 3);
    assert_true(part.m[4] == whole.m[12] && part.v[3] == whole.v[8]);
    adamw_free(&whole);
    adamw_free(&part);
    pipe_own_tensors_free(&ot);
    pipe_range_list_free(&mine);
    pipe_range_list_free(&own[0]);
    pipe_range_list_free(&own[1]);
    assert_null(own[0].r);
}

int main(void)
{
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_bitwise),
        cmocka_unit_test(test_unit_grads_final),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_own),
    };
    return cmocka_run_group_tests(tests, dnn_group_setup, dnn_group_teardown);
}
