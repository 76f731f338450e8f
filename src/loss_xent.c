/* loss_xent.c -- cross-entropy with the official I2P-MAE label smoothing (losses.h): target 1 - eps
 * at the label and eps / (n - 1) at every other class (not PyTorch's label_smoothing, which gives
 * 1 - eps + eps/n and eps/n); eps 0 is the plain cross-entropy. In double, rows summed in order.
 */
#include "losses.h"

#include <math.h>

/* log-sum-exp of a row, with its max */
static double row_lse(const float *z, long n)
{
    double mx = z[0], s = 0;
    for (long j = 1; j < n; j++) if (z[j] > mx) mx = z[j];
    for (long j = 0; j < n; j++) s += exp((double)z[j] - mx);
    return mx + log(s);
}

double loss_xent_forward(const float *logits, const int32_t *labels, long B, long n, double eps)
{
    double total = 0, off = n > 1 ? eps / (double)(n - 1) : 0;
    for (long b = 0; b < B; b++) {
        const float *z = logits + b * n;
        double lse = row_lse(z, n), row = 0;
        for (long j = 0; j < n; j++) {
            double t = j == labels[b] ? 1.0 - eps : off;
            row -= t * ((double)z[j] - lse);
        }
        total += row;
    }
    return B ? total / (double)B : 0.0;
}

void loss_xent_backward(float *dlogits, const float *logits, const int32_t *labels, long B, long n,
                        double eps, double dloss)
{
    double off = n > 1 ? eps / (double)(n - 1) : 0, scale = B ? dloss / (double)B : 0;
    for (long b = 0; b < B; b++) {
        const float *z = logits + b * n;
        double lse = row_lse(z, n);
        for (long j = 0; j < n; j++) {
            double t = j == labels[b] ? 1.0 - eps : off;
            dlogits[b * n + j] += (float)(scale * (exp((double)z[j] - lse) - t));
        }
    }
}
