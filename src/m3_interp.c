/* m3_interp.c -- the decoder's upsampling layer from scale 2 to scale 1, forward and backward:
 * 3-NN interpolation (given rows and weights) of the stage-0 decoder outputs, concatenated with the
 * encoder skip (interpolated first), conv-BN-GELU, then the residual block
 * GELU(x + BN(conv(GELU(BN(conv(x)))))). The skip width equals D1 (dec_dims[1] == dims[1],
 * checked by model3d_config_check).
 */
#include "m3_layers.h"

#include <string.h>

int m3_interp_forward(m3_run *r, const m3_interp *p, float *out, m3_interp_state *s, const float *src,
                      const int32_t *idx3, const float *w3, const float *skip, long B, long G1, long G2)
{
    long R = B * G1, Din = p->conv.in, D1 = p->conv.out, D0 = Din - D1;
    memset(s, 0, sizeof *s);
    m3_buffer saved[] = {{&s->cat, R * Din},    {&s->u.h, R * D1},    {&s->u.b, R * D1},   {&s->x0, R * D1},
                         {&s->res1.h, R * D1},  {&s->res1.b, R * D1}, {&s->g1, R * D1},    {&s->res2.h, R * D1},
                         {&s->res2.b, R * D1},  {&s->sum, R * D1},    {&s->u.mean, D1},    {&s->u.var, D1},
                         {&s->res1.mean, D1},   {&s->res1.var, D1},   {&s->res2.mean, D1}, {&s->res2.var, D1}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    /* cat (R, D0 + D1) = [sum_i w_i src[b, idx_i], skip] */
#pragma omp parallel for schedule(static)
    for (long t = 0; t < R; t++) {
        long b = t / G1;
        float *o = s->cat + t * Din;
        for (long j = 0; j < D0; j++) o[j] = 0;
        for (int i = 0; i < 3; i++) {
            const float *x = src + (b * G2 + idx3[t * 3 + i]) * D0;
            float w = w3[t * 3 + i];
            for (long j = 0; j < D0; j++) o[j] += w * x[j];
        }
        memcpy(o + D0, skip + t * D1, sizeof(float) * (size_t)D1);
    }
    TRY(m3_conv_bn_act_forward(r, &p->conv, &p->bn, NN_GELU, s->x0, &s->u, s->cat, R));
    TRY(m3_conv_bn_act_forward(r, &p->res_conv1, &p->res_bn1, NN_GELU, s->g1, &s->res1, s->x0, R));
    TRY(m3_conv_bn_act_forward(r, &p->res_conv2, &p->res_bn2, 0, NULL, &s->res2, s->g1, R));
    TRY(nn_add(r->c, s->sum, s->x0, s->res2.b, R * D1, r->err));
    return nn_act_forward(r->c, NN_GELU, out, s->sum, R * D1, r->err);
}

int m3_interp_backward(m3_run *r, const m3_interp *p, float *dsrc, float *dskip, const float *dout,
                       const m3_interp_state *s, const int32_t *idx3, const float *w3, long B, long G1,
                       long G2)
{
    long R = B * G1, Din = p->conv.in, D1 = p->conv.out, D0 = Din - D1;
    arena_mark_t mk = arena_mark(r->a);
    float *dsum = arena_floats(r->a, R * D1), *dx0 = arena_floats(r->a, R * D1),
          *dg1 = arena_zeros(r->a, R * D1), *dcat = arena_zeros(r->a, R * Din);
    NEED(dsum && dx0 && dg1 && dcat);
    TRY(nn_act_backward_set(r->c, NN_GELU, dsum, dout, s->sum, R * D1, r->err));
    memcpy(dx0, dsum, sizeof(float) * (size_t)(R * D1));
    /* residual branch: y = bn2(conv2(gelu(bn1(conv1(x0))))) */
    TRY(m3_conv_bn_act_backward(r, &p->res_conv2, &p->res_bn2, 0, dg1, dsum, &s->res2, s->g1, R));
    TRY(m3_conv_bn_act_backward(r, &p->res_conv1, &p->res_bn1, NN_GELU, dx0, dg1, &s->res1, s->x0, R));
    /* x0 = gelu(bn(conv(cat))) */
    TRY(m3_conv_bn_act_backward(r, &p->conv, &p->bn, NN_GELU, dcat, dx0, &s->u, s->cat, R));
    /* split: skip half, and the interpolation routed back to its three sources (serial per sample) */
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; b++)
        for (long t = b * G1; t < (b + 1) * G1; t++) {
            const float *d = dcat + t * Din;
            if (dskip)
                for (long j = 0; j < D1; j++) dskip[t * D1 + j] += d[D0 + j];
            for (int i = 0; i < 3; i++) {
                float *x = dsrc + (b * G2 + idx3[t * 3 + i]) * D0, w = w3[t * 3 + i];
                for (long j = 0; j < D0; j++) x[j] += w * d[j];
            }
        }
    arena_release(r->a, mk);
    return 0;
}
