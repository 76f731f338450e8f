/* extract.h -- the distributed multi-view feature extraction behind `i2pmae extract`
 * (architecture.md sections 3-4, docs/features.md).
 *
 * extract_run is collective over the grid's world communicator and returns the same status on
 * every rank (errors agreed with dist_any_error; the message is on every rank):
 *  - every rank loads the ViT and opens the dataset on MPI_COMM_SELF (independent reads);
 *  - the last stage of every replica opens the output on the last stage's stage communicator:
 *    a complete file with the same identity means nothing to do, a .partial with the same identity
 *    is resumed, anything else with another identity is an error (unless force);
 *  - replica r takes the not-yet-done samples of its contiguous block (dist_block_range) in
 *    micro-batches of `batch` samples (padded to full size so results never depend on the grid);
 *  - stage s runs ViT blocks dist_block_range(depth, S, s); stage 0 also projects, the last stage
 *    runs the head, the pixel table and the per-point saliency and writes collectively every
 *    `flush` samples (rounded up to whole micro-batches).
 */
#ifndef I2P_EXTRACT_H
#define I2P_EXTRACT_H

#include "cli.h"
#include "dist.h"
#include "vit.h"

typedef struct {
    const char *input, *vit, *output;
    int views, image, batch, flush, fp32, force;
    vit_precision precision;
    const char *config_json; /* cli_values_json of the command, stored as the "config" attribute */
} extract_options;

/* Seconds of this rank by kind (see docs/features.md for what each counts); vit_s is the part of
 * compute_s inside the ViT (embedding, blocks, head), the rest of compute_s is projection,
 * saliency, checks and conversion. */
typedef struct {
    double compute_s, comm_s, idle_s, io_s, vit_s;
} extract_times;

typedef struct {
    long samples;        /* in the dataset */
    long skipped;        /* already done before this run */
    long extracted;      /* done by this run (all replicas) */
    double bytes_written; /* all replicas */
    double setup_s;      /* model load, dataset and output opening (rank 0) */
    double stream_s;     /* from the start of the stream to the committed file (rank 0) */
    extract_times me;    /* this rank */
    extract_times *per_rank; /* rank 0 only: world size entries (caller frees) */
} extract_result;

int extract_run(const extract_options *o, const dist_grid *g, extract_result *res, char *err);

#endif
