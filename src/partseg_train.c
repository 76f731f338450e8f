/* partseg_train.c -- the data-parallel part-segmentation loop: set-up, pre-trained encoder,
 * resume, epochs, evaluation, best record, checkpoints and the run directory's files, and
 * --eval-only (see partseg_train.h). Shaped like finetune.c, with its shared helpers. */
#include "partseg_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "checkpoint.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "log.h"
#include "mem_peak.h"
#include "model_opts.h"
#include "optim.h"
#include "partseg_eval.h"
#include "preempt.h"
#include "seg_metrics.h"
#include "train_ckpt.h"
#include "train_common.h"
#include "train_log.h"
#include "train_loop.h"
#include "train_summary.h"

#define METRICS_HEADER "epoch,lr,train_loss,train_acc,instance_miou,class_miou,test_acc\n"

/* Everything a run holds: layout, network, splits, optimiser, step buffers, best record. */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    step_layout L;
    dnn_ctx ctx;
    partseg_config cfg;
    partseg *m;
    segset tr;
    segtest ts;
    float *points;        /* micro-batch (micro, Pm, 3) */
    int32_t *category, *seg;
    float *logits;
    int32_t *pred;
    adamw_state opt;
    adamw_config opt_cfg;
    cosine_schedule sched;
    int64_t *perm;
    long perm_epoch;
    double *acc;          /* [grads | buffers | loss, correct points] */
    float *buf0;
    long n_params, n_buffers, n_acc;
    int64_t best_epoch;
    double best_metrics[3]; /* instance, class mIoU, point accuracy of the best epoch */
    double *per_class;      /* last evaluation, per category (-1: no shapes) */
    char *config_json, *tensor_table;
    FILE *metrics;
    char metrics_path[I2P_PATH_LEN];
    train_opts o; /* the run's shared options */
    train_part_epoch part;  /* a signal's stop inside an epoch: its steps and loss / correct sums */
} trainer;

/* The context of train_run_start's callbacks. */
typedef struct {
    trainer *t;
    const partseg_args *a;
    partseg_result *r;
} run_ctx;

/* ---- set-up ---- */

train_opts partseg_train_opts(const partseg_args *a)
{
    return (train_opts){.cmd = "partseg", .data = a->data, .test = a->test, .rundir = a->rundir,
                        .pretrained = a->pretrained, .scratch = a->scratch, .resume = a->resume,
                        .batch = a->batch, .micro = a->micro, .epochs = a->epochs,
                        .sched_epochs = a->sched_epochs, .warmup_epochs = a->warmup_epochs,
                        .ckpt_every = a->ckpt_every, .keep = a->keep, .log_every = a->log_every,
                        .eval_every = a->eval_every, .seed = a->seed, .lr = a->lr, .min_lr = a->min_lr,
                        .warmup_lr = a->warmup_lr, .weight_decay = a->weight_decay,
                        .clip_grad = a->clip_grad};
}

/* What a resumed run must share with its checkpoint: everything the metrics depend on. */
static char *make_config_json(const partseg_args *a, const trainer *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "partseg", partseg_config_to_json(&t->cfg));
    cJSON *tr = cJSON_AddObjectToObject(j, "train");
    train_config_json_add(tr, &t->o, &t->L, &t->sched, nn_precision_name(a->precision));
    cJSON *d = cJSON_AddObjectToObject(j, "data");
    cJSON_AddNumberToObject(d, "train_samples", (double)t->tr.d.n);
    cJSON_AddNumberToObject(d, "train_points", (double)t->tr.d.points);
    cJSON_AddNumberToObject(d, "test_samples", (double)t->ts.n);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int trainer_init(trainer *t, const partseg_args *a, MPI_Comm comm, char *err)
{
    t->comm = comm;
    MPI_Comm_rank(comm, &t->rank);
    MPI_Comm_size(comm, &t->size);
    t->perm_epoch = -1;
    t->best_epoch = -1;
    t->cfg = a->model;
    t->o = partseg_train_opts(a);
    int rc = segset_open(&t->tr, a->data, MPI_COMM_SELF, err);
    if (!rc) rc = segset_match(&t->tr, &t->cfg, a->data, err);
    if (!rc) rc = partseg_config_check(&t->cfg, err);
    if (!rc) rc = step_layout_make(&t->L, t->tr.d.n, a->batch, a->micro, t->size, err);
    if (!rc && t->L.micro < 2)
        rc = errf(err, "--micro-batch %ld: BatchNorm needs at least 2 samples per micro-batch", t->L.micro);
    if (dist_any_error(comm, rc, err)) return -1;
    if (segtest_open(&t->ts, a->test, &t->cfg, t->L.micro, comm, err)) return -1;
    long Pm = t->cfg.enc.points, M = t->L.micro;
    rc = dnn_ctx_create(&t->ctx, err);
    if (!rc) rc = partseg_create(&t->m, &t->cfg, (int)M, (uint64_t)a->seed, &t->ctx, err);
    if (!rc) rc = partseg_set_precision(t->m, a->precision, err);
    if (dist_any_error(comm, rc, err)) return -1;
    t->n_params = partseg_n_params(t->m);
    t->n_buffers = partseg_n_buffers(t->m);
    t->n_acc = t->n_params + t->n_buffers + 2;
    train_sched_init(&t->o, &t->sched, &t->opt_cfg);
    rc = adamw_init(&t->opt, t->n_params, err);
    t->acc = calloc((size_t)t->n_acc, sizeof(double));
    t->perm = malloc(sizeof(int64_t) * (size_t)t->L.n);
    t->buf0 = malloc(sizeof(float) * (size_t)(t->n_buffers ? t->n_buffers : 1));
    t->points = malloc(sizeof(float) * 3 * (size_t)(M * Pm));
    t->seg = malloc(sizeof(int32_t) * (size_t)(M * Pm));
    t->category = malloc(sizeof(int32_t) * (size_t)M);
    t->logits = malloc(sizeof(float) * (size_t)(M * Pm * t->cfg.n_parts));
    t->pred = malloc(sizeof(int32_t) * (size_t)Pm);
    t->per_class = malloc(sizeof(double) * (size_t)t->cfg.n_categories);
    t->config_json = make_config_json(a, t);
    t->tensor_table = ckpt_tensor_table(partseg_get_tensor(t->m, 0), partseg_n_tensors(t->m));
    if (!rc && !(t->acc && t->perm && t->buf0 && t->points && t->seg && t->category && t->logits && t->pred &&
                 t->per_class && t->config_json && t->tensor_table))
        rc = errf(err, "out of memory for %ld parameters", t->n_params);
    return dist_any_error(comm, rc, err);
}

static void trainer_free(trainer *t)
{
    if (t->metrics) fclose(t->metrics);
    if (t->m) partseg_free(t->m);
    if (t->ctx.engine) dnn_ctx_destroy(&t->ctx);
    segset_close(&t->tr);
    segtest_close(&t->ts);
    adamw_free(&t->opt);
    free(t->acc);
    free(t->perm);
    free(t->buf0);
    free(t->points);
    free(t->seg);
    free(t->category);
    free(t->logits);
    free(t->pred);
    free(t->per_class);
    free(t->config_json);
    free(t->tensor_table);
}

/* ---- the pre-trained encoder ---- */

/* train_encoder_load_fn over the part-segmentation network. */
static int load_encoder(void *net, const model3d *pre, char *err)
{
    return partseg_load_encoder(net, pre, err);
}

/* train_run_start's load_pretrained over run_ctx. Collective. */
static int load_pretrained(void *ctx, char *err)
{
    const run_ctx *c = ctx;
    return train_load_encoder("partseg", c->a->pretrained, c->t->comm, &c->t->ctx, load_encoder, c->t->m, err);
}

/* ---- checkpoints ---- */

/* The run's checkpoint (train_ckpt.h): the best record is the best epoch and the IEEE bits of its
 * three metrics (exact through the int64 array). */
static train_ckpt ckpt_of(trainer *t)
{
    return (train_ckpt){.o = &t->o, .comm = t->comm, .L = &t->L, .config_json = t->config_json,
                        .tensor_table = t->tensor_table,
                        .params = {"/params", CKPT_F32, partseg_params(t->m), t->n_params},
                        .buffers = {"/buffers", CKPT_F32, partseg_buffers(t->m), t->n_buffers},
                        .best = {{"/best/epoch", CKPT_I64, &t->best_epoch, 1},
                                 {"/best/metrics_bits", CKPT_I64, t->best_metrics, 3}},
                        .opt = &t->opt, .part = &t->part};
}

/* train_save_fn over run_ctx: ckpt-<step>.h5 after epochs_done epochs and t->part.steps steps. */
static int save_cb(void *ctx, long epochs_done, char *err)
{
    run_ctx *c = ctx;
    train_ckpt k = ckpt_of(c->t);
    return train_ckpt_save(&k, epochs_done, c->r->run.last_checkpoint, &c->r->run.seconds_checkpoint, err);
}

/* train_run_start's resume over run_ctx: the newest valid checkpoint; *epochs_done, the epochs it holds. */
static int resume_latest(void *ctx, long *epochs_done, char *err)
{
    run_ctx *c = ctx;
    train_ckpt k = ckpt_of(c->t);
    return train_ckpt_resume(&k, c->r->run.last_checkpoint, sizeof c->r->run.last_checkpoint, epochs_done, err);
}

/* ---- metrics.csv, curves.png, per_category.csv ---- */

static int metrics_open(trainer *t, const partseg_args *a, long resume_epochs, char *err)
{
    if (t->rank) return 0;
    return train_metrics_open(&t->metrics, t->metrics_path, a->rundir, METRICS_HEADER, resume_epochs, err);
}

static int metrics_append(trainer *t, long epoch, double lr, double loss, double acc, const seg_record *test,
                          char *err)
{
    if (t->rank) return 0;
    double v[3] = {test ? test->instance_miou : 0, test ? test->class_miou : 0, test ? test->accuracy : 0};
    return train_metrics_row(t->metrics, t->metrics_path, epoch, lr, loss, acc, test ? v : NULL, 3, err);
}

/* Rank 0: per_category.csv of the last evaluation (id,category,miou; categories with shapes). */
static int write_per_category(trainer *t, const partseg_args *a, char *err)
{
    if (t->rank) return 0;
    char path[I2P_PATH_LEN];
    snprintf(path, sizeof path, "%s/per_category.csv", a->rundir);
    atomic_file f;
    if (atomic_file_open(&f, path, err)) return -1;
    fputs("id,category,miou\n", f.f);
    const char *p = t->tr.d.class_names;
    for (int c = 0; c < t->cfg.n_categories; c++) {
        int len = p ? (int)strcspn(p, "\n") : 0;
        if (t->per_class[c] >= 0) fprintf(f.f, "%d,%.*s,%.9g\n", c, len, p ? p : "", t->per_class[c]);
        p = p && p[len] ? p + len + 1 : NULL;
    }
    return atomic_file_commit(&f, err);
}

/* ---- one step ---- */

static train_net net_of(const trainer *t)
{
    return (train_net){.params = partseg_params(t->m), .grads = partseg_grads(t->m), .buffers = partseg_buffers(t->m),
                       .tensors = partseg_get_tensor(t->m, 0), .n_tensors = partseg_n_tensors(t->m),
                       .n_params = t->n_params, .n_buffers = t->n_buffers};
}

static int run_micro_batches(trainer *t, const partseg_args *a, long step, partseg_result *r, char *err)
{
    long Pm = t->cfg.enc.points, M = t->L.micro;
    train_step_samples at = train_step_samples_of(&t->L, t->perm, &t->perm_epoch, a->seed, step);
    memset(t->acc, 0, sizeof(double) * (size_t)t->n_acc);
    double inv = 1.0 / (double)t->L.micro_per_step;
    train_net net = net_of(t);
    float *bufs = net.buffers;
    memcpy(t->buf0, bufs, sizeof(float) * (size_t)t->n_buffers);
    double *lacc = t->acc + t->n_params + t->n_buffers;
    for (long j = 0; j < t->L.micro_per_rank; j++) {
        train_micro mb = train_micro_at(&at, t->rank, j);
        for (long i = 0; i < M; i++)
            if (segset_view(&t->tr, (long)mb.ids[i], Pm, 1, (uint64_t)a->seed, at.epoch, t->points + i * Pm * 3,
                          t->seg + i * Pm, t->category + i, err))
                return -1;
        memcpy(bufs, t->buf0, sizeof(float) * (size_t)t->n_buffers);
        partseg_batch b = {.B = (int)M, .points = t->points, .category = t->category, .seg = t->seg,
                           .drop_key = mb.drop_key};
        double t0 = now_s(), loss = 0;
        if (partseg_train_step(t->m, &b, &loss, t->logits, err)) return -1;
        train_accumulate(t->acc, &net, inv);
        long right = 0;
        for (long i = 0; i < M; i++) { /* training accuracy over all parts, as Point-M2AE's */
            const float *z = t->logits + i * Pm * t->cfg.n_parts;
            for (long p = 0; p < Pm; p++) {
                int best = 0;
                for (int q = 1; q < t->cfg.n_parts; q++)
                    if (z[p * t->cfg.n_parts + q] > z[p * t->cfg.n_parts + best]) best = q;
                right += best == t->seg[i * Pm + p];
            }
        }
        lacc[0] += loss * inv;
        lacc[1] += (double)right;
        r->run.seconds_train += now_s() - t0;
    }
    return 0;
}

/* ---- the loop ---- */

/* train_step_fn over run_ctx: the micro-batches of `step`, then the update. */
static int step_cb(void *ctx, long step, long epoch, double lr, double *loss, double *correct, double *gnorm,
                   char *err)
{
    run_ctx *c = ctx;
    trainer *t = c->t;
    partseg_result *r = c->r;
    int rc = run_micro_batches(t, c->a, step, r, err);
    if (dist_any_error(t->comm, rc, err)) return -1;
    /* ONE optimiser step per iteration (Point-M2AE's runner steps twice: docs/partseg.md) */
    train_net net = net_of(t);
    if (train_update(&net, t->acc, &t->opt, &t->opt_cfg, lr, c->a->clip_grad, t->comm, NULL, step, epoch,
                     r->run.last_checkpoint, &r->run.seconds_allreduce, gnorm, err))
        return -1;
    const double *l = t->acc + t->n_params + t->n_buffers;
    *loss = l[0];
    *correct = l[1];
    return 0;
}

static seg_record best_record(const trainer *t)
{
    return (seg_record){.epoch = t->best_epoch, .instance_miou = t->best_metrics[0],
                        .class_miou = t->best_metrics[1], .accuracy = t->best_metrics[2]};
}

/* train_eval_fn over run_ctx. */
static int evaluate(void *ctx, long epoch, char *err)
{
    run_ctx *c = ctx;
    trainer *t = c->t;
    partseg_result *r = c->r;
    double t0 = now_s();
    if (segtest_eval(&t->ts, t->m, &r->last, t->per_class, t->comm, err)) return -1;
    r->run.seconds_eval += now_s() - t0;
    r->last.epoch = epoch;
    /* ">=": the newest epoch reaching the best instance mIoU, as Point-M2AE's runner saves it */
    if (t->best_epoch < 0 || r->last.instance_miou >= t->best_metrics[0]) {
        t->best_epoch = epoch;
        t->best_metrics[0] = r->last.instance_miou;
        t->best_metrics[1] = r->last.class_miou;
        t->best_metrics[2] = r->last.accuracy;
        snprintf(r->run.best_path, sizeof r->run.best_path, "%s/best.h5", c->a->rundir);
        train_ckpt k = ckpt_of(t);
        if (train_ckpt_write_best(&k, r->run.best_path, epoch + 1, &r->run.seconds_checkpoint, err)) return -1;
    }
    return dist_any_error(t->comm, write_per_category(t, c->a, err), err);
}

/* train_report_fn over run_ctx: the records, the epoch's line and its metrics row. */
static int report(void *ctx, long epoch, long end, double loss, double acc, int evaluated, char *err)
{
    run_ctx *c = ctx;
    trainer *t = c->t;
    partseg_result *r = c->r;
    r->best = best_record(t);
    if (evaluated)
        log_info("partseg: epoch %ld/%ld lr %.3e train loss %.4f acc %.2f%% | instance mIoU %.2f%% class mIoU "
                 "%.2f%% | best %.2f%% (epoch %ld)", epoch, end, r->run.lr, loss, 100 * acc,
                 100 * r->last.instance_miou, 100 * r->last.class_miou, 100 * r->best.instance_miou,
                 r->best.epoch);
    else
        log_info("partseg: epoch %ld/%ld lr %.3e train loss %.4f acc %.2f%%", epoch, end, r->run.lr, loss, 100 * acc);
    return metrics_append(t, epoch, r->run.lr, loss, acc, evaluated ? &r->last : NULL, err);
}

static int run_epochs(run_ctx *c, long start, long end, char *err)
{
    trainer *t = c->t;
    const partseg_args *a = c->a;
    /* the training accuracy counts points */
    const train_loop lp = {.cmd = "partseg", .comm = t->comm, .L = &t->L, .sched = &t->sched,
                           .log_every = a->log_every, .eval_every = a->eval_every, .ckpt_every = a->ckpt_every,
                           .units_per_sample = (double)t->cfg.enc.points, .part = &t->part, .run = &c->r->run,
                           .step = step_cb, .evaluate = evaluate, .report = report, .save = save_cb, .ctx = c};
    return train_loop_run(&lp, start, end, err);
}

/* A resume of a complete run (killed after its final checkpoint, in the plot say): the last
 * evaluation again (its record for the summary, per_category.csv); the caller then plots. */
static int finish_complete(trainer *t, const partseg_args *a, long epochs, partseg_result *r, char *err)
{
    log_info("partseg: %s: the run is complete (epoch %ld); finishing its outputs", a->rundir, epochs);
    double t0 = now_s();
    if (segtest_eval(&t->ts, t->m, &r->last, t->per_class, t->comm, err)) return -1;
    r->run.seconds_eval += now_s() - t0;
    r->last.epoch = epochs - 1;
    train_result_complete(&r->run, &t->sched, epochs);
    return dist_any_error(t->comm, write_per_category(t, a, err), err);
}

int partseg_train_run(const partseg_args *a, MPI_Comm comm, partseg_result *r, char *err)
{
    memset(r, 0, sizeof *r);
    r->last.epoch = r->best.epoch = -1;
    double t0 = now_s();
    trainer t;
    memset(&t, 0, sizeof t);
    preempt_install(); /* the loop stops at a step boundary, with a checkpoint */
    int rc = trainer_init(&t, a, comm, err);
    long start = 0;
    run_ctx ctx = {&t, a, r};
    if (!rc) rc = train_run_start(&t.o, comm, resume_latest, load_pretrained, &ctx, &start, &r->run.resumed, err);
    if (!rc) rc = dist_any_error(comm, metrics_open(&t, a, a->resume ? start : -1, err), err);
    if (!rc) {
        train_result_start(&r->run, &t.L, start, t.n_params, t.ts.n);
        r->best = best_record(&t);
        if (t.best_epoch >= 0) snprintf(r->run.best_path, sizeof r->run.best_path, "%s/best.h5", a->rundir);
        log_info("partseg: %ld train / %ld test shapes, %d categories, %d parts, %d points; %ld steps per epoch, "
                 "batch %ld = %ld micro-batches of %ld on %d ranks; %ld parameters; epochs %ld -> %ld%s; encoder %s",
                 t.L.n, t.ts.n, t.cfg.n_categories, t.cfg.n_parts, t.cfg.enc.points, t.L.steps_per_epoch, t.L.batch,
                 t.L.micro_per_step, t.L.micro, t.size, t.n_params, start, a->epochs,
                 r->run.resumed ? " (resumed)" : "", a->scratch ? "from scratch" : a->pretrained);
        rc = r->run.resumed && start == a->epochs ? finish_complete(&t, a, start, r, err)
                                                   : run_epochs(&ctx, start, a->epochs, err);
    }
    if (t.metrics) {
        fclose(t.metrics);
        t.metrics = NULL;
        char perr[I2P_ERR_LEN];
        if (train_curves_plot(a->rundir, "I2P-MAE part segmentation", "mIoU / accuracy (%)", "train point acc",
                              "instance mIoU", "class mIoU", perr))
            log_warn("partseg: no curves.png: %s", perr);
    }
    trainer_free(&t);
    r->run.seconds_total = now_s() - t0;
    return rc;
}

