/* nn_bn_stats_rows.c -- the batch statistics of batch normalisation over rows given in pieces (a
 * forward by row chunks, m3_group.c): the same sums in the same order as nn_batchnorm_stats_train
 * (nn_batchnorm.c's batch_stats: per channel, in row order, in double, the mean first, then the
 * squared deviations from it) and the same running-statistics update, so the same bits.
 */
#include "nn.h"

#include <omp.h>

void nn_bn_stats_sum_rows(double *acc, const float *inp, long rows, long C)
{
    double *s = acc;
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        long lo = C * t / nt, hi = C * (t + 1) / nt;
        for (long i = 0; i < rows; i++) {
            const float *x = inp + i * C;
#pragma omp simd
            for (long j = lo; j < hi; j++) s[j] += x[j];
        }
    }
}

void nn_bn_stats_mean(double *acc, float *mean, long M, long C)
{
    for (long j = 0; j < C; j++) {
        acc[j] /= (double)M;
        mean[j] = (float)acc[j];
    }
}

void nn_bn_stats_sq_rows(double *acc, const float *inp, long rows, long C)
{
    const double *s = acc;
    double *q = acc + C;
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        long lo = C * t / nt, hi = C * (t + 1) / nt;
        for (long i = 0; i < rows; i++) {
            const float *x = inp + i * C;
#pragma omp simd
            for (long j = lo; j < hi; j++) {
                double d = x[j] - s[j];
                q[j] += d * d;
            }
        }
    }
}

void nn_bn_stats_var(const double *acc, float *var, const float *mean, float *running_mean, float *running_var,
                     long M, long C)
{
    for (long j = 0; j < C; j++) var[j] = (float)(acc[C + j] / (double)M);
    if (!running_mean || !running_var) return;
    float unbias = M > 1 ? (float)M / (float)(M - 1) : 1.0f;
    for (long j = 0; j < C; j++) {
        running_mean[j] = (1 - NN_BN_MOMENTUM) * running_mean[j] + NN_BN_MOMENTUM * mean[j];
        running_var[j] = (1 - NN_BN_MOMENTUM) * running_var[j] + NN_BN_MOMENTUM * var[j] * unbias;
    }
}
