/* bicubic.c -- PyTorch-compatible bicubic reads of a patch grid (see bicubic.h). */
#include "bicubic.h"

#include <math.h>

static const float A = -0.75f;

static float cubic_near(float x) { return ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f; }      /* |x| <= 1 */
static float cubic_far(float x) { return ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A; } /* 1 < |x| < 2 */

void bicubic_taps(int g, int S, int dst, int idx[4], float w[4])
{
    float scale = (float)g / (float)S;
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    float f = floorf(src);
    int i0 = (int)f;
    float t = src - f;
    w[0] = cubic_far(t + 1.0f);
    w[1] = cubic_near(t);
    w[2] = cubic_near(1.0f - t);
    w[3] = cubic_far(2.0f - t);
    for (int k = 0; k < 4; k++) {
        int i = i0 - 1 + k;
        idx[k] = i < 0 ? 0 : (i > g - 1 ? g - 1 : i);
    }
}

/* out (C) = sum over the 16 taps in order (rows a, then columns b) of wy[a] wx[b] v, starting from 0;
 * compiled for the baseline ISA and for AVX2 (picked at run time): per channel the same operations in
 * the same order, contraction being off, so the same bits. Channels go in blocks of TAP_BLOCK whose
 * sums stay in registers over the 16 taps (one store per block, where adding into out stored it 16
 * times), the last C % TAP_BLOCK channels the same way one at a time. */
enum { TAP_BLOCK = 32 };
typedef float tap_vec __attribute__((vector_size(32), aligned(4), may_alias)); /* 8 floats, any alignment, read over float data */

static inline __attribute__((always_inline)) void taps_sum(const float *grid, int g, int C, const int ry[4],
                                                           const int cx[4], const float wy[4], const float wx[4],
                                                           float *out)
{
    const float *v[16];
    float wgt[16];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            v[a * 4 + b] = grid + ((long)ry[a] * g + cx[b]) * C;
            wgt[a * 4 + b] = wy[a] * wx[b];
        }
    int c0 = 0;
    for (; c0 + TAP_BLOCK <= C; c0 += TAP_BLOCK) {
        tap_vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        for (int k = 0; k < 16; k++) {
            const tap_vec *p = (const tap_vec *)(v[k] + c0);
            float w = wgt[k];
            s0 += w * p[0];
            s1 += w * p[1];
            s2 += w * p[2];
            s3 += w * p[3];
        }
        tap_vec *o = (tap_vec *)(out + c0);
        o[0] = s0;
        o[1] = s1;
        o[2] = s2;
        o[3] = s3;
    }
    for (int c = c0; c < C; c++) {
        float acc = 0.0f;
        for (int k = 0; k < 16; k++) acc += wgt[k] * v[k][c];
        out[c] = acc;
    }
}

static void taps_sum_base(const float *grid, int g, int C, const int ry[4], const int cx[4], const float wy[4],
                          const float wx[4], float *out)
{
    taps_sum(grid, g, C, ry, cx, wy, wx, out);
}

#ifdef __x86_64__
__attribute__((target("avx2"))) static void taps_sum_avx2(const float *grid, int g, int C, const int ry[4],
                                                          const int cx[4], const float wy[4], const float wx[4],
                                                          float *out)
{
    taps_sum(grid, g, C, ry, cx, wy, wx, out);
}
#endif

void bicubic_sample(const float *grid, int g, int C, int S, int row, int col, float *out)
{
    int ry[4], cx[4];
    float wy[4], wx[4];
    bicubic_taps(g, S, row, ry, wy);
    bicubic_taps(g, S, col, cx, wx);
#ifdef __x86_64__
    if (C >= 8 && __builtin_cpu_supports("avx2")) {
        taps_sum_avx2(grid, g, C, ry, cx, wy, wx, out);
        return;
    }
#endif
    taps_sum_base(grid, g, C, ry, cx, wy, wx, out);
}

float bicubic_sample1(const float *grid, int g, int S, int row, int col)
{
    float v;
    bicubic_sample(grid, g, 1, S, row, col, &v);
    return v;
}
