/* cli_finetune.c -- `i2pmae finetune`: options, the protocol's defaults, training or --eval-only,
 * the JSON summary (engines: finetune.c, finetune_eval.c). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cls_units.h"
#include "commands.h"
#include "errors.h"
#include "finetune.h"
#include "log.h"
#include "model_opts.h"
#include "summary.h"
#include "train_common.h"
#include "train_summary.h"

typedef struct {
    finetune_args f;
    int eval_only, vote, n_classes, head_hidden;
    long vote_views, vote_repeats;
    double dropout;
    char protocol[CLI_STR_LEN], radius[CLI_STR_LEN], group_sizes[CLI_STR_LEN], pooling[CLI_STR_LEN],
        smoothing[CLI_STR_LEN], precision[CLI_STR_LEN];
    model_opts mo;
    finetune_result r;      /* training */
    ft_eval_result er;      /* --eval-only */
} cli_args;

/* The classifier configuration: spec defaults, the protocol's, then the options given. */
static int resolve_model(cli_args *c, char *err)
{
    finetune_args *a = &c->f;
    classifier_config *m = &a->model;
    classifier_config_default(m);
    int scan = a->protocol == FT_SCANOBJECTNN;
    m->enc.points = scan ? 2048 : 1024;
    const int k_mn[3] = {48, 24, 24}, k_scan[3] = {32, 16, 16};
    const double r_mn[3] = {0.24, 0.48, 0.96}, r_scan[3] = {0.32, 0.64, 1.28};
    for (int i = 0; i < 3; i++) {
        m->enc.k[i] = scan ? k_scan[i] : k_mn[i];
        m->radius[i] = scan ? r_scan[i] : r_mn[i];
    }
    m->pooling = scan ? CLS_POOL_CONCAT : CLS_POOL_MEAN_PLUS_MAX;
    m->smoothing = scan ? 0.0 : 0.2;
    m->n_classes = c->n_classes;
    m->head_hidden = c->head_hidden;
    m->dropout = c->dropout;
    if (model_opts_apply_encoder(&c->mo, &m->enc, err)) return -1;
    if (c->group_sizes[0]) { /* the fine-tuning name of k: both given must agree */
        model_opts gs = {0};
        if (model_opts_set(&gs, "k", c->group_sizes))
            return errf(err, "--group-sizes %s: too long", c->group_sizes);
        model3d_config before = m->enc;
        if (model_opts_apply(&gs, &m->enc, err)) return err_prefix(err, "--group-sizes");
        if (model_opts_get(&c->mo, "k")[0] && memcmp(before.k, m->enc.k, sizeof before.k))
            return errf(err, "--group-sizes %s and --k %s differ (they are the same setting)",
                        c->group_sizes, model_opts_get(&c->mo, "k"));
    }
    if (c->radius[0] && model_opts_parse_triple("radius", c->radius, m->radius, err)) return -1;
    if (c->pooling[0]) {
        if (!strcmp(c->pooling, "mean+max")) m->pooling = CLS_POOL_MEAN_PLUS_MAX;
        else if (!strcmp(c->pooling, "concat")) m->pooling = CLS_POOL_CONCAT;
        else return errf(err, "--pooling %s: must be mean+max or concat", c->pooling);
    }
    if (c->smoothing[0]) {
        char *end;
        m->smoothing = strtod(c->smoothing, &end);
        if (*end || end == c->smoothing || !(m->smoothing >= 0 && m->smoothing < 1))
            return errf(err, "--smoothing %s: must be a number in [0, 1)", c->smoothing);
    }
    return 0;
}

/* --data SPLIT.h5 without --test: a few-shot split (fewshot_split.h): train on its /train group,
 * evaluate its /test group (dataset.h reads FILE:/GROUP). */
static void use_split_groups(finetune_args *a)
{
    if (!a->data[0] || a->test[0] || strstr(a->data, ":/")) return;
    snprintf(a->test, sizeof a->test, "%s:/test", a->data);
    strncat(a->data, ":/train", sizeof a->data - strlen(a->data) - 1);
}

static int check_args(cli_args *c, char *err)
{
    finetune_args *a = &c->f;
    if (c->eval_only) {
        if (!a->pretrained[0] || !a->test[0])
            return errf(err, "finetune --eval-only: --checkpoint RUNDIR/best.h5 and --test are required");
        if (a->scratch) return errf(err, "finetune --eval-only: --scratch makes no sense here");
        if (c->vote_views < 1) return errf(err, "--vote-views %ld: must be at least 1", c->vote_views);
        if (c->vote_repeats < 1)
            return errf(err, "--vote-repeats %ld: must be at least 1", c->vote_repeats);
        if (a->micro < 0) return errf(err, "--micro-batch %ld: must be non-negative", a->micro);
        return 0;
    }
    if (c->vote) return errf(err, "--vote goes with --eval-only (evaluate RUNDIR/best.h5 after training)");
    if (nn_precision_parse(c->precision[0] ? c->precision : "fp32", &a->precision, err)) return -1;
    use_split_groups(a);
    train_opts o = finetune_train_opts(a);
    if (train_opts_check(&o, err)) return -1;
    if (c->n_classes < 0) return errf(err, "--n-classes %d: must be non-negative", c->n_classes);
    if (train_step_opts_check(a->overlap_allreduce, a->bucket_mb, err)) return -1;
    pipe_unit_table units;
    cls_units_names(&units);
    return train_stage_opts_check(a->stages, a->stage_split, a->pipe_schedule, &units, err);
}

static void add_record(cJSON *s, const char *suffix, const ft_record *r)
{
    char k[64];
    snprintf(k, sizeof k, "test_acc_%s", suffix);
    cJSON_AddNumberToObject(s, k, r->epoch >= 0 ? r->acc : -1);
    snprintf(k, sizeof k, "mean_class_acc_%s", suffix);
    cJSON_AddNumberToObject(s, k, r->epoch >= 0 ? r->mean_class_acc : -1);
    snprintf(k, sizeof k, "%s_epoch", suffix);
    cJSON_AddNumberToObject(s, k, (double)r->epoch);
}

static void train_summary(const finetune_args *a, const finetune_result *r, cJSON *s)
{
    double samples = train_summary_samples(&r->run);
    cJSON_AddStringToObject(s, "mode", "train");
    cJSON_AddStringToObject(s, "rundir", a->rundir);
    cJSON_AddStringToObject(s, "protocol", ft_protocol_name(a->protocol));
    train_summary_add_run(s, &r->run, a->scratch, a->pretrained, nn_precision_name(a->precision));
    cJSON_AddNumberToObject(s, "n_classes", r->n_classes);
    train_summary_add_epoch(s, &r->run, a->model.enc.points);
    add_record(s, "last", &r->last);
    add_record(s, "best", &r->best);
    cJSON_AddStringToObject(s, "best_selection", "test split (as the official code; see docs/finetune.md)");
    train_summary_add_files_times(s, &r->run);
    cJSON_AddBoolToObject(s, "overlap_allreduce", r->overlap_allreduce); /* what ran */
    cJSON_AddNumberToObject(s, "bucket_mb", a->bucket_mb);
    cJSON_AddBoolToObject(s, "recompute", a->recompute);
    if (a->stages > 1) {
        cJSON_AddNumberToObject(s, "stages", a->stages);
        cJSON_AddNumberToObject(s, "seconds_pipe_wait", r->seconds_pipe_wait);
    }
    /* this rank's split, as pretrain's: compute = train steps, updates and evaluation */
    double mine[4] = {r->run.seconds_train + r->seconds_update + r->run.seconds_eval, r->run.seconds_allreduce,
                      r->seconds_idle, r->seconds_data + r->run.seconds_checkpoint};
    summary_add_rank_times(s, mine, r->run.seconds_total, MPI_COMM_WORLD); /* all ranks summarise */
    cJSON_AddNumberToObject(s, "seconds_checkpoint", r->run.seconds_checkpoint);
    cJSON_AddNumberToObject(s, "samples_per_s", r->run.seconds_total > 0 ? samples / r->run.seconds_total : 0);
}

static int run_eval_only(cli_args *c, char *err)
{
    ft_eval_args e;
    memset(&e, 0, sizeof e);
    snprintf(e.checkpoint, sizeof e.checkpoint, "%s", c->f.pretrained);
    snprintf(e.test, sizeof e.test, "%s", c->f.test);
    e.micro = c->f.micro;
    e.vote = c->vote;
    e.vote_views = c->vote_views;
    e.vote_repeats = c->vote_repeats;
    e.seed = c->f.seed;
    e.protocol_set = c->protocol[0] != 0;
    e.protocol = c->f.protocol;
    confusion cm = {0};
    int rc = finetune_eval_only(&e, MPI_COMM_WORLD, &c->er, &cm, err);
    confusion_free(&cm);
    return rc;
}

static void eval_summary(const cli_args *c, cJSON *s)
{
    const ft_eval_result *r = &c->er;
    cJSON_AddStringToObject(s, "mode", "eval");
    cJSON_AddStringToObject(s, "checkpoint", c->f.pretrained);
    cJSON_AddNumberToObject(s, "checkpoint_epochs", (double)r->epoch);
    cJSON_AddStringToObject(s, "test", c->f.test);
    cJSON_AddStringToObject(s, "protocol", ft_protocol_name(r->protocol));
    cJSON_AddNumberToObject(s, "test_samples", (double)r->rec.total);
    cJSON_AddNumberToObject(s, "n_classes", r->n_classes);
    cJSON_AddNumberToObject(s, "points", (double)r->points);
    cJSON_AddNumberToObject(s, "test_acc", r->rec.acc);
    cJSON_AddNumberToObject(s, "mean_class_acc", r->rec.mean_class_acc);
    if (c->vote) {
        cJSON_AddNumberToObject(s, "vote_views", (double)c->vote_views);
        cJSON_AddNumberToObject(s, "vote_repeats", (double)c->vote_repeats);
        cJSON_AddNumberToObject(s, "vote_seed", (double)r->seed);
        cJSON_AddNumberToObject(s, "vote_acc_mean", r->vote_mean);
        cJSON_AddNumberToObject(s, "vote_acc_std", r->vote_std);
        cJSON_AddNumberToObject(s, "vote_acc_max", r->vote_max);
        cJSON_AddNumberToObject(s, "vote_acc_min", r->vote_min);
        cJSON_AddNumberToObject(s, "seconds_vote", r->seconds_vote);
        cJSON_AddNumberToObject(s, "vote_clouds_per_s", r->vote_clouds_per_s);
    }
    cJSON_AddNumberToObject(s, "seconds_eval", r->seconds_eval);
}

static int options(void *state, cli_opt *opts)
{
    cli_args *c = state;
    finetune_args *a = &c->f;
    *a = (finetune_args){.seed = 0, .epochs = 300, .sched_epochs = 0, .warmup_epochs = 10, .batch = 32,
                         .micro = 0, .ckpt_every = 1, .keep = 2, .log_every = 50, .eval_every = 1,
                         .lr = 5e-4, .min_lr = 1e-6, .warmup_lr = 1e-6, .weight_decay = 0.05,
                         .clip_grad = 10, .overlap_allreduce = 1, .bucket_mb = 8, .stages = 1,
                         .pipe_schedule = "1f1b"};
    c->vote_views = 10;
    c->vote_repeats = 49;
    c->head_hidden = 256;
    c->dropout = 0.5;
    const train_cli_fields tf = {.scratch = &a->scratch, .resume = &a->resume, .eval_only = &c->eval_only,
                                 .precision = c->precision, .ckpt_every = &a->ckpt_every, .keep = &a->keep, .log_every = &a->log_every,
                                 .eval_every = &a->eval_every, .min_lr = &a->min_lr, .warmup_lr = &a->warmup_lr,
                                 .weight_decay = &a->weight_decay, .clip_grad = &a->clip_grad};
    const cli_opt head[] = {
        {"data", OPT_STRING, a->data, "FILE",
         "training split (point-cloud file); without --test: a few-shot split (fewshot-split), "
         "its /train and /test groups"},
        {"test", OPT_STRING, a->test, "FILE", "test split, evaluated every --eval-every epochs"},
        {"output", OPT_STRING, a->rundir, "RUNDIR",
         "run directory: checkpoints, best.h5, metrics.csv, curves.png, confusion.csv (-o)"},
        {"checkpoint", OPT_STRING, a->pretrained, "FILE",
         "pre-training checkpoint whose encoder to fine-tune (with --eval-only: a fine-tuning "
         "checkpoint, e.g. RUNDIR/best.h5)"},
    };
    const cli_opt mid[] = {
        {"vote", OPT_FLAG, &c->vote, NULL, "with --eval-only: voting statistics (ModelNet40 protocol)"},
        {"vote-views", OPT_LONG, &c->vote_views, "V", "augmented views whose logits one vote averages"},
        {"vote-repeats", OPT_LONG, &c->vote_repeats, "R", "votes repeated (mean, std and max reported)"},
        {"protocol", OPT_STRING, c->protocol, "P",
         "modelnet40 or scanobjectnn: sampling, augmentation and the defaults below (default modelnet40)"},
        {"seed", OPT_LONG, &a->seed, "S",
         "seed of the head's initialisation, data order, augmentation, dropout and drop path"},
        {"epochs", OPT_LONG, &a->epochs, "E", "epochs to run (spec: 300)"},
        {"sched-epochs", OPT_LONG, &a->sched_epochs, "E", "length of the cosine schedule (0: --epochs)"},
        {"warmup-epochs", OPT_LONG, &a->warmup_epochs, "E", "linear warm-up epochs (spec: 10)"},
        {"batch", OPT_LONG, &a->batch, "B", "global batch: samples per optimiser step over all ranks"},
        {"micro-batch", OPT_LONG, &a->micro, "M",
         "samples per forward/backward (BatchNorm statistics, test batches); 0: batch / ranks. Fix it "
         "to make the results independent of the rank count"},
        {"lr", OPT_DOUBLE, &a->lr, "LR", "peak learning rate (AdamW)"},
    };
    const cli_opt own[] = {
        {"n-classes", OPT_INT, &c->n_classes, "C", "classes (0: from the training data)"},
        {"radius", OPT_STRING, c->radius, "R0,R1,R2",
         "local-attention radius per stage, 0 = off (default: modelnet40 0.24,0.48,0.96, "
         "scanobjectnn 0.32,0.64,1.28; PB-T50-RS uses 0.48,0.96,1.92)"},
        {"group-sizes", OPT_STRING, c->group_sizes, "K0,K1,K2",
         "kNN group size per scale, the same setting as --k (default: modelnet40 48,24,24, "
         "scanobjectnn 32,16,16)"},
        {"smoothing", OPT_STRING, c->smoothing, "S",
         "label smoothing of the cross-entropy (default: modelnet40 0.2, scanobjectnn 0)"},
        {"pooling", OPT_STRING, c->pooling, "P",
         "mean+max (summed) or concat (default: modelnet40 mean+max, scanobjectnn concat)"},
        {"head-hidden", OPT_INT, &c->head_hidden, "H", "width of the head's hidden layers"},
        {"dropout", OPT_DOUBLE, &c->dropout, "P", "dropout of the head"},
    };
    int n = cmd_opts_add(opts, 0, head, (int)(sizeof head / sizeof head[0]));
    n = train_run_opts_add(opts, n, &tf);
    n = cmd_opts_add(opts, n, mid, (int)(sizeof mid / sizeof mid[0]));
    n = train_loop_opts_add(opts, n, &tf);
    n = cmd_opts_add(opts, n, own, (int)(sizeof own / sizeof own[0]));
    n = train_stage_opts_add(opts, n, &a->stages, a->stage_split, a->pipe_schedule,
                             "units per stage of the 5 units embed0, encoder.0, encoder.1, encoder.2, head (e.g. "
                             "1,4); default: balanced in FLOPs");
    n = train_step_opts_add(opts, n, &a->overlap_allreduce, &a->bucket_mb, &a->recompute);
    return model_opts_append(&c->mo, opts, n);
}

/* Usage errors; resolves the protocol and the classifier configuration. */
static int check(void *state, char *err)
{
    cli_args *c = state;
    if (ft_protocol_parse(c->protocol[0] ? c->protocol : "modelnet40", &c->f.protocol, err)) return -1;
    if (check_args(c, err)) return -1;
    return c->eval_only ? 0 : resolve_model(c, err);
}

static int run(void *state, const cmd_env *env, char *err)
{
    cli_args *c = state;
    (void)env;
    if (c->eval_only) return run_eval_only(c, err);
    const char *nan_step = getenv("I2PMAE_TEST_NAN_STEP");
    c->f.fault_nan_step = nan_step ? atol(nan_step) : 0;
    return finetune_run(&c->f, MPI_COMM_WORLD, &c->r, err);
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    cli_args *c = state;
    (void)env;
    if (c->eval_only) eval_summary(c, s);
    else train_summary(&c->f, &c->r, s);
}

const i2p_command cmd_finetune = {
    .name = "finetune",
    .summary = "fine-tuning for classification (ModelNet40, ScanObjectNN) and its evaluation",
    .usage = "i2pmae finetune --data TRAIN.h5 --test TEST.h5 (--checkpoint PRETRAIN.h5 | --scratch) -o RUNDIR "
             "[--config jobs/finetune-X.ini] [--resume]\n"
             "       i2pmae finetune --eval-only --checkpoint RUNDIR/best.h5 --test TEST.h5 [--vote]",
    .description =
        "Data-parallel fine-tuning (run under mpirun/srun) of a pre-trained encoder with the\n"
        "classification head of the spec: micro-batches spread over the ranks, one gradient\n"
        "all-reduce, grad-norm clipping, AdamW with the per-epoch cosine schedule. The test split is\n"
        "evaluated every epoch; metrics.csv holds every epoch, best.h5 the best test accuracy (test-set\n"
        "selection, as the official code: the summary reports last and best apart). --resume\n"
        "continues exactly, best record included. --points defaults to 1024 (modelnet40) or 2048\n"
        "(scanobjectnn). --stages S: (ranks / S) data replicas x S pipeline stages, each stage\n"
        "running a contiguous part of the network (embed0, encoder.0-2, head), with the results of\n"
        "ranks / S data-parallel ranks. Details: docs/finetune.md.",
    .state_size = sizeof(cli_args),
    .preemptible = 1,
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
