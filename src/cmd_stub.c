/* cmd_stub.c -- the shared answer of commands that are not implemented yet. */
#include <mpi.h>

#include "commands.h"
#include "log.h"

int cmd_not_implemented(const char *name)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) log_error("'%s' is not implemented yet in this version", name);
    return 2;
}
