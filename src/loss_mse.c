/* loss_mse.c -- mean squared error over all elements, with its backward. */
#include "losses.h"

double loss_mse_forward(const float *pred, const float *target, long M, long D)
{
    double s = 0;
    long n = M * D;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (long i = 0; i < n; i++) {
        double d = (double)pred[i] - target[i];
        s += d * d;
    }
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
