/* vit_run.h -- the 2D ViT over a file of images (`i2pmae vit`), to check weights and to feed the
 * reference tests.
 *
 * Input /images (N,3,S,S) float32, already normalised, S the model's image size. Output /patch
 * (N, grid*grid, C): the last block's tokens after the final norm (and CLIP's projection), /cls
 * (N,C) and /saliency (N,grid,grid) float32, with root attributes model, spec, weights_sha256 and
 * precision. Ranks take contiguous blocks of images (dist_block_range) and write their rows
 * collectively, `batch` images at a time; the output appears under its name only when complete.
 */
#ifndef I2P_VIT_RUN_H
#define I2P_VIT_RUN_H

#include "vit.h"

typedef struct {
    const char *vit;         /* model spec, e.g. "random:tiny", "clip-b16:FILE" */
    const char *input;       /* HDF5 file with /images */
    const char *output;      /* HDF5 file to write */
    vit_precision precision; /* asked for; bf16 falls back to fp32 where unsupported */
    int batch;               /* images per forward */
    int force;               /* replace an existing output */
} vit_run_options;

typedef struct {
    char model[64];          /* vit_config.name */
    char weights_sha256[65];
    const char *precision;   /* the one used: "fp32" or "bf16" */
    long images;
    int grid, out_dim;       /* saliency grid side, feature width */
    double load_s;           /* building / loading the model */
    double forward_s;        /* forward time, the slowest rank (valid on rank 0) */
    double seconds;          /* the whole run */
    /* rank 0, batches after its first (which builds the primitives): their sum and count, and the
     * best images/s of one full batch (robust on a shared machine); steady_n 0 with one batch */
    double steady_s, best_images_per_s;
    long steady_n;
} vit_run_result;

/* Runs the model over every image. Collective over MPI_COMM_WORLD; a failure is agreed on every
 * rank (err holds the lowest failing rank's message) and leaves no output file. */
int vit_run_images(const vit_run_options *o, vit_run_result *r, char *err);

#endif
