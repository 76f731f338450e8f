/* vit_plan.c -- building the ViT's per-batch plans (see vit_plan.h): for one batch size, the
 * activation buffers, the memory objects and every primitive of the forward, part by part
 * (embedding, norms, attention, saliency, MLP, head), plus the plan cache of the model.
 *
 * Shapes (B batch, T = 1 + g*g tokens, D width, H heads, dh = D/H, M mlp width, C out_dim):
 *   embed:  images (B,3,S,S) --reorder--> patches (B*g*g, 3*p*p) --matmul+bias--> (B*g*g, D)
 *           --reorder--> tokens[:,1:,:]; tokens[:,0,:] = cls; tokens += pos (binary add)
 *           [CLIP: layer norm in place]
 *   block:  h = LN1(x) (f32 [-> bf16]); qkv = h Wqkv + b (BT,3D); q, k, v = strided (B,H,T,dh)
 *           views of qkv [or dense copies split off by a reorder, see attention_views]
 *           s = q k^T (B,H,T,T) f32 (1/sqrt(dh) folded into Wq); p = softmax(s)
 *           [last block: saliency = mean over heads of p[:, :, 0, 1:]  (reduction)]
 *           o = p v written as (B,T,H,dh); x += o Wproj + b (sum post-op)
 *           x += GELU(LN2(x) W1 + b1) W2 + b2 (eltwise and sum post-ops)
 *   head:   y = LN(x) [CLIP: y = y Wproj (BT,C)]; patch = y[:,1:,:], cls = y[:,0,:] (reorders)
 * The residual stream x and every norm run in f32; with bf16 the matmul inputs and weights are
 * bf16 and matmuls accumulate in f32. The head runs in f32.
 */
#include "vit_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "vit_linear.h"

#define VIT_N_OPS 18

/* Every primitive of a plan (some may be unused: prim NULL). */
static void plan_ops(vit_plan *pl, vit_op **ops)
{
    vit_op *all[VIT_N_OPS] = {&pl->im2col, &pl->embed_mm, &pl->embed_rows, &pl->pos_add, &pl->ln,
                              &pl->to_bf16, &pl->qkv_mm, &pl->split, &pl->score_mm, &pl->softmax,
                              &pl->sal_mean, &pl->pv_mm, &pl->proj_mm, &pl->fc1_mm, &pl->fc2_mm,
                              &pl->head_mm, &pl->head_patch, &pl->head_cls};
    memcpy(ops, all, sizeof all);
}

/* ---- memories and primitives of a plan ---- */

static int md_tag(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt,
                  dnnl_format_tag_t tag, char *err)
{
    return dnn_md_tag(md, nd, dims, dt, tag, "memory descriptor", err);
}

static int md_strides(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt,
                      const dnnl_dim_t *strides, char *err)
{
    return dnn_md_strides(md, nd, dims, dt, strides, "memory descriptor", err);
}

static int mem(const vit_model *m, dnnl_memory_t *out, const dnnl_memory_desc_t *md, void *handle,
               char *err)
{
    return dnn_memory(m->ctx, out, md, handle, "memory", err);
}

/* Creates the primitive of pd into op (taking ownership of pd) and grows the scratch size. */
static int op_from_pd(const vit_model *m, vit_plan *pl, vit_op *op, dnnl_primitive_desc_t pd,
                      const char *what, char *err)
{
    size_t sb = 0;
    const dnnl_memory_desc_t *smd = dnn_scratchpad_md(pd, &sb);
    if (sb > pl->scratch_bytes) pl->scratch_bytes = sb;
    snprintf(op->impl, sizeof op->impl, "%s", dnn_impl_name(pd));
    int rc = dnn_check(dnnl_primitive_create(&op->prim, pd), what, err);
    if (!rc && smd) rc = dnn_memory(m->ctx, &op->scratch, smd, DNNL_MEMORY_NONE, what, err);
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* The primitive of an operation descriptor (a dnnl_*_desc_t), user scratchpad. */
static int op_desc(const vit_model *m, vit_plan *pl, vit_op *op, const void *desc, const char *what,
                   char *err)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnn_attr_user_scratchpad(&attr, err)) return -1;
    int rc = dnn_pd_create(m->ctx, &pd, desc, attr, NULL, what, err);
    dnnl_primitive_attr_destroy(attr);
    return rc ? -1 : op_from_pd(m, pl, op, pd, what, err);
}

static int op_reorder(const vit_model *m, vit_plan *pl, vit_op *op, const dnnl_memory_desc_t *src,
                      const dnnl_memory_desc_t *dst, const char *what, char *err)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnn_attr_user_scratchpad(&attr, err)) return -1;
    int rc = dnn_check(dnnl_reorder_primitive_desc_create(&pd, src, m->ctx->engine, dst,
                                                          m->ctx->engine, attr), what, err);
    dnnl_primitive_attr_destroy(attr);
    return rc ? -1 : op_from_pd(m, pl, op, pd, what, err);
}

static const vit_packed *model_weights(const vit_model *m, vit_weight_kind kind, int l)
{
    switch (kind) {
    case W_EMBED: return &m->embed_w;
    case W_HEAD: return &m->head_w;
    case W_QKV: return &m->blocks[l].qkv_w;
    case W_PROJ: return &m->blocks[l].proj_w;
    case W_FC1: return &m->blocks[l].fc1_w;
    default: return &m->blocks[l].fc2_w;
    }
}

static int kind_count(const vit_model *m, vit_weight_kind kind)
{
    return kind == W_EMBED || kind == W_HEAD ? 1 : m->cfg.depth;
}

/* Copies of the weights of `kind` in the format `want` (one reorder per block, here, never in the
 * forward). */
static int repack(vit_model *m, vit_plan *pl, vit_weight_kind kind, const dnnl_memory_desc_t *want,
                  const char *what, char *err)
{
    int n = kind_count(m, kind);
    pl->repacked[kind] = calloc((size_t)n, sizeof(dnnl_memory_t));
    if (!pl->repacked[kind]) return errf(err, "%s: out of memory", what);
    const char *step = "re-pack weights for this batch size";
    for (int l = 0; l < n; l++) {
        if (dnn_memory(m->ctx, &pl->repacked[kind][l], want, DNNL_MEMORY_ALLOCATE, step, err) ||
            dnn_reorder_once(m->ctx, model_weights(m, kind, l)->mem, pl->repacked[kind][l], step, err))
            return -1;
    }
    log_debug("vit: %s: batch %ld uses its own weights format", what, pl->sh.B);
    return 0;
}

/* A linear layer's primitive; if it wants another weights format than the model's packing, the
 * plan gets its own copy of those weights. */
static int op_linear(vit_model *m, vit_plan *pl, vit_op *op, vit_weight_kind kind, long M, long K,
                     long N, dnnl_data_type_t src_dt, dnnl_data_type_t wei_dt,
                     dnnl_data_type_t dst_dt, int bias, vit_post post, const char *what, char *err)
{
    dnnl_primitive_desc_t pd = NULL;
    if (vit_linear_pd(m, M, K, N, src_dt, wei_dt, dst_dt, bias, post, &pd, err)) return err_prefix(err, what);
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!want) {
        dnnl_primitive_desc_destroy(pd);
        return errf(err, "oneDNN: %s: no weights memory descriptor", what);
    }
    /* every block of a kind was packed alike: the first one decides */
    if (!dnnl_memory_desc_equal(want, &model_weights(m, kind, 0)->md) &&
        repack(m, pl, kind, want, what, err)) {
        dnnl_primitive_desc_destroy(pd);
        return -1;
    }
    return op_from_pd(m, pl, op, pd, what, err);
}

/* ---- the parts of a plan ---- */

static vit_shape plan_shape(const vit_model *m, int B)
{
    const vit_config *c = &m->cfg;
    vit_shape s;
    s.B = B;
    s.D = c->width;
    s.H = c->heads;
    s.dh = s.D / s.H;
    s.M = c->mlp;
    s.C = c->out_dim;
    s.p = c->patch;
    s.S = c->image;
    s.g = s.S / s.p;
    s.G = s.g * s.g;
    s.T = 1 + s.G;
    s.K0 = 3 * s.p * s.p;
    s.BT = s.B * s.T;
    s.a = m->act_dt;
    s.bf = s.a == dnnl_bf16;
    s.ab = s.bf ? 2 : 4;
    return s;
}

/* The plan-owned activation buffers. */
static int plan_buffers(const vit_model *m, vit_plan *pl, char *err)
{
    const vit_shape *s = &pl->sh;
    const long B = s->B, BT = s->BT, D = s->D, C = s->C, H = s->H, T = s->T;
    const size_t ab = s->ab;
    const int proj = m->cfg.proj;
    pl->patches = dnn_alloc((size_t)(B * s->G * s->K0) * ab);
    pl->h = dnn_alloc((size_t)(BT * (D > C ? D : C)) * 4);
    pl->hb = s->bf ? dnn_alloc((size_t)(BT * D) * 2) : NULL;
    pl->qkv = dnn_alloc((size_t)(BT * 3 * D) * ab);
    pl->s = dnn_alloc((size_t)(B * H * T * T) * 4);
    pl->p = s->bf ? dnn_alloc((size_t)(B * H * T * T) * 2) : pl->s;
    pl->o = dnn_alloc((size_t)(BT * D) * ab);
    pl->mlp = dnn_alloc((size_t)(BT * s->M) * ab);
    pl->ho = proj ? dnn_alloc((size_t)(BT * C) * 4) : NULL;
    if (!pl->patches || !pl->h || (s->bf && !pl->hb) || !pl->qkv || !pl->s || !pl->p ||
        !pl->o || !pl->mlp || (proj && !pl->ho))
        return errf(err, "%s: out of memory for the activations of batch %ld", m->cfg.name, B);
    return 0;
}

/* Embedding: im2col as a strided reorder, the patch matmul, the rows into the token buffer, the
 * position add. */
static int plan_embed(vit_model *m, vit_plan *pl, char *err)
{
    const vit_shape *s = &pl->sh;
    const long B = s->B, g = s->g, p = s->p, S = s->S, G = s->G, T = s->T, D = s->D, K0 = s->K0;
    const dnnl_data_type_t a = s->a, f32 = dnnl_f32;
    dnnl_memory_desc_t md, md2;
    if (md_strides(&md, 6, (dnnl_dim_t[]){B, g, g, 3, p, p}, f32,
                   (dnnl_dim_t[]){3 * S * S, p * S, p, S * S, S, 1}, err) ||
        md_tag(&md2, 6, (dnnl_dim_t[]){B, g, g, 3, p, p}, a, dnnl_abcdef, err) ||
        mem(m, &pl->m_images, &md, DNNL_MEMORY_NONE, err) ||
        op_reorder(m, pl, &pl->im2col, &md, &md2, "embed: im2col reorder", err))
        return -1;
    if (md_tag(&md, 2, (dnnl_dim_t[]){B * G, K0}, a, dnnl_ab, err) ||
        mem(m, &pl->m_patches, &md, pl->patches, err) ||
        op_linear(m, pl, &pl->embed_mm, W_EMBED, B * G, K0, D, a, a, f32, 1, VIT_POST_NONE,
                  "embed: patch matmul", err))
        return -1;
    if (md_tag(&md, 2, (dnnl_dim_t[]){B * G, D}, f32, dnnl_ab, err) ||
        mem(m, &pl->m_emb, &md, pl->h, err) ||
        md_tag(&md, 3, (dnnl_dim_t[]){B, G, D}, f32, dnnl_abc, err) ||
        mem(m, &pl->m_emb3, &md, pl->h, err) ||
        md_strides(&md2, 3, (dnnl_dim_t[]){B, G, D}, f32, (dnnl_dim_t[]){T * D, D, 1}, err) ||
        mem(m, &pl->m_tok_rows, &md2, DNNL_MEMORY_NONE, err) ||
        op_reorder(m, pl, &pl->embed_rows, &md, &md2, "embed: token rows reorder", err))
        return -1;
    dnnl_binary_desc_t bd;
    if (md_tag(&md, 3, (dnnl_dim_t[]){B, T, D}, f32, dnnl_abc, err) ||
        md_tag(&md2, 3, (dnnl_dim_t[]){1, T, D}, f32, dnnl_abc, err) ||
        mem(m, &pl->m_tok3, &md, DNNL_MEMORY_NONE, err) ||
        dnn_check(dnnl_binary_desc_init(&bd, dnnl_binary_add, &md, &md2, &md), "binary desc", err))
        return -1;
    return op_desc(m, pl, &pl->pos_add, &bd, "embed: position add", err);
}

/* Layer norm (all norms: same shape and epsilon) over the token rows into h, and with bf16 the
 * reorder of h to the matmul input type. */
static int plan_norms(vit_model *m, vit_plan *pl, char *err)
{
    const long BT = pl->sh.BT, D = pl->sh.D;
    dnnl_memory_desc_t md, md2;
    dnnl_layer_normalization_desc_t lnd;
    if (md_tag(&md, 2, (dnnl_dim_t[]){BT, D}, dnnl_f32, dnnl_ab, err) ||
        mem(m, &pl->m_tok, &md, DNNL_MEMORY_NONE, err) || mem(m, &pl->m_h, &md, pl->h, err) ||
        dnn_check(dnnl_layer_normalization_forward_desc_init(&lnd, dnnl_forward_inference, &md, NULL,
                  m->cfg.ln_eps, dnnl_use_scale | dnnl_use_shift), "layer norm desc", err) ||
        op_desc(m, pl, &pl->ln, &lnd, "layer norm", err))
        return -1;
    if (!pl->sh.bf) return 0;
    if (md_tag(&md2, 2, (dnnl_dim_t[]){BT, D}, dnnl_bf16, dnnl_ab, err) ||
        mem(m, &pl->m_hb, &md2, pl->hb, err))
        return -1;
    return op_reorder(m, pl, &pl->to_bf16, &md, &md2, "f32 -> bf16 reorder", err);
}

/* The two attention matmuls (s = q k^T, o = p v) for the given views. *fast = 1 if both got an
 * optimised (non-reference) implementation; otherwise 0, with the descriptors still created when
 * possible (NULL where oneDNN has none for these views: not an error here, the caller falls back
 * to other views). The caller owns *spd and *vpd. */
static int attention_pds(const vit_model *m, const dnnl_memory_desc_t *q, const dnnl_memory_desc_t *k,
                         const dnnl_memory_desc_t *s, const dnnl_memory_desc_t *p,
                         const dnnl_memory_desc_t *v, const dnnl_memory_desc_t *o,
                         dnnl_primitive_desc_t *spd, dnnl_primitive_desc_t *vpd, int *fast, char *err)
{
    if (*spd) dnnl_primitive_desc_destroy(*spd);
    if (*vpd) dnnl_primitive_desc_destroy(*vpd);
    *spd = *vpd = NULL;
    *fast = 0;
    dnnl_primitive_attr_t attr = NULL;
    if (dnn_attr_user_scratchpad(&attr, err)) return -1;
    dnnl_matmul_desc_t d;
    dnnl_status_t ss = dnnl_matmul_desc_init(&d, q, k, NULL, s);
    if (ss == dnnl_success) ss = dnnl_primitive_desc_create(spd, &d, attr, m->ctx->engine, NULL);
    dnnl_status_t vs = dnnl_matmul_desc_init(&d, p, v, NULL, o);
    if (vs == dnnl_success) vs = dnnl_primitive_desc_create(vpd, &d, attr, m->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    log_debug("vit: attention matmuls on these views: %s, %s",
              *spd ? dnn_impl_name(*spd) : dnn_status_name(ss),
              *vpd ? dnn_impl_name(*vpd) : dnn_status_name(vs));
    *fast = *spd && *vpd && !strstr(dnn_impl_name(*spd), "ref") && !strstr(dnn_impl_name(*vpd), "ref");
    return 0;
}

/* The q, k, v views of the attention and its two matmul descriptors (*spd, *vpd: caller-owned, also
 * on failure). First choice: q, k, v read in place from the (BT, 3D) qkv rows (strided views:
 * oneDNN 2.6 runs them with gemm:jit, as fast here as brgemm after a split); if oneDNN has only a
 * reference matmul for those strides, the heads are split into dense (3,B,H,T,dh) by a reorder
 * first. I2PMAE_VIT_SPLIT_HEADS=1 forces the second way (the tests run both). */
static int attention_views(vit_model *m, vit_plan *pl, const dnnl_memory_desc_t *smd,
                           const dnnl_memory_desc_t *pmd, const dnnl_memory_desc_t *omd,
                           dnnl_primitive_desc_t *spd, dnnl_primitive_desc_t *vpd, char *err)
{
    const vit_shape *s = &pl->sh;
    const long B = s->B, H = s->H, T = s->T, D = s->D, dh = s->dh, BT = s->BT;
    const dnnl_data_type_t a = s->a;
    dnnl_memory_desc_t qmd, kmd, vmd, md, md2;
    char *base = pl->qkv;
    size_t step = (size_t)D * s->ab; /* bytes from q to k to v within a row */
    int fast = 0;
    if (md_strides(&qmd, 4, (dnnl_dim_t[]){B, H, T, dh}, a, (dnnl_dim_t[]){T * 3 * D, dh, 3 * D, 1}, err) ||
        md_strides(&kmd, 4, (dnnl_dim_t[]){B, H, dh, T}, a, (dnnl_dim_t[]){T * 3 * D, dh, 1, 3 * D}, err))
        return -1;
    vmd = qmd;
    if (attention_pds(m, &qmd, &kmd, smd, pmd, &vmd, omd, spd, vpd, &fast, err)) return -1;
    const char *force_split = getenv("I2PMAE_VIT_SPLIT_HEADS");
    if (!fast || (force_split && !strcmp(force_split, "1"))) {
        pl->qkvh = dnn_alloc((size_t)(BT * 3 * D) * s->ab);
        if (!pl->qkvh)
            return errf(err, "%s: out of memory for the activations of batch %ld", m->cfg.name, B);
        if (md_strides(&md, 5, (dnnl_dim_t[]){3, B, H, T, dh}, a,
                       (dnnl_dim_t[]){D, T * 3 * D, dh, 3 * D, 1}, err) ||
            md_tag(&md2, 5, (dnnl_dim_t[]){3, B, H, T, dh}, a, dnnl_abcde, err) ||
            mem(m, &pl->m_qkv5, &md, pl->qkv, err) || mem(m, &pl->m_qkvh5, &md2, pl->qkvh, err) ||
            op_reorder(m, pl, &pl->split, &md, &md2, "attention: split heads reorder", err))
            return -1;
        base = pl->qkvh;
        step = (size_t)(B * H * T * dh) * s->ab;
        if (md_tag(&qmd, 4, (dnnl_dim_t[]){B, H, T, dh}, a, dnnl_abcd, err) ||
            md_tag(&kmd, 4, (dnnl_dim_t[]){B, H, dh, T}, a, dnnl_abdc, err))
            return -1;
        vmd = qmd;
        if (attention_pds(m, &qmd, &kmd, smd, pmd, &vmd, omd, spd, vpd, &fast, err)) return -1;
        if (!fast && (!*spd || !*vpd)) return errf(err, "oneDNN: attention matmuls: no implementation");
    }
    if (mem(m, &pl->m_q, &qmd, base, err) || mem(m, &pl->m_k, &kmd, base + step, err) ||
        mem(m, &pl->m_v, &vmd, base + 2 * step, err))
        return -1;
    return 0;
}

/* Attention: the qkv matmul, the q k^T and p v matmuls on views of qkv, the softmax, the out
 * projection added to the residual stream. */
static int plan_attention(vit_model *m, vit_plan *pl, char *err)
{
    const vit_shape *s = &pl->sh;
    const long B = s->B, H = s->H, T = s->T, D = s->D, dh = s->dh, BT = s->BT;
    const dnnl_data_type_t a = s->a, f32 = dnnl_f32;
    dnnl_memory_desc_t md, smd, pmd, omd;
    if (op_linear(m, pl, &pl->qkv_mm, W_QKV, BT, D, 3 * D, a, a, a, 1, VIT_POST_NONE, "qkv matmul", err) ||
        md_tag(&md, 2, (dnnl_dim_t[]){BT, 3 * D}, a, dnnl_ab, err) ||
        mem(m, &pl->m_qkv, &md, pl->qkv, err))
        return -1;
    if (md_tag(&smd, 4, (dnnl_dim_t[]){B, H, T, T}, f32, dnnl_abcd, err) ||
        md_tag(&pmd, 4, (dnnl_dim_t[]){B, H, T, T}, a, dnnl_abcd, err) ||
        md_strides(&omd, 4, (dnnl_dim_t[]){B, H, T, dh}, a, (dnnl_dim_t[]){T * D, dh, D, 1}, err) ||
        mem(m, &pl->m_s, &smd, pl->s, err) || mem(m, &pl->m_p, &pmd, pl->p, err) ||
        mem(m, &pl->m_o4, &omd, pl->o, err))
        return -1;
    dnnl_primitive_desc_t spd = NULL, vpd = NULL;
    if (attention_views(m, pl, &smd, &pmd, &omd, &spd, &vpd, err)) {
        if (spd) dnnl_primitive_desc_destroy(spd);
        if (vpd) dnnl_primitive_desc_destroy(vpd);
        return -1;
    }
    if (op_from_pd(m, pl, &pl->score_mm, spd, "attention: q k^T matmul", err)) {
        dnnl_primitive_desc_destroy(vpd);
        return -1;
    }
    if (op_from_pd(m, pl, &pl->pv_mm, vpd, "attention: p v matmul", err)) return -1;
    dnnl_softmax_v2_desc_t sd;
    if (dnn_check(dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, dnnl_softmax_accurate,
                  &smd, &pmd, 3), "softmax desc", err) ||
        op_desc(m, pl, &pl->softmax, &sd, "attention: softmax", err))
        return -1;
    if (md_tag(&md, 2, (dnnl_dim_t[]){BT, D}, a, dnnl_ab, err) || mem(m, &pl->m_o, &md, pl->o, err))
        return -1;
    return op_linear(m, pl, &pl->proj_mm, W_PROJ, BT, D, D, a, a, f32, 1, VIT_POST_SUM,
                     "attention: out proj", err);
}

/* Saliency: the mean over heads of the CLS row of the softmax over the patch keys, p[:, :, 0, 1:]. */
static int plan_saliency(vit_model *m, vit_plan *pl, char *err)
{
    const vit_shape *s = &pl->sh;
    const long B = s->B, H = s->H, T = s->T, G = s->G;
    dnnl_memory_desc_t md, md2;
    dnnl_reduction_desc_t rd;
    if (md_strides(&md, 4, (dnnl_dim_t[]){B, H, 1, G}, s->a, (dnnl_dim_t[]){H * T * T, T * T, T * T, 1}, err) ||
        md_tag(&md2, 4, (dnnl_dim_t[]){B, 1, 1, G}, dnnl_f32, dnnl_abcd, err) ||
        mem(m, &pl->m_sal_src, &md, (char *)pl->p + s->ab, err) ||
        mem(m, &pl->m_sal, &md2, DNNL_MEMORY_NONE, err) ||
        dnn_check(dnnl_reduction_desc_init(&rd, dnnl_reduction_mean, &md, &md2, 0.0f, 0.0f),
                  "saliency reduction desc", err))
        return -1;
    return op_desc(m, pl, &pl->sal_mean, &rd, "saliency: mean over heads", err);
}

/* MLP: fc1 with the GELU post-op, fc2 added to the residual stream. */
static int plan_mlp(vit_model *m, vit_plan *pl, char *err)
{
    const long BT = pl->sh.BT, D = pl->sh.D, M = pl->sh.M;
    const dnnl_data_type_t a = pl->sh.a;
    dnnl_memory_desc_t md;
    if (md_tag(&md, 2, (dnnl_dim_t[]){BT, M}, a, dnnl_ab, err) || mem(m, &pl->m_mlp, &md, pl->mlp, err) ||
        op_linear(m, pl, &pl->fc1_mm, W_FC1, BT, D, M, a, a, a, 1, VIT_POST_GELU, "mlp: fc1", err))
        return -1;
    return op_linear(m, pl, &pl->fc2_mm, W_FC2, BT, M, D, a, a, dnnl_f32, 1, VIT_POST_SUM, "mlp: fc2", err);
}

/* Head: [CLIP: the visual projection of the normalised tokens, then] views of the patch rows and
 * the cls row, reordered into the caller's buffers. */
static int plan_head(vit_model *m, vit_plan *pl, char *err)
{
    const vit_shape *s = &pl->sh;
    const long B = s->B, BT = s->BT, G = s->G, T = s->T, D = s->D, C = s->C;
    const dnnl_data_type_t f32 = dnnl_f32;
    dnnl_memory_desc_t md, md2;
    float *y = pl->h;
    if (m->cfg.proj) {
        if (op_linear(m, pl, &pl->head_mm, W_HEAD, BT, D, C, f32, f32, f32, 0, VIT_POST_NONE,
                      "head: visual projection", err) ||
            md_tag(&md, 2, (dnnl_dim_t[]){BT, C}, f32, dnnl_ab, err) || mem(m, &pl->m_ho, &md, pl->ho, err))
            return -1;
        y = pl->ho;
    }
    if (md_strides(&md, 3, (dnnl_dim_t[]){B, G, C}, f32, (dnnl_dim_t[]){T * C, C, 1}, err) ||
        md_tag(&md2, 3, (dnnl_dim_t[]){B, G, C}, f32, dnnl_abc, err) ||
        mem(m, &pl->m_patch_src, &md, y + C, err) || mem(m, &pl->m_patch, &md2, DNNL_MEMORY_NONE, err) ||
        op_reorder(m, pl, &pl->head_patch, &md, &md2, "head: patch rows reorder", err))
        return -1;
    if (md_strides(&md, 2, (dnnl_dim_t[]){B, C}, f32, (dnnl_dim_t[]){T * C, 1}, err) ||
        md_tag(&md2, 2, (dnnl_dim_t[]){B, C}, f32, dnnl_ab, err) ||
        mem(m, &pl->m_cls_src, &md, y, err) || mem(m, &pl->m_cls, &md2, DNNL_MEMORY_NONE, err))
        return -1;
    return op_reorder(m, pl, &pl->head_cls, &md, &md2, "head: cls row reorder", err);
}

/* One scratch buffer for every primitive (they run one after another). */
static int plan_scratch(const vit_model *m, vit_plan *pl, char *err)
{
    if (!pl->scratch_bytes) return 0;
    pl->scratch = dnn_alloc(pl->scratch_bytes);
    if (!pl->scratch) return errf(err, "%s: out of memory for the oneDNN scratchpad", m->cfg.name);
    vit_op *ops[VIT_N_OPS];
    plan_ops(pl, ops);
    for (int i = 0; i < VIT_N_OPS; i++)
        if (ops[i]->scratch && dnn_bind(ops[i]->scratch, pl->scratch, "scratchpad", err)) return -1;
    return 0;
}

/* Memories, buffers and primitives for batch B. */
static int plan_build(vit_model *m, vit_plan *pl, int B, char *err)
{
    pl->sh = plan_shape(m, B);
    pl->depth = m->cfg.depth;
    if (plan_buffers(m, pl, err) || plan_embed(m, pl, err) || plan_norms(m, pl, err) ||
        plan_attention(m, pl, err) || plan_saliency(m, pl, err) || plan_mlp(m, pl, err) ||
        plan_head(m, pl, err) || plan_scratch(m, pl, err))
        return -1;
    const int bf = pl->sh.bf;
    log_info("vit: batch %d: oneDNN picked qkv matmul %s, fc1 %s, q k^T %s, p v %s (%s), softmax %s, "
             "layer norm %s%s%s", B, pl->qkv_mm.impl, pl->fc1_mm.impl, pl->score_mm.impl,
             pl->pv_mm.impl, pl->split.prim ? "heads split by a reorder" : "heads read in place",
             pl->softmax.impl, pl->ln.impl, bf ? ", f32->bf16 " : "", bf ? pl->to_bf16.impl : "");
    return 0;
}

/* ---- cache ---- */

static void op_free(vit_op *op)
{
    if (op->prim) dnnl_primitive_destroy(op->prim);
    if (op->scratch) dnnl_memory_destroy(op->scratch);
}

static void plan_free(vit_plan *pl)
{
    if (!pl) return;
    vit_op *ops[VIT_N_OPS];
    plan_ops(pl, ops);
    for (int i = 0; i < VIT_N_OPS; i++) op_free(ops[i]);
    dnnl_memory_t mems[] = {pl->m_patches, pl->m_emb, pl->m_emb3, pl->m_h, pl->m_hb, pl->m_qkv,
                            pl->m_qkv5, pl->m_qkvh5, pl->m_q, pl->m_k, pl->m_v, pl->m_s, pl->m_p,
                            pl->m_o4, pl->m_o, pl->m_mlp, pl->m_ho, pl->m_images,
                            pl->m_tok, pl->m_tok3, pl->m_tok_rows, pl->m_sal_src, pl->m_sal,
                            pl->m_patch_src, pl->m_patch, pl->m_cls_src, pl->m_cls};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    for (int k = 0; k < W_KINDS; k++) {
        if (!pl->repacked[k]) continue;
        for (int l = 0; l < (k == W_EMBED || k == W_HEAD ? 1 : pl->depth); l++)
            if (pl->repacked[k][l]) dnnl_memory_destroy(pl->repacked[k][l]);
        free(pl->repacked[k]);
    }
    void *bufs[] = {pl->patches, pl->h, pl->hb, pl->qkv, pl->qkvh, pl->s, pl->o, pl->mlp, pl->ho, pl->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    if (pl->p != pl->s) free(pl->p);
    free(pl);
}

vit_plan *vit_plan_get(vit_model *m, int B, char *err)
{
    for (int i = 0; i < m->n_plans; i++)
        if (m->plans[i]->sh.B == B) return m->plans[i];
    if (B < 1) {
        errf(err, "%s: batch size %d must be at least 1", m->cfg.name, B);
        return NULL;
    }
    vit_plan *pl = calloc(1, sizeof *pl);
    if (!pl) {
        errf(err, "%s: out of memory", m->cfg.name);
        return NULL;
    }
    if (plan_build(m, pl, B, err)) {
        plan_free(pl);
        return NULL;
    }
    if (m->n_plans == VIT_MAX_PLANS) {
        plan_free(m->plans[0]);
        memmove(m->plans, m->plans + 1, sizeof m->plans[0] * (VIT_MAX_PLANS - 1));
        m->n_plans--;
    }
    m->plans[m->n_plans++] = pl;
    return pl;
}

void vit_plans_free(vit_model *m)
{
    for (int i = 0; i < m->n_plans; i++) plan_free(m->plans[i]);
    m->n_plans = 0;
}

dnnl_memory_t vit_plan_weights(const vit_model *m, const vit_plan *pl, vit_weight_kind kind, int l)
{
    if (pl->repacked[kind]) return pl->repacked[kind][kind == W_EMBED || kind == W_HEAD ? 0 : l];
    return model_weights(m, kind, l)->mem;
}
