/* vit_forward.c -- the ViT forward: vit_embed / vit_blocks / vit_head (see vit.h) run the
 * primitives of the batch's plan (vit_plan.h: built on the first call with a new batch size, so
 * nothing is allocated during a forward call once its plan exists). Primitives are submitted to the
 * stream and waited for once, at the end of each call.
 */
#include "vit.h"

#include <string.h>

#include "errors.h"
#include "vit_plan.h"

#define VIT_MAX_ARGS 12

static int run(const vit_model *m, const vit_op *op, int n, const dnnl_exec_arg_t *args, const char *what,
               char *err)
{
    dnnl_exec_arg_t all[VIT_MAX_ARGS];
    memcpy(all, args, sizeof *args * (size_t)n);
    if (op->scratch) all[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, op->scratch};
    return dnn_execute(m->ctx, op->prim, n, all, what, err);
}

#define RUN(op, what, ...)                                                                         \
    do {                                                                                           \
        const dnnl_exec_arg_t args_[] = {__VA_ARGS__};                                             \
        if (run(m, &(op), (int)(sizeof args_ / sizeof args_[0]), args_, what, err)) return -1;    \
    } while (0)

static int layer_norm(const vit_model *m, const vit_plan *pl, dnnl_memory_t src, dnnl_memory_t dst,
                      dnnl_memory_t w, dnnl_memory_t b, char *err)
{
    RUN(pl->ln, "layer norm", {DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCALE, w},
        {DNNL_ARG_SHIFT, b});
    return 0;
}

int vit_embed(vit_model *m, int B, const float *images, float *tokens, char *err)
{
    vit_plan *pl = vit_plan_get(m, B, err);
    if (!pl) return -1;
    const long D = pl->sh.D, T = pl->sh.T;
    if (dnn_bind(pl->m_images, images, "embed: images", err) ||
        dnn_bind(pl->m_tok_rows, tokens + D, "embed: tokens", err) ||
        dnn_bind(pl->m_tok3, tokens, "embed: tokens", err) || dnn_bind(pl->m_tok, tokens, "embed: tokens", err))
        return -1;
    RUN(pl->im2col, "embed: im2col", {DNNL_ARG_FROM, pl->m_images}, {DNNL_ARG_TO, pl->m_patches});
    RUN(pl->embed_mm, "embed: patch matmul", {DNNL_ARG_SRC, pl->m_patches},
        {DNNL_ARG_WEIGHTS, vit_plan_weights(m, pl, W_EMBED, 0)}, {DNNL_ARG_BIAS, m->embed_b},
        {DNNL_ARG_DST, pl->m_emb});
    RUN(pl->embed_rows, "embed: token rows", {DNNL_ARG_FROM, pl->m_emb3}, {DNNL_ARG_TO, pl->m_tok_rows});
    for (int b = 0; b < B; b++) memcpy(tokens + (size_t)b * T * D, m->cls, sizeof(float) * (size_t)D);
    RUN(pl->pos_add, "embed: position add", {DNNL_ARG_SRC_0, pl->m_tok3}, {DNNL_ARG_SRC_1, m->pos},
        {DNNL_ARG_DST, pl->m_tok3});
    if (m->cfg.pre_norm && layer_norm(m, pl, pl->m_tok, pl->m_tok, m->pre_w, m->pre_b, err)) return -1;
    return dnn_wait(m->ctx, "embed", err);
}

int vit_blocks(vit_model *m, int B, int a, int b, float *tokens, float *saliency, char *err)
{
    if (a < 0 || b > m->cfg.depth || a > b)
        return errf(err, "%s: block range [%d, %d) outside [0, %d)", m->cfg.name, a, b, m->cfg.depth);
    vit_plan *pl = vit_plan_get(m, B, err);
    if (!pl) return -1;
    const int bf = m->act_dt == dnnl_bf16;
    dnnl_memory_t hin = bf ? pl->m_hb : pl->m_h;
    if (dnn_bind(pl->m_tok, tokens, "blocks: tokens", err) ||
        (saliency && dnn_bind(pl->m_sal, saliency, "blocks: saliency", err)))
        return -1;
    for (int l = a; l < b; l++) {
        const vit_block_mem *w = &m->blocks[l];
        if (layer_norm(m, pl, pl->m_tok, pl->m_h, w->ln1_w, w->ln1_b, err)) return -1;
        if (bf) RUN(pl->to_bf16, "to bf16", {DNNL_ARG_FROM, pl->m_h}, {DNNL_ARG_TO, pl->m_hb});
        RUN(pl->qkv_mm, "qkv matmul", {DNNL_ARG_SRC, hin}, {DNNL_ARG_WEIGHTS, vit_plan_weights(m, pl, W_QKV, l)},
            {DNNL_ARG_BIAS, w->qkv_b}, {DNNL_ARG_DST, pl->m_qkv});
        if (pl->split.prim)
            RUN(pl->split, "split heads", {DNNL_ARG_FROM, pl->m_qkv5}, {DNNL_ARG_TO, pl->m_qkvh5});
        RUN(pl->score_mm, "q k^T", {DNNL_ARG_SRC, pl->m_q}, {DNNL_ARG_WEIGHTS, pl->m_k},
            {DNNL_ARG_DST, pl->m_s});
        RUN(pl->softmax, "softmax", {DNNL_ARG_SRC, pl->m_s}, {DNNL_ARG_DST, pl->m_p});
        if (saliency && l == m->cfg.depth - 1)
            RUN(pl->sal_mean, "saliency", {DNNL_ARG_SRC, pl->m_sal_src}, {DNNL_ARG_DST, pl->m_sal});
        RUN(pl->pv_mm, "p v", {DNNL_ARG_SRC, pl->m_p}, {DNNL_ARG_WEIGHTS, pl->m_v}, {DNNL_ARG_DST, pl->m_o4});
        RUN(pl->proj_mm, "out proj", {DNNL_ARG_SRC, pl->m_o}, {DNNL_ARG_WEIGHTS, vit_plan_weights(m, pl, W_PROJ, l)},
            {DNNL_ARG_BIAS, w->proj_b}, {DNNL_ARG_DST, pl->m_tok});
        if (layer_norm(m, pl, pl->m_tok, pl->m_h, w->ln2_w, w->ln2_b, err)) return -1;
        if (bf) RUN(pl->to_bf16, "to bf16", {DNNL_ARG_FROM, pl->m_h}, {DNNL_ARG_TO, pl->m_hb});
        RUN(pl->fc1_mm, "fc1", {DNNL_ARG_SRC, hin}, {DNNL_ARG_WEIGHTS, vit_plan_weights(m, pl, W_FC1, l)},
            {DNNL_ARG_BIAS, w->fc1_b}, {DNNL_ARG_DST, pl->m_mlp});
        RUN(pl->fc2_mm, "fc2", {DNNL_ARG_SRC, pl->m_mlp}, {DNNL_ARG_WEIGHTS, vit_plan_weights(m, pl, W_FC2, l)},
            {DNNL_ARG_BIAS, w->fc2_b}, {DNNL_ARG_DST, pl->m_tok});
    }
    return dnn_wait(m->ctx, "blocks", err);
}

int vit_head(vit_model *m, int B, const float *tokens, float *patch, float *cls, char *err)
{
    vit_plan *pl = vit_plan_get(m, B, err);
    if (!pl) return -1;
    if (dnn_bind(pl->m_tok, tokens, "head: tokens", err)) return -1;
    if (layer_norm(m, pl, pl->m_tok, pl->m_h, m->norm_w, m->norm_b, err)) return -1;
    if (m->cfg.proj)
        RUN(pl->head_mm, "visual projection", {DNNL_ARG_SRC, pl->m_h},
            {DNNL_ARG_WEIGHTS, vit_plan_weights(m, pl, W_HEAD, 0)}, {DNNL_ARG_DST, pl->m_ho});
    if (patch) {
        if (dnn_bind(pl->m_patch, patch, "head: patch features", err)) return -1;
        RUN(pl->head_patch, "patch rows", {DNNL_ARG_FROM, pl->m_patch_src}, {DNNL_ARG_TO, pl->m_patch});
    }
    if (cls) {
        if (dnn_bind(pl->m_cls, cls, "head: cls features", err)) return -1;
        RUN(pl->head_cls, "cls row", {DNNL_ARG_FROM, pl->m_cls_src}, {DNNL_ARG_TO, pl->m_cls});
    }
    return dnn_wait(m->ctx, "head", err);
}
