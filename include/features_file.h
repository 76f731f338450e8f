/* features_file.h -- the features file written by `i2pmae extract` and read by `pretrain` and `render`
 * (its layout: features_layout.h, docs/features.md).
 *
 * All functions taking an open file are collective over the communicator it was opened on (HDF5
 * collective transfers): open it on MPI_COMM_SELF to read independently per rank.
 */
#ifndef I2P_FEATURES_FILE_H
#define I2P_FEATURES_FILE_H

#include <mpi.h>
#include <stdint.h>

#include "dataset.h"
#include "features_layout.h"
#include "h5io.h"

typedef struct {
    h5file f;
    features_meta m;
} features_file;

/* ---- reading (pretrain, render, tests) ---- */

/* Opens and validates a complete features file: format attribute, every dataset present with the
 * shapes the attributes imply. Errors name the file and the problem. */
int features_open(features_file *ff, const char *path, MPI_Comm comm, char *err);
/* Checks that the features were made from this dataset (sample count, points, fingerprint) with at
 * least min_views views; the error says which property differs. */
int features_check_dataset(features_file *ff, dataset *d, int min_views, char *err);
/* Number of samples not yet done (a complete file has 0). */
int features_count_missing(features_file *ff, long *missing, char *err);

/* Row readers. rows: any order, duplicates allowed (count entries); out holds the rows in that
 * order. Values are converted to float (half -> float is exact). Shapes per row: patch V*g*g*C,
 * cls V*C, saliency V*g*g, pixel V*P*2, point_saliency P. */
int features_read_patch(features_file *ff, const long *rows, long count, float *out, char *err);
int features_read_cls(features_file *ff, const long *rows, long count, float *out, char *err);
int features_read_saliency(features_file *ff, const long *rows, long count, float *out, char *err);
int features_read_pixel(features_file *ff, const long *rows, long count, int16_t *out, char *err);
int features_read_point_saliency(features_file *ff, const long *rows, long count, float *out,
                                 char *err);
int features_read_label(features_file *ff, const long *rows, long count, int32_t *out, char *err);
void features_close(features_file *ff);

/* A 64-bit fingerprint (16 hex digits) of a dataset: FNV-1a over N, P, all labels and the points of
 * every sample in order (read in blocks; about one second per GB), so an edited cloud anywhere
 * changes it. The same on every rank (collective over the dataset's communicator). */
int features_fingerprint(dataset *d, char out[17], char *err);

/* ---- writing (extract) ---- */

/* Creates "<path>.partial" with every dataset (done = 0) and the attributes; config_json is stored
 * as the "config" attribute. Collective over comm. */
int features_create(features_file *ff, const char *path, MPI_Comm comm, const features_meta *m,
                    const char *config_json, int force, char *err);
/* Reopens "<path>.partial" for a restart: returns 1 if it exists and has the same identity as m
 * (and the layout m implies), 0 if there is none or its creation was not finished, -1 if it is
 * corrupt or was made with another configuration (the error says which and suggests --force). */
int features_resume(features_file *ff, const char *path, MPI_Comm comm, const features_meta *m,
                    char *err);
/* Reads /done (N bytes) into done. */
int features_read_done(features_file *ff, uint8_t *done, char *err);

/* Rows of one flush, in strictly increasing sample order: count samples; data[id] holds their
 * rows of dataset id (features_row_bytes each, in its memory type: /patch and /cls uint16 half or
 * float per m.fp32) for every dataset before FEATURES_DONE. */
typedef struct {
    const long *rows;
    long count;
    const void *data[FEATURES_DONE];
} features_rows;

/* Writes the rows (collective; count 0 on ranks with nothing), flushes them to disk, then sets
 * /done for them (that reaches the disk with the next flush or the close): /done never claims rows
 * that are not on disk. One file sync per call. */
int features_write_rows(features_file *ff, const features_rows *r, char *err);
/* Renames to the final name (collective). */
int features_commit(features_file *ff, char *err);
/* Closes, keeping the .partial file for a restart. */
void features_close_partial(features_file *ff);

#endif
