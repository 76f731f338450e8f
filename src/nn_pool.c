/* nn_pool.c -- the hand-written loops of the layer library: max-pool over a neighbourhood (with its
 * backward) and row gathers / scatter-adds (OpenMP where rows are independent).
 */
#include "nn.h"

#include <string.h>

/* o (C) = max over the k rows of x (k,C); a (C) = the winning row (the first on ties). */
static void max_group(float *o, int32_t *a, const float *x, long k, long C)
{
    for (long j = 0; j < C; j++) { o[j] = x[j]; a[j] = 0; }
    for (long i = 1; i < k; i++) {
        const float *xi = x + i * C;
#pragma omp simd
        for (long j = 0; j < C; j++) { /* branch-free (a mask), the same comparisons, vectorised */
            float v = xi[j], cur = o[j];
            int32_t gt = -(int32_t)(v > cur);
            o[j] = v > cur ? v : cur;
            a[j] = (a[j] & ~gt) | ((int32_t)i & gt);
        }
    }
}

void nn_maxpool_forward(float *out, int32_t *arg, const float *inp, long G, long k, long C)
{
#pragma omp parallel for schedule(static)
    for (long g = 0; g < G; g++) max_group(out + g * C, arg + g * C, inp + g * k * C, k, C);
}

void nn_maxpool_forward_bf16(float *out, int32_t *arg, uint16_t *inb, const float *inp, long G, long k, long C)
{
#pragma omp parallel for schedule(static)
    for (long g = 0; g < G; g++) {
        max_group(out + g * C, arg + g * C, inp + g * k * C, k, C);
        nn_to_bf16_serial_stream(inb + g * k * C, inp + g * k * C, k * C); /* the group's rows, still in cache */
    }
}

void nn_maxpool_backward(float *dinp, const float *dout, const int32_t *arg, long G, long k, long C)
{
#pragma omp parallel for schedule(static)
    for (long g = 0; g < G; g++)
        for (long j = 0; j < C; j++) dinp[(g * k + arg[g * C + j]) * C + j] += dout[g * C + j];
}

void nn_maxpool_backward_set(float *dinp, const float *dout, const int32_t *arg, long G, long k, long C)
{
#pragma omp parallel for schedule(static)
    for (long g = 0; g < G; g++) {
        float *d = dinp + g * k * C; /* the group's k rows zeroed while in cache, then the same += */
        memset(d, 0, sizeof(float) * (size_t)(k * C));
        for (long j = 0; j < C; j++) d[arg[g * C + j] * C + j] += dout[g * C + j];
    }
}

void nn_gather_rows(float *out, const float *src, const int32_t *idx, long n, long C)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) memcpy(out + i * C, src + (long)idx[i] * C, sizeof(float) * (size_t)C);
}

void nn_scatter_add_rows(float *dsrc, const float *dout, const int32_t *idx, long n, long C)
{
    for (long i = 0; i < n; i++) {
        float *d = dsrc + (long)idx[i] * C;
        const float *s = dout + i * C;
        for (long j = 0; j < C; j++) d[j] += s[j];
    }
}
