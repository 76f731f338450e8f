/* main.c -- i2pmae entry point: MPI and logger set-up, subcommand dispatch. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "h5io.h"
#include "log.h"
#include "preempt.h"
#include "version.h"

static void print_usage(void)
{
    printf("usage: i2pmae <command> [options]    (run under mpirun/srun, or as one process)\n\n"
           "I2P-MAE: 3D point masked autoencoders guided by a frozen 2D ViT.\n\ncommands:\n");
    for (int i = 0; i2p_commands[i]; i++)
        printf("  %-13s %s\n", i2p_commands[i]->name, i2p_commands[i]->summary);
    printf("\n'i2pmae <command> --help' shows each command's options. 'i2pmae --version' the version.\n");
}

/* The command of argv[1] if it stops cleanly on SIGTERM / SIGUSR1, else NULL. */
static const i2p_command *preemptible_command(int argc, char **argv)
{
    const i2p_command *c = argc >= 2 ? cmd_find(argv[1]) : NULL;
    return c && c->preemptible ? c : NULL;
}

/* Test hook: I2PMAE_TEST_SETUP_SLEEP=S pauses a preemptible command S seconds in its set-up
 * (after MPI_Init, before the run reads anything), for a signal to arrive there. */
static void test_setup_sleep(int rank)
{
    const char *s = getenv("I2PMAE_TEST_SETUP_SLEEP");
    unsigned n = s ? (unsigned)atoi(s) : 0;
    if (!n) return;
    if (rank == 0) log_warn("test: pausing %u s in set-up (I2PMAE_TEST_SETUP_SLEEP)", n);
    while (n) n = sleep(n); /* SA_RESTART does not restart sleep */
}

/* Started as one process, not by a launcher (none of mpirun's, PMIx's or PMI's variables): Open MPI
 * needs neither an orted daemon (ess_singleton_isolated) nor a network transport (pml ob1) for a
 * world of one, and they cost ~0.2 s of MPI_Init each (`i2pmae --version` 0.45 s -> 0.09 s,
 * docs/development.md). A value already in the environment is kept; ranks that a launcher starts
 * keep Open MPI's defaults (UCX where the cluster has it). */
static void singleton_mpi_defaults(void)
{
    const char *launcher[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", NULL};
    for (int i = 0; launcher[i]; i++)
        if (getenv(launcher[i])) return;
    setenv("OMPI_MCA_ess_singleton_isolated", "1", 0);
    setenv("OMPI_MCA_pml", "ob1", 0);
}

int main(int argc, char **argv)
{
    /* Before MPI_Init: a signal during start-up (MPI, reading data, building the model) is held
     * for the run's first safe point instead of killing the rank; MPI's and OpenMP's threads,
     * started later, inherit the blocked mask (preempt.c). */
    const i2p_command *pc = preemptible_command(argc, argv);
    if (pc) preempt_install();
    singleton_mpi_defaults();
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    log_init(rank, 0);
    h5io_init();
    if (pc) test_setup_sleep(rank);

    int rc = 2;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (rank == 0) print_usage();
        rc = argc < 2 ? 2 : 0;
    } else if (!strcmp(argv[1], "--version")) {
        if (rank == 0) printf("i2pmae %s\n", I2PMAE_VERSION);
        rc = 0;
    } else {
        const i2p_command *c = cmd_find(argv[1]);
        if (!c) {
            if (rank == 0) log_error("unknown command '%s' (see: i2pmae --help)", argv[1]);
            rc = 2;
        } else {
            rc = cmd_main(c, argc - 1, argv + 1);
        }
    }
    MPI_Finalize();
    return rc;
}
