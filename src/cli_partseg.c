/* cli_partseg.c -- `i2pmae partseg`: options, training or --eval-only, the JSON summary (engine:
 * partseg_train.c; network: partseg_model.c / partseg_step.c). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "log.h"
#include "model_opts.h"
#include "partseg_train.h"
#include "paths.h"
#include "train_summary.h"

typedef struct {
    partseg_args p;
    int eval_only, n_categories, n_parts, prop_hidden, prop_out, label_dim;
    double dropout;
    char radius[CLI_STR_LEN], head[CLI_STR_LEN], precision[CLI_STR_LEN];
    model_opts mo;
    partseg_result r;
    seg_record er;   /* --eval-only */
    long er_n;
    char predictions[CLI_STR_LEN]; /* --eval-only: the predictions file ("": next to the checkpoint) */
} cli_args;

/* Point-M2AE's configuration, then the options given. */
static int resolve_model(cli_args *c, char *err)
{
    partseg_config *m = &c->p.model;
    partseg_config_default(m);
    m->n_categories = c->n_categories;
    m->n_parts = c->n_parts;
    m->prop_hidden = c->prop_hidden;
    m->prop_out = c->prop_out;
    m->label_dim = c->label_dim;
    m->dropout = c->dropout;
    if (model_opts_apply_encoder(&c->mo, &m->enc, err)) return -1;
    if (c->radius[0] && model_opts_parse_triple("radius", c->radius, m->radius, err)) return -1;
    if (c->head[0]) {
        double h[3];
        if (model_opts_parse_triple("head", c->head, h, err)) return -1;
        for (int i = 0; i < 3; i++) m->head[i] = (int)h[i];
    }
    return 0;
}

static int check(void *state, char *err)
{
    cli_args *c = state;
    partseg_args *a = &c->p;
    if (c->eval_only) {
        if (!a->pretrained[0] || !a->test[0])
            return errf(err, "partseg --eval-only: --checkpoint RUNDIR/best.h5 and --test are required");
        if (a->micro < 0) return errf(err, "--micro-batch %ld: must be non-negative", a->micro);
        if (!c->predictions[0]) { /* predictions.h5 beside the checkpoint */
            const char *slash = strrchr(a->pretrained, '/');
            int dir = slash ? (int)(slash - a->pretrained) + 1 : 0;
            if (snprintf(c->predictions, sizeof c->predictions, "%.*spredictions.h5", dir, a->pretrained) >=
                (int)sizeof c->predictions)
                return errf(err, "%s: path too long for predictions.h5 beside it", a->pretrained);
        }
        return path_is_input(c->predictions, "--predictions", a->test, "--test", err) ||
               path_is_input(c->predictions, "--predictions", a->pretrained, "--checkpoint", err);
    }
    train_opts o = partseg_train_opts(a);
    if (train_opts_check(&o, err)) return -1;
    if (nn_precision_parse(c->precision[0] ? c->precision : "fp32", &a->precision, err)) return -1;
    if (c->n_categories < 0 || c->n_parts < 0)
        return errf(err, "--n-categories / --n-parts: must be non-negative (0: from the data)");
    return resolve_model(c, err);
}

static void add_record(cJSON *s, const char *suffix, const seg_record *r)
{
    char k[64];
    snprintf(k, sizeof k, "instance_miou_%s", suffix);
    cJSON_AddNumberToObject(s, k, r->epoch >= 0 ? r->instance_miou : -1);
    snprintf(k, sizeof k, "class_miou_%s", suffix);
    cJSON_AddNumberToObject(s, k, r->epoch >= 0 ? r->class_miou : -1);
    snprintf(k, sizeof k, "test_acc_%s", suffix);
    cJSON_AddNumberToObject(s, k, r->epoch >= 0 ? r->accuracy : -1);
    snprintf(k, sizeof k, "%s_epoch", suffix);
    cJSON_AddNumberToObject(s, k, (double)r->epoch);
}

static int run(void *state, const cmd_env *env, char *err)
{
    cli_args *c = state;
    (void)env;
    if (c->eval_only)
        return partseg_eval_only(c->p.pretrained, c->p.test, c->predictions, c->p.micro, MPI_COMM_WORLD, &c->er,
                                 &c->er_n, err);
    return partseg_train_run(&c->p, MPI_COMM_WORLD, &c->r, err);
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    cli_args *c = state;
    (void)env;
    const partseg_args *a = &c->p;
    if (c->eval_only) {
        cJSON_AddStringToObject(s, "mode", "eval");
        cJSON_AddStringToObject(s, "checkpoint", a->pretrained);
        cJSON_AddNumberToObject(s, "checkpoint_epochs", (double)c->er.epoch);
        cJSON_AddStringToObject(s, "test", a->test);
        cJSON_AddNumberToObject(s, "test_samples", (double)c->er_n);
        cJSON_AddNumberToObject(s, "instance_miou", c->er.instance_miou);
        cJSON_AddNumberToObject(s, "class_miou", c->er.class_miou);
        cJSON_AddNumberToObject(s, "test_acc", c->er.accuracy);
        cJSON_AddStringToObject(s, "predictions", c->predictions);
        return;
    }
    const partseg_result *r = &c->r;
    double samples = train_summary_samples(&r->run);
    cJSON_AddStringToObject(s, "mode", "train");
    cJSON_AddStringToObject(s, "rundir", a->rundir);
    train_summary_add_run(s, &r->run, a->scratch, a->pretrained, nn_precision_name(a->precision));
    train_summary_add_epoch(s, &r->run, a->model.enc.points);
    /* the last evaluation, also under the plain names */
    cJSON_AddNumberToObject(s, "instance_miou", r->last.epoch >= 0 ? r->last.instance_miou : -1);
    cJSON_AddNumberToObject(s, "class_miou", r->last.epoch >= 0 ? r->last.class_miou : -1);
    add_record(s, "last", &r->last);
    add_record(s, "best", &r->best);
    cJSON_AddStringToObject(s, "best_selection", "test split, best instance mIoU (as Point-M2AE; docs/partseg.md)");
    train_summary_add_files_times(s, &r->run);
    cJSON_AddNumberToObject(s, "seconds_checkpoint", r->run.seconds_checkpoint);
    cJSON_AddNumberToObject(s, "samples_per_s", r->run.seconds_total > 0 ? samples / r->run.seconds_total : 0);
}

static int options(void *state, cli_opt *opts)
{
    cli_args *c = state;
    partseg_args *a = &c->p;
    *a = (partseg_args){.seed = 0, .epochs = 300, .sched_epochs = 0, .warmup_epochs = 10, .batch = 16, .micro = 0,
                        .ckpt_every = 1, .keep = 2, .log_every = 50, .eval_every = 1, .lr = 2e-4, .min_lr = 1e-6,
                        .warmup_lr = 1e-6, .weight_decay = 0.05, .clip_grad = 10};
    c->prop_hidden = 1536;
    c->prop_out = 1024;
    c->label_dim = 64;
    c->dropout = 0.5;
    const train_cli_fields tf = {.scratch = &a->scratch, .resume = &a->resume, .eval_only = &c->eval_only,
                                 .precision = c->precision, .ckpt_every = &a->ckpt_every, .keep = &a->keep, .log_every = &a->log_every,
                                 .eval_every = &a->eval_every, .min_lr = &a->min_lr, .warmup_lr = &a->warmup_lr,
                                 .weight_decay = &a->weight_decay, .clip_grad = &a->clip_grad};
    const cli_opt head[] = {
        {"data", OPT_STRING, a->data, "FILE", "training split with part labels (synth --parts, convert --format shapenetpart)"},
        {"test", OPT_STRING, a->test, "FILE", "test split, evaluated every --eval-every epochs"},
        {"output", OPT_STRING, a->rundir, "RUNDIR", "run directory: checkpoints, best.h5, metrics.csv, curves.png (-o)"},
        {"checkpoint", OPT_STRING, a->pretrained, "FILE",
         "pre-training checkpoint whose encoder to fine-tune (with --eval-only: RUNDIR/best.h5 or a ckpt)"},
    };
    const cli_opt mid[] = {
        {"predictions", OPT_STRING, c->predictions, "FILE",
         "with --eval-only: write the test points, true and predicted parts here (default: predictions.h5 "
         "beside --checkpoint; draw one with render --segmentation)"},
        {"seed", OPT_LONG, &a->seed, "S", "seed of the new layers' initialisation, data order, views, dropout, drop path"},
        {"epochs", OPT_LONG, &a->epochs, "E", "epochs to run (Point-M2AE: 300)"},
        {"sched-epochs", OPT_LONG, &a->sched_epochs, "E", "length of the cosine schedule (0: --epochs)"},
        {"warmup-epochs", OPT_LONG, &a->warmup_epochs, "E", "linear warm-up epochs (10)"},
        {"batch", OPT_LONG, &a->batch, "B", "global batch: shapes per optimiser step over all ranks (16)"},
        {"micro-batch", OPT_LONG, &a->micro, "M",
         "shapes per forward/backward (BatchNorm statistics, test batches); 0: batch / ranks. Fix it to make "
         "the results independent of the rank count"},
        {"lr", OPT_DOUBLE, &a->lr, "LR", "peak learning rate (AdamW, 2e-4)"},
    };
    const cli_opt own[] = {
        {"n-categories", OPT_INT, &c->n_categories, "C", "object categories (0: from the training data)"},
        {"n-parts", OPT_INT, &c->n_parts, "P", "parts over all categories (0: from the training data)"},
        {"radius", OPT_STRING, c->radius, "R0,R1,R2", "local-attention radius per stage, 0 = off (0.32,0.64,1.28)"},
        {"prop-hidden", OPT_INT, &c->prop_hidden, "H", "hidden width of each scale's propagation MLP (1536)"},
        {"prop-out", OPT_INT, &c->prop_out, "F", "output width of each scale's propagation MLP (1024)"},
        {"label-dim", OPT_INT, &c->label_dim, "L", "width of the category feature (64)"},
        {"head", OPT_STRING, c->head, "H1,H2,H3", "widths of the per-point head (1024,512,256)"},
        {"dropout", OPT_DOUBLE, &c->dropout, "P", "dropout after the head's first layer (0.5)"},
    };
    int n = cmd_opts_add(opts, 0, head, (int)(sizeof head / sizeof head[0]));
    n = train_run_opts_add(opts, n, &tf);
    n = cmd_opts_add(opts, n, mid, (int)(sizeof mid / sizeof mid[0]));
    n = train_loop_opts_add(opts, n, &tf);
    n = cmd_opts_add(opts, n, own, (int)(sizeof own / sizeof own[0]));
    return model_opts_append(&c->mo, opts, n);
}

const i2p_command cmd_partseg = {
    .name = "partseg",
    .summary = "part segmentation (ShapeNetPart) with the pre-trained encoder, and its evaluation",
    .usage = "i2pmae partseg --data TRAIN.h5 --test TEST.h5 (--checkpoint PRETRAIN.h5 | --scratch) -o RUNDIR "
             "[--config jobs/partseg-X.ini] [--resume]\n"
             "       i2pmae partseg --eval-only --checkpoint RUNDIR/best.h5 --test TEST.h5 [--predictions FILE]",
    .description =
        "Data-parallel training (run under mpirun/srun) of Point-M2AE's segmentation network on a\n"
        "pre-trained encoder: features of the three scales propagated to the points, global and\n"
        "category features, a per-point head, cross-entropy over the parts; one AdamW step per\n"
        "iteration with the per-epoch cosine schedule. The test split is evaluated every epoch\n"
        "(instance and class mIoU, predictions restricted to the parts of the known category);\n"
        "metrics.csv holds every epoch, best.h5 the best instance mIoU. --resume continues exactly,\n"
        "best record included. --points defaults to 2048. Details: docs/partseg.md.",
    .state_size = sizeof(cli_args),
    .preemptible = 1,
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
