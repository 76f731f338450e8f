/* losses.h -- the losses with their backward: the two of pre-training (docs/model3d.md), Chamfer L2
 * on the masked tokens' predicted offsets and MSE on the visible tokens' 2D features, and the
 * fine-tuning cross-entropy with label smoothing (docs/finetune.md).
 */
#ifndef I2P_LOSSES_H
#define I2P_LOSSES_H

#include <stdint.h>

/* pred, gt (M,k,3); rows with use[i] = 0 are skipped. Returns the mean over used rows of
 * mean_i min_j |p_i-g_j|^2 + mean_j min_i |p_i-g_j|^2 (0 if no row is used). */
double loss_chamfer_forward(const float *pred, const float *gt, const uint8_t *use, long M, long k);
/* dpred (M,k,3) += dloss * d(loss)/d(pred); ties go to the lowest index. */
void loss_chamfer_backward(float *dpred, const float *pred, const float *gt, const uint8_t *use, long M,
                           long k, double dloss);

/* pred, target (M,D): mean over all M*D elements of (pred - target)^2. */
double loss_mse_forward(const float *pred, const float *target, long M, long D);
/* dpred (M,D) = dloss * 2 (pred - target) / (M*D), OVERWRITTEN (written as 0 + value: the bits that
 * accumulating into zeros gave, +0 where the value is -0). */
void loss_mse_backward_set(float *dpred, const float *pred, const float *target, long M, long D, double dloss);

/* logits (B,n), labels (B) in [0,n): mean over rows of -sum_j t_j log softmax(logits)_j with
 * t = 1 - eps at the label and eps / (n-1) elsewhere (official I2P-MAE smoothing; eps 0: plain CE). */
double loss_xent_forward(const float *logits, const int32_t *labels, long B, long n, double eps);
/* dlogits (B,n) += dloss * (softmax(logits) - t) / B. */
void loss_xent_backward(float *dlogits, const float *logits, const int32_t *labels, long B, long n,
                        double eps, double dloss);

#endif
