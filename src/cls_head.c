/* cls_head.c -- the classification head Linear(d,H) -> BN -> ReLU -> Dropout -> Linear(H,H) -> BN ->
 * ReLU -> Dropout -> Linear(H,n), forward and backward (classifier_impl.h). Dropout is a given
 * mask of scales (the caller draws it), so the layer itself is deterministic.
 */
#include "classifier_impl.h"

#include <string.h>


/* x (n) *= mask (n) */
static void apply_mask(float *x, const float *mask, long n)
{
    for (long i = 0; i < n; i++) x[i] *= mask[i];
}

int cls_head_forward(m3_run *r, const cls_head *p, float *logits, cls_head_state *s, const float *inp,
                     const float *mask1, const float *mask2, long B)
{
    long H = p->fc1.out, n = p->fc3.out;
    memset(s, 0, sizeof *s);
    m3_buffer saved[] = {{&s->u1.h, B * H},  {&s->u1.b, B * H}, {&s->a1, B * H}, {&s->u1.mean, H},
                         {&s->u1.var, H},    {&s->u2.h, B * H}, {&s->u2.b, B * H}, {&s->a2, B * H},
                         {&s->u2.mean, H},   {&s->u2.var, H}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    s->mask1 = mask1;
    s->mask2 = mask2;
    TRY(m3_conv_bn_act_forward(r, &p->fc1, &p->bn1, NN_RELU, s->a1, &s->u1, inp, B));
    if (mask1) apply_mask(s->a1, mask1, B * H);
    TRY(m3_conv_bn_act_forward(r, &p->fc2, &p->bn2, NN_RELU, s->a2, &s->u2, s->a1, B));
    if (mask2) apply_mask(s->a2, mask2, B * H);
    return nn_linear_forward(r->c, logits, s->a2, M3P(r, p->fc3.w), M3P(r, p->fc3.b), B, H, n, r->err);
}

int cls_head_backward(m3_run *r, const cls_head *p, float *dinp, const float *dlogits,
                      const cls_head_state *s, const float *inp, long B)
{
    long H = p->fc1.out, n = p->fc3.out;
    arena_mark_t mk = arena_mark(r->a);
    float *da2 = arena_zeros(r->a, B * H), *da1 = arena_zeros(r->a, B * H);
    NEED(da2 && da1);
    TRY(nn_linear_backward(r->c, da2, M3G(r, p->fc3.w), M3G(r, p->fc3.b), dlogits, s->a2, M3P(r, p->fc3.w),
                           B, H, n, r->err));
    if (s->mask2) apply_mask(da2, s->mask2, B * H);
    TRY(m3_conv_bn_act_backward(r, &p->fc2, &p->bn2, NN_RELU, da1, da2, &s->u2, s->a1, B));
    if (s->mask1) apply_mask(da1, s->mask1, B * H);
    TRY(m3_conv_bn_act_backward(r, &p->fc1, &p->bn1, NN_RELU, dinp, da1, &s->u1, inp, B));
    arena_release(r->a, mk);
    return 0;
}
