/* pretrain_data.h -- assembles one micro-batch of pre-training input (model3d_batch) from the
 * point-cloud file and the features file (i2pmae-spec.md sections 1 and 10).
 *
 * Each rank opens both files on MPI_COMM_SELF and reads only its own samples (independent reads).
 * For every sample: the first cfg.points points (the canonical subset the features were made for),
 * scale-and-translate augmented with the stream of (seed, epoch, sample) (augment.h); the masking
 * key rng_mix(rng_mix(seed, step), sample); and from the features file only what the run needs
 * (`need`): the point saliency of those points for 2D-guided masking (PD_SALIENCY), the stored 2D
 * feature grids and the pixels of those points for the 2D targets (PD_TARGETS), un-augmented and
 * looked up by point index. need = 0 (3D-only pre-training with random masking): the features file
 * is not opened at all and need not exist.
 * Nothing here depends on which rank reads the sample.
 */
#ifndef I2P_PRETRAIN_DATA_H
#define I2P_PRETRAIN_DATA_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "dataset.h"
#include "features_file.h"
#include "model3d.h"

#define PD_SALIENCY 1 /* read the point saliency (2D-guided masking) */
#define PD_TARGETS 2  /* read the 2D grids and pixels (2D-semantic targets) */

typedef struct {
    dataset d;
    features_file ff;
    int d_open, ff_open;
    int need;                    /* PD_SALIENCY | PD_TARGETS */
    char fingerprint[17];        /* the dataset's, when no features file is opened */
    model3d_config cfg;
    long micro;
    long data_points;            /* points per sample in the files */
    float *raw, *points, *grids, *sal_all, *sal;
    int16_t *pix_all, *pix;
    uint64_t *keys;
    long *rows;
} pretrain_data;

/* Opens and cross-checks the files (features made from this dataset, complete, with exactly
 * `views` views, at least cfg->points points); the features file only if need != 0. Fills cfg's 2D
 * fields (views, feat_dim, grid, image) from the features file with PD_TARGETS, else sets them to 0
 * (no 2D head), and allocates buffers for micro samples. Not collective. */
int pretrain_data_open(pretrain_data *pd, const char *data, const char *features, int views,
                       model3d_config *cfg, long micro, int need, char *err);

/* A JSON object of what the run's inputs are (sample count, points, dataset fingerprint, and with
 * a features file its 2D model and weights hash, views, grid, feature width, image): stored in
 * checkpoints and compared on --resume. Caller owns it. */
cJSON *pretrain_data_identity(const pretrain_data *pd);

/* Fills b with the micro-batch of dataset samples ids[0..count) for global step `step` of `epoch`
 * (point_saliency NULL without PD_SALIENCY, grids and pixels NULL without PD_TARGETS).
 * The buffers b points into belong to pd and stay valid until the next call. */
int pretrain_data_fill(pretrain_data *pd, const int64_t *ids, long count, uint64_t seed, long epoch,
                       long step, model3d_batch *b, char *err);

void pretrain_data_close(pretrain_data *pd);

#endif
