/* cli_pretrain.c -- `i2pmae pretrain`: options, the run, the JSON summary (engine: pretrain.c). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "model_opts.h"
#include "pretrain.h"
#include "pipe_split.h"
#include "pretrain_data.h"
#include "summary.h"
#include "train_common.h"
#include "train_log.h"

typedef struct {
    pretrain_args a;
    model_opts model;
    char masking[CLI_STR_LEN]; /* "2d-guided", "random" or "" (2d-guided with --features, else random) */
    long visible;              /* --visible (0: from mask-ratio) */
    char precision[CLI_STR_LEN]; /* --precision: "fp32" (default) or "bf16" */
    pretrain_result r;
} pretrain_state;

static int options(void *state, cli_opt *opts)
{
    pretrain_state *st = state;
    pretrain_args *a = &st->a;
    *a = (pretrain_args){.views = 3, .seed = 0, .epochs = 300, .sched_epochs = 400, .warmup_epochs = 10,
                         .batch = 64, .micro = 0, .max_steps = 0, .ckpt_every = 1000, .keep = 3,
                         .log_every = 20, .lr = 1e-3, .min_lr = 1e-6, .warmup_lr = 1e-6,
                         .weight_decay = 0.05, .loss_3d_weight = 1.0, .loss_2d_weight = 1.0,
                         .targets = "clip", .svm_c = 0.01, .stages = 1, .pipe_schedule = "1f1b",
                         .overlap_allreduce = 1, .bucket_mb = 8};
    const cli_opt own[] = {
        {"data", OPT_STRING, a->data, "FILE", "point-cloud file to pre-train on (e.g. ShapeNet-55 train)"},
        {"features", OPT_STRING, a->features, "FILE",
         "its features file (i2pmae extract); not needed for 3D-only pre-training (--loss-2d-weight 0 "
         "or --targets none, with --masking random)"},
        {"masking", OPT_STRING, st->masking, "2d-guided|random",
         "how the visible scale-2 tokens are drawn: from the 2D saliency or uniformly (default: "
         "2d-guided with --features, random without)"},
        {"loss-3d-weight", OPT_DOUBLE, &a->loss_3d_weight, "W", "weight of the 3D (Chamfer) loss; 0 turns it off"},
        {"loss-2d-weight", OPT_DOUBLE, &a->loss_2d_weight, "W",
         "weight of the 2D-semantic (MSE) loss; 0 turns it off and its targets are not read"},
        {"targets", OPT_STRING, a->targets, "clip|none",
         "2D targets reconstructed: the features file's 2D features (clip) or none (3D only)"},
        {"visible", OPT_LONG, &st->visible, "N", "visible scale-2 tokens per cloud (spec: 13 of 64); 0: from mask-ratio"},
        {"output", OPT_STRING, a->rundir, "RUNDIR", "run directory: checkpoints, loss.csv, loss.png (-o)"},
        {"resume", OPT_FLAG, &a->resume, NULL, "continue from the newest valid checkpoint in RUNDIR"},
        {"init", OPT_STRING, a->init, "CKPT.h5",
         "start a new run from this checkpoint's parameters and BatchNorm buffers (pretrain's, or one "
         "written by import): fresh AdamW state, step 0, a new schedule; the architecture must match"},
        {"seed", OPT_LONG, &a->seed, "S", "seed of initialisation, data order, augmentation, masks"},
        {"precision", OPT_STRING, st->precision, "fp32|bf16",
         "matmul precision: fp32 (default) or bf16 mixed precision (bf16 matmul inputs, f32 "
         "accumulation, f32 weights, optimiser and losses; needs avx512_bf16 or AMX)"},
        {"epochs", OPT_LONG, &a->epochs, "E", "epochs to run (spec: max_epoch 300)"},
        {"sched-epochs", OPT_LONG, &a->sched_epochs, "E", "length of the cosine schedule (spec: 400)"},
        {"warmup-epochs", OPT_LONG, &a->warmup_epochs, "E", "linear warm-up epochs (spec: 10)"},
        {"steps", OPT_LONG, &a->max_steps, "N", "stop after N optimiser steps in all (0: all epochs)"},
        {"batch", OPT_LONG, &a->batch, "B", "global batch: samples per optimiser step over all ranks"},
        {"micro-batch", OPT_LONG, &a->micro, "M",
         "samples per forward/backward (BatchNorm statistics); 0: batch / ranks. Fix it to make the "
         "losses independent of the rank count"},
        {"lr", OPT_DOUBLE, &a->lr, "LR", "peak learning rate (AdamW)"},
        {"min-lr", OPT_DOUBLE, &a->min_lr, "LR", "cosine floor"},
        {"warmup-lr", OPT_DOUBLE, &a->warmup_lr, "LR", "learning rate of epoch 0"},
        {"weight-decay", OPT_DOUBLE, &a->weight_decay, "WD", "AdamW weight decay (not on biases, norms, tokens)"},
        {"views", OPT_INT, &a->views, "V", "views the features file must have"},
        {"checkpoint-every", OPT_LONG, &a->ckpt_every, "N", "write a checkpoint every N steps (and at the end)"},
        {"keep", OPT_LONG, &a->keep, "K", "keep the newest K checkpoints"},
        {"log-every", OPT_LONG, &a->log_every, "N", "progress line and loss.csv row every N steps"},
        {"svm-every", OPT_LONG, &a->svm_every, "N",
         "SVM monitor: every N epochs and at the end, the encoder's linear-SVM test accuracy goes into "
         "loss.csv (svm_acc), loss.png and the JSON line; 0: off"},
        {"svm-data", OPT_STRING, a->svm_data, "FILE", "SVM monitor: training split (as svm --data)"},
        {"svm-test", OPT_STRING, a->svm_test, "FILE", "SVM monitor: test split (as svm --test)"},
        {"svm-c", OPT_DOUBLE, &a->svm_c, "C", "SVM monitor: the SVM cost"},
    };
    int n = cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
    n = train_stage_opts_add(opts, n, &a->stages, a->stage_split, a->pipe_schedule,
                             "units per stage of the 6 units embed0, encoder.0, encoder.1, encoder.2, decoder, heads "
                             "(e.g. 2,4); default: balanced in FLOPs");
    n = train_step_opts_add(opts, n, &a->overlap_allreduce, &a->bucket_mb, &a->recompute);
    return model_opts_append(&st->model, opts, n);
}

/* Usage errors; also applies the architecture options to the spec's network. */
static int check(void *state, char *err)
{
    pretrain_state *st = state;
    const pretrain_args *a = &st->a;
    pretrain_args *w = &st->a;
    if (!a->data[0] || !a->rundir[0]) return errf(err, "pretrain: --data and -o RUNDIR are required");
    if (a->init[0] && a->resume)
        return errf(err, "pretrain: --init starts a new run and --resume continues one: give one of them");
    if (strcmp(a->targets, "clip") && strcmp(a->targets, "none"))
        return errf(err, "--targets %s: must be clip or none", a->targets);
    if (!(a->loss_3d_weight >= 0) || !(a->loss_2d_weight >= 0))
        return errf(err, "--loss-3d-weight %g, --loss-2d-weight %g: must be non-negative", a->loss_3d_weight,
                    a->loss_2d_weight);
    int has_2d = a->loss_2d_weight > 0 && strcmp(a->targets, "none");
    if (a->loss_3d_weight == 0 && !has_2d)
        return errf(err, "pretrain: no loss left (--loss-3d-weight 0 and no 2D targets)");
    if (!st->masking[0]) snprintf(st->masking, sizeof st->masking, "%s", a->features[0] ? "2d-guided" : "random");
    if (strcmp(st->masking, "2d-guided") && strcmp(st->masking, "random"))
        return errf(err, "--masking %s: must be 2d-guided or random", st->masking);
    w->random_masking = !strcmp(st->masking, "random");
    if (pretrain_needs_features(a) && !a->features[0])
        return errf(err, "pretrain: --features is required for %s (3D-only pre-training without it: "
                    "--loss-2d-weight 0 or --targets none, and --masking random)",
                    has_2d ? "the 2D targets" : "--masking 2d-guided");
    if (nn_precision_parse(st->precision[0] ? st->precision : "fp32", &w->precision, err)) return -1;
    if (st->visible < 0) return errf(err, "--visible %ld: must be non-negative", st->visible);
    if (a->batch < 1) return errf(err, "--batch %ld: must be at least 1", a->batch);
    if (a->micro < 0) return errf(err, "--micro-batch %ld: must be 0 (batch / ranks) or positive", a->micro);
    if (a->epochs < 1) return errf(err, "--epochs %ld: must be at least 1", a->epochs);
    if (a->sched_epochs < 1) return errf(err, "--sched-epochs %ld: must be at least 1", a->sched_epochs);
    if (a->warmup_epochs < 0) return errf(err, "--warmup-epochs %ld: must be non-negative", a->warmup_epochs);
    if (a->max_steps < 0) return errf(err, "--steps %ld: must be non-negative", a->max_steps);
    if (a->ckpt_every < 1) return errf(err, "--checkpoint-every %ld: must be at least 1", a->ckpt_every);
    if (a->keep < 1) return errf(err, "--keep %ld: must be at least 1", a->keep);
    if (a->log_every < 1) return errf(err, "--log-every %ld: must be at least 1", a->log_every);
    if (!(a->lr > 0) || !isfinite(a->lr)) return errf(err, "--lr %g: must be positive and finite", a->lr);
    if (train_log_path_unsafe(a->rundir))
        return errf(err, "-o: the run directory name holds quotes or control characters");
    if (a->weight_decay < 0) return errf(err, "--weight-decay %g: must be non-negative", a->weight_decay);
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    if (a->views < 1) return errf(err, "--views %d: must be at least 1", a->views);
    if (a->svm_every < 0) return errf(err, "--svm-every %ld: must be non-negative", a->svm_every);
    if (a->svm_every > 0 && (!a->svm_data[0] || !a->svm_test[0]))
        return errf(err, "pretrain: --svm-every needs --svm-data and --svm-test");
    if (!(a->svm_c > 0)) return errf(err, "--svm-c %g: must be positive", a->svm_c);
    double unit[PIPE_UNITS] = {1, 1, 1, 1, 1, 1};
    pipe_unit_table units;
    pipe_unit_table_3d(unit, &units);
    if (train_stage_opts_check(a->stages, a->stage_split, a->pipe_schedule, &units, err)) return -1;
    if (train_step_opts_check(a->overlap_allreduce, a->bucket_mb, err)) return -1;
    model3d_config_default(&st->a.model);
    if (model_opts_apply(&st->model, &st->a.model, err)) return -1;
    if (st->visible > st->a.model.groups[2])
        return errf(err, "--visible %ld: more than the %d scale-2 tokens (groups)", st->visible,
                    st->a.model.groups[2]);
    st->a.model.visible = (int)st->visible;
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    pretrain_state *st = state;
    (void)env;
    const char *nan_step = getenv("I2PMAE_TEST_NAN_STEP");
    st->a.fault_nan_step = nan_step ? atol(nan_step) : 0;
    const char *fail_step = getenv("I2PMAE_TEST_FAIL_STEP");
    st->a.fault_fail_step = fail_step ? atol(fail_step) : 0;
    return pretrain_run(&st->a, MPI_COMM_WORLD, &st->r, err);
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const pretrain_args *a = &((pretrain_state *)state)->a;
    const pretrain_result *r = &((pretrain_state *)state)->r;
    (void)env;
    long steps = r->end_step - r->start_step;
    double samples = (double)steps * (double)r->layout.batch;
    cJSON_AddStringToObject(s, "rundir", a->rundir);
    cJSON_AddBoolToObject(s, "resumed", r->resumed);
    if (a->init[0]) cJSON_AddStringToObject(s, "init", a->init);
    cJSON_AddNumberToObject(s, "start_step", (double)r->start_step);
    cJSON_AddNumberToObject(s, "end_step", (double)r->end_step);
    cJSON_AddNumberToObject(s, "batch", (double)r->layout.batch);
    cJSON_AddNumberToObject(s, "micro_batch", (double)r->layout.micro);
    cJSON_AddNumberToObject(s, "samples", (double)r->layout.n);
    cJSON_AddNumberToObject(s, "parameters", (double)r->n_params);
    cJSON_AddNumberToObject(s, "loss", r->loss);
    cJSON_AddNumberToObject(s, "loss_3d", r->loss_3d);
    cJSON_AddNumberToObject(s, "loss_2d", r->loss_2d);
    cJSON_AddNumberToObject(s, "lr", r->lr);
    cJSON_AddStringToObject(s, "masking", a->random_masking ? "random" : "2d-guided");
    cJSON_AddNumberToObject(s, "loss_3d_weight", a->loss_3d_weight);
    cJSON_AddNumberToObject(s, "loss_2d_weight", a->loss_2d_weight);
    cJSON_AddStringToObject(s, "targets", pretrain_needs_features(a) & PD_TARGETS ? a->targets : "none");
    cJSON_AddNumberToObject(s, "visible", (double)r->visible);
    cJSON_AddStringToObject(s, "precision", nn_precision_name(a->precision));
    cJSON_AddStringToObject(s, "checkpoint", r->last_checkpoint);
    cJSON_AddNumberToObject(s, "seconds", r->seconds_total);
    cJSON_AddNumberToObject(s, "seconds_data", r->seconds_data);
    cJSON_AddNumberToObject(s, "seconds_compute", r->seconds_compute);
    cJSON_AddNumberToObject(s, "seconds_allreduce", r->seconds_allreduce);
    cJSON_AddNumberToObject(s, "seconds_checkpoint", r->seconds_checkpoint);
    if (a->stages > 1) {
        cJSON_AddNumberToObject(s, "stages", a->stages);
        cJSON_AddNumberToObject(s, "seconds_pipe_wait", r->seconds_pipe_wait);
    }
    cJSON_AddNumberToObject(s, "samples_per_s", r->seconds_total > 0 ? samples / r->seconds_total : 0);
    cJSON_AddNumberToObject(s, "allreduce_share",
                            r->seconds_total > 0 ? r->seconds_allreduce / r->seconds_total : 0);
    cJSON_AddBoolToObject(s, "overlap_allreduce", r->overlap_allreduce); /* what ran */
    cJSON_AddNumberToObject(s, "bucket_mb", a->bucket_mb);
    cJSON_AddBoolToObject(s, "recompute", a->recompute);
    cJSON_AddNumberToObject(s, "step_arena_bytes", (double)r->step_arena_bytes);
    double mine[4] = {r->compute_s, r->comm_s, r->idle_s, r->io_s};
    summary_add_rank_times(s, mine, r->seconds_total, MPI_COMM_WORLD); /* all ranks summarise */
    if (a->svm_every > 0) { /* the SVM monitor; epochs = optimiser steps / steps per epoch */
        cJSON *m = cJSON_AddObjectToObject(s, "svm_monitor");
        cJSON_AddNumberToObject(m, "every_epochs", (double)a->svm_every);
        cJSON_AddNumberToObject(m, "c", a->svm_c);
        cJSON_AddStringToObject(m, "data", a->svm_data);
        cJSON_AddStringToObject(m, "test", a->svm_test);
        cJSON_AddNumberToObject(m, "measurements", (double)r->svm_measurements);
        cJSON_AddNumberToObject(m, "seconds", r->seconds_svm);
        cJSON_AddNumberToObject(s, "svm_acc_last", r->svm_acc_last);
        cJSON_AddNumberToObject(s, "svm_acc_best", r->svm_acc_best);
        cJSON_AddNumberToObject(s, "svm_best_epoch", r->svm_best_epoch);
        cJSON_AddNumberToObject(s, "svm_best_step", (double)r->svm_best_step);
    }
}

const i2p_command cmd_pretrain = {
    .name = "pretrain",
    .summary = "I2P-MAE pre-training of the 3D network",
    .usage = "i2pmae pretrain --data DATA.h5 [--features FEATURES.h5] -o RUNDIR [--config jobs/X.ini] [--resume | --init CKPT.h5]",
    .description =
        "Data-parallel pre-training (run under mpirun/srun): each step's global batch is cut into\n"
        "micro-batches spread over the ranks; gradients are averaged with one MPI_Allreduce; AdamW\n"
        "with the per-epoch cosine schedule of the spec. Checkpoints (HDF5, Fletcher32) every N steps\n"
        "and at the end; --resume continues exactly; --init CKPT.h5 starts a new run from a checkpoint's\n"
        "weights (e.g. one written by import). batch must be a multiple of micro-batch x ranks.\n"
        "Architecture options default to the spec's network. The ablation switches (--masking,\n"
        "--loss-3d-weight, --loss-2d-weight, --targets, --visible) give the paper's ablation rows\n"
        "(jobs/ablation-*.ini). --svm-every N measures the encoder's linear-SVM test accuracy\n"
        "every N epochs (loss.csv, loss.png, JSON). Details: docs/pretrain.md.",
    .state_size = sizeof(pretrain_state),
    .preemptible = 1,
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
