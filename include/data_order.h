/* data_order.h -- which samples each rank trains on at each step (architecture.md section 3).
 *
 * Epoch order: a Fisher-Yates shuffle of all n samples drawn from the rng stream (seed, epoch), the
 * same on every rank. An epoch has floor(n / batch) steps (the incomplete tail batch is dropped, as
 * Point-MAE's loader does with drop_last), so global step s reads positions
 * [(s mod steps_per_epoch) * batch, + batch) of epoch s / steps_per_epoch's order.
 * A step's global batch is cut into batch / micro micro-batches of `micro` consecutive positions;
 * rank r of R data ranks takes micro-batches [r * m, (r + 1) * m) with m = batch / (micro * R).
 * batch must be divisible by micro * R (no uneven split; step_layout_make says so otherwise).
 * Everything a micro-batch computes depends only on its global micro-batch index, so for a fixed
 * micro the losses do not depend on the rank count (beyond all-reduce summation order).
 */
#ifndef I2P_DATA_ORDER_H
#define I2P_DATA_ORDER_H

#include <stdint.h>

/* perm (n) receives the sample order of `epoch`. */
void data_order_epoch(uint64_t seed, long epoch, long n, int64_t *perm);

typedef struct {
    long n;               /* samples in the dataset */
    long batch;           /* global batch (samples per optimiser step) */
    long micro;           /* samples per forward/backward (BatchNorm statistics, loss means) */
    int ranks;            /* data-parallel ranks */
    long micro_per_rank;  /* micro-batches each rank runs per step */
    long micro_per_step;  /* micro-batches per step over all ranks */
    long steps_per_epoch;
} step_layout;

/* Checks and fills the layout. micro 0 means batch / ranks (one micro-batch per rank). */
int step_layout_make(step_layout *l, long n, long batch, long micro, int ranks, char *err);

/* The epoch of global step `step` and the position of its first sample in that epoch's order. */
void step_position(const step_layout *l, long step, long *epoch, long *pos);

/* The global micro-batch index of rank r's j-th micro-batch (0 <= j < micro_per_rank). */
long step_micro_index(const step_layout *l, int rank, long j);

#endif
