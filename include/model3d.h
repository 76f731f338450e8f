/* model3d.h -- the I2P-MAE 3D network (i2pmae-spec.md 5-6): multi-scale tokenizer, hierarchical
 * encoder, 2D-guided masking, decoder, 3D (Chamfer) and 2D-semantic (MSE) losses, with explicit
 * forward and backward passes on oneDNN primitives.
 *
 * Parameters and gradients each live in one flat float buffer owned by the model; the tensor table
 * (names as in the PyTorch reference tests/ref/, see docs/model3d.md) gives named views into it, so
 * the optimiser, the gradient all-reduce and the checkpoint each see one array.
 * A model is created for a maximum batch size; all work buffers and primitives are made then
 * (or at the first step), and a training step allocates nothing after the first, except when the
 * first stage meets a padded length it has not seen (model3d_set_pad_multiple).
 */
#ifndef I2P_MODEL3D_H
#define I2P_MODEL3D_H

#include <stdint.h>

#include "dnn.h"
#include "nn.h"

typedef struct {
    int points;        /* input points per cloud (2048) */
    int groups[3];     /* FPS centres per scale (512, 256, 64) */
    int k[3];          /* kNN neighbourhood per scale (16, 8, 8) */
    int dims[3];       /* encoder widths (96, 192, 384) */
    int depths[3];     /* encoder blocks per stage (5, 5, 5) */
    int heads;         /* attention heads, every stage (6) */
    int dec_dims[2];   /* decoder widths (384, 192) */
    int dec_depths[2]; /* decoder blocks (1, 1) */
    int embed_hidden[3]; /* mini-PointNet widths: 3->h0, BN, ReLU, h0->h1, [cat] 2*h1->h2, ... (128, 256, 512) */
    double mask_ratio; /* 0.8 */
    double drop_path;  /* 0.1 (0 in reference tests) */
    int visible;       /* visible scale-2 tokens per sample; 0: groups[2] - int(mask_ratio * groups[2])
                          (the spec: 13 of 64) */
    int views;         /* 2D views (3); views = feat_dim = 0: no 2D head (3D-only pre-training) */
    int feat_dim;      /* 2D feature width C (512) */
    int grid;          /* 2D patch grid side (14) */
    int image;         /* depth-map side (224) */
    int fps_skip_origin; /* 1: the tokenizer's FPS never picks a point of squared norm <= 1e-3 after
                            index 0, as the official pointnet2 kernel (pointops.h); 0: plain FPS */
} model3d_config;

/* The spec's configuration. */
void model3d_config_default(model3d_config *c);
/* The tiny test configuration of docs/model3d.md (points 64, groups 16/8/4, ..., B 2 in the files). */
void model3d_config_tiny(model3d_config *c);
/* Checks consistency (heads divide dims, groups <= points, k <= previous count, ...). */
int model3d_config_check(const model3d_config *c, char *err);

typedef struct {
    char name[96];     /* e.g. "encoder.0.blocks.1.attn.qkv.weight" */
    long offset;       /* in floats, into the parameter / gradient buffer */
    long count;
    int rank;
    int shape[4];
    int decay;         /* 1 if AdamW weight decay applies (not biases, norms, tokens, 1-D) */
} model3d_tensor;

typedef struct model3d model3d;

/* Initialises parameters from seed (Xavier-uniform linears, trunc-normal tokens, as in the spec). */
int model3d_create(model3d **m, const model3d_config *cfg, int max_batch, uint64_t seed,
                   dnn_ctx *ctx, char *err);
void model3d_free(model3d *m);
const model3d_config *model3d_get_config(const model3d *m);
float *model3d_params(model3d *m);
float *model3d_grads(model3d *m);
long model3d_n_params(const model3d *m);
int model3d_n_tensors(const model3d *m);
/* Non-trained state (BatchNorm running mean/var), saved in checkpoints; eval uses it. */
float *model3d_buffers(model3d *m);
long model3d_n_buffers(const model3d *m);
const model3d_tensor *model3d_get_tensor(const model3d *m, int i);
/* Named views into the buffers: "<bn>.running_mean", "<bn>.running_var" (offset into
 * model3d_buffers, decay 0), in parameter-table order. */
int model3d_n_buffer_tensors(const model3d *m);
const model3d_tensor *model3d_get_buffer_tensor(const model3d *m, int i);

/* The matmul precision of every later step (nn.h): NN_FP32 (the default) or NN_BF16 (bf16 matmul
 * inputs, f32 accumulation; parameters, gradients, norms and losses stay f32). Fails where the CPU
 * has no bf16 support. */
int model3d_set_precision(model3d *m, nn_precision p, char *err);

/* How many rows per sample the encoder's first stage pads its visible tokens to, in every later
 * forward with a drawn mask (pre-training, the SVM path): q > 0 (the default MODEL3D_PAD_MULTIPLE):
 * the micro-batch's largest visible count rounded up to a multiple of q, as the official code's
 * batch maximum (rounded so that few shapes recur); 0: the fixed bound min(G0, cap1 k1) of mask.h,
 * the same shapes every step. Padded keys get -1e5 and padded rows are dropped, so the results are
 * the same up to rounding (the order of some sums moves with the row count). With q > 0 a step
 * allocates arena memory and oneDNN primitives only when it meets a larger or new padded length. */
#define MODEL3D_PAD_MULTIPLE 32
int model3d_set_pad_multiple(model3d *m, int q, char *err);

/* The weights of the two losses in the trained loss w3 * loss_3d + w2 * loss_2d (default 1, 1). A
 * weight 0 turns its head off: it is not run, its loss reads 0 and its inputs (the 2D grids and
 * pixels for w2) are not read. Fails if both are 0 or one is negative. */
int model3d_set_loss_weights(model3d *m, double w3, double w2, char *err);

typedef struct {
    int B;
    const float *points;          /* (B,P,3) network input (already augmented) */
    const float *point_saliency;  /* (B,P) view-averaged 2D saliency of each point (2D-guided
                                     masking), or NULL: random masking, every token equally likely */
    const float *grids;           /* (B,V,grid,grid,C) 2D feature grids (channel-last); NULL when
                                     the model has no 2D head or its weight is 0 */
    const int16_t *pixels;        /* (B,V,P,2) pixel (row, col) of each point in each view (as grids) */
    const uint64_t *mask_keys;    /* (B) RNG stream per sample for the masking draw */
    uint64_t drop_key;            /* RNG stream for stochastic depth in this step */
    const int32_t *forced_visible; /* (B, n_visible) scale-2 visible token indices, or NULL to draw
                                      them from the saliency (tests pass the reference's mask) */
} model3d_batch;

typedef struct {
    double loss, loss_3d, loss_2d; /* loss = w3 * loss_3d + w2 * loss_2d (model3d_set_loss_weights) */
} model3d_losses;

/* Forward and backward of one batch; gradients are overwritten (not accumulated across calls). */
int model3d_train_step(model3d *m, const model3d_batch *b, model3d_losses *out, char *err);

/* How the following train steps run (results are the same bitwise either way): recompute 1 keeps
 * only each transformer block's input and recomputes its other activations in the backward (less
 * memory, about one more forward of the blocks); grads_final, when not NULL, is called during the
 * backward with lo each time the gradients of all parameters at offsets >= lo are final (lo only
 * falls; the lowest report is encoder.0's first tensor: the embeddings before it are final when
 * model3d_train_step returns), e.g. to start their reduction. */
void model3d_set_step_options(model3d *m, int recompute, void (*grads_final)(void *ctx, long lo), void *ctx);

/* The last train step's 3D reconstruction of sample b as points (k[1] per scale-1 token, each its
 * centre plus an offset): the ground-truth neighbourhoods of the visible scale-1 tokens (vis), of the
 * masked ones (gt) and the 3D head's prediction for the masked ones (rec). Each array has room for
 * groups[1] * k[1] * 3 floats; *n_vis and *n_masked are point counts (rec has n_masked points).
 * Fails if no step was run or b is out of range. */
int model3d_reconstruction(const model3d *m, int b, float *vis, long *n_vis, float *gt, float *rec,
                           long *n_masked, char *err);

/* The encoder on the official SVM path (i2pmae-spec.md section 8; the pre-training model with
 * eval=True): BatchNorm in eval mode, every scale-2 token visible, scales 1 and 0 visible through
 * the kNN propagation (a finer token in no coarser kNN set is left out of its stage and keeps its
 * embedding). Global feature = max-pool over the last stage's tokens after its LayerNorm.
 * points (B,P,3) -> global (B, dims[2]). */
int model3d_encode_global(model3d *m, int B, const float *points, float *global, char *err);
/* The same forward with more outputs (each may be NULL): gmax (B, dims[2]) as encode_global, gmean
 * (B, dims[2]) the mean over the groups[2] tokens, tokens (B, groups[2], dims[2]) the last stage's
 * tokens after its LayerNorm, centres (B, groups[2], 3) their centres. */
int model3d_encode(model3d *m, int B, const float *points, float *gmax, float *gmean, float *tokens,
                   float *centres, char *err);

/* Re-estimated BatchNorm statistics of the encoder (svm --bn-stats data, docs/svm.md). The values,
 * per encoder BatchNorm in the order embed0.bn1, embed0.bn2, merge1.bn1, merge1.bn2, merge2.bn1,
 * merge2.bn2: its C means, then its C unbiased variances; model3d_encoder_bn_values counts them. */
long model3d_encoder_bn_values(const model3d *m);
/* The forward of model3d_encode on points (B,P,3), B >= 2, with the encoder's BatchNorms in training
 * mode and no drop path: stats (model3d_encoder_bn_values) = each one's batch mean and unbiased
 * variance over its B * groups[s] * k[s] rows. Parameters and running statistics are left as they
 * were. */
int model3d_encoder_bn_batch_stats(model3d *m, int B, const float *points, double *stats, char *err);
/* The encoder's BatchNorm running statistics := stats (the layout above), rounded to float. */
void model3d_set_encoder_bn_stats(model3d *m, const double *stats);

/* Allocation counters (tests: a steady state adds nothing): step/eval arena chunks malloc'ed so far,
 * oneDNN primitives created, and the bytes of their scratchpads and temporaries; plus the matmul
 * FLOPs (2*M*K*N, forward and backward) executed so far, for throughput figures, and the bf16
 * weight copies made (one per change of the parameters, m3_store_bf16_refresh). */
typedef struct {
    long arena_chunks, primitives, primitive_bytes;
    long step_arena_bytes;  /* what the train step's arena holds: its peak activations so far */
    long executions;        /* oneDNN primitive executions so far */
    long bf16_weight_copies; /* NN_BF16: times the bf16 copy of the parameters was made so far */
    double matmul_flops;
} model3d_alloc_info;
void model3d_alloc_stats(const model3d *m, model3d_alloc_info *info);

#endif
