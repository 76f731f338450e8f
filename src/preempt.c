/* preempt.c -- SIGTERM / SIGUSR1 as a request to stop at the next safe point (see preempt.h). */
#include "preempt.h"

#include <signal.h>
#include <time.h>
#include <string.h>

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) { g_signal = sig; }

static void signal_set(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGTERM);
    sigaddset(s, SIGUSR1);
}

void preempt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* MPI and file calls go on; the loop looks at the flag */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    /* Blocked in this thread and so in the compute threads it starts from now on (OpenMP,
     * oneDNN): a signal delivered to a thread computing in oneDNN corrupted its data and the heap
     * (an extract stopped by SIGTERM aborted in oneDNN's free() about once in 12 runs, a resumed
     * features file differed; most likely JIT code using stack below its red zone). main calls
     * this before MPI_Init, so MPI's threads block the signals too: a signal stays pending for
     * local_flag() at the run's first safe point, however early it comes. Called later (a second
     * time by the loops, or by a program that did not call it first), it only adds the calling
     * thread: a signal then goes to a thread that does not block it (MPI's progress threads: the
     * handler sets the flag) or stays pending. Child processes (gnuplot) inherit the mask. */
    sigset_t s;
    signal_set(&s);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/* The flag, after taking a signal left pending (every thread blocking it). */
static int local_flag(void)
{
    if (!g_signal) {
        sigset_t s;
        signal_set(&s);
        struct timespec zero = {0, 0};
        int sig = sigtimedwait(&s, NULL, &zero);
        if (sig > 0) g_signal = sig;
    }
    return g_signal != 0;
}

int preempt_pending(MPI_Comm comm)
{
    int mine = local_flag(), any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm);
    return any;
}

int preempt_signal(void) { return (int)g_signal; }

void preempt_vote_start(preempt_vote *v, MPI_Comm comm)
{
    v->mine = local_flag();
    v->any = 0;
    MPI_Iallreduce(&v->mine, &v->any, 1, MPI_INT, MPI_MAX, comm, &v->req);
}

int preempt_vote_end(preempt_vote *v)
{
    if (v->req == MPI_REQUEST_NULL) return 0;
    MPI_Wait(&v->req, MPI_STATUS_IGNORE);
    return v->any;
}
