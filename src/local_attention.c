/* local_attention.c -- the fine-tuning attention mask of one stage (classifier_impl.h): keys whose
 * centre lies at distance >= radius from the query's centre get an additive -1e5, as the official
 * code's `cdist(centres, centres) >= radius`. The diagonal (distance 0) is never masked, so every
 * query keeps at least itself.
 */
#include "classifier_impl.h"

#include <math.h>

void cls_local_bias(float *bias, const float *ctr, long B, long T, double radius)
{
#pragma omp parallel for schedule(static)
    for (long bq = 0; bq < B * T; bq++) {
        long b = bq / T;
        const float *q = ctr + bq * 3;
        float *row = bias + bq * T;
        for (long u = 0; u < T; u++) {
            const float *k = ctr + (b * T + u) * 3;
            double dx = (double)q[0] - k[0], dy = (double)q[1] - k[1], dz = (double)q[2] - k[2];
            row[u] = sqrt(dx * dx + dy * dy + dz * dz) >= radius ? CLS_FAR_BIAS : 0.0f;
        }
    }
}
