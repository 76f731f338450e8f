/* cli_pretrain.c -- `i2pmae pretrain`: options, the run, the JSON summary (engine: pretrain.c). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "errors.h"
#include "log.h"
#include "model_opts.h"
#include "pretrain.h"
#include "summary.h"

enum { N_OWN_OPTS = 19 };

static int check_args(const pretrain_args *a, char *err)
{
    if (!a->data[0] || !a->features[0] || !a->rundir[0])
        return errf(err, "pretrain: --data, --features and -o RUNDIR are required");
    if (a->batch < 1) return errf(err, "--batch %ld: must be at least 1", a->batch);
    if (a->micro < 0) return errf(err, "--micro-batch %ld: must be 0 (batch / ranks) or positive", a->micro);
    if (a->epochs < 1) return errf(err, "--epochs %ld: must be at least 1", a->epochs);
    if (a->sched_epochs < 1) return errf(err, "--sched-epochs %ld: must be at least 1", a->sched_epochs);
    if (a->warmup_epochs < 0) return errf(err, "--warmup-epochs %ld: must be non-negative", a->warmup_epochs);
    if (a->max_steps < 0) return errf(err, "--steps %ld: must be non-negative", a->max_steps);
    if (a->ckpt_every < 1) return errf(err, "--checkpoint-every %ld: must be at least 1", a->ckpt_every);
    if (a->keep < 1) return errf(err, "--keep %ld: must be at least 1", a->keep);
    if (a->log_every < 1) return errf(err, "--log-every %ld: must be at least 1", a->log_every);
    if (!(a->lr > 0)) return errf(err, "--lr %g: must be positive", a->lr);
    if (a->weight_decay < 0) return errf(err, "--weight-decay %g: must be non-negative", a->weight_decay);
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    if (a->views < 1) return errf(err, "--views %d: must be at least 1", a->views);
    return 0;
}

static void emit_summary(const pretrain_args *a, const pretrain_result *r, int rank, int size)
{
    long steps = r->end_step - r->start_step;
    double samples = (double)steps * (double)r->layout.batch;
    cJSON *s = summary_begin("pretrain", size);
    cJSON_AddStringToObject(s, "rundir", a->rundir);
    cJSON_AddBoolToObject(s, "resumed", r->resumed);
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
    cJSON_AddStringToObject(s, "checkpoint", r->last_checkpoint);
    cJSON_AddNumberToObject(s, "seconds", r->seconds_total);
    cJSON_AddNumberToObject(s, "seconds_data", r->seconds_data);
    cJSON_AddNumberToObject(s, "seconds_compute", r->seconds_compute);
    cJSON_AddNumberToObject(s, "seconds_allreduce", r->seconds_allreduce);
    cJSON_AddNumberToObject(s, "seconds_checkpoint", r->seconds_checkpoint);
    cJSON_AddNumberToObject(s, "samples_per_s", r->seconds_total > 0 ? samples / r->seconds_total : 0);
    cJSON_AddNumberToObject(s, "allreduce_share",
                            r->seconds_total > 0 ? r->seconds_allreduce / r->seconds_total : 0);
    summary_emit(s, rank);
}

int cmd_pretrain(int argc, char **argv)
{
    pretrain_args a = {.views = 3, .seed = 0, .epochs = 300, .sched_epochs = 400, .warmup_epochs = 10,
                       .batch = 64, .micro = 0, .max_steps = 0, .ckpt_every = 1000, .keep = 3,
                       .log_every = 20, .lr = 1e-3, .min_lr = 1e-6, .warmup_lr = 1e-6,
                       .weight_decay = 0.05};
    model_opts mo;
    memset(&mo, 0, sizeof mo);
    cli_opt opts[N_OWN_OPTS + MODEL_OPTS_COUNT] = {
        {"data", OPT_STRING, a.data, "FILE", "point-cloud file to pre-train on (e.g. ShapeNet-55 train)"},
        {"features", OPT_STRING, a.features, "FILE", "its features file (i2pmae extract)"},
        {"output", OPT_STRING, a.rundir, "RUNDIR", "run directory: checkpoints, loss.csv, loss.png (-o)"},
        {"resume", OPT_FLAG, &a.resume, NULL, "continue from the newest valid checkpoint in RUNDIR"},
        {"seed", OPT_LONG, &a.seed, "S", "seed of initialisation, data order, augmentation, masks"},
        {"epochs", OPT_LONG, &a.epochs, "E", "epochs to run (spec: max_epoch 300)"},
        {"sched-epochs", OPT_LONG, &a.sched_epochs, "E", "length of the cosine schedule (spec: 400)"},
        {"warmup-epochs", OPT_LONG, &a.warmup_epochs, "E", "linear warm-up epochs (spec: 10)"},
        {"steps", OPT_LONG, &a.max_steps, "N", "stop after N optimiser steps in all (0: all epochs)"},
        {"batch", OPT_LONG, &a.batch, "B", "global batch: samples per optimiser step over all ranks"},
        {"micro-batch", OPT_LONG, &a.micro, "M",
         "samples per forward/backward (BatchNorm statistics); 0: batch / ranks. Fix it to make the "
         "losses independent of the rank count"},
        {"lr", OPT_DOUBLE, &a.lr, "LR", "peak learning rate (AdamW)"},
        {"min-lr", OPT_DOUBLE, &a.min_lr, "LR", "cosine floor"},
        {"warmup-lr", OPT_DOUBLE, &a.warmup_lr, "LR", "learning rate of epoch 0"},
        {"weight-decay", OPT_DOUBLE, &a.weight_decay, "WD", "AdamW weight decay (not on biases, norms, tokens)"},
        {"views", OPT_INT, &a.views, "V", "views the features file must have"},
        {"checkpoint-every", OPT_LONG, &a.ckpt_every, "N", "write a checkpoint every N steps (and at the end)"},
        {"keep", OPT_LONG, &a.keep, "K", "keep the newest K checkpoints"},
        {"log-every", OPT_LONG, &a.log_every, "N", "progress line and loss.csv row every N steps"},
    };
    model_opts_table(&mo, opts + N_OWN_OPTS);
    const cli_cmd cmd = {
        "pretrain", "I2P-MAE pre-training of the 3D network",
        "i2pmae pretrain --data DATA.h5 --features FEATURES.h5 -o RUNDIR [--config jobs/X.ini] [--resume]",
        "Data-parallel pre-training (run under mpirun/srun): each step's global batch is cut into\n"
        "micro-batches spread over the ranks; gradients are averaged with one MPI_Allreduce; AdamW\n"
        "with the per-epoch cosine schedule of the spec. Checkpoints (HDF5, Fletcher32) every N steps\n"
        "and at the end; --resume continues exactly. batch must be a multiple of micro-batch x ranks.\n"
        "Architecture options default to the spec's network. Details: docs/pretrain.md.",
        opts, N_OWN_OPTS + MODEL_OPTS_COUNT, 0};
    int rank = 0, size = 1;
    cli_common common;
    int started = cmd_start(&cmd, argc, argv, &common, &rank, &size);
    if (started) return started > 0 ? 0 : 2;
    char err[I2P_ERR_LEN];
    int rc = 0;
    if (!rc) rc = check_args(&a, err);
    if (!rc) {
        model3d_config_default(&a.model);
        rc = model_opts_apply(&mo, &a.model, err);
    }
    if (rc) {
        if (rank == 0) log_error("%s", err);
        return 2;
    }
    log_set_verbose(common.verbose);
    const char *nan_step = getenv("I2PMAE_TEST_NAN_STEP");
    a.fault_nan_step = nan_step ? atol(nan_step) : 0;
    pretrain_result r;
    if (pretrain_run(&a, MPI_COMM_WORLD, &r, err)) {
        if (rank == 0) log_error("%s", err);
        return 1;
    }
    emit_summary(&a, &r, rank, size);
    return 0;
}
