/* grad_allreduce.h -- the data-parallel reduction of one training step.
 *
 * One MPI_Allreduce (sum, in place) over one flat double buffer that holds, back to back, the
 * gradients, the BatchNorm running statistics and the step's loss terms, each already divided by
 * the number of contributions on the caller's side, so the sum is the average. Buffers larger than
 * INT_MAX values are reduced in INT_MAX pieces. Doubles: the float gradients of a step sum
 * exactly in double (barring exponent spreads beyond 2^29), so the rounded result does not depend on
 * the order MPI adds the ranks' shares in, i.e. not on the rank count. Collective over comm.
 */
#ifndef I2P_GRAD_ALLREDUCE_H
#define I2P_GRAD_ALLREDUCE_H

#include <mpi.h>

/* Adds the wall-clock seconds spent to *seconds. */
int grad_allreduce(double *buf, long n, MPI_Comm comm, double *seconds, char *err);

#endif
