/* pipe_step.c -- one pipeline stage of pre-training: ownership of tensors, the step's units around
 * pipe_run's schedule, the reduction, the update and the synchronisation (see pipe_step.h). */
#include "pipe_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dist.h"
#include "errors.h"
#include "grad_allreduce.h"
#include "log.h"
#include "pipe_own.h"
#include "pipe_run.h"
#include "pipe_schedule.h"
#include "pipe_split.h"
#include "pipe_units.h"

typedef pipe_range_list range_list;

typedef struct {
    arena a;                   /* the micro-batch's saved activations and gradients */
    pipe_units u;
    model3d_batch b;           /* its batch (filled by prepare) */
} slot;

struct pipe_stage {
    dist_grid g;
    int kind;
    char split_spec[256];
    pipe_split sp;
    int lo, hi;                /* this stage's units */
    model3d *m;
    long M, nslots;
    pipe_run *run;             /* the schedule and the messages (pipe_run.h) */
    slot *slots;
    arena bwd;                 /* every backward's gradients and temporaries, one micro-batch at a
                                  time (a slot's arena keeps only its forward's saved state) */
    arena scratch;             /* with --recompute: embed0's temporaries, recomputation and backward,
                                  one micro-batch at a time (m3_run.scratch) */
    range_list own_p[PIPE_UNITS], own_b[PIPE_UNITS]; /* per stage: parameter / buffer ranges */
    range_list unit_p[PIPE_UNITS]; /* this stage's units: their parameter ranges (at: packed offset) */
    long final_lo[PIPE_UNITS];     /* after unit u's backward, packed gradients >= final_lo[u] are done */
    pipe_own_tensors own_t;    /* this stage's parameter tensors by range (pipe_own_adamw) */
    long n_own_p, n_own_b;     /* this stage's parameters and buffers (the packed layout of acc) */
    grad_overlap ov;           /* --overlap-allreduce with replicas: the bucketed reduction */
    int overlap;
    int direct;                /* one micro-batch per step, one replica: the gradients stay in the
                                  model's float array (acc's gradient part is never touched) */
    double comm0;              /* ov.comm_s at the step's start */
    /* the step in progress (pipe_run's callbacks) */
    pipe_fill_fn fill;
    void *fill_ctx;
    double inv, *acc;
    pipe_times *tm;
};

int pipe_stage_open(pipe_stage **out, MPI_Comm world, int stages, const char *split, const char *schedule,
                    char *err)
{
    *out = NULL;
    pipe_stage *p = calloc(1, sizeof *p);
    if (!p) return errf(err, "out of memory");
    p->g.stage_comm = p->g.replica_comm = MPI_COMM_NULL;
    double unit[PIPE_UNITS] = {1, 1, 1, 1, 1, 1};
    int rc = pipe_split_make(&p->sp, stages, split, unit, err);
    if (pipe_own_open_grid(&p->g, &p->kind, p->split_spec, sizeof p->split_spec, world, stages, split, schedule,
                           rc, err)) {
        pipe_stage_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

int pipe_stage_data(const pipe_stage *p)
{
    return p->g.data;
}

int pipe_stage_replica(const pipe_stage *p)
{
    return p->g.replica;
}

/* Ownership of every tensor by stage; this stage's parameter tensors, their ranges per unit (in
 * the packed layout: this stage's parameters in table order) and the packed offsets final after
 * each unit's backward. */
static int own_tensors(pipe_stage *p, char *err)
{
    int nt = model3d_n_tensors(p->m), nb = model3d_n_buffer_tensors(p->m);
    if (pipe_own_tensors_alloc(&p->own_t, nt, err)) return -1;
    range_list *own = &p->own_p[p->g.stage];
    long next = 0; /* the table is contiguous: a range's tensors are neighbours in the packing too */
    for (int i = 0; i < nt; i++) {
        const model3d_tensor *T = model3d_get_tensor(p->m, i);
        int u = pipe_unit_of_tensor(T->name);
        if (pipe_split_stage_of(&p->sp, u) < 0) return errf(err, "pipeline: tensor %s belongs to no unit", T->name);
        if (T->offset != next) return errf(err, "pipeline: the parameter table is not contiguous at %s", T->name);
        next = T->offset + T->count;
        int n_before = own->n;
        int s = pipe_own_tensor(p->own_p, &p->sp, u, T, "tensor", err);
        if (s < 0) return -1;
        if (s != p->g.stage) continue;
        long at = own->total - T->count; /* T's packed offset */
        range_list *ul = &p->unit_p[u];
        int n_unit = ul->n;
        if (pipe_range_add(ul, T->offset, T->count)) return errf(err, "out of memory");
        if (ul->n > n_unit) ul->r[n_unit].at = at; /* a new range of the unit */
        for (int v = u + 1; v < PIPE_UNITS; v++)
            if (p->final_lo[v] < at + T->count) p->final_lo[v] = at + T->count;
        pipe_own_tensors_note(&p->own_t, own, n_before, T);
    }
    pipe_own_tensors_end(&p->own_t, own);
    p->n_own_p = own->total;
    for (int i = 0; i < nb; i++) {
        const model3d_tensor *T = model3d_get_buffer_tensor(p->m, i);
        if (pipe_own_tensor(p->own_b, &p->sp, pipe_unit_of_tensor(T->name), T, "buffer", err) < 0) return -1;
    }
    p->n_own_b = p->own_b[p->g.stage].total;
    return 0;
}

int pipe_stage_bind(pipe_stage *p, model3d *m, long micro, long M, char *err)
{
    p->m = m;
    p->M = M;
    const model3d_config *c = model3d_get_config(m);
    double flops[PIPE_UNITS];
    pipe_unit_flops(c, flops);
    if (pipe_split_make(&p->sp, p->g.stages, p->split_spec, flops, err)) return -1;
    p->lo = p->sp.first[p->g.stage];
    p->hi = p->sp.first[p->g.stage + 1];
    char desc[512];
    pipe_split_describe(&p->sp, flops, desc, sizeof desc);
    log_info("pretrain: pipeline of %d stages x %d replicas, %s schedule; %s", p->g.stages, p->g.data,
             pipe_schedule_name(p->kind), desc);
    if (own_tensors(p, err)) return -1;
    long in_n = p->lo > 0 ? pipe_msg_floats(c, micro, p->lo, 0) : 0;
    long out_n = p->hi < PIPE_UNITS ? pipe_msg_floats(c, micro, p->hi, 0) : 0;
    if (pipe_run_open(&p->run, p->g.replica_comm, p->g.stages, p->g.stage, p->kind, M, in_n, out_n, err))
        return -1;
    p->nslots = pipe_run_slots(p->run);
    p->direct = M == 1 && p->g.data == 1;
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    if (!p->slots) return errf(err, "out of memory");
    for (long i = 0; i < p->nslots; i++) arena_init(&p->slots[i].a, (size_t)16 << 20);
    arena_init(&p->bwd, (size_t)16 << 20);
    arena_init(&p->scratch, (size_t)16 << 20);
    return 0;
}

long pipe_stage_acc_len(const pipe_stage *p)
{
    return p->n_own_p + p->n_own_b + 3;
}

long pipe_stage_n_own(const pipe_stage *p)
{
    return p->n_own_p;
}

int pipe_stage_own(const pipe_stage *p, int buffers, const pipe_range **r)
{
    const range_list *l = buffers ? &p->own_b[p->g.stage] : &p->own_p[p->g.stage];
    *r = l->r;
    return l->n;
}

int pipe_stage_overlap(pipe_stage *p, double *acc, double bucket_mb, char *err)
{
    if (p->g.data < 2) return 0; /* one replica: nothing to sum */
    if (grad_overlap_init(&p->ov, acc, p->n_own_p, p->n_own_p + p->n_own_b, bucket_mb, p->g.stage_comm, err))
        return -1;
    p->overlap = 1;
    return 0;
}

int pipe_stage_overlapping(const pipe_stage *p)
{
    return p->overlap;
}

void pipe_stage_free(pipe_stage *p)
{
    if (!p) return;
    pipe_run_free(p->run);
    for (long i = 0; p->slots && i < p->nslots; i++) arena_free(&p->slots[i].a);
    arena_free(&p->bwd);
    arena_free(&p->scratch);
    for (int s = 0; s < PIPE_UNITS; s++) {
        pipe_range_list_free(&p->own_p[s]);
        pipe_range_list_free(&p->own_b[s]);
        pipe_range_list_free(&p->unit_p[s]);
    }
    free(p->slots);
    pipe_own_tensors_free(&p->own_t);
    grad_overlap_free(&p->ov);
    dist_grid_free(&p->g);
    free(p);
}

/* ---- the step ---- */

static m3_run slot_run(pipe_stage *p, slot *s, char *err)
{
    model3d *m = p->m;
    m3_store_bf16_refresh(&m->st); /* NN_BF16: the copy of this step's parameters (once per step) */
    return (m3_run){.c = &m->st.cache, .a = &s->a, .P = m->st.params, .G = m->st.grads,
                    .buf = m->st.buffers, .train = 1, .err = err, .recompute = m->st.recompute,
                    .scratch = m->st.recompute ? &p->scratch : NULL};
}

/* pipe_run callback: micro-batch j filled, its tokenizer and mask (before the message). */
static int prepare(void *ctx, long j, long si, char *err)
{
    pipe_stage *p = ctx;
    slot *s = &p->slots[si];
    arena_reset(&s->a);
    m3_run r = slot_run(p, s, err);
    double t0 = MPI_Wtime();
    int rc = p->fill(p->fill_ctx, j, &s->b, err);
    p->tm->data += MPI_Wtime() - t0;
    return rc ? -1 : pipe_units_prepare(&r, p->m, &s->u, &s->b);
}

/* pipe_run callback: the forward of micro-batch j through this stage's units. */
static int forward(void *ctx, long j, long si, float *in, float *out, char *err)
{
    (void)j;
    pipe_stage *p = ctx;
    slot *s = &p->slots[si];
    const model3d_config *c = model3d_get_config(p->m);
    m3_run r = slot_run(p, s, err);
    if (in) pipe_msg_attach(c, &s->u, p->lo, 0, in);
    for (int u = p->lo; u < p->hi; u++)
        if (pipe_units_forward(&r, p->m, &s->u, u, &s->b)) return -1;
    if (out) {
        pipe_msg_pack(c, &s->u, p->hi, 0, out);
    } else {
        double *lacc = p->acc + p->n_own_p + p->n_own_b;
        lacc[0] += (double)(float)s->u.loss.loss * p->inv;
        lacc[1] += (double)(float)s->u.loss.loss_3d * p->inv;
        lacc[2] += (double)(float)s->u.loss.loss_2d * p->inv;
    }
    return 0;
}

/* Unit u's parameter gradients times inv added to the packed acc. */
static void accumulate(const pipe_stage *p, int u, double inv, double *acc)
{
    const float *g = p->m->st.grads;
    const range_list *l = &p->unit_p[u];
    for (int k = 0; k < l->n; k++) {
        const float *gk = g + l->r[k].off;
        double *ak = acc + l->r[k].at;
        long n = l->r[k].count;
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) ak[i] += (double)gk[i] * inv;
    }
}

/* pipe_run callback: the backward of micro-batch j through this stage's units. */
static int backward(void *ctx, long j, long si, float *in, float *out, char *err)
{
    (void)j;
    pipe_stage *p = ctx;
    slot *s = &p->slots[si];
    const model3d_config *c = model3d_get_config(p->m);
    int ready = p->overlap && j == p->M - 1;
    m3_run r = slot_run(p, s, err);
    /* The backward allocates only what dies with it (the gradients of the activations, its
     * temporaries): with several micro-batches in flight, in one arena shared by them, so each
     * slot keeps only its forward's state and temporaries, not its own copy of the backward's
     * peak too. With one slot the backward stays in its arena, reusing the forward temporaries'
     * pages (a separate arena would hold both: +152 MiB on the embed0 stage at the bench's sizes). */
    if (p->nslots > 1) {
        arena_reset(&p->bwd);
        r.a = &p->bwd;
    }
    float *g = p->m->st.grads;
    const range_list *own = &p->own_p[p->g.stage];
    pipe_ranges_zero(g, own);
    if (pipe_units_backward_begin(&r, p->m, &s->u, p->lo, p->hi)) return -1;
    if (in) pipe_msg_attach(c, &s->u, p->hi, 1, in);
    for (int u = p->hi - 1; u >= p->lo; u--) {
        if (pipe_units_backward(&r, p->m, &s->u, u)) return -1;
        if (!p->direct) accumulate(p, u, p->inv, p->acc);
        if (ready) grad_overlap_ready(&p->ov, p->final_lo[u]);
    }
    if (out) pipe_msg_pack(c, &s->u, p->lo, 1, out);
    return 0;
}

int pipe_stage_step(pipe_stage *p, pipe_fill_fn fill, void *ctx, double inv_micro, double *acc,
                    pipe_times *tm, char *err)
{
    long skip = p->direct ? p->n_own_p : 0; /* direct: the gradients stay in the model's array */
    memset(acc + skip, 0, sizeof(double) * (size_t)(pipe_stage_acc_len(p) - skip));
    p->comm0 = p->ov.comm_s;
    p->fill = fill;
    p->fill_ctx = ctx;
    p->inv = inv_micro;
    p->acc = acc;
    p->tm = tm;
    double data0 = tm->data;
    pipe_run_times rt = {0};
    pipe_run_fns fns = {prepare, forward, backward};
    int rc = pipe_run_step(p->run, &fns, p, &rt, err);
    tm->wait += rt.wait;
    /* the overlapped reduction's MPI calls inside the backward count in pipe_stage_reduce */
    tm->compute += rt.compute - (tm->data - data0) - (p->ov.comm_s - p->comm0);
    const float *buf = model3d_buffers(p->m);
    const range_list *ob = &p->own_b[p->g.stage];
    for (int k = 0; k < ob->n; k++)
        for (long i = 0; i < ob->r[k].count; i++)
            acc[p->n_own_p + ob->r[k].at + i] = (double)buf[ob->r[k].off + i] / p->g.data;
    if (p->overlap) grad_overlap_start_tail(&p->ov, rc != 0); /* a failed step still starts every bucket */
    return rc ? -1 : 0;
    return 0;
}

int pipe_stage_reduce(pipe_stage *p, double *acc, double *seconds, char *err)
{
    long n = p->n_own_p + p->n_own_b;
    int rc = 0;
    if (p->overlap) {
        rc = grad_overlap_wait(&p->ov, err);
        *seconds += p->ov.comm_s - p->comm0;
    } else if (p->g.data > 1) {
        rc = grad_allreduce(acc, n, p->g.stage_comm, seconds, err);
    }
    double t0 = MPI_Wtime();
    int lrc = MPI_Allreduce(MPI_IN_PLACE, acc + n, 3, MPI_DOUBLE, MPI_SUM, p->g.world);
    *seconds += MPI_Wtime() - t0;
    if (rc) return -1;
    return lrc ? errf(err, "pipeline: MPI_Allreduce of the losses failed") : 0;
}

void pipe_stage_update(pipe_stage *p, adamw_state *opt, const adamw_config *c, double lr, const double *acc)
{
    float *grad = model3d_grads(p->m), *bufs = model3d_buffers(p->m), *params = model3d_params(p->m);
    const range_list *op = &p->own_p[p->g.stage], *ob = &p->own_b[p->g.stage];
    if (!p->direct) pipe_ranges_unpack(grad, acc, op); /* direct: grad holds them already */
    pipe_ranges_unpack(bufs, acc + p->n_own_p, ob);
    /* the moments are packed (opt holds this stage's n_own_p) */
    pipe_own_adamw(opt, c, lr, params, grad, op, &p->own_t);
}

int pipe_stage_sync(pipe_stage *p, char *err)
{
    float *params = model3d_params(p->m), *bufs = model3d_buffers(p->m);
    int rc = pipe_own_bcast(params, p->own_p, p->g.stages, p->g.replica_comm);
    if (!rc) rc = pipe_own_bcast(bufs, p->own_b, p->g.stages, p->g.replica_comm);
    return rc ? errf(err, "pipeline: MPI_Bcast failed") : 0;
}

void pipe_stage_drop_others(pipe_stage *p)
{
    long page = sysconf(_SC_PAGESIZE);
    float *params = model3d_params(p->m);
    for (int s = 0; s < p->g.stages; s++) {
        if (s == p->g.stage) continue;
        const range_list *l = &p->own_p[s];
        for (int k = 0; k < l->n; k++) {
            uintptr_t lo = (uintptr_t)(params + l->r[k].off), hi = (uintptr_t)(params + l->r[k].off + l->r[k].count);
            lo = (lo + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page; /* whole pages inside only */
            hi = hi / (uintptr_t)page * (uintptr_t)page;
            if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
    }
}
