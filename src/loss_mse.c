/* loss_mse.c -- mean squared error over all elements, with its backward. */
#include "losses.h"

/* Sums in LOSS_BLOCKS fixed blocks, then the blocks in order: the same bits for any thread count
 * and any run (an OpenMP reduction combines in thread arrival order). */
#define LOSS_BLOCKS 64

double loss_mse_forward(const float *pred, const float *target, long M, long D)
{
    double part[LOSS_BLOCKS], s = 0;
    long n = M * D;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < LOSS_BLOCKS; blk++) {
        double a = 0;
        for (long i = n * blk / LOSS_BLOCKS; i < n * (blk + 1) / LOSS_BLOCKS; i++) {
            double d = (double)pred[i] - target[i];
            a += d * d;
        }
        part[blk] = a;
    }
    for (int blk = 0; blk < LOSS_BLOCKS; blk++) s += part[blk];
    return n ? s / n : 0.0;
}

void loss_mse_backward(float *dpred, const float *pred, const float *target, long M, long D, double dloss)
{
    long n = M * D;
    if (!n) return;
    float s = (float)(2.0 * dloss / n);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) dpred[i] += s * (pred[i] - target[i]);
}
