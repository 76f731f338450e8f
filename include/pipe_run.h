/* pipe_run.h -- the message and schedule loop of one pipeline stage for one optimiser step, for
 * any network cut into units (pipe_split.h): the stage runs its M micro-batches' forward and
 * backward passes in a GPipe or 1F1B order (pipe_schedule.h), receiving its input from stage - 1
 * and its output's gradient from stage + 1 with non-blocking point-to-point messages on the
 * replica's communicator (receives posted ahead, a send waited for only when its buffer is reused;
 * tags 2j forward, 2j + 1 backward). The network's work is two callbacks.
 *
 * A message at a boundary has the same size forward and backward (the gradient of the tensors
 * sent forward). A received forward message stays untouched until the micro-batch's backward has
 * returned, so a callback may keep pointers into it instead of copying.
 *
 * A failing callback does not leave the neighbours waiting: from then on the stage calls no
 * callback, sends zeros in the schedule's order and the step returns -1 with the first error, so
 * the caller's dist_any_error stops every rank.
 */
#ifndef I2P_PIPE_RUN_H
#define I2P_PIPE_RUN_H

#include <mpi.h>

typedef struct pipe_run pipe_run;

typedef struct {
    /* or NULL: the part of micro-batch j's forward that needs no message (reading the data, the
     * tokenizer), run before waiting for the previous stage's */
    int (*prepare)(void *ctx, long j, long slot, char *err);
    /* forward of micro-batch j in activation slot `slot` (j % slots): in (the previous stage's
     * message; NULL on stage 0), out (to fill for the next stage; NULL on the last stage) */
    int (*forward)(void *ctx, long j, long slot, float *in, float *out, char *err);
    /* backward of micro-batch j: in (the gradient of the forward's out; NULL on the last stage),
     * out (to fill with the gradient of the forward's in; NULL on stage 0) */
    int (*backward)(void *ctx, long j, long slot, float *in, float *out, char *err);
} pipe_run_fns;

typedef struct {
    double compute, wait; /* seconds: in the callbacks and bookkeeping; waiting for messages */
} pipe_run_times;

/* Stage `stage` of `stages` on the replica communicator comm (rank == stage), schedule kind
 * (PIPE_GPIPE / PIPE_1F1B), M micro-batches per step, in_n / out_n floats of the messages at the
 * stage's lower and upper boundary (0 on stage 0 / the last stage). */
int pipe_run_open(pipe_run **p, MPI_Comm comm, int stages, int stage, int kind, long M, long in_n, long out_n,
                  char *err);
/* The activation slots the schedule needs (micro-batch j uses slot j % slots). */
long pipe_run_slots(const pipe_run *p);
/* One step: every forward and backward of the schedule; times added to *tm. 0, or -1 with the
 * first failing callback's error (every message was still sent). */
int pipe_run_step(pipe_run *p, const pipe_run_fns *fns, void *ctx, pipe_run_times *tm, char *err);
void pipe_run_free(pipe_run *p);

#endif
