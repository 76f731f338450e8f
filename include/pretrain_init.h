/* pretrain_init.h -- `pretrain --init CKPT.h5`: a new pre-training run that starts from the
 * parameters and BatchNorm buffers of a checkpoint (one of pretrain's, or one written by
 * `i2pmae import`), with fresh AdamW state, step 0 and a new schedule (docs/pretrain.md,
 * docs/interop.md).
 */
#ifndef I2P_PRETRAIN_INIT_H
#define I2P_PRETRAIN_INIT_H

#include <mpi.h>

#include <cjson/cJSON.h>

#include "dnn.h"
#include "model3d.h"

/* Copies every parameter and BatchNorm buffer of the checkpoint at path into m, by name. The
 * architecture must match: the attention heads (not visible in the shapes) are compared as a
 * configuration key, then every tensor of m must be in the checkpoint with the same shape and the
 * checkpoint must hold no other; a difference is an error naming the key or the tensor. Other
 * configuration (points, groups, k[0], k[2], masking, drop path, fps-skip-origin) is the run's own.
 * *record (caller deletes): {"checkpoint", "step", and the checkpoint's "import" object if it was
 * written by import} for the run's configuration. Collective over comm. */
int pretrain_init_load(model3d *m, const char *path, MPI_Comm comm, dnn_ctx *ctx, cJSON **record, char *err);

/* Adds record as "init" to the configuration JSON *config_json (re-allocated). 0 or -1. */
int pretrain_init_record(char **config_json, cJSON *record, char *err);

#endif
