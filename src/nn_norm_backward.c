/* nn_norm_backward.c -- the reductions of the normalisations' backwards, written here so that every
 * sum runs in one order fixed by the shapes, whatever the thread count: oneDNN 2.6's layer and batch
 * normalisation backwards add per-thread partial sums of the scale / shift gradients (and batch
 * normalisation's input gradient depends on them), so their bits changed with the thread count
 * (tests/bench/bench_dnn_threads.c). The column sums run in double over blocks of rows
 * (nn_row_block_sums: each block in row order, the blocks in order), the row loops `omp simd` across
 * the columns (as the batch statistics in nn_batchnorm.c).
 * The per-column factors (1 / sqrt(var + eps), w times it, the sums rounded to float) are formed
 * once per column instead of once per element, by the same float operations (the same bits). The
 * row loops are compiled twice, for the baseline ISA and for AVX2 (picked at run time): with
 * contraction off (ISO C) every element sees the same operations in the same order either way.
 */
#include "nn.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- batch normalisation: the row loops, one body compiled per ISA ---- */

/* sw[j] += sum_rows dout * xhat, sb[j] += sum_rows dout over the columns lo..hi-1, rows in order. */
static inline __attribute__((always_inline)) void bn_colsums_body(double *sw, double *sb, const float *dout,
                                                                  const float *inp, const float *mean,
                                                                  const float *rstd, long M, long C, long lo,
                                                                  long hi)
{
    for (long i = 0; i < M; i++) {
        const float *x = inp + i * C, *g = dout + i * C;
#pragma omp simd
        for (long j = lo; j < hi; j++) {
            sw[j] += (double)g[j] * ((x[j] - mean[j]) * rstd[j]);
            sb[j] += g[j];
        }
    }
}

/* dinp += wr * (dout - (fsb + xhat * fsw) * inv_m) over the rows lo..hi-1 (all C columns). */
static inline __attribute__((always_inline)) void bn_dinp_body(float *dinp, const float *dout, const float *inp,
                                                               const float *mean, const float *rstd,
                                                               const float *wr, const float *fsb,
                                                               const float *fsw, float inv_m, long C, long lo,
                                                               long hi)
{
    for (long i = lo; i < hi; i++) {
        const float *x = inp + i * C, *g = dout + i * C;
        float *d = dinp + i * C;
#pragma omp simd
        for (long j = 0; j < C; j++) {
            float xhat = (x[j] - mean[j]) * rstd[j];
            d[j] += wr[j] * (g[j] - (fsb[j] + xhat * fsw[j]) * inv_m);
        }
    }
}

static void bn_colsums_base(double *sw, double *sb, const float *dout, const float *inp, const float *mean,
                            const float *rstd, long M, long C, long lo, long hi)
{
    bn_colsums_body(sw, sb, dout, inp, mean, rstd, M, C, lo, hi);
}

static void bn_dinp_base(float *dinp, const float *dout, const float *inp, const float *mean, const float *rstd,
                         const float *wr, const float *fsb, const float *fsw, float inv_m, long C, long lo,
                         long hi)
{
    bn_dinp_body(dinp, dout, inp, mean, rstd, wr, fsb, fsw, inv_m, C, lo, hi);
}

#ifdef __x86_64__
__attribute__((target("avx2"))) static void bn_colsums_avx2(double *sw, double *sb, const float *dout,
                                                            const float *inp, const float *mean,
                                                            const float *rstd, long M, long C, long lo,
                                                            long hi)
{
    bn_colsums_body(sw, sb, dout, inp, mean, rstd, M, C, lo, hi);
}

__attribute__((target("avx2"))) static void bn_dinp_avx2(float *dinp, const float *dout, const float *inp,
                                                         const float *mean, const float *rstd, const float *wr,
                                                         const float *fsb, const float *fsw, float inv_m, long C,
                                                         long lo, long hi)
{
    bn_dinp_body(dinp, dout, inp, mean, rstd, wr, fsb, fsw, inv_m, C, lo, hi);
}
#endif

static int have_avx2(void)
{
#ifdef __x86_64__
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* ---- batch normalisation followed by ReLU: ReLU's backward folded into the row loops ---- */

/* How the ReLU output was formed, so that its mask (output > 0) is known from inp: RELU_MULADD,
 * RELU_FMA: y = s (x - mean) + b, or fma(x - mean, s, b), with s = w / sqrt(var + eps), the mask y > 0;
 * RELU_BF16: y as RELU_MULADD rounded to bf16 with subnormals to zero (nn_batchnorm_relu_bf16): the
 * mask y >= FLT_MIN; RELU_ARRAY: y given (the primitive's output), the mask y > 0. */
enum { RELU_MULADD = 1, RELU_FMA, RELU_BF16, RELU_ARRAY };

/* bn_colsums_body with dout replaced by ReLU's backward of it, as oneDNN's (use_dst_for_bwd) forms it:
 * g where ReLU's output is positive, else 0 g (a signed zero); written as g times a selected 1 or 0
 * (g 1 is g), in the loop itself: the form GCC vectorises (a select of g and 0 g it leaves scalar, as it
 * does the same select in an inlined helper). */
static inline __attribute__((always_inline)) void bn_relu_colsums_body(double *sw, double *sb, const float *dout,
                                                                       const float *inp, const float *mean,
                                                                       const float *rstd, const float *sc,
                                                                       const float *sh, const float *ym, long M,
                                                                       long C, long lo, long hi, int relu)
{
    for (long i = 0; i < M; i++) {
        const float *x = inp + i * C, *g = dout + i * C, *yr = relu == RELU_ARRAY ? ym + i * C : x;
#pragma omp simd
        for (long j = lo; j < hi; j++) {
            float t = x[j] - mean[j];
            float y = relu == RELU_ARRAY ? yr[j] : relu == RELU_FMA ? fmaf(t, sc[j], sh[j]) : sc[j] * t + sh[j];
            float on = relu == RELU_BF16 ? (y >= FLT_MIN ? 1.0f : 0.0f) : (y > 0 ? 1.0f : 0.0f);
            float gv = g[j] * on; /* ReLU's backward: g, or 0 g (a signed zero) */
            sw[j] += (double)gv * (t * rstd[j]);
            sb[j] += gv;
        }
    }
}

/* bn_dinp_body likewise, dinp set (0 + the value, as accumulated onto zeros) rather than accumulated;
 * ym may alias dinp (each element read before it is written). */
static inline __attribute__((always_inline)) void bn_relu_dinp_body(float *dinp, const float *dout,
                                                                    const float *inp, const float *mean,
                                                                    const float *rstd, const float *wr,
                                                                    const float *fsb, const float *fsw,
                                                                    const float *sc, const float *sh,
                                                                    const float *ym, float inv_m, long C,
                                                                    long lo, long hi, int relu)
{
    for (long i = lo; i < hi; i++) {
        const float *x = inp + i * C, *g = dout + i * C, *yr = relu == RELU_ARRAY ? ym + i * C : x;
        float *d = dinp + i * C;
#pragma omp simd
        for (long j = 0; j < C; j++) {
            float t = x[j] - mean[j];
            float y = relu == RELU_ARRAY ? yr[j] : relu == RELU_FMA ? fmaf(t, sc[j], sh[j]) : sc[j] * t + sh[j];
            float on = relu == RELU_BF16 ? (y >= FLT_MIN ? 1.0f : 0.0f) : (y > 0 ? 1.0f : 0.0f);
            float gv = g[j] * on; /* ReLU's backward: g, or 0 g (a signed zero) */
            float xhat = t * rstd[j];
            d[j] = 0.0f + wr[j] * (gv - (fsb[j] + xhat * fsw[j]) * inv_m);
        }
    }
}

/* The bodies specialised per ReLU form (a constant in each call), inlined into the baseline-ISA and
 * the AVX2 + FMA copies below. */
static inline __attribute__((always_inline)) void bn_relu_colsums_forms(double *sw, double *sb, const float *dout,
                                                                        const float *inp, const float *mean,
                                                                        const float *rstd, const float *sc,
                                                                        const float *sh, const float *ym, long M,
                                                                        long C, long lo, long hi, int relu)
{
    if (relu == RELU_MULADD) bn_relu_colsums_body(sw, sb, dout, inp, mean, rstd, sc, sh, ym, M, C, lo, hi, RELU_MULADD);
    else if (relu == RELU_FMA) bn_relu_colsums_body(sw, sb, dout, inp, mean, rstd, sc, sh, ym, M, C, lo, hi, RELU_FMA);
    else if (relu == RELU_BF16) bn_relu_colsums_body(sw, sb, dout, inp, mean, rstd, sc, sh, ym, M, C, lo, hi, RELU_BF16);
    else bn_relu_colsums_body(sw, sb, dout, inp, mean, rstd, sc, sh, ym, M, C, lo, hi, RELU_ARRAY);
}

static inline __attribute__((always_inline)) void bn_relu_dinp_forms(float *dinp, const float *dout,
                                                                     const float *inp, const float *mean,
                                                                     const float *rstd, const float *wr,
                                                                     const float *fsb, const float *fsw,
                                                                     const float *sc, const float *sh,
                                                                     const float *ym, float inv_m, long C, long lo,
                                                                     long hi, int relu)
{
    if (relu == RELU_MULADD)
        bn_relu_dinp_body(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, RELU_MULADD);
    else if (relu == RELU_FMA)
        bn_relu_dinp_body(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, RELU_FMA);
    else if (relu == RELU_BF16)
        bn_relu_dinp_body(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, RELU_BF16);
    else
        bn_relu_dinp_body(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, RELU_ARRAY);
}

static void bn_relu_colsums_base(double *sw, double *sb, const float *dout, const float *inp, const float *mean,
                                 const float *rstd, const float *sc, const float *sh, const float *ym, long M,
                                 long C, long lo, long hi, int relu)
{
    bn_relu_colsums_forms(sw, sb, dout, inp, mean, rstd, sc, sh, ym, M, C, lo, hi, relu);
}

static void bn_relu_dinp_base(float *dinp, const float *dout, const float *inp, const float *mean,
                              const float *rstd, const float *wr, const float *fsb, const float *fsw,
                              const float *sc, const float *sh, const float *ym, float inv_m, long C, long lo,
                              long hi, int relu)
{
    bn_relu_dinp_forms(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, relu);
}

#ifdef __x86_64__
__attribute__((target("avx2,fma"))) static void bn_relu_colsums_avx2(double *sw, double *sb, const float *dout,
                                                                    const float *inp, const float *mean,
                                                                    const float *rstd, const float *sc,
                                                                    const float *sh, const float *ym, long M,
                                                                    long C, long lo, long hi, int relu)
{
    bn_relu_colsums_forms(sw, sb, dout, inp, mean, rstd, sc, sh, ym, M, C, lo, hi, relu);
}

__attribute__((target("avx2,fma"))) static void bn_relu_dinp_avx2(float *dinp, const float *dout, const float *inp,
                                                                 const float *mean, const float *rstd,
                                                                 const float *wr, const float *fsb,
                                                                 const float *fsw, const float *sc,
                                                                 const float *sh, const float *ym, float inv_m,
                                                                 long C, long lo, long hi, int relu)
{
    bn_relu_dinp_forms(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, relu);
}
#endif

/* The inputs of the row loops of a block (nn_row_sums_fn's arg). */
typedef struct {
    const float *dout, *inp, *mean, *var, *rstd, *sc, *sh, *ym;
    float eps;
    long C;
    int relu, avx2;
} sums_arg;

/* LayerNorm's block: part (2C) += sum over rows r0..r1-1 of dout * xhat, then of dout, with xhat =
 * (inp - mean[row]) * rstd[row] (statistics per row). */
static void ln_sums_block(double *part, long r0, long r1, const void *arg)
{
    const sums_arg *a = arg;
    long C = a->C;
    double *sw = part, *sb = part + C;
    for (long i = r0; i < r1; i++) {
        const float *x = a->inp + i * C, *g = a->dout + i * C;
        float mu = a->mean[i], rstd = 1.0f / sqrtf(a->var[i] + a->eps);
#pragma omp simd
        for (long j = 0; j < C; j++) {
            sw[j] += (double)g[j] * ((x[j] - mu) * rstd);
            sb[j] += g[j];
        }
    }
}

/* dw (C) += sum_rows dout * xhat, db (C) += sum_rows dout, with xhat = (inp - mean[row]) * rstd[row]
 * (layer normalisation: statistics per row); acc holds nn_bn_acc_doubles(C) doubles. */
void nn_layernorm_param_grads(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                              const float *var, float eps, long M, long C, double *acc)
{
    double *sw = acc, *sb = acc + C;
    sums_arg a = {.dout = dout, .inp = inp, .mean = mean, .var = var, .eps = eps, .C = C};
    memset(acc, 0, sizeof(double) * (size_t)(2 * C));
    nn_row_block_sums(acc, acc + 2 * C, 2 * C, M, ln_sums_block, &a);
    for (long j = 0; j < C; j++) {
        if (dw) dw[j] += (float)sw[j];
        if (db) db[j] += (float)sb[j];
    }
}

/* After the column sums sw (dgamma) and sb (dbeta) of the columns [lo, hi): dw += dgamma, db += dbeta
 * (either may be NULL), and the input-gradient sweep's per-column factors w rstd (0 without dinp) and
 * the two sums rounded to float. */
static void col_factors(float *dw, float *db, float *wr, float *fsb, float *fsw, const double *sw,
                        const double *sb, const float *w, const float *rstd, int dinp, long lo, long hi)
{
    for (long j = lo; j < hi; j++) {
        if (dw) dw[j] += (float)sw[j];
        if (db) db[j] += (float)sb[j];
        wr[j] = dinp ? w[j] * rstd[j] : 0.0f;
        fsb[j] = (float)sb[j];
        fsw[j] = (float)sw[j];
    }
}

/* BatchNorm's block (statistics per column): part (2C) += sum over rows r0..r1-1 of dout xhat, then of
 * dout; with a ReLU form (relu != 0), dout masked by ReLU's backward first. */
static void bn_sums_block(double *part, long r0, long r1, const void *arg)
{
    const sums_arg *a = arg;
    long C = a->C, n = r1 - r0;
    const float *g = a->dout + r0 * C, *x = a->inp + r0 * C, *ym = a->ym ? a->ym + r0 * C : NULL;
    if (!a->relu) {
#ifdef __x86_64__
        if (a->avx2)
            bn_colsums_avx2(part, part + C, g, x, a->mean, a->rstd, n, C, 0, C);
        else
#endif
            bn_colsums_base(part, part + C, g, x, a->mean, a->rstd, n, C, 0, C);
        return;
    }
#ifdef __x86_64__
    if (a->avx2)
        bn_relu_colsums_avx2(part, part + C, g, x, a->mean, a->rstd, a->sc, a->sh, ym, n, C, 0, C, a->relu);
    else
#endif
        bn_relu_colsums_base(part, part + C, g, x, a->mean, a->rstd, a->sc, a->sh, ym, n, C, 0, C, a->relu);
}

/* The batch normalisation backward over rows (statistics per column, inp (M,C)):
 * dbeta = sum_rows dout, dgamma = sum_rows dout * xhat, and
 * dinp += w * rstd * (dout - (dbeta + xhat * dgamma) / M); dw += dgamma, db += dbeta.
 * acc holds 2C + nn_bn_acc_doubles(C) doubles: the two sums, four rows of C floats (rstd, w rstd
 * and the sums rounded to float), then the sums' scratch. */
void nn_batchnorm_backward_rows(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, const float *mean, const float *var, float eps, long M, long C,
                                double *acc)
{
    double *sw = acc, *sb = acc + C;
    float *rstd = (float *)(acc + 2 * C), *wr = rstd + C, *fsb = wr + C, *fsw = fsb + C;
    int avx2 = have_avx2();
    float inv_m = 1.0f / (float)M;
    for (long j = 0; j < C; j++) {
        sw[j] = sb[j] = 0;
        rstd[j] = 1.0f / sqrtf(var[j] + eps);
    }
    sums_arg a = {.dout = dout, .inp = inp, .mean = mean, .rstd = rstd, .C = C, .avx2 = avx2};
    nn_row_block_sums(acc, acc + 4 * C, 2 * C, M, bn_sums_block, &a);
    col_factors(dw, db, wr, fsb, fsw, sw, sb, w, rstd, dinp != NULL, 0, C);
    if (!dinp) return;
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        long r0 = M * t / nt, r1 = M * (t + 1) / nt;
        if (avx2)
            bn_dinp_avx2(dinp, dout, inp, mean, rstd, wr, fsb, fsw, inv_m, C, r0, r1);
        else
            bn_dinp_base(dinp, dout, inp, mean, rstd, wr, fsb, fsw, inv_m, C, r0, r1);
    }
}

/* Rows of a sink's piece: about SINK_BYTES of f32 gradient (the piece is written, then read by the
 * sink, in the L2 cache), a multiple of the sink's align. */
enum { SINK_BYTES = 128 << 10 };

static long sink_piece_rows(long C, long align)
{
    long rows = SINK_BYTES / ((long)sizeof(float) * C);
    if (align < 1) align = 1;
    rows = rows / align * align;
    return rows > align ? rows : align;
}

long nn_bn_sink_scratch(long C, long align)
{
    return (long)omp_get_max_threads() * sink_piece_rows(C, align) * C;
}

/* bn_relu_dinp over rows [lo, hi) in the ISA picked (avx2: AVX2 + FMA, else the baseline copy). */
static void bn_relu_dinp_isa(int avx2, float *dinp, const float *dout, const float *inp, const float *mean,
                             const float *rstd, const float *wr, const float *fsb, const float *fsw, const float *sc,
                             const float *sh, const float *ym, float inv_m, long C, long lo, long hi, int relu)
{
#ifdef __x86_64__
    if (avx2) {
        bn_relu_dinp_avx2(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, relu);
        return;
    }
#endif
    (void)avx2;
    bn_relu_dinp_base(dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, sh, ym, inv_m, C, lo, hi, relu);
}

/* nn_batchnorm_relu_backward_rows' body: the input gradient into dinp, or (dinp NULL) piece by piece
 * into the thread's slice of scratch and on to sink. */
static void bn_relu_backward(float *dinp, const nn_rows_sink *sink, float *scratch, float *dw, float *db,
                             const float *dout, const float *inp, const float *w, const float *b,
                             const float *mean, const float *var, const float *y, nn_bn_arith relu, float eps,
                             long M, long C, double *acc)
{
    double *sw = acc, *sb = acc + C;
    float *rstd = (float *)(acc + 2 * C), *wr = rstd + C, *fsb = wr + C, *fsw = fsb + C, *sc = fsw + C;
    int form = relu == NN_BN_MULADD ? RELU_MULADD : relu == NN_BN_FMA ? RELU_FMA
             : relu == NN_BN_RELU_BF16 ? RELU_BF16 : RELU_ARRAY;
#ifdef __x86_64__
    int avx2 = have_avx2() && __builtin_cpu_supports("fma");
#else
    int avx2 = 0;
#endif
    float inv_m = 1.0f / (float)M;
    for (long j = 0; j < C; j++) {
        sw[j] = sb[j] = 0;
        rstd[j] = 1.0f / sqrtf(var[j] + eps);
        sc[j] = w[j] / sqrtf(var[j] + eps); /* nn_batchnorm_relu_train's scale */
    }
    sums_arg a = {.dout = dout, .inp = inp, .mean = mean, .rstd = rstd, .sc = sc, .sh = b,
                  .ym = form == RELU_ARRAY ? y : NULL, .C = C, .relu = form, .avx2 = avx2};
    /* the scratch after sc: acc + 5C doubles hold 2C + 6C floats */
    nn_row_block_sums(acc, acc + 5 * C, 2 * C, M, bn_sums_block, &a);
    col_factors(dw, db, wr, fsb, fsw, sw, sb, w, rstd, 1, 0, C);
    const float *ym = form == RELU_ARRAY ? y : NULL;
    long piece = sink ? sink_piece_rows(C, sink->align) : 0, n_pieces = sink ? (M + piece - 1) / piece : 0;
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        if (!sink) {
            long r0 = M * t / nt, r1 = M * (t + 1) / nt;
            bn_relu_dinp_isa(avx2, dinp, dout, inp, mean, rstd, wr, fsb, fsw, sc, b, ym, inv_m, C, r0, r1, form);
        } else {
            float *d = scratch + (long)t * piece * C;
#pragma omp for schedule(static)
            for (long q = 0; q < n_pieces; q++) { /* rows [r0, r1) as above, into d, then to the sink */
                long r0 = q * piece, n = M - r0 < piece ? M - r0 : piece;
                const float *g = dout + r0 * C, *x = inp + r0 * C, *yq = ym ? ym + r0 * C : NULL;
                bn_relu_dinp_isa(avx2, d, g, x, mean, rstd, wr, fsb, fsw, sc, b, yq, inv_m, C, 0, n, form);
                sink->fn(d, r0, r0 + n, sink->arg);
            }
        }
    }
}

/* acc holds 3C + nn_bn_acc_doubles(C) doubles: as nn_batchnorm_backward_rows' then the scale's C
 * floats, then the sums' scratch. */
void nn_batchnorm_relu_backward_rows(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                     const float *w, const float *b, const float *mean, const float *var,
                                     const float *y, nn_bn_arith relu, float eps, long M, long C, double *acc)
{
    bn_relu_backward(dinp, NULL, NULL, dw, db, dout, inp, w, b, mean, var, y, relu, eps, M, C, acc);
}

void nn_batchnorm_relu_backward_rows_sink(const nn_rows_sink *sink, float *scratch, float *dw, float *db,
                                          const float *dout, const float *inp, const float *w, const float *b,
                                          const float *mean, const float *var, nn_bn_arith relu, float eps,
                                          long M, long C, double *acc)
{
    bn_relu_backward(NULL, sink, scratch, dw, db, dout, inp, w, b, mean, var, NULL, relu, eps, M, C, acc);
}

/* nn_batchnorm_backward_rows in pieces of consecutive rows, the same sums and bits (see nn.h: pieces
 * of multiples of NN_ROW_BLOCK rows but the last): acc (nn_bn_acc_doubles(C)) with its 2C sums zeroed
 * by the caller, then nn_batchnorm_sums_rows for each piece in row order, nn_batchnorm_sums_grads
 * once, then nn_batchnorm_dinp_rows for each piece (M: the rows of all pieces). */
void nn_batchnorm_sums_rows(double *acc, const float *dout, const float *inp, const float *mean, const float *var,
                            float eps, long rows, long C)
{
    float *rstd = (float *)(acc + 2 * C); /* formed per piece: the same floats each time */
    for (long j = 0; j < C; j++) rstd[j] = 1.0f / sqrtf(var[j] + eps);
    sums_arg a = {.dout = dout, .inp = inp, .mean = mean, .rstd = rstd, .C = C, .avx2 = have_avx2()};
    nn_row_block_sums(acc, acc + 3 * C, 2 * C, rows, bn_sums_block, &a);
}
void nn_batchnorm_sums_grads(float *dw, float *db, const double *acc, long C)
{
    for (long j = 0; j < C; j++) {
        if (dw) dw[j] += (float)acc[j];
        if (db) db[j] += (float)acc[C + j];
    }
}

void nn_batchnorm_dinp_rows(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                            const float *var, float eps, long M, long rows, long C, const double *acc)
{
    const double *sw = acc, *sb = acc + C;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < rows; i++) {
        const float *x = inp + i * C, *g = dout + i * C;
        float *d = dinp + i * C;
        float inv_m = 1.0f / (float)M;
#pragma omp simd
        for (long j = 0; j < C; j++) {
            float rstd = 1.0f / sqrtf(var[j] + eps), xhat = (x[j] - mean[j]) * rstd;
            d[j] += w[j] * rstd * (g[j] - ((float)sb[j] + xhat * (float)sw[j]) * inv_m);
        }
    }
}
