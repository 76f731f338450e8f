/* encode.h -- the frozen encoder's features of every cloud of a point-cloud file (the `encode`
 * command): the SVM path's global feature (model3d_encode, the official eval=True visibility), its
 * mean-pooled sibling and optionally the last stage's tokens and centres.
 *
 * Output file (HDF5, written as <out>.partial and renamed when complete):
 *   /global_max  (N, C) float32  max-pool over the last stage's tokens (what svm uses)
 *   /global_mean (N, C) float32  mean-pool over the same tokens
 *   /label       (N) int32       the input's labels
 *   /tokens      (N, G, C) float32 and /centres (N, G, 3) float32 with --tokens
 *   /done        (N) uint8       1 for the samples written (for resuming)
 *   root attributes: checkpoint, input, points, model (the configuration as JSON), identity
 * Every rank encodes a contiguous block of the samples (dist_block_range) in batches and writes its
 * rows with collective writes, then marks them done and flushes; results do not depend on the rank
 * count. Resumable: without force, an <out>.partial of the same identity (checkpoint, input,
 * configuration, tokens) is continued, skipping the batches it holds; one of another identity is an
 * error; an existing <out> is an error.
 */
#ifndef I2P_ENCODE_H
#define I2P_ENCODE_H

#include "model_opts.h"

typedef struct {
    const char *checkpoint, *input, *output;
    long batch;        /* samples per encoder batch per rank */
    int tokens;        /* 1: also /tokens and /centres */
    int force;         /* 1: replace an existing output */
    const model_opts *model; /* points and fps-skip-origin may differ from the checkpoint */
} encode_options;

typedef struct {
    long samples;
    long resumed;      /* samples found done in a partial file */
    int dim, groups, points;
    double seconds;
} encode_result;

/* Collective over MPI_COMM_WORLD. */
int encode_run(const encode_options *o, encode_result *r, char *err);

#endif
