/* m3_group.c -- the mini-PointNet that turns a neighbourhood into one token, forward and backward:
 * the scale-0 embedding of grouped points (embed0) and the token merging of scales 1 and 2
 * (merge1, merge2) share it (docs/model3d.md).
 */
#include "m3_layers.h"

#include <string.h>

int m3_group_forward(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                     long G, long k)
{
    long R = G * k, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out,
         cout = p->conv4.out;
    memset(s, 0, sizeof *s);
    m3_buffer saved[] = {{&s->u1.h, R * a},     {&s->u1.b, R * a},   {&s->r1, R * a},
                         {&s->u1.mean, a},      {&s->u1.var, a},     {&s->h2, R * b},
                         {&s->g, G * b},        {&s->cat, R * 2 * b}, {&s->u2.h, R * c},
                         {&s->u2.b, R * c},     {&s->r2, R * c},     {&s->u2.mean, c},
                         {&s->u2.var, c},       {&s->h4, R * cout}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    NEED(s->arg1 = (int32_t *)arena_ints(r->a, G * b));
    NEED(s->arg2 = (int32_t *)arena_ints(r->a, G * cout));
    /* (R,cin) -> conv1 (R,a) -> bn1 -> relu -> conv2 (R,b) */
    TRY(m3_conv_bn_act_forward(r, &p->conv1, &p->bn1, NN_RELU, s->r1, &s->u1, inp, R));
    TRY(nn_linear_forward(r->c, s->h2, s->r1, M3P(r, p->conv2.w), M3P(r, p->conv2.b), R, a, b, r->err));
    /* g (G,b) = max over k; cat (R,2b) = [g broadcast, h2] (global first) */
    nn_maxpool_forward(s->g, s->arg1, s->h2, G, k, b);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < R; i++) {
        memcpy(s->cat + i * 2 * b, s->g + (i / k) * b, sizeof(float) * (size_t)b);
        memcpy(s->cat + i * 2 * b + b, s->h2 + i * b, sizeof(float) * (size_t)b);
    }
    /* -> conv3 (R,c) -> bn2 -> relu -> conv4 (R,cout) -> max over k (G,cout) */
    TRY(m3_conv_bn_act_forward(r, &p->conv3, &p->bn2, NN_RELU, s->r2, &s->u2, s->cat, R));
    TRY(nn_linear_forward(r->c, s->h4, s->r2, M3P(r, p->conv4.w), M3P(r, p->conv4.b), R, c, cout, r->err));
    nn_maxpool_forward(out, s->arg2, s->h4, G, k, cout);
    return 0;
}

int m3_group_backward(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                      const m3_group_state *s, const float *inp, long G, long k)
{
    long R = G * k, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out,
         cout = p->conv4.out;
    arena_mark_t mk = arena_mark(r->a);
    float *dh4 = arena_zeros(r->a, R * cout), *dr2 = arena_zeros(r->a, R * c),
          *dcat = arena_zeros(r->a, R * 2 * b), *dh2 = arena_floats(r->a, R * b),
          *dg = arena_zeros(r->a, G * b), *dr1 = arena_zeros(r->a, R * a);
    NEED(dh4 && dr2 && dcat && dh2 && dg && dr1);
    nn_maxpool_backward(dh4, dout, s->arg2, G, k, cout);
    TRY(nn_linear_backward(r->c, dr2, M3G(r, p->conv4.w), M3G(r, p->conv4.b), dh4, s->r2,
                           M3P(r, p->conv4.w), R, c, cout, r->err));
    TRY(m3_conv_bn_act_backward(r, &p->conv3, &p->bn2, NN_RELU, dcat, dr2, &s->u2, s->cat, R));
    /* split the concat: per-point half to dh2, global half summed over k into dg */
#pragma omp parallel for schedule(static)
    for (long gi = 0; gi < G; gi++)
        for (long i = gi * k; i < (gi + 1) * k; i++) {
            memcpy(dh2 + i * b, dcat + i * 2 * b + b, sizeof(float) * (size_t)b);
            for (long j = 0; j < b; j++) dg[gi * b + j] += dcat[i * 2 * b + j];
        }
    nn_maxpool_backward(dh2, dg, s->arg1, G, k, b);
    TRY(nn_linear_backward(r->c, dr1, M3G(r, p->conv2.w), M3G(r, p->conv2.b), dh2, s->r1,
                           M3P(r, p->conv2.w), R, a, b, r->err));
    TRY(m3_conv_bn_act_backward(r, &p->conv1, &p->bn1, NN_RELU, dinp, dr1, &s->u1, inp, R));
    arena_release(r->a, mk);
    return 0;
}
