/* nn_attention.c -- the multi-head self-attention core, softmax(q k^T * hd^-0.5 + keybias
 * [+ pairbias]) v, on oneDNN batched matmuls over dense per-head copies of q, k, v (hand-written
 * split / merge loops to and from the interleaved (B,T,3C) buffer), and softmax forward / backward.
 *
 * The (B,H,T,T) chain runs in blocks of samples (block_samples): the scores of a block, a few MB,
 * pass from the score matmul through the softmax to p v (and in the backward from dout v^T through
 * the softmax backward to the three gradient products) in the L3 cache instead of DRAM. Each op
 * works per sample and head (the matmuls per batch element, the softmax per row), so a block
 * computes the very values of the whole batch; primitives are cached per block shape (and for the
 * last, partial block). At 2-4 threads full blocks run side by side, one per thread on one-thread
 * primitives (side_blocks), with the same bits. The scale is the score matmul's output scale and the
 * biases its binary post-ops, so no separate pass adds them. The probabilities are written into their slice of att,
 * saved for the backward; the backward's score gradient lives only in a block-sized scratch.
 *
 * With NN_BF16 (nn.h), the two batched matmuls of the forward and four of the backward read bf16:
 * copies of q, k, v and the output gradient made in the cache's bf16 buffer, and the probabilities
 * and the score gradient as the softmax primitives write them (softmax v2: f32 scores -> bf16
 * probabilities; backward from bf16 probabilities and a bf16 dout v^T to a bf16 score gradient);
 * the scores, biases and the softmax's arithmetic stay f32, and no pass converts a T x T tensor.
 */
#include "nn.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "errors.h"

/* Score bytes (f32) of one block: the (nb,H,T,T) scores of a block stay under this, so the ops of
 * the chain find them in the L3 cache (32 MB, shared by the cores) and the block-sized operands in
 * the L2 (1 MB per core) where they fit; docs/performance.md has the measurements. */
#define ATT_BLOCK_BYTES (4L << 20)

/* Samples per block for (B,H,T,T) scores: as many as fit ATT_BLOCK_BYTES (at least one), spread so
 * that the blocks are as even as possible (the last one may be smaller). */
static long block_samples(long B, long H, long T)
{
    long per = H * T * T * (long)sizeof(float), nb = ATT_BLOCK_BYTES / per;
    if (nb < 1) nb = 1;
    if (nb > B) nb = B;
    long blocks = (B + nb - 1) / nb;
    return (B + blocks - 1) / blocks;
}

/* A (B,H,r,c) descriptor of type dt with strides. */
static int md4t(dnnl_memory_desc_t *md, long B, long H, long r, long c, long sb, long sh, long sr,
                long sc, dnnl_data_type_t dt, char *err)
{
    dnnl_dims_t d = {B, H, r, c}, s = {sb, sh, sr, sc};
    return dnn_check(dnnl_memory_desc_init_by_strides(md, 4, d, dt, s), "attention md", err);
}

/* The (B,H,T,hd) / (B,H,T,T) descriptors of the products of a block of B samples, inputs of type
 * dt, outputs f32: x, xt (transposed) and s for inputs; xo, so and xto (B,H,hd,T) dense for
 * outputs; the bias descriptors kb (B,1,1,T) per key and pb (B,1,T,T) per query and key, f32. */
typedef struct { dnnl_memory_desc_t x, xt, s, xo, so, xto, kb, pb; } att_mds;

static int att_mds_init(att_mds *m, long B, long T, long H, long hd, dnnl_data_type_t dt, char *err)
{
    return md4t(&m->x, B, H, T, hd, H * T * hd, T * hd, hd, 1, dt, err) ||
           md4t(&m->xt, B, H, hd, T, H * T * hd, T * hd, 1, hd, dt, err) ||
           md4t(&m->s, B, H, T, T, H * T * T, T * T, T, 1, dt, err) ||
           md4t(&m->xo, B, H, T, hd, H * T * hd, T * hd, hd, 1, dnnl_f32, err) ||
           md4t(&m->so, B, H, T, T, H * T * T, T * T, T, 1, dnnl_f32, err) ||
           md4t(&m->xto, B, H, hd, T, H * T * hd, T * hd, T, 1, dnnl_f32, err) ||
           md4t(&m->kb, B, 1, 1, T, T, T, T, 1, dnnl_f32, err) ||
           md4t(&m->pb, B, 1, T, T, T * T, T * T, T, 1, dnnl_f32, err);
}

/* dst = scale * (src x wei) [+ keybias] [+ pairbias] for a block of nb samples of a batch of B (the
 * key: a primitive's temporary, tmp_count floats, is sized for the whole batch). kb, pb: the bias
 * descriptors, or NULL for none; executed with {src, wei, dst[, kb][, pb]}. slot < 0: the primitive
 * for all threads; slot >= 0: a one-thread copy for blocks side by side (side_blocks). */
static nn_prim *bmm_prim(nn_cache *c, int kind, long B, long nb, long T, long C, long H,
                         const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                         const dnnl_memory_desc_t *dst, float scale, const dnnl_memory_desc_t *kb,
                         const dnnl_memory_desc_t *pb, long tmp_count, int slot, char *err)
{
    long key[] = {B, nb, T, C, H, src->data_type == dnnl_bf16, dst->data_type == dnnl_bf16, kb != NULL, pb != NULL,
                  slot + 1};
    int n_key = sizeof key / sizeof *key;
    nn_prim *p = nn_cache_find(c, kind, key, n_key);
    if (p) return p;
    dnnl_matmul_desc_t d;
    if (dnn_check(dnnl_matmul_desc_init(&d, src, wei, NULL, dst), "bmm desc", err)) return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int args[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST}, n_args = 3;
    int rc = dnn_check(dnnl_primitive_attr_create(&attr), "attr", err);
    if (!rc && scale != 1.0f)
        rc = dnn_check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "output scale", err);
    if (!rc) rc = dnn_check(dnnl_post_ops_create(&po), "post ops", err);
    const dnnl_memory_desc_t *bias[] = {kb, pb};
    for (int i = 0; i < 2 && !rc; i++)
        if (bias[i]) {
            rc = dnn_check(dnnl_post_ops_append_binary(po, dnnl_binary_add, bias[i]), "bias post op", err);
            args[n_args] = DNNL_ARG_ATTR_MULTIPLE_POST_OP(n_args - 3) | DNNL_ARG_SRC_1;
            n_args++;
        }
    if (!rc) rc = dnn_check(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops", err);
    if (!rc)
        p = nn_cache_add_for_slot(c, slot, kind, key, n_key, &d, attr, NULL, args, n_args, tmp_count, err);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return p;
}

/* Softmax over the last axis of a block (nb,H,T,T), every tensor of type dt: f32 (softmax v1, as
 * ever), or bf16 (softmax v2 with an f32 source: the probabilities written rounded, the backward's
 * score gradient from the bf16 probabilities and bf16 output gradient, written rounded; oneDNN 2.6
 * has no backward from bf16 probabilities and an f32 gradient). */
static nn_prim *softmax_prim(nn_cache *c, int backward, long nb, long T, long H, dnnl_data_type_t dt, int slot,
                             char *err)
{
    long key[] = {nb, T, H, dt == dnnl_bf16, slot + 1};
    int kind = backward ? NN_K_ATT_SOFTMAX_BWD : NN_K_ATT_SOFTMAX_FWD;
    nn_prim *p = nn_cache_find(c, kind, key, 5);
    if (p) return p;
    dnnl_memory_desc_t md, mdt;
    dnnl_softmax_desc_t fd, bd;
    dnnl_softmax_v2_desc_t fd2, bd2;
    dnnl_dims_t dims = {nb, H, T, T};
    int v2 = dt != dnnl_f32;
    if (dnn_check(dnnl_memory_desc_init_by_tag(&md, 4, dims, dnnl_f32, dnnl_abcd), "softmax md", err) ||
        dnn_check(dnnl_memory_desc_init_by_tag(&mdt, 4, dims, dt, dnnl_abcd), "softmax md", err) ||
        dnn_check(v2 ? dnnl_softmax_v2_forward_desc_init(&fd2, dnnl_forward_training, dnnl_softmax_accurate, &md,
                                                         &mdt, 3)
                     : dnnl_softmax_forward_desc_init(&fd, dnnl_forward_training, &md, 3),
                  "softmax desc", err))
        return NULL;
    const void *fwd = v2 ? (const void *)&fd2 : (const void *)&fd;
    if (!backward) {
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        return nn_cache_add_for_slot(c, slot, kind, key, 5, fwd, NULL, NULL, args, 2, 0, err);
    }
    dnnl_primitive_desc_t hint = NULL;
    if (dnn_check(v2 ? dnnl_softmax_v2_backward_desc_init(&bd2, dnnl_softmax_accurate, &mdt, &mdt, &mdt, 3)
                     : dnnl_softmax_backward_desc_init(&bd, &md, &md, 3),
                  "softmax bwd desc", err) ||
        nn_pd_create(c, &hint, fwd, NULL, err))
        return NULL;
    int args[] = {DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
    const void *bwd = v2 ? (const void *)&bd2 : (const void *)&bd;
    p = nn_cache_add_for_slot(c, slot, kind, key, 5, bwd, NULL, hint, args, 3, 0, err);
    dnnl_primitive_desc_destroy(hint);
    return p;
}

/* The forward's primitives for a block of nb samples of B: scores (q k^T, scaled, biases added),
 * softmax, p v; inputs of type dt. tmp_count: floats of the score primitive's temporary. slot: as
 * bmm_prim's. */
typedef struct { nn_prim *qk, *sm, *av; } fwd_prims;

static int fwd_prims_get(nn_cache *c, fwd_prims *f, long B, long nb, long T, long C, long H, int keybias,
                         int pairbias, dnnl_data_type_t dt, long tmp_count, int slot, char *err)
{
    long hd = C / H;
    att_mds m;
    if (att_mds_init(&m, nb, T, H, hd, dt, err)) return -1;
    float scale = 1.0f / sqrtf((float)hd);
    f->qk = bmm_prim(c, NN_K_ATT_QK, B, nb, T, C, H, &m.x, &m.xt, &m.so, scale, keybias ? &m.kb : NULL,
                     pairbias ? &m.pb : NULL, tmp_count, slot, err);
    f->sm = f->qk ? softmax_prim(c, 0, nb, T, H, dt, slot, err) : NULL;
    f->av = f->sm ? bmm_prim(c, NN_K_ATT_PV, B, nb, T, C, H, &m.s, &m.x, &m.xo, 1.0f, NULL, NULL, 0, slot, err)
                  : NULL;
    return f->av ? 0 : -1;
}

/* The backward's primitives for a block: dp = dout v^T (written in dt), dv = p^T dout, the softmax
 * backward, dq = scale ds k, dk = scale ds^T q. dv and dk are computed transposed, as
 * dv^T = dout^T p and dk^T = scale q^T ds (B,H,hd,T): the T x T operand is then read in its plain
 * layout instead of through a transposed view, 10-15 % faster per call in f32 and bf16
 * (docs/performance.md), and the same bits (each output is the same dot product over the T keys,
 * accumulated in the same order; checked). heads_merge (transposed) folds the transpose back. */
typedef struct { nn_prim *dp, *dv, *sm, *dq, *dk; } bwd_prims;

static int bwd_prims_get(nn_cache *c, bwd_prims *g, long B, long nb, long T, long C, long H,
                         dnnl_data_type_t dt, long tmp_count, int slot, char *err)
{
    long hd = C / H;
    att_mds m;
    if (att_mds_init(&m, nb, T, H, hd, dt, err)) return -1;
    float scale = 1.0f / sqrtf((float)hd);
    g->dp = bmm_prim(c, NN_K_ATT_DP, B, nb, T, C, H, &m.x, &m.xt, &m.s, 1.0f, NULL, NULL, tmp_count, slot, err);
    g->dv = g->dp ? bmm_prim(c, NN_K_ATT_DV, B, nb, T, C, H, &m.xt, &m.s, &m.xto, 1.0f, NULL, NULL, 0, slot, err)
                  : NULL;
    g->sm = g->dv ? softmax_prim(c, 1, nb, T, H, dt, slot, err) : NULL;
    g->dq = g->sm ? bmm_prim(c, NN_K_ATT_DQ, B, nb, T, C, H, &m.s, &m.x, &m.xo, scale, NULL, NULL, 0, slot, err)
                  : NULL;
    g->dk = g->dq ? bmm_prim(c, NN_K_ATT_DK, B, nb, T, C, H, &m.xt, &m.s, &m.xto, scale, NULL, NULL, 0, slot, err)
                  : NULL;
    return g->dk ? 0 : -1;
}

/* Head-major copies between x (B,T,ld) (head h in columns [h*hd, (h+1)*hd)) and d, dense per head:
 * (B,H,T,hd), or (transposed) (B,H,hd,T), each head's (T,hd) block transposed. Batched matmuls on
 * dense per-head blocks run on oneDNN's brgemm kernels; on the interleaved (B,T,3C) strides they fell
 * back to a 10-20x slower gemm. split: d (of type dt; bf16: rounded, the bits of nn_to_bf16) = x's
 * head columns; else x = d (accumulate 0) or x += d (accumulate 1). oneDNN reorders (with a sum
 * post-op to accumulate), cached per shape: their jit kernels move the transposed blocks 2-2.5x and
 * the plain ones 2.5-3.5x faster than the OpenMP loops they replaced (2 threads; the transposed loop
 * read with a stride of T floats, 1.3 % of the bf16 step), with the same bits (each element copied,
 * rounded, or added once). */
static int heads_move(nn_cache *c, int split, void *d, float *x, long ld, long B, long T, long H, long hd,
                      dnnl_data_type_t dt, int accumulate, int transposed, char *err)
{
    long key[] = {split, B, T, H, hd, ld, dt == dnnl_bf16, accumulate, transposed};
    nn_prim *p = nn_cache_find(c, NN_K_ATT_HEADS, key, 9);
    if (!p) {
        dnnl_memory_desc_t dense, rows;
        if (md4t(&dense, B, H, T, hd, H * T * hd, T * hd, transposed ? 1 : hd, transposed ? T : 1, dt, err) ||
            md4t(&rows, B, H, T, hd, T * ld, hd, ld, 1, dnnl_f32, err))
            return -1;
        p = split ? nn_cache_add_reorder(c, NN_K_ATT_HEADS, key, 9, &rows, &dense, 0, err)
                  : nn_cache_add_reorder(c, NN_K_ATT_HEADS, key, 9, &dense, &rows, accumulate, err);
        if (!p) return -1;
    }
    void *ptr[] = {split ? (void *)x : d, split ? d : (void *)x};
    return nn_exec(c, p, ptr, err);
}

/* d (B,H,T,hd) dense, of type dt = x's head columns (split 1 above); the three of q, k, v from qkv. */
static int heads_split(nn_cache *c, void *d, const float *x, long ld, long B, long T, long H, long hd,
                       dnnl_data_type_t dt, char *err)
{
    return heads_move(c, 1, d, (float *)x, ld, B, T, H, hd, dt, 0, 0, err);
}

static int qkv_split(nn_cache *c, void *q, void *k, void *v, const float *qkv, long B, long T, long C, long H,
                     dnnl_data_type_t dt, char *err)
{
    return heads_split(c, q, qkv, 3 * C, B, T, H, C / H, dt, err) ||
                   heads_split(c, k, qkv + C, 3 * C, B, T, H, C / H, dt, err) ||
                   heads_split(c, v, qkv + 2 * C, 3 * C, B, T, H, C / H, dt, err)
               ? -1
               : 0;
}

/* x = d or x += d, d (B,H,T,hd) f32 dense, or (transposed) (B,H,hd,T). */
static int heads_merge(nn_cache *c, float *x, const float *d, long ld, long B, long T, long H, long hd,
                       int accumulate, int transposed, char *err)
{
    return heads_move(c, 0, (void *)d, x, ld, B, T, H, hd, dnnl_f32, accumulate, transposed, err);
}

/* Runs p on slot's stream (nn_exec_side) or, slot < 0, on all threads (nn_exec). */
static int exec_on(nn_cache *c, nn_prim *p, int slot, void *const *ptrs, char *err)
{
    return slot < 0 ? nn_exec(c, p, ptrs, err) : nn_exec_side(c, p, slot, ptrs, err);
}

/* The arguments of the chains over blocks (chain_blocks). q, k, v, dO: dense per-head copies
 * (B,H,T,hd) of element size es (4: f32, 2: bf16); att: the probabilities (element size es); o, dq:
 * (B,H,T,hd) f32; dk, dv: transposed, (B,H,hd,T) f32 (bwd_prims); sc: the f32 scores of one block
 * (forward); ds: one block's dout v^T, then in place its score gradient (element size es; backward);
 * tmp_count: the floats of the temporary that the first block's primitive holds (block_prims). */
typedef struct {
    float *o, *dq, *dk, *dv, *sc;
    void *att, *ds;
    const void *q, *k, *v, *dO;
    const float *keybias, *pairbias;
    size_t es;
    long B, nb, T, C, H, tmp_count;
} att_chain;

/* The forward of the block from b0 (as many samples as f's primitives take) with the primitives f on
 * slot (as exec_on), its scores in sc. */
static int forward_block(nn_cache *c, const att_chain *a, const fwd_prims *f, int slot, float *sc, long b0,
                         char *err)
{
    long nx = a->H * a->T * (a->C / a->H), ns = a->H * a->T * a->T; /* per sample */
    size_t es = a->es;
    char *pa = (char *)a->att + es * (size_t)(b0 * ns);
    void *p1[5] = {(char *)a->q + es * (size_t)(b0 * nx), (char *)a->k + es * (size_t)(b0 * nx), sc};
    int n = 3;
    if (a->keybias) p1[n++] = (void *)(a->keybias + b0 * a->T);
    if (a->pairbias) p1[n++] = (void *)(a->pairbias + b0 * a->T * a->T);
    void *p2[] = {sc, pa}, *p3[] = {pa, (char *)a->v + es * (size_t)(b0 * nx), a->o + b0 * nx};
    return exec_on(c, f->qk, slot, p1, err) || exec_on(c, f->sm, slot, p2, err) || exec_on(c, f->av, slot, p3, err)
               ? -1
               : 0;
}

/* The backward of the block from b0 with the primitives g on slot, its score gradient in ds. */
static int backward_block(nn_cache *c, const att_chain *a, const bwd_prims *g, int slot, void *ds, long b0,
                          char *err)
{
    long nx = a->H * a->T * (a->C / a->H), ns = a->H * a->T * a->T;
    size_t es = a->es, ox = es * (size_t)(b0 * nx);
    void *pa = (char *)a->att + es * (size_t)(b0 * ns), *pdO = (char *)a->dO + ox;
    void *p1[] = {pdO, (char *)a->v + ox, ds}, *p2[] = {pdO, pa, a->dv + b0 * nx}, *p3[] = {pa, ds, ds};
    void *p4[] = {ds, (char *)a->k + ox, a->dq + b0 * nx}, *p5[] = {(char *)a->q + ox, ds, a->dk + b0 * nx};
    return exec_on(c, g->dp, slot, p1, err) || exec_on(c, g->dv, slot, p2, err) || exec_on(c, g->sm, slot, p3, err) ||
                   exec_on(c, g->dq, slot, p4, err) || exec_on(c, g->dk, slot, p5, err)
               ? -1
               : 0;
}

/* The primitives of a block of m samples from b0, those of the forward (f) or of the backward (g), on
 * slot (as bmm_prim's). On a slot the score (backward: dout v^T) product's temporary holds the
 * block's scores; on all threads they go to a->sc (a->ds), and the first block's primitive holds
 * the temporary of a->tmp_count floats. */
static int block_prims(nn_cache *c, const att_chain *a, int backward, long b0, long m, int slot, fwd_prims *f,
                       bwd_prims *g, char *err)
{
    dnnl_data_type_t dt = a->es == 2 ? dnnl_bf16 : dnnl_f32;
    long tmp = slot >= 0 ? m * a->H * a->T * a->T : b0 ? 0 : a->tmp_count;
    return backward ? bwd_prims_get(c, g, a->B, m, a->T, a->C, a->H, dt, tmp, slot, err)
                    : fwd_prims_get(c, f, a->B, m, a->T, a->C, a->H, a->keybias != NULL, a->pairbias != NULL, dt,
                                    tmp, slot, err);
}

/* Runs the block from b0 with f or g on slot (block_prims). */
static int run_block(nn_cache *c, const att_chain *a, int backward, const fwd_prims *f, const bwd_prims *g,
                     int slot, long b0, char *err)
{
    if (backward) return backward_block(c, a, g, slot, slot < 0 ? a->ds : g->dp->tmp, b0, err);
    return forward_block(c, a, f, slot, slot < 0 ? a->sc : f->qk->tmp, b0, err);
}

/* Blocks side by side: where nn_side_threads() gives n >= 2 threads and at least 2 full blocks of
 * nb samples remain from b0, the next up to n of them run one per thread, each on one-thread copies
 * of the block's primitives (slot j for the j-th block, block_prims). Every element of every op is
 * the same computation whichever thread runs it and however many share it (the bits of 1 and 2
 * threads are the same: tests/unit/test_nn_layers.c), so the results are those of the blocks one
 * after the other. It spares the 2-thread primitives' barriers and uneven splits on small blocks
 * (one sample at T = 384: docs/performance.md, "attside"). Returns the number of blocks run (0:
 * none, run the next block on all threads), or -1 on error. */
static long side_blocks(nn_cache *c, const att_chain *a, int backward, long b0, char *err)
{
    long g = nn_side_threads(), full = (a->B - b0) / a->nb;
    if (g < 2 || full < 2) return 0;
    if (g > full) g = full;
    fwd_prims f[NN_SIDE_MAX];
    bwd_prims w[NN_SIDE_MAX];
    for (int j = 0; j < g; j++)
        if (block_prims(c, a, backward, b0, a->nb, j, &f[j], &w[j], err) || nn_side_stream(c, j, err)) return -1;
    int rc[NN_SIDE_MAX] = {0};
    char errs[NN_SIDE_MAX][I2P_ERR_LEN];
    nn_exec_region(c, 1, (backward ? 5 : 3) * g);
#pragma omp parallel num_threads((int)g)
    { /* block j on stream j; a thread takes several if the runtime gives fewer than g */
        for (int j = omp_get_thread_num(); j < g; j += omp_get_num_threads())
            rc[j] = run_block(c, a, backward, &f[j], &w[j], j, b0 + j * a->nb, errs[j]);
    }
    nn_exec_region(c, 0, 0);
    for (int j = 0; j < g; j++)
        if (rc[j]) return errf(err, "%s", errs[j]);
    return g;
}

/* The forward (backward) chain over blocks of samples (att_chain): side by side where side_blocks
 * allows, else one block on all threads. */
static int chain_blocks(nn_cache *c, const att_chain *a, int backward, char *err)
{
    for (long b0 = 0; b0 < a->B;) {
        long side = side_blocks(c, a, backward, b0, err), m = a->B - b0 < a->nb ? a->B - b0 : a->nb;
        if (side < 0) return -1;
        if (side > 0) {
            b0 += side * a->nb;
            continue;
        }
        fwd_prims f;
        bwd_prims g;
        if (block_prims(c, a, backward, b0, m, -1, &f, &g, err) || run_block(c, a, backward, &f, &g, -1, b0, err))
            return -1;
        b0 += m;
    }
    return 0;
}

int nn_attention_forward(nn_cache *c, float *out, float *att, const float *qkv,
                         const float *keybias, long B, long T, long C, long H, char *err)
{
    return nn_attention_forward_bias(c, out, att, qkv, keybias, NULL, B, T, C, H, err);
}

/* f32: q, k, v, o and one block's scores in the first block's score primitive's temporary; the
 * softmax writes the probabilities into att. (Scores written in place into att, then overwritten
 * by the softmax, cost 10-15 % more per block: the score matmul's stores then go to DRAM instead of
 * a block buffer that stays in the L3; same bits, docs/performance.md.)
 * bf16: q, k, v rounded into the cache's bf16 buffer after one block's f32 scores (2 bf16 values per
 * float), the bf16 probabilities written into att (the first B H T T 2-byte values of its buffer),
 * read as they are by p v and by the backward; o in the temporary. */
int nn_attention_forward_bias(nn_cache *c, float *out, float *att, const float *qkv,
                              const float *keybias, const float *pairbias, long B, long T, long C,
                              long H, char *err)
{
    long hd = C / H, n = B * T * C, nb = block_samples(B, H, T), nsb = nb * H * T * T;
    c->matmul_flops += 2 * (2.0 * B * H * T * T * hd);
    int bf16 = c->precision == NN_BF16;
    fwd_prims f;
    long tmp_count = bf16 ? n : 4 * n + nsb;
    if (fwd_prims_get(c, &f, B, nb, T, C, H, keybias != NULL, pairbias != NULL, bf16 ? dnnl_bf16 : dnnl_f32,
                      tmp_count, -1, err))
        return -1;
    att_chain a = {.o = f.qk->tmp, .att = att, .keybias = keybias, .pairbias = pairbias, .es = bf16 ? 2 : 4,
                   .B = B, .nb = nb, .T = T, .C = C, .H = H, .tmp_count = tmp_count};
    if (bf16) {
        uint16_t *buf = nn_bf16_buffer(c, 2 * nsb + 3 * n, err);
        if (!buf) return -1;
        uint16_t *q = buf + 2 * nsb, *k = q + n, *v = k + n;
        a.q = q, a.k = k, a.v = v, a.sc = (float *)buf;
        if (qkv_split(c, q, k, v, qkv, B, T, C, H, dnnl_bf16, err)) return -1;
    } else {
        float *q = a.o + n, *k = q + n, *v = k + n;
        a.q = q, a.k = k, a.v = v, a.sc = v + n;
        if (qkv_split(c, q, k, v, qkv, B, T, C, H, dnnl_f32, err)) return -1;
    }
    if (chain_blocks(c, &a, 0, err)) return -1;
    return heads_merge(c, out, a.o, C, B, T, H, hd, 0, 0, err);
}

/* f32: q, k, v, dO, dq, dk, dv and one block's score gradient in the first block's dp primitive's
 * temporary. bf16: q, k, v, dO and one block's bf16 score gradient in the cache's bf16 buffer; dq,
 * dk, dv in the temporary. Either way the softmax backward writes the score gradient in place over
 * dout v^T (same bits as into a separate buffer, checked). No pass converts a T x T tensor. */
int nn_attention_backward(nn_cache *c, float *dqkv, const float *dout, const float *qkv, const float *att, long B,
                          long T, long C, long H, char *err)
{
    long hd = C / H, C3 = 3 * C, n = B * T * C, nb = block_samples(B, H, T), nsb = nb * H * T * T;
    c->matmul_flops += 4 * (2.0 * B * H * T * T * hd);
    int bf16 = c->precision == NN_BF16;
    long tmp_count = bf16 ? 3 * n : 7 * n + nsb;
    bwd_prims g;
    if (bwd_prims_get(c, &g, B, nb, T, C, H, bf16 ? dnnl_bf16 : dnnl_f32, tmp_count, -1, err)) return -1;
    float *dq = g.dp->tmp, *dk = dq + n, *dv = dk + n;
    att_chain a = {.dq = dq, .dk = dk, .dv = dv, .att = (void *)att, .es = bf16 ? 2 : 4, .B = B, .nb = nb, .T = T,
                   .C = C, .H = H, .tmp_count = tmp_count};
    if (bf16) {
        uint16_t *q = nn_bf16_buffer(c, 4 * n + nsb, err);
        if (!q) return -1;
        uint16_t *k = q + n, *v = k + n, *dO = v + n, *ds = dO + n;
        a.q = q, a.k = k, a.v = v, a.dO = dO, a.ds = ds;
        if (qkv_split(c, q, k, v, qkv, B, T, C, H, dnnl_bf16, err) ||
            heads_split(c, dO, dout, C, B, T, H, hd, dnnl_bf16, err))
            return -1;
    } else {
        float *q = dv + n, *k = q + n, *v = k + n, *dO = v + n, *ds = dO + n;
        a.q = q, a.k = k, a.v = v, a.dO = dO, a.ds = ds;
        if (qkv_split(c, q, k, v, qkv, B, T, C, H, dnnl_f32, err) ||
            heads_split(c, dO, dout, C, B, T, H, hd, dnnl_f32, err))
            return -1;
    }
    if (chain_blocks(c, &a, 1, err)) return -1;
    return heads_merge(c, dqkv, dq, C3, B, T, H, hd, 1, 0, err) ||
                   heads_merge(c, dqkv + C, dk, C3, B, T, H, hd, 1, 1, err) ||
                   heads_merge(c, dqkv + 2 * C, dv, C3, B, T, H, hd, 1, 1, err)
               ? -1
               : 0;
}
