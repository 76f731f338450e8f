/* finetune.h -- fine-tuning for classification, data parallel over the ranks of a communicator
 * (i2pmae-spec.md section 8 "Fine-tuning"; user guide docs/finetune.md).
 *
 * Epoch loop like pre-training (pretrain.h): each optimiser step's global batch (data_order.h) is
 * cut into micro-batches; each rank runs classifier_train_step on its micro-batches (training
 * views of finetune_data.h), each starting from the step's BatchNorm running statistics, and
 * accumulates gradients, running statistics, loss and correct predictions divided by the
 * micro-batches per step into one double buffer; one MPI_Allreduce (grad_allreduce.h) makes them
 * the step's averages on every rank, so nothing depends on the rank count for a fixed micro-batch.
 * A non-finite loss stops the run before the update, naming the step and the last good checkpoint.
 * Then gradient-norm clipping (clip_grad_norm) and AdamW (optim.h) with the per-epoch cosine rate.
 * After every eval_every-th epoch (and the last) the test split is evaluated (finetune_eval.h);
 * the best test accuracy so far (first epoch reaching it) and its confusion matrix are kept, its
 * weights in RUNDIR/best.h5. Checkpoints RUNDIR/ckpt-<step>.h5 every ckpt_every epochs and at the
 * end (the last `keep` kept) hold parameters, AdamW moments, BatchNorm buffers AND the best record,
 * so --resume continues exactly, best epoch included. Rank 0 writes metrics.csv (one row per
 * epoch, rows after the resumed epoch dropped on --resume), curves.png, confusion.csv and
 * per_class.csv (of the last evaluation).
 */
#ifndef I2P_FINETUNE_H
#define I2P_FINETUNE_H

#include <mpi.h>

#include "classifier.h"
#include "cli.h"
#include "data_order.h"
#include "finetune_data.h"
#include "finetune_eval.h"
#include "paths.h"
#include "train_common.h"

typedef struct {
    char data[CLI_STR_LEN], test[CLI_STR_LEN], rundir[CLI_STR_LEN];
    char pretrained[CLI_STR_LEN]; /* pre-training checkpoint; "" with scratch */
    int scratch, resume;
    ft_protocol protocol;
    long seed;
    long epochs;          /* epochs run (spec: 300) */
    long sched_epochs;    /* cosine length t_initial (0: epochs) */
    long warmup_epochs;   /* 10 */
    long batch, micro;    /* global batch (32); micro-batch (0: batch / ranks) */
    long ckpt_every;      /* epochs between checkpoints */
    long keep, log_every, eval_every;
    double lr, min_lr, warmup_lr, weight_decay, clip_grad;
    classifier_config model; /* n_classes 0: from the training data */
    nn_precision precision; /* matmul precision (--precision; classifier_set_precision), in the configuration */
    long fault_nan_step;  /* test hook (I2PMAE_TEST_NAN_STEP): step whose loss is made NaN; 0 off */
    /* how a step runs (not part of the configuration: the same results bitwise), as pretrain's */
    int overlap_allreduce; /* 1: gradient buckets reduced during the backward (grad_allreduce.h) */
    double bucket_mb;      /* their size in MiB of doubles */
    int recompute;         /* 1: activation checkpointing per transformer block */
    /* pipeline parallel (ft_pipe.h): stages per replica (1: data parallel only), units per stage
     * ("": balanced in FLOPs), "gpipe" or "1f1b"; not part of the configuration either */
    int stages;
    char stage_split[CLI_STR_LEN], pipe_schedule[CLI_STR_LEN];
} finetune_args;

/* The options a shares with the other training command (train_common.h). */
train_opts finetune_train_opts(const finetune_args *a);

typedef struct {
    train_result run;
    int n_classes;
    ft_record last, best;
    /* the rest of this rank's split (the JSON's per_rank): the optimiser updates, waiting for the
     * slowest rank after the micro-batches, reading and augmenting the micro-batches */
    double seconds_update, seconds_idle, seconds_data;
    double seconds_pipe_wait; /* --stages > 1: waiting for the neighbours' messages */
    int overlap_allreduce;    /* 1: the overlapped reduction ran (not under --stages: after the step) */
} finetune_result;

int finetune_run(const finetune_args *a, MPI_Comm comm, finetune_result *r, char *err);

#endif
