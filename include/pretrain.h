/* pretrain.h -- I2P-MAE pre-training, data parallel over the ranks of a communicator
 * (architecture.md sections 3-4, i2pmae-spec.md sections 1, 7 and 10; user guide docs/pretrain.md).
 *
 * One optimiser step: the step's global batch (data_order.h) is cut into micro-batches; each rank
 * runs forward/backward on its micro-batches (pretrain_data.h, model3d_train_step), accumulates
 * gradients / micro_per_step, BatchNorm running statistics / ranks and losses / micro_per_step into
 * one flat double buffer, and its sum over the ranks (grad_allreduce.h: one MPI_Allreduce after the
 * backward, or with overlap_allreduce buckets reduced during the last micro-batch's backward, the same
 * sums) makes them the step's averages on every rank; every rank then applies the same AdamW update (optim.h; lr from the per-epoch cosine schedule).
 * A non-finite loss stops the run before the update with an error naming the step and the last good
 * checkpoint. Checkpoints (checkpoint.h) every ckpt_every steps and at the end, the last `keep`
 * kept; --resume restores parameters, AdamW moments, BatchNorm buffers and the step, and the later
 * steps repeat an uninterrupted run exactly (everything random is keyed by seed, epoch, step and
 * sample); --init starts a new run from a checkpoint's parameters and buffers (pretrain_init.h).
 * Rank 0 writes RUNDIR/loss.csv and RUNDIR/loss.png (train_log.h). With svm_every > 0 the
 * encoder's linear-SVM test accuracy is measured every svm_every epochs and at the end
 * (svm_monitor.h; then comm must be MPI_COMM_WORLD); it does not change training.
 * The ablation switches (masking, loss weights, 2D targets, visible tokens) are part of the
 * configuration stored in checkpoints ("objective") and compared on --resume.
 * With stages > 1 the ranks form ranks / stages data replicas of `stages` pipeline stages
 * (pipe_step.h) that play the part of the data-parallel ranks, with bitwise the same results.
 */
#ifndef I2P_PRETRAIN_H
#define I2P_PRETRAIN_H

#include <mpi.h>

#include "cli.h"
#include "data_order.h"
#include "model3d.h"
#include "paths.h"

typedef struct {
    char data[CLI_STR_LEN], features[CLI_STR_LEN], rundir[CLI_STR_LEN];
    int resume;
    char init[CLI_STR_LEN]; /* --init: start from this checkpoint's parameters (pretrain_init.h); "" none */
    int views;            /* views the features file must have */
    long seed;
    long epochs;          /* epochs run (spec: 300) */
    long sched_epochs;    /* cosine length t_initial (spec: 400) */
    long warmup_epochs;   /* linear warm-up epochs (spec: 10) */
    long batch, micro;    /* global batch; micro-batch (0: batch / ranks) */
    long max_steps;       /* stop after this many steps in all (0: epochs x steps per epoch) */
    long ckpt_every, keep, log_every;
    double lr, min_lr, warmup_lr, weight_decay;
    model3d_config model; /* architecture (model.visible: --visible); the 2D fields are filled
                             from the features file (0 when no 2D targets are read) */
    /* the ablation switches (i2pmae-spec.md 6-7; the paper's ablation rows are jobs/ablation-*.ini) */
    int random_masking;   /* 1: scale-2 visible tokens drawn uniformly; 0: 2D-guided (saliency) */
    double loss_3d_weight, loss_2d_weight; /* loss = w3 * loss_3d + w2 * loss_2d; 0 turns one off */
    char targets[CLI_STR_LEN]; /* 2D targets reconstructed: "clip" (the features file's) or "none" */
    nn_precision precision; /* matmul precision (--precision; model3d_set_precision), in the configuration */
    long fault_nan_step;  /* test hook (I2PMAE_TEST_NAN_STEP): step whose loss is made NaN; 0 off */
    long fault_fail_step; /* test hook (I2PMAE_TEST_FAIL_STEP): step whose first micro-batch fails on
                             the last rank (the others run theirs and start their reductions); 0 off */
    /* the SVM monitor (svm_monitor.h): every svm_every epochs (0: off), splits svm_data/svm_test */
    long svm_every;
    char svm_data[CLI_STR_LEN], svm_test[CLI_STR_LEN];
    double svm_c;
    /* pipeline parallel (pipe_step.h): stages per replica (1: data parallel only), units per stage
     * ("": balanced in FLOPs), "gpipe" or "1f1b" */
    int stages;
    char stage_split[CLI_STR_LEN], pipe_schedule[CLI_STR_LEN];
    /* how a step runs (not part of the configuration: the results are the same bitwise) */
    int overlap_allreduce; /* 1: gradient buckets reduced during the backward (grad_allreduce.h) */
    double bucket_mb;      /* their size in MiB of doubles */
    int recompute;         /* 1: activation checkpointing per transformer block */
} pretrain_args;

typedef struct {
    step_layout layout;
    long start_step, end_step;   /* steps done before this run and at its end */
    long n_params;
    int visible;                 /* visible scale-2 tokens per cloud */
    int resumed;
    double seconds_total, seconds_allreduce, seconds_data, seconds_compute, seconds_checkpoint;
    double seconds_pipe_wait;    /* --stages > 1: waiting for the neighbours' messages */
    /* this rank's split of the training time (the JSON's per_rank, like extract's): compute
     * (forward/backward, accumulation, the update), comm (MPI calls of the gradient reduction: the
     * same as seconds_allreduce), idle (waiting for the slowest rank at the end of the
     * micro-batches), io (data + checkpoints) */
    double compute_s, comm_s, idle_s, io_s;
    long step_arena_bytes;       /* the model's step arena: the activations of a micro-batch */
    int overlap_allreduce;       /* 1: the overlapped reduction ran (--overlap-allreduce; under
                                  * --stages only with 2+ replicas) */
    double loss, loss_3d, loss_2d, lr; /* of the last step */
    /* the SVM monitor: last and best test accuracy (NAN: none), epochs done at the best (its step:
     * svm_best_step, -1 if none), measurements in this run, seconds spent on them */
    double svm_acc_last, svm_acc_best, svm_best_epoch, seconds_svm;
    long svm_best_step, svm_measurements;
    char last_checkpoint[I2P_PATH_LEN];
} pretrain_result;

/* What of the features file the run reads (pretrain_data.h PD_SALIENCY | PD_TARGETS); 0: none,
 * the file is not opened (3D-only pre-training with random masking). */
int pretrain_needs_features(const pretrain_args *a);

/* Runs (or resumes) the training described by a. Collective over comm. */
int pretrain_run(const pretrain_args *a, MPI_Comm comm, pretrain_result *r, char *err);

#endif
