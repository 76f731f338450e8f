/* vit_model.h -- the 2D model's data: its configuration and weights packed for oneDNN, filled by
 * src/vit.c (loading, packing) and read by src/vit_plan.c (per-batch primitives) and
 * src/vit_forward.c (the forward). Declares no functions: the modules above it talk through
 * vit_linear.h and vit_plan.h. Not for other modules: use vit.h.
 *
 * The model owns oneDNN memories holding its weights in the formats the matmul primitives asked
 * for (reordered once, at load), and up to VIT_MAX_PLANS plans, one per batch size: the primitives
 * and activation buffers for that batch, created on first use and reused by every later call.
 */
#ifndef I2P_VIT_MODEL_H
#define I2P_VIT_MODEL_H

#include "vit.h"

#define VIT_MAX_PLANS 4

/* A weight matrix (K, N) in the blocked format a matmul primitive chose. */
typedef struct {
    dnnl_memory_t mem;
    dnnl_memory_desc_t md;
} vit_packed;

typedef struct {
    vit_packed qkv_w, proj_w, fc1_w, fc2_w; /* (D,3D) (q rows pre-scaled by 1/sqrt(dh)), (D,D), (D,M), (M,D) */
    dnnl_memory_t qkv_b, proj_b, fc1_b, fc2_b; /* f32 (1, N) */
    dnnl_memory_t ln1_w, ln1_b, ln2_w, ln2_b;  /* f32 (D) */
} vit_block_mem;

typedef struct vit_plan vit_plan; /* vit_plan.h */

struct vit_model {
    vit_config cfg;
    vit_precision prec;          /* effective precision (bf16 may have fallen back to fp32) */
    dnnl_data_type_t act_dt;     /* dnnl_f32 or dnnl_bf16: matmul inputs and weights */
    dnn_ctx *ctx;
    vit_packed embed_w;          /* (3*p*p, D) */
    dnnl_memory_t embed_b;       /* f32 (1, D) */
    float *cls;                  /* (D) */
    dnnl_memory_t pos;           /* f32 (1, T, D) */
    dnnl_memory_t pre_w, pre_b;  /* f32 (D), CLIP only */
    dnnl_memory_t norm_w, norm_b;/* f32 (D) */
    vit_packed head_w;           /* f32 (D, out_dim), CLIP only (mem NULL otherwise) */
    vit_block_mem *blocks;       /* depth */
    vit_plan *plans[VIT_MAX_PLANS]; /* owned; built and freed by vit_plan.c */
    int n_plans;
};

#endif
