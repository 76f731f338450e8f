/* ft_pipe.c -- one pipeline stage of fine-tuning: ownership of tensors, the step's units around
 * pipe_run's schedule, the reduction, the update and the synchronisation (see ft_pipe.h). */
#include "ft_pipe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier_impl.h"
#include "cls_units.h"
#include "dist.h"
#include "errors.h"
#include "log.h"
#include "metrics.h"
#include "pipe_own.h"
#include "pipe_schedule.h"
#include "pipe_split.h"

typedef pipe_range_list range_list;

typedef struct {
    arena a;          /* the micro-batch's saved activations and gradients */
    cls_units u;
    classifier_batch b;
    int32_t *labels;  /* the micro-batch's labels, kept for the backward */
} slot;

struct ft_pipe {
    dist_grid g;
    int kind;
    char split_spec[256];
    pipe_split sp;
    int lo, hi;       /* this stage's units */
    classifier *c;
    long micro;
    pipe_run *run;
    slot *slots;
    long nslots;
    range_list own_p[CLS_UNITS], own_b[CLS_UNITS]; /* per stage: parameter / buffer ranges */
    pipe_own_tensors own_t; /* this stage's parameter tensors by range (pipe_own_adamw) */
    pipe_own_slices slices; /* their checkpoint slices */
    long n_own_p, n_own_b;  /* this stage's parameters and buffers (the packed layout of acc) */
    float *buf0;      /* the step's BatchNorm buffers */
    int32_t *pred;
    /* the step in progress (pipe_run's callbacks) */
    ft_pipe_fill_fn fill;
    void *fill_ctx;
    double inv, *acc, *data_s;
};

int ft_pipe_open(ft_pipe **out, MPI_Comm world, int stages, const char *split, const char *schedule, char *err)
{
    *out = NULL;
    ft_pipe *p = calloc(1, sizeof *p);
    if (!p) return errf(err, "out of memory");
    p->g.stage_comm = p->g.replica_comm = MPI_COMM_NULL;
    pipe_unit_table names;
    cls_units_names(&names);
    int rc = pipe_split_units(&p->sp, stages, split, &names, err);
    if (pipe_own_open_grid(&p->g, &p->kind, p->split_spec, sizeof p->split_spec, world, stages, split, schedule,
                           rc, err)) {
        ft_pipe_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

int ft_pipe_data(const ft_pipe *p)
{
    return p->g.data;
}

int ft_pipe_replica(const ft_pipe *p)
{
    return p->g.replica;
}

/* Ownership of every tensor by stage; this stage's parameter tensors by range. */
static int own_tensors(ft_pipe *p, char *err)
{
    int nt = classifier_n_tensors(p->c);
    const model3d_tensor *T = classifier_get_tensor(p->c, 0), *B = p->c->st.buffer_tensors;
    range_list *own = &p->own_p[p->g.stage];
    if (pipe_own_tensors_alloc(&p->own_t, nt, err)) return -1;
    for (int i = 0; i < nt; i++) {
        int n_before = own->n;
        int s = pipe_own_tensor(p->own_p, &p->sp, cls_unit_of_tensor(T[i].name), &T[i], "tensor", err);
        if (s < 0) return -1;
        if (s == p->g.stage) pipe_own_tensors_note(&p->own_t, own, n_before, &T[i]);
    }
    pipe_own_tensors_end(&p->own_t, own);
    for (int i = 0; i < p->c->st.n_buffer_tensors; i++)
        if (pipe_own_tensor(p->own_b, &p->sp, cls_unit_of_tensor(B[i].name), &B[i], "buffer", err) < 0) return -1;
    p->n_own_p = own->total;
    p->n_own_b = p->own_b[p->g.stage].total;
    const range_list *ob = &p->own_b[p->g.stage];
    return pipe_own_slices_make(&p->slices, own->r, own->n, ob->r, ob->n, err);
}

int ft_pipe_bind(ft_pipe *p, classifier *c, long micro, long M, char *err)
{
    p->c = c;
    p->micro = micro;
    pipe_unit_table units;
    cls_units_table(c, &units);
    if (pipe_split_units(&p->sp, p->g.stages, p->split_spec, &units, err)) return -1;
    p->lo = p->sp.first[p->g.stage];
    p->hi = p->sp.first[p->g.stage + 1];
    char desc[512];
    pipe_split_describe_units(&p->sp, &units, desc, sizeof desc);
    log_info("finetune: pipeline of %d stages x %d replicas, %s schedule; %s", p->g.stages, p->g.data,
             pipe_schedule_name(p->kind), desc);
    if (own_tensors(p, err)) return -1;
    long in_n = p->lo > 0 ? cls_msg_floats(c, micro, p->lo) : 0;
    long out_n = p->hi < CLS_UNITS ? cls_msg_floats(c, micro, p->hi) : 0;
    if (pipe_run_open(&p->run, p->g.replica_comm, p->g.stages, p->g.stage, p->kind, M, in_n, out_n, err))
        return -1;
    p->nslots = pipe_run_slots(p->run);
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    if (!p->slots) return errf(err, "out of memory");
    for (long i = 0; i < p->nslots; i++) {
        arena_init(&p->slots[i].a, (size_t)16 << 20);
        if (!(p->slots[i].labels = malloc(sizeof(int32_t) * (size_t)micro))) return errf(err, "out of memory");
    }
    p->buf0 = malloc(sizeof(float) * (size_t)(classifier_n_buffers(c) + 1));
    p->pred = malloc(sizeof(int32_t) * (size_t)micro);
    if (!p->buf0 || !p->pred) return errf(err, "out of memory");
    return 0;
}

long ft_pipe_acc_len(const ft_pipe *p)
{
    return p->n_own_p + p->n_own_b + 2;
}

long ft_pipe_n_own(const ft_pipe *p)
{
    return p->n_own_p;
}

void ft_pipe_ckpt_parts(const ft_pipe *p, int write, ckpt_part out[3])
{
    pipe_own_parts(&p->slices, write, p->g.replica == 0, out);
}

void ft_pipe_free(ft_pipe *p)
{
    if (!p) return;
    pipe_run_free(p->run);
    for (long i = 0; p->slots && i < p->nslots; i++) {
        arena_free(&p->slots[i].a);
        free(p->slots[i].labels);
    }
    for (int s = 0; s < CLS_UNITS; s++) {
        pipe_range_list_free(&p->own_p[s]);
        pipe_range_list_free(&p->own_b[s]);
    }
    free(p->slots);
    pipe_own_tensors_free(&p->own_t);
    pipe_own_slices_free(&p->slices);
    free(p->buf0);
    free(p->pred);
    dist_grid_free(&p->g);
    free(p);
}

/* ---- the step ---- */

static m3_run slot_run(ft_pipe *p, slot *s, char *err)
{
    m3_store *st = &p->c->st;
    return (m3_run){.c = &st->cache, .a = &s->a, .P = st->params, .G = st->grads, .buf = st->buffers,
                    .train = 1, .err = err, .recompute = st->recompute};
}

/* dst[ranges] = src[ranges] (floats). */
static void copy_ranges(float *dst, const float *src, const range_list *l)
{
    for (int k = 0; k < l->n; k++)
        memcpy(dst + l->r[k].off, src + l->r[k].off, sizeof(float) * (size_t)l->r[k].count);
}

/* packed[r.at ...] += x[r.off ...] * inv (in double) for every range r. */
static void add_ranges(double *packed, const float *x, const range_list *l, double inv)
{
    for (int k = 0; k < l->n; k++) {
        const float *xk = x + l->r[k].off;
        double *ak = packed + l->r[k].at;
        long n = l->r[k].count;
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) ak[i] += (double)xk[i] * inv;
    }
}

/* pipe_run callback: micro-batch j read, its draws and tokenizer (before the message). */
static int prepare(void *ctx, long j, long si, char *err)
{
    ft_pipe *p = ctx;
    slot *s = &p->slots[si];
    arena_reset(&s->a);
    m3_run r = slot_run(p, s, err);
    double t0 = MPI_Wtime();
    int rc = p->fill(p->fill_ctx, j, &s->b, err);
    *p->data_s += MPI_Wtime() - t0;
    if (rc || cls_check_batch(p->c, &s->b, err)) return -1;
    memcpy(s->labels, s->b.labels, sizeof(int32_t) * (size_t)s->b.B);
    s->b.labels = s->labels;
    rc = cls_units_prepare(&r, p->c, &s->u, &s->b);
    s->b.points = NULL; /* read by the tokenizer only */
    return rc;
}

/* pipe_run callback: the forward of micro-batch j through this stage's units. */
static int forward(void *ctx, long j, long si, float *in, float *out, char *err)
{
    (void)j;
    ft_pipe *p = ctx;
    slot *s = &p->slots[si];
    classifier *c = p->c;
    m3_run r = slot_run(p, s, err);
    const range_list *ob = &p->own_b[p->g.stage];
    copy_ranges(c->st.buffers, p->buf0, ob); /* every micro-batch starts from the step's statistics */
    if (in) cls_msg_attach(&s->u, p->lo, 0, in);
    for (int u = p->lo; u < p->hi; u++)
        if (cls_units_forward(&r, c, &s->u, u, &s->b)) return -1;
    if (out) {
        cls_msg_pack(c, &s->u, p->hi, 0, out);
    } else { /* the head: loss and correct predictions, as finetune.c's run_micro_batches */
        long B = s->b.B, right = 0;
        logits_argmax(s->u.f.logits, B, c->cfg.n_classes, p->pred);
        for (long i = 0; i < B; i++) right += p->pred[i] == s->labels[i];
        double *lacc = p->acc + p->n_own_p + p->n_own_b;
        lacc[0] += s->u.loss * p->inv;
        lacc[1] += (double)right;
    }
    add_ranges(p->acc + p->n_own_p, c->st.buffers, ob, p->inv);
    return 0;
}

/* pipe_run callback: the backward of micro-batch j through this stage's units. */
static int backward(void *ctx, long j, long si, float *in, float *out, char *err)
{
    (void)j;
    ft_pipe *p = ctx;
    slot *s = &p->slots[si];
    classifier *c = p->c;
    m3_run r = slot_run(p, s, err);
    const range_list *op = &p->own_p[p->g.stage];
    pipe_ranges_zero(c->st.grads, op);
    if (in) cls_msg_attach(&s->u, p->hi, 1, in);
    for (int u = p->hi - 1; u >= p->lo; u--)
        if (cls_units_backward(&r, c, &s->u, u, &s->b)) return -1;
    if (out) cls_msg_pack(c, &s->u, p->lo, 1, out);
    add_ranges(p->acc, c->st.grads, op, p->inv);
    return 0;
}

int ft_pipe_step(ft_pipe *p, ft_pipe_fill_fn fill, void *ctx, double inv_micro, double *acc, double *data_s,
                 pipe_run_times *tm, char *err)
{
    classifier *c = p->c;
    m3_store *st = &c->st;
    memset(acc, 0, sizeof(double) * (size_t)ft_pipe_acc_len(p));
    if (st->cache.precision == NN_BF16) nn_to_bf16(st->params_bf16, st->params, st->n_params);
    copy_ranges(p->buf0, st->buffers, &p->own_b[p->g.stage]);
    p->fill = fill;
    p->fill_ctx = ctx;
    p->inv = inv_micro;
    p->acc = acc;
    p->data_s = data_s;
    pipe_run_fns fns = {prepare, forward, backward};
    return pipe_run_step(p->run, &fns, p, tm, err);
}

int ft_pipe_reduce(ft_pipe *p, double *acc, double *seconds, char *err)
{
    double t0 = MPI_Wtime();
    long n = p->n_own_p + p->n_own_b;
    int rc = 0;
    if (p->g.data > 1) rc = MPI_Allreduce(MPI_IN_PLACE, acc, (int)n, MPI_DOUBLE, MPI_SUM, p->g.stage_comm);
    if (!rc) rc = MPI_Allreduce(MPI_IN_PLACE, acc + n, 2, MPI_DOUBLE, MPI_SUM, p->g.world);
    *seconds += MPI_Wtime() - t0;
    return rc ? errf(err, "pipeline: MPI_Allreduce failed") : 0;
}

/* Broadcasts every stage's ranges of x (stage s's from replica rank s). */
static int bcast_owned(ft_pipe *p, float *x, const range_list *lists)
{
    return pipe_own_bcast(x, lists, p->g.stages, p->g.replica_comm);
}

/* The norm of the whole gradient: clip_grad_norm's serial sum in table order, the running sum
 * passed along the replica from a range's stage to the next range's where they differ (the
 * stages' ranges interleave: the merges sit before the encoder stages in the table); every stage
 * gets it. */
static int grad_norm(ft_pipe *p, const float *grads, double *norm)
{
    int S = p->g.stages, me = p->g.stage, at[CLS_UNITS] = {0}, prev = -1, rc = 0;
    double sq = 0;
    for (;;) { /* every rank walks all stages' ranges in table order */
        int s = -1;
        for (int t = 0; t < S; t++)
            if (at[t] < p->own_p[t].n && (s < 0 || p->own_p[t].r[at[t]].off < p->own_p[s].r[at[s]].off)) s = t;
        if (s < 0) break;
        if (prev >= 0 && s != prev) { /* the running sum moves from stage prev to stage s */
            if (me == prev) rc = MPI_Send(&sq, 1, MPI_DOUBLE, s, 0, p->g.replica_comm);
            else if (me == s) rc = MPI_Recv(&sq, 1, MPI_DOUBLE, prev, 0, p->g.replica_comm, MPI_STATUS_IGNORE);
            if (rc) return rc;
        }
        const pipe_range *r = &p->own_p[s].r[at[s]++];
        if (me == s) sq = clip_grad_sq_sum(grads + r->off, r->count, sq);
        prev = s;
    }
    *norm = sqrt(sq);
    return prev < 0 ? 0 : MPI_Bcast(norm, 1, MPI_DOUBLE, prev, p->g.replica_comm);
}

int ft_pipe_update(ft_pipe *p, const double *acc, adamw_state *opt, const adamw_config *oc, double lr,
                   double clip_grad, double *gnorm, double *seconds, char *err)
{
    m3_store *st = &p->c->st;
    const range_list *op = &p->own_p[p->g.stage], *ob = &p->own_b[p->g.stage];
    pipe_ranges_unpack(st->grads, acc, op);
    pipe_ranges_unpack(st->buffers, acc + p->n_own_p, ob);
    double t0 = MPI_Wtime();
    int rc = grad_norm(p, st->grads, gnorm); /* the clip's norm is over the whole gradient */
    *seconds += MPI_Wtime() - t0;
    if (rc) return errf(err, "pipeline: the gradient norm's messages failed");
    for (int k = 0; k < op->n; k++) clip_grad_scale(st->grads + op->r[k].off, op->r[k].count, clip_grad, *gnorm);
    pipe_own_adamw(opt, oc, lr, st->params, st->grads, op, &p->own_t);
    return 0;
}

void ft_pipe_trim(ft_pipe *p)
{
    for (long i = 0; i < p->nslots; i++) {
        arena_free(&p->slots[i].a);
        arena_init(&p->slots[i].a, (size_t)16 << 20);
    }
}

int ft_pipe_sync(ft_pipe *p, char *err)
{
    m3_store *st = &p->c->st;
    int rc = bcast_owned(p, st->params, p->own_p);
    if (!rc) rc = bcast_owned(p, st->buffers, p->own_b);
    return rc ? errf(err, "pipeline: MPI_Bcast failed") : 0;
}
