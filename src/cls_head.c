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
    long d = p->fc1.in, H = p->fc1.out, n = p->fc3.out;
    memset(s, 0, sizeof *s);
    m3_buffer saved[] = {{&s->h1, B * H}, {&s->b1, B * H},   {&s->a1, B * H},       {&s->bn1_mean, H},
                         {&s->bn1_var, H}, {&s->h2, B * H},   {&s->b2, B * H},       {&s->a2, B * H},
                         {&s->bn2_mean, H}, {&s->bn2_var, H}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    s->mask1 = mask1;
    s->mask2 = mask2;
    TRY(nn_linear_forward(r->c, s->h1, inp, M3P(r, p->fc1.w), M3P(r, p->fc1.b), B, d, H, r->err));
    TRY(m3_bn_forward(r, &p->bn1, s->b1, s->bn1_mean, s->bn1_var, s->h1, B));
    TRY(nn_act_forward(r->c, NN_RELU, s->a1, s->b1, B * H, r->err));
    if (mask1) apply_mask(s->a1, mask1, B * H);
    TRY(nn_linear_forward(r->c, s->h2, s->a1, M3P(r, p->fc2.w), M3P(r, p->fc2.b), B, H, H, r->err));
    TRY(m3_bn_forward(r, &p->bn2, s->b2, s->bn2_mean, s->bn2_var, s->h2, B));
    TRY(nn_act_forward(r->c, NN_RELU, s->a2, s->b2, B * H, r->err));
    if (mask2) apply_mask(s->a2, mask2, B * H);
    return nn_linear_forward(r->c, logits, s->a2, M3P(r, p->fc3.w), M3P(r, p->fc3.b), B, H, n, r->err);
}

int cls_head_backward(m3_run *r, const cls_head *p, float *dinp, const float *dlogits,
                      const cls_head_state *s, const float *inp, long B)
{
    long d = p->fc1.in, H = p->fc1.out, n = p->fc3.out;
    arena_mark_t mk = arena_mark(r->a);
    float *da2 = arena_zeros(r->a, B * H), *db2 = arena_zeros(r->a, B * H), *dh2 = arena_zeros(r->a, B * H),
          *da1 = arena_zeros(r->a, B * H), *db1 = arena_zeros(r->a, B * H), *dh1 = arena_zeros(r->a, B * H);
    NEED(da2 && db2 && dh2 && da1 && db1 && dh1);
    TRY(nn_linear_backward(r->c, da2, M3G(r, p->fc3.w), M3G(r, p->fc3.b), dlogits, s->a2, M3P(r, p->fc3.w),
                           B, H, n, r->err));
    if (s->mask2) apply_mask(da2, s->mask2, B * H);
    TRY(nn_act_backward(r->c, NN_RELU, db2, da2, s->b2, B * H, r->err));
    TRY(nn_batchnorm_backward(r->c, dh2, M3G(r, p->bn2.w), M3G(r, p->bn2.b), db2, s->h2, M3P(r, p->bn2.w),
                              M3P(r, p->bn2.b), s->bn2_mean, s->bn2_var, B, H, r->err));
    TRY(nn_linear_backward(r->c, da1, M3G(r, p->fc2.w), M3G(r, p->fc2.b), dh2, s->a1, M3P(r, p->fc2.w),
                           B, H, H, r->err));
    if (s->mask1) apply_mask(da1, s->mask1, B * H);
    TRY(nn_act_backward(r->c, NN_RELU, db1, da1, s->b1, B * H, r->err));
    TRY(nn_batchnorm_backward(r->c, dh1, M3G(r, p->bn1.w), M3G(r, p->bn1.b), db1, s->h1, M3P(r, p->bn1.w),
                              M3P(r, p->bn1.b), s->bn1_mean, s->bn1_var, B, H, r->err));
    TRY(nn_linear_backward(r->c, dinp, M3G(r, p->fc1.w), M3G(r, p->fc1.b), dh1, inp, M3P(r, p->fc1.w), B, d,
                           H, r->err));
    arena_release(r->a, mk);
    return 0;
}
