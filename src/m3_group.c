/* m3_group.c -- the mini-PointNet that turns a neighbourhood into one token, forward and backward:
 * the scale-0 embedding of grouped points (embed0) and the token merging of scales 1 and 2
 * (merge1, merge2) share it (docs/model3d.md). conv3 runs factorised over the concat [g, h2]
 * (m3_layers.h) on copies of its weight's two column halves; the state keeps b + c floats per row
 * (conv2's and conv3's outputs), the backward recomputes the ReLU outputs it needs.
 */
#include "m3_layers.h"

#include <string.h>

static long max_l(long x, long y)
{
    return x > y ? x : y;
}

/* The column halves of conv3's weight w3 (c, 2b) copied out: wg = w3[:, :b] (global), wh = w3[:, b:]
 * (per point), each (c,b) contiguous. A copy rather than strided weight descriptors: with a row
 * stride oneDNN 2.6 leaves brgemm for gemm:jit, whose rounding of a row depends on the number of
 * rows, which would make a sample's result depend on the batch it is in (eval). */
static void split_w3(float *wg, float *wh, const float *w3, long b, long c)
{
    for (long j = 0; j < c; j++) {
        memcpy(wg + j * b, w3 + j * 2 * b, sizeof(float) * (size_t)b);
        memcpy(wh + j * b, w3 + j * 2 * b + b, sizeof(float) * (size_t)b);
    }
}

/* gw3 (c, 2b) += [dwg | dwh] */
static void add_w3(float *gw3, const float *dwg, const float *dwh, long b, long c)
{
    for (long j = 0; j < c; j++)
        for (long q = 0; q < b; q++) {
            gw3[j * 2 * b + q] += dwg[j * b + q];
            gw3[j * 2 * b + b + q] += dwh[j * b + q];
        }
}

int m3_group_forward(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                     long G, long k)
{
    long R = G * k, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out,
         cout = p->conv4.out;
    memset(s, 0, sizeof *s);
    m3_buffer saved[] = {{&s->h2, R * b},   {&s->g, G * b},    {&s->h3, R * c},   {&s->mean1, a},
                         {&s->var1, a},     {&s->mean2, c},    {&s->var2, c}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    NEED(s->arg1 = (int32_t *)arena_ints(r->a, G * b));
    NEED(s->arg2 = (int32_t *)arena_ints(r->a, G * cout));
    arena_mark_t mk = arena_mark(r->a);
    float *gy = arena_floats(r->a, G * c), *wg = arena_floats(r->a, c * b), *wh = arena_floats(r->a, c * b);
    NEED(gy && wg && wh);
    /* (R,cin) -> conv1 (R,a) -> bn1 -> relu (in place) -> conv2 (R,b); h1 and r1 are temporaries */
    arena_mark_t mk1 = arena_mark(r->a);
    float *h1 = arena_floats(r->a, R * a), *r1 = arena_floats(r->a, R * a);
    NEED(h1 && r1);
    TRY(nn_linear_forward(r->c, h1, inp, M3P(r, p->conv1.w), M3P(r, p->conv1.b), R, p->conv1.in, a, r->err));
    TRY(m3_bn_relu_conv_forward(r, &p->bn1, &p->conv2, 1, s->h2, s->mean1, s->var1, r1, h1, R));
    arena_release(r->a, mk1);
    /* g (G,b) = max over k; conv3 on [g broadcast, h2]: gy (G,c) = g W_g^T + b3, h3 = h2 W_h^T, then
       h3 += gy broadcast over k (W_g, W_h: the column halves of conv3.w) */
    nn_maxpool_forward(s->g, s->arg1, s->h2, G, k, b);
    split_w3(wg, wh, M3P(r, p->conv3.w), b, c);
    TRY(nn_linear_forward(r->c, gy, s->g, wg, M3P(r, p->conv3.b), G, b, c, r->err));
    TRY(nn_linear_forward(r->c, s->h3, s->h2, wh, NULL, R, b, c, r->err));
#pragma omp parallel for schedule(static)
    for (long i = 0; i < R; i++) {
        float *y = s->h3 + i * c;
        const float *t = gy + (i / k) * c;
        for (long j = 0; j < c; j++) y[j] += t[j];
    }
    /* -> bn2 -> relu (in place, temporary r2) -> conv4 (R,cout) -> max over k (G,cout) */
    float *r2 = arena_floats(r->a, R * c), *h4 = arena_floats(r->a, R * cout);
    NEED(r2 && h4);
    TRY(m3_bn_relu_conv_forward(r, &p->bn2, &p->conv4, 1, h4, s->mean2, s->var2, r2, s->h3, R));
    nn_maxpool_forward(out, s->arg2, h4, G, k, cout);
    arena_release(r->a, mk);
    return 0;
}

/* s (G,C) = x (G,k,C) summed over k, in k order per element (deterministic). */
static void sum_over_k(float *s, const float *x, long G, long k, long C)
{
#pragma omp parallel for schedule(static)
    for (long gi = 0; gi < G; gi++) {
        float *o = s + gi * C;
        memcpy(o, x + gi * k * C, sizeof(float) * (size_t)C);
        for (long i = 1; i < k; i++)
            for (long j = 0; j < C; j++) o[j] += x[(gi * k + i) * C + j];
    }
}

/* One block T of R max(2c, c + b, 3a + b) floats carries the gradient down the layers (the
 * spec's sizes need no more than the two ping-pong buffers R max(c, b, 2a) and R max(c, a) it
 * replaced): [A | B] = [r2 then dy3 | dr2] (R,c) each at its start, dh2 (R,b) at its end, then
 * h1, r1 then dh1, dr1 (R,a) each at its start. r2 and r1 are recomputed (bitwise) just before
 * their use. conv4's output gradient (R,cout) lives only until conv4's backward, the rest is G
 * rows. */
int m3_group_backward(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                      const m3_group_state *s, const float *inp, long G, long k)
{
    long R = G * k, cin = p->conv1.in, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out,
         cout = p->conv4.out;
    long W = max_l(2 * c, max_l(c + b, 3 * a + b));
    arena_mark_t mk = arena_mark(r->a);
    float *T = arena_floats(r->a, R * W);
    float *S = arena_floats(r->a, G * c), *dg = arena_zeros(r->a, G * b), *wg = arena_floats(r->a, c * b),
          *wh = arena_floats(r->a, c * b), *dwg = arena_zeros(r->a, c * b), *dwh = arena_zeros(r->a, c * b);
    NEED(T && S && dg && wg && wh && dwg && dwh);
    float *A = T, *B = T + R * c, *dh2 = T + R * (W - b);
    /* r2 = relu(bn2(h3)) recomputed into A; conv4: B = dr2 */
    arena_mark_t mk4 = arena_mark(r->a);
    float *dh4 = arena_zeros(r->a, R * cout);
    NEED(dh4);
    nn_maxpool_backward(dh4, dout, s->arg2, G, k, cout);
    TRY(m3_bn_relu_conv_backward(r, &p->bn2, &p->conv4, B, A, s->mean2, s->var2, s->h3, dh4, R));
    arena_release(r->a, mk4);
    /* bn2: A = dy3 (B: the gradient over relu's input) */
    memset(A, 0, sizeof(float) * (size_t)(R * c));
    TRY(nn_batchnorm_backward(r->c, A, M3G(r, p->bn2.w), M3G(r, p->bn2.b), B, s->h3, M3P(r, p->bn2.w),
                              M3P(r, p->bn2.b), s->mean2, s->var2, R, c, r->err));
    /* conv3, per-point half: dh2 (R,b) = dy3 W_h, dW_h += dy3^T h2; global half on S = dy3
       summed over k: dg = S W_g, dW_g += S^T g, db3 += sum of S */
    float *gw3 = M3G(r, p->conv3.w);
    split_w3(wg, wh, M3P(r, p->conv3.w), b, c);
    memset(dh2, 0, sizeof(float) * (size_t)(R * b));
    TRY(nn_linear_backward(r->c, dh2, gw3 ? dwh : NULL, NULL, A, s->h2, wh, R, b, c, r->err));
    sum_over_k(S, A, G, k, c);
    TRY(nn_linear_backward(r->c, dg, gw3 ? dwg : NULL, M3G(r, p->conv3.b), S, s->g, wg, G, b, c, r->err));
    if (gw3) add_w3(gw3, dwg, dwh, b, c);
    /* max over k: dh2 += dg routed to the winners; conv1's output h1 and r1 = relu(bn1(h1))
       recomputed; conv2: dr1 */
    nn_maxpool_backward(dh2, dg, s->arg1, G, k, b);
    float *h1 = T, *r1 = T + R * a, *dr1 = T + 2 * R * a;
    TRY(nn_linear_forward(r->c, h1, inp, M3P(r, p->conv1.w), M3P(r, p->conv1.b), R, cin, a, r->err));
    TRY(m3_bn_relu_conv_backward(r, &p->bn1, &p->conv2, dr1, r1, s->mean1, s->var1, h1, dh2, R));
    /* bn1's input gradient over r1 */
    float *dh1 = r1;
    memset(dh1, 0, sizeof(float) * (size_t)(R * a));
    TRY(nn_batchnorm_backward(r->c, dh1, M3G(r, p->bn1.w), M3G(r, p->bn1.b), dr1, h1, M3P(r, p->bn1.w),
                              M3P(r, p->bn1.b), s->mean1, s->var1, R, a, r->err));
    TRY(nn_linear_backward(r->c, dinp, M3G(r, p->conv1.w), M3G(r, p->conv1.b), dh1, inp, M3P(r, p->conv1.w),
                           R, cin, a, r->err));
    arena_release(r->a, mk);
    return 0;
}
