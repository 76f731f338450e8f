/* pipe_step.h -- one pipeline stage of `pretrain --stages S` (docs/pretrain.md "Pipeline
 * parallel"): the world is a data x stage grid (dist.h, replica = rank / S, stage = rank % S); the
 * stage runs the units [lo, hi) of the network (pipe_split.h) on its replica's micro-batches, in a
 * GPipe or 1F1B order (pipe_schedule.h), with non-blocking point-to-point messages to its
 * neighbours (pipe_units.h). It accumulates, reduces over its stage communicator and applies with
 * AdamW only its own tensors' gradients and BatchNorm buffers, and holds state only for them: the
 * step buffer acc and the AdamW moments are packed (this stage's parameters in table order, then
 * its buffers), and of the model's full-size gradient array only its own ranges are ever written
 * (so only their pages are resident). The parameters stay full-size on every rank (docs/pretrain.md
 * says why); the other stages' go stale until pipe_stage_sync.
 *
 * Results are those of the data-parallel path with `data` ranks bitwise: every micro-batch is the
 * same, each gradient is computed by the same operations, accumulated into the same double array
 * in the same micro-batch order and summed over the same replicas.
 *
 * A local failure inside a step (out of memory, a data read) does not leave the neighbours
 * waiting: the stage goes on sending zeros in the schedule's order and the step returns -1, so the
 * caller's dist_any_error stops every rank. A rank that dies ends the job through mpirun.
 */
#ifndef I2P_PIPE_STEP_H
#define I2P_PIPE_STEP_H

#include <mpi.h>

#include "model3d.h"
#include "optim.h"
#include "pipe_own.h"

typedef struct pipe_stage pipe_stage;

/* Collective over world: the data x stage grid, the schedule ("gpipe" or "1f1b") and the split
 * (pipe_split_make: split "" balances FLOPs once the model is known). Fails alike on every rank for
 * stages > PIPE_UNITS, a world size that is not a multiple of stages, a bad split or schedule. */
int pipe_stage_open(pipe_stage **p, MPI_Comm world, int stages, const char *split, const char *schedule,
                    char *err);
/* The replicas (data ranks) and this rank's replica. */
int pipe_stage_data(const pipe_stage *p);
int pipe_stage_replica(const pipe_stage *p);
/* Binds the model (every rank holds a full copy; this stage runs its units): chooses the split
 * for m's configuration, the tensors this stage owns, M micro-batches of `micro` samples per step
 * for this replica.
 * Logs the split (rank 0). */
int pipe_stage_bind(pipe_stage *p, model3d *m, long micro, long M, char *err);
void pipe_stage_free(pipe_stage *p);

/* After bind: the length of the stage's step buffer acc (doubles: its parameters' gradients, its
 * buffers, then loss, loss_3d, loss_2d) and its parameter count (the AdamW moments to allocate). */
long pipe_stage_acc_len(const pipe_stage *p);
long pipe_stage_n_own(const pipe_stage *p);

/* This stage's ranges of the parameter table (buffers 0) or of the buffer table (1), in table
 * order; returns their number, *r points at them (owned by p). */
int pipe_stage_own(const pipe_stage *p, int buffers, const pipe_range **r);

/* --overlap-allreduce: with more than one replica, the step starts MPI_Iallreduce on buckets of
 * acc (grad_allreduce.h's scheme, bucket_mb MiB, on the stage communicator) as the backward of the
 * replica's last micro-batch finishes them, unit by unit, and pipe_stage_reduce waits for them.
 * acc: the buffer every step is given. The sums are those of the single reduction, bitwise. */
int pipe_stage_overlap(pipe_stage *p, double *acc, double bucket_mb, char *err);
/* 1 if pipe_stage_overlap set the overlapped reduction up (it does not with one replica). */
int pipe_stage_overlapping(const pipe_stage *p);

/* fill(ctx, j, b, err): this replica's j-th micro-batch of the step (0 <= j < M), b->drop_key set. */
typedef int (*pipe_fill_fn)(void *ctx, long j, model3d_batch *b, char *err);

typedef struct {
    double data, compute, wait; /* seconds: filling micro-batches, forward/backward, waiting for messages */
} pipe_times;

/* One step's forward/backward: acc = [own gradients | own buffers | loss, loss_3d, loss_2d]
 * (pipe_stage_acc_len doubles, packed as pipe_stage_own says) is zeroed, then gets this stage's
 * gradients / inv_micro, its BatchNorm buffers / data and (last stage) the losses / inv_micro.
 * With one micro-batch per step and one replica (nothing to add up or sum) the gradients stay in
 * the model's float array instead (the same bits: (float)(0 + (double)g) is g, but for the sign of
 * a zero, which AdamW's m = b1 m + (1 - b1) g does not see) and acc's gradient part is never
 * touched, so its pages never become resident (8 bytes per own parameter).
 * Times are added to *tm. On a failure the reductions started (overlap) are started all the same:
 * call pipe_stage_reduce on every rank either way. */
int pipe_stage_step(pipe_stage *p, pipe_fill_fn fill, void *ctx, double inv_micro, double *acc,
                    pipe_times *tm, char *err);
/* Sums this stage's entries of acc over its replicas (stage communicator; with the overlap, waits
 * for the sums started in the step) and the losses over the world; seconds added to *seconds. */
int pipe_stage_reduce(pipe_stage *p, double *acc, double *seconds, char *err);
/* grads / buffers of this stage's tensors from acc, then AdamW on them (opt: pipe_stage_n_own
 * moments, packed). */
void pipe_stage_update(pipe_stage *p, adamw_state *opt, const adamw_config *c, double lr, const double *acc);
/* Every stage's parameters and buffers to every rank of its replica (before an evaluation of the
 * whole model: the SVM monitor). Collective over the world. */
int pipe_stage_sync(pipe_stage *p, char *err);
/* The other stages' parameters are stale here and unused until the next pipe_stage_sync: their
 * whole pages of the parameter table go back to the system (madvise MADV_DONTNEED; they read as
 * zeros until written again), so a stage's rank keeps resident only its own parameters (the first
 * stage of the spec's network: 58 MiB less). After the initialisation, a resume, an --init and
 * every pipe_stage_sync. */
void pipe_stage_drop_others(pipe_stage *p);

#endif
