/* m3_bn.c -- BatchNorm over rows in the run's mode: batch statistics and a running-statistics
 * update in training, the running statistics in eval; the same output again from saved statistics
 * (for recomputation). Its backward is nn_batchnorm_backward.
 */
#include "m3_layers.h"

int m3_bn_forward(m3_run *r, const m3_bn *p, float *out, float *mean, float *var, const float *inp,
                  long M)
{
    if (r->train)
        return nn_batchnorm_forward_train(r->c, out, mean, var, inp, M3P(r, p->w), M3P(r, p->b),
                                          r->buf + p->run_mean, r->buf + p->run_var, M, p->C, r->err);
    return nn_batchnorm_forward_eval(r->c, out, inp, M3P(r, p->w), M3P(r, p->b), r->buf + p->run_mean,
                                     r->buf + p->run_var, M, p->C, r->err);
}

int m3_bn_apply(m3_run *r, const m3_bn *p, float *out, const float *mean, const float *var,
                const float *inp, long M)
{
    if (r->train)
        return nn_batchnorm_apply_train(r->c, out, inp, M3P(r, p->w), M3P(r, p->b), mean, var, M, p->C,
                                        r->err);
    return nn_batchnorm_forward_eval(r->c, out, inp, M3P(r, p->w), M3P(r, p->b), r->buf + p->run_mean,
                                     r->buf + p->run_var, M, p->C, r->err);
}
