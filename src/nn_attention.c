/* nn_attention.c -- the multi-head self-attention core, softmax(q k^T * hd^-0.5 + keybias
 * [+ pairbias]) v, on oneDNN batched matmuls over dense per-head copies of q, k, v (hand-written
 * split / merge loops to and from the interleaved (B,T,3C) buffer), broadcast binary adds for the
 * key padding and the per-(query, key) bias of local attention, and softmax forward / backward.
 * With NN_BF16 (nn.h), the two batched matmuls of the forward and four of the backward read bf16:
 * copies of q, k, v and the output gradient made in the cache's bf16 buffer, and the probabilities
 * and the score gradient as the softmax primitives write them (softmax v2: f32 scores -> bf16
 * probabilities; backward from bf16 probabilities and a bf16 dout v^T to a bf16 score gradient);
 * the scores, biases and the softmax's arithmetic stay f32, and no pass converts a T x T tensor.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

#include "errors.h"

enum { K_QK = 80, K_AV, K_SOFTMAX_FWD, K_SOFTMAX_BWD, K_DP, K_DV, K_DQ, K_DK, K_KEYBIAS, K_PAIRBIAS };

/* A (B,H,r,c) descriptor of type dt with strides. */
static int md4t(dnnl_memory_desc_t *md, long B, long H, long r, long c, long sb, long sh, long sr,
                long sc, dnnl_data_type_t dt, char *err)
{
    dnnl_dims_t d = {B, H, r, c}, s = {sb, sh, sr, sc};
    return dnn_check(dnnl_memory_desc_init_by_strides(md, 4, d, dt, s), "attention md", err);
}

static int md4(dnnl_memory_desc_t *md, long B, long H, long r, long c, long sb, long sh, long sr,
               long sc, char *err)
{
    return md4t(md, B, H, r, c, sb, sh, sr, sc, dnnl_f32, err);
}

/* The four (B,H,T,hd) / (B,H,T,T) descriptors of the products, inputs of type dt, outputs f32:
 * x, xt (transposed) and s, st (transposed) for inputs; xo, so for outputs. */
typedef struct { dnnl_memory_desc_t x, xt, s, st, xo, so; } att_mds;

static int att_mds_init(att_mds *m, long B, long T, long H, long hd, dnnl_data_type_t dt, char *err)
{
    return md4t(&m->x, B, H, T, hd, H * T * hd, T * hd, hd, 1, dt, err) ||
           md4t(&m->xt, B, H, hd, T, H * T * hd, T * hd, 1, hd, dt, err) ||
           md4t(&m->s, B, H, T, T, H * T * T, T * T, T, 1, dt, err) ||
           md4t(&m->st, B, H, T, T, H * T * T, T * T, 1, T, dt, err) ||
           md4(&m->xo, B, H, T, hd, H * T * hd, T * hd, hd, 1, err) ||
           md4(&m->so, B, H, T, T, H * T * T, T * T, T, 1, err);
}

/* dst = scale * (src x wei) [+ dst]. */
static nn_prim *bmm_prim(nn_cache *c, int kind, long B, long T, long C, long H,
                         const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                         const dnnl_memory_desc_t *dst, float scale, int accumulate, long tmp_count,
                         char *err)
{
    long key[] = {B, T, C, H, accumulate, src->data_type == dnnl_bf16, dst->data_type == dnnl_bf16};
    nn_prim *p = nn_cache_find(c, kind, key, 7);
    if (p) return p;
    dnnl_matmul_desc_t d;
    if (dnn_check(dnnl_matmul_desc_init(&d, src, wei, NULL, dst), "bmm desc", err)) return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int rc = dnn_check(dnnl_primitive_attr_create(&attr), "attr", err);
    if (!rc && scale != 1.0f)
        rc = dnn_check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "output scale", err);
    if (!rc) rc = dnn_check(dnnl_post_ops_create(&po), "post ops", err);
    if (!rc && accumulate) rc = dnn_check(dnnl_post_ops_append_sum(po, 1.0f), "sum post op", err);
    if (!rc) rc = dnn_check(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops", err);
    if (!rc) {
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        p = nn_cache_add(c, kind, key, 7, &d, attr, NULL, args, 3, tmp_count, err);
    }
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return p;
}

/* att (B,H,T,T) += bias, in place, broadcast over heads: bias (B,1,1,T) per key (rows 1, kind
 * K_KEYBIAS) or (B,1,T,T) per query and key (rows T, kind K_PAIRBIAS). A separate binary primitive:
 * as a matmul post-op the broadcast add made the score matmul 9x slower. */
static int add_bias(nn_cache *c, int kind, float *att, const float *bias, long rows, long B, long T, long H,
                    char *err)
{
    long key[] = {B, T, H};
    nn_prim *p = nn_cache_find(c, kind, key, 3);
    if (!p) {
        dnnl_memory_desc_t s, b;
        dnnl_binary_desc_t d;
        if (md4(&s, B, H, T, T, H * T * T, T * T, T, 1, err) ||
            md4(&b, B, 1, rows, T, rows * T, rows * T, T, 1, err) ||
            dnn_check(dnnl_binary_desc_init(&d, dnnl_binary_add, &s, &b, &s), "attention bias desc", err))
            return -1;
        int args[] = {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST};
        if (!(p = nn_cache_add(c, kind, key, 3, &d, NULL, NULL, args, 3, 0, err))) return -1;
    }
    void *ptr[] = {att, (void *)bias, att};
    return nn_exec(c, p, ptr, err);
}

/* Softmax over the last axis of (B,H,T,T), every tensor of type dt: f32 (softmax v1, as ever), or
 * bf16 (softmax v2 with an f32 source: the probabilities written rounded, the backward's score
 * gradient from the bf16 probabilities and bf16 output gradient, written rounded; oneDNN 2.6 has
 * no backward from bf16 probabilities and an f32 gradient). */
static nn_prim *softmax_prim(nn_cache *c, int backward, long B, long T, long H, dnnl_data_type_t dt, char *err)
{
    long key[] = {B, T, H, dt == dnnl_bf16};
    int kind = backward ? K_SOFTMAX_BWD : K_SOFTMAX_FWD;
    nn_prim *p = nn_cache_find(c, kind, key, 4);
    if (p) return p;
    dnnl_memory_desc_t md, mdt;
    dnnl_softmax_desc_t fd, bd;
    dnnl_softmax_v2_desc_t fd2, bd2;
    dnnl_dims_t dims = {B, H, T, T};
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
        return nn_cache_add(c, kind, key, 4, fwd, NULL, NULL, args, 2, 0, err);
    }
    dnnl_primitive_desc_t hint = NULL;
    if (dnn_check(v2 ? dnnl_softmax_v2_backward_desc_init(&bd2, dnnl_softmax_accurate, &mdt, &mdt, &mdt, 3)
                     : dnnl_softmax_backward_desc_init(&bd, &md, &md, 3),
                  "softmax bwd desc", err) ||
        nn_pd_create(c, &hint, fwd, NULL, err))
        return NULL;
    int args[] = {DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
    p = nn_cache_add(c, kind, key, 4, v2 ? (const void *)&bd2 : (const void *)&bd, NULL, hint, args, 3, 0, err);
    dnnl_primitive_desc_destroy(hint);
    return p;
}

/* Head-major copies: x (B,T,C) with head h in columns [h*hd, (h+1)*hd) <-> d (B,H,T,hd) dense.
 * Batched matmuls on dense per-head blocks run on oneDNN's brgemm kernels; on the interleaved
 * (B,T,3C) strides they fell back to a 10-20x slower gemm. ld is the row stride of x (C or 3C). */
static void heads_split(float *d, const float *x, long ld, long B, long T, long H, long hd)
{
#pragma omp parallel for schedule(static)
    for (long bh = 0; bh < B * H; bh++) {
        long b = bh / H, h = bh % H;
        for (long t = 0; t < T; t++)
            memcpy(d + (bh * T + t) * hd, x + (b * T + t) * ld + h * hd, sizeof(float) * (size_t)hd);
    }
}

/* x (rows of stride ld) += d (B,H,T,hd) (accumulate = 1) or = d (accumulate = 0). */
static void heads_merge(float *x, const float *d, long ld, long B, long T, long H, long hd, int accumulate)
{
#pragma omp parallel for schedule(static)
    for (long bh = 0; bh < B * H; bh++) {
        long b = bh / H, h = bh % H;
        for (long t = 0; t < T; t++) {
            float *o = x + (b * T + t) * ld + h * hd;
            const float *src = d + (bh * T + t) * hd;
            if (accumulate) {
#pragma omp simd
                for (long e = 0; e < hd; e++) o[e] += src[e];
            } else
                memcpy(o, src, sizeof(float) * (size_t)hd);
        }
    }
}

/* heads_split into bf16: d (B,H,T,hd) dense = x's head columns rounded to bf16. */
static void heads_split_bf16(uint16_t *d, const float *x, long ld, long B, long T, long H, long hd)
{
#pragma omp parallel for schedule(static)
    for (long bh = 0; bh < B * H; bh++) {
        long b = bh / H, h = bh % H;
        for (long t = 0; t < T; t++) nn_to_bf16_serial(d + (bh * T + t) * hd, x + (b * T + t) * ld + h * hd, hd);
    }
}

/* bf16: q k^T on bf16 copies of q, k -> f32 scores (in the cache's bf16 buffer, 2 values per float),
 * biases added in f32, softmax f32 -> bf16 probabilities written into att (the first B H T T 2-byte
 * values of its buffer), read as they are by p v (bf16 v) and by the backward. */
static int attention_forward_bf16(nn_cache *c, float *out, uint16_t *att, const float *qkv, const float *keybias,
                                   const float *pairbias, long B, long T, long C, long H, char *err)
{
    long hd = C / H, C3 = 3 * C, n = B * T * C, ns = B * H * T * T;
    float scale = 1.0f / sqrtf((float)hd);
    att_mds m;
    if (att_mds_init(&m, B, T, H, hd, dnnl_bf16, err)) return -1;
    nn_prim *p = bmm_prim(c, K_QK, B, T, C, H, &m.x, &m.xt, &m.so, scale, 0, n, err);
    nn_prim *av = p ? bmm_prim(c, K_AV, B, T, C, H, &m.s, &m.x, &m.xo, 1.0f, 0, 0, err) : NULL;
    nn_prim *sm = av ? softmax_prim(c, 0, B, T, H, dnnl_bf16, err) : NULL;
    uint16_t *buf = sm ? nn_bf16_buffer(c, 2 * ns + 3 * n, err) : NULL;
    if (!buf) return -1;
    float *sc = (float *)buf;
    uint16_t *q = buf + 2 * ns, *k = q + n, *v = k + n;
    heads_split_bf16(q, qkv, C3, B, T, H, hd);
    heads_split_bf16(k, qkv + C, C3, B, T, H, hd);
    heads_split_bf16(v, qkv + 2 * C, C3, B, T, H, hd);
    void *p1[] = {q, k, sc};
    if (nn_exec(c, p, p1, err)) return -1;
    if (keybias && add_bias(c, K_KEYBIAS, sc, keybias, 1, B, T, H, err)) return -1;
    if (pairbias && add_bias(c, K_PAIRBIAS, sc, pairbias, T, B, T, H, err)) return -1;
    void *p2[] = {sc, att};
    if (nn_exec(c, sm, p2, err)) return -1;
    void *p3[] = {att, v, p->tmp};
    if (nn_exec(c, av, p3, err)) return -1;
    heads_merge(out, p->tmp, C, B, T, H, hd, 0);
    return 0;
}

/* The backward of attention_forward_bf16: att holds the bf16 probabilities. dp = dout v^T is
 * written in bf16 (into datt's buffer), the softmax backward reads it with the bf16 probabilities
 * and writes the bf16 score gradient that dq and dk read; dv = p^T dout reads p as it is. No
 * separate conversion pass over a T x T tensor. */
static int attention_backward_bf16(nn_cache *c, float *dqkv, float *datt, const float *dout, const float *qkv,
                                    const uint16_t *att, long B, long T, long C, long H, char *err)
{
    long hd = C / H, C3 = 3 * C, n = B * T * C, ns = B * H * T * T;
    float scale = 1.0f / sqrtf((float)hd);
    att_mds m;
    if (att_mds_init(&m, B, T, H, hd, dnnl_bf16, err)) return -1;
    nn_prim *p = bmm_prim(c, K_DP, B, T, C, H, &m.x, &m.xt, &m.s, 1.0f, 0, 3 * n, err);
    nn_prim *pv = p ? bmm_prim(c, K_DV, B, T, C, H, &m.st, &m.x, &m.xo, 1.0f, 0, 0, err) : NULL;
    nn_prim *sm = pv ? softmax_prim(c, 1, B, T, H, dnnl_bf16, err) : NULL;
    nn_prim *pq = sm ? bmm_prim(c, K_DQ, B, T, C, H, &m.s, &m.x, &m.xo, scale, 0, 0, err) : NULL;
    nn_prim *pk = pq ? bmm_prim(c, K_DK, B, T, C, H, &m.st, &m.x, &m.xo, scale, 0, 0, err) : NULL;
    uint16_t *q = pk ? nn_bf16_buffer(c, 4 * n + ns, err) : NULL;
    if (!q) return -1;
    uint16_t *k = q + n, *v = k + n, *dO = v + n, *ds = dO + n;
    float *dq = p->tmp, *dk = dq + n, *dv = dk + n;
    heads_split_bf16(q, qkv, C3, B, T, H, hd);
    heads_split_bf16(k, qkv + C, C3, B, T, H, hd);
    heads_split_bf16(v, qkv + 2 * C, C3, B, T, H, hd);
    heads_split_bf16(dO, dout, C, B, T, H, hd);
    uint16_t *dp = (uint16_t *)datt;
    void *p1[] = {dO, v, dp}, *p2[] = {(void *)att, dO, dv}, *p3[] = {(void *)att, dp, ds};
    if (nn_exec(c, p, p1, err) || nn_exec(c, pv, p2, err) || nn_exec(c, sm, p3, err)) return -1;
    void *p4[] = {ds, k, dq}, *p5[] = {ds, q, dk};
    if (nn_exec(c, pq, p4, err) || nn_exec(c, pk, p5, err)) return -1;
    heads_merge(dqkv, dq, C3, B, T, H, hd, 1);
    heads_merge(dqkv + C, dk, C3, B, T, H, hd, 1);
    heads_merge(dqkv + 2 * C, dv, C3, B, T, H, hd, 1);
    return 0;
}

int nn_attention_forward(nn_cache *c, float *out, float *att, const float *qkv,
                         const float *keybias, long B, long T, long C, long H, char *err)
{
    return nn_attention_forward_bias(c, out, att, qkv, keybias, NULL, B, T, C, H, err);
}

int nn_attention_forward_bias(nn_cache *c, float *out, float *att, const float *qkv,
                              const float *keybias, const float *pairbias, long B, long T, long C,
                              long H, char *err)
{
    long hd = C / H, C3 = 3 * C, n = B * T * C;
    float scale = 1.0f / sqrtf((float)hd);
    c->matmul_flops += 2 * (2.0 * B * H * T * T * hd);
    if (c->precision == NN_BF16)
        return attention_forward_bf16(c, out, (uint16_t *)att, qkv, keybias, pairbias, B, T, C, H, err);
    dnnl_memory_desc_t x, xt, s;
    if (md4(&x, B, H, T, hd, H * T * hd, T * hd, hd, 1, err) || md4(&xt, B, H, hd, T, H * T * hd, T * hd, 1, hd, err) ||
        md4(&s, B, H, T, T, H * T * T, T * T, T, 1, err))
        return -1;
    /* att (B,H,T,T) = scale * q x k^T + keybias (B,1,1,T); q, k, v, o dense in the primitive's tmp */
    nn_prim *p = bmm_prim(c, K_QK, B, T, C, H, &x, &xt, &s, scale, 0, 4 * n, err);
    if (!p) return -1;
    float *q = p->tmp, *k = q + n, *v = k + n, *o = v + n;
    heads_split(q, qkv, C3, B, T, H, hd);
    heads_split(k, qkv + C, C3, B, T, H, hd);
    heads_split(v, qkv + 2 * C, C3, B, T, H, hd);
    void *p1[] = {q, k, att};
    if (nn_exec(c, p, p1, err)) return -1;
    if (keybias && add_bias(c, K_KEYBIAS, att, keybias, 1, B, T, H, err)) return -1;
    if (pairbias && add_bias(c, K_PAIRBIAS, att, pairbias, T, B, T, H, err)) return -1;
    nn_prim *sm = softmax_prim(c, 0, B, T, H, dnnl_f32, err);
    if (!sm) return -1;
    void *p2[] = {att, att};
    if (nn_exec(c, sm, p2, err)) return -1;
    /* o = att x v, then back to (B,T,C) */
    nn_prim *av = bmm_prim(c, K_AV, B, T, C, H, &s, &x, &x, 1.0f, 0, 0, err);
    if (!av) return -1;
    void *p3[] = {att, v, o};
    if (nn_exec(c, av, p3, err)) return -1;
    heads_merge(out, o, C, B, T, H, hd, 0);
    return 0;
}

int nn_attention_backward(nn_cache *c, float *dqkv, float *datt, const float *dout,
                          const float *qkv, const float *att, long B, long T, long C, long H,
                          char *err)
{
    long hd = C / H, C3 = 3 * C, n = B * T * C;
    float scale = 1.0f / sqrtf((float)hd);
    c->matmul_flops += 4 * (2.0 * B * H * T * T * hd);
    if (c->precision == NN_BF16)
        return attention_backward_bf16(c, dqkv, datt, dout, qkv, (const uint16_t *)att, B, T, C, H, err);
    dnnl_memory_desc_t x, xt, s, st;
    if (md4(&x, B, H, T, hd, H * T * hd, T * hd, hd, 1, err) || md4(&xt, B, H, hd, T, H * T * hd, T * hd, 1, hd, err) ||
        md4(&s, B, H, T, T, H * T * T, T * T, T, 1, err) || md4(&st, B, H, T, T, H * T * T, T * T, 1, T, err))
        return -1;
    /* datt = dout x v^T, with q, k, v, dout, dq, dk, dv dense in the primitive's tmp */
    nn_prim *p = bmm_prim(c, K_DP, B, T, C, H, &x, &xt, &s, 1.0f, 0, 7 * n, err);
    if (!p) return -1;
    float *q = p->tmp, *k = q + n, *v = k + n, *dO = v + n, *dq = dO + n, *dk = dq + n, *dv = dk + n;
    heads_split(q, qkv, C3, B, T, H, hd);
    heads_split(k, qkv + C, C3, B, T, H, hd);
    heads_split(v, qkv + 2 * C, C3, B, T, H, hd);
    heads_split(dO, dout, C, B, T, H, hd);
    void *p1[] = {dO, v, datt};
    if (nn_exec(c, p, p1, err)) return -1;
    /* dv = att^T x dout */
    nn_prim *pv = bmm_prim(c, K_DV, B, T, C, H, &st, &x, &x, 1.0f, 0, 0, err);
    if (!pv) return -1;
    void *p2[] = {(void *)att, dO, dv};
    if (nn_exec(c, pv, p2, err)) return -1;
    /* dscores = softmax backward, in place in datt */
    nn_prim *sm = softmax_prim(c, 1, B, T, H, dnnl_f32, err);
    if (!sm) return -1;
    void *p3[] = {(void *)att, datt, datt};
    if (nn_exec(c, sm, p3, err)) return -1;
    /* dq = scale * dscores x k ;  dk = scale * dscores^T x q */
    nn_prim *pq = bmm_prim(c, K_DQ, B, T, C, H, &s, &x, &x, scale, 0, 0, err);
    nn_prim *pk = pq ? bmm_prim(c, K_DK, B, T, C, H, &st, &x, &x, scale, 0, 0, err) : NULL;
    if (!pk) return -1;
    void *p4[] = {datt, k, dq}, *p5[] = {datt, q, dk};
    if (nn_exec(c, pq, p4, err) || nn_exec(c, pk, p5, err)) return -1;
    heads_merge(dqkv, dq, C3, B, T, H, hd, 1);
    heads_merge(dqkv + C, dk, C3, B, T, H, hd, 1);
    heads_merge(dqkv + 2 * C, dv, C3, B, T, H, hd, 1);
    return 0;
}
