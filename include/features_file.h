/* features_file.h -- the features file written by `i2pmae extract` and read by `pretrain` and `render`
 * (layout: docs/features.md; i2pmae-spec.md section 10's compact form).
 *
 * Per sample n (N rows, chunked one sample per chunk), V views, grid g = image/patch, C features,
 * P points:
 *   /patch          (N,V,g,g,C) IEEE half (float32 if written with --fp32): last-block patch tokens
 *                   after the final norm (and CLIP's projection)
 *   /cls            (N,V,C)     same type as /patch (the CLS token after the same head; unused by
 *                   the spec, kept for users)
 *   /saliency       (N,V,g,g)   float32: head-averaged CLS-row attention of the last block
 *   /pixel          (N,V,P,2)   int16: (row, col) of every point in every view, -1 if outside
 *   /point_saliency (N,P)       float32: bicubic-upsampled saliency read at each point's pixel,
 *                   averaged over the views where the point is inside (0 if none)
 *   /label          (N)         int32, copied from the dataset
 *   /done           (N)         uint8: 1 once the sample's rows are on disk (restart)
 * Root attributes: format "i2pmae-features", vit, vit_spec, weights_sha256, views, image, patch,
 * grid, feat_dim, block (0-based index of the block whose output is stored), precision (ViT compute:
 * fp32|bf16), storage (fp16|fp32), i2pmae (program version), config (the whole command
 * configuration as JSON), identity (the JSON of everything the values depend on; a restart must
 * match it), source (dataset path as given), source_samples, source_points, source_fingerprint.
 *
 * All functions taking an open file are collective over the communicator it was opened on (HDF5
 * collective transfers): open it on MPI_COMM_SELF to read independently per rank.
 */
#ifndef I2P_FEATURES_FILE_H
#define I2P_FEATURES_FILE_H

#include <mpi.h>
#include <stdint.h>

#include "dataset.h"
#include "h5io.h"

#define FEATURES_FORMAT "i2pmae-features"

typedef struct {
    long n, points;
    int views, image, patch, grid, feat_dim, block;
    int fp32;                    /* 1: /patch and /cls are float32, 0: half */
    char vit[64];                /* model name, e.g. "clip-b16", "random:tiny" */
    char vit_spec[1024];         /* the --vit argument */
    char weights_sha256[65];
    char precision[8];           /* "fp32" | "bf16" (ViT compute) */
    char source[1024];           /* dataset path as given */
    char source_fingerprint[17]; /* features_fingerprint() of the dataset */
} features_meta;

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
/* Reads the root attributes of an open file into m (checks the format attribute). */
int features_meta_read(h5file *f, features_meta *m, char *err);

/* A 64-bit fingerprint (16 hex digits) of a dataset: FNV-1a over N, P, all labels and the points of
 * the first and last sample. Cheap, and the same on every rank (collective over the dataset's
 * communicator). */
int features_fingerprint(dataset *d, char out[17], char *err);

/* ---- writing (extract) ---- */

/* The identity JSON (what the stored values depend on) of a configuration. Caller frees. */
char *features_identity_json(const features_meta *m);

/* Creates "<path>.partial" with every dataset (done = 0) and the attributes; config_json is stored
 * as the "config" attribute. Collective over comm. */
int features_create(features_file *ff, const char *path, MPI_Comm comm, const features_meta *m,
                    const char *config_json, int force, char *err);
/* Reopens "<path>.partial" for a restart: returns 1 if it exists and has the same identity as m,
 * 0 if there is none, -1 if it is corrupt or was made with another configuration (the error says
 * which and suggests --force). */
int features_resume(features_file *ff, const char *path, MPI_Comm comm, const features_meta *m,
                    char *err);
/* Reads /done (N bytes) into done. */
int features_read_done(features_file *ff, uint8_t *done, char *err);

/* Rows of one flush, in strictly increasing sample order: count samples, each with
 * patch (V*g*g*C, uint16 half or float per m.fp32), cls (V*C, same), saliency (V*g*g),
 * pixel (V*P*2), point_saliency (P), label (1). */
typedef struct {
    const long *rows;
    long count;
    const void *patch, *cls;
    const float *saliency, *point_saliency;
    const int16_t *pixel;
    const int32_t *label;
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
