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

/* out (C) = sum over the 16 taps in order (rows a, then columns b) of wy[a] wx[b] v; compiled for the
 * baseline ISA and for AVX2 (picked at run time): per channel the same operations in the same order,
 * contraction being off, so the same bits. */
static inline __attribute__((always_inline)) void taps_sum(const float *grid, int g, int C, const int ry[4],
                                                           const int cx[4], const float wy[4], const float wx[4],
                                                           float *out)
{
    for (int c = 0; c < C; c++) out[c] = 0.0f;
    for (int a = 0; a < 4; a++) {
        for (int b = 0; b < 4; b++) {
            const float *v = grid + ((long)ry[a] * g + cx[b]) * C;
            float wgt = wy[a] * wx[b];
#pragma omp simd
            for (int c = 0; c < C; c++) out[c] += wgt * v[c];
        }
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
