/* pretrained_ckpt.h -- the network configuration of a pre-training checkpoint, for every command
 * that starts from one (finetune, partseg, pretrain --init, svm, encode, export, render).
 *
 * One place says what such a file must be, so each command refuses a wrong one with the same line:
 * a directory (a run directory, with its newest ckpt-*.h5 as the example to give instead), a
 * fine-tuning or part-segmentation checkpoint (their configurations are "classifier" / "partseg",
 * a pre-training one's is "model": pretrain's ckpt-*.h5 and import's files), a file that cannot be
 * read, or a "model" that is not a valid network. */
#ifndef I2P_PRETRAINED_CKPT_H
#define I2P_PRETRAINED_CKPT_H

#include <cjson/cJSON.h>
#include <mpi.h>

#include "checkpoint.h"
#include "model3d.h"

/* The network configuration (*cfg, checked with model3d_config_check) of the pre-training
 * checkpoint at path; *st its state (st may be NULL); with root not NULL, *root its whole
 * configuration object (the caller deletes it; NULL on an error). opt: the option that named path
 * ("--checkpoint", "--init"), the start of every message, as in "--init ckpt.h5: is a fine-tuning
 * checkpoint; ...". 0, or -1 with err. Collective over comm (every rank gets the same answer). */
/* What a checkpoint is, from its stored configuration: "pre-training" ("model": pretrain's and
 * import's), "fine-tuning" ("classifier"), "part-segmentation" ("partseg"), or NULL (none of them). */
const char *pretrained_ckpt_kind(const cJSON *config);

/* The commands that take a checkpoint of that kind, in words (for `info`); "" for NULL. */
const char *pretrained_ckpt_uses(const char *kind);

int pretrained_ckpt_config(const char *path, const char *opt, MPI_Comm comm, model3d_config *cfg, ckpt_state *st,
                           cJSON **root, char *err);

#endif
