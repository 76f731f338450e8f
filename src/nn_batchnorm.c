/* nn_batchnorm.c -- batch normalisation over rows (the B x groups x k positions of a kernel-1
 * Conv1d), eps 1e-5, on oneDNN batch_normalization: training forward (batch statistics, biased
 * variance, computed here in double), eval forward (running statistics), backward (nn_norm_backward.c); torch-style
 * running-stat update.
 */
#include "nn.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "errors.h"

static int bn_desc(dnnl_batch_normalization_desc_t *d, dnnl_prop_kind_t prop, unsigned extra,
                   long M, long C, char *err)
{
    /* rows (M,C) seen as (1, C, M, 1) channels-last: the same bytes, and oneDNN's jit nspc batch
       norm instead of the slow channel-strided path it picks for a 2-D (N,C) tensor */
    dnnl_memory_desc_t data;
    dnnl_dims_t dd = {1, C, M, 1};
    unsigned flags = dnnl_use_scale | dnnl_use_shift | extra;
    if (dnn_check(dnnl_memory_desc_init_by_tag(&data, 4, dd, dnnl_f32, dnnl_acdb), "bn md", err)) return -1;
    if (prop == dnnl_backward)
        return dnn_check(dnnl_batch_normalization_backward_desc_init(d, prop, &data, &data, NN_BN_EPS, flags),
                         "bn bwd desc", err);
    return dnn_check(dnnl_batch_normalization_forward_desc_init(d, prop, &data, NN_BN_EPS, flags),
                     "bn fwd desc", err);
}

/* Batch mean and biased variance per channel of inp (M,C), in one pass over the rows: each value's
 * difference d = x - k from a shift k per channel (the first row's value), summed as s = sum d and
 * q = sum d^2 in double over blocks of rows (nn_row_block_sums: each block in row order, the blocks in
 * order; the same bits for any thread count); then mean = k + s / M, var = q / M - (s / M)^2. The
 * shift keeps the variance free of cancellation: d is of the order of the spread, not of the mean
 * (test_kernels_exact: a channel of mean 1000 and spread 0.01 to 1e-6 relative, which the unshifted
 * sum of squares misses), and one pass reads the tensor once instead of twice (mean, then squared
 * deviations). The row loops are `omp simd` across channels, which keeps every channel's order. Done
 * here rather than by the primitive: oneDNN's channels-last training forward computes the statistics
 * in a way that loses ~1e-4 relative on embed0's gradients (the reference comparison needs better),
 * while the channel-strided path that is accurate runs 35x slower. acc holds 3C doubles, s, q and k,
 * then the scratch of the sums (nn_bn_acc_doubles(C) in all). The same pass serves rows given in
 * pieces (nn_bn_stats_*). */

/* part[j] += d, part[C + j] += d^2, d = x - k[j], over rows of inp (rows, C) in row order. */
static inline __attribute__((always_inline)) void stats_rows_body(const float *inp, long rows, long C, double *part,
                                                                  const double *k)
{
    double *q = part + C;
    for (long i = 0; i < rows; i++) {
        const float *x = inp + i * C;
#pragma omp simd
        for (long j = 0; j < C; j++) {
            double d = (double)x[j] - k[j];
            part[j] += d;
            q[j] += d * d;
        }
    }
}

/* The same loop compiled for the baseline ISA and for AVX2 (the same operations per element in the
 * same order, contraction being off: the same bits). An AVX-512 copy was no faster (bound by memory:
 * docs/performance.md, "one-pass BatchNorm statistics"). */
static void stats_rows_base(const float *inp, long rows, long C, double *part, const double *k)
{
    stats_rows_body(inp, rows, C, part, k);
}

#ifdef __x86_64__
__attribute__((target("avx2"))) static void stats_rows_avx2(const float *inp, long rows, long C, double *part,
                                                            const double *k)
{
    stats_rows_body(inp, rows, C, part, k);
}
#endif

void nn_bn_stats_part(double *part, const double *acc, const float *inp, long rows, long C)
{
    const double *k = acc + 2 * C;
#ifdef __x86_64__
    if (__builtin_cpu_supports("avx2")) {
        stats_rows_avx2(inp, rows, C, part, k);
        return;
    }
#endif
    stats_rows_base(inp, rows, C, part, k);
}

/* A block's pass (nn_row_sums_fn) over the rows of inp. */
typedef struct {
    const float *inp;
    const double *acc;
    long C;
} stats_arg;

static void stats_block(double *part, long r0, long r1, const void *arg)
{
    const stats_arg *a = arg;
    nn_bn_stats_part(part, a->acc, a->inp + r0 * a->C, r1 - r0, a->C);
}

void nn_bn_stats_begin(double *acc, const float *row0, long C)
{
    memset(acc, 0, sizeof(double) * (size_t)(2 * C));
    for (long j = 0; j < C; j++) acc[2 * C + j] = row0 ? row0[j] : 0.0;
}

void nn_bn_stats_rows(double *acc, const float *inp, long rows, long C)
{
    stats_arg a = {inp, acc, C};
    nn_row_block_sums(acc, acc + 3 * C, 2 * C, rows, stats_block, &a);
}

/* torch's running-statistics update (momentum 0.1, unbiased variance); nothing if they are NULL. */
static void running_update(float *running_mean, float *running_var, const float *mean, const float *var, long M,
                           long C)
{
    if (!running_mean || !running_var) return;
    float unbias = M > 1 ? (float)M / (float)(M - 1) : 1.0f;
    for (long j = 0; j < C; j++) {
        running_mean[j] = (1 - NN_BN_MOMENTUM) * running_mean[j] + NN_BN_MOMENTUM * mean[j];
        running_var[j] = (1 - NN_BN_MOMENTUM) * running_var[j] + NN_BN_MOMENTUM * var[j] * unbias;
    }
}

void nn_bn_stats_end(const double *acc, float *mean, float *var, float *running_mean, float *running_var, long M,
                     long C)
{
    for (long j = 0; j < C; j++) {
        double m = acc[j] / (double)M, v = acc[C + j] / (double)M - m * m;
        mean[j] = (float)(acc[2 * C + j] + m);
        var[j] = v > 0 ? (float)v : 0.0f;
    }
    running_update(running_mean, running_var, mean, var, M, C);
}

/* The training forward that takes the statistics computed above as inputs (its tmp: 3C +
 * nn_bn_acc_doubles(C) doubles, for the batch statistics and nn_batchnorm_backward_rows /
 * nn_batchnorm_relu_backward_rows). */
static nn_prim *bn_train_prim(nn_cache *c, long M, long C, char *err)
{
    long key[] = {M, C};
    nn_prim *p = nn_cache_find(c, NN_K_BN_TRAIN, key, 2);
    if (p) return p;
    dnnl_batch_normalization_desc_t d;
    if (bn_desc(&d, dnnl_forward_training, dnnl_use_global_stats, M, C, err)) return NULL;
    int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                  DNNL_ARG_SHIFT};
    return nn_cache_add(c, NN_K_BN_TRAIN, key, 2, &d, NULL, NULL, args, 6, 2 * (3 * C + nn_bn_acc_doubles(C)), err);
}

int nn_batchnorm_stats_train(nn_cache *c, float *mean, float *var, const float *inp, float *running_mean,
                              float *running_var, long M, long C, char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err);
    if (!p) return -1;
    double *acc = (double *)p->tmp; /* the statistics' pass over all rows at once */
    nn_bn_stats_begin(acc, M > 0 ? inp : NULL, C);
    nn_bn_stats_rows(acc, inp, M, C);
    nn_bn_stats_end(acc, mean, var, running_mean, running_var, M, C);
    return 0;
}

int nn_batchnorm_forward_train(nn_cache *c, float *out, float *mean, float *var, const float *inp,
                               const float *w, const float *b, float *running_mean,
                               float *running_var, long M, long C, char *err)
{
    if (nn_batchnorm_stats_train(c, mean, var, inp, running_mean, running_var, M, C, err)) return -1;
    nn_prim *p = bn_train_prim(c, M, C, err);
    void *ptr[] = {(void *)inp, out, mean, var, (void *)w, (void *)b};
    return !p || nn_exec(c, p, ptr, err) ? -1 : 0;
}

/* out = bf16(relu(w (inp - mean) / sqrt(var + eps) + b)) in one pass: the scale per channel as
 * oneDNN's batch norm forms it (w / sqrt(var + eps)), rows in blocks of 64 channels rounded by
 * nn_to_bf16_serial; per element, so the same bits for any split of the rows. sc holds 2C floats. */
static void bn_relu_bf16(uint16_t *out, const float *inp, const float *w, const float *b, const float *mean,
                         const float *var, long M, long C, float *sc)
{
    float *sh = sc + C;
    for (long j = 0; j < C; j++) {
        sc[j] = w[j] / sqrtf(var[j] + NN_BN_EPS);
        sh[j] = b[j];
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < M; i++) {
        float t[64];
        for (long j0 = 0; j0 < C; j0 += 64) {
            long n = C - j0 < 64 ? C - j0 : 64;
            const float *x = inp + i * C + j0;
#pragma omp simd
            for (long j = 0; j < n; j++) {
                float y = sc[j0 + j] * (x[j] - mean[j0 + j]) + sh[j0 + j];
                t[j] = y > 0 ? y : 0.0f;
            }
            nn_to_bf16_serial(out + i * C + j0, t, n);
        }
    }
}

int nn_batchnorm_relu_bf16(nn_cache *c, uint16_t *out, const float *inp, const float *w, const float *b,
                           const float *mean, const float *var, long M, long C, char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err); /* its tmp (8C floats) for the scales */
    if (!p) return -1;
    bn_relu_bf16(out, inp, w, b, mean, var, M, C, p->tmp);
    return 0;
}

/* How the training primitive p forms w (x - mean) / sqrt(var + eps) + b (probed bitwise by
 * test_kernels_exact): oneDNN 2.6's jit batch norm (avx2, avx512) as one fused multiply-add
 * fma(x - mean, s, b), its plain C++ one (nspc_bnorm, a channel count off its vector widths) as
 * s (x - mean) + b, s = w / sqrt(var + eps) both; anything else unknown (the primitive then runs). */
static nn_bn_arith prim_arith(const nn_prim *p)
{
    const_dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_get_primitive_desc(p->prim, &pd) != dnnl_success || !pd) return NN_BN_PRIM;
    const char *name = dnn_impl_name(pd);
#ifdef __x86_64__
    if (!strncmp(name, "bnorm_jit:avx512", 16) || !strncmp(name, "bnorm_jit:avx2", 14))
        return __builtin_cpu_supports("fma") ? NN_BN_FMA : NN_BN_PRIM;
#endif
    if (!strncmp(name, "nspc_bnorm", 10)) return NN_BN_MULADD;
    return NN_BN_PRIM;
}

nn_bn_arith nn_batchnorm_arith(nn_cache *c, long M, long C, char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err);
    return p ? prim_arith(p) : NN_BN_ERROR;
}

/* The per-column scale w / sqrt(var + eps) as both forms take it. */
static void bn_scale(float *sc, const float *w, const float *var, long C)
{
    for (long j = 0; j < C; j++) sc[j] = w[j] / sqrtf(var[j] + NN_BN_EPS);
}

/* out = relu(bn(inp)) on the rows lo..hi-1: the primitive's value y (fma or not), then ReLU as
 * oneDNN's eltwise forms it (y > 0 ? y : +0). One body, compiled for the baseline ISA and for
 * AVX2 + FMA (contraction off: the separate multiply and add stay separate). */
static inline __attribute__((always_inline)) void bn_relu_rows_body(float *out, const float *inp,
                                                                    const float *mean, const float *sc,
                                                                    const float *sh, long C, long lo, long hi,
                                                                    int fma)
{
    for (long i = lo; i < hi; i++) {
        const float *x = inp + i * C;
        float *o = out + i * C;
#pragma omp simd
        for (long j = 0; j < C; j++) {
            float t = x[j] - mean[j], y = fma ? fmaf(t, sc[j], sh[j]) : sc[j] * t + sh[j];
            o[j] = y > 0 ? y : 0.0f;
        }
    }
}

static void bn_relu_rows_base(float *out, const float *inp, const float *mean, const float *sc, const float *sh,
                              long C, long lo, long hi, int fma)
{
    if (fma) bn_relu_rows_body(out, inp, mean, sc, sh, C, lo, hi, 1);
    else bn_relu_rows_body(out, inp, mean, sc, sh, C, lo, hi, 0);
}

#ifdef __x86_64__
__attribute__((target("avx2,fma"))) static void bn_relu_rows_avx2(float *out, const float *inp, const float *mean,
                                                                 const float *sc, const float *sh, long C,
                                                                 long lo, long hi, int fma)
{
    if (fma) bn_relu_rows_body(out, inp, mean, sc, sh, C, lo, hi, 1);
    else bn_relu_rows_body(out, inp, mean, sc, sh, C, lo, hi, 0);
}
#endif

int nn_batchnorm_relu_train(nn_cache *c, float *out, const float *inp, const float *w, const float *b,
                            const float *mean, const float *var, long M, long C, char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err);
    if (!p) return -1;
    nn_bn_arith a = prim_arith(p);
    if (a == NN_BN_PRIM) {
        void *ptr[] = {(void *)inp, out, (void *)mean, (void *)var, (void *)w, (void *)b};
        if (nn_exec(c, p, ptr, err)) return -1;
        return nn_act_forward(c, NN_RELU, out, out, M * C, err);
    }
    float *sc = p->tmp;
    bn_scale(sc, w, var, C);
    int fma = a == NN_BN_FMA;
#ifdef __x86_64__
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    int avx2 = 0;
#endif
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        long lo = M * t / nt, hi = M * (t + 1) / nt;
#ifdef __x86_64__
        if (avx2)
            bn_relu_rows_avx2(out, inp, mean, sc, b, C, lo, hi, fma);
        else
#endif
            bn_relu_rows_base(out, inp, mean, sc, b, C, lo, hi, fma);
    }
    return 0;
}

int nn_batchnorm_apply_train(nn_cache *c, float *out, const float *inp, const float *w,
                             const float *b, const float *mean, const float *var, long M, long C,
                             char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err);
    if (!p) return -1;
    void *ptr[] = {(void *)inp, out, (void *)mean, (void *)var, (void *)w, (void *)b};
    return nn_exec(c, p, ptr, err);
}

int nn_batchnorm_forward_eval(nn_cache *c, float *out, const float *inp, const float *w,
                              const float *b, const float *running_mean, const float *running_var,
                              long M, long C, char *err)
{
    long key[] = {M, C};
    nn_prim *p = nn_cache_find(c, NN_K_BN_EVAL, key, 2);
    if (!p) {
        dnnl_batch_normalization_desc_t d;
        if (bn_desc(&d, dnnl_forward_inference, dnnl_use_global_stats, M, C, err)) return -1;
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                      DNNL_ARG_SHIFT};
        p = nn_cache_add(c, NN_K_BN_EVAL, key, 2, &d, NULL, NULL, args, 6, 0, err);
        if (!p) return -1;
    }
    void *ptr[] = {(void *)inp, out, (void *)running_mean, (void *)running_var, (void *)w, (void *)b};
    return nn_exec(c, p, ptr, err);
}

/* The backward by nn_batchnorm_backward_rows (oneDNN's adds per-thread partial sums: bits that
 * depend on the thread count); its scratch is the training forward's temporary. */
int nn_batchnorm_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *b, const float *mean,
                          const float *var, long M, long C, char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err);
    if (!p) return -1;
    (void)b;
    nn_batchnorm_backward_rows(dinp, dw, db, dout, inp, w, mean, var, NN_BN_EPS, M, C, (double *)p->tmp);
    return 0;
}

int nn_batchnorm_relu_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *b, const float *mean,
                               const float *var, long M, long C, int bf16, char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err);
    if (!p) return -1;
    nn_bn_arith a = bf16 ? NN_BN_RELU_BF16 : prim_arith(p);
    if (a == NN_BN_PRIM) { /* the primitive's output into dinp, read there for ReLU's mask */
        void *ptr[] = {(void *)inp, dinp, (void *)mean, (void *)var, (void *)w, (void *)b};
        if (nn_exec(c, p, ptr, err)) return -1;
    }
    nn_batchnorm_relu_backward_rows(dinp, dw, db, dout, inp, w, b, mean, var, dinp, a, NN_BN_EPS, M, C,
                                    (double *)p->tmp);
    return 0;
}

int nn_batchnorm_relu_backward_sink(nn_cache *c, const nn_rows_sink *sink, float *scratch, float *dw, float *db,
                                    const float *dout, const float *inp, const float *w, const float *b,
                                    const float *mean, const float *var, long M, long C, char *err)
{
    nn_prim *p = bn_train_prim(c, M, C, err); /* its scratch holds the sums (as above) */
    if (!p) return -1;
    nn_batchnorm_relu_backward_rows_sink(sink, scratch, dw, db, dout, inp, w, b, mean, var, NN_BN_RELU_BF16,
                                         NN_BN_EPS, M, C, (double *)p->tmp);
    return 0;
}
