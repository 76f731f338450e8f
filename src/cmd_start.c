/* cmd_start.c -- the common start of every subcommand (see commands.h). */
#include <mpi.h>

#include "commands.h"
#include "errors.h"
#include "log.h"

int cmd_start(const cli_cmd *cmd, int argc, char **argv, cli_common *common, int *rank, int *size)
{
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    char err[I2P_ERR_LEN];
    /* Options are the same on every rank, so every rank reaches the same verdict. */
    if (cli_parse(cmd, argc, argv, common, err)) {
        if (*rank == 0) log_error("%s", err);
        return -1;
    }
    if (common->help_shown) return 1;
    log_set_verbose(common->verbose);
    return 0;
}
