/* vit.h -- the frozen 2D Vision Transformer (CLIP ViT-B/16, timm ViT, seeded random configs) on oneDNN.
 *
 * A model is loaded from a spec string:
 *   "clip-b16:FILE"  Hugging Face CLIP (vision tower) safetensors; features = last block tokens
 *                    -> post_layernorm -> visual_projection (768 -> 512), per i2pmae-spec.md 3
 *   "timm-b16:FILE"  timm vit_base_patch16_224 safetensors; features = final norm output (768)
 *   "clip:FILE", "timm:FILE"       the same namings at any size (read from the tensor shapes;
 *                    heads from the "heads" metadata entry, else width/64) -- small test models
 *   "random:tiny", "random:base"   seeded weights, identical bytes on every machine; the loader
 *                    logs loudly that the 2D guidance is untrained.
 * Images are (B,3,H,W) float32, already normalised. T = 1 + (H/p)*(W/p) tokens of width D.
 *
 * Pipeline use: a stage runs vit_embed (first stage), vit_blocks for its block range [a,b), and
 * vit_head (last stage). The tensor passed between stages is the plain contiguous token buffer
 * (B,T,D) float32 (vit_token_floats(m,B) floats). The saliency is taken in the LAST block
 * (depth-1): the stage that runs it must pass `saliency` non-NULL.
 * Buffers are caller-owned; the model owns its weights and cached primitives (one set per batch size,
 * up to 4: the first call with a new B builds them, later calls allocate nothing). docs/vit.md.
 */
#ifndef I2P_VIT_H
#define I2P_VIT_H

#include <stdint.h>

#include "dnn.h"

typedef enum { VIT_FP32 = 0, VIT_BF16 = 1 } vit_precision;

typedef struct {
    char name[64];       /* "clip-b16", "timm-b16", "random:tiny", "random:base" */
    int image;           /* input resolution (square), e.g. 224 */
    int patch;           /* 16 */
    int width;           /* D, 768 for B/16 */
    int depth;           /* number of blocks, 12 */
    int heads;           /* 12 */
    int mlp;             /* hidden width of the MLP, 3072 */
    int out_dim;         /* feature width after the head (512 for CLIP with projection) */
    int quick_gelu;      /* 1: CLIP x*sigmoid(1.702x); 0: erf GELU (timm) */
    int pre_norm;        /* 1: CLIP's pre_layrnorm after the embedding */
    int proj;            /* 1: CLIP's visual projection (D -> out_dim, no bias) after the final norm */
    float ln_eps;        /* 1e-5 CLIP, 1e-6 timm */
} vit_config;

typedef struct vit_model vit_model;

/* Loads (or generates) the weights; checks every tensor's presence, dtype and shape; errors name the
 * file and the tensor. sha256_hex receives the SHA-256 of the weights file (65 bytes; for random
 * specs, of the generated weight bytes). */
int vit_load(vit_model **m, const char *spec, vit_precision prec, dnn_ctx *ctx, char *sha256_hex,
             char *err);
void vit_free(vit_model *m);
const vit_config *vit_get_config(const vit_model *m);
/* The precision actually used (VIT_BF16 asked for falls back to VIT_FP32 where unsupported). */
vit_precision vit_get_precision(const vit_model *m);

/* Number of floats of the token buffer for batch B: B*T*D. */
long vit_token_floats(const vit_model *m, int B);
/* Patch grid side (image/patch) and token count T. */
int vit_grid(const vit_model *m);

/* images (B,3,H,W) -> tokens (B,T,D): patch embedding + class token + position (+ CLIP pre-norm). */
int vit_embed(vit_model *m, int B, const float *images, float *tokens, char *err);
/* Runs blocks [a,b) in place on tokens (B,T,D). If saliency != NULL and the range contains the last
 * block, writes the head-averaged CLS-row attention of the last block over the patch keys:
 * saliency (B, grid*grid). */
int vit_blocks(vit_model *m, int B, int a, int b, float *tokens, float *saliency, char *err);
/* tokens (B,T,D) -> patch features (B, grid*grid, out_dim) and cls (B, out_dim) (either may be NULL):
 * final norm (+ projection for CLIP) applied to every token. */
int vit_head(vit_model *m, int B, const float *tokens, float *patch, float *cls, char *err);

#endif
