/* pipe_step.c -- one pipeline stage of pre-training: ownership of tensors, the step's schedule with
 * non-blocking messages, the reduction, the update and the synchronisation (see pipe_step.h). */
#include "pipe_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "errors.h"
#include "log.h"
#include "pipe_schedule.h"
#include "pipe_split.h"
#include "pipe_units.h"

typedef struct {
    long off, count;
} range;

typedef struct {
    range *r;
    int n;
} range_list;

typedef struct {
    arena a;                   /* the micro-batch's saved activations and gradients */
    pipe_units u;
    int ok;                    /* its forward ran */
    float *fin, *fout, *bin, *bout; /* messages: forward in (from stage-1), out; backward in, out */
    MPI_Request rq_fin, rq_fout, rq_bin, rq_bout;
} slot;

struct pipe_stage {
    dist_grid g;
    int kind;
    char split_spec[256];
    pipe_split sp;
    int lo, hi;                /* this stage's units */
    model3d *m;
    long M, nslots;
    pipe_op *ops;
    slot *slots;
    long fin_n, fout_n;        /* message floats at boundaries lo and hi */
    range_list own_p[PIPE_UNITS], own_b[PIPE_UNITS]; /* per stage: parameter / buffer ranges */
    model3d_tensor *own_t;     /* this stage's parameter tensors */
    int n_own_t;
    double *red;               /* this stage's entries, packed for the reduction */
    long n_red;
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
    p->kind = pipe_schedule_parse(schedule);
    if (!rc && p->kind < 0) rc = errf(err, "--pipe-schedule %s: must be gpipe or 1f1b", schedule);
    if (!rc && split && strlen(split) >= sizeof p->split_spec) rc = errf(err, "--stage-split: too long");
    snprintf(p->split_spec, sizeof p->split_spec, "%s", split ? split : "");
    /* the checks above give every rank the same answer; the grid checks the world size */
    if (!rc) rc = dist_grid_create(&p->g, world, stages, err);
    if (dist_any_error(world, rc, err)) {
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

static int range_add(range_list *l, long off, long count)
{
    if (l->n && l->r[l->n - 1].off + l->r[l->n - 1].count == off) {
        l->r[l->n - 1].count += count;
        return 0;
    }
    range *r = realloc(l->r, sizeof *r * (size_t)(l->n + 1));
    if (!r) return -1;
    l->r = r;
    l->r[l->n++] = (range){off, count};
    return 0;
}

/* The stage holding unit u. */
static int stage_of_unit(const pipe_split *sp, int u)
{
    for (int s = 0; s < sp->stages; s++)
        if (u >= sp->first[s] && u < sp->first[s + 1]) return s;
    return -1;
}

/* Ownership of every tensor by stage; this stage's parameter tensors. */
static int own_tensors(pipe_stage *p, char *err)
{
    int nt = model3d_n_tensors(p->m), nb = model3d_n_buffer_tensors(p->m);
    p->own_t = calloc((size_t)nt, sizeof *p->own_t);
    if (!p->own_t) return errf(err, "out of memory");
    for (int i = 0; i < nt; i++) {
        const model3d_tensor *T = model3d_get_tensor(p->m, i);
        int s = stage_of_unit(&p->sp, pipe_unit_of_tensor(T->name));
        if (s < 0) return errf(err, "pipeline: tensor %s belongs to no unit", T->name);
        if (range_add(&p->own_p[s], T->offset, T->count)) return errf(err, "out of memory");
        if (s == p->g.stage) p->own_t[p->n_own_t++] = *T;
    }
    for (int i = 0; i < nb; i++) {
        const model3d_tensor *T = model3d_get_buffer_tensor(p->m, i);
        int s = stage_of_unit(&p->sp, pipe_unit_of_tensor(T->name));
        if (s < 0) return errf(err, "pipeline: buffer %s belongs to no unit", T->name);
        if (range_add(&p->own_b[s], T->offset, T->count)) return errf(err, "out of memory");
    }
    return 0;
}

static float *msg_alloc(long n)
{
    return n > 0 ? aligned_alloc(64, sizeof(float) * (size_t)((n + 15) / 16 * 16)) : NULL;
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
    p->ops = calloc((size_t)(2 * M), sizeof *p->ops);
    if (!p->ops) return errf(err, "out of memory");
    p->nslots = pipe_schedule_make(p->kind, p->g.stages, p->g.stage, M, p->ops);
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    if (!p->slots) return errf(err, "out of memory");
    p->fin_n = p->lo > 0 ? pipe_msg_floats(c, micro, p->lo, 0) : 0;
    p->fout_n = p->hi < PIPE_UNITS ? pipe_msg_floats(c, micro, p->hi, 0) : 0;
    for (long i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        arena_init(&s->a, (size_t)16 << 20);
        s->rq_fin = s->rq_fout = s->rq_bin = s->rq_bout = MPI_REQUEST_NULL;
        /* a backward message has the size of the forward one at the same boundary */
        s->fin = msg_alloc(p->fin_n);
        s->bout = msg_alloc(p->fin_n);
        s->fout = msg_alloc(p->fout_n);
        s->bin = msg_alloc(p->fout_n);
        if ((p->fin_n && (!s->fin || !s->bout)) || (p->fout_n && (!s->fout || !s->bin)))
            return errf(err, "out of memory for pipeline messages");
    }
    long n_red = 0;
    for (int k = 0; k < p->own_p[p->g.stage].n; k++) n_red += p->own_p[p->g.stage].r[k].count;
    for (int k = 0; k < p->own_b[p->g.stage].n; k++) n_red += p->own_b[p->g.stage].r[k].count;
    p->n_red = n_red;
    p->red = malloc(sizeof(double) * (size_t)(n_red + 1));
    if (!p->red) return errf(err, "out of memory");
    return 0;
}

void pipe_stage_free(pipe_stage *p)
{
    if (!p) return;
    for (long i = 0; p->slots && i < p->nslots; i++) {
        slot *s = &p->slots[i];
        MPI_Request rq[4] = {s->rq_fin, s->rq_fout, s->rq_bin, s->rq_bout};
        for (int k = 0; k < 4; k++)
            if (rq[k] != MPI_REQUEST_NULL) {
                MPI_Cancel(&rq[k]);
                MPI_Request_free(&rq[k]);
            }
        arena_free(&s->a);
        free(s->fin);
        free(s->fout);
        free(s->bin);
        free(s->bout);
    }
    for (int s = 0; s < PIPE_UNITS; s++) {
        free(p->own_p[s].r);
        free(p->own_b[s].r);
    }
    free(p->slots);
    free(p->ops);
    free(p->own_t);
    free(p->red);
    dist_grid_free(&p->g);
    free(p);
}

/* ---- the step ---- */

static double wait_timed(MPI_Request *rq)
{
    double t0 = MPI_Wtime();
    MPI_Wait(rq, MPI_STATUS_IGNORE);
    return MPI_Wtime() - t0;
}

static m3_run slot_run(pipe_stage *p, slot *s, char *err)
{
    model3d *m = p->m;
    m3_store_bf16_refresh(&m->st); /* NN_BF16: the copy of this step's parameters (once per step) */
    return (m3_run){.c = &m->st.cache, .a = &s->a, .P = m->st.params, .G = m->st.grads,
                    .buf = m->st.buffers, .train = 1, .err = err};
}

/* Forward of micro-batch j; *ok cleared on a failure (the messages still go out). */
static void forward(pipe_stage *p, long j, pipe_fill_fn fill, void *ctx, double inv, double *acc,
                    pipe_times *tm, int *ok, char *err)
{
    slot *s = &p->slots[j % p->nslots];
    const model3d_config *c = model3d_get_config(p->m);
    MPI_Comm comm = p->g.replica_comm;
    int stage = p->g.stage;
    arena_reset(&s->a);
    m3_run r = slot_run(p, s, err);
    model3d_batch b;
    double t0 = MPI_Wtime();
    s->ok = *ok && !fill(ctx, j, &b, err);
    double t1 = MPI_Wtime();
    tm->data += t1 - t0;
    if (s->ok) s->ok = !pipe_units_prepare(&r, p->m, &s->u, &b);
    if (p->lo > 0) {
        double t2 = MPI_Wtime();
        tm->wait += wait_timed(&s->rq_fin);
        t1 += MPI_Wtime() - t2;
        if (s->ok) pipe_msg_attach(c, &s->u, p->lo, 0, s->fin);
    }
    for (int u = p->lo; u < p->hi && s->ok; u++) s->ok = !pipe_units_forward(&r, p->m, &s->u, u, &b);
    if (p->hi < PIPE_UNITS) {
        double t2 = MPI_Wtime();
        tm->wait += wait_timed(&s->rq_fout);
        t1 += MPI_Wtime() - t2;
        if (s->ok) pipe_msg_pack(c, &s->u, p->hi, 0, s->fout);
        else memset(s->fout, 0, sizeof(float) * (size_t)p->fout_n);
        MPI_Isend(s->fout, (int)p->fout_n, MPI_FLOAT, stage + 1, (int)(2 * j), comm, &s->rq_fout);
        MPI_Irecv(s->bin, (int)p->fout_n, MPI_FLOAT, stage + 1, (int)(2 * j + 1), comm, &s->rq_bin);
    } else if (s->ok) {
        double *lacc = acc + model3d_n_params(p->m) + model3d_n_buffers(p->m);
        lacc[0] += (double)(float)s->u.loss.loss * inv;
        lacc[1] += (double)(float)s->u.loss.loss_3d * inv;
        lacc[2] += (double)(float)s->u.loss.loss_2d * inv;
    }
    tm->compute += MPI_Wtime() - t1;
    *ok = s->ok;
}

/* Backward of micro-batch j; then its slot takes micro-batch j + nslots's forward message. */
static void backward(pipe_stage *p, long j, double inv, double *acc, pipe_times *tm, int *ok, char *err)
{
    slot *s = &p->slots[j % p->nslots];
    const model3d_config *c = model3d_get_config(p->m);
    MPI_Comm comm = p->g.replica_comm;
    int stage = p->g.stage;
    double t1 = MPI_Wtime();
    m3_run r = slot_run(p, s, err);
    float *g = p->m->st.grads;
    const range_list *own = &p->own_p[stage];
    for (int k = 0; k < own->n; k++) memset(g + own->r[k].off, 0, sizeof(float) * (size_t)own->r[k].count);
    int good = *ok && s->ok && !pipe_units_backward_begin(&r, p->m, &s->u, p->lo, p->hi);
    if (p->hi < PIPE_UNITS) {
        double t2 = MPI_Wtime();
        tm->wait += wait_timed(&s->rq_bin);
        t1 += MPI_Wtime() - t2;
        if (good) pipe_msg_attach(c, &s->u, p->hi, 1, s->bin);
    }
    for (int u = p->hi - 1; u >= p->lo && good; u--) good = !pipe_units_backward(&r, p->m, &s->u, u);
    if (p->lo > 0) {
        double t2 = MPI_Wtime();
        tm->wait += wait_timed(&s->rq_bout);
        t1 += MPI_Wtime() - t2;
        if (good) pipe_msg_pack(c, &s->u, p->lo, 1, s->bout);
        else memset(s->bout, 0, sizeof(float) * (size_t)p->fin_n);
        MPI_Isend(s->bout, (int)p->fin_n, MPI_FLOAT, stage - 1, (int)(2 * j + 1), comm, &s->rq_bout);
        long next = j + p->nslots;
        if (next < p->M)
            MPI_Irecv(s->fin, (int)p->fin_n, MPI_FLOAT, stage - 1, (int)(2 * next), comm, &s->rq_fin);
    }
    if (good)
        for (int k = 0; k < own->n; k++) {
            long lo = own->r[k].off, hi = lo + own->r[k].count;
#pragma omp parallel for schedule(static)
            for (long i = lo; i < hi; i++) acc[i] += (double)g[i] * inv;
        }
    tm->compute += MPI_Wtime() - t1;
    *ok = good;
}

int pipe_stage_step(pipe_stage *p, pipe_fill_fn fill, void *ctx, double inv_micro, double *acc,
                    pipe_times *tm, char *err)
{
    long np = model3d_n_params(p->m), nb = model3d_n_buffers(p->m);
    memset(acc, 0, sizeof(double) * (size_t)(np + nb + 3));
    if (p->lo > 0)
        for (long j = 0; j < p->nslots && j < p->M; j++)
            MPI_Irecv(p->slots[j].fin, (int)p->fin_n, MPI_FLOAT, p->g.stage - 1, (int)(2 * j), p->g.replica_comm,
                      &p->slots[j].rq_fin);
    int ok = 1;
    char first_err[I2P_ERR_LEN] = "";
    for (long i = 0; i < 2 * p->M; i++) {
        int was_ok = ok;
        if (p->ops[i].op == 'F') forward(p, p->ops[i].micro, fill, ctx, inv_micro, acc, tm, &ok, err);
        else backward(p, p->ops[i].micro, inv_micro, acc, tm, &ok, err);
        if (was_ok && !ok) memcpy(first_err, err, I2P_ERR_LEN);
    }
    for (long i = 0; i < p->nslots; i++) {
        tm->wait += wait_timed(&p->slots[i].rq_fout);
        tm->wait += wait_timed(&p->slots[i].rq_bout);
    }
    if (!ok) {
        memcpy(err, first_err, I2P_ERR_LEN);
        return -1;
    }
    const float *buf = model3d_buffers(p->m);
    const range_list *ob = &p->own_b[p->g.stage];
    for (int k = 0; k < ob->n; k++)
        for (long i = ob->r[k].off; i < ob->r[k].off + ob->r[k].count; i++)
            acc[np + i] = (double)buf[i] / p->g.data;
    return 0;
}

/* Copies this stage's entries of acc into p->red (dir 0) or back (dir 1). */
static void pack_own(pipe_stage *p, double *acc, int dir)
{
    long np = model3d_n_params(p->m), n = 0;
    const range_list *lists[2] = {&p->own_p[p->g.stage], &p->own_b[p->g.stage]};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < lists[l]->n; k++) {
            double *a = acc + (l ? np : 0) + lists[l]->r[k].off;
            size_t bytes = sizeof(double) * (size_t)lists[l]->r[k].count;
            if (dir) memcpy(a, p->red + n, bytes);
            else memcpy(p->red + n, a, bytes);
            n += lists[l]->r[k].count;
        }
}

int pipe_stage_reduce(pipe_stage *p, double *acc, double *seconds, char *err)
{
    double t0 = MPI_Wtime();
    long nl = model3d_n_params(p->m) + model3d_n_buffers(p->m);
    int rc = 0;
    if (p->g.data > 1) {
        pack_own(p, acc, 0);
        rc = MPI_Allreduce(MPI_IN_PLACE, p->red, (int)p->n_red, MPI_DOUBLE, MPI_SUM, p->g.stage_comm);
        pack_own(p, acc, 1);
    }
    if (!rc) rc = MPI_Allreduce(MPI_IN_PLACE, acc + nl, 3, MPI_DOUBLE, MPI_SUM, p->g.world);
    *seconds += MPI_Wtime() - t0;
    return rc ? errf(err, "pipeline: MPI_Allreduce failed") : 0;
}

void pipe_stage_update(pipe_stage *p, adamw_state *opt, const adamw_config *c, double lr, const double *acc)
{
    float *grad = model3d_grads(p->m), *bufs = model3d_buffers(p->m);
    long np = model3d_n_params(p->m);
    const range_list *op = &p->own_p[p->g.stage], *ob = &p->own_b[p->g.stage];
    for (int k = 0; k < op->n; k++)
        for (long i = op->r[k].off; i < op->r[k].off + op->r[k].count; i++) grad[i] = (float)acc[i];
    for (int k = 0; k < ob->n; k++)
        for (long i = ob->r[k].off; i < ob->r[k].off + ob->r[k].count; i++) bufs[i] = (float)acc[np + i];
    adamw_step(opt, c, lr, model3d_params(p->m), grad, p->own_t, p->n_own_t);
}

int pipe_stage_sync(pipe_stage *p, adamw_state *opt, char *err)
{
    float *arrays[3] = {model3d_params(p->m), opt->m, opt->v}, *bufs = model3d_buffers(p->m);
    int rc = 0;
    for (int s = 0; s < p->g.stages && !rc; s++) {
        for (int a = 0; a < 3 && !rc; a++)
            for (int k = 0; k < p->own_p[s].n && !rc; k++)
                rc = MPI_Bcast(arrays[a] + p->own_p[s].r[k].off, (int)p->own_p[s].r[k].count, MPI_FLOAT, s,
                               p->g.replica_comm);
        for (int k = 0; k < p->own_b[s].n && !rc; k++)
            rc = MPI_Bcast(bufs + p->own_b[s].r[k].off, (int)p->own_b[s].r[k].count, MPI_FLOAT, s,
                           p->g.replica_comm);
    }
    return rc ? errf(err, "pipeline: MPI_Bcast failed") : 0;
}
