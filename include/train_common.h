/* train_common.h -- the parts of a data-parallel supervised training loop shared by fine-tuning
 * (finetune.c) and part segmentation (partseg_train.c): their option checks, the result fields
 * they report alike, the epoch's sample order, the accumulation of one micro-batch, the step's
 * all-reduce + clip + AdamW update, the pre-trained encoder's load, and metrics.csv (their epoch
 * loop: train_loop.h; their checkpoints: train_ckpt.h; the JSON they write alike: train_summary.h).
 * Each function does exactly what both loops did, in the same order, so results are bitwise the
 * same. */
#ifndef I2P_TRAIN_COMMON_H
#define I2P_TRAIN_COMMON_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "data_order.h"
#include "grad_allreduce.h"
#include "optim.h"
#include "paths.h"
#include "pipe_split.h"

/* Where a signal stopped a run inside an epoch: the steps of that epoch done (0: at an epoch's
 * end) and the IEEE bits of the epoch's two running sums, saved in the checkpoint and resumed. */
typedef struct {
    long steps;
    int64_t sums[2];
} train_part_epoch;

/* The step an epoch starts at and its sums so far: p's (then p is cleared), or 0 and zeros. */
long train_part_take(train_part_epoch *p, double *sum0, double *sum1);
/* Records a stop after `steps` steps of the epoch with its sums so far. */
void train_part_keep(train_part_epoch *p, long steps, double sum0, double sum1);

/* What a run of finetune or partseg reports alike (their results hold one as `run`). */
typedef struct {
    step_layout layout;
    long start_epoch, end_epoch;  /* epochs done before this run and at its end */
    long n_params, n_test;
    int resumed;
    double train_loss, train_acc, lr; /* of the last epoch */
    double seconds_total, seconds_train, seconds_eval, seconds_allreduce, seconds_checkpoint;
    char last_checkpoint[I2P_PATH_LEN], best_path[I2P_PATH_LEN];
} train_result;

/* The options of a training command that finetune and partseg check alike (cmd: the command's
 * name, for the messages). */
typedef struct {
    const char *cmd, *data, *test, *rundir, *pretrained;
    int scratch, resume;
    long batch, micro, epochs, sched_epochs, warmup_epochs, ckpt_every, keep, log_every, eval_every;
    long seed;
    double lr, min_lr, warmup_lr, weight_decay, clip_grad;
} train_opts;

/* 0, or -1 with err naming the first option out of range (the required files first). */
int train_opts_check(const train_opts *o, char *err);

/* How a step runs (pretrain and finetune): --overlap-allreduce must be 0 or 1, --bucket-mb
 * positive; 0, or -1 with err naming the option. */
int train_step_opts_check(int overlap_allreduce, double bucket_mb, char *err);

/* Appends the options of how a step runs (--overlap-allreduce, --bucket-mb, --recompute), bound
 * to the given fields, to opts[0..n) (cmd_opts_add: -1 when the table is full or n < 0). */
int train_step_opts_add(cli_opt *opts, int n, int *overlap_allreduce, double *bucket_mb, int *recompute);

/* Appends the pipeline options (--stages, --stage-split, --pipe-schedule; pretrain and finetune),
 * bound to the given fields (stage_split, pipe_schedule: CLI_STR_LEN bytes); split_help is
 * --stage-split's help (it names the command's units). As cmd_opts_add. */
int train_stage_opts_add(cli_opt *opts, int n, int *stages, char *stage_split, char *pipe_schedule,
                         const char *split_help);
/* Usage errors of the pipeline options: an unknown schedule, --stage-split without --stages, a
 * split or stage count that does not fit the command's units (pipe_split_units). */
int train_stage_opts_check(int stages, const char *stage_split, const char *pipe_schedule,
                           const pipe_unit_table *units, char *err);

/* Where the options of a training command that finetune and partseg share alike are bound. */
typedef struct {
    int *scratch, *resume, *eval_only;
    char *precision; /* CLI_STR_LEN */
    long *ckpt_every, *keep, *log_every, *eval_every;
    double *min_lr, *warmup_lr, *weight_decay, *clip_grad;
} train_cli_fields;

/* Appends --scratch, --resume and --eval-only, bound to f's fields, to opts[0..n) (cmd_opts_add:
 * -1 when the table is full or n < 0). */
int train_run_opts_add(cli_opt *opts, int n, const train_cli_fields *f);
/* Appends --min-lr, --warmup-lr, --weight-decay, --precision, --clip-grad, --checkpoint-every,
 * --keep, --log-every and --eval-every, bound to f's fields (as train_run_opts_add). */
int train_loop_opts_add(cli_opt *opts, int n, const train_cli_fields *f);

/* Copies a network's encoder from the pre-training network pre (classifier_load_encoder,
 * partseg_load_encoder over their own network type); 0 or -1 with err. */
typedef int (*train_encoder_load_fn)(void *net, const model3d *pre, char *err);

/* --checkpoint path (ckpt_kind.h: a pre-training checkpoint, else one line saying what it is)
 * built on dnn as a pre-training network, its /params and /buffers read, and its encoder copied
 * into net by load; a mismatch is an error naming path and the checkpoint's architecture options.
 * Logs "<cmd>: encoder from <path> (pre-training step S)". Collective; 0 or -1 (every rank). */
int train_load_encoder(const char *cmd, const char *path, MPI_Comm comm, dnn_ctx *dnn, train_encoder_load_fn load,
                       void *net, char *err);

/* The cosine schedule (sched_epochs, else epochs, long) and AdamW's defaults with o's decay. */
void train_sched_init(const train_opts *o, cosine_schedule *sched, adamw_config *oc);

/* The start of a run: the run directory prepared (ckpt_prepare_rundir), then with --resume
 * resume(ctx, start) (*start: the epochs the newest checkpoint holds whole; *resumed set on
 * success), else unless --scratch load_pretrained(ctx); a run whose *start is beyond o->epochs
 * refused (*start == o->epochs: a complete run, whose caller finishes its outputs).
 * Collective; 0 or -1. */
int train_run_start(const train_opts *o, MPI_Comm comm, int (*resume)(void *ctx, long *start, char *err),
                    int (*load_pretrained)(void *ctx, char *err), void *ctx, long *start, int *resumed,
                    char *err);

/* A network's flat arrays, as the optimiser step sees them. */
typedef struct {
    float *params, *grads, *buffers;
    const model3d_tensor *tensors;
    int n_tensors;
    long n_params, n_buffers;
} train_net;

/* perm (n ids) := the sample order of epoch, unless *perm_epoch says it already holds it. */
void train_perm_ensure(int64_t *perm, long *perm_epoch, long seed, long epoch, long n);

/* Where the samples of a step come from: its epoch, its place in that epoch's order (pos) and the
 * order (perm, L->n ids). */
typedef struct {
    const step_layout *L;
    const int64_t *perm;
    long seed, step, epoch, pos;
} train_step_samples;

/* Step `step` of L: its epoch and place (step_position), perm made that epoch's order
 * (train_perm_ensure). */
train_step_samples train_step_samples_of(const step_layout *L, int64_t *perm, long *perm_epoch, long seed,
                                         long step);

/* The j-th micro-batch of `rank` (a data-parallel rank, or a pipeline's replica) in a step. */
typedef struct {
    long k;                 /* its index among the step's micro-batches (step_micro_index) */
    const int64_t *ids;     /* its L->micro sample ids: perm + pos + k * micro */
    uint64_t drop_key;      /* its drop-path / dropout key, from the seed, the step and k */
} train_micro;

train_micro train_micro_at(const train_step_samples *s, int rank, long j);

/* acc[0..n_params) += grads * inv, acc[n_params..+n_buffers) += buffers * inv (in double). */
void train_accumulate(double *acc, const train_net *net, double inv);
/* The buffers' part of train_accumulate alone (the gradients went through a grad_overlap). */
void train_accumulate_buffers(double *acc, const train_net *net, double inv);

/* The end of a step's micro-batches (rc: this rank's status, 0 or -1 with err) with the bucketed
 * reduction ov (NULL: none): ov's tail started (all its buckets, should this rank have failed),
 * then every rank learns any rank's error (the seconds waited there, for the slowest rank, are
 * added to *idle_s); on an error every rank has waited for the reductions before returning -1, so
 * the collectives match. Collective. */
int train_micro_batches_done(grad_overlap *ov, int rc, MPI_Comm comm, double *idle_s, char *err);

/* -1 with the error naming the step, epoch and last_checkpoint ("" for none) when the step's summed
 * loss is not finite (the check of train_update), else 0. */
int train_loss_check(double loss, long step, long epoch, double lr, const char *last_checkpoint, char *err);

/* The step after the micro-batches: sums acc ([grads | buffers | loss, correct], n_params +
 * n_buffers + 2 doubles) over comm (with ov, not NULL: waits for its reductions instead), refuses a loss that is not finite (naming the step, epoch and
 * last_checkpoint, "" for none), copies the averages into the network's grads and buffers, clips
 * the gradient to clip_grad (0: off) and makes one AdamW step at lr. *gnorm: the norm before
 * clipping. Collective; 0 or -1. */
int train_update(const train_net *net, double *acc, adamw_state *opt, const adamw_config *oc,
                 double lr, double clip_grad, MPI_Comm comm, grad_overlap *ov, long step, long epoch,
                 const char *last_checkpoint, double *seconds_allreduce, double *gnorm, char *err);

/* Writes a checkpoint after epochs_done whole epochs (and the steps train_part_keep recorded);
 * 0 or -1. Collective. */
typedef int (*train_save_fn)(void *ctx, long epochs_done, char *err);

/* The end of step s (from 0) of an epoch of spe steps: loss and correct added to *sum_loss and
 * *correct; every log_every steps the line "<cmd>: epoch E/END step S/SPE loss ... (rank 0)" (samples
 * per second since *t_last, then set to now); then, unless s is the epoch's last step, on a signal
 * (preempt_pending over comm) the stop kept in *part and save(ctx, epoch): PREEMPT_STOPPED, or -1
 * when the save fails. Else 0. */
int train_step_end(const char *cmd, long epoch, long end, long s, long spe, double loss, double correct,
                   double gnorm, double lr, long log_every, long batch, double *t_last, double *sum_loss,
                   double *sum_correct, train_part_epoch *part, MPI_Comm comm, train_save_fn save, void *ctx,
                   char *err);

/* The end of epoch `epoch` of a run to `end`, after its metrics row: save(ctx, epoch + 1) every
 * ckpt_every epochs and at the last, *end_epoch = epoch + 1, then, unless it was the last, on a
 * signal (preempt_pending over comm) a checkpoint there if none was just written and
 * PREEMPT_STOPPED. Else 0; -1 when a save fails. */
int train_epoch_end(long epoch, long end, long ckpt_every, MPI_Comm comm, train_save_fn save, void *ctx,
                    long *end_epoch, char *err);

/* Rank 0's metrics.csv in rundir (path: its name, I2P_PATH_LEN): a new file with header, or on a
 * resume (resume_epochs >= 0) the rows of the first resume_epochs epochs kept and appended to. */
int train_metrics_open(FILE **f, char *path, const char *rundir, const char *header,
                       long resume_epochs, char *err);

/* One row "epoch,lr,loss,acc" then the n_test values of test (or "nan" each when test is NULL). */
int train_metrics_row(FILE *f, const char *path, long epoch, double lr, double loss, double acc,
                      const double *test, int n_test, char *err);

#endif
