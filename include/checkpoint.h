/* checkpoint.h -- training checkpoints in HDF5 (layout in docs/pretrain.md).
 *
 * A checkpoint is one file RUNDIR/ckpt-<step, 8 digits>.h5 holding named flat arrays (parameters,
 * AdamW moments, BatchNorm buffers, the epoch's sample order ...) as 1-D chunked datasets with the
 * Fletcher32 checksum filter, plus root attributes: format, step, epoch, epoch_pos, seed, the run's
 * configuration as JSON and free-form provenance strings. The replicated arrays are written by all
 * ranks of the communicator together: rank r writes its dist_block_range block of each array in one
 * collective call (HDF5 1.10 can only write filtered datasets collectively). The file is created as
 * "<name>.partial" and renamed when complete, so a file under a ckpt-*.h5 name is always whole.
 *
 * Integrity on load: every dataset is read through the Fletcher32 filter, so a flipped byte in any
 * array fails the read with "<file>: checkpoint is corrupt: ..."; damaged HDF5 structure fails at
 * open. The stored configuration is compared key by key with the caller's and a difference is an
 * error naming the key and both values.
 *
 * All functions are collective over comm unless said otherwise; they return 0 or -1 with err set
 * (the same message on every rank).
 */
#ifndef I2P_CHECKPOINT_H
#define I2P_CHECKPOINT_H

#include <cjson/cJSON.h>
#include <mpi.h>
#include <stddef.h>

#include "model3d.h"

typedef enum { CKPT_F32, CKPT_I64 } ckpt_type;

/* A flat array to save or load. data holds count elements (float or int64_t), owned by the caller. */
typedef struct {
    const char *name;   /* dataset path, e.g. "/params", "/adamw/m", "/data_order/perm" */
    ckpt_type type;
    void *data;
    long count;         /* 0: the array is skipped (neither written nor read) */
} ckpt_array;

/* Scalars that say where the run is. */
typedef struct {
    long step;        /* optimiser steps done */
    long epoch;       /* epoch of the next step */
    long epoch_pos;   /* samples of that epoch already consumed */
    long seed;
} ckpt_state;

#define CKPT_CONFIG_LEN 16384

/* Writes path (via path.partial + rename; an existing file of that name is replaced).
 * config_json: the run's configuration (compared on load). provenance: any text (may be NULL). */
int ckpt_write(const char *path, MPI_Comm comm, const ckpt_state *st, const char *config_json,
               const char *provenance, const ckpt_array *arrays, int n_arrays, char *err);

/* An array held in slices across the ranks (pipeline stages, pipe_step.h): this rank's part is
 * n slices, elements [off, off + count) of the array, slice k stored at data + s[k].at elements.
 * Different ranks' slices must not overlap; every element must be some rank's. */
typedef struct {
    long off, count, at;
} ckpt_slice;

typedef struct {
    const ckpt_slice *s; /* NULL: the array is replicated, whole on every rank (as ckpt_write) */
    int n;
} ckpt_part;

/* ckpt_write with parts (NULL, or one per array): a sliced array is written by each rank
 * writing its own slices in collective calls (as many as the most slices any rank holds), the
 * replicated ones as ckpt_write does; the file is the same whoever writes what. */
int ckpt_write_parts(const char *path, MPI_Comm comm, const ckpt_state *st, const char *config_json,
                     const char *provenance, const ckpt_array *arrays, const ckpt_part *parts, int n_arrays,
                     char *err);

/* Reads the state and every array (sizes must match the file exactly; each array is verified by
 * its checksum). expect_config_json: NULL to skip the comparison, otherwise every key of it must be
 * present in the stored configuration with the same value (keys only in the file are ignored). */
int ckpt_read(const char *path, MPI_Comm comm, ckpt_state *st, const char *expect_config_json,
              const ckpt_array *arrays, int n_arrays, char *err);
/* ckpt_read with parts (NULL, or one per array): of a sliced array only this rank's slices are read
 * (into data + at, collective reads) and checked finite; count is the whole array's, as stored. */
int ckpt_read_parts(const char *path, MPI_Comm comm, ckpt_state *st, const char *expect_config_json,
                    const ckpt_array *arrays, const ckpt_part *parts, int n_arrays, char *err);

/* -1 with err naming the array and element if a float array holds a NaN or an infinity (a run that
 * diverged must not be resumed, nor called "last good"; ckpt_read checks this); 0 otherwise.
 * Not collective. */
int ckpt_check_finite(const char *path, const ckpt_array *arrays, int n_arrays, char *err);

/* Reads a network's two arrays, /params (n_params floats) and /buffers (n_buffers), whole, as
 * ckpt_read does (sizes must match, checksums and finiteness checked), and the state into *st (NULL:
 * not wanted). */
int ckpt_read_network(const char *path, MPI_Comm comm, float *params, long n_params, float *buffers, long n_buffers,
                      ckpt_state *st, char *err);

/* Reads only the stored configuration JSON (out: CKPT_CONFIG_LEN bytes) and the state. */
int ckpt_read_header(const char *path, MPI_Comm comm, ckpt_state *st, char *config_json, char *err);

/* The state (*st) and the stored configuration, parsed (*root, which the caller deletes; NULL on an
 * error): ckpt_read_header's errors, or "<path>: configuration is not JSON". */
int ckpt_read_config(const char *path, MPI_Comm comm, ckpt_state *st, cJSON **root, char *err);

/* Element count of a stored array (0 if absent). */
int ckpt_array_count(const char *path, MPI_Comm comm, const char *name, long *count, char *err);

/* Compares two configuration JSON objects: returns 0 if every key of `want` has the same value in
 * `have`, else -1 with err = "<what>: configuration differs: <key> is <have> in the checkpoint but
 * <want> here". Not collective. */
int ckpt_config_compare(const char *have_json, const char *want_json, const char *what, char *err);

/* "<rundir>/ckpt-<step %08ld>.h5" into out (out_len bytes). Not collective. */
void ckpt_path(char *out, size_t out_len, const char *rundir, long step);

/* The most checkpoints of one run directory that are listed (ckpt_list, ckpt_prune). */
#define CKPT_LIST_MAX 4096

/* The steps of the ckpt-*.h5 files in rundir, newest first (the max newest when there are more).
 * Rank 0 lists and broadcasts; returns the number found (>= 0) or -1 if rundir cannot be read. */
int ckpt_list(const char *rundir, MPI_Comm comm, long *steps, int max, char *err);

/* Restores one checkpoint for ckpt_resume_newest: path's header st has been read and its stored
 * configuration matches; 0 if it was loaded, -1 with err if it is unusable (an older one is tried). */
typedef int (*ckpt_load_fn)(void *ctx, const char *path, const ckpt_state *st, char *err);

/* --resume of a training run (pretrain, finetune): tries rundir's checkpoints newest first. A
 * checkpoint whose header cannot be read or that load refuses is skipped with the warning
 * "<who>: skipping <path>: <err>"; one whose stored configuration differs from config_json is an
 * error (ckpt_config_compare). path_out (path_len bytes) receives the checkpoint loaded. -1 with
 * "<rundir>: no valid checkpoint to resume from (newest: <its error>)" if none loads. Collective. */
int ckpt_resume_newest(const char *rundir, MPI_Comm comm, const char *config_json, const char *who,
                       ckpt_load_fn load, void *ctx, char *path_out, size_t path_len, char *err);

/* Deletes all but the newest `keep` checkpoints of rundir, and stale ckpt-*.h5.partial files
 * (rank 0 deletes; collective). keep < 1 keeps everything. */
int ckpt_prune(const char *rundir, MPI_Comm comm, int keep, char *err);

/* "name offset count (shape) decay=d" per tensor of a contiguous table: the provenance text stored
 * with each checkpoint for h5py users. Caller frees; NULL if out of memory. Not collective. */
char *ckpt_tensor_table(const model3d_tensor *tensors, int n);

/* The start of a training run (pretrain, finetune): creates rundir if needed (rank 0) and checks
 * it is a writable directory; refuses a directory that holds checkpoints without --resume (resume
 * 0) and, with resume 1, one that does not exist or holds none. */
int ckpt_prepare_rundir(const char *rundir, int resume, MPI_Comm comm, char *err);

#endif
