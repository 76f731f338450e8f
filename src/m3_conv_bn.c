/* m3_conv_bn.c -- the conv-BN-activation unit of the 3D network (m3_layers.h): a kernel-1 Conv1d
 * (a linear over rows), BatchNorm in the run's mode and ReLU, GELU or no activation, forward and
 * backward. The decoder's upsampling (m3_interp.c) and the classification head (cls_head.c) are
 * made of it (the mini-PointNet, m3_group.c, runs its own leaner sequence).
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
