/* nn_eltwise.c -- element-wise activations (GELU-erf, ReLU) and binary add on oneDNN eltwise /
 * binary primitives. Backward results are written to a primitive-owned temporary and accumulated
 * (nn_act_backward), or straight into the gradient (nn_act_backward_set, and
 * nn_relu_backward_dst: written in place, see nn.h).
 */
#include "nn.h"

#include <omp.h>
#include <string.h>

#ifdef __x86_64__
#include <immintrin.h>
#endif

#include "errors.h"

static int md1(dnnl_memory_desc_t *md, long n, char *err)
{
    dnnl_dims_t d = {n};
    return dnn_check(dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_a), "1-D md", err);
}

static dnnl_alg_kind_t alg_of(nn_act a)
{
    return a == NN_GELU ? dnnl_eltwise_gelu_erf : dnnl_eltwise_relu;
}

/* Below this many elements an add is a plain serial loop: a primitive call is an OpenMP parallel
 * region, whose fork / join costs more than adding a few thousand floats, and on a shared machine
 * each region waits for a preempted thread (the 135 small adds of a spec-size training step, the
 * norm parameter gradients mostly, took ~4 s of it at load 12, docs/performance.md). The sum is the
 * same float addition, so the results are bitwise those of the primitive. */
#define NN_ADD_SERIAL_MAX 16384

int nn_add(nn_cache *c, float *out, const float *a, const float *b, long n, char *err)
{
    if (n <= NN_ADD_SERIAL_MAX) {
        for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
        return 0;
    }
    long key[] = {n};
    nn_prim *p = nn_cache_find(c, NN_K_ADD, key, 1);
    if (!p) {
        dnnl_memory_desc_t md;
        dnnl_binary_desc_t d;
        if (md1(&md, n, err)) return -1;
        if (dnn_check(dnnl_binary_desc_init(&d, dnnl_binary_add, &md, &md, &md), "binary desc", err))
            return -1;
        int args[] = {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST};
        p = nn_cache_add(c, NN_K_ADD, key, 1, &d, NULL, NULL, args, 3, 0, err);
        if (!p) return -1;
    }
    void *ptr[] = {(void *)a, (void *)b, out};
    return nn_exec(c, p, ptr, err);
}

int nn_accumulate(nn_cache *c, float *dst, const float *src, long n, char *err)
{
    return nn_add(c, dst, dst, src, n, err);
}

int nn_act_forward(nn_cache *c, nn_act a, float *out, const float *inp, long n, char *err)
{
    long key[] = {n, a};
    nn_prim *p = nn_cache_find(c, NN_K_ACT_FWD, key, 2);
    if (!p) {
        dnnl_memory_desc_t md;
        dnnl_eltwise_desc_t d;
        if (md1(&md, n, err)) return -1;
        if (dnn_check(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, alg_of(a), &md, 0, 0),
                      "eltwise fwd desc", err))
            return -1;
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        p = nn_cache_add(c, NN_K_ACT_FWD, key, 2, &d, NULL, NULL, args, 2, 0, err);
        if (!p) return -1;
    }
    void *ptr[] = {(void *)inp, out};
    return nn_exec(c, p, ptr, err);
}

/* The cached backward primitive of act over n elements (its tmp holds n floats). */
static nn_prim *act_backward_prim(nn_cache *c, nn_act a, long n, char *err)
{
    long key[] = {n, a};
    nn_prim *p = nn_cache_find(c, NN_K_ACT_BWD, key, 2);
    if (p) return p;
    dnnl_memory_desc_t md;
    dnnl_eltwise_desc_t fd, d;
    dnnl_primitive_desc_t hint = NULL;
    if (md1(&md, n, err)) return NULL;
    if (dnn_check(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, alg_of(a), &md, 0, 0),
                  "eltwise fwd desc", err) ||
        dnn_check(dnnl_eltwise_backward_desc_init(&d, alg_of(a), &md, &md, 0, 0), "eltwise bwd desc", err) ||
        nn_pd_create(c, &hint, &fd, NULL, err))
        return NULL;
    int args[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
    p = nn_cache_add(c, NN_K_ACT_BWD, key, 2, &d, NULL, hint, args, 3, n, err);
    dnnl_primitive_desc_destroy(hint);
    return p;
}

int nn_act_backward(nn_cache *c, nn_act a, float *dinp, const float *dout, const float *inp, long n,
                    char *err)
{
    nn_prim *p = act_backward_prim(c, a, n, err);
    if (!p) return -1;
    void *ptr[] = {(void *)inp, (void *)dout, p->tmp};
    if (nn_exec(c, p, ptr, err)) return -1;
    return nn_accumulate(c, dinp, p->tmp, n, err);
}

int nn_relu_backward_dst(nn_cache *c, float *dinp, const float *dout, const float *out, long n, char *err)
{
    long key[] = {n};
    nn_prim *p = nn_cache_find(c, NN_K_RELU_BWD_DST, key, 1);
    if (!p) {
        dnnl_memory_desc_t md;
        dnnl_eltwise_desc_t fd, d;
        dnnl_primitive_desc_t hint = NULL;
        if (md1(&md, n, err)) return -1;
        if (dnn_check(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, dnnl_eltwise_relu_use_dst_for_bwd,
                                                     &md, 0, 0),
                      "eltwise fwd desc", err) ||
            dnn_check(dnnl_eltwise_backward_desc_init(&d, dnnl_eltwise_relu_use_dst_for_bwd, &md, &md, 0, 0),
                      "eltwise bwd desc", err) ||
            nn_pd_create(c, &hint, &fd, NULL, err))
            return -1;
        int args[] = {DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        p = nn_cache_add(c, NN_K_RELU_BWD_DST, key, 1, &d, NULL, hint, args, 3, 0, err);
        dnnl_primitive_desc_destroy(hint);
        if (!p) return -1;
    }
    void *ptr[] = {(void *)out, (void *)dout, dinp};
    return nn_exec(c, p, ptr, err);
}

int nn_act_backward_set(nn_cache *c, nn_act a, float *dinp, const float *dout, const float *inp, long n,
                        char *err)
{
    nn_prim *p = act_backward_prim(c, a, n, err);
    if (!p) return -1;
    void *ptr[] = {(void *)inp, (void *)dout, dinp};
    return nn_exec(c, p, ptr, err);
}

/* relu'(out) * dout on n elements, out in bf16: dout where out > 0 (as a float), else 0 x dout (the
 * primitive's alpha 0 x dout: a signed zero). */
static void relu_bwd_bf16_serial(float *dinp, const float *dout, const uint16_t *out, long n)
{
    for (long i = 0; i < n; i++) {
        uint32_t u = (uint32_t)out[i] << 16;
        float y;
        memcpy(&y, &u, sizeof y);
        dinp[i] = y > 0 ? dout[i] : dout[i] * 0.0f;
    }
}

#ifdef __x86_64__
__attribute__((target("avx512f"))) static void relu_bwd_bf16_avx512(float *dinp, const float *dout,
                                                                   const uint16_t *out, long n)
{
    long i = 0;
    __m512 zero = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(out + i));
        __m512 y = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        __mmask16 pos = _mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ);
        __m512 d = _mm512_loadu_ps(dout + i);
        _mm512_storeu_ps(dinp + i, _mm512_mask_blend_ps(pos, _mm512_mul_ps(d, zero), d));
    }
    relu_bwd_bf16_serial(dinp + i, dout + i, out + i, n - i);
}
#endif

void nn_relu_backward_dst_bf16(float *dinp, const float *dout, const uint16_t *out, long n)
{
    const long chunk = 16384;
    long n_chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n_chunks > 1)
    for (long j = 0; j < n_chunks; j++) {
        long a = j * chunk, len = n - a < chunk ? n - a : chunk;
#ifdef __x86_64__
        if (__builtin_cpu_supports("avx512f")) {
            relu_bwd_bf16_avx512(dinp + a, dout + a, out + a, len);
            continue;
        }
#endif
        relu_bwd_bf16_serial(dinp + a, dout + a, out + a, len);
    }
}

void nn_zero_floats(float *p, long n)
{
#pragma omp parallel
    {
        long t = omp_get_thread_num(), T = omp_get_num_threads(), i0 = n * t / T, i1 = n * (t + 1) / T;
        memset(p + i0, 0, sizeof(float) * (size_t)(i1 - i0));
    }
}
