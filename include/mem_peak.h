/* mem_peak.h -- the peak resident memory of this process (VmHWM of /proc/self/status), alone and
 * over the ranks of a communicator, for the JSON lines and the progress lines.
 */
#ifndef I2P_MEM_PEAK_H
#define I2P_MEM_PEAK_H

#include <mpi.h>

/* This process's peak resident set in bytes (VmHWM); -1 where /proc/self/status has none. */
long mem_peak_bytes(void);

/* The largest mem_peak_bytes over comm's ranks (collective); all, when not NULL, receives every
 * rank's value in rank order (comm size entries, on every rank). */
long mem_peak_max(MPI_Comm comm, long *all);

/* bytes as GiB for the logs. */
double mem_gib(long bytes);

#endif
