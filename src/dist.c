/* dist.c -- the data x stage MPI grid and collective error agreement (see dist.h). */
#include "dist.h"

#include <string.h>

#include "errors.h"

int dist_grid_create(dist_grid *g, MPI_Comm world, int stages, char *err)
{
    memset(g, 0, sizeof *g);
    g->world = world;
    g->stage_comm = MPI_COMM_NULL;
    g->replica_comm = MPI_COMM_NULL;
    MPI_Comm_rank(world, &g->rank);
    MPI_Comm_size(world, &g->size);
    if (stages < 1)
        return errf(err, "--stages %d: must be at least 1", stages);
    if (g->size % stages != 0)
        return errf(err, "world size %d is not a multiple of --stages %d", g->size, stages);
    g->stages = stages;
    g->data = g->size / stages;
    g->replica = g->rank / stages;
    g->stage = g->rank % stages;
    if (MPI_Comm_split(world, g->stage, g->replica, &g->stage_comm) != MPI_SUCCESS)
        return errf(err, "MPI_Comm_split (stage communicator) failed");
    if (MPI_Comm_split(world, g->replica, g->stage, &g->replica_comm) != MPI_SUCCESS)
        return errf(err, "MPI_Comm_split (replica communicator) failed");
    return 0;
}

void dist_grid_free(dist_grid *g)
{
    if (g->stage_comm != MPI_COMM_NULL) MPI_Comm_free(&g->stage_comm);
    if (g->replica_comm != MPI_COMM_NULL) MPI_Comm_free(&g->replica_comm);
    g->stage_comm = g->replica_comm = MPI_COMM_NULL;
}

int dist_any_error(MPI_Comm comm, int rc, char *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int mine = rc ? rank : size;
    int first = size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == size) return 0;
    char buf[I2P_ERR_LEN];
    if (rank == first) memcpy(buf, err, I2P_ERR_LEN);
    buf[I2P_ERR_LEN - 1] = 0;
    MPI_Bcast(buf, I2P_ERR_LEN, MPI_CHAR, first, comm);
    memcpy(err, buf, I2P_ERR_LEN);
    return -1;
}

void dist_block_range(long n, int parts, int idx, long *start, long *count)
{
    long base = n / parts, rem = n % parts;
    *count = base + (idx < rem ? 1 : 0);
    *start = (long)idx * base + (idx < rem ? idx : rem);
}
