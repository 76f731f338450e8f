/* m3_pos.c -- the positional MLP of the token centres (3 -> C, GELU, C -> C) that a transformer
 * stage adds before each block, forward and backward (parameter gradients only).
 */
#include "m3_layers.h"

int m3_pos_forward(m3_run *r, const m3_pos *p, float *out, m3_pos_state *s, const float *xyz, long N)
{
    /* xyz (N,3) -> h (N,C) -> g = gelu(h) -> out (N,C) */
    int C = p->fc1.out;
    s->h = arena_floats(r->a, N * C);
    s->g = arena_floats(r->a, N * C);
    NEED(s->h && s->g);
    TRY(nn_linear_forward(r->c, s->h, xyz, M3P(r, p->fc1.w), M3P(r, p->fc1.b), N, 3, C, r->err));
    TRY(nn_act_forward(r->c, NN_GELU, s->g, s->h, N * C, r->err));
    return nn_linear_forward(r->c, out, s->g, M3P(r, p->fc2.w), M3P(r, p->fc2.b), N, C, C, r->err);
}

int m3_pos_backward(m3_run *r, const m3_pos *p, const float *dout, const m3_pos_state *s,
                    const float *xyz, long N)
{
    int C = p->fc1.out;
    arena_mark_t mk = arena_mark(r->a);
    float *dg = arena_floats(r->a, N * C), *dh = arena_floats(r->a, N * C);
    NEED(dg && dh);
    TRY(nn_linear_backward_set(r->c, dg, M3G(r, p->fc2.w), M3G(r, p->fc2.b), dout, s->g, M3P(r, p->fc2.w),
                               N, C, C, r->err));
    TRY(nn_act_backward_set(r->c, NN_GELU, dh, dg, s->h, N * C, r->err));
    TRY(nn_linear_backward(r->c, NULL, M3G(r, p->fc1.w), M3G(r, p->fc1.b), dh, xyz, M3P(r, p->fc1.w),
                           N, 3, C, r->err));
    arena_release(r->a, mk);
    return 0;
}
