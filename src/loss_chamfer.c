/* loss_chamfer.c -- Chamfer L2 between predicted and ground-truth point sets of k points each. */
#include "losses.h"

static float d2(const float *a, const float *b)
{
    float x = a[0] - b[0], y = a[1] - b[1], z = a[2] - b[2];
    return x * x + y * y + z * z;
}

/* index of the nearest of the k points q to p (lowest index on ties) */
static long nearest(const float *p, const float *q, long k)
{
    long best = 0;
    float bd = d2(p, q);
    for (long j = 1; j < k; j++) {
        float d = d2(p, q + 3 * j);
        if (d < bd) { bd = d; best = j; }
    }
    return best;
}

/* Per-row values summed in LOSS_BLOCKS fixed blocks, then the blocks in order: the same bits for
 * any thread count and any run (an OpenMP reduction combines in thread arrival order). */
#define LOSS_BLOCKS 64

double loss_chamfer_forward(const float *pred, const float *gt, const uint8_t *use, long M, long k)
{
    double part[LOSS_BLOCKS], total = 0;
    long n = 0;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < LOSS_BLOCKS; blk++) {
        double t = 0;
        for (long m = M * blk / LOSS_BLOCKS; m < M * (blk + 1) / LOSS_BLOCKS; m++) {
            if (!use[m]) continue;
            const float *p = pred + m * k * 3, *g = gt + m * k * 3;
            double a = 0, b = 0;
            for (long i = 0; i < k; i++) a += d2(p + 3 * i, g + 3 * nearest(p + 3 * i, g, k));
            for (long j = 0; j < k; j++) b += d2(g + 3 * j, p + 3 * nearest(g + 3 * j, p, k));
            t += a / k + b / k;
        }
        part[blk] = t;
    }
    for (int blk = 0; blk < LOSS_BLOCKS; blk++) total += part[blk];
    for (long m = 0; m < M; m++) n += use[m] != 0;
    return n ? total / n : 0.0;
}

void loss_chamfer_backward(float *dpred, const float *pred, const float *gt, const uint8_t *use, long M,
                           long k, double dloss)
{
    long n = 0;
    for (long m = 0; m < M; m++) n += use[m] != 0;
    if (!n) return;
    float s = (float)(2.0 * dloss / ((double)n * k));
#pragma omp parallel for schedule(static)
    for (long m = 0; m < M; m++) {
        if (!use[m]) continue;
        const float *p = pred + m * k * 3, *g = gt + m * k * 3;
        float *dp = dpred + m * k * 3;
        for (long i = 0; i < k; i++) {
            const float *q = g + 3 * nearest(p + 3 * i, g, k);
            for (int d = 0; d < 3; d++) dp[3 * i + d] += s * (p[3 * i + d] - q[d]);
        }
        for (long j = 0; j < k; j++) {
            long i = nearest(g + 3 * j, p, k);
            for (int d = 0; d < 3; d++) dp[3 * i + d] += s * (p[3 * i + d] - g[3 * j + d]);
        }
    }
}
