/* preempt.c -- SIGTERM / SIGUSR1 as a request to stop at the next safe point (see preempt.h). */
#include "preempt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) { g_signal = sig; }

void preempt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* MPI and file calls go on; the loop looks at the flag */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int preempt_pending(MPI_Comm comm)
{
    int mine = g_signal != 0, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm);
    return any;
}

int preempt_signal(void) { return (int)g_signal; }

void preempt_vote_start(preempt_vote *v, MPI_Comm comm)
{
    v->mine = g_signal != 0;
    v->any = 0;
    MPI_Iallreduce(&v->mine, &v->any, 1, MPI_INT, MPI_MAX, comm, &v->req);
}

int preempt_vote_end(preempt_vote *v)
{
    if (v->req == MPI_REQUEST_NULL) return 0;
    MPI_Wait(&v->req, MPI_STATUS_IGNORE);
    return v->any;
}
