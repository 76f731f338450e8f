/* interop.h -- our 3D network in the tensor names, shapes and layouts of the official PyTorch
 * I2P-MAE (ZrrSkywalker/I2P-MAE, models/I2P_MAE.py; the mapping is listed in docs/interop.md), and
 * the export / import between our HDF5 checkpoints and safetensors files in those names.
 *
 * Layout differences handled here (everything else is the same row-major data):
 *  - IO_CONV: Conv1d weights (token embeddings, token propagation, both heads) are [out, in, 1]
 *    where ours are (out, in);
 *  - IO_MASK_TOKEN: mask_token is [1, D] where ours is (1, 1, D);
 *  - IO_FUSE: token_prop.0.fuse.net.0.weight takes its input channels as [encoder skip |
 *    interpolated]; ours as [interpolated | skip]: the two column blocks are swapped (an official
 *    decoder loaded without the swap loads without error and computes something else);
 *  - IO_BN_COUNT: BatchNorm num_batches_tracked, an int64 scalar of shape [] that we do not keep
 *    (export writes the checkpoint's step; import checks its shape and drops it).
 */
#ifndef I2P_INTEROP_H
#define I2P_INTEROP_H

#include <stdint.h>

#include "errors.h"
#include "model3d.h"
#include "model_opts.h"

typedef enum { IO_SAME, IO_CONV, IO_MASK_TOKEN, IO_FUSE, IO_BN_COUNT } interop_layout;

typedef struct {
    char official[160];
    const model3d_tensor *ours; /* our tensor (NULL for IO_BN_COUNT) */
    float *data;                /* its floats (in the model's parameter or buffer array) */
    int buffer;                 /* 1: a BatchNorm buffer, 0: a parameter */
    interop_layout layout;
    int rank;                   /* official rank (0 for num_batches_tracked) */
    int64_t shape[3];           /* official shape */
    int fuse_interp, fuse_skip; /* IO_FUSE: widths of the two column blocks */
} interop_entry;

/* The official pre-training state dict of m (CLIP aside): every parameter, every BatchNorm
 * running_mean / running_var and num_batches_tracked. *out is malloc'ed (caller frees). */
int interop_table(model3d *m, interop_entry **out, int *n, char *err);

struct classifier;
/* The official fine-tuning state dict of c (I2P_MAE_ModelNet40 / _ScanObjectNN): the encoder as in
 * pre-training without h_encoder.encoder_norms, norm.* and cls_head_finetune.{0,1,4,5,8}.* (our
 * head.fc1, bn1, fc2, bn2, fc3). */
int interop_classifier_table(struct classifier *c, interop_entry **out, int *n, char *err);

/* Elements of the official tensor (1 for a scalar). */
long interop_numel(const interop_entry *e);
/* Ours -> official layout (out: interop_numel floats; not for IO_BN_COUNT). */
void interop_to_official(const interop_entry *e, float *out);
/* Official layout -> ours (in: interop_numel floats; not for IO_BN_COUNT). */
void interop_from_official(const interop_entry *e, const float *in);

/* The model configuration (checked) and step stored in our checkpoint. Collective. */
int interop_checkpoint_config(const char *path, model3d_config *cfg, long *step, char *err);

typedef struct {
    int tensors;   /* tensors written */
    long params;   /* parameters among them (buffers not counted) */
    long step;     /* the checkpoint's step (num_batches_tracked) */
    const char *kind; /* "pretrain" or "finetune" */
} interop_export_result;

/* Our checkpoint -> FILE.safetensors in the official names, our configuration in its metadata
 * ("i2pmae_kind" pretrain or finetune; "i2pmae_config", the model or classifier object as JSON;
 * for fine-tuning "i2pmae_train", the run's training settings). A pre-training checkpoint gives
 * the pre-training state dict (interop_table), a fine-tuning one (finetune's ckpt-*.h5 or
 * best.h5) the fine-tuning state dict (interop_classifier_table). Collective over MPI_COMM_WORLD (rank 0 writes). */
int interop_export(const char *checkpoint, const char *output, interop_export_result *r, char *err);

typedef struct {
    int tensors;        /* tensors taken */
    long params;
    int ignored_clip;   /* clip_model.* tensors ignored */
    int module_prefix;  /* 1 if the keys carried the DataParallel "module." prefix */
    int config_from_metadata; /* 1: our configuration came from the file's metadata */
    const char *kind;   /* "pretrain" or "finetune" */
    char sha256[65];    /* of the input file */
} interop_import_result;

/* FILE.safetensors in the official names -> our checkpoint (params and BatchNorm buffers; step 0).
 * The configuration comes from the file's "i2pmae_config" metadata (our exports) or from the
 * spec's defaults with the widths, depths and head sizes read off the tensor shapes; model options
 * given override it. Every tensor is checked: a missing one, one with a wrong shape or dtype, and
 * one the model does not have are errors naming it; clip_model.* tensors are counted and ignored;
 * a Point-MAE (non-hierarchical) checkpoint is refused saying what it is. A fine-tuning state dict
 * (cls_head_finetune.*) gives a fine-tuning checkpoint ("classifier" configuration: the metadata's,
 * else the spec's ModelNet40 one with the widths, depths, head width, classes and pooling the
 * shapes give) that finetune --eval-only takes.
 * Collective over MPI_COMM_WORLD. */
int interop_import(const char *input, const char *output, const model_opts *o, interop_import_result *r,
                   char *err);

#endif
