/* partseg.h -- the part-segmentation network (docs/partseg.md; Point-M2AE's segmentation model):
 * the pre-trained hierarchical encoder run UNMASKED with local attention and its stage norms, the
 * features of each scale propagated back to the input points (inverse-squared-distance weights of
 * the 3 nearest centres, PointNet++ feature propagation: [xyz | interpolated] -> Conv-BN-ReLU ->
 * Conv-BN-ReLU), the three propagated features concatenated (x, (B,N,3F)), a global feature
 * max_n x + mean_n x, a category feature one-hot -> Conv (no bias) -> BN -> LeakyReLU(0.2), and a
 * per-point head on [global | category | x]:
 *   Conv(D,H1)-BN-ReLU-Dropout(p)-Conv(H1,H2)-BN-ReLU-Conv(H2,H3)-BN-ReLU-Conv(H3,n_parts)
 * trained with cross-entropy over the parts (mean over every point of the batch).
 *
 * Parameters, gradients and BatchNorm buffers each live in one flat buffer with named views, as in
 * the classifier; encoder tensors carry their pre-training names (embed0, merge1/2, encoder.{s}.pos,
 * .blocks, .norm), the new ones are prop.{s}.*, label.*, head.*. Randomness (stochastic depth,
 * dropout) comes only from the batch's drop_key.
 */
#ifndef I2P_PARTSEG_H
#define I2P_PARTSEG_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "dnn.h"
#include "model3d.h"

typedef struct {
    model3d_config enc;   /* points, groups (>= 3 each), k, dims, depths, heads, drop_path, embed_hidden */
    double radius[3];     /* local-attention radius per stage; 0 = off */
    int n_categories;     /* 16 for ShapeNetPart */
    int n_parts;          /* 50 */
    int prop_hidden;      /* 1536 */
    int prop_out;         /* 1024 (F) */
    int label_dim;        /* 64 */
    int head[3];          /* 1024, 512, 256 */
    double dropout;       /* 0.5 */
} partseg_config;

typedef struct partseg partseg;

/* Point-M2AE's ShapeNetPart configuration: 2048 points, groups [512,256,64], k [16,8,8], radii
 * [0.32,0.64,1.28], 16 categories, 50 parts. */
void partseg_config_default(partseg_config *c);
int partseg_config_check(const partseg_config *c, char *err);
cJSON *partseg_config_to_json(const partseg_config *c);
int partseg_config_from_json(const cJSON *j, partseg_config *c, char *err);

/* Encoder as model3d_create, the rest as PyTorch's Conv1d default (U(+-1/sqrt(fan_in)) for weights
 * and biases); BatchNorms (1, 0). max_batch: the largest B any later call passes. */
int partseg_create(partseg **m, const partseg_config *cfg, int max_batch, uint64_t seed, dnn_ctx *ctx,
                   char *err);
void partseg_free(partseg *m);
/* The matmul precision of every later step, as model3d_set_precision. */
int partseg_set_precision(partseg *m, nn_precision p, char *err);
const partseg_config *partseg_get_config(const partseg *m);

float *partseg_params(partseg *m);
float *partseg_grads(partseg *m);
long partseg_n_params(const partseg *m);
int partseg_n_tensors(const partseg *m);
const model3d_tensor *partseg_get_tensor(const partseg *m, int i);
float *partseg_buffers(partseg *m);
long partseg_n_buffers(const partseg *m);
int partseg_n_buffer_tensors(const partseg *m);
const model3d_tensor *partseg_get_buffer_tensor(const partseg *m, int i);

/* Copies the encoder (stage norms included) of a pre-training model by name (ft_encoder_copy). */
int partseg_load_encoder(partseg *m, const model3d *pre, char *err);

typedef struct {
    int B;
    const float *points;       /* (B,N,3), already augmented */
    const int32_t *category;   /* (B) */
    const int32_t *seg;        /* (B,N) global part labels 0..n_parts-1 */
    uint64_t drop_key;
    /* Test hook (NULL in normal use): drop_path (B, n_blocks, 2) as in classifier.h; dropout
     * (B, N, head[0]) the scales of the head's dropout (0 or 1/(1-p)). */
    const float *forced_drop_path;
    const float *forced_dropout;
} partseg_batch;

/* Train mode: forward, loss (mean over B*N points), backward; gradients overwritten. logits
 * (B,N,n_parts) may be NULL. B >= 2. Sample b's masks come from rng_seed(drop_key, b): the drop
 * path (ft_encoder_drop_path), then N*head[0] uniforms for the dropout (dropped if < p). */
int partseg_train_step(partseg *m, const partseg_batch *b, double *loss, float *logits, char *err);

/* Eval mode: logits (B,N,n_parts). */
int partseg_forward(partseg *m, int B, const float *points, const int32_t *category, float *logits,
                    char *err);

/* An activation of the last train step, for the reference tests: "enc{s}_out" (B,G_s,C_s) stage
 * norm outputs, "prop{s}" (B,N,F), "global" (B,3F), "label" (B,L), "logits". Returns the count
 * written or -1. */
long partseg_activation(const partseg *m, const char *name, float *out);

#endif
