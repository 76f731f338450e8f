/* h5io.h -- every HDF5 call of i2pmae goes through here.
 *
 * Files are opened with the MPI-IO driver on a communicator (MPI_COMM_SELF for one process).
 * Writing never touches the final name: h5_create makes "<final>.partial" and h5_commit closes it
 * and renames it to <final> (rank 0 renames, then a barrier). h5_abort closes and removes the
 * partial file. Files that must survive a kill for restart are reopened with h5_open_partial.
 *
 * Collective I/O: h5_write_rows / h5_read_rows select rows [start, start+count) of dimension 0 of a
 * dataset; every rank of the file's communicator must call them (a rank with nothing to do passes
 * count 0: an empty selection), because filtered datasets (Fletcher32, deflate) can only be written
 * collectively in HDF5 1.10. Exception: on a read-only file of one process (MPI_COMM_SELF) row reads
 * are independent, and the datasets read stay open until h5_close (h5file.open_ds).
 *
 * Objects are created without modification times, so the same content written by any number of
 * ranks gives byte-identical files.
 *
 * Errors: HDF5's own error printing is turned off; failures return -1 with err =
 * "<file>: <dataset>: <what failed> (<HDF5's innermost message>)".
 */
#ifndef I2P_H5IO_H
#define I2P_H5IO_H

#include <hdf5.h>
#include <mpi.h>

#include "paths.h"

#define H5IO_MAX_RANK 8
/* Datasets a read-only file of one process keeps open (h5file.open_ds). */
#define H5IO_OPEN_DATASETS 8
/* Sanity limit on one dataset: 16 TiB. */
#define H5IO_MAX_DATASET_BYTES (16ULL << 40)

typedef struct {
    hid_t file;
    MPI_Comm comm;
    int rank;
    int writable;
    char path[I2P_PATH_LEN];       /* the path actually open (may end in .partial) */
    char final_path[I2P_PATH_LEN];  /* the name it gets at commit; empty for read-only files */
    unsigned long long declared_bytes; /* data bytes of the datasets created through this handle */
    /* A read-only file of one process (MPI_COMM_SELF): row reads are independent transfers, and
     * the datasets they read stay open until h5_close (a training run reads a few rows of the same
     * datasets every step; opening, collective set-up and closing cost more than the read). */
    int solo;
    int n_open;
    struct {
        char name[64];
        hid_t id;
    } open_ds[H5IO_OPEN_DATASETS];
} h5file;

/* Call once at start: silences HDF5's automatic error stack printing. */
void h5io_init(void);

/* Opens an existing file read-only (collective over comm). Clear errors for a missing file and for
 * a file that is not HDF5. */
int h5_open_read(h5file *f, const char *path, MPI_Comm comm, char *err);

/* Creates "<final_path>.partial" for writing (collective). Fails if final_path exists and !force,
 * or if its directory is missing or unwritable. With force an existing final file is left in place
 * until h5_commit replaces it. */
int h5_create(h5file *f, const char *final_path, MPI_Comm comm, int force, char *err);

/* Reopens "<final_path>.partial" read-write for a restart. Returns 1 if it existed and was opened,
 * 0 if there is none (nothing opened), -1 on error (e.g. the partial file is corrupt). */
int h5_open_partial(h5file *f, const char *final_path, MPI_Comm comm, char *err);

/* Flushes, closes and renames the partial file to its final name (collective). */
int h5_commit(h5file *f, char *err);
/* Closes a writable file and deletes the partial file (collective). Safe on a closed file. The
 * partial file is emptied before the close, so that the close's metadata writes find room on a
 * full disk (a file left open inside HDF5 would crash MPI_Finalize). */
void h5_abort(h5file *f);
/* Closes without renaming (read-only files, or a partial file kept for restart). */
void h5_close(h5file *f);
/* Flushes everything written so far to disk (collective). */
int h5_flush(h5file *f, char *err);

int h5_exists(h5file *f, const char *name);   /* 1 if the dataset/group/link exists */
/* Rank and dims of a dataset; error if it does not exist. dims has H5IO_MAX_RANK entries. */
int h5_dims(h5file *f, const char *name, int *rank, hsize_t *dims, char *err);
/* Checks rank and dims; a dims entry of 0 in `want` means "any". Error names the shape found. */
int h5_check_shape(h5file *f, const char *name, int rank, const hsize_t *want, char *err);
/* The dataset's class: H5T_FLOAT, H5T_INTEGER, ...; -1 on error. */
int h5_type_class(h5file *f, const char *name, char *err);

/* Creates a dataset (collective). Before anything is allocated, the ranks agree on every local
 * error, and rank 0 checks the size: dimensions whose byte count overflows or passes
 * H5IO_MAX_DATASET_BYTES are refused, and so is a dataset that does not fit in the free space of
 * the file system (all datasets created through this handle counted, plus a margin for metadata):
 * "<file>: <dataset>: disk full: needs N bytes, M available". A full disk is thus found by every
 * rank together before HDF5's collective calls, where a failure on one rank would leave the others
 * waiting in HDF5's internal barriers. (A disk filled by someone else between the check and the
 * write is still found by the failing write; that race is not covered.) type: a file type such as H5T_IEEE_F32LE, H5T_IEEE_F16LE (see
 * h5_type_f16), H5T_STD_I32LE. chunk: NULL for contiguous, otherwise per-dimension chunk sizes.
 * fletcher32: adds the checksum filter (needs chunk). Intermediate groups are created. */
int h5_create_dataset(h5file *f, const char *name, hid_t type, int rank, const hsize_t *dims,
                      const hsize_t *chunk, int fletcher32, char *err);

/* The same without a filter and without writing fill values at creation (space is still allocated
 * early): for large datasets whose every row will be written, so creation costs no I/O. Rows never
 * written read back as undefined bytes. */
int h5_create_dataset_unfilled(h5file *f, const char *name, hid_t type, int rank,
                               const hsize_t *dims, const hsize_t *chunk, char *err);

/* Collective write / read of rows [start, start+count) of dimension 0; buf holds count rows in
 * memtype (e.g. H5T_NATIVE_FLOAT; HDF5 converts to the file type, float -> half included). */
int h5_write_rows(h5file *f, const char *name, hid_t memtype, long start, long count,
                  const void *buf, char *err);
int h5_read_rows(h5file *f, const char *name, hid_t memtype, long start, long count, void *buf,
                 char *err);
/* The same for a strictly increasing list of rows (gaps allowed); buf holds the rows in list order. */
int h5_write_row_list(h5file *f, const char *name, hid_t memtype, const long *rows, long count,
                      const void *buf, char *err);
int h5_read_row_list(h5file *f, const char *name, hid_t memtype, const long *rows, long count,
                     void *buf, char *err);
/* Reads a whole dataset (every rank reads all of it). */
int h5_read_all(h5file *f, const char *name, hid_t memtype, void *buf, char *err);
/* Writes a whole small dataset created here (rank 0's data; collective). */
int h5_write_small(h5file *f, const char *name, hid_t type, hid_t memtype, int rank,
                   const hsize_t *dims, const void *buf, char *err);

/* IEEE half-precision little-endian file type (created once, owned by h5io). */
hid_t h5_type_f16(void);

/* Attributes on an object (use "/" for the root group). Strings are variable-length UTF-8. */
int h5_attr_write_str(h5file *f, const char *obj, const char *name, const char *value, char *err);
int h5_attr_write_long(h5file *f, const char *obj, const char *name, long value, char *err);
/* Reads a string attribute into out (out_len bytes); error if missing. */
int h5_attr_read_str(h5file *f, const char *obj, const char *name, char *out, size_t out_len,
                     char *err);
int h5_attr_read_long(h5file *f, const char *obj, const char *name, long *value, char *err);
int h5_attr_exists(h5file *f, const char *obj, const char *name);

/* ---- walking a file (for `info`) ---- */

/* One object met by h5_visit. */
typedef struct {
    const char *name;            /* full path, e.g. "/points" */
    int is_dataset;              /* 1 dataset, 0 group (other objects are skipped) */
    int rank;                    /* datasets: rank and dims */
    hsize_t dims[H5IO_MAX_RANK];
    char type[32];               /* "float32", "float16", "int32", "uint8", "string", ... */
    int chunked;                 /* 1 if chunked; chunk holds the chunk dims */
    hsize_t chunk[H5IO_MAX_RANK];
    char filters[64];            /* e.g. "fletcher32", "deflate", comma-separated; "" if none */
} h5_object;

/* Calls fn for every group and dataset below the root, in name order (depth first). fn returns 0
 * to go on, non-zero to stop (h5_visit then returns that value). */
int h5_visit(h5file *f, int (*fn)(const h5_object *o, void *user), void *user, char *err);

/* Calls fn(name, value, user) for each attribute of obj in name order, the value rendered as text:
 * strings as they are, numbers with %g / %lld, arrays as "[a, b, ...]" (first 16 values). */
int h5_attr_visit(h5file *f, const char *obj,
                  int (*fn)(const char *name, const char *value, void *user), void *user, char *err);

#endif
