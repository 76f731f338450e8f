/* ckpt_kind.h -- what kind of checkpoint a file is (pre-training, fine-tuning, part segmentation),
 * and the network configuration of a pre-training one, for every command that reads one.
 *
 * One place says what each command takes, so each refuses a wrong file with the same line: a
 * directory (a run directory, with its newest ckpt-*.h5 as the example to give instead), a
 * checkpoint of another kind (the configuration says which: "model" for pre-training, pretrain's
 * ckpt-*.h5 and import's files; "classifier" for fine-tuning; "partseg" for part segmentation), a
 * file that cannot be read, or a "model" that is not a valid network. `info` prints the kind. */
#ifndef I2P_CKPT_KIND_H
#define I2P_CKPT_KIND_H

#include <cjson/cJSON.h>
#include <mpi.h>

#include "checkpoint.h"
#include "model3d.h"

#define CKPT_KIND_PRETRAIN "pre-training"
#define CKPT_KIND_FINETUNE "fine-tuning"
#define CKPT_KIND_PARTSEG "part-segmentation"

/* The kind of a checkpoint from its stored configuration: one of the three above, or NULL. */
const char *ckpt_kind(const cJSON *config);

/* The commands that take a checkpoint of that kind, in words (for `info`); "" for NULL. */
const char *ckpt_kind_uses(const char *kind);

/* 0 when config (of the checkpoint at path) is of kind want; else -1 with "<opt> <path>: is a <kind>
 * checkpoint; <who> takes a <want> one (<what files those are>); a <kind> checkpoint is for <its
 * commands>", or, for a configuration of no kind, "... has no configuration of any kind". Not
 * collective. */
int ckpt_kind_require(const cJSON *config, const char *path, const char *opt, const char *who, const char *want,
                      char *err);

/* The network configuration (*cfg, checked with model3d_config_check) of the pre-training
 * checkpoint at path; *st its state (st may be NULL); with root not NULL, *root its whole
 * configuration object (the caller deletes it; NULL on an error). opt: the option that named path
 * ("--checkpoint", "--init"), the start of every message, as in "--init ckpt.h5: is a fine-tuning
 * checkpoint; ...". 0, or -1 with err. Collective over comm (every rank gets the same answer). */
int ckpt_pretrain_config(const char *path, const char *opt, MPI_Comm comm, model3d_config *cfg, ckpt_state *st,
                         cJSON **root, char *err);

#endif
