/* classifier.h -- the fine-tuning classifier of I2P-MAE (i2pmae-spec.md section 8, "Fine-tuning"):
 * the pre-trained hierarchical encoder run UNMASKED (every token of every scale takes part, no
 * coarse-to-fine visibility propagation), optional local attention per stage (keys whose centre is
 * at distance >= radius from the query's centre get -1e5), one fresh LayerNorm over the last-stage
 * tokens, pooling (mean + max summed, or concat(mean, max)), then the head
 *   Linear(d,H) -> BN -> ReLU -> Dropout(p) -> Linear(H,H) -> BN -> ReLU -> Dropout(p) -> Linear(H,C)
 * and a cross-entropy loss with optional label smoothing.
 *
 * Like model3d: parameters, gradients and BatchNorm buffers each live in one flat float buffer,
 * with a table of named views. The encoder tensors carry exactly the names they have in the
 * pre-training model (model3d_get_tensor), so loading a pre-trained encoder is a copy by name; the
 * new tensors are "norm.*" and "head.*" (docs/finetune.md lists them). The pre-trained per-stage
 * encoder norms, the decoder and the reconstruction heads are not part of the classifier.
 *
 * Randomness (stochastic depth, dropout) comes only from the batch's drop_key, so a step's result
 * depends on (parameters, batch, drop_key) alone: never on the rank or thread count.
 */
#ifndef I2P_CLASSIFIER_H
#define I2P_CLASSIFIER_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "dnn.h"
#include "model3d.h"

typedef enum {
    CLS_POOL_MEAN_PLUS_MAX = 0, /* ModelNet40: mean + max over tokens, summed (d = dims[2]) */
    CLS_POOL_CONCAT = 1         /* ScanObjectNN: concat(mean, max) (d = 2 dims[2]) */
} cls_pooling;

typedef struct {
    model3d_config enc;   /* encoder part: points, groups, k (fine-tuning group sizes), dims,
                             depths, heads, drop_path (0.1), embed_hidden; the decoder, mask and 2D
                             fields are ignored */
    double radius[3];     /* local-attention radius per stage; 0 = off */
    cls_pooling pooling;
    int n_classes;
    int head_hidden;      /* 256 */
    double dropout;       /* 0.5 */
    double smoothing;     /* label smoothing of the cross-entropy (0.2 ModelNet40, 0 ScanObjectNN) */
} classifier_config;

typedef struct classifier classifier;

/* The spec's ModelNet40 configuration with n_classes 40. */
void classifier_config_default(classifier_config *c);
int classifier_config_check(const classifier_config *c, char *err);
/* Stored in checkpoints; from_json fails naming a missing or malformed key. */
cJSON *classifier_config_to_json(const classifier_config *c);
int classifier_config_from_json(const cJSON *j, classifier_config *c, char *err);

/* Initialises every parameter from seed (encoder as model3d_create does, head Linear layers as
 * PyTorch's default, trunc-normal where the official code uses it). max_batch: the largest B any
 * later call passes. */
int classifier_create(classifier **c, const classifier_config *cfg, int max_batch, uint64_t seed,
                      dnn_ctx *ctx, char *err);
void classifier_free(classifier *c);
/* The matmul precision of every later step, as model3d_set_precision. */
int classifier_set_precision(classifier *c, nn_precision p, char *err);
const classifier_config *classifier_get_config(const classifier *c);

float *classifier_params(classifier *c);
float *classifier_grads(classifier *c);
long classifier_n_params(const classifier *c);
int classifier_n_tensors(const classifier *c);
const model3d_tensor *classifier_get_tensor(const classifier *c, int i);
float *classifier_buffers(classifier *c);          /* BatchNorm running mean / var */
long classifier_n_buffers(const classifier *c);
int classifier_n_buffer_tensors(const classifier *c);
const model3d_tensor *classifier_get_buffer_tensor(const classifier *c, int i);

/* Copies every encoder tensor (parameters and BatchNorm buffers) of a pre-training model into c by
 * name. Shapes must match; the error names the first tensor that is missing or differs. The head
 * and the fresh LayerNorm keep their initialisation. */
int classifier_load_encoder(classifier *c, const model3d *pre, char *err);

typedef struct {
    int B;
    const float *points;     /* (B,P,3), already augmented */
    const int32_t *labels;   /* (B), 0..n_classes-1 */
    uint64_t drop_key;       /* stream of stochastic depth and dropout for this batch */
    /* Test hook (NULL in normal use): masks given instead of drawn from drop_key.
     * drop_path (B, n_blocks, 2): per sample and encoder block (stages in order), the residual
     * scales of the attention and the MLP branch (0 or 1/(1-rate)); dropout (B, 2, head_hidden):
     * the scales of the head's two dropouts (0 or 1/(1-p)). */
    const float *forced_drop_path;
    const float *forced_dropout;
} classifier_batch;

/* Train mode (BatchNorm batch statistics + running update, dropout, drop path): forward, loss
 * (mean over B), backward; gradients are overwritten (not accumulated). logits (B, n_classes) may
 * be NULL. B >= 2 (the head's BatchNorm needs a batch, as PyTorch's). Sample b's masks come from
 * rng_seed(drop_key, b): for each encoder block in order one uniform for the attention branch, one
 * for the MLP branch (dropped if < rate), then head_hidden for each dropout (dropped if < p). */
int classifier_train_step(classifier *c, const classifier_batch *b, double *loss, float *logits,
                          char *err);

/* Eval mode (running statistics, no dropout, no drop path): logits (B, n_classes). */
int classifier_forward(classifier *c, int B, const float *points, float *logits, char *err);

/* How the following train steps run, as model3d_set_step_options (model3d.h): recompute 1:
 * activation checkpointing per transformer block; grads_final: the backward's progress reports.
 * Results are the same bitwise either way. */
void classifier_set_step_options(classifier *c, int recompute, void (*grads_final)(void *ctx, long lo),
                                 void *ctx);

#endif
