/* m3_conv_bn.c -- the conv-BN-activation unit of the 3D network (m3_layers.h): a kernel-1 Conv1d
 * (a linear over rows), BatchNorm in the run's mode and ReLU, GELU or no activation, forward and
 * backward. The decoder's upsampling (m3_interp.c) and the classification head (cls_head.c) are
 * made of it (the mini-PointNet, m3_group.c, runs its own leaner sequence, whose BN -> ReLU -> conv
 * steps are the m3_bn_relu_conv_* below).
 */
#include "m3_layers.h"

int m3_conv_bn_act_forward(m3_run *r, const m3_linear *conv, const m3_bn *bn, int act, float *out,
                           const m3_conv_bn_state *s, const float *inp, long R)
{
    TRY(nn_linear_forward(r->c, s->h, inp, M3P(r, conv->w), M3P(r, conv->b), R, conv->in, conv->out,
                          r->err));
    TRY(m3_bn_forward(r, bn, s->b, s->mean, s->var, s->h, R));
    if (act) TRY(nn_act_forward(r->c, (nn_act)act, out, s->b, R * conv->out, r->err));
    return 0;
}

int m3_conv_bn_act_backward(m3_run *r, const m3_linear *conv, const m3_bn *bn, int act, float *dinp,
                            const float *dout, const m3_conv_bn_state *s, const float *inp, long R)
{
    long C = conv->out;
    arena_mark_t mk = arena_mark(r->a);
    float *db = act ? arena_zeros(r->a, R * C) : NULL, *dh = arena_zeros(r->a, R * C);
    NEED(dh && (db || !act));
    if (act) TRY(nn_act_backward(r->c, (nn_act)act, db, dout, s->b, R * C, r->err));
    TRY(nn_batchnorm_backward(r->c, dh, M3G(r, bn->w), M3G(r, bn->b), act ? db : dout, s->h, M3P(r, bn->w),
                              M3P(r, bn->b), s->mean, s->var, R, C, r->err));
    TRY(nn_linear_backward(r->c, dinp, M3G(r, conv->w), M3G(r, conv->b), dh, inp, M3P(r, conv->w), R,
                           conv->in, C, r->err));
    arena_release(r->a, mk);
    return 0;
}

/* Whether conv runs in bf16 (nn_linear's thresholds), so that its input can be made in bf16. */
int m3_conv_is_bf16(const m3_run *r, const m3_linear *conv)
{
    return nn_linear_is_bf16(r->c, conv->in, conv->out);
}

/* tmp = bf16(relu(bn(h))) with the batch statistics (stats 1, training: computed into mean, var, running
 * update), the saved ones (stats 0, training) or the running ones (eval). */
static int bn_relu_bf16(m3_run *r, const m3_bn *bn, int stats, uint16_t *tmp, float *mean, float *var,
                        const float *h, long R)
{
    const float *m = mean, *v = var;
    if (!r->train) {
        m = r->buf + bn->run_mean;
        v = r->buf + bn->run_var;
    } else if (stats)
        TRY(nn_batchnorm_stats_train(r->c, mean, var, h, r->buf + bn->run_mean, r->buf + bn->run_var, R, bn->C,
                                     r->err));
    return nn_batchnorm_relu_bf16(r->c, tmp, h, M3P(r, bn->w), M3P(r, bn->b), m, v, R, bn->C, r->err);
}

/* tmp = relu(bn(h)) in f32 with the batch statistics (stats 1: m3_bn_forward's, computed into mean, var
 * with the running update), the saved ones (stats 0, training) or the running ones (eval): in training
 * one pass (nn_batchnorm_relu_train), bitwise m3_bn_* then ReLU, which eval still runs. */
static int bn_relu(m3_run *r, const m3_bn *bn, int stats, float *tmp, float *mean, float *var, const float *h,
                   long R)
{
    if (!r->train) {
        TRY(m3_bn_forward(r, bn, tmp, mean, var, h, R));
        return nn_act_forward(r->c, NN_RELU, tmp, tmp, R * bn->C, r->err);
    }
    if (stats)
        TRY(nn_batchnorm_stats_train(r->c, mean, var, h, r->buf + bn->run_mean, r->buf + bn->run_var, R, bn->C,
                                     r->err));
    return nn_batchnorm_relu_train(r->c, tmp, h, M3P(r, bn->w), M3P(r, bn->b), mean, var, R, bn->C, r->err);
}

int m3_bn_relu_conv_forward(m3_run *r, const m3_bn *bn, const m3_linear *conv, int stats, float *out,
                            float *mean, float *var, float *tmp, const float *h, long R)
{
    if (m3_conv_is_bf16(r, conv)) {
        uint16_t *tb = (uint16_t *)tmp;
        TRY(bn_relu_bf16(r, bn, stats, tb, mean, var, h, R));
        return nn_linear_forward_bf16in(r->c, out, tb, M3P(r, conv->w), M3P(r, conv->b), R, conv->in, conv->out,
                                        r->err);
    }
    TRY(bn_relu(r, bn, stats, tmp, mean, var, h, R));
    return nn_linear_forward(r->c, out, tmp, M3P(r, conv->w), M3P(r, conv->b), R, conv->in, conv->out, r->err);
}

/* conv's backward over its input relu(bn(h)), recomputed into tmp (bf16 when the conv runs in bf16):
 * dy = the gradient at ReLU's output, conv's weight and (bias 1) bias gradients accumulated; from doutb,
 * conv's output gradient given in bf16 (bf16 convs only), instead of dout: no bias gradient (the
 * caller's). */
static int conv_backward_over_bn_relu(m3_run *r, const m3_bn *bn, const m3_linear *conv, int bias, float *dy,
                                      float *tmp, const float *mean, const float *var, const float *h,
                                      const float *dout, const uint16_t *doutb, long R)
{
    float *db = bias ? M3G(r, conv->b) : NULL;
    if (m3_conv_is_bf16(r, conv)) {
        uint16_t *tb = (uint16_t *)tmp;
        TRY(bn_relu_bf16(r, bn, 0, tb, (float *)mean, (float *)var, h, R));
        if (doutb)
            return nn_linear_backward_bf16dout_in(r->c, dy, M3G(r, conv->w), doutb, tb, M3P(r, conv->w), R, conv->in,
                                                  conv->out, 1, r->err);
        return nn_linear_backward_bf16in(r->c, dy, M3G(r, conv->w), db, dout, tb, M3P(r, conv->w), R, conv->in,
                                         conv->out, r->err);
    }
    TRY(bn_relu(r, bn, 0, tmp, (float *)mean, (float *)var, h, R));
    return nn_linear_backward_set(r->c, dy, M3G(r, conv->w), db, dout, tmp, M3P(r, conv->w), R, conv->in, conv->out,
                                  r->err);
}

int m3_bn_relu_conv_backward(m3_run *r, const m3_bn *bn, const m3_linear *conv, float *dy, float *tmp,
                             const float *mean, const float *var, const float *h, const float *dout, long R)
{
    long n = R * bn->C;
    TRY(conv_backward_over_bn_relu(r, bn, conv, 1, dy, tmp, mean, var, h, dout, NULL, R));
    if (m3_conv_is_bf16(r, conv)) {
        nn_relu_backward_dst_bf16(dy, dy, (const uint16_t *)tmp, n);
        return 0;
    }
    return nn_relu_backward_dst(r->c, dy, dy, tmp, n, r->err);
}

int m3_bn_relu_conv_backward_rows(m3_run *r, const m3_bn *bn, const m3_linear *conv, float *dy, float *tmp,
                                  const float *mean, const float *var, const float *h, const float *dout, long R,
                                  nn_dw_sum *dw)
{
    long n = R * bn->C;
    if (m3_conv_is_bf16(r, conv)) {
        uint16_t *tb = (uint16_t *)tmp;
        TRY(bn_relu_bf16(r, bn, 0, tb, (float *)mean, (float *)var, h, R));
        TRY(nn_linear_backward_bf16in(r->c, dy, NULL, NULL, dout, tb, M3P(r, conv->w), R, conv->in, conv->out,
                                      r->err));
        if (dw) TRY(nn_linear_dw_add_bf16in(r->c, dw, dout, tb, R, r->err));
        nn_relu_backward_dst_bf16(dy, dy, tb, n);
        return 0;
    }
    TRY(bn_relu(r, bn, 0, tmp, (float *)mean, (float *)var, h, R));
    TRY(nn_linear_backward_set(r->c, dy, NULL, NULL, dout, tmp, M3P(r, conv->w), R, conv->in, conv->out, r->err));
    if (dw) TRY(nn_linear_dw_add(r->c, dw, dout, tmp, R, r->err));
    return nn_relu_backward_dst(r->c, dy, dy, tmp, n, r->err);
}

int m3_bn_relu_conv_bn_backward(m3_run *r, const m3_bn *bn, const m3_linear *conv, int conv_bias, float *dh,
                                float *dy, float *tmp, const float *mean, const float *var, const float *h,
                                const float *dout, long R)
{
    TRY(conv_backward_over_bn_relu(r, bn, conv, conv_bias, dy, tmp, mean, var, h, dout, NULL, R));
    return nn_batchnorm_relu_backward(r->c, dh, M3G(r, bn->w), M3G(r, bn->b), dy, h, M3P(r, bn->w), M3P(r, bn->b),
                                      mean, var, R, bn->C, m3_conv_is_bf16(r, conv), r->err);
}

int m3_bn_relu_conv_bn_backward_bf16dout(m3_run *r, const m3_bn *bn, const m3_linear *conv, float *dh, float *dy,
                                        float *tmp, const float *mean, const float *var, const float *h,
                                        const uint16_t *doutb, long R)
{
    if (!m3_conv_is_bf16(r, conv))
        return errf(r->err, "model3d: internal: a bf16 output gradient needs its conv in bf16");
    TRY(conv_backward_over_bn_relu(r, bn, conv, 0, dy, tmp, mean, var, h, NULL, doutb, R));
    return nn_batchnorm_relu_backward(r->c, dh, M3G(r, bn->w), M3G(r, bn->b), dy, h, M3P(r, bn->w), M3P(r, bn->b),
                                      mean, var, R, bn->C, 1, r->err);
}

int m3_bn_relu_conv_bn_backward_sink(m3_run *r, const m3_bn *bn, const m3_linear *conv, const nn_rows_sink *sink,
                                     float *scratch, float *dy, float *tmp, const float *mean, const float *var,
                                     const float *h, const float *dout, long R)
{
    if (!m3_conv_is_bf16(r, conv))
        return errf(r->err, "model3d: internal: a BatchNorm backward into a sink needs its conv in bf16");
    TRY(conv_backward_over_bn_relu(r, bn, conv, 1, dy, tmp, mean, var, h, dout, NULL, R));
    return nn_batchnorm_relu_backward_sink(r->c, sink, scratch, M3G(r, bn->w), M3G(r, bn->b), dy, h, M3P(r, bn->w),
                                           M3P(r, bn->b), mean, var, R, bn->C, r->err);
}
