/* m3_group.c -- the mini-PointNet that turns a neighbourhood into one token, forward and backward:
 * the scale-0 embedding of grouped points (embed0) and the token merging of scales 1 and 2
 * (merge1, merge2) share it (docs/model3d.md). conv3 runs factorised over the concat [g, h2]
 * (m3_layers.h) on copies of its weight's two column halves; the state keeps b + c floats per row
 * (conv2's and conv3's outputs), the backward recomputes the ReLU outputs it needs. The light
 * forward keeps only the BatchNorm statistics and the max-pool winners; m3_group_backward_light
 * rebuilds the rest, bitwise, as it goes (embed0 under --recompute).
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

/* The first half, to h2: conv1 (into h1) -> bn1 -> relu (into r1) -> conv2 = s->h2 (R,b); s->g =
 * max over k of h2 (s->arg1). fresh: bn1 computes its batch statistics into s->mean1 / var1 (the
 * forward); else it applies the saved ones (a recomputation: the same primitive on the same input,
 * the same bits). h1, r1: R a floats each. */
static int front_h2(m3_run *r, const m3_group *p, m3_group_state *s, const float *inp, long G, long k,
                    int fresh, float *h1, float *r1)
{
    long R = G * k, a = p->conv1.out, b = p->conv2.out;
    TRY(nn_linear_forward(r->c, h1, inp, M3P(r, p->conv1.w), M3P(r, p->conv1.b), R, p->conv1.in, a, r->err));
    TRY(m3_bn_relu_conv_forward(r, &p->bn1, &p->conv2, fresh, s->h2, s->mean1, s->var1, r1, h1, R));
    nn_maxpool_forward(s->g, s->arg1, s->h2, G, k, b);
    return 0;
}

/* s->h3 = conv3 on [g broadcast, h2]: gy (G,c) = g W_g^T + b3, h3 = h2 W_h^T, then h3 += gy
 * broadcast over k (W_g, W_h: the column halves of conv3.w); G and weight-sized temporaries from ta. */
static int front_h3(m3_run *r, const m3_group *p, m3_group_state *s, long G, long k, arena *ta)
{
    long R = G * k, b = p->conv2.out, c = p->conv3.out;
    arena_mark_t mk = arena_mark(ta);
    float *gy = arena_floats(ta, G * c), *wg = arena_floats(ta, c * b), *wh = arena_floats(ta, c * b);
    NEED(gy && wg && wh);
    split_w3(wg, wh, M3P(r, p->conv3.w), b, c);
    TRY(nn_linear_forward(r->c, gy, s->g, wg, M3P(r, p->conv3.b), G, b, c, r->err));
    TRY(nn_linear_forward(r->c, s->h3, s->h2, wh, NULL, R, b, c, r->err));
#pragma omp parallel for schedule(static)
    for (long i = 0; i < R; i++) {
        float *y = s->h3 + i * c;
        const float *t = gy + (i / k) * c;
        for (long j = 0; j < c; j++) y[j] += t[j];
    }
    arena_release(ta, mk);
    return 0;
}

/* front_h2 with its temporaries h1, r1 from ta, then front_h3. */
static int group_front(m3_run *r, const m3_group *p, m3_group_state *s, const float *inp, long G, long k,
                       arena *ta, int fresh)
{
    long R = G * k, a = p->conv1.out;
    arena_mark_t mk = arena_mark(ta);
    float *h1 = arena_floats(ta, R * a), *r1 = arena_floats(ta, R * a);
    NEED(h1 && r1);
    TRY(front_h2(r, p, s, inp, G, k, fresh, h1, r1));
    arena_release(ta, mk);
    return front_h3(r, p, s, G, k, ta);
}

/* keep 1: h2, g and h3 in the state (r's arena); 0: only the statistics and the argmaxes, h2, g,
 * h3 being temporaries like the rest (from r->scratch when set, else r's arena). */
static int group_forward(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                         long G, long k, int keep)
{
    long R = G * k, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out, cout = p->conv4.out;
    memset(s, 0, sizeof *s);
    arena *ta = keep || !r->scratch ? r->a : r->scratch;
    if (keep) {
        m3_buffer saved[] = {{&s->h2, R * b}, {&s->g, G * b}, {&s->h3, R * c}};
        TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    }
    m3_buffer stats[] = {{&s->mean1, a}, {&s->var1, a}, {&s->mean2, c}, {&s->var2, c}};
    TRY(m3_alloc_floats(r, stats, sizeof stats / sizeof *stats));
    NEED(s->arg1 = (int32_t *)arena_ints(r->a, G * b));
    NEED(s->arg2 = (int32_t *)arena_ints(r->a, G * cout));
    arena_mark_t mk = arena_mark(ta);
    if (!keep) {
        NEED(s->h2 = arena_floats(ta, R * b));
        NEED(s->g = arena_floats(ta, G * b));
        NEED(s->h3 = arena_floats(ta, R * c));
    }
    TRY(group_front(r, p, s, inp, G, k, ta, 1));
    /* -> bn2 -> relu (in place, temporary r2) -> conv4 (R,cout) -> max over k (G,cout) */
    float *r2 = arena_floats(ta, R * c), *h4 = arena_floats(ta, R * cout);
    NEED(r2 && h4);
    TRY(m3_bn_relu_conv_forward(r, &p->bn2, &p->conv4, 1, h4, s->mean2, s->var2, r2, s->h3, R));
    nn_maxpool_forward(out, s->arg2, h4, G, k, cout);
    arena_release(ta, mk);
    if (!keep) s->h2 = s->g = s->h3 = NULL;
    return 0;
}

int m3_group_forward(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                     long G, long k)
{
    return group_forward(r, p, out, s, inp, G, k, 1);
}

int m3_group_forward_light(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                           long G, long k)
{
    return group_forward(r, p, out, s, inp, G, k, 0);
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
 * rows. light (after m3_group_forward_light): h3 is rebuilt first, its temporaries h1, r1, h2 in T
 * (which then needs R max(.., c + 2a + b)), and lives until bn2's backward; h2 is rebuilt in its
 * place just before conv3's backward, h1 and r1 in B: R (W + c + cout) floats at the peak instead
 * of R (W + b + c + cout) for recompute + backward. */
static int group_backward(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                          const m3_group_state *s0, const float *inp, long G, long k, int light)
{
    long R = G * k, cin = p->conv1.in, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out,
         cout = p->conv4.out;
    long W = max_l(2 * c, max_l(c + b, 3 * a + b));
    if (light) W = max_l(W, c + 2 * a + b);
    if (!light && !s0->h2)
        return errf(r->err, "model3d: the mini-PointNet's activations were not kept (m3_group_forward_light)");
    m3_group_state st = *s0, *s = &st;
    arena_mark_t mk = arena_mark(r->a);
    float *T = arena_floats(r->a, R * W);
    float *S = arena_floats(r->a, G * c), *dg = arena_zeros(r->a, G * b), *wg = arena_floats(r->a, c * b),
          *wh = arena_floats(r->a, c * b), *dwg = arena_zeros(r->a, c * b), *dwh = arena_zeros(r->a, c * b);
    NEED(T && S && dg && wg && wh && dwg && dwh);
    float *A = T, *B = T + R * c, *dh2 = T + R * (W - b);
    arena_mark_t mk3 = arena_mark(r->a);
    if (light) { /* h3 rebuilt, with h1, r1 and h2 as temporaries in T (g kept: G rows) */
        NEED(s->g = arena_floats(r->a, G * b));
        mk3 = arena_mark(r->a);
        NEED(s->h3 = arena_floats(r->a, R * c));
        s->h2 = T + 2 * R * a;
        TRY(front_h2(r, p, s, inp, G, k, 0, T, T + R * a));
        TRY(front_h3(r, p, s, G, k, r->a));
    }
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
    if (light) { /* h3 done with: h2 rebuilt in its place, h1 and r1 in B (dead) */
        arena_release(r->a, mk3);
        NEED(s->h2 = arena_floats(r->a, R * b));
        TRY(front_h2(r, p, s, inp, G, k, 0, B, B + R * a));
    }
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

int m3_group_backward(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                      const m3_group_state *s, const float *inp, long G, long k)
{
    return group_backward(r, p, dinp, dout, s, inp, G, k, 0);
}

int m3_group_backward_light(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                            const m3_group_state *s, const float *inp, long G, long k)
{
    return group_backward(r, p, dinp, dout, s, inp, G, k, 1);
}
