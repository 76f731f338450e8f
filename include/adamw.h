/* adamw.h -- AdamW as torch.optim.AdamW (decoupled weight decay) over the model's flat parameter
 * buffer, with per-tensor decay flags, and the learning-rate schedule of the spec (section 7).
 *
 * (Written here because the network's include/optim.h did not exist when pre-training needed it;
 * if it lands, pretrain.c should switch to it.)
 */
#ifndef I2P_ADAMW_H
#define I2P_ADAMW_H

#include "model3d.h"

#define ADAMW_BETA1 0.9
#define ADAMW_BETA2 0.999
#define ADAMW_EPS 1e-8

/* One update of step number t (1-based) for every tensor of the table:
 *   p *= 1 - lr * wd (tensors with decay only); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 * params, grads, m, v are flat arrays indexed by the tensors' offsets. OpenMP inside. */
void adamw_update(float *params, const float *grads, float *m, float *v, const model3d_tensor *tensors,
                  int n_tensors, double lr, double wd, long t);

/* timm's CosineLRScheduler as Point-MAE builds it, stepped per epoch: linear warm-up from
 * warmup_lr over warmup_epochs (not prefixed: the cosine counts from epoch 0), then
 * min_lr + (lr - min_lr) (1 + cos(pi epoch / sched_epochs)) / 2; min_lr from sched_epochs on. */
double cosine_lr(long epoch, double lr, double min_lr, double warmup_lr, long warmup_epochs,
                 long sched_epochs);

#endif
