/* seg_layers.c -- the part-segmentation network's propagation MLP and per-point head, forward and
 * backward (partseg_impl.h). Dropout is a given mask of scales (the caller draws it).
 */
#include "partseg_impl.h"

#include <string.h>

int seg_prop_forward(m3_run *r, const seg_prop *p, float *out, seg_prop_state *s, const float *inp, long R)
{
    long in = p->conv1.in, H = p->conv1.out, F = p->conv2.out;
    memset(s, 0, sizeof *s);
    m3_buffer saved[] = {{&s->h1, R * H}, {&s->b1, R * H}, {&s->a1, R * H}, {&s->m1, H}, {&s->v1, H},
                         {&s->h2, R * F}, {&s->b2, R * F}, {&s->m2, F},     {&s->v2, F}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    TRY(nn_linear_forward(r->c, s->h1, inp, M3P(r, p->conv1.w), M3P(r, p->conv1.b), R, in, H, r->err));
    TRY(m3_bn_forward(r, &p->bn1, s->b1, s->m1, s->v1, s->h1, R));
    TRY(nn_act_forward(r->c, NN_RELU, s->a1, s->b1, R * H, r->err));
    TRY(nn_linear_forward(r->c, s->h2, s->a1, M3P(r, p->conv2.w), M3P(r, p->conv2.b), R, H, F, r->err));
    TRY(m3_bn_forward(r, &p->bn2, s->b2, s->m2, s->v2, s->h2, R));
    return nn_act_forward(r->c, NN_RELU, out, s->b2, R * F, r->err);
}

int seg_prop_backward(m3_run *r, const seg_prop *p, float *dinp, const float *dout, const seg_prop_state *s,
                      const float *inp, const float *out, long R)
{
    (void)out;
    long in = p->conv1.in, H = p->conv1.out, F = p->conv2.out;
    arena_mark_t mk = arena_mark(r->a);
    float *db2 = arena_zeros(r->a, R * F), *dh2 = arena_zeros(r->a, R * F), *da1 = arena_zeros(r->a, R * H),
          *db1 = arena_zeros(r->a, R * H), *dh1 = arena_zeros(r->a, R * H);
    NEED(db2 && dh2 && da1 && db1 && dh1);
    TRY(nn_act_backward(r->c, NN_RELU, db2, dout, s->b2, R * F, r->err));
    TRY(nn_batchnorm_backward(r->c, dh2, M3G(r, p->bn2.w), M3G(r, p->bn2.b), db2, s->h2, M3P(r, p->bn2.w),
                              M3P(r, p->bn2.b), s->m2, s->v2, R, F, r->err));
    TRY(nn_linear_backward(r->c, da1, M3G(r, p->conv2.w), M3G(r, p->conv2.b), dh2, s->a1, M3P(r, p->conv2.w),
                           R, H, F, r->err));
    TRY(nn_act_backward(r->c, NN_RELU, db1, da1, s->b1, R * H, r->err));
    TRY(nn_batchnorm_backward(r->c, dh1, M3G(r, p->bn1.w), M3G(r, p->bn1.b), db1, s->h1, M3P(r, p->bn1.w),
                              M3P(r, p->bn1.b), s->m1, s->v1, R, H, r->err));
    TRY(nn_linear_backward(r->c, dinp, M3G(r, p->conv1.w), M3G(r, p->conv1.b), dh1, inp, M3P(r, p->conv1.w),
                           R, in, H, r->err));
    arena_release(r->a, mk);
    return 0;
}

int seg_head_forward(m3_run *r, const seg_head *p, float *logits, seg_head_state *s, const float *inp,
                     const float *mask, long R)
{
    memset(s, 0, sizeof *s);
    s->mask = mask;
    const float *x = inp;
    for (int i = 0; i < 3; i++) {
        long in = p->conv[i].in, H = p->conv[i].out;
        m3_buffer saved[] = {{&s->h[i], R * H}, {&s->b[i], R * H}, {&s->a[i], R * H}, {&s->mean[i], H},
                             {&s->var[i], H}};
        TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
        TRY(nn_linear_forward(r->c, s->h[i], x, M3P(r, p->conv[i].w), M3P(r, p->conv[i].b), R, in, H, r->err));
        TRY(m3_bn_forward(r, &p->bn[i], s->b[i], s->mean[i], s->var[i], s->h[i], R));
        TRY(nn_act_forward(r->c, NN_RELU, s->a[i], s->b[i], R * H, r->err));
        if (i == 0 && mask)
            for (long j = 0; j < R * H; j++) s->a[0][j] *= mask[j];
        x = s->a[i];
    }
    return nn_linear_forward(r->c, logits, x, M3P(r, p->conv[3].w), M3P(r, p->conv[3].b), R, p->conv[3].in,
                             p->conv[3].out, r->err);
}

int seg_head_backward(m3_run *r, const seg_head *p, float *dinp, const float *dlogits, const seg_head_state *s,
                      const float *inp, long R)
{
    arena_mark_t mk = arena_mark(r->a);
    const float *dout = dlogits;
    for (int i = 3; i >= 0; i--) {
        long in = p->conv[i].in, H = p->conv[i].out;
        const float *x = i ? s->a[i - 1] : inp;
        float *dx = dinp;
        if (i) NEED(dx = arena_zeros(r->a, R * in));
        TRY(nn_linear_backward(r->c, dx, M3G(r, p->conv[i].w), M3G(r, p->conv[i].b), dout, x, M3P(r, p->conv[i].w),
                               R, in, H, r->err));
        if (!i) break;
        int k = i - 1; /* the ReLU / BN of layer k produced x */
        if (k == 0 && s->mask)
            for (long j = 0; j < R * in; j++) dx[j] *= s->mask[j];
        float *db = arena_zeros(r->a, R * in), *dh = arena_zeros(r->a, R * in);
        NEED(db && dh);
        TRY(nn_act_backward(r->c, NN_RELU, db, dx, s->b[k], R * in, r->err));
        TRY(nn_batchnorm_backward(r->c, dh, M3G(r, p->bn[k].w), M3G(r, p->bn[k].b), db, s->h[k],
                                  M3P(r, p->bn[k].w), M3P(r, p->bn[k].b), s->mean[k], s->var[k], R, in, r->err));
        dout = dh;
    }
    arena_release(r->a, mk);
    return 0;
}
