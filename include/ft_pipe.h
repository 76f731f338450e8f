/* ft_pipe.h -- one pipeline stage of `finetune --stages S` (docs/finetune.md "Pipeline parallel"):
 * the world is a data x stage grid (dist.h, replica = rank / S, stage = rank % S); the stage runs
 * the classifier's units [lo, hi) (cls_units.h, split balanced in FLOPs or given) on its
 * replica's micro-batches in a GPipe or 1F1B order with non-blocking messages (pipe_run.h). It
 * accumulates and reduces (over its stage communicator) only its own tensors' gradients and
 * BatchNorm buffers, and updates only its own parameters with AdamW; it holds state only for them,
 * as pretrain's stages (pipe_step.h): the step buffer acc and the AdamW moments are packed (this
 * stage's parameters in table order, then its buffers), and of the model's full-size gradient array
 * only its own ranges are ever written. The gradient-norm clip's sum runs through the stages of the
 * replica in table order. The parameters stay full-size; the other stages' go stale until
 * ft_pipe_sync. Checkpoints hold the moments as slices (ft_pipe_ckpt_parts).
 *
 * Results are those of the data-parallel path with `data` ranks bitwise: every micro-batch is the
 * same and starts from the step's BatchNorm statistics, each gradient is computed by the same
 * operations, accumulated into the same doubles in the same micro-batch order and summed over
 * the same replicas; the clip's norm is the same serial sum over the whole gradient.
 */
#ifndef I2P_FT_PIPE_H
#define I2P_FT_PIPE_H

#include <mpi.h>

#include "checkpoint.h"
#include "classifier.h"
#include "optim.h"
#include "pipe_run.h"

typedef struct ft_pipe ft_pipe;

/* Collective over world: the grid, the schedule ("gpipe" or "1f1b") and the split's form. Fails
 * alike on every rank for stages larger than the unit count, a world size that is not a multiple
 * of stages, a bad split or schedule. */
int ft_pipe_open(ft_pipe **p, MPI_Comm world, int stages, const char *split, const char *schedule, char *err);
/* The replicas (data ranks) and this rank's replica. */
int ft_pipe_data(const ft_pipe *p);
int ft_pipe_replica(const ft_pipe *p);
/* Binds the classifier (every rank holds a full copy): the split for its configuration (logged by
 * rank 0), the tensors this stage owns, M micro-batches of `micro` samples per step. */
int ft_pipe_bind(ft_pipe *p, classifier *c, long micro, long M, char *err);
void ft_pipe_free(ft_pipe *p);

/* After bind: the length of the stage's step buffer acc (doubles: its parameters' gradients, its
 * buffers, then loss and correct count) and its parameter count (the AdamW moments to allocate). */
long ft_pipe_acc_len(const ft_pipe *p);
long ft_pipe_n_own(const ft_pipe *p);
/* The checkpoint parts (pipe_own_parts) of the parameters, the moments and the buffers. */
void ft_pipe_ckpt_parts(const ft_pipe *p, int write, ckpt_part out[3]);

/* fill(ctx, j, b, err): this replica's j-th micro-batch of the step (0 <= j < M) with its
 * drop_key; b's arrays stay valid until the next call. */
typedef int (*ft_pipe_fill_fn)(void *ctx, long j, classifier_batch *b, char *err);

/* One step's forward/backward: acc = [own gradients | own buffers | loss, correct] (ft_pipe_acc_len
 * doubles, packed) is zeroed, then gets this stage's gradients * inv_micro, its BatchNorm
 * buffers * inv_micro (each micro-batch starting from the step's) and (last stage) the losses *
 * inv_micro and correct predictions. Seconds filling micro-batches into *data_s, the rest into *tm. */
int ft_pipe_step(ft_pipe *p, ft_pipe_fill_fn fill, void *ctx, double inv_micro, double *acc, double *data_s,
                 pipe_run_times *tm, char *err);
/* Sums this stage's entries of acc over its replicas and the loss and correct count over the
 * world; seconds added to *seconds. */
int ft_pipe_reduce(ft_pipe *p, double *acc, double *seconds, char *err);
/* This stage's gradients and buffers from acc, clipped to clip_grad by the whole gradient's norm
 * (0: off; *gnorm: the norm before), AdamW on this stage's parameters (opt: ft_pipe_n_own moments,
 * packed). Collective over the replica. */
int ft_pipe_update(ft_pipe *p, const double *acc, adamw_state *opt, const adamw_config *oc, double lr,
                   double clip_grad, double *gnorm, double *seconds, char *err);
/* Returns the memory of the micro-batches' activations (before an evaluation, whose own arena
 * would otherwise add to it); the next step takes it again. */
void ft_pipe_trim(ft_pipe *p);
/* Every stage's parameters and buffers to every rank of its replica (before an evaluation of the
 * whole model). Collective over the world. */
int ft_pipe_sync(ft_pipe *p, char *err);

#endif
