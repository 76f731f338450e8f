/* nn_attention.c -- the multi-head self-attention core, softmax(q k^T * hd^-0.5 + keybias) v, on
 * oneDNN batched matmuls that read q, k, v (and write dq, dk, dv) straight out of the interleaved
 * (B,T,3C) buffer through strided memory descriptors, and softmax forward / backward.
 */
#include "nn.h"

#include <math.h>

#include "errors.h"

enum { K_QK = 80, K_AV, K_SOFTMAX_FWD, K_SOFTMAX_BWD, K_DP, K_DV, K_DQ, K_DK };

/* A (B,H,r,c) f32 descriptor with strides. */
static int md4(dnnl_memory_desc_t *md, long B, long H, long r, long c, long sb, long sh, long sr,
               long sc, char *err)
{
    dnnl_dims_t d = {B, H, r, c}, s = {sb, sh, sr, sc};
    return dnn_check(dnnl_memory_desc_init_by_strides(md, 4, d, dnnl_f32, s), "attention md", err);
}

/* dst = scale * (src x wei) [+ bias (B,1,1,N) post-op] [+ dst]. */
static nn_prim *bmm_prim(nn_cache *c, int kind, long B, long T, long C, long H,
                         const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                         const dnnl_memory_desc_t *dst, float scale, int keybias, int accumulate,
                         char *err)
{
    long key[] = {B, T, C, H, keybias, accumulate};
    nn_prim *p = nn_cache_find(c, kind, key, 6);
    if (p) return p;
    dnnl_matmul_desc_t d;
    if (dnn_check(dnnl_matmul_desc_init(&d, src, wei, NULL, dst), "bmm desc", err)) return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int rc = dnn_check(dnnl_primitive_attr_create(&attr), "attr", err);
    if (!rc && scale != 1.0f)
        rc = dnn_check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "output scale", err);
    if (!rc) rc = dnn_check(dnnl_post_ops_create(&po), "post ops", err);
    if (!rc && keybias) {
        dnnl_memory_desc_t bmd;
        rc = md4(&bmd, B, 1, 1, T, T, T, T, 1, err);
        if (!rc) rc = dnn_check(dnnl_post_ops_append_binary(po, dnnl_binary_add, &bmd), "binary post op", err);
    }
    if (!rc && accumulate) rc = dnn_check(dnnl_post_ops_append_sum(po, 1.0f), "sum post op", err);
    if (!rc) rc = dnn_check(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops", err);
    if (!rc) {
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST,
                      DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1};
        p = nn_cache_add(c, kind, key, 6, &d, attr, NULL, args, keybias ? 4 : 3, 0, err);
    }
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return p;
}

static nn_prim *softmax_prim(nn_cache *c, int backward, long B, long T, long H, char *err)
{
    long key[] = {B, T, H};
    int kind = backward ? K_SOFTMAX_BWD : K_SOFTMAX_FWD;
    nn_prim *p = nn_cache_find(c, kind, key, 3);
    if (p) return p;
    dnnl_memory_desc_t md;
    dnnl_softmax_desc_t fd, bd;
    dnnl_dims_t dims = {B, H, T, T};
    if (dnn_check(dnnl_memory_desc_init_by_tag(&md, 4, dims, dnnl_f32, dnnl_abcd), "softmax md", err) ||
        dnn_check(dnnl_softmax_forward_desc_init(&fd, dnnl_forward_training, &md, 3), "softmax desc", err))
        return NULL;
    if (!backward) {
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        return nn_cache_add(c, kind, key, 3, &fd, NULL, NULL, args, 2, 0, err);
    }
    dnnl_primitive_desc_t hint = NULL;
    if (dnn_check(dnnl_softmax_backward_desc_init(&bd, &md, &md, 3), "softmax bwd desc", err) ||
        nn_pd_create(c, &hint, &fd, NULL, err))
        return NULL;
    int args[] = {DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
    p = nn_cache_add(c, kind, key, 3, &bd, NULL, hint, args, 3, 0, err);
    dnnl_primitive_desc_destroy(hint);
    return p;
}

int nn_attention_forward(nn_cache *c, float *out, float *att, const float *qkv,
                         const float *keybias, long B, long T, long C, long H, char *err)
{
    long hd = C / H, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    c->matmul_flops += 2 * (2.0 * B * H * T * T * hd);
    dnnl_memory_desc_t q, kt, s, v, o;
    /* att (B,H,T,T) = scale * q (B,H,T,hd) x k^T (B,H,hd,T) + keybias (B,1,1,T) */
    if (md4(&q, B, H, T, hd, T * C3, hd, C3, 1, err) || md4(&kt, B, H, hd, T, T * C3, hd, 1, C3, err) ||
        md4(&s, B, H, T, T, H * T * T, T * T, T, 1, err))
        return -1;
    nn_prim *p = bmm_prim(c, K_QK, B, T, C, H, &q, &kt, &s, scale, keybias != NULL, 0, err);
    if (!p) return -1;
    void *p1[] = {(void *)qkv, (void *)(qkv + C), att, (void *)keybias};
    if (nn_exec(c, p, p1, err)) return -1;
    /* softmax over the keys, in place */
    if (!(p = softmax_prim(c, 0, B, T, H, err))) return -1;
    void *p2[] = {att, att};
    if (nn_exec(c, p, p2, err)) return -1;
    /* out (B,H,T,hd: strides of (B,T,C)) = att x v (B,H,T,hd) */
    if (md4(&v, B, H, T, hd, T * C3, hd, C3, 1, err) || md4(&o, B, H, T, hd, T * C, hd, C, 1, err))
        return -1;
    if (!(p = bmm_prim(c, K_AV, B, T, C, H, &s, &v, &o, 1.0f, 0, 0, err))) return -1;
    void *p3[] = {att, (void *)(qkv + 2 * C), out};
    return nn_exec(c, p, p3, err);
}

int nn_attention_backward(nn_cache *c, float *dqkv, float *datt, const float *dout,
                          const float *qkv, const float *att, long B, long T, long C, long H,
                          char *err)
{
    long hd = C / H, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    c->matmul_flops += 4 * (2.0 * B * H * T * T * hd);
    dnnl_memory_desc_t x3, x3t, o, s, st;
    if (md4(&x3, B, H, T, hd, T * C3, hd, C3, 1, err) || md4(&x3t, B, H, hd, T, T * C3, hd, 1, C3, err) ||
        md4(&o, B, H, T, hd, T * C, hd, C, 1, err) || md4(&s, B, H, T, T, H * T * T, T * T, T, 1, err) ||
        md4(&st, B, H, T, T, H * T * T, T * T, 1, T, err))
        return -1;
    nn_prim *p;
    /* datt = dout (B,H,T,hd) x v^T (B,H,hd,T) */
    if (!(p = bmm_prim(c, K_DP, B, T, C, H, &o, &x3t, &s, 1.0f, 0, 0, err))) return -1;
    void *p1[] = {(void *)dout, (void *)(qkv + 2 * C), datt};
    if (nn_exec(c, p, p1, err)) return -1;
    /* dv += att^T x dout */
    if (!(p = bmm_prim(c, K_DV, B, T, C, H, &st, &o, &x3, 1.0f, 0, 1, err))) return -1;
    void *p2[] = {(void *)att, (void *)dout, dqkv + 2 * C};
    if (nn_exec(c, p, p2, err)) return -1;
    /* dscores = softmax backward, in place in datt */
    if (!(p = softmax_prim(c, 1, B, T, H, err))) return -1;
    void *p3[] = {(void *)att, datt, datt};
    if (nn_exec(c, p, p3, err)) return -1;
    /* dq += scale * dscores x k ;  dk += scale * dscores^T x q */
    if (!(p = bmm_prim(c, K_DQ, B, T, C, H, &s, &x3, &x3, scale, 0, 1, err))) return -1;
    void *p4[] = {datt, (void *)(qkv + C), dqkv};
    if (nn_exec(c, p, p4, err)) return -1;
    if (!(p = bmm_prim(c, K_DK, B, T, C, H, &st, &x3, &x3, scale, 0, 1, err))) return -1;
    void *p5[] = {datt, (void *)qkv, dqkv + C};
    return nn_exec(c, p, p5, err);
}
