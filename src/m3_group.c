/* m3_group.c -- the mini-PointNet that turns a neighbourhood into one token, forward and backward:
 * the scale-0 embedding of grouped points (embed0) and the token merging of scales 1 and 2
 * (merge1, merge2) share it (docs/model3d.md). conv3 runs factorised over the concat [g, h2]
 * (m3_layers.h) on copies of its weight's two column halves; the state keeps b + c floats per row
 * (conv2's and conv3's outputs), the backward recomputes the ReLU outputs it needs. The light
 * forward keeps only the BatchNorm statistics and the max-pool winners; m3_group_backward_light
 * rebuilds the rest, bitwise, as it goes (embed0 under --recompute). Both run by chunks of rows
 * (whole groups) when the rows exceed a chunk: the BatchNorms' sums over all rows and the weight
 * gradients' sums continued from chunk to chunk in the order of the whole-rows code, so the same bits.
 */
#include "m3_layers.h"

#ifdef __x86_64__
#include <immintrin.h>
#endif
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

/* Whether conv3's per-point half and conv4 run bf16: then bn2's input gradient goes to its two uses
 * through a sink (dy3_sink), and the forward that keeps h2 keeps its bf16 copy h2b too. */
static int group_bf16(m3_run *r, const m3_group *p)
{
    return m3_conv_is_bf16(r, &p->conv4) && nn_linear_is_bf16(r->c, p->conv2.out, p->conv3.out);
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
    if (s->h2b) nn_maxpool_forward_bf16(s->g, s->arg1, s->h2b, s->h2, G, k, b);
    else nn_maxpool_forward(s->g, s->arg1, s->h2, G, k, b);
    return 0;
}

/* Rows [r0, r1) of h3 (c wide) += gy's row of their group (k rows each). */
static void add_group_rows(float *h3, const float *gy, long r0, long r1, long k, long c)
{
    for (long i = r0; i < r1; i++) {
        float *y = h3 + i * c;
        const float *t = gy + (i / k) * c;
#pragma omp simd
        for (long j = 0; j < c; j++) y[j] += t[j];
    }
}

/* front_h3's add with bn2's batch statistics in the same sweep (an nn_row_sums_fn over h3's rows):
 * the rows of a block a few at a time (H3_STATS_ROWS: in the L1 cache) get their group's row, then
 * their statistics' pass (nn_bn_stats_part): the values and sums of the add followed by
 * nn_bn_stats_rows over h3, bitwise, without a second read of h3. */
enum { H3_STATS_ROWS = 8 };

typedef struct {
    float *h3;
    const float *gy;
    const double *acc;
    long k, c;
} h3_stats_arg;

static void h3_stats_block(double *part, long r0, long r1, const void *arg)
{
    const h3_stats_arg *a = arg;
    for (long i = r0; i < r1; i += H3_STATS_ROWS) {
        long n = r1 - i < H3_STATS_ROWS ? r1 - i : H3_STATS_ROWS;
        add_group_rows(a->h3, a->gy, i, i + n, a->k, a->c);
        nn_bn_stats_part(part, a->acc, a->h3 + i * a->c, n, a->c);
    }
}

/* s->h3 = conv3 on [g broadcast, h2]: gy (G,c) = g W_g^T + b3, h3 = h2 W_h^T, then h3 += gy
 * broadcast over k (W_g, W_h: the column halves of conv3.w); G and weight-sized temporaries from ta.
 * stats: bn2's batch statistics of h3 into s->mean2, s->var2 (and its running update) in the add's
 * sweep (h3_stats_block), the values of nn_batchnorm_stats_train over h3. */
static int front_h3(m3_run *r, const m3_group *p, m3_group_state *s, long G, long k, arena *ta, int stats)
{
    long R = G * k, b = p->conv2.out, c = p->conv3.out;
    arena_mark_t mk = arena_mark(ta);
    float *gy = arena_floats(ta, G * c), *wg = arena_floats(ta, c * b), *wh = arena_floats(ta, c * b);
    NEED(gy && wg && wh);
    split_w3(wg, wh, M3P(r, p->conv3.w), b, c);
    TRY(nn_linear_forward(r->c, gy, s->g, wg, M3P(r, p->conv3.b), G, b, c, r->err));
    if (s->h2b) TRY(nn_linear_forward_bf16in(r->c, s->h3, s->h2b, wh, NULL, R, b, c, r->err));
    else TRY(nn_linear_forward(r->c, s->h3, s->h2, wh, NULL, R, b, c, r->err));
    if (!stats) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < R; i++) add_group_rows(s->h3, gy, i, i + 1, k, c);
        arena_release(ta, mk);
        return 0;
    }
    double *acc = (double *)arena_floats(ta, 2 * nn_bn_acc_doubles(c));
    float *row0 = arena_floats(ta, c);
    NEED(acc && row0);
    for (long j = 0; j < c && R > 0; j++) row0[j] = s->h3[j] + gy[j]; /* h3's first row, as the add makes it */
    nn_bn_stats_begin(acc, R > 0 ? row0 : NULL, c);
    h3_stats_arg a = {s->h3, gy, acc, k, c};
    nn_row_block_sums(acc, acc + 3 * c, 2 * c, R, h3_stats_block, &a);
    nn_bn_stats_end(acc, s->mean2, s->var2, r->buf + p->bn2.run_mean, r->buf + p->bn2.run_var, R, c);
    arena_release(ta, mk);
    return 0;
}

/* The forward's front: front_h2 with its temporaries h1, r1 from ta (bn1's batch statistics
 * computed), then front_h3 (in training, with bn2's batch statistics). */
static int group_front(m3_run *r, const m3_group *p, m3_group_state *s, const float *inp, long G, long k,
                       arena *ta)
{
    long R = G * k, a = p->conv1.out;
    arena_mark_t mk = arena_mark(ta);
    float *h1 = arena_floats(ta, R * a), *r1 = arena_floats(ta, R * a);
    NEED(h1 && r1);
    TRY(front_h2(r, p, s, inp, G, k, 1, h1, r1));
    arena_release(ta, mk);
    return front_h3(r, p, s, G, k, ta, r->train);
}

/* The rows of a chunk of the by-rows backward: whole groups and a multiple of nn_linear_dw_rows() (so
 * that each weight gradient's running sum sees the chunks of its one-call sum), at most rows and R / 4
 * (when a multiple allows), so that a chunk's temporaries stay below R's; 0 when R fits in one. */
static long chunk_rows(long R, long k, long rows)
{
    long d = nn_linear_dw_rows(), u = d;
    while (u % k) u += d; /* lcm(k, d) */
    long want = rows < R / 4 ? rows : R / 4;
    long n = want / u > 1 ? want / u * u : u;
    return n < R ? n : 0;
}

/* The light forward (training) by chunks of n0 rows (whole groups), its temporaries from ta: each
 * BatchNorm's batch statistics summed chunk by chunk (nn_bn_stats_*: one pass each, over conv1's
 * output recomputed for bn1, then over conv3's for bn2), then the output from the chunks' conv4 with
 * both statistics: the same bits as the whole rows, one chunk's rows (a + max(a, c) + b + c + cout
 * floats each) and G b floats held instead of R (b + c + max(2a, c + cout)); conv1 runs 3 times,
 * conv2 and conv3 twice. */
static int group_forward_rows(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                              long G, long k, long n0, arena *ta)
{
    long R = G * k, cin = p->conv1.in, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out,
         cout = p->conv4.out, gc = n0 / k;
    float *h1 = arena_floats(ta, n0 * a), *tmp = arena_floats(ta, n0 * max_l(a, c)), *h2 = arena_floats(ta, n0 * b),
          *h3 = arena_floats(ta, n0 * c), *h4 = arena_floats(ta, n0 * cout), *g = arena_floats(ta, G * b);
    double *acc1 = (double *)arena_floats(ta, 2 * nn_bn_acc_doubles(a)),
           *acc2 = (double *)arena_floats(ta, 2 * nn_bn_acc_doubles(c));
    NEED(h1 && tmp && h2 && h3 && h4 && g && acc1 && acc2);
    float *rm1 = r->buf + p->bn1.run_mean, *rv1 = r->buf + p->bn1.run_var;
    float *rm2 = r->buf + p->bn2.run_mean, *rv2 = r->buf + p->bn2.run_var;
    for (int pass = 0; pass < 3; pass++) {
        for (long g0 = 0; g0 < G; g0 += gc) {
            long gn = G - g0 < gc ? G - g0 : gc, n = gn * k, i0 = g0 * k;
            if (pass == 0) { /* bn1's statistics over conv1's output */
                TRY(nn_linear_forward(r->c, h1, inp + i0 * cin, M3P(r, p->conv1.w), M3P(r, p->conv1.b), n, cin, a,
                                      r->err));
                if (g0 == 0) nn_bn_stats_begin(acc1, h1, a);
                nn_bn_stats_rows(acc1, h1, n, a);
                continue;
            }
            m3_group_state cs = *s;
            cs.h2 = h2;
            cs.h3 = h3;
            cs.g = g + g0 * b;
            cs.arg1 = s->arg1 + g0 * b;
            TRY(front_h2(r, p, &cs, inp + i0 * cin, gn, k, 0, h1, tmp));
            TRY(front_h3(r, p, &cs, gn, k, ta, 0));
            if (pass == 1) { /* bn2's statistics over conv3's output */
                if (g0 == 0) nn_bn_stats_begin(acc2, h3, c);
                nn_bn_stats_rows(acc2, h3, n, c);
            } else {
                TRY(m3_bn_relu_conv_forward(r, &p->bn2, &p->conv4, 0, h4, s->mean2, s->var2, tmp, h3, n));
                nn_maxpool_forward(out + g0 * cout, s->arg2 + g0 * cout, h4, gn, k, cout);
            }
        }
        if (pass == 0) nn_bn_stats_end(acc1, s->mean1, s->var1, rm1, rv1, R, a);
        if (pass == 1) nn_bn_stats_end(acc2, s->mean2, s->var2, rm2, rv2, R, c);
    }
    return 0;
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
        if (group_bf16(r, p)) NEED(s->h2b = (uint16_t *)arena_floats(r->a, (R * b + 1) / 2));
    }
    m3_buffer stats[] = {{&s->mean1, a}, {&s->var1, a}, {&s->mean2, c}, {&s->var2, c}};
    TRY(m3_alloc_floats(r, stats, sizeof stats / sizeof *stats));
    NEED(s->arg1 = (int32_t *)arena_ints(r->a, G * b));
    NEED(s->arg2 = (int32_t *)arena_ints(r->a, G * cout));
    arena_mark_t mk = arena_mark(ta);
    long n0 = keep || !r->train ? 0 : chunk_rows(R, k, M3_GROUP_CHUNK_ROWS);
    if (n0) {
        TRY(group_forward_rows(r, p, out, s, inp, G, k, n0, ta));
        arena_release(ta, mk);
        return 0;
    }
    if (!keep) {
        NEED(s->h2 = arena_floats(ta, R * b));
        NEED(s->g = arena_floats(ta, G * b));
        NEED(s->h3 = arena_floats(ta, R * c));
    }
    TRY(group_front(r, p, s, inp, G, k, ta));
    /* -> bn2 (its statistics from front_h3 in training) -> relu (in place, temporary r2) -> conv4
       (R,cout) -> max over k (G,cout) */
    float *r2 = arena_floats(ta, R * c), *h4 = arena_floats(ta, R * cout);
    NEED(r2 && h4);
    TRY(m3_bn_relu_conv_forward(r, &p->bn2, &p->conv4, 0, h4, s->mean2, s->var2, r2, s->h3, R));
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

/* o (C) = the k rows of x (k,C) summed, in row order per element (deterministic). */
static void sum_group(float *o, const float *x, long k, long C)
{
    memcpy(o, x, sizeof(float) * (size_t)C);
    for (long i = 1; i < k; i++) {
        const float *xi = x + i * C;
#pragma omp simd
        for (long j = 0; j < C; j++) o[j] += xi[j];
    }
}

/* s (G,C) = x (G,k,C) summed over k (sum_group per group). */
static void sum_over_k(float *s, const float *x, long G, long k, long C)
{
#pragma omp parallel for schedule(static)
    for (long gi = 0; gi < G; gi++) sum_group(s + gi * C, x + gi * k * C, k, C);
}

/* bn2's input gradient dy3 (R,c) taken piece by piece from its backward (nn_rows_sink) when conv3's
 * per-point half runs bf16: S (G,c) = dy3 summed over k as sum_over_k (same order, same bits) and
 * dy3b = dy3 rounded to bf16, the only two forms of dy3 that the step reads; dy3 itself is not stored. */
typedef struct {
    float *S;
    uint16_t *dy3b;
    long k, c;
} dy3_sink_arg;

static void dy3_sink(const float *rows, long r0, long r1, void *arg)
{
    const dy3_sink_arg *a = arg;
    long k = a->k, C = a->c;
    for (long gi = r0 / k; gi < r1 / k; gi++) sum_group(a->S + gi * C, rows + (gi * k - r0) * C, k, C);
    nn_to_bf16_serial_stream(a->dy3b + r0 * C, rows, (r1 - r0) * C);
}

/* conv2's output gradient dh2 in one sweep (dh2_block): dh2 = x, conv3's per-point backward-data
 * product, + dg routed to the max-pool's winners, with the very additions of the accumulating route
 * (nn_maxpool_backward_set then the product's sum post-op: each value + (0 + dg) at its winner, + 0
 * elsewhere; the addition commutes), summed per column for conv2's bias gradient in nn_col_sums_add's
 * order. bf16 step (xb set): the rows rounded into xb (conv2's bf16 backward reads it), dh2 itself never
 * written. f32 step (xb NULL): the rows written back over x. Rows in groups of at most DH2_FLOATS values
 * (in L1 between the add, the rounding and the sums). */
enum { DH2_FLOATS = 4096 };

typedef struct {
    float *x;
    const float *dg;
    const int32_t *arg;
    uint16_t *xb;
    long k, b;
} dh2_arg;

/* o (b) = x + (0 + d) where w == pos, x + 0 elsewhere */
static void route_row(float *o, const float *x, const float *d, const int32_t *w, int32_t pos, long b)
{
    for (long j = 0; j < b; j++) o[j] = x[j] + (w[j] == pos ? 0.0f + d[j] : 0.0f);
}

#ifdef __x86_64__
/* route_row on 16 lanes: the winners' lanes 0 + d, the others +0 (a zeroing mask), then + x: the same
 * additions (GCC left the plain loop scalar; the step's bf16 path runs on AVX-512 CPUs only, the f32
 * one takes the plain loop elsewhere) */
__attribute__((target("avx512f"))) static void route_row_avx512(float *o, const float *x, const float *d,
                                                                const int32_t *w, int32_t pos, long b)
{
    long j = 0;
    __m512i p = _mm512_set1_epi32(pos);
    for (; j + 16 <= b; j += 16) {
        __mmask16 m = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512((const void *)(w + j)), p);
        __m512 dv = _mm512_maskz_add_ps(m, _mm512_setzero_ps(), _mm512_loadu_ps(d + j));
        _mm512_storeu_ps(o + j, _mm512_add_ps(_mm512_loadu_ps(x + j), dv));
    }
    route_row(o + j, x + j, d + j, w + j, pos, b - j);
}
#endif

static void dh2_block(double *part, long r0, long r1, const void *arg)
{
    const dh2_arg *a = arg;
    long b = a->b, g = DH2_FLOATS / b;
    float y[DH2_FLOATS];
    int wide = 0;
#ifdef __x86_64__
    wide = __builtin_cpu_supports("avx512f");
#endif
    for (long q = r0; q < r1; q += g) {
        long n = r1 - q < g ? r1 - q : g;
        float *rows = a->xb ? y : a->x + q * b; /* where the group's sums land: y, or x in place */
        for (long i = 0; i < n; i++) {
            long row = q + i, grp = row / a->k;
            int32_t pos = (int32_t)(row % a->k);
            const float *x = a->x + row * b, *d = a->dg + grp * b;
            const int32_t *w = a->arg + grp * b;
#ifdef __x86_64__
            if (wide) {
                route_row_avx512(rows + i * b, x, d, w, pos, b);
                continue;
            }
#endif
            route_row(rows + i * b, x, d, w, pos, b);
        }
        if (a->xb) nn_to_bf16_serial_stream(a->xb + q * b, y, n * b);
        nn_col_sums_rows(part, rows, n, b);
    }
}

/* One block T of R max(2c, c + b, 3a + b) floats carries the gradient down the layers (the
 * spec's sizes need no more than the two ping-pong buffers R max(c, b, 2a) and R max(c, a) it
 * replaced): [A | B] = [r2 then dy3 (or dy3b, dy3_sink) | dr2] (R,c) each at its start, dh2 (R,b) at its end, then
 * h1, r1 then dh1, dr1 (R,a) each at its start (after dh2b, (b + 1) / 2 R floats, when dh2_block
 * rounds dh2 to bf16). r2 and r1 are recomputed (bitwise) just before
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
        TRY(front_h3(r, p, s, G, k, r->a, 0));
    }
    /* r2 = relu(bn2(h3)) recomputed into A; conv4: B = dr2 */
    arena_mark_t mk4 = arena_mark(r->a);
    float *dh4 = arena_floats(r->a, R * cout);
    NEED(dh4);
    nn_maxpool_backward_set(dh4, dout, s->arg2, G, k, cout);
    /* bn2 (ReLU's backward folded in): A = dy3 (B: the gradient at relu's output); with conv4 and
       conv3's per-point half in bf16, S and dy3 in bf16 (dy3b, in A's first half) instead */
    int fused = group_bf16(r, p);
    uint16_t *dy3b = (uint16_t *)A;
    if (fused) {
        float *scr = arena_floats(r->a, nn_bn_sink_scratch(c, k));
        NEED(scr);
        dy3_sink_arg sa = {S, dy3b, k, c};
        nn_rows_sink sink = {dy3_sink, &sa, k};
        TRY(m3_bn_relu_conv_bn_backward_sink(r, &p->bn2, &p->conv4, &sink, scr, B, A, s->mean2, s->var2, s->h3, dh4,
                                             R));
    } else
        TRY(m3_bn_relu_conv_bn_backward(r, &p->bn2, &p->conv4, 1, A, B, A, s->mean2, s->var2, s->h3, dh4, R));
    arena_release(r->a, mk4);
    if (light) { /* h3 done with: h2 rebuilt in its place, h1 and r1 in B (dead) */
        arena_release(r->a, mk3);
        NEED(s->h2 = arena_floats(r->a, R * b));
        TRY(front_h2(r, p, s, inp, G, k, 0, B, B + R * a));
    }
    /* conv3, global half on S = dy3 summed over k: dg = S W_g, dW_g += S^T g, db3 += sum of S;
       max over k: dh2 (R,b) = dg routed to the winners (written whole: no zeroing pass); per-point
       half: dh2 += dy3 W_h (the matmul's one sum with dh2: the same bits as dy3 W_h, then + the
       routed dg), dW_h += dy3^T h2 */
    float *gw3 = M3G(r, p->conv3.w);
    split_w3(wg, wh, M3P(r, p->conv3.w), b, c);
    if (!fused) sum_over_k(S, A, G, k, c);
    TRY(nn_linear_backward(r->c, dg, gw3 ? dwg : NULL, M3G(r, p->conv3.b), S, s->g, wg, G, b, c, r->err));
    /* bf16 with h2b kept (dh2b): dh2 = dy3 W_h alone, then dh2_block's sweep gives conv2 its bf16
       output gradient, in T's first (b + 1) / 2 R floats (dy3b's, dead by then), and its bias gradient;
       h1, r1, dr1 follow it (dh2 is dead after the sweep) */
    float *db2 = M3G(r, p->conv2.b);
    int dh2_bf16 =
        fused && s->h2b && m3_conv_is_bf16(r, &p->conv2) && db2 && b <= DH2_FLOATS && (b + 1) / 2 <= W - b;
    uint16_t *dh2b = (uint16_t *)T;
    /* f32 (conv3's per-point half not in bf16): dh2 = dy3 W_h written, then dh2_block's sweep adds the
       routed dg in place and sums conv2's bias gradient (the product's sum post-op, the routing pass
       and the bias gradient's pass over dh2 replaced) */
    int dh2_f32 = !fused && db2 && b <= DH2_FLOATS;
    if (dh2_bf16 || dh2_f32) {
        if (dh2_bf16)
            TRY(nn_linear_backward_bf16dout_in(r->c, dh2, gw3 ? dwh : NULL, dy3b, s->h2b, wh, R, b, c, 1, r->err));
        else
            TRY(nn_linear_backward_set(r->c, dh2, gw3 ? dwh : NULL, NULL, A, s->h2, wh, R, b, c, r->err));
        double *sc = (double *)arena_floats(r->a, 2 * nn_col_sums_scratch(b));
        NEED(sc);
        dh2_arg da = {dh2, dg, s->arg1, dh2_bf16 ? dh2b : NULL, k, b};
        nn_col_sums_by(db2, R, b, sc, dh2_block, &da);
    } else {
        nn_maxpool_backward_set(dh2, dg, s->arg1, G, k, b);
        if (fused && s->h2b)
            TRY(nn_linear_backward_bf16dout_in(r->c, dh2, gw3 ? dwh : NULL, dy3b, s->h2b, wh, R, b, c, 0, r->err));
        else if (fused)
            TRY(nn_linear_backward_bf16dout(r->c, dh2, gw3 ? dwh : NULL, dy3b, s->h2, wh, R, b, c, r->err));
        else
            TRY(nn_linear_backward(r->c, dh2, gw3 ? dwh : NULL, NULL, A, s->h2, wh, R, b, c, r->err));
    }
    if (gw3) add_w3(gw3, dwg, dwh, b, c);
    /* conv1's output h1 recomputed; conv2's backward (dr1) and bn1's over r1, ReLU folded in */
    float *h1 = T + (dh2_bf16 ? (b + 1) / 2 * R : 0), *r1 = h1 + R * a, *dr1 = r1 + R * a;
    TRY(nn_linear_forward(r->c, h1, inp, M3P(r, p->conv1.w), M3P(r, p->conv1.b), R, cin, a, r->err));
    float *dh1 = r1;
    if (dh2_bf16)
        TRY(m3_bn_relu_conv_bn_backward_bf16dout(r, &p->bn1, &p->conv2, dh1, dr1, r1, s->mean1, s->var1, h1, dh2b,
                                                 R));
    else
        TRY(m3_bn_relu_conv_bn_backward(r, &p->bn1, &p->conv2, !dh2_f32, dh1, dr1, r1, s->mean1, s->var1, h1, dh2,
                                        R));
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

/* The front of the rows [i0, i0 + n) (gn = n / k whole groups from g0): h2c (n,b), g's and arg1's rows
 * of the groups, h3c (n,c), rebuilt with the saved statistics (front_h2, front_h3 on the chunk: the same
 * rows, the same bits); h1, r1 in tmp (n max(c, 2a) floats). */
static int chunk_front(m3_run *r, const m3_group *p, const m3_group_state *s, float *g, float *h2c, float *h3c,
                       float *tmp, const float *inp, long g0, long gn, long k)
{
    long a = p->conv1.out, b = p->conv2.out, n = gn * k;
    m3_group_state cs = *s;
    cs.h2 = h2c;
    cs.h3 = h3c;
    cs.g = g + g0 * b;
    cs.arg1 = s->arg1 + g0 * b;
    TRY(front_h2(r, p, &cs, inp + g0 * k * p->conv1.in, gn, k, 0, tmp, tmp + n * a));
    return front_h3(r, p, &cs, gn, k, r->a, 0);
}

/* conv4's output gradient on the chunk, ReLU2's output recomputed into tmp from h3c, conv4's data
 * backward and ReLU's: dr2 (n,c) = the gradient at bn2's output; conv4's weight gradient into *dw4. */
static int chunk_dr2(m3_run *r, const m3_group *p, const m3_group_state *s, float *dr2, float *dh4, float *tmp,
                     const float *h3c, const float *dout, long g0, long gn, long k, nn_dw_sum *dw4)
{
    long cout = p->conv4.out, n = gn * k;
    nn_maxpool_backward_set(dh4, dout + g0 * cout, s->arg2 + g0 * cout, gn, k, cout);
    return m3_bn_relu_conv_backward_rows(r, &p->bn2, &p->conv4, dr2, tmp, s->mean2, s->var2, h3c, dh4, n, dw4);
}

/* The backward after the light forward in chunks of whole groups (chunk_rows), each pass recomputing its
 * chunks' activations from the input with the saved statistics; the BatchNorms' sums over all rows are
 * continued chunk by chunk (nn_batchnorm_sums_rows), the weight gradients' sums too (nn_linear_dw_*),
 * the bias gradients summed over all rows at once as in group_backward: the same bits. Passes:
 * 0. conv4's bias gradient from its whole output gradient (R cout floats, released);
 * 1. front, r2, conv4's data and weight gradients, bn2's sums (g kept: G rows);
 * 2. the same again, bn2's input gradient dy3, conv3's per-point weight gradient, dh2's per-point part
 *    dy3 W_h into D (R b floats kept), S = dy3 summed over k (G rows);
 *    then conv3's global half on G rows, dh2 += dg routed to the winners, conv2's bias gradient;
 * 3. conv1, bn1 (r1) recomputed, conv2's data and weight gradients: dr1 into D's first R a floats
 *    (over the consumed dh2 rows; a <= b and a <= c, else group_backward runs), bn1's sums;
 * 4. conv1's output again, bn1's input gradient dh1 into D's next R a floats;
 *    then conv1's backward on all rows at once.
 * Peak: R max(b, 2a) floats (D) + chunk-sized and G-sized temporaries, instead of R 1632 floats at
 * embed0's widths. */
static int group_backward_rows(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                               const m3_group_state *s, const float *inp, long G, long k, long n0)
{
    long R = G * k, cin = p->conv1.in, a = p->conv1.out, b = p->conv2.out, c = p->conv3.out,
         cout = p->conv4.out, gc = n0 / k;
    const float eps = NN_BN_EPS;
    arena_mark_t mk = arena_mark(r->a);
    /* 0: conv4's bias gradient over all rows */
    if (M3G(r, p->conv4.b)) {
        float *dh4 = arena_floats(r->a, R * cout);
        NEED(dh4);
        nn_maxpool_backward_set(dh4, dout, s->arg2, G, k, cout);
        TRY(nn_linear_backward(r->c, NULL, NULL, M3G(r, p->conv4.b), dh4, NULL, M3P(r, p->conv4.w), R, c, cout,
                               r->err));
        arena_release(r->a, mk);
    }
    float *D = arena_floats(r->a, R * max_l(b, 2 * a));
    float *g = arena_floats(r->a, G * b), *S = arena_floats(r->a, G * c), *dg = arena_zeros(r->a, G * b);
    float *wg = arena_floats(r->a, c * b), *wh = arena_floats(r->a, c * b), *dwg = arena_zeros(r->a, c * b),
          *dwh = arena_zeros(r->a, c * b);
    float *w4 = arena_floats(r->a, 2 * cout * c), *w3 = arena_floats(r->a, 2 * c * b),
          *w2 = arena_floats(r->a, 2 * b * a);
    double *acc2 = (double *)arena_zeros(r->a, 2 * nn_bn_acc_doubles(c)),
           *acc1 = (double *)arena_zeros(r->a, 2 * nn_bn_acc_doubles(a));
    float *h2c = arena_floats(r->a, n0 * b), *h3c = arena_floats(r->a, n0 * c),
          *tmp = arena_floats(r->a, n0 * max_l(c, 2 * a)), *dh4 = arena_floats(r->a, n0 * cout),
          *dr2 = arena_floats(r->a, n0 * c), *dy3 = arena_floats(r->a, n0 * c);
    NEED(D && g && S && dg && wg && wh && dwg && dwh && w4 && w3 && w2 && acc2 && acc1);
    NEED(h2c && h3c && tmp && dh4 && dr2 && dy3);
    float *gw3 = M3G(r, p->conv3.w);
    split_w3(wg, wh, M3P(r, p->conv3.w), b, c);
    nn_dw_sum dw4, dw3, dw2;
    nn_linear_dw_begin(&dw4, w4, c, cout);
    nn_linear_dw_begin(&dw3, w3, b, c);
    nn_linear_dw_begin(&dw2, w2, a, b);
    /* 1 */
    for (long g0 = 0; g0 < G; g0 += gc) {
        long gn = G - g0 < gc ? G - g0 : gc, n = gn * k;
        TRY(chunk_front(r, p, s, g, h2c, h3c, tmp, inp, g0, gn, k));
        TRY(chunk_dr2(r, p, s, dr2, dh4, tmp, h3c, dout, g0, gn, k, M3G(r, p->conv4.w) ? &dw4 : NULL));
        nn_batchnorm_sums_rows(acc2, dr2, h3c, s->mean2, s->var2, eps, n, c);
    }
    if (M3G(r, p->conv4.w)) TRY(nn_linear_dw_finish(&dw4, M3G(r, p->conv4.w), r->err));
    nn_batchnorm_sums_grads(M3G(r, p->bn2.w), M3G(r, p->bn2.b), acc2, c);
    /* 2 */
    for (long g0 = 0; g0 < G; g0 += gc) {
        long gn = G - g0 < gc ? G - g0 : gc, n = gn * k;
        TRY(chunk_front(r, p, s, g, h2c, h3c, tmp, inp, g0, gn, k));
        TRY(chunk_dr2(r, p, s, dr2, dh4, tmp, h3c, dout, g0, gn, k, NULL));
        nn_zero_floats(dy3, n * c);
        nn_batchnorm_dinp_rows(dy3, dr2, h3c, M3P(r, p->bn2.w), s->mean2, s->var2, eps, R, n, c, acc2);
        float *dh2 = D + g0 * k * b;
        nn_zero_floats(dh2, n * b);
        TRY(nn_linear_backward(r->c, dh2, NULL, NULL, dy3, h2c, wh, n, b, c, r->err));
        if (gw3) TRY(nn_linear_dw_add(r->c, &dw3, dy3, h2c, n, r->err));
        sum_over_k(S + g0 * c, dy3, gn, k, c);
    }
    if (gw3) TRY(nn_linear_dw_finish(&dw3, dwh, r->err));
    TRY(nn_linear_backward(r->c, dg, gw3 ? dwg : NULL, M3G(r, p->conv3.b), S, g, wg, G, b, c, r->err));
    if (gw3) add_w3(gw3, dwg, dwh, b, c);
    nn_maxpool_backward(D, dg, s->arg1, G, k, b);
    TRY(nn_linear_backward(r->c, NULL, NULL, M3G(r, p->conv2.b), D, NULL, M3P(r, p->conv2.w), R, a, b, r->err));
    /* 3: dr1 of a chunk into D + i0 a, below its dh2 rows (a <= b) */
    float *h1 = h3c, *r1 = tmp, *dr1 = dy3;
    for (long g0 = 0; g0 < G; g0 += gc) {
        long gn = G - g0 < gc ? G - g0 : gc, n = gn * k, i0 = g0 * k;
        TRY(nn_linear_forward(r->c, h1, inp + i0 * cin, M3P(r, p->conv1.w), M3P(r, p->conv1.b), n, cin, a,
                              r->err));
        TRY(m3_bn_relu_conv_backward_rows(r, &p->bn1, &p->conv2, dr1, r1, s->mean1, s->var1, h1, D + i0 * b, n,
                                          M3G(r, p->conv2.w) ? &dw2 : NULL));
        nn_batchnorm_sums_rows(acc1, dr1, h1, s->mean1, s->var1, eps, n, a);
        memcpy(D + i0 * a, dr1, sizeof(float) * (size_t)(n * a));
    }
    if (M3G(r, p->conv2.w)) TRY(nn_linear_dw_finish(&dw2, M3G(r, p->conv2.w), r->err));
    nn_batchnorm_sums_grads(M3G(r, p->bn1.w), M3G(r, p->bn1.b), acc1, a);
    /* 4 */
    float *dh1 = D + R * a;
    for (long g0 = 0; g0 < G; g0 += gc) {
        long gn = G - g0 < gc ? G - g0 : gc, n = gn * k, i0 = g0 * k;
        TRY(nn_linear_forward(r->c, h1, inp + i0 * cin, M3P(r, p->conv1.w), M3P(r, p->conv1.b), n, cin, a,
                              r->err));
        nn_zero_floats(dh1 + i0 * a, n * a);
        nn_batchnorm_dinp_rows(dh1 + i0 * a, D + i0 * a, h1, M3P(r, p->bn1.w), s->mean1, s->var1, eps, R, n, a,
                               acc1);
    }
    TRY(nn_linear_backward(r->c, dinp, M3G(r, p->conv1.w), M3G(r, p->conv1.b), dh1, inp, M3P(r, p->conv1.w), R,
                           cin, a, r->err));
    arena_release(r->a, mk);
    return 0;
}

int m3_group_backward_rows(m3_run *r, const m3_group *p, float *dinp, const float *dout, const m3_group_state *s,
                           const float *inp, long G, long k, long rows)
{
    long n0 = rows > 0 ? chunk_rows(G * k, k, rows) : 0;
    if (!n0 || p->conv1.out > p->conv2.out || p->conv1.out > p->conv3.out) return group_backward(r, p, dinp, dout, s, inp, G, k, 1);
    return group_backward_rows(r, p, dinp, dout, s, inp, G, k, n0);
}

int m3_group_backward_light(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                            const m3_group_state *s, const float *inp, long G, long k)
{
    return m3_group_backward_rows(r, p, dinp, dout, s, inp, G, k, M3_GROUP_CHUNK_ROWS);
}
