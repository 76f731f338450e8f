/* optim.h -- AdamW (torch.optim.AdamW semantics, decoupled weight decay on the tensors flagged
 * `decay` in the model's table) and the timm cosine learning-rate schedule with linear warm-up
 * that Point-MAE steps once per epoch (i2pmae-spec.md 7).
 */
#ifndef I2P_OPTIM_H
#define I2P_OPTIM_H

#include "model3d.h"

typedef struct {
    double beta1, beta2, eps, weight_decay;   /* 0.9, 0.999, 1e-8, 0.05 */
} adamw_config;

typedef struct {
    float *m, *v;      /* first / second moments, one per parameter */
    long n;
    long step;         /* steps taken so far */
} adamw_state;

void adamw_config_default(adamw_config *c);
/* Zeroed moments for n parameters. 0 or -1 (out of memory). */
int adamw_init(adamw_state *s, long n, char *err);
void adamw_free(adamw_state *s);
/* One update of params (n) with grads (n) at learning rate lr. tensors (n_tensors) give the decay
 * flag per parameter range (e.g. model3d_get_tensor(m, 0), laid out contiguously by the model). */
void adamw_step(adamw_state *s, const adamw_config *c, double lr, float *params, const float *grads,
                const model3d_tensor *tensors, int n_tensors);

/* torch.nn.utils.clip_grad_norm_ (norm_type 2) over one flat gradient of n values: the total norm
 * (summed in double) and, if max_norm > 0 and the clip coefficient max_norm / (norm + 1e-6) is
 * below 1, every gradient multiplied by it (as a float). Returns the norm before clipping. */
double clip_grad_norm(float *grads, long n, double max_norm);
/* The two halves of clip_grad_norm, for a gradient held in pieces (pipeline stages): sq plus the
 * squares of grads[0..n) added one by one in double (pieces in order give clip_grad_norm's sum
 * bitwise); and grads[0..n) scaled as clip_grad_norm scales them for that norm. */
double clip_grad_sq_sum(const float *grads, long n, double sq);
void clip_grad_scale(float *grads, long n, double max_norm, double norm);

typedef struct {
    double base_lr;        /* 1e-3 */
    int epochs;            /* t_initial, 400 */
    int warmup_epochs;     /* 10 */
    double lr_min;         /* 1e-6 */
    double warmup_lr_init; /* 1e-6 */
} cosine_schedule;

void cosine_schedule_default(cosine_schedule *s);
/* Learning rate for epoch (0-based): linear warm-up from warmup_lr_init over warmup_epochs, then
 * lr_min + (base_lr - lr_min) (1 + cos(pi epoch / epochs)) / 2 (timm CosineLRScheduler, no prefix);
 * lr_min from epoch >= epochs on. */
double cosine_lr(const cosine_schedule *s, int epoch);

#endif
