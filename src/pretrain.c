/* pretrain.c -- the data-parallel pre-training loop: run directory, resume, steps, checkpoints
 * (see pretrain.h). */
#include "preempt.h"
#include "pretrain.h"
#include "run_lock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dist.h"
#include "errors.h"
#include "grad_allreduce.h"
#include "log.h"
#include "mask.h"
#include "mem_peak.h"
#include "paths.h"
#include "train_common.h"
#include "train_log.h"
#include "model_opts.h"
#include "optim.h"
#include "pipe_step.h"
#include "pretrain_data.h"
#include "pretrain_init.h"
#include "svm_monitor.h"
#include "version.h"

typedef struct {
    MPI_Comm comm;
    int rank, size;
    run_lock lock; /* rank 0: RUNDIR/lock, held for the run */
    step_layout L;
    dnn_ctx ctx;
    model3d *m;
    pretrain_data pd;
    adamw_state opt;         /* AdamW moments and step count (optim.h) */
    adamw_config opt_cfg;
    cosine_schedule sched;
    int64_t *perm;
    long perm_epoch;
    double *acc;             /* [grads | buffers | loss, loss_3d, loss_2d], summed in double so the
                                sum (exact for all but extreme exponent spreads) does not depend on
                                the order the ranks' shares are added in; --stages: the stage's own
                                entries only (pipe_stage_acc_len) */
    long n_params, n_buffers, n_acc;
    char *config_json;
    char *tensor_table;
    train_log log;
    int log_open;
    svm_monitor svm;         /* --svm-every (svm_monitor.h) */
    pipe_stage *pipe;        /* --stages > 1: this rank's pipeline stage (pipe_step.h); NULL: data parallel */
    pipe_own_slices slices;  /* --stages: this stage's slices of the checkpoint arrays */
    grad_overlap ov;         /* --overlap-allreduce 1: the bucketed reduction (grad_allreduce.h) */
    int overlap;
    int overlap_ran;         /* the overlapped reduction, data parallel or the stages' (JSON) */
} trainer;

/* ---- configuration and run directory ---- */

/* What a resumed run must share with the checkpoint: everything the losses depend on (not where
 * the run stops: --epochs and --steps may change). */
static char *make_config_json(const pretrain_args *a, const trainer *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "model", model3d_config_to_json(&t->pd.cfg));
    cJSON *tr = cJSON_AddObjectToObject(j, "train");
    cJSON_AddNumberToObject(tr, "seed", (double)a->seed);
    cJSON_AddNumberToObject(tr, "batch", (double)t->L.batch);
    cJSON_AddNumberToObject(tr, "micro_batch", (double)t->L.micro);
    cJSON_AddNumberToObject(tr, "sched_epochs", (double)a->sched_epochs);
    cJSON_AddNumberToObject(tr, "warmup_epochs", (double)a->warmup_epochs);
    cJSON_AddNumberToObject(tr, "lr", a->lr);
    cJSON_AddNumberToObject(tr, "min_lr", a->min_lr);
    cJSON_AddNumberToObject(tr, "warmup_lr", a->warmup_lr);
    cJSON_AddNumberToObject(tr, "weight_decay", a->weight_decay);
    cJSON_AddStringToObject(tr, "precision", nn_precision_name(a->precision));
    cJSON *ob = cJSON_AddObjectToObject(j, "objective");
    cJSON_AddStringToObject(ob, "masking", a->random_masking ? "random" : "2d-guided");
    cJSON_AddNumberToObject(ob, "loss_3d_weight", a->loss_3d_weight);
    cJSON_AddNumberToObject(ob, "loss_2d_weight", a->loss_2d_weight);
    cJSON_AddStringToObject(ob, "targets", t->pd.need & PD_TARGETS ? a->targets : "none");
    cJSON_AddNumberToObject(ob, "visible", mask_n_visible(&t->pd.cfg));
    cJSON_AddItemToObject(j, "data", pretrain_data_identity(&t->pd));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* ---- checkpoints ---- */

static int fill_arrays(trainer *t, ckpt_array *arr)
{
    arr[0] = (ckpt_array){"/params", CKPT_F32, model3d_params(t->m), t->n_params};
    arr[1] = (ckpt_array){"/adamw/m", CKPT_F32, t->opt.m, t->n_params};
    arr[2] = (ckpt_array){"/adamw/v", CKPT_F32, t->opt.v, t->n_params};
    arr[3] = (ckpt_array){"/buffers", CKPT_F32, model3d_buffers(t->m), t->n_buffers};
    arr[4] = (ckpt_array){"/data_order/perm", CKPT_I64, t->perm, t->L.n};
    return 5;
}

/* --stages: the checkpoint arrays are held in slices, each stage its own tensors' (the moments
 * packed, the parameters and buffers at their offsets); replica 0 writes them, every rank reads
 * its own moments and the whole parameters and buffers (which every rank holds). */
static int make_parts(trainer *t, char *err)
{
    const pipe_range *rp, *rb;
    int np = pipe_stage_own(t->pipe, 0, &rp), nb = pipe_stage_own(t->pipe, 1, &rb);
    return pipe_own_slices_make(&t->slices, rp, np, rb, nb, err);
}

/* The parts of fill_arrays' arrays for writing (write 1) or reading: NULL without --stages. */
static const ckpt_part *array_parts(trainer *t, int write, ckpt_part *out)
{
    if (!t->pipe) return NULL;
    memset(out, 0, sizeof *out * 6);
    ckpt_part pmb[3]; /* parameters, moments, buffers */
    pipe_own_parts(&t->slices, write, pipe_stage_replica(t->pipe) == 0, pmb);
    out[0] = pmb[0];
    out[1] = out[2] = pmb[1];
    out[3] = pmb[2];
    return out;
}

/* Makes t->perm the order of `epoch`. */
static int save_checkpoint(trainer *t, const pretrain_args *a, long step, pretrain_result *r,
                           char *err)
{
    double t0 = now_s();
    long epoch, pos;
    step_position(&t->L, step, &epoch, &pos);
    train_perm_ensure(t->perm, &t->perm_epoch, a->seed, epoch, t->L.n);
    ckpt_state st = {.step = step, .epoch = epoch, .epoch_pos = pos, .seed = a->seed};
    ckpt_array arr[6];
    int n = fill_arrays(t, arr);
    n += svm_monitor_ckpt_array(&t->svm, arr + n);
    char path[I2P_PATH_LEN];
    ckpt_path(path, sizeof path, a->rundir, step);
    ckpt_part parts[6];
    if (ckpt_write_parts(path, t->comm, &st, t->config_json, t->tensor_table, arr, array_parts(t, 1, parts), n, err))
        return -1;
    if (ckpt_prune(a->rundir, t->comm, (int)a->keep, err)) return -1;
    snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", path);
    r->seconds_checkpoint += now_s() - t0;
    log_info("pretrain: checkpoint %s (step %ld, epoch %ld)", path, step, epoch);
    return 0;
}

typedef struct {
    trainer *t;
    const pretrain_args *a;
    long step; /* the step reached, once loaded */
} resume_ctx;

/* ckpt_load_fn: the arrays of path, and a data order that matches this configuration's. */
static int resume_load(void *ctx, const char *path, const ckpt_state *hdr, char *err)
{
    resume_ctx *rc = ctx;
    trainer *t = rc->t;
    ckpt_state st = *hdr;
    ckpt_array arr[5];
    int na = fill_arrays(t, arr);
    arr[4].data = malloc(sizeof(int64_t) * (size_t)t->L.n); /* stored order, checked below */
    ckpt_part parts[6];
    int lrc = arr[4].data ? ckpt_read_parts(path, t->comm, &st, NULL, arr, array_parts(t, 0, parts), na, err)
                          : errf(err, "out of memory");
    if (!lrc) {
        long epoch, pos;
        step_position(&t->L, st.step, &epoch, &pos);
        train_perm_ensure(t->perm, &t->perm_epoch, rc->a->seed, epoch, t->L.n);
        if (epoch != st.epoch || pos != st.epoch_pos ||
            memcmp(arr[4].data, t->perm, sizeof(int64_t) * (size_t)t->L.n))
            lrc = errf(err, "%s: its data order (epoch %ld, position %ld) is not the one this "
                       "configuration gives at step %ld", path, st.epoch, st.epoch_pos, st.step);
    }
    free(arr[4].data);
    if (!lrc) lrc = svm_monitor_restore(&t->svm, path, t->comm, err);
    if (!lrc) {
        rc->step = st.step;
        t->opt.step = st.step; /* AdamW's bias correction continues from here */
    }
    return lrc;
}

/* Loads the newest valid checkpoint of the run directory (ckpt_resume_newest); *step: the step
 * reached. */
static int resume_latest(trainer *t, const pretrain_args *a, pretrain_result *r, long *step,
                         char *err)
{
    resume_ctx ctx = {t, a, 0};
    if (ckpt_resume_newest(a->rundir, t->comm, t->config_json, "pretrain", resume_load, &ctx,
                           r->last_checkpoint, sizeof r->last_checkpoint, err))
        return -1;
    *step = ctx.step;
    return 0;
}

/* ---- one step ---- */

/* Forward/backward of one micro-batch, its gradients times inv added to t->acc: while the backward
 * runs, with the bucketed reduction (last: this rank's last micro-batch of the step, whose buckets
 * start their sums), else after it. */
static int train_micro_batch(trainer *t, const model3d_batch *b, double inv, int last, model3d_losses *l,
                             char *err)
{
    const float *g = model3d_grads(t->m);
    if (t->overlap) {
        grad_overlap_begin(&t->ov, g, inv, last);
        if (model3d_train_step(t->m, b, l, err)) return -1;
        grad_overlap_end(&t->ov);
        return 0;
    }
    if (model3d_train_step(t->m, b, l, err)) return -1;
    double *acc = t->acc;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < t->n_params; i++) acc[i] += (double)g[i] * inv;
    return 0;
}

/* Forward/backward of this rank's micro-batches of `step`; fills t->acc (before the reduction). */
static int run_micro_batches(trainer *t, const pretrain_args *a, long step, pretrain_result *r,
                             char *err)
{
    train_step_samples at = train_step_samples_of(&t->L, t->perm, &t->perm_epoch, a->seed, step);
    memset(t->acc, 0, sizeof(double) * (size_t)t->n_acc);
    double inv = 1.0 / (double)t->L.micro_per_step;
    for (long j = 0; j < t->L.micro_per_rank; j++) {
        train_micro mb = train_micro_at(&at, t->rank, j);
        if (a->fault_fail_step == step + 1 && t->rank == t->size - 1)
            return errf(err, "step %ld: test fault on rank %d (I2PMAE_TEST_FAIL_STEP)", step + 1, t->rank);
        double t0 = now_s();
        model3d_batch b;
        if (pretrain_data_fill(&t->pd, mb.ids, t->L.micro, (uint64_t)a->seed, at.epoch, step, &b, err))
            return -1;
        b.drop_key = mb.drop_key;
        double t1 = now_s(), comm0 = t->ov.comm_s;
        model3d_losses l;
        if (train_micro_batch(t, &b, inv, j == t->L.micro_per_rank - 1, &l, err)) return -1;
        double *lacc = t->acc + t->n_acc - 3;
        lacc[0] += (double)(float)l.loss * inv;
        lacc[1] += (double)(float)l.loss_3d * inv;
        lacc[2] += (double)(float)l.loss_2d * inv;
        r->seconds_data += t1 - t0;
        r->seconds_compute += now_s() - t1 - (t->ov.comm_s - comm0); /* the reduction's MPI calls: comm */
    }
    const float *buf = model3d_buffers(t->m);
    for (long i = 0; i < t->n_buffers; i++) t->acc[t->n_params + i] = (double)buf[i] / t->size;
    if (a->fault_nan_step == step + 1 && t->rank == 0) t->acc[t->n_acc - 3] = NAN;
    return 0;
}

/* ---- one step on a pipeline stage (--stages > 1, pipe_step.h) ---- */

typedef struct {
    trainer *t;
    train_step_samples at;
} pipe_fill_ctx;

/* pipe_fill_fn: this replica's j-th micro-batch, as run_micro_batches fills it. */
static int pipe_fill(void *ctx, long j, model3d_batch *b, char *err)
{
    pipe_fill_ctx *c = ctx;
    trainer *t = c->t;
    train_micro mb = train_micro_at(&c->at, pipe_stage_replica(t->pipe), j);
    if (pretrain_data_fill(&t->pd, mb.ids, t->L.micro, (uint64_t)c->at.seed, c->at.epoch, c->at.step, b, err))
        return -1;
    b->drop_key = mb.drop_key;
    return 0;
}

static int run_pipe_step(trainer *t, const pretrain_args *a, long step, pretrain_result *r, char *err)
{
    pipe_fill_ctx c = {t, train_step_samples_of(&t->L, t->perm, &t->perm_epoch, a->seed, step)};
    pipe_times tm = {0};
    int rc = pipe_stage_step(t->pipe, pipe_fill, &c, 1.0 / (double)t->L.micro_per_step, t->acc, &tm, err);
    r->seconds_data += tm.data;
    r->seconds_compute += tm.compute;
    r->seconds_pipe_wait += tm.wait;
    if (a->fault_nan_step == step + 1 && t->rank == 0) t->acc[t->n_acc - 3] = NAN;
    return rc;
}

/* This rank's micro-batches of `step` and the sums of t->acc over the ranks: every rank learns any
 * rank's error (dist_any_error; the seconds it waits there are idle: the slowest rank's lead), and
 * every rank, failed or not, completes the same reductions so the collectives match. */
static int run_step_sums(trainer *t, const pretrain_args *a, long step, pretrain_result *r, char *err)
{
    double comm0 = t->ov.comm_s;
    int rc = run_micro_batches(t, a, step, r, err);
    if (t->overlap) grad_overlap_start_tail(&t->ov, rc != 0);
    double t0 = now_s();
    int bad = dist_any_error(t->comm, rc, err);
    r->idle_s += now_s() - t0;
    if (!t->overlap) return bad ? -1 : grad_allreduce(t->acc, t->n_acc, t->comm, &r->seconds_allreduce, err);
    char werr[I2P_ERR_LEN];
    int wrc = grad_overlap_wait(&t->ov, werr);
    r->seconds_allreduce += t->ov.comm_s - comm0;
    if (bad) return -1;
    return wrc ? errf(err, "%s", werr) : 0;
}

/* ---- set-up and the loop ---- */

int pretrain_needs_features(const pretrain_args *a)
{
    int need = a->random_masking ? 0 : PD_SALIENCY;
    if (a->loss_2d_weight > 0 && strcmp(a->targets, "none") != 0) need |= PD_TARGETS;
    return need;
}

/* How the steps run: --recompute, and with --overlap-allreduce the bucketed reduction the
 * backward feeds (neither changes a result). */
static int step_options(trainer *t, const pretrain_args *a, char *err)
{
    if (t->pipe) { /* each stage reduces its own tensors (pipe_stage_reduce) */
        model3d_set_step_options(t->m, a->recompute, NULL, NULL);
        if (a->overlap_allreduce && pipe_stage_overlap(t->pipe, t->acc, a->bucket_mb, err)) return -1;
        t->overlap_ran = pipe_stage_overlapping(t->pipe);
        return 0;
    }
    t->overlap = t->overlap_ran = a->overlap_allreduce;
    if (t->overlap && grad_overlap_init(&t->ov, t->acc, t->n_params, t->n_acc, a->bucket_mb, t->comm, err))
        return -1;
    model3d_set_step_options(t->m, a->recompute, t->overlap ? grad_overlap_final : NULL, &t->ov);
    return 0;
}

static int trainer_init(trainer *t, const pretrain_args *a, MPI_Comm comm, char *err)
{
    t->comm = comm;
    MPI_Comm_rank(comm, &t->rank);
    MPI_Comm_size(comm, &t->size);
    t->perm_epoch = -1;
    int data_ranks = t->size; /* the replicas: ranks / stages */
    if (a->stages > 1) {
        if (pipe_stage_open(&t->pipe, comm, a->stages, a->stage_split, a->pipe_schedule, err)) return -1;
        data_ranks = pipe_stage_data(t->pipe);
    }
    model3d_config cfg = a->model;
    int rc = model3d_config_check(&cfg, err);
    /* open on every rank (independent reads); the micro-batch is known once n is */
    int need = pretrain_needs_features(a);
    if (!rc) rc = pretrain_data_open(&t->pd, a->data, a->features, a->views, &cfg, 1, need, err);
    if (!rc) rc = step_layout_make(&t->L, t->pd.d.n, a->batch, a->micro, data_ranks, err);
    if (!rc && t->L.micro > 1) { /* reopen with room for a whole micro-batch */
        pretrain_data_close(&t->pd);
        cfg = a->model;
        rc = pretrain_data_open(&t->pd, a->data, a->features, a->views, &cfg, t->L.micro, need, err);
    }
    if (!rc) rc = model3d_config_check(&cfg, err);
    if (dist_any_error(comm, rc, err)) return -1;
    rc = dnn_ctx_create(&t->ctx, err);
    if (!rc) rc = model3d_create(&t->m, &cfg, (int)t->L.micro, (uint64_t)a->seed, &t->ctx, err);
    if (!rc) rc = model3d_set_precision(t->m, a->precision, err);
    if (!rc) rc = model3d_set_loss_weights(t->m, a->loss_3d_weight, need & PD_TARGETS ? a->loss_2d_weight : 0,
                                           err);
    if (!rc && t->pipe) rc = pipe_stage_bind(t->pipe, t->m, t->L.micro, t->L.micro_per_rank, err);
    if (dist_any_error(comm, rc, err)) return -1;
    t->n_params = model3d_n_params(t->m);
    t->n_buffers = model3d_n_buffers(t->m);
    t->n_acc = t->pipe ? pipe_stage_acc_len(t->pipe) : t->n_params + t->n_buffers + 3;
    adamw_config_default(&t->opt_cfg);
    t->opt_cfg.weight_decay = a->weight_decay;
    t->sched = (cosine_schedule){.base_lr = a->lr, .epochs = (int)a->sched_epochs,
                                 .warmup_epochs = (int)a->warmup_epochs, .lr_min = a->min_lr,
                                 .warmup_lr_init = a->warmup_lr};
    rc = adamw_init(&t->opt, t->pipe ? pipe_stage_n_own(t->pipe) : t->n_params, err); /* --stages: its own */
    if (!rc && t->pipe) rc = make_parts(t, err);
    t->acc = calloc((size_t)t->n_acc, sizeof(double));
    t->perm = malloc(sizeof(int64_t) * (size_t)t->L.n);
    t->config_json = make_config_json(a, t);
    t->tensor_table = ckpt_tensor_table(model3d_get_tensor(t->m, 0), model3d_n_tensors(t->m));
    if (!rc) rc = t->acc && t->perm && t->config_json && t->tensor_table
             ? 0 : errf(err, "out of memory for %ld parameters", t->n_params);
    if (!rc) rc = step_options(t, a, err);
    if (dist_any_error(comm, rc, err)) return -1;
    return svm_monitor_init(&t->svm, a->svm_every, a->svm_data, a->svm_test, a->svm_c,
                            t->L.steps_per_epoch, model3d_get_config(t->m), &t->ctx, comm, err);
}

/* --init: the checkpoint's parameters and buffers, recorded as "init" in the configuration. */
static int init_from_checkpoint(trainer *t, const char *path, char *err)
{
    cJSON *rec = NULL;
    int rc = pretrain_init_load(t->m, path, t->comm, &t->ctx, &rec, err);
    if (!rc) rc = pretrain_init_record(&t->config_json, rec, err);
    cJSON_Delete(rec);
    if (!rc) log_info("pretrain: parameters and BatchNorm buffers from %s (fresh AdamW state, step 0)", path);
    return rc;
}

/* Rank 0 locks RUNDIR/lock once the directory exists (one run at a time in a run directory);
 * collective. */
static int lock_rundir(trainer *t, const pretrain_args *a, char *err)
{
    int rc = 0;
    struct stat st;
    if (t->rank == 0 && t->lock.fd < 0 && stat(a->rundir, &st) == 0 && S_ISDIR(st.st_mode)) {
        char lock[I2P_PATH_LEN], what[I2P_PATH_LEN + 16];
        snprintf(lock, sizeof lock, "%s/lock", a->rundir);
        snprintf(what, sizeof what, "run directory %s", a->rundir);
        rc = run_lock_take(&t->lock, lock, what, err);
    }
    return dist_any_error(t->comm, rc, err);
}

static void trainer_free(trainer *t)
{
    run_lock_release(&t->lock);
    if (t->log_open) train_log_close(&t->log);
    svm_monitor_free(&t->svm);
    pipe_stage_free(t->pipe);
    model3d_free(t->m);
    if (t->ctx.engine) dnn_ctx_destroy(&t->ctx);
    pretrain_data_close(&t->pd);
    adamw_free(&t->opt);
    grad_overlap_free(&t->ov);
    free(t->acc);
    pipe_own_slices_free(&t->slices);
    free(t->perm);
    free(t->config_json);
    free(t->tensor_table);
}

static void format_eta(double s, char *out, size_t n)
{
    long x = (long)(s + 0.5);
    if (x >= 3600) snprintf(out, n, "%ldh%02ldm", x / 3600, x / 60 % 60);
    else snprintf(out, n, "%ldm%02lds", x / 60, x % 60);
}

static int train_loop(trainer *t, const pretrain_args *a, long start, long end, pretrain_result *r,
                      char *err)
{
    double t_start = now_s(), t_last = t_start;
    long last_logged = start;
    if (t->pipe) pipe_stage_drop_others(t->pipe); /* after the initialisation, --init or a resume */
    for (long step = start; step < end; step++) {
        long epoch, pos;
        step_position(&t->L, step, &epoch, &pos);
        double lr = cosine_lr(&t->sched, (int)epoch);
        if (t->pipe) { /* every rank completes the reductions, failed or not (the collectives match) */
            int bad = dist_any_error(t->comm, run_pipe_step(t, a, step, r, err), err);
            char rerr[I2P_ERR_LEN];
            int rrc = pipe_stage_reduce(t->pipe, t->acc, &r->seconds_allreduce, bad ? rerr : err);
            if (bad || rrc) return -1;
        } else if (run_step_sums(t, a, step, r, err)) {
            return -1;
        }
        double t_update = now_s();
        const double *loss = t->acc + t->n_acc - 3;
        if (!isfinite(loss[0]) || !isfinite(loss[1]) || !isfinite(loss[2])) {
            return errf(err, "step %ld: the loss is not finite (loss %g, loss_3d %g, loss_2d %g, lr %g); "
                        "stopped before the update; last good checkpoint: %s", step + 1, loss[0],
                        loss[1], loss[2], lr, r->last_checkpoint[0] ? r->last_checkpoint : "none yet");
        }
        if (t->pipe) {
            pipe_stage_update(t->pipe, &t->opt, &t->opt_cfg, lr, t->acc); /* this stage's tensors */
        } else {
            float *grad = model3d_grads(t->m), *bufs = model3d_buffers(t->m); /* overwritten next step */
            for (long i = 0; i < t->n_params; i++) grad[i] = (float)t->acc[i];
            for (long i = 0; i < t->n_buffers; i++) bufs[i] = (float)t->acc[t->n_params + i];
            adamw_step(&t->opt, &t->opt_cfg, lr, model3d_params(t->m), grad, model3d_get_tensor(t->m, 0),
                       model3d_n_tensors(t->m));
        }
        r->compute_s += now_s() - t_update;
        r->loss = loss[0];
        r->loss_3d = loss[1];
        r->loss_2d = loss[2];
        r->lr = lr;
        long done = step + 1;
        int last = done == end;
        double svm_acc = NAN;
        int measured = svm_monitor_due(&t->svm, done, last);
        if (measured) {
            double t0 = now_s();
            if (t->pipe && pipe_stage_sync(t->pipe, err)) return -1; /* the whole encoder on every rank */
            if (svm_monitor_measure(&t->svm, t->m, done, &svm_acc, err)) return -1;
            if (t->pipe) pipe_stage_drop_others(t->pipe);
            t_last += now_s() - t0; /* samples/s counts training only */
        }
        if (done % a->log_every == 0 || last || measured) {
            double now = now_s();
            double sps = (double)((done - last_logged) * t->L.batch) / (now - t_last);
            double eta = (now - t_start) / (double)(done - start) * (double)(end - done);
            char eta_s[32];
            format_eta(eta, eta_s, sizeof eta_s);
            double peak_gib = mem_gib(mem_peak_max(t->comm, NULL));
            log_info("pretrain: step %ld/%ld epoch %ld loss %.5f (3d %.5f, 2d %.5f) lr %.3e %.1f "
                     "samples/s ETA %s peak RSS %.2f GiB (max over ranks)", done, end, epoch, loss[0],
                     loss[1], loss[2], lr, sps, eta_s, peak_gib);
            int rc = t->rank == 0 ? train_log_append(&t->log, done, epoch, loss[0], loss[1], loss[2], lr,
                                                sps, svm_acc, err) : 0;
            if (dist_any_error(t->comm, rc, err)) return -1;
            t_last = now;
            last_logged = done;
        }
        if (done % a->ckpt_every == 0 || last)
            if (save_checkpoint(t, a, done, r, err)) return -1;
        if (!last && preempt_pending(t->comm)) { /* SIGTERM / SIGUSR1: save this step and stop */
            if (done % a->ckpt_every && save_checkpoint(t, a, done, r, err)) return -1;
            r->end_step = done;
            return PREEMPT_STOPPED;
        }
    }
    return 0;
}

/* This rank's time split and the model's step arena, for the JSON line. */
static void step_times(const trainer *t, pretrain_result *r)
{
    r->compute_s += r->seconds_compute;
    r->comm_s = r->seconds_allreduce;
    r->io_s = r->seconds_data + r->seconds_checkpoint;
    model3d_alloc_info info;
    model3d_alloc_stats(t->m, &info);
    r->step_arena_bytes = info.step_arena_bytes;
    r->overlap_allreduce = t->overlap_ran;
}

int pretrain_run(const pretrain_args *a, MPI_Comm comm, pretrain_result *r, char *err)
{
    memset(r, 0, sizeof *r);
    double t0 = now_s();
    trainer t;
    memset(&t, 0, sizeof t);
    t.lock.fd = -1;
    preempt_install(); /* the loop stops at a step boundary, with a checkpoint */
    int rc = trainer_init(&t, a, comm, err);
    if (!rc && a->init[0]) rc = init_from_checkpoint(&t, a->init, err);
    if (!rc) rc = lock_rundir(&t, a, err); /* before anything looks at the directory */
    if (!rc) rc = ckpt_prepare_rundir(a->rundir, a->resume, comm, err);
    if (!rc) rc = lock_rundir(&t, a, err); /* a directory prepare_rundir just made */
    long start = 0;
    if (!rc && a->resume) {
        rc = resume_latest(&t, a, r, &start, err);
        r->resumed = !rc;
    }
    long total = t.L.steps_per_epoch * a->epochs;
    long end = a->max_steps > 0 && a->max_steps < total ? a->max_steps : total;
    /* A resume at the last step: the run was killed after its final checkpoint (in the plot, say);
     * finish what is missing (the log and the plot below) and succeed, so a requeued job ends. */
    int complete = !rc && a->resume && start == end;
    if (complete) log_info("pretrain: %s: the run is complete (step %ld); finishing its outputs", a->rundir, end);
    if (!rc && start > end)
        rc = errf(err, "%s: the run is complete (step %ld of %ld); raise --steps or --epochs to go on",
                  a->rundir, start, end);
    if (!rc) {
        int lrc = t.rank == 0 ? train_log_open(&t.log, a->rundir, a->resume ? start : -1,
                                                   a->svm_every > 0, err) : 0;
        t.log_open = t.rank == 0 && !lrc;
        rc = dist_any_error(comm, lrc, err);
    }
    if (!rc) {
        r->layout = t.L;
        r->start_step = start;
        r->n_params = t.n_params;
        r->visible = mask_n_visible(&t.pd.cfg);
        log_info("pretrain: %ld samples, %ld steps per epoch, batch %ld = %ld micro-batches of %ld on "
                 "%d ranks; %ld parameters; steps %ld -> %ld%s", t.L.n, t.L.steps_per_epoch, t.L.batch,
                 t.L.micro_per_step, t.L.micro, t.size, t.n_params, start, end,
                 r->resumed ? " (resumed)" : "");
        rc = complete ? 0 : train_loop(&t, a, start, end, r, err);
        r->end_step = rc ? r->end_step : end; /* PREEMPT_STOPPED: the step reached */
        r->svm_acc_last = t.svm.last_acc;
        r->svm_acc_best = svm_monitor_best_acc(&t.svm);
        r->svm_best_epoch = svm_monitor_best_epoch(&t.svm);
        r->svm_best_step = t.svm.best_step;
        r->svm_measurements = t.svm.measurements;
        r->seconds_svm = t.svm.seconds;
        step_times(&t, r);
    }
    if (t.log_open) {
        train_log_close(&t.log);
        t.log_open = 0;
        char perr[I2P_ERR_LEN];
        if (train_log_plot(a->rundir, perr)) log_warn("pretrain: no plot: %s", perr);
    }
    trainer_free(&t);
    r->seconds_total = now_s() - t0;
    return rc;
}
