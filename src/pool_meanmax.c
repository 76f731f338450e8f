/* pool_meanmax.c -- the classifier's pooling over tokens: mean + max summed (ModelNet40) or
 * concatenated (ScanObjectNN), forward and backward (classifier_impl.h). Sums in double, in token
 * order, so a sample's result never depends on the batch it is in.
 */
#include "classifier_impl.h"

void cls_pool_forward(cls_pooling mode, float *out, int32_t *arg, const float *x, long B, long T, long C)
{
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; b++)
        for (long c = 0; c < C; c++) {
            const float *v = x + b * T * C + c;
            double sum = 0;
            float mx = v[0];
            int32_t at = 0;
            for (long t = 0; t < T; t++) {
                sum += v[t * C];
                if (v[t * C] > mx) {
                    mx = v[t * C];
                    at = (int32_t)t;
                }
            }
            float mean = (float)(sum / (double)T);
            arg[b * C + c] = at;
            if (mode == CLS_POOL_CONCAT) {
                out[b * 2 * C + c] = mean;
                out[b * 2 * C + C + c] = mx;
            } else {
                out[b * C + c] = mean + mx;
            }
        }
}

void cls_pool_backward(cls_pooling mode, float *dx, const float *dout, const int32_t *arg, long B, long T,
                       long C)
{
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; b++)
        for (long c = 0; c < C; c++) {
            float dmean, dmax;
            if (mode == CLS_POOL_CONCAT) {
                dmean = dout[b * 2 * C + c];
                dmax = dout[b * 2 * C + C + c];
            } else {
                dmean = dmax = dout[b * C + c];
            }
            float g = dmean / (float)T;
            float *d = dx + b * T * C + c;
            for (long t = 0; t < T; t++) d[t * C] += g;
            d[(long)arg[b * C + c] * C] += dmax;
        }
}
