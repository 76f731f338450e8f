/* adamw.c -- AdamW update and cosine schedule (see adamw.h). */
#include "adamw.h"

#include <math.h>

void adamw_update(float *params, const float *grads, float *m, float *v, const model3d_tensor *tensors,
                  int n_tensors, double lr, double wd, long t)
{
    double bc1 = 1 - pow(ADAMW_BETA1, (double)t), bc2 = 1 - pow(ADAMW_BETA2, (double)t);
    for (int k = 0; k < n_tensors; k++) {
        const model3d_tensor *tt = &tensors[k];
        double decay = tt->decay ? 1 - lr * wd : 1.0;
#pragma omp parallel for schedule(static)
        for (long i = tt->offset; i < tt->offset + tt->count; i++) {
            double g = grads[i];
            m[i] = (float)(ADAMW_BETA1 * m[i] + (1 - ADAMW_BETA1) * g);
            v[i] = (float)(ADAMW_BETA2 * v[i] + (1 - ADAMW_BETA2) * g * g);
            double mh = m[i] / bc1, vh = v[i] / bc2;
            params[i] = (float)(params[i] * decay - lr * mh / (sqrt(vh) + ADAMW_EPS));
        }
    }
}

double cosine_lr(long epoch, double lr, double min_lr, double warmup_lr, long warmup_epochs,
                 long sched_epochs)
{
    if (epoch < warmup_epochs)
        return warmup_lr + (double)epoch * (lr - warmup_lr) / (double)warmup_epochs;
    if (epoch >= sched_epochs) return min_lr;
    return min_lr + 0.5 * (lr - min_lr) * (1 + cos(M_PI * (double)epoch / (double)sched_epochs));
}
