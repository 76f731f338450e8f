/* pipe_own.h -- which tensors and buffers a pipeline stage owns, as ranges of the flat tables
 * (the model's parameter and buffer arrays), and the operations on them shared by the pre-training
 * (pipe_step.h) and fine-tuning (ft_pipe.h) stages: assigning a tensor to the stage of its unit,
 * zeroing, unpacking and broadcasting owned ranges, AdamW on moments packed as the ranges, the
 * checkpoint slices of a stage's parameters, moments and buffers; and the grid and schedule both
 * stages open with. */
#ifndef I2P_PIPE_OWN_H
#define I2P_PIPE_OWN_H

#include <mpi.h>

#include "checkpoint.h"
#include "dist.h"
#include "model3d.h"
#include "optim.h"
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

/* A stage's parameter tensors grouped by its ranges, for AdamW on moments packed as the ranges
 * (pipe_own_adamw): t[range_t[k], range_t[k + 1]) are the tensors of range k, their offsets from
 * the range's start. Zero-initialised is empty. */
typedef struct {
    model3d_tensor *t;
    int *range_t;
    int n;
} pipe_own_tensors;

/* Room for n_tensors tensors. -1 with "out of memory". */
int pipe_own_tensors_alloc(pipe_own_tensors *o, int n_tensors, char *err);
/* Records T, just added to own (pipe_own_tensor or pipe_range_add; own->n was n_before). */
void pipe_own_tensors_note(pipe_own_tensors *o, const pipe_range_list *own, int n_before, const model3d_tensor *T);
/* After the last note: closes the last range. */
void pipe_own_tensors_end(pipe_own_tensors *o, const pipe_range_list *own);
void pipe_own_tensors_free(pipe_own_tensors *o);

/* One AdamW step of the parameters in own (params, grads: full-size) with moments opt packed as
 * own (opt->n = own->total), range by range: each element's operations are adamw_step's. */
void pipe_own_adamw(adamw_state *opt, const adamw_config *c, double lr, float *params, const float *grads,
                    const pipe_range_list *own, const pipe_own_tensors *o);

/* The checkpoint slices of a stage's parameters (at their offsets), AdamW moments (packed) and
 * buffers (at their offsets), for ckpt_write_parts / ckpt_read_parts. */
typedef struct {
    ckpt_slice *s;
    int np, nb;
} pipe_own_slices;

/* From the stage's np parameter ranges rp and nb buffer ranges rb. */
int pipe_own_slices_make(pipe_own_slices *sl, const pipe_range *rp, int np, const pipe_range *rb, int nb, char *err);
void pipe_own_slices_free(pipe_own_slices *sl);
/* The parts of the parameters, the moments and the buffers (out[0..3)). Writing: every stage's
 * first replica (writer) writes its slices of all three, the other replicas none. Reading
 * (write 0): every rank reads the whole parameters and buffers and its own moments. */
void pipe_own_parts(const pipe_own_slices *sl, int write, int writer, ckpt_part out[3]);

/* full[r.off ...] = (float)packed[r.at ...] for every range r. */
void pipe_ranges_unpack(float *full, const double *packed, const pipe_range_list *l);
/* x[ranges] = 0. */
void pipe_ranges_zero(float *x, const pipe_range_list *l);
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
