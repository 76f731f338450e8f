/* grad_allreduce.h -- the data-parallel reduction of one training step.
 *
 * One flat double buffer holds, back to back, the gradients, the BatchNorm running statistics and
 * the step's loss terms, each already divided by the number of contributions on the caller's side,
 * so the sum over the ranks is the average. Doubles: the float gradients of a step sum exactly in
 * double (barring exponent spreads beyond 2^29), so the rounded result does not depend on the
 * order MPI adds the ranks' shares in, i.e. not on the rank count, nor on how the buffer is cut.
 *
 * grad_allreduce: one blocking MPI_Allreduce (sum, in place) after the backward, in INT_MAX pieces.
 *
 * grad_overlap: the same sums, overlapped with the backward. The buffer's gradient part is cut into
 * buckets from its end (the parameters whose backward runs first); during a micro-batch the
 * backward reports "every gradient at offset >= lo is final" (model3d_set_step_options), each
 * report adds the newly final float gradients times inv to the buffer, and on the rank's last
 * micro-batch of the step starts MPI_Iallreduce on every bucket that is now complete (and calls
 * MPI_Testall on those in flight, which is what moves them along in MPI libraries without a
 * progress thread). grad_overlap_start_tail then starts the tail's (buffers, losses) and
 * grad_overlap_wait waits for all. Every rank starts the same buckets in the same order; a rank
 * whose step failed must still call grad_overlap_start_tail (with abandon = 1) and
 * grad_overlap_wait so the collectives match.
 */
#ifndef I2P_GRAD_ALLREDUCE_H
#define I2P_GRAD_ALLREDUCE_H

#include <mpi.h>

/* Adds the wall-clock seconds spent to *seconds. */
int grad_allreduce(double *buf, long n, MPI_Comm comm, double *seconds, char *err);

typedef struct {
    MPI_Comm comm;
    double *acc;             /* the step buffer: n_grads gradients, then the tail to n_acc */
    long n_grads, n_acc;
    long bucket;             /* doubles per bucket (the last one, at offset 0, may be shorter) */
    int n_buckets;
    MPI_Request *req;        /* n_buckets + 1: bucket k covers [n_grads - (k+1) bucket, n_grads - k bucket), then the tail */
    int started;             /* buckets started this step, from the end */
    const float *grads;      /* the micro-batch's gradients (NULL: none in progress) */
    double inv;
    long added_lo;           /* grads[added_lo, n_grads) already added to acc */
    int last;                /* the rank's last micro-batch of the step */
    int mpi_rc;              /* first MPI error of the step, MPI_SUCCESS if none */
    double comm_s;           /* seconds in the MPI calls, all steps */
} grad_overlap;

/* Sets o up for acc (n_acc doubles, the first n_grads gradients) with buckets of bucket_mb MiB
 * (at least one double, at most INT_MAX). 0, or -1 with err (out of memory). */
int grad_overlap_init(grad_overlap *o, double *acc, long n_grads, long n_acc, double bucket_mb,
                      MPI_Comm comm, char *err);
void grad_overlap_free(grad_overlap *o);

/* A micro-batch starts: its gradients grads (n_grads floats, final as reported) are to be added to
 * acc times inv; last = 1 on this rank's last micro-batch of the step. Call the first of a step
 * with acc zeroed. */
void grad_overlap_begin(grad_overlap *o, const float *grads, double inv, int last);
/* The backward's report (model3d_set_step_options' grads_final; ctx is the grad_overlap). */
void grad_overlap_final(void *ctx, long lo);
/* For a caller that adds the gradients to acc itself (pipeline stages, pipe_step.h): on its last
 * micro-batch of the step, acc[lo, n_grads) is final; starts the buckets that lie wholly in it.
 * lo = 0 at the end of the backward starts them all. */
void grad_overlap_ready(grad_overlap *o, long lo);
/* The micro-batch's backward is done: the rest of its gradients (offset >= 0) are added and, on
 * the last micro-batch, the remaining buckets started. */
void grad_overlap_end(grad_overlap *o);
/* After the last micro-batch and once the tail acc[n_grads, n_acc) is filled: starts its
 * reduction. abandon = 1 (this rank's step failed part way): first starts every bucket not yet
 * started, whatever acc holds, so the ranks' collectives still match. */
void grad_overlap_start_tail(grad_overlap *o, int abandon);
/* Waits for all the step's reductions; acc then holds the sums. The seconds spent in MPI calls
 * since grad_overlap_init are in o->comm_s. 0, or -1 with err naming the MPI failure. */
int grad_overlap_wait(grad_overlap *o, char *err);

#endif
