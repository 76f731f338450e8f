/* vit_forward.c -- the ViT forward on oneDNN primitives: per-batch plans (primitives + activation
 * buffers, created once per batch size and cached in the model) and vit_embed / vit_blocks /
 * vit_head (see vit.h). Nothing is allocated during a forward call once its plan exists.
 *
 * Shapes (B batch, T = 1 + g*g tokens, D width, H heads, dh = D/H, M mlp width, C out_dim):
 *   embed:  images (B,3,S,S) --reorder--> patches (B*g*g, 3*p*p) --matmul+bias--> (B*g*g, D)
 *           --reorder--> tokens[:,1:,:]; tokens[:,0,:] = cls; tokens += pos (binary add)
 *           [CLIP: layer norm in place]
 *   block:  h = LN1(x) (f32 [-> bf16]); qkv = h Wqkv + b (BT,3D); q, k, v = strided (B,H,T,dh)
 *           views of qkv [or dense copies split off by a reorder, see plan_build]
 *           s = q k^T (B,H,T,T) f32 (1/sqrt(dh) folded into Wq); p = softmax(s)
 *           [last block: saliency = mean over heads of p[:, :, 0, 1:]  (reduction)]
 *           o = p v written as (B,T,H,dh); x += o Wproj + b (sum post-op)
 *           x += GELU(LN2(x) W1 + b1) W2 + b2 (eltwise and sum post-ops)
 *   head:   y = LN(x) [CLIP: y = y Wproj (BT,C)]; patch = y[:,1:,:], cls = y[:,0,:] (reorders)
 * The residual stream x and every norm run in f32; with bf16 the matmul inputs and weights are
 * bf16 and matmuls accumulate in f32. The head runs in f32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "vit_model.h"

/* A primitive and its scratchpad (user-managed, backed by the plan's one scratch buffer). */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;
    char impl[48];
} vit_op;

enum { W_EMBED, W_QKV, W_PROJ, W_FC1, W_FC2, W_HEAD, W_KINDS };

struct vit_plan {
    int B, depth;
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

/* ---- memory descriptors ---- */

/* dims / strides hold nd entries (oneDNN's prototypes take full DNNL_MAX_NDIMS arrays). */
static void md_tag(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt,
                   dnnl_format_tag_t tag)
{
    dnnl_dims_t d = {0};
    memcpy(d, dims, sizeof(dnnl_dim_t) * (size_t)nd);
    dnnl_memory_desc_init_by_tag(md, nd, d, dt, tag);
}

static void md_strides(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                       dnnl_data_type_t dt, const dnnl_dim_t *strides)
{
    dnnl_dims_t d = {0}, s = {0};
    memcpy(d, dims, sizeof(dnnl_dim_t) * (size_t)nd);
    memcpy(s, strides, sizeof(dnnl_dim_t) * (size_t)nd);
    dnnl_memory_desc_init_by_strides(md, nd, d, dt, s);
}

static size_t dt_bytes(dnnl_data_type_t dt) { return dt == dnnl_f32 ? 4 : 2; }

const char *vit_impl_name(const_dnnl_primitive_desc_t pd)
{
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return "?";
    return s;
}

static dnnl_primitive_attr_t make_attr(vit_post post, int quick_gelu)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (post != VIT_POST_NONE) {
        dnnl_post_ops_t po = NULL;
        dnnl_post_ops_create(&po);
        if (post == VIT_POST_SUM) dnnl_post_ops_append_sum(po, 1.0f);
        else if (quick_gelu) dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.702f, 0.0f);
        else dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
        dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    return attr;
}

int vit_linear_pd(const vit_model *m, long M, long K, long N, dnnl_data_type_t src_dt,
                  dnnl_data_type_t wei_dt, dnnl_data_type_t dst_dt, int bias, vit_post post,
                  dnnl_primitive_desc_t *pd, char *err)
{
    dnnl_memory_desc_t src, wei, b, dst;
    md_tag(&src, 2, (dnnl_dim_t[]){M, K}, src_dt, dnnl_ab);
    md_tag(&wei, 2, (dnnl_dim_t[]){K, N}, wei_dt, dnnl_format_tag_any);
    md_tag(&b, 2, (dnnl_dim_t[]){1, N}, dnnl_f32, dnnl_ab);
    md_tag(&dst, 2, (dnnl_dim_t[]){M, N}, dst_dt, dnnl_ab);
    dnnl_matmul_desc_t d;
    if (dnn_check(dnnl_matmul_desc_init(&d, &src, &wei, bias ? &b : NULL, &dst), "matmul desc", err))
        return -1;
    dnnl_primitive_attr_t attr = make_attr(post, m->cfg.quick_gelu);
    dnnl_status_t s = dnnl_primitive_desc_create(pd, &d, attr, m->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    return dnn_check(s, "matmul primitive descriptor", err);
}

/* ---- plan construction ---- */

/* Creates the primitive of pd into op (taking ownership of pd) and grows the scratch size. */
static int op_from_pd(const vit_model *m, vit_plan *pl, vit_op *op, dnnl_primitive_desc_t pd,
                      const char *what, char *err)
{
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sb = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sb > pl->scratch_bytes) pl->scratch_bytes = sb;
    snprintf(op->impl, sizeof op->impl, "%s", vit_impl_name(pd));
    dnnl_status_t s = dnnl_primitive_create(&op->prim, pd);
    if (s == dnnl_success && sb) s = dnnl_memory_create(&op->scratch, smd, m->ctx->engine, DNNL_MEMORY_NONE);
    dnnl_primitive_desc_destroy(pd);
    return dnn_check(s, what, err);
}

static int op_desc(const vit_model *m, vit_plan *pl, vit_op *op, const void *desc, const char *what,
                   char *err)
{
    dnnl_primitive_attr_t attr = make_attr(VIT_POST_NONE, 0);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, desc, attr, m->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (dnn_check(s, what, err)) return -1;
    return op_from_pd(m, pl, op, pd, what, err);
}

static int op_reorder(const vit_model *m, vit_plan *pl, vit_op *op, const dnnl_memory_desc_t *src,
                      const dnnl_memory_desc_t *dst, const char *what, char *err)
{
    dnnl_primitive_attr_t attr = make_attr(VIT_POST_NONE, 0);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, src, m->ctx->engine, dst,
                                                         m->ctx->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (dnn_check(s, what, err)) return -1;
    return op_from_pd(m, pl, op, pd, what, err);
}

/* A linear layer's primitive; if it wants another weights format than the model's packing, the
 * plan gets its own copy of those weights (one reorder per block, here, never in the forward). */
static int op_linear(vit_model *m, vit_plan *pl, vit_op *op, int kind, long M, long K, long N,
                     dnnl_data_type_t src_dt, dnnl_data_type_t wei_dt, dnnl_data_type_t dst_dt,
                     int bias, vit_post post, const char *what, char *err)
{
    dnnl_primitive_desc_t pd = NULL;
    if (vit_linear_pd(m, M, K, N, src_dt, wei_dt, dst_dt, bias, post, &pd, err)) return err_prefix(err, what);
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    int n = kind == W_EMBED || kind == W_HEAD ? 1 : m->cfg.depth;
    for (int l = 0; l < n; l++) {
        const vit_packed *src = kind == W_EMBED ? &m->embed_w : kind == W_HEAD ? &m->head_w
                              : kind == W_QKV ? &m->blocks[l].qkv_w : kind == W_PROJ ? &m->blocks[l].proj_w
                              : kind == W_FC1 ? &m->blocks[l].fc1_w : &m->blocks[l].fc2_w;
        if (dnnl_memory_desc_equal(want, &src->md)) break;
        if (!pl->repacked[kind]) pl->repacked[kind] = calloc((size_t)n, sizeof(dnnl_memory_t));
        if (!pl->repacked[kind]) {
            dnnl_primitive_desc_destroy(pd);
            return errf(err, "%s: out of memory", what);
        }
        dnnl_primitive_desc_t rpd = NULL;
        dnnl_primitive_t r = NULL;
        dnnl_status_t s = dnnl_memory_create(&pl->repacked[kind][l], want, m->ctx->engine, DNNL_MEMORY_ALLOCATE);
        if (s == dnnl_success)
            s = dnnl_reorder_primitive_desc_create(&rpd, &src->md, m->ctx->engine, want, m->ctx->engine, NULL);
        if (s == dnnl_success) s = dnnl_primitive_create(&r, rpd);
        if (s == dnnl_success) {
            dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, src->mem}, {DNNL_ARG_TO, pl->repacked[kind][l]}};
            s = dnnl_primitive_execute(r, m->ctx->stream, 2, a);
            dnnl_stream_wait(m->ctx->stream);
        }
        if (r) dnnl_primitive_destroy(r);
        if (rpd) dnnl_primitive_desc_destroy(rpd);
        if (dnn_check(s, "re-pack weights for this batch size", err)) {
            dnnl_primitive_desc_destroy(pd);
            return -1;
        }
        if (l == 0) log_debug("vit: %s: batch %d uses its own weights format", what, pl->B);
    }
    return op_from_pd(m, pl, op, pd, what, err);
}

static dnnl_memory_t weights_of(const vit_model *m, const vit_plan *pl, int kind, int l)
{
    if (pl->repacked[kind]) return pl->repacked[kind][kind == W_EMBED || kind == W_HEAD ? 0 : l];
    switch (kind) {
    case W_EMBED: return m->embed_w.mem;
    case W_HEAD: return m->head_w.mem;
    case W_QKV: return m->blocks[l].qkv_w.mem;
    case W_PROJ: return m->blocks[l].proj_w.mem;
    case W_FC1: return m->blocks[l].fc1_w.mem;
    default: return m->blocks[l].fc2_w.mem;
    }
}

/* The two attention matmuls (s = q k^T, o = p v) for the given views. Returns 1 if both got an
 * optimised (non-reference) implementation; 0 otherwise, with the descriptors still created when possible
 * (NULL where not). The caller owns *spd and *vpd. */
static int attention_pds(const vit_model *m, const dnnl_memory_desc_t *q, const dnnl_memory_desc_t *k,
                         const dnnl_memory_desc_t *s, const dnnl_memory_desc_t *p,
                         const dnnl_memory_desc_t *v, const dnnl_memory_desc_t *o,
                         dnnl_primitive_desc_t *spd, dnnl_primitive_desc_t *vpd)
{
    if (*spd) dnnl_primitive_desc_destroy(*spd);
    if (*vpd) dnnl_primitive_desc_destroy(*vpd);
    *spd = *vpd = NULL;
    dnnl_primitive_attr_t attr = make_attr(VIT_POST_NONE, 0);
    dnnl_matmul_desc_t d;
    if (dnnl_matmul_desc_init(&d, q, k, NULL, s) == dnnl_success)
        dnnl_primitive_desc_create(spd, &d, attr, m->ctx->engine, NULL);
    if (dnnl_matmul_desc_init(&d, p, v, NULL, o) == dnnl_success)
        dnnl_primitive_desc_create(vpd, &d, attr, m->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    log_debug("vit: attention matmuls on these views: %s, %s", *spd ? vit_impl_name(*spd) : "none",
              *vpd ? vit_impl_name(*vpd) : "none");
    return *spd && *vpd && !strstr(vit_impl_name(*spd), "ref") && !strstr(vit_impl_name(*vpd), "ref");
}

static void *alloc64(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static int mem(dnnl_memory_t *out, const dnnl_memory_desc_t *md, const vit_model *m, void *handle, char *err)
{
    return dnn_check(dnnl_memory_create(out, md, m->ctx->engine, handle), "memory", err);
}

/* Memories, buffers and primitives for batch B. */
static int plan_build(vit_model *m, vit_plan *pl, int B, char *err)
{
    const vit_config *c = &m->cfg;
    const long D = c->width, H = c->heads, dh = D / H, M = c->mlp, C = c->out_dim, p = c->patch;
    const long g = c->image / p, G = g * g, T = 1 + G, S = c->image, K0 = 3 * p * p, BT = B * T;
    const dnnl_data_type_t a = m->act_dt, f32 = dnnl_f32;
    const int bf = a == dnnl_bf16;
    pl->B = B;
    pl->depth = c->depth;
    size_t ab = dt_bytes(a);
    pl->patches = alloc64((size_t)(B * G * K0) * ab);
    pl->h = alloc64((size_t)(BT * (D > C ? D : C)) * 4);
    pl->hb = bf ? alloc64((size_t)(BT * D) * 2) : NULL;
    pl->qkv = alloc64((size_t)(BT * 3 * D) * ab);
    pl->s = alloc64((size_t)(B * H * T * T) * 4);
    pl->p = bf ? alloc64((size_t)(B * H * T * T) * 2) : pl->s;
    pl->o = alloc64((size_t)(BT * D) * ab);
    pl->mlp = alloc64((size_t)(BT * M) * ab);
    pl->ho = c->proj ? alloc64((size_t)(BT * C) * 4) : NULL;
    if (!pl->patches || !pl->h || (bf && !pl->hb) || !pl->qkv || !pl->s || !pl->p ||
        !pl->o || !pl->mlp || (c->proj && !pl->ho))
        return errf(err, "%s: out of memory for the activations of batch %d", c->name, B);

    dnnl_memory_desc_t md, md2;
    /* embedding: im2col as a strided reorder, then a matmul */
    md_strides(&md, 6, (dnnl_dim_t[]){B, g, g, 3, p, p}, f32,
               (dnnl_dim_t[]){3 * S * S, p * S, p, S * S, S, 1});
    md_tag(&md2, 6, (dnnl_dim_t[]){B, g, g, 3, p, p}, a, dnnl_abcdef);
    if (mem(&pl->m_images, &md, m, DNNL_MEMORY_NONE, err)) return -1;
    if (op_reorder(m, pl, &pl->im2col, &md, &md2, "embed: im2col reorder", err)) return -1;
    md_tag(&md, 2, (dnnl_dim_t[]){B * G, K0}, a, dnnl_ab);
    if (mem(&pl->m_patches, &md, m, pl->patches, err)) return -1;
    if (op_linear(m, pl, &pl->embed_mm, W_EMBED, B * G, K0, D, a, a, f32, 1, VIT_POST_NONE,
                  "embed: patch matmul", err)) return -1;
    md_tag(&md, 2, (dnnl_dim_t[]){B * G, D}, f32, dnnl_ab);
    if (mem(&pl->m_emb, &md, m, pl->h, err)) return -1;
    md_tag(&md, 3, (dnnl_dim_t[]){B, G, D}, f32, dnnl_abc);
    if (mem(&pl->m_emb3, &md, m, pl->h, err)) return -1;
    md_strides(&md2, 3, (dnnl_dim_t[]){B, G, D}, f32, (dnnl_dim_t[]){T * D, D, 1});
    if (mem(&pl->m_tok_rows, &md2, m, DNNL_MEMORY_NONE, err)) return -1;
    if (op_reorder(m, pl, &pl->embed_rows, &md, &md2, "embed: token rows reorder", err)) return -1;
    md_tag(&md, 3, (dnnl_dim_t[]){B, T, D}, f32, dnnl_abc);
    md_tag(&md2, 3, (dnnl_dim_t[]){1, T, D}, f32, dnnl_abc);
    if (mem(&pl->m_tok3, &md, m, DNNL_MEMORY_NONE, err)) return -1;
    dnnl_binary_desc_t bd;
    if (dnn_check(dnnl_binary_desc_init(&bd, dnnl_binary_add, &md, &md2, &md), "binary desc", err)) return -1;
    if (op_desc(m, pl, &pl->pos_add, &bd, "embed: position add", err)) return -1;

    /* layer norm (all norms: same shape and epsilon) */
    md_tag(&md, 2, (dnnl_dim_t[]){BT, D}, f32, dnnl_ab);
    if (mem(&pl->m_tok, &md, m, DNNL_MEMORY_NONE, err)) return -1;
    if (mem(&pl->m_h, &md, m, pl->h, err)) return -1;
    dnnl_layer_normalization_desc_t lnd;
    if (dnn_check(dnnl_layer_normalization_forward_desc_init(&lnd, dnnl_forward_inference, &md, NULL,
                  c->ln_eps, dnnl_use_scale | dnnl_use_shift), "layer norm desc", err)) return -1;
    if (op_desc(m, pl, &pl->ln, &lnd, "layer norm", err)) return -1;
    if (bf) {
        md_tag(&md2, 2, (dnnl_dim_t[]){BT, D}, dnnl_bf16, dnnl_ab);
        if (mem(&pl->m_hb, &md2, m, pl->hb, err)) return -1;
        if (op_reorder(m, pl, &pl->to_bf16, &md, &md2, "f32 -> bf16 reorder", err)) return -1;
    }

    /* attention */
    if (op_linear(m, pl, &pl->qkv_mm, W_QKV, BT, D, 3 * D, a, a, a, 1, VIT_POST_NONE, "qkv matmul", err)) return -1;
    md_tag(&md, 2, (dnnl_dim_t[]){BT, 3 * D}, a, dnnl_ab);
    if (mem(&pl->m_qkv, &md, m, pl->qkv, err)) return -1;
    dnnl_memory_desc_t qmd, kmd, smd, pmd, vmd, omd;
    md_tag(&smd, 4, (dnnl_dim_t[]){B, H, T, T}, f32, dnnl_abcd);
    md_tag(&pmd, 4, (dnnl_dim_t[]){B, H, T, T}, a, dnnl_abcd);
    md_strides(&omd, 4, (dnnl_dim_t[]){B, H, T, dh}, a, (dnnl_dim_t[]){T * D, dh, D, 1});
    /* First choice: q, k, v read in place from the (BT, 3D) qkv rows (strided views: oneDNN 2.6 runs
     * them with gemm:jit, as fast here as brgemm after a split); if oneDNN has only a reference
     * matmul for those strides, the heads are split into dense (3,B,H,T,dh) by a reorder first. */
    char *base = pl->qkv;
    size_t step = (size_t)D * ab; /* bytes from q to k to v within a row */
    md_strides(&qmd, 4, (dnnl_dim_t[]){B, H, T, dh}, a, (dnnl_dim_t[]){T * 3 * D, dh, 3 * D, 1});
    md_strides(&kmd, 4, (dnnl_dim_t[]){B, H, dh, T}, a, (dnnl_dim_t[]){T * 3 * D, dh, 1, 3 * D});
    vmd = qmd;
    dnnl_primitive_desc_t spd = NULL, vpd = NULL;
    /* I2PMAE_VIT_SPLIT_HEADS=1 forces the second way (the tests run both) */
    const char *force_split = getenv("I2PMAE_VIT_SPLIT_HEADS");
    int direct = attention_pds(m, &qmd, &kmd, &smd, &pmd, &vmd, &omd, &spd, &vpd) &&
                 !(force_split && !strcmp(force_split, "1"));
    if (!direct) {
        pl->qkvh = alloc64((size_t)(BT * 3 * D) * ab);
        if (!pl->qkvh) return errf(err, "%s: out of memory for the activations of batch %d", c->name, B);
        md_strides(&md, 5, (dnnl_dim_t[]){3, B, H, T, dh}, a, (dnnl_dim_t[]){D, T * 3 * D, dh, 3 * D, 1});
        md_tag(&md2, 5, (dnnl_dim_t[]){3, B, H, T, dh}, a, dnnl_abcde);
        if (mem(&pl->m_qkv5, &md, m, pl->qkv, err) || mem(&pl->m_qkvh5, &md2, m, pl->qkvh, err)) return -1;
        if (op_reorder(m, pl, &pl->split, &md, &md2, "attention: split heads reorder", err)) return -1;
        base = pl->qkvh;
        step = (size_t)(B * H * T * dh) * ab;
        md_tag(&qmd, 4, (dnnl_dim_t[]){B, H, T, dh}, a, dnnl_abcd);
        md_tag(&kmd, 4, (dnnl_dim_t[]){B, H, dh, T}, a, dnnl_abdc);
        vmd = qmd;
        if (!attention_pds(m, &qmd, &kmd, &smd, &pmd, &vmd, &omd, &spd, &vpd) && (!spd || !vpd))
            return errf(err, "oneDNN: attention matmuls: no implementation");
    }
    if (mem(&pl->m_q, &qmd, m, base, err) || mem(&pl->m_k, &kmd, m, base + step, err) ||
        mem(&pl->m_v, &vmd, m, base + 2 * step, err) || mem(&pl->m_s, &smd, m, pl->s, err) ||
        mem(&pl->m_p, &pmd, m, pl->p, err) || mem(&pl->m_o4, &omd, m, pl->o, err)) return -1;
    if (op_from_pd(m, pl, &pl->score_mm, spd, "attention: q k^T matmul", err) ||
        op_from_pd(m, pl, &pl->pv_mm, vpd, "attention: p v matmul", err)) return -1;
    dnnl_softmax_v2_desc_t sd;
    if (dnn_check(dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, dnnl_softmax_accurate,
                  &smd, &pmd, 3), "softmax desc", err)) return -1;
    if (op_desc(m, pl, &pl->softmax, &sd, "attention: softmax", err)) return -1;
    md_strides(&md, 4, (dnnl_dim_t[]){B, H, 1, G}, a, (dnnl_dim_t[]){H * T * T, T * T, T * T, 1});
    md_tag(&md2, 4, (dnnl_dim_t[]){B, 1, 1, G}, f32, dnnl_abcd);
    if (mem(&pl->m_sal_src, &md, m, (char *)pl->p + ab, err) || mem(&pl->m_sal, &md2, m, DNNL_MEMORY_NONE, err))
        return -1;
    dnnl_reduction_desc_t rd;
    if (dnn_check(dnnl_reduction_desc_init(&rd, dnnl_reduction_mean, &md, &md2, 0.0f, 0.0f),
                  "saliency reduction desc", err)) return -1;
    if (op_desc(m, pl, &pl->sal_mean, &rd, "saliency: mean over heads", err)) return -1;
    md_tag(&md, 2, (dnnl_dim_t[]){BT, D}, a, dnnl_ab);
    if (mem(&pl->m_o, &md, m, pl->o, err)) return -1;
    if (op_linear(m, pl, &pl->proj_mm, W_PROJ, BT, D, D, a, a, f32, 1, VIT_POST_SUM, "attention: out proj", err))
        return -1;

    /* MLP */
    md_tag(&md, 2, (dnnl_dim_t[]){BT, M}, a, dnnl_ab);
    if (mem(&pl->m_mlp, &md, m, pl->mlp, err)) return -1;
    if (op_linear(m, pl, &pl->fc1_mm, W_FC1, BT, D, M, a, a, a, 1, VIT_POST_GELU, "mlp: fc1", err)) return -1;
    if (op_linear(m, pl, &pl->fc2_mm, W_FC2, BT, M, D, a, a, f32, 1, VIT_POST_SUM, "mlp: fc2", err)) return -1;

    /* head: views of the (projected) normalised tokens, reordered into the caller's buffers */
    float *y = pl->h;
    if (c->proj) {
        if (op_linear(m, pl, &pl->head_mm, W_HEAD, BT, D, C, f32, f32, f32, 0, VIT_POST_NONE,
                      "head: visual projection", err)) return -1;
        md_tag(&md, 2, (dnnl_dim_t[]){BT, C}, f32, dnnl_ab);
        if (mem(&pl->m_ho, &md, m, pl->ho, err)) return -1;
        y = pl->ho;
    }
    md_strides(&md, 3, (dnnl_dim_t[]){B, G, C}, f32, (dnnl_dim_t[]){T * C, C, 1});
    md_tag(&md2, 3, (dnnl_dim_t[]){B, G, C}, f32, dnnl_abc);
    if (mem(&pl->m_patch_src, &md, m, y + C, err) || mem(&pl->m_patch, &md2, m, DNNL_MEMORY_NONE, err)) return -1;
    if (op_reorder(m, pl, &pl->head_patch, &md, &md2, "head: patch rows reorder", err)) return -1;
    md_strides(&md, 2, (dnnl_dim_t[]){B, C}, f32, (dnnl_dim_t[]){T * C, 1});
    md_tag(&md2, 2, (dnnl_dim_t[]){B, C}, f32, dnnl_ab);
    if (mem(&pl->m_cls_src, &md, m, y, err) || mem(&pl->m_cls, &md2, m, DNNL_MEMORY_NONE, err)) return -1;
    if (op_reorder(m, pl, &pl->head_cls, &md, &md2, "head: cls row reorder", err)) return -1;

    /* one scratch buffer for every primitive (they run one after another) */
    if (pl->scratch_bytes) {
        pl->scratch = alloc64(pl->scratch_bytes);
        if (!pl->scratch) return errf(err, "%s: out of memory for the oneDNN scratchpad", c->name);
        vit_op *ops[VIT_N_OPS];
        plan_ops(pl, ops);
        for (int i = 0; i < VIT_N_OPS; i++)
            if (ops[i]->scratch) dnnl_memory_set_data_handle(ops[i]->scratch, pl->scratch);
    }
    log_info("vit: batch %d: oneDNN picked qkv matmul %s, fc1 %s, q k^T %s, p v %s (%s), softmax %s, "
             "layer norm %s%s%s", B, pl->qkv_mm.impl, pl->fc1_mm.impl, pl->score_mm.impl,
             pl->pv_mm.impl, pl->split.prim ? "heads split by a reorder" : "heads read in place", pl->softmax.impl, pl->ln.impl, bf ? ", f32->bf16 " : "",
             bf ? pl->to_bf16.impl : "");
    return 0;
}

static void op_free(vit_op *op)
{
    if (op->prim) dnnl_primitive_destroy(op->prim);
    if (op->scratch) dnnl_memory_destroy(op->scratch);
}

void vit_plan_free(vit_plan *pl)
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
        int n = k == W_EMBED || k == W_HEAD ? 1 : pl->depth;
        for (int l = 0; l < n; l++)
            if (pl->repacked[k][l]) dnnl_memory_destroy(pl->repacked[k][l]);
        free(pl->repacked[k]);
    }
    void *bufs[] = {pl->patches, pl->h, pl->hb, pl->qkv, pl->qkvh, pl->s, pl->o, pl->mlp, pl->ho, pl->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    if (pl->p != pl->s) free(pl->p);
    free(pl);
}

/* The cached plan of batch B, built on first use (the oldest is dropped when the cache is full). */
static vit_plan *plan_get(vit_model *m, int B, char *err)
{
    for (int i = 0; i < m->n_plans; i++)
        if (m->plans[i]->B == B) return m->plans[i];
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
        vit_plan_free(pl);
        return NULL;
    }
    if (m->n_plans == VIT_MAX_PLANS) {
        vit_plan_free(m->plans[0]);
        memmove(m->plans, m->plans + 1, sizeof m->plans[0] * (VIT_MAX_PLANS - 1));
        m->n_plans--;
    }
    m->plans[m->n_plans++] = pl;
    return pl;
}

/* ---- forward ---- */

static int run(const vit_model *m, const vit_op *op, int n, const dnnl_exec_arg_t *args, const char *what,
               char *err)
{
    dnnl_exec_arg_t all[12];
    memcpy(all, args, sizeof *args * (size_t)n);
    if (op->scratch) all[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, op->scratch};
    return dnn_check(dnnl_primitive_execute(op->prim, m->ctx->stream, n, all), what, err);
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
    vit_plan *pl = plan_get(m, B, err);
    if (!pl) return -1;
    const long D = m->cfg.width, T = 1 + (long)vit_grid(m) * vit_grid(m);
    dnnl_memory_set_data_handle(pl->m_images, (void *)images);
    dnnl_memory_set_data_handle(pl->m_tok_rows, tokens + D);
    dnnl_memory_set_data_handle(pl->m_tok3, tokens);
    dnnl_memory_set_data_handle(pl->m_tok, tokens);
    RUN(pl->im2col, "embed: im2col", {DNNL_ARG_FROM, pl->m_images}, {DNNL_ARG_TO, pl->m_patches});
    RUN(pl->embed_mm, "embed: patch matmul", {DNNL_ARG_SRC, pl->m_patches},
        {DNNL_ARG_WEIGHTS, weights_of(m, pl, W_EMBED, 0)}, {DNNL_ARG_BIAS, m->embed_b},
        {DNNL_ARG_DST, pl->m_emb});
    RUN(pl->embed_rows, "embed: token rows", {DNNL_ARG_FROM, pl->m_emb3}, {DNNL_ARG_TO, pl->m_tok_rows});
    for (int b = 0; b < B; b++) memcpy(tokens + (size_t)b * T * D, m->cls, sizeof(float) * (size_t)D);
    RUN(pl->pos_add, "embed: position add", {DNNL_ARG_SRC_0, pl->m_tok3}, {DNNL_ARG_SRC_1, m->pos},
        {DNNL_ARG_DST, pl->m_tok3});
    if (m->cfg.pre_norm && layer_norm(m, pl, pl->m_tok, pl->m_tok, m->pre_w, m->pre_b, err)) return -1;
    return dnn_check(dnnl_stream_wait(m->ctx->stream), "stream wait", err);
}

int vit_blocks(vit_model *m, int B, int a, int b, float *tokens, float *saliency, char *err)
{
    if (a < 0 || b > m->cfg.depth || a > b)
        return errf(err, "%s: block range [%d, %d) outside [0, %d)", m->cfg.name, a, b, m->cfg.depth);
    vit_plan *pl = plan_get(m, B, err);
    if (!pl) return -1;
    const int bf = m->act_dt == dnnl_bf16;
    dnnl_memory_t hin = bf ? pl->m_hb : pl->m_h;
    dnnl_memory_set_data_handle(pl->m_tok, tokens);
    if (saliency) dnnl_memory_set_data_handle(pl->m_sal, saliency);
    for (int l = a; l < b; l++) {
        const vit_block_mem *w = &m->blocks[l];
        if (layer_norm(m, pl, pl->m_tok, pl->m_h, w->ln1_w, w->ln1_b, err)) return -1;
        if (bf) RUN(pl->to_bf16, "to bf16", {DNNL_ARG_FROM, pl->m_h}, {DNNL_ARG_TO, pl->m_hb});
        RUN(pl->qkv_mm, "qkv matmul", {DNNL_ARG_SRC, hin}, {DNNL_ARG_WEIGHTS, weights_of(m, pl, W_QKV, l)},
            {DNNL_ARG_BIAS, w->qkv_b}, {DNNL_ARG_DST, pl->m_qkv});
        if (pl->split.prim)
            RUN(pl->split, "split heads", {DNNL_ARG_FROM, pl->m_qkv5}, {DNNL_ARG_TO, pl->m_qkvh5});
        RUN(pl->score_mm, "q k^T", {DNNL_ARG_SRC, pl->m_q}, {DNNL_ARG_WEIGHTS, pl->m_k},
            {DNNL_ARG_DST, pl->m_s});
        RUN(pl->softmax, "softmax", {DNNL_ARG_SRC, pl->m_s}, {DNNL_ARG_DST, pl->m_p});
        if (saliency && l == m->cfg.depth - 1)
            RUN(pl->sal_mean, "saliency", {DNNL_ARG_SRC, pl->m_sal_src}, {DNNL_ARG_DST, pl->m_sal});
        RUN(pl->pv_mm, "p v", {DNNL_ARG_SRC, pl->m_p}, {DNNL_ARG_WEIGHTS, pl->m_v}, {DNNL_ARG_DST, pl->m_o4});
        RUN(pl->proj_mm, "out proj", {DNNL_ARG_SRC, pl->m_o}, {DNNL_ARG_WEIGHTS, weights_of(m, pl, W_PROJ, l)},
            {DNNL_ARG_BIAS, w->proj_b}, {DNNL_ARG_DST, pl->m_tok});
        if (layer_norm(m, pl, pl->m_tok, pl->m_h, w->ln2_w, w->ln2_b, err)) return -1;
        if (bf) RUN(pl->to_bf16, "to bf16", {DNNL_ARG_FROM, pl->m_h}, {DNNL_ARG_TO, pl->m_hb});
        RUN(pl->fc1_mm, "fc1", {DNNL_ARG_SRC, hin}, {DNNL_ARG_WEIGHTS, weights_of(m, pl, W_FC1, l)},
            {DNNL_ARG_BIAS, w->fc1_b}, {DNNL_ARG_DST, pl->m_mlp});
        RUN(pl->fc2_mm, "fc2", {DNNL_ARG_SRC, pl->m_mlp}, {DNNL_ARG_WEIGHTS, weights_of(m, pl, W_FC2, l)},
            {DNNL_ARG_BIAS, w->fc2_b}, {DNNL_ARG_DST, pl->m_tok});
    }
    return dnn_check(dnnl_stream_wait(m->ctx->stream), "stream wait", err);
}

int vit_head(vit_model *m, int B, const float *tokens, float *patch, float *cls, char *err)
{
    vit_plan *pl = plan_get(m, B, err);
    if (!pl) return -1;
    dnnl_memory_set_data_handle(pl->m_tok, (void *)tokens);
    if (layer_norm(m, pl, pl->m_tok, pl->m_h, m->norm_w, m->norm_b, err)) return -1;
    if (m->cfg.proj)
        RUN(pl->head_mm, "visual projection", {DNNL_ARG_SRC, pl->m_h},
            {DNNL_ARG_WEIGHTS, weights_of(m, pl, W_HEAD, 0)}, {DNNL_ARG_DST, pl->m_ho});
    if (patch) {
        dnnl_memory_set_data_handle(pl->m_patch, patch);
        RUN(pl->head_patch, "patch rows", {DNNL_ARG_FROM, pl->m_patch_src}, {DNNL_ARG_TO, pl->m_patch});
    }
    if (cls) {
        dnnl_memory_set_data_handle(pl->m_cls, cls);
        RUN(pl->head_cls, "cls row", {DNNL_ARG_FROM, pl->m_cls_src}, {DNNL_ARG_TO, pl->m_cls});
    }
    return dnn_check(dnnl_stream_wait(m->ctx->stream), "stream wait", err);
}
