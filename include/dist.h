/* dist.h -- the MPI data x stage grid (architecture.md section 3) and collective error agreement.
 *
 * World ranks form a grid of `data` replicas times `stages` pipeline stages:
 *   replica = rank / stages, stage = rank % stages   (a replica's stages are adjacent ranks)
 * stage_comm:   the ranks holding the same stage across replicas (size data; rank == replica),
 *               for gradient all-reduce and collective I/O of that stage's tensors.
 * replica_comm: the stages of one replica (size stages; rank == stage), for point-to-point
 *               activations from stage s to s+1.
 */
#ifndef I2P_DIST_H
#define I2P_DIST_H

#include <mpi.h>

typedef struct {
    MPI_Comm world;
    int rank, size;
    int stages, data;
    int stage, replica;
    MPI_Comm stage_comm;
    MPI_Comm replica_comm;
} dist_grid;

/* Collective over world. Fails (on every rank, same message) if size % stages != 0 or stages < 1. */
int dist_grid_create(dist_grid *g, MPI_Comm world, int stages, char *err);
void dist_grid_free(dist_grid *g);

/* Collective over comm. Every rank passes its local rc (0 ok, nonzero failed) and its err buffer.
 * Returns 0 on every rank if all succeeded; otherwise -1 on every rank, and err on every rank holds
 * the message of the lowest failing rank. This is how one rank's bad input never leaves others hanging. */
int dist_any_error(MPI_Comm comm, int rc, char *err);

/* Balanced contiguous blocks: part `idx` of `parts` over n items gets [*start, *start + *count),
 * sizes differ by at most one, lower parts get the larger blocks. */
void dist_block_range(long n, int parts, int idx, long *start, long *count);

#endif
