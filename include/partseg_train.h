/* partseg_train.h -- part-segmentation training, data parallel over the ranks of a communicator,
 * and the evaluation of a trained network (docs/partseg.md; Point-M2AE's segmentation runner).
 *
 * The loop is finetune's (finetune.h): each optimiser step's global batch (data_order.h) is cut
 * into micro-batches; each rank runs partseg_train_step on its micro-batches, each starting from
 * the step's BatchNorm running statistics, and accumulates gradients, running statistics, loss and
 * correct points divided by the micro-batches per step into one double buffer; one all-reduce
 * (grad_allreduce.h) makes them the step's averages, so for a fixed micro-batch nothing depends on
 * the rank count. Then gradient-norm clipping and ONE AdamW step per iteration (Point-M2AE steps
 * twice: a bug, docs/partseg.md), with the per-epoch cosine rate.
 * Training view of a sample: Pm of its P points (all, in file order, when P == Pm; else a random
 * subset from stream (seed, epoch, sample)), scaled by one U(0.8, 1.25) and shifted by U(-0.1, 0.1)
 * per axis (Point-M2AE's provider.random_scale_point_cloud / shift_point_cloud). Test view: the
 * first Pm points, no augmentation.
 * After every eval_every-th epoch (and the last) the test split is evaluated: per-shape IoU over the
 * parts of its category with predictions restricted to them (seg_metrics.h), instance and class
 * mIoU; the best instance mIoU (the newest epoch reaching it, as Point-M2AE's ">=") is kept with its
 * class mIoU, its weights in RUNDIR/best.h5. Checkpoints RUNDIR/ckpt-<step>.h5 at epoch ends hold
 * parameters, AdamW moments, BatchNorm buffers and the best record, so --resume continues exactly.
 * Rank 0 writes metrics.csv (one row per epoch; rows after the resumed epoch dropped on --resume),
 * curves.png and per_category.csv (of the last evaluation).
 */
#ifndef I2P_PARTSEG_TRAIN_H
#define I2P_PARTSEG_TRAIN_H

#include <mpi.h>

#include "cli.h"
#include "data_order.h"
#include "part_table.h"
#include "partseg.h"
#include "paths.h"
#include "train_common.h"

typedef struct {
    char data[CLI_STR_LEN], test[CLI_STR_LEN], rundir[CLI_STR_LEN];
    char pretrained[CLI_STR_LEN]; /* pre-training checkpoint; "" with scratch */
    int scratch, resume;
    long seed;
    long epochs, sched_epochs, warmup_epochs;
    long batch, micro;
    long ckpt_every, keep, log_every, eval_every;
    double lr, min_lr, warmup_lr, weight_decay, clip_grad;
    partseg_config model; /* n_categories / n_parts 0: from the training data */
    nn_precision precision; /* matmul precision (--precision; partseg_set_precision), in the configuration */
} partseg_args;

/* The options a shares with the other training command (train_common.h). */
train_opts partseg_train_opts(const partseg_args *a);

/* One evaluation of the test split. */
typedef struct {
    long epoch;           /* 0-based epoch after which it was measured; -1: none */
    double instance_miou, class_miou, accuracy;
} seg_record;

typedef struct {
    train_result run;
    seg_record last, best;
} partseg_result;

int partseg_train_run(const partseg_args *a, MPI_Comm comm, partseg_result *r, char *err);

/* --eval-only: a part-segmentation checkpoint (best.h5 or ckpt-*.h5) on a test split. micro: the
 * forward batch (0: the checkpoint's). rec->epoch: the epochs the checkpoint holds. predictions
 * (NULL or "": none): an HDF5 file (replaced if it exists, written as .partial then renamed) with
 * the split's test views and their labels: /points (N,P,3) float32, /seg (N,P) int32 true parts,
 * /pred (N,P) int32 predicted parts, /category (N) int32; root attributes n_parts, n_categories.
 * P is the network's points (the first P of each sample). Collective. */
int partseg_eval_only(const char *checkpoint, const char *test, const char *predictions, long micro,
                      MPI_Comm comm, seg_record *rec, long *n_test, char *err);

#endif
