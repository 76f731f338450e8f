/* features_layout.h -- the layout of the features file, described once (docs/features.md;
 * i2pmae-spec.md section 10's compact form): its metadata, its datasets, its root attributes and
 * its identity. Creating, checking, reading, writing and counting bytes (features_file.c,
 * features_read.c, extract_output.c) all go through the tables of features_layout.c.
 *
 * Per sample n (N rows), V views, grid g = image/patch, C features, P points:
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
 * The first five are chunked one sample per chunk and created without fill values (every row is
 * written); /label and /done are contiguous and created as zeros.
 * Root attributes: format "i2pmae-features", vit, vit_spec, weights_sha256, views, image, patch,
 * grid, feat_dim, block (0-based index of the block whose output is stored), precision (ViT compute:
 * fp32|bf16), storage (fp16|fp32), i2pmae (program version), config (the whole command
 * configuration as JSON), identity (the JSON of everything the values depend on; a restart must
 * match it), source (dataset path as given), source_samples, source_points, source_fingerprint.
 */
#ifndef I2P_FEATURES_LAYOUT_H
#define I2P_FEATURES_LAYOUT_H

#include <stddef.h>

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

/* The datasets, in creation order. Those before FEATURES_DONE hold the values of a sample (the rows
 * extract writes); /done marks the samples whose rows are on disk. */
typedef enum {
    FEATURES_PATCH,
    FEATURES_CLS,
    FEATURES_SALIENCY,
    FEATURES_PIXEL,
    FEATURES_POINT_SALIENCY,
    FEATURES_LABEL,
    FEATURES_DONE,
    FEATURES_N_DATASETS
} features_dataset_id;

/* One dataset of the file that a features_meta describes. */
typedef struct {
    const char *name;             /* "/patch", ... */
    int rank;
    hsize_t dims[H5IO_MAX_RANK];  /* dims[0] = samples */
    hid_t file_type;
    hid_t mem_type;               /* the same values in memory: read and written without conversion */
    size_t elem_bytes;            /* bytes of one element, in memory and in the file */
    int per_sample_chunks;        /* 1: chunked one sample per chunk, unfilled; 0: contiguous, zeros */
} features_dataset;

/* Dataset id of the file that m describes (types and dims from the metadata). */
features_dataset features_dataset_of(const features_meta *m, features_dataset_id id);
/* Elements of one sample's row of dataset id (the product of dims[1..rank-1]; 1 for rank 1). */
long features_row_elems(const features_meta *m, features_dataset_id id);
/* Bytes of one sample's row of dataset id. */
size_t features_row_bytes(const features_meta *m, features_dataset_id id);
/* Bytes one sample occupies in the file over all datasets (/done included). */
size_t features_sample_bytes(const features_meta *m);

/* Creates every dataset (collective; /label and /done as zeros). */
int features_layout_create(h5file *f, const features_meta *m, char *err);
/* Checks that every dataset exists with the dims m implies; the error names the dataset. */
int features_layout_check(h5file *f, const features_meta *m, char *err);

/* Writes the root attributes (all but identity); config_json is stored as "config". */
int features_attrs_write(h5file *f, const features_meta *m, const char *config_json, char *err);
/* Reads the root attributes of an open file into m (checks the format attribute first). */
int features_meta_read(h5file *f, features_meta *m, char *err);

/* The identity JSON (what the stored values depend on) of a configuration. Caller frees. */
char *features_identity_json(const features_meta *m);
/* Compares the identity attribute of the open file f with m's: 0 if the same, -1 if it differs (the
 * error names both and suggests --force) or cannot be read. final: 1 for a file under its final
 * name (the error says it exists), 0 for a .partial file. */
int features_identity_check(h5file *f, const features_meta *m, int final, char *err);

#endif
