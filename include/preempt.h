/* preempt.h -- stopping cleanly when the batch system asks (Slurm sends SIGTERM at the time limit,
 * and SIGUSR1 ahead of it with `#SBATCH --signal=USR1@120`).
 *
 * preempt_install makes SIGTERM and SIGUSR1 set a flag instead of killing the process (and blocks
 * them in the calling thread and the compute threads it starts: see preempt.c); long loops
 * ask preempt_pending (collective: true on every rank when any rank got a signal) at a point where
 * they can save their state, save it, and return PREEMPT_STOPPED. cmd_main turns that into exit
 * status I2P_EXIT_PREEMPTED, which job scripts take as "requeue me" (the sbatch scripts in slurm/).
 * The flag is the one piece of process-wide state here (a signal handler can set nothing else).
 */
#ifndef I2P_PREEMPT_H
#define I2P_PREEMPT_H

#include <mpi.h>

/* A run's return value: stopped by a signal after saving its state (not an error). */
#define PREEMPT_STOPPED 75
/* The exit status of such a run (EX_TEMPFAIL of sysexits.h: "try again later"). */
#define I2P_EXIT_PREEMPTED 75

/* Catches SIGTERM and SIGUSR1 from now on. main calls it at process start, before MPI_Init, for
 * the commands marked preemptible (commands.h): a signal during set-up is held until the loop's
 * first preempt_pending. The loops call it again (harmless) for callers that did not. */
void preempt_install(void);
/* Collective over comm: 1 on every rank if any rank caught a signal, else 0. */
int preempt_pending(MPI_Comm comm);
/* The signal caught (0 if none), for the log. */
int preempt_signal(void);

/* preempt_pending in two halves, for a pipeline whose ranks reach a safe point at different
 * times (extract's stages): each rank starts the vote at safe point k and ends it at safe point
 * k+1, so no rank waits for the others and every rank gets the same answer at the same point.
 * Initialise req to MPI_REQUEST_NULL; a vote must be ended before it is started again. */
typedef struct {
    MPI_Request req;
    int mine, any;
} preempt_vote;
/* Collective over comm (non-blocking): this rank's flag now. */
void preempt_vote_start(preempt_vote *v, MPI_Comm comm);
/* Waits for the vote: 1 if any rank had caught a signal when it started it; 0 (no wait) if none
 * was started. */
int preempt_vote_end(preempt_vote *v);

#endif
