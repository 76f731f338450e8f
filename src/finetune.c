/* finetune.c -- the data-parallel fine-tuning loop: set-up, pre-trained encoder, resume, epochs,
 * evaluation, best record, checkpoints and the run directory's files (see finetune.h). */
#include "finetune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "finetune_eval.h"
#include "ft_pipe.h"
#include "log.h"
#include "mem_peak.h"
#include "metrics.h"
#include "model_opts.h"
#include "optim.h"
#include "preempt.h"
#include "train_ckpt.h"
#include "train_common.h"
#include "train_log.h"
#include "train_loop.h"
#include "train_summary.h"

#define METRICS_HEADER "epoch,lr,train_loss,train_acc,test_acc,mean_class_acc\n"

typedef struct {
    dataset d;
    int open;
    ft_sampler smp;
    float *raw, *points;
    int32_t *labels;
} trainset;

typedef struct {
    MPI_Comm comm;
    int rank, size;
    step_layout L;
    dnn_ctx ctx;
    classifier_config cfg;
    classifier *c;
    trainset tr;
    ft_testset ts;
    adamw_state opt;        /* --stages: the stage's own moments, packed (ft_pipe_n_own) */
    adamw_config opt_cfg;
    cosine_schedule sched;
    int64_t *perm;
    long perm_epoch;
    double *acc;            /* [grads | buffers | loss, correct], summed in double (pretrain.c);
                               --stages: the stage's own entries only (ft_pipe_acc_len) */
    float *buf0, *logits;   /* the step's BatchNorm buffers; one micro-batch's logits */
    int32_t *pred;
    long n_params, n_buffers, n_acc;
    confusion cm, best_cm;  /* last evaluation; best so far */
    int64_t best_epoch;     /* -1: none yet */
    char *config_json, *tensor_table;
    FILE *metrics;
    char metrics_path[I2P_PATH_LEN];
    train_opts o; /* the run's shared options */
    grad_overlap ov; /* --overlap-allreduce 1: the bucketed reduction (grad_allreduce.h) */
    int overlap;
    train_part_epoch part;  /* a signal's stop inside an epoch: its steps and loss / correct sums */
    ft_pipe *pipe;          /* --stages > 1: this rank's pipeline stage (ft_pipe.h); NULL: data parallel */
} trainer;

/* The context of train_run_start's callbacks. */
typedef struct {
    trainer *t;
    const finetune_args *a;
    finetune_result *r;
} run_ctx;

/* ---- set-up ---- */

train_opts finetune_train_opts(const finetune_args *a)
{
    return (train_opts){.cmd = "finetune", .data = a->data, .test = a->test, .rundir = a->rundir,
                        .pretrained = a->pretrained, .scratch = a->scratch, .resume = a->resume,
                        .batch = a->batch, .micro = a->micro, .epochs = a->epochs,
                        .sched_epochs = a->sched_epochs, .warmup_epochs = a->warmup_epochs,
                        .ckpt_every = a->ckpt_every, .keep = a->keep, .log_every = a->log_every,
                        .eval_every = a->eval_every, .seed = a->seed, .lr = a->lr, .min_lr = a->min_lr,
                        .warmup_lr = a->warmup_lr, .weight_decay = a->weight_decay,
                        .clip_grad = a->clip_grad};
}

static int trainset_open(trainset *s, const finetune_args *a, classifier_config *cfg, char *err)
{
    memset(s, 0, sizeof *s);
    if (dataset_open(&s->d, a->data, MPI_COMM_SELF, err)) return -1;
    s->open = 1;
    if (cfg->n_classes == 0) cfg->n_classes = s->d.n_classes;
    else if (s->d.n_classes > cfg->n_classes)
        return errf(err, "--n-classes %d: the training data %s has %d classes", cfg->n_classes,
                    a->data, s->d.n_classes);
    if (s->d.points < cfg->enc.points)
        return errf(err, "%s: samples have %ld points, the network takes %d (--points)", a->data,
                    s->d.points, cfg->enc.points);
    if (ft_sampler_init(&s->smp, s->d.points, cfg->enc.points, err)) return -1;
    s->smp.skip_origin = cfg->enc.fps_skip_origin;
    return 0;
}

static int trainset_alloc(trainset *s, long micro, long Pm, char *err)
{
    s->raw = malloc(sizeof(float) * (size_t)(s->d.points * 3));
    s->points = malloc(sizeof(float) * (size_t)(micro * Pm * 3));
    s->labels = malloc(sizeof(int32_t) * (size_t)micro);
    if (!s->raw || !s->points || !s->labels)
        return errf(err, "%s: out of memory for a micro-batch of %ld", s->d.f.path, micro);
    return 0;
}

static void trainset_close(trainset *s)
{
    if (s->open) dataset_close(&s->d);
    ft_sampler_free(&s->smp);
    free(s->raw);
    free(s->points);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

/* What a resumed run must share with its checkpoint: everything the metrics depend on (not where
 * the run stops: --epochs may grow when --sched-epochs is given). */
static char *make_config_json(const finetune_args *a, const trainer *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "classifier", classifier_config_to_json(&t->cfg));
    cJSON *tr = cJSON_AddObjectToObject(j, "train");
    cJSON_AddStringToObject(tr, "protocol", ft_protocol_name(a->protocol));
    train_config_json_add(tr, &t->o, &t->L, &t->sched, nn_precision_name(a->precision));
    cJSON *d = cJSON_AddObjectToObject(j, "data");
    cJSON_AddNumberToObject(d, "train_samples", (double)t->tr.d.n);
    cJSON_AddNumberToObject(d, "train_points", (double)t->tr.d.points);
    cJSON_AddNumberToObject(d, "test_samples", (double)t->ts.n);
    cJSON_AddNumberToObject(d, "test_points", (double)t->ts.d.points);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* How the steps run: --recompute, and with --overlap-allreduce the bucketed reduction the
 * backward feeds (neither changes a result). */
static int step_options(trainer *t, const finetune_args *a, char *err)
{
    t->overlap = a->overlap_allreduce && !t->pipe; /* --stages: each stage reduces its own tensors */
    if (t->overlap && grad_overlap_init(&t->ov, t->acc, t->n_params, t->n_acc, a->bucket_mb, t->comm, err))
        return -1;
    classifier_set_step_options(t->c, a->recompute, t->overlap ? grad_overlap_final : NULL, &t->ov);
    return 0;
}

static int trainer_init(trainer *t, const finetune_args *a, MPI_Comm comm, char *err)
{
    t->comm = comm;
    MPI_Comm_rank(comm, &t->rank);
    MPI_Comm_size(comm, &t->size);
    t->perm_epoch = -1;
    t->best_epoch = -1;
    t->cfg = a->model;
    t->o = finetune_train_opts(a);
    int data_ranks = t->size; /* the replicas: ranks / stages */
    if (a->stages > 1) {
        if (ft_pipe_open(&t->pipe, comm, a->stages, a->stage_split, a->pipe_schedule, err)) return -1;
        data_ranks = ft_pipe_data(t->pipe);
    }
    int rc = trainset_open(&t->tr, a, &t->cfg, err);
    if (!rc) rc = classifier_config_check(&t->cfg, err);
    if (!rc) rc = step_layout_make(&t->L, t->tr.d.n, a->batch, a->micro, data_ranks, err);
    if (!rc) rc = trainset_alloc(&t->tr, t->L.micro, t->cfg.enc.points, err);
    if (dist_any_error(comm, rc, err)) return -1;
    if (ft_testset_open(&t->ts, a->test, t->cfg.enc.points, t->cfg.enc.fps_skip_origin, t->cfg.n_classes, t->L.micro, a->data,
                        comm, err))
        return -1;
    rc = dnn_ctx_create(&t->ctx, err);
    if (!rc) rc = classifier_create(&t->c, &t->cfg, (int)t->L.micro, (uint64_t)a->seed, &t->ctx, err);
    if (!rc) rc = classifier_set_precision(t->c, a->precision, err);
    if (!rc && t->pipe) rc = ft_pipe_bind(t->pipe, t->c, t->L.micro, t->L.micro_per_rank, err);
    if (dist_any_error(comm, rc, err)) return -1;
    t->n_params = classifier_n_params(t->c);
    t->n_buffers = classifier_n_buffers(t->c);
    t->n_acc = t->pipe ? ft_pipe_acc_len(t->pipe) : t->n_params + t->n_buffers + 2;
    train_sched_init(&t->o, &t->sched, &t->opt_cfg);
    rc = adamw_init(&t->opt, t->pipe ? ft_pipe_n_own(t->pipe) : t->n_params, err);
    if (!rc) rc = confusion_init(&t->cm, t->cfg.n_classes, err);
    if (!rc) rc = confusion_init(&t->best_cm, t->cfg.n_classes, err);
    t->acc = calloc((size_t)t->n_acc, sizeof(double));
    t->perm = malloc(sizeof(int64_t) * (size_t)t->L.n);
    t->buf0 = malloc(sizeof(float) * (size_t)(t->n_buffers ? t->n_buffers : 1));
    t->logits = malloc(sizeof(float) * (size_t)(t->L.micro * t->cfg.n_classes));
    t->pred = malloc(sizeof(int32_t) * (size_t)t->L.micro);
    t->config_json = make_config_json(a, t);
    t->tensor_table = ckpt_tensor_table(classifier_get_tensor(t->c, 0), classifier_n_tensors(t->c));
    if (!rc && !(t->acc && t->perm && t->buf0 && t->logits && t->pred && t->config_json &&
                 t->tensor_table))
        rc = errf(err, "out of memory for %ld parameters", t->n_params);
    if (!rc) rc = step_options(t, a, err);
    return dist_any_error(comm, rc, err);
}

static void trainer_free(trainer *t)
{
    if (t->metrics) fclose(t->metrics);
    if (t->c) classifier_free(t->c);
    if (t->ctx.engine) dnn_ctx_destroy(&t->ctx);
    trainset_close(&t->tr);
    ft_testset_close(&t->ts);
    adamw_free(&t->opt);
    grad_overlap_free(&t->ov);
    ft_pipe_free(t->pipe);
    confusion_free(&t->cm);
    confusion_free(&t->best_cm);
    free(t->acc);
    free(t->perm);
    free(t->buf0);
    free(t->logits);
    free(t->pred);
    free(t->config_json);
    free(t->tensor_table);
}

/* ---- the pre-trained encoder ---- */

/* train_encoder_load_fn over the classifier. */
static int load_encoder(void *net, const model3d *pre, char *err)
{
    return classifier_load_encoder(net, pre, err);
}

/* train_run_start's load_pretrained over run_ctx. Collective. */
static int load_pretrained(void *ctx, char *err)
{
    const run_ctx *c = ctx;
    return train_load_encoder("finetune", c->a->pretrained, c->t->comm, &c->t->ctx, load_encoder, c->t->c, err);
}

/* ---- checkpoints ---- */

/* train_ckpt's parts: under --stages the parameters, moments and buffers in the stage's slices
 * (ft_pipe_ckpt_parts), the rest whole. */
static const ckpt_part *array_parts(const void *ctx, int write, ckpt_part *out)
{
    const trainer *t = ctx;
    memset(out, 0, sizeof *out * TRAIN_CKPT_ARRAYS);
    ckpt_part pmb[3]; /* parameters, moments, buffers */
    ft_pipe_ckpt_parts(t->pipe, write, pmb);
    out[0] = pmb[0];
    out[1] = pmb[2];
    out[4] = out[5] = pmb[1];
    return out;
}

/* The run's checkpoint (train_ckpt.h): the best record is the best epoch's confusion and its epoch. */
static train_ckpt ckpt_of(trainer *t)
{
    long C = t->cfg.n_classes;
    return (train_ckpt){.o = &t->o, .comm = t->comm, .L = &t->L, .config_json = t->config_json,
                        .tensor_table = t->tensor_table,
                        .params = {"/params", CKPT_F32, classifier_params(t->c), t->n_params},
                        .buffers = {"/buffers", CKPT_F32, classifier_buffers(t->c), t->n_buffers},
                        .best = {{"/best/confusion", CKPT_I64, t->best_cm.counts, C * C},
                                 {"/best/epoch", CKPT_I64, &t->best_epoch, 1}},
                        .opt = &t->opt, .part = &t->part, .parts = t->pipe ? array_parts : NULL, .parts_ctx = t};
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

/* ---- metrics.csv, curves.png, confusion ---- */

static int metrics_open(trainer *t, const finetune_args *a, long resume_epochs, char *err)
{
    if (t->rank) return 0;
    return train_metrics_open(&t->metrics, t->metrics_path, a->rundir, METRICS_HEADER, resume_epochs, err);
}

static int metrics_append(trainer *t, long epoch, double lr, double loss, double acc,
                          const ft_record *test, char *err)
{
    if (t->rank) return 0;
    double v[2] = {test ? test->acc : 0, test ? test->mean_class_acc : 0};
    return train_metrics_row(t->metrics, t->metrics_path, epoch, lr, loss, acc, test ? v : NULL, 2, err);
}

static int confusion_plot(const char *rundir, int C, char *err)
{
    char csv[I2P_PATH_LEN], png[I2P_PATH_LEN], script[2 * I2P_PATH_LEN];
    snprintf(csv, sizeof csv, "%s/confusion.csv", rundir);
    snprintf(png, sizeof png, "%s/confusion.png", rundir);
    snprintf(script, sizeof script,
             "set datafile separator ','\n"
             "set title 'confusion (row: true class, column: prediction)'\n"
             "set xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\nset palette defined (0 'white', 1 'navy')\n"
             "set xlabel 'predicted'\nset ylabel 'true'\nunset key\nset xtics rotate by -45\n"
             "plot '%s' matrix rowheaders columnheaders with image\n",
             C - 1, C - 1, csv);
    return gnuplot_png(png, script, err);
}

/* Rank 0: confusion.csv and per_class.csv of the last evaluation. */
static int write_confusion(trainer *t, const finetune_args *a, char *err)
{
    if (t->rank) return 0;
    char path[I2P_PATH_LEN];
    snprintf(path, sizeof path, "%s/confusion.csv", a->rundir);
    if (confusion_write_csv(&t->cm, path, t->tr.d.class_names, err)) return -1;
    snprintf(path, sizeof path, "%s/per_class.csv", a->rundir);
    return per_class_write_csv(&t->cm, path, t->tr.d.class_names, err);
}

static ft_record record_of(const confusion *cm, long epoch)
{
    return (ft_record){.epoch = epoch, .correct = confusion_correct(cm), .total = confusion_total(cm),
                       .acc = confusion_accuracy(cm), .mean_class_acc = confusion_mean_class_accuracy(cm)};
}

/* ---- one step ---- */

/* Training views and labels of samples ids[0..count) in epoch. */
static int fill_micro(trainer *t, const finetune_args *a, const int64_t *ids, long count, long epoch,
                      char *err)
{
    long Pm = t->cfg.enc.points;
    for (long i = 0; i < count; i++) {
        if (dataset_read(&t->tr.d, (long)ids[i], 1, t->tr.raw, t->tr.labels + i, err)) return -1;
        ft_train_view(&t->tr.smp, a->protocol, t->tr.raw, (uint64_t)a->seed, epoch, (long)ids[i],
                      t->tr.points + i * Pm * 3);
    }
    return 0;
}

static train_net net_of(const trainer *t)
{
    return (train_net){.params = classifier_params(t->c), .grads = classifier_grads(t->c),
                       .buffers = classifier_buffers(t->c), .tensors = classifier_get_tensor(t->c, 0),
                       .n_tensors = classifier_n_tensors(t->c), .n_params = t->n_params,
                       .n_buffers = t->n_buffers};
}

/* Forward/backward of this rank's micro-batches of `step`; fills t->acc (before the reduction). */
static int run_micro_batches(trainer *t, const finetune_args *a, long step, finetune_result *r,
                             char *err)
{
    train_step_samples at = train_step_samples_of(&t->L, t->perm, &t->perm_epoch, a->seed, step);
    memset(t->acc, 0, sizeof(double) * (size_t)t->n_acc);
    double inv = 1.0 / (double)t->L.micro_per_step;
    train_net net = net_of(t);
    float *bufs = net.buffers;
    memcpy(t->buf0, bufs, sizeof(float) * (size_t)t->n_buffers);
    double *lacc = t->acc + t->n_params + t->n_buffers;
    for (long j = 0; j < t->L.micro_per_rank; j++) {
        train_micro mb = train_micro_at(&at, t->rank, j);
        double t_fill = now_s();
        if (fill_micro(t, a, mb.ids, t->L.micro, at.epoch, err)) return -1;
        r->seconds_data += now_s() - t_fill;
        /* every micro-batch starts from the step's running statistics: their average is the
         * update one batch would make, whichever rank runs it */
        memcpy(bufs, t->buf0, sizeof(float) * (size_t)t->n_buffers);
        classifier_batch b = {.B = (int)t->L.micro, .points = t->tr.points, .labels = t->tr.labels,
                              .drop_key = mb.drop_key};
        double t0 = now_s(), loss = 0, comm0 = t->ov.comm_s;
        if (t->overlap) grad_overlap_begin(&t->ov, net.grads, inv, j == t->L.micro_per_rank - 1);
        if (classifier_train_step(t->c, &b, &loss, t->logits, err)) return -1;
        if (t->overlap) {
            grad_overlap_end(&t->ov);
            train_accumulate_buffers(t->acc, &net, inv);
        } else {
            train_accumulate(t->acc, &net, inv);
        }
        r->run.seconds_allreduce += t->ov.comm_s - comm0; /* the buckets' MPI calls in the backward */
        t0 += t->ov.comm_s - comm0;
        logits_argmax(t->logits, t->L.micro, t->cfg.n_classes, t->pred);
        long right = 0;
        for (long i = 0; i < t->L.micro; i++) right += t->pred[i] == t->tr.labels[i];
        lacc[0] += loss * inv;
        lacc[1] += (double)right;
        r->run.seconds_train += now_s() - t0;
    }
    if (a->fault_nan_step == step + 1 && t->rank == 0) lacc[0] = NAN;
    return 0;
}

/* ---- one step on a pipeline stage (--stages > 1, ft_pipe.h) ---- */

typedef struct {
    trainer *t;
    const finetune_args *a;
    train_step_samples at;
} pipe_fill_ctx;

/* ft_pipe_fill_fn: this replica's j-th micro-batch, as run_micro_batches fills it. */
static int pipe_fill(void *ctx, long j, classifier_batch *b, char *err)
{
    pipe_fill_ctx *c = ctx;
    trainer *t = c->t;
    train_micro mb = train_micro_at(&c->at, ft_pipe_replica(t->pipe), j);
    if (fill_micro(t, c->a, mb.ids, t->L.micro, c->at.epoch, err)) return -1;
    *b = (classifier_batch){.B = (int)t->L.micro, .points = t->tr.points, .labels = t->tr.labels,
                            .drop_key = mb.drop_key};
    return 0;
}

/* The pipeline's forward/backward of `step` on this stage, then its reduction; t->acc as
 * run_micro_batches + the all-reduce leave it. Collective. */
static int run_pipe_step(trainer *t, const finetune_args *a, long step, finetune_result *r, char *err)
{
    pipe_fill_ctx c = {t, a, train_step_samples_of(&t->L, t->perm, &t->perm_epoch, a->seed, step)};
    pipe_run_times tm = {0};
    int rc = ft_pipe_step(t->pipe, pipe_fill, &c, 1.0 / (double)t->L.micro_per_step, t->acc, &r->seconds_data,
                          &tm, err);
    r->run.seconds_train += tm.compute;
    r->seconds_pipe_wait += tm.wait;
    if (a->fault_nan_step == step + 1 && t->rank == 0) t->acc[t->n_acc - 2] = NAN;
    if (dist_any_error(t->comm, rc, err)) return -1;
    return ft_pipe_reduce(t->pipe, t->acc, &r->run.seconds_allreduce, err);
}

/* ---- the loop ---- */

/* train_step_fn over run_ctx: step `step` on a pipeline stage or the data-parallel ranks. */
static int step_cb(void *ctx, long step, long epoch, double lr, double *loss, double *correct, double *gnorm,
                   char *err)
{
    run_ctx *c = ctx;
    trainer *t = c->t;
    const finetune_args *a = c->a;
    finetune_result *r = c->r;
    double t_update, comm0;
    if (t->pipe) {
        if (run_pipe_step(t, a, step, r, err)) return -1;
        t_update = now_s();
        comm0 = r->run.seconds_allreduce;
        if (train_loss_check(t->acc[t->n_acc - 2], step, epoch, lr, r->run.last_checkpoint, err) ||
            ft_pipe_update(t->pipe, t->acc, &t->opt, &t->opt_cfg, lr, a->clip_grad, gnorm,
                           &r->run.seconds_allreduce, err))
            return -1;
    } else {
        int rc = run_micro_batches(t, a, step, r, err);
        if (train_micro_batches_done(t->overlap ? &t->ov : NULL, rc, t->comm, &r->seconds_idle, err)) return -1;
        train_net net = net_of(t);
        t_update = now_s();
        comm0 = r->run.seconds_allreduce;
        if (train_update(&net, t->acc, &t->opt, &t->opt_cfg, lr, a->clip_grad, t->comm,
                         t->overlap ? &t->ov : NULL, step, epoch,
                         r->run.last_checkpoint, &r->run.seconds_allreduce, gnorm, err))
            return -1;
    }
    r->seconds_update += now_s() - t_update - (r->run.seconds_allreduce - comm0);
    *loss = t->acc[t->n_acc - 2];
    *correct = t->acc[t->n_acc - 1];
    return 0;
}

/* train_eval_fn over run_ctx. */
static int evaluate(void *ctx, long epoch, char *err)
{
    run_ctx *c = ctx;
    trainer *t = c->t;
    finetune_result *r = c->r;
    double t0 = now_s();
    if (t->pipe) {
        ft_pipe_trim(t->pipe); /* the evaluation's activations instead of the step's */
        if (ft_pipe_sync(t->pipe, err)) return -1; /* the whole model on every rank */
    }
    if (ft_testset_eval(&t->ts, t->c, &t->cm, t->comm, err)) return -1;
    r->run.seconds_eval += now_s() - t0;
    r->last = record_of(&t->cm, epoch);
    int better = t->best_epoch < 0 || confusion_correct(&t->cm) > confusion_correct(&t->best_cm);
    if (better) { /* the first epoch reaching the best accuracy, as the official runner */
        memcpy(t->best_cm.counts, t->cm.counts,
               sizeof(int64_t) * (size_t)t->cfg.n_classes * (size_t)t->cfg.n_classes);
        t->best_epoch = epoch;
        snprintf(r->run.best_path, sizeof r->run.best_path, "%s/best.h5", c->a->rundir);
        train_ckpt k = ckpt_of(t);
        if (train_ckpt_write_best(&k, r->run.best_path, epoch + 1, &r->run.seconds_checkpoint, err)) return -1;
    }
    return dist_any_error(t->comm, write_confusion(t, c->a, err), err);
}

/* train_report_fn over run_ctx: the records, the epoch's line and its metrics row. */
static int report(void *ctx, long epoch, long end, double loss, double acc, int evaluated, char *err)
{
    run_ctx *c = ctx;
    trainer *t = c->t;
    finetune_result *r = c->r;
    r->best = t->best_epoch >= 0 ? record_of(&t->best_cm, t->best_epoch) : (ft_record){.epoch = -1};
    if (evaluated)
        log_info("finetune: epoch %ld/%ld lr %.3e train loss %.4f acc %.2f%% | test acc %.2f%% "
                 "mean class %.2f%% | best %.2f%% (epoch %ld)", epoch, end, r->run.lr, loss, 100 * acc,
                 100 * r->last.acc, 100 * r->last.mean_class_acc, 100 * r->best.acc, r->best.epoch);
    else
        log_info("finetune: epoch %ld/%ld lr %.3e train loss %.4f acc %.2f%%", epoch, end, r->run.lr,
                 loss, 100 * acc);
    return metrics_append(t, epoch, r->run.lr, loss, acc, evaluated ? &r->last : NULL, err);
}

static int run_epochs(run_ctx *c, long start, long end, char *err)
{
    trainer *t = c->t;
    const finetune_args *a = c->a;
    const train_loop lp = {.cmd = "finetune", .comm = t->comm, .L = &t->L, .sched = &t->sched,
                           .log_every = a->log_every, .eval_every = a->eval_every, .ckpt_every = a->ckpt_every,
                           .units_per_sample = 1, .part = &t->part, .run = &c->r->run, .step = step_cb,
                           .evaluate = evaluate, .report = report, .save = save_cb, .ctx = c};
    return train_loop_run(&lp, start, end, err);
}

/* A resume of a complete run (killed after its final checkpoint, in a plot say): the last
 * evaluation again (its record for the summary, confusion.csv, per_class.csv); the caller then
 * makes the plots. */
static int finish_complete(trainer *t, const finetune_args *a, long epochs, finetune_result *r, char *err)
{
    log_info("finetune: %s: the run is complete (epoch %ld); finishing its outputs", a->rundir, epochs);
    double t0 = now_s();
    if (ft_testset_eval(&t->ts, t->c, &t->cm, t->comm, err)) return -1;
    r->run.seconds_eval += now_s() - t0;
    r->last = record_of(&t->cm, epochs - 1);
    train_result_complete(&r->run, &t->sched, epochs);
    if (t->best_epoch >= 0) snprintf(r->run.best_path, sizeof r->run.best_path, "%s/best.h5", a->rundir);
    return dist_any_error(t->comm, write_confusion(t, a, err), err);
}

int finetune_run(const finetune_args *a, MPI_Comm comm, finetune_result *r, char *err)
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
        r->n_classes = t.cfg.n_classes;
        r->overlap_allreduce = t.overlap; /* --stages: the stages reduce after the step */
        if (t.best_epoch >= 0) r->best = record_of(&t.best_cm, t.best_epoch);
        char grid[64]; /* where the micro-batches run: ranks, or under --stages replicas of S stages */
        if (t.pipe) snprintf(grid, sizeof grid, "%d replicas x %d stages (%d ranks)", ft_pipe_data(t.pipe), a->stages, t.size);
        else snprintf(grid, sizeof grid, "%d ranks", t.size);
        log_info("finetune: %s protocol, %ld train / %ld test samples, %d classes, %d points; %ld steps "
                 "per epoch, batch %ld = %ld micro-batches of %ld on %s; %ld parameters; epochs "
                 "%ld -> %ld%s; encoder %s", ft_protocol_name(a->protocol), t.L.n, t.ts.n,
                 t.cfg.n_classes, t.cfg.enc.points, t.L.steps_per_epoch, t.L.batch, t.L.micro_per_step,
                 t.L.micro, grid, t.n_params, start, a->epochs, r->run.resumed ? " (resumed)" : "",
                 a->scratch ? "from scratch" : a->pretrained);
        rc = r->run.resumed && start == a->epochs ? finish_complete(&t, a, start, r, err)
                                                   : run_epochs(&ctx, start, a->epochs, err);
    }
    if (t.metrics) {
        fclose(t.metrics);
        t.metrics = NULL;
        char perr[I2P_ERR_LEN];
        if (train_curves_plot(a->rundir, "I2P-MAE fine-tuning", "accuracy (%)", "train acc", "test acc",
                              "test mean class acc", perr))
            log_warn("finetune: no curves.png: %s", perr);
        if (!rc && r->last.epoch >= 0 && confusion_plot(a->rundir, t.cfg.n_classes, perr))
            log_warn("finetune: no confusion.png: %s", perr);
    }
    if (!rc && t.rank == 0 && r->last.epoch >= 0) {
        printf("per-class test accuracy after epoch %ld:\n", r->last.epoch);
        per_class_print(&t.cm, t.tr.d.class_names);
    }
    trainer_free(&t);
    r->run.seconds_total = now_s() - t0;
    return rc;
}
