/* optim.c -- AdamW and the cosine schedule (see optim.h). The update follows torch 1.13's
 * single-tensor AdamW operation by operation (float32): p *= 1 - lr wd; m = b1 m + (1-b1) g;
 * v = b2 v + (1-b2) g^2; p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

void adamw_config_default(adamw_config *c)
{
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.05;
}

int adamw_init(adamw_state *s, long n, char *err)
{
    memset(s, 0, sizeof *s);
    s->m = calloc((size_t)n, sizeof(float));
    s->v = calloc((size_t)n, sizeof(float));
    if (!s->m || !s->v) {
        adamw_free(s);
        return errf(err, "adamw: out of memory (%ld parameters)", n);
    }
    s->n = n;
    return 0;
}

void adamw_free(adamw_state *s)
{
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

void adamw_step(adamw_state *s, const adamw_config *c, double lr, float *params, const float *grads,
                const model3d_tensor *tensors, int n_tensors)
{
    s->step++;
    double bc1 = 1.0 - pow(c->beta1, (double)s->step), bc2 = 1.0 - pow(c->beta2, (double)s->step);
    float b1 = (float)c->beta1, b2 = (float)c->beta2, step_size = (float)(lr / bc1),
          bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
    float *m = s->m, *v = s->v;
    /* one team for all tensors (no fork / join per tensor, no barrier between them: the tensors'
       ranges are disjoint); each element's operations are those of the scalar loop, in its order */
#pragma omp parallel
    for (int t = 0; t < n_tensors; t++) {
        const model3d_tensor *T = &tensors[t];
        float decay = T->decay ? (float)(1.0 - lr * c->weight_decay) : 1.0f;
        long lo = T->offset, hi = T->offset + T->count;
#pragma omp for simd schedule(static) nowait
        for (long i = lo; i < hi; i++) {
            float g = grads[i];
            params[i] *= decay;
            m[i] = m[i] * b1 + g * (1 - b1);
            v[i] = v[i] * b2 + g * g * (1 - b2);
            float denom = sqrtf(v[i]) / bc2_sqrt + eps;
            params[i] += -step_size * (m[i] / denom);
        }
    }
}

double clip_grad_norm(float *grads, long n, double max_norm)
{
    double norm = sqrt(clip_grad_sq_sum(grads, n, 0));
    clip_grad_scale(grads, n, max_norm, norm);
    return norm;
}

double clip_grad_sq_sum(const float *grads, long n, double sq)
{
    for (long i = 0; i < n; i++) sq += (double)grads[i] * grads[i]; /* serial: the same sum for any thread count */
    return sq;
}

void clip_grad_scale(float *grads, long n, double max_norm, double norm)
{
    double coef = max_norm / (norm + 1e-6);
    if (max_norm > 0 && coef < 1) {
        float cf = (float)coef;
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) grads[i] *= cf;
    }
}

void cosine_schedule_default(cosine_schedule *s)
{
    s->base_lr = 1e-3;
    s->epochs = 400;
    s->warmup_epochs = 10;
    s->lr_min = 1e-6;
    s->warmup_lr_init = 1e-6;
}

double cosine_lr(const cosine_schedule *s, int epoch)
{
    if (epoch < s->warmup_epochs)
        return s->warmup_lr_init + epoch * (s->base_lr - s->warmup_lr_init) / s->warmup_epochs;
    if (epoch >= s->epochs) return s->lr_min;
    return s->lr_min + 0.5 * (s->base_lr - s->lr_min) * (1 + cos(M_PI * epoch / s->epochs));
}
