/* pipe_own.h -- which tensors and buffers a pipeline stage owns, as ranges of the flat tables
 * (the model's parameter and buffer arrays), and the operations on them shared by the pre-training
 * (pipe_step.h) and fine-tuning (ft_pipe.h) stages: assigning a tensor to the stage of its unit,
 * zeroing, packing and broadcasting owned ranges; and the grid and schedule both stages open with. */
#ifndef I2P_PIPE_OWN_H
#define I2P_PIPE_OWN_H

#include <mpi.h>

#include "dist.h"
#include "model3d.h"
#include "pipe_split.h"

/* A range of a flat table: elements [off, off + count), at `at` in the stage's packing. */
typedef struct {
    long off, count, at;
} pipe_range;

/* Ranges in table order; zero-initialised is empty. */
typedef struct {
    pipe_range *r;
    int n;
    long total; /* the elements of all ranges; r[k].at: the elements before range k */
} pipe_range_list;

/* Appends [off, off + count), merged into the last range where it continues it. -1: out of memory. */
int pipe_range_add(pipe_range_list *l, long off, long count);
void pipe_range_list_free(pipe_range_list *l);

/* Adds tensor T (of unit `unit`) to per_stage[s], s the stage holding the unit; returns s, or -1
 * with "pipeline: <what> <name> belongs to no unit" (what: "tensor" or "buffer") or out of memory. */
int pipe_own_tensor(pipe_range_list *per_stage, const pipe_split *sp, int unit, const model3d_tensor *T,
                    const char *what, char *err);

/* x[ranges] = 0. */
void pipe_ranges_zero(float *x, const pipe_range_list *l);
/* packed[r.at ...] = full[r.off ...] for every range r (dir 0), or back (dir 1). */
void pipe_ranges_pack(double *packed, double *full, const pipe_range_list *l, int dir);
/* Broadcasts every stage's ranges of x (stage s's, per_stage[s], from rank s of replica_comm), the
 * stages in order. Returns MPI's error code (0: success). */
int pipe_own_bcast(float *x, const pipe_range_list *per_stage, int stages, MPI_Comm replica_comm);

/* The opening both stages share, after the caller's check of the split (rc: 0, or -1 with err):
 * schedule ("gpipe" or "1f1b") into *kind, split ("" for NULL) into split_spec (spec_n bytes), then
 * the data x stage grid over world (dist_grid_create checks the world size). Every rank learns any
 * rank's error. Collective; 0 or -1 (the caller frees g either way). */
int pipe_own_open_grid(dist_grid *g, int *kind, char *split_spec, size_t spec_n, MPI_Comm world, int stages,
                       const char *split, const char *schedule, int rc, char *err);

#endif
