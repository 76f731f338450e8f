/* vit_weights.h -- the ViT's parameters as plain float arrays, from a safetensors file (CLIP or timm
 * naming) or from a seeded generator. Internal to the 2D model (vit.c packs them for oneDNN and
 * frees them); the layout is PyTorch's: linear weights are (out, in) row-major.
 *
 * Memory: every array is a named view into one buffer `buf` owned by the struct
 * (vit_weights_free releases it).
 */
#ifndef I2P_VIT_WEIGHTS_H
#define I2P_VIT_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"
#include "vit.h"

typedef enum { VIT_NAMING_CLIP = 0, VIT_NAMING_TIMM = 1 } vit_naming;

typedef struct {
    float *ln1_w, *ln1_b;   /* (D) */
    float *qkv_w, *qkv_b;   /* (3D, D), (3D): rows q, k, v */
    float *proj_w, *proj_b; /* (D, D), (D) */
    float *ln2_w, *ln2_b;   /* (D) */
    float *fc1_w, *fc1_b;   /* (M, D), (M) */
    float *fc2_w, *fc2_b;   /* (D, M), (D) */
} vit_block_weights;

typedef struct {
    vit_config cfg;
    float *patch_w;          /* (D, 3, p, p) */
    float *patch_b;          /* (D); zeros for CLIP (its patch conv has no bias) */
    float *cls;              /* (D) */
    float *pos;              /* (T, D) */
    float *pre_w, *pre_b;    /* (D); CLIP pre_layrnorm; NULL when !cfg.pre_norm */
    vit_block_weights *blocks; /* depth */
    float *norm_w, *norm_b;  /* (D): final norm */
    float *proj;             /* (out_dim, D): CLIP visual projection; NULL for timm */
    float *buf;
    size_t n_floats;
} vit_weights;

/* Allocates zeroed arrays for cfg (cfg->out_dim != cfg->width means a projection). */
int vit_weights_alloc(vit_weights *w, const vit_config *cfg, char *err);
void vit_weights_free(vit_weights *w);

/* Fills cfg from the tensor shapes of a file in the given naming (width, patch, image, depth,
 * mlp, out_dim); heads from the "heads" metadata entry, else width/64. */
int vit_config_infer(const st_file *f, vit_naming naming, vit_config *cfg, char *err);
/* The fixed configuration of clip-b16 / timm-b16 (ViT-B/16 at 224). */
void vit_config_b16(vit_naming naming, vit_config *cfg);

/* Reads every tensor of w->cfg from f, checking presence, dtype and shape (errors name the file
 * and the tensor). Tensors the model does not use (the CLIP text tower, timm's head) are ignored. */
int vit_weights_read(vit_weights *w, const st_file *f, vit_naming naming, char *err);

/* "tiny" or "base": the configuration of the seeded random model; -1 if unknown. */
int vit_config_random(const char *which, vit_config *cfg);
/* Fills w with seeded values: the same bytes on every machine (integer RNG, exact arithmetic). */
void vit_weights_random(vit_weights *w, uint64_t seed);

#endif
