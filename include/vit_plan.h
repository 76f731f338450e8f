/* vit_plan.h -- the ViT's per-batch plans: for one batch size, every oneDNN primitive of the forward,
 * the memory objects it runs on and the activation buffers, built once (vit_plan_get) and reused by
 * every later call with that batch. Internal to the 2D model (vit_forward.c runs the plans; vit.c
 * frees them with the model): use vit.h.
 *
 * Buffers: the plan owns its activations (one scratch buffer serves every primitive, as they run one
 * after another); memories named "caller" below sit on the caller's token / image / output buffers
 * and are re-bound (dnn_bind) at each call.
 */
#ifndef I2P_VIT_PLAN_H
#define I2P_VIT_PLAN_H

#include <stddef.h>

#include "vit_model.h"

/* A primitive and its scratchpad memory (user-managed, backed by the plan's one scratch buffer). */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;
    char impl[48];
} vit_op;

/* The linear layers whose weights a plan may re-pack (see vit_plan_weights). */
typedef enum { W_EMBED, W_QKV, W_PROJ, W_FC1, W_FC2, W_HEAD, W_KINDS } vit_weight_kind;

/* The sizes of a plan: B batch, T = 1 + G tokens (G = g*g patches on a g x g grid of p-pixel patches
 * of an S-pixel image), D width, H heads of dh = D/H, M mlp width, C out_dim, K0 = 3*p*p patch
 * values, BT = B*T rows; a: the matmul input type (ab bytes; bf: it is bf16). */
typedef struct {
    long B, T, G, g, p, S, D, H, dh, M, C, K0, BT;
    dnnl_data_type_t a;
    size_t ab;
    int bf;
} vit_shape;

struct vit_plan {
    vit_shape sh;
    int depth;
    /* activation buffers (plan-owned) */
    void *patches, *h, *hb, *qkv, *qkvh, *s, *p, *o, *mlp, *ho, *scratch;
    /* memories on plan buffers */
    dnnl_memory_t m_patches, m_emb, m_emb3, m_h, m_hb, m_qkv, m_qkv5, m_qkvh5, m_q, m_k, m_v, m_s,
        m_p, m_o4, m_o, m_mlp, m_ho;
    /* memories on caller buffers (handles set at each call) */
    dnnl_memory_t m_images, m_tok, m_tok3, m_tok_rows, m_sal_src, m_sal, m_patch_src, m_patch,
        m_cls_src, m_cls;
    vit_op im2col, embed_mm, embed_rows, pos_add, ln, to_bf16, qkv_mm, split, score_mm, softmax,
        sal_mean, pv_mm, proj_mm, fc1_mm, fc2_mm, head_mm, head_patch, head_cls;
    size_t scratch_bytes;
    /* weights re-packed for this batch when its primitives chose another format than the
     * model's (index [kind][block]); NULL: the model's packed weights are used */
    dnnl_memory_t *repacked[W_KINDS];
};

/* The cached plan of batch B, built on first use (the oldest is dropped when the model holds
 * VIT_MAX_PLANS). NULL with err on failure (B < 1, out of memory, oneDNN). */
vit_plan *vit_plan_get(vit_model *m, int B, char *err);
/* Frees every plan of the model (at vit_free). */
void vit_plans_free(vit_model *m);
/* The weights memory that plan pl's primitive for `kind` runs with, for block l (ignored for
 * W_EMBED and W_HEAD): the plan's re-packed copy if it has one, else the model's. */
dnnl_memory_t vit_plan_weights(const vit_model *m, const vit_plan *pl, vit_weight_kind kind, int l);

#endif
