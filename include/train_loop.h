/* train_loop.h -- the epoch loop that fine-tuning (finetune.c) and part segmentation
 * (partseg_train.c) share: each epoch's steps from where a signal stopped it, the step log lines
 * and the stop inside an epoch, the evaluation every eval_every epochs and at the last, the
 * command's report of the epoch, the checkpoint every ckpt_every epochs and the stop at an
 * epoch's end. What differs between the commands (the step, the evaluation, the report) comes as
 * callbacks over one context. It runs the same calls in the same order as both loops did, so the
 * results, log lines and files stay the same. */
#ifndef I2P_TRAIN_LOOP_H
#define I2P_TRAIN_LOOP_H

#include <mpi.h>

#include "optim.h"
#include "train_common.h"

/* One optimiser step `step` (of epoch, at lr), all-reduce and update included: *loss and *correct
 * the step's summed loss and correct count, *gnorm the gradient norm before clipping. Collective;
 * 0 or -1 with err. */
typedef int (*train_step_fn)(void *ctx, long step, long epoch, double lr, double *loss, double *correct,
                             double *gnorm, char *err);
/* The test split's evaluation after epoch (the best record and its files included). Collective;
 * 0 or -1 with err. */
typedef int (*train_eval_fn)(void *ctx, long epoch, char *err);
/* The end of epoch of a run to `end`: its mean training loss and accuracy (already in the run's
 * train_result), evaluated when the evaluation just ran; the command's records, the epoch's log
 * line and the metrics row. 0, or -1 with err (every rank learns any rank's error after it). */
typedef int (*train_report_fn)(void *ctx, long epoch, long end, double loss, double acc, int evaluated,
                               char *err);

/* What a command's loop is made of. */
typedef struct {
    const char *cmd;           /* the command's name, in the step log lines */
    MPI_Comm comm;
    const step_layout *L;
    const cosine_schedule *sched;
    long log_every, eval_every, ckpt_every;
    double units_per_sample;   /* what a correct count counts in a sample: 1, or its points */
    train_part_epoch *part;    /* a signal's stop inside an epoch (the resumed one, then the next) */
    train_result *run;         /* its lr: each whole epoch's learning rate; its end_epoch */
    train_step_fn step;
    train_eval_fn evaluate;
    train_report_fn report;
    train_save_fn save;
    void *ctx;                 /* the callbacks' */
} train_loop;

/* Epochs start..end-1: per epoch its steps from lp->part's (step, train_step_end), the evaluation
 * when (epoch + 1) % eval_every == 0 or at the last, the report, then train_epoch_end (checkpoint,
 * lp->run->end_epoch). 0; PREEMPT_STOPPED when a signal stopped the run (with a checkpoint); -1
 * with err. Collective. */
int train_loop_run(const train_loop *lp, long start, long end, char *err);

/* A run's result at its start: L, start_epoch = end_epoch = start, n_params and n_test. */
void train_result_start(train_result *r, const step_layout *L, long start, long n_params, long n_test);

/* A resumed run found complete after `epochs` epochs: train_loss and train_acc NaN (they are in
 * metrics.csv, not in the checkpoint), lr the last epoch's, end_epoch = epochs. */
void train_result_complete(train_result *r, const cosine_schedule *sched, long epochs);

#endif
