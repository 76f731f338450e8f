/* m3_block.c -- the pre-norm transformer block (x += proj(attn(norm1(x))); x += fc2(gelu(fc1(
 * norm2(x))))) with optional per-sample stochastic depth (each residual branch scaled per sample,
 * by its own scales) and optional attention biases per key and per (query, key), forward and backward. Saved activations live in the run's arena.
 */
#include "m3_layers.h"

#include <string.h>

/* rows (B,T,C): row block b scaled by scale[b]; the row blocks split between threads (elementwise:
 * the same bits at any thread count) */
static void scale_rows(float *x, const float *scale, long B, long T, long C)
{
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; b++)
        if (scale[b] != 1.0f) {
            float *xb = x + b * T * C, sb = scale[b];
#pragma omp simd
            for (long i = 0; i < T * C; i++) xb[i] *= sb;
        }
}

/* dst = src, row block b scaled by scale[b] if scale: the copy and scale_rows in one pass, the row
 * blocks split between threads (it ran on one thread while the other waited: 0.1 % of the fp32
 * step's samples, docs/performance.md) */
static void copy_scaled_rows(float *dst, const float *src, const float *scale, long B, long T, long C)
{
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; b++) {
        float *d = dst + b * T * C, sb = scale ? scale[b] : 1.0f;
        const float *x = src + b * T * C;
        if (sb == 1.0f) {
            memcpy(d, x, sizeof(float) * (size_t)(T * C));
            continue;
        }
#pragma omp simd
        for (long i = 0; i < T * C; i++) d[i] = x[i] * sb;
    }
}

/* out = a linear layer of the block on its input x, which the state keeps for the layer's weight
 * gradient: as it is (xb NULL: x is the state's f32 copy), or rounded into xb (x a temporary). */
static int linear_forward_kept(m3_run *r, float *out, const m3_linear *l, const float *x, uint16_t *xb, long N)
{
    const float *bias = l->b >= 0 ? M3P(r, l->b) : NULL;
    if (!xb) return nn_linear_forward(r->c, out, x, M3P(r, l->w), bias, N, l->in, l->out, r->err);
    nn_to_bf16(xb, x, N * l->in);
    return nn_linear_forward_bf16in(r->c, out, xb, M3P(r, l->w), bias, N, l->in, l->out, r->err);
}

/* When every linear layer of the block runs bf16, ln1, attn_out, ln2 and gelu are computed into one
 * temporary and kept only rounded to bf16 (ln1b, ...), the copy each layer reads in the forward and
 * again in its weight gradient (nn_linear_backward_bf16in): the same bits as converting them at each
 * use (the same rounding of the same values), one conversion instead of two, in half the room. */
int m3_block_forward(m3_run *r, const m3_block *p, float *out, m3_block_state *s, const float *inp,
                     const float *keybias, const float *pairbias, const float *drop_attn,
                     const float *drop_mlp, long B, long T, int heads)
{
    long N = B * T, C = p->C, n_att = B * heads * T * T;
    /* the saved probabilities: floats, or under NN_BF16 bf16 values, two per float (nn.h) */
    if (r->c->precision == NN_BF16) n_att = (n_att + 1) / 2;
    memset(s, 0, sizeof *s);
    s->drop_attn = drop_attn;
    s->drop_mlp = drop_mlp;
    m3_buffer saved[] = {{&s->ln1_mean, N}, {&s->ln1_var, N}, {&s->qkv, N * 3 * C}, {&s->att, n_att},
                         {&s->x1, N * C},   {&s->ln2_mean, N}, {&s->ln2_var, N},    {&s->fc1, N * 4 * C}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    int kb = nn_linear_is_bf16(r->c, C, C);
    float *in4[4]; /* the inputs of qkv, proj, fc1, fc2: f32 in the state, or bf16 (two values a float) */
    m3_buffer inputs[] = {{&in4[0], kb ? (N * C + 1) / 2 : N * C},
                          {&in4[1], kb ? (N * C + 1) / 2 : N * C},
                          {&in4[2], kb ? (N * C + 1) / 2 : N * C},
                          {&in4[3], kb ? (N * 4 * C + 1) / 2 : N * 4 * C}};
    TRY(m3_alloc_floats(r, inputs, sizeof inputs / sizeof *inputs));
    arena_mark_t mk = arena_mark(r->a);
    float *ln1 = in4[0], *ao = in4[1], *ln2 = in4[2], *gl = in4[3];
    if (kb) {
        s->ln1b = (uint16_t *)in4[0], s->attn_outb = (uint16_t *)in4[1], s->ln2b = (uint16_t *)in4[2];
        s->gelub = (uint16_t *)in4[3];
        float *tmp = arena_floats(r->a, N * 4 * C); /* the temporary the four pass through */
        NEED(tmp);
        ln1 = ao = ln2 = gl = tmp;
    } else
        s->ln1 = ln1, s->attn_out = ao, s->ln2 = ln2, s->gelu = gl;
    /* x1 = inp + proj(attn(norm1(inp))) */
    TRY(nn_layernorm_forward(r->c, ln1, s->ln1_mean, s->ln1_var, inp, M3P(r, p->norm1.w), M3P(r, p->norm1.b), N,
                             C, r->err));
    TRY(linear_forward_kept(r, s->qkv, &p->qkv, ln1, s->ln1b, N));
    TRY(nn_attention_forward_bias(r->c, ao, s->att, s->qkv, keybias, pairbias, B, T, C, heads, r->err));
    TRY(linear_forward_kept(r, out, &p->proj, ao, s->attn_outb, N));
    if (drop_attn) scale_rows(out, drop_attn, B, T, C);
    TRY(nn_add(r->c, s->x1, inp, out, N * C, r->err));
    /* out = x1 + fc2(gelu(fc1(norm2(x1)))) */
    TRY(nn_layernorm_forward(r->c, ln2, s->ln2_mean, s->ln2_var, s->x1, M3P(r, p->norm2.w), M3P(r, p->norm2.b), N,
                             C, r->err));
    TRY(linear_forward_kept(r, s->fc1, &p->fc1, ln2, s->ln2b, N));
    TRY(nn_act_forward(r->c, NN_GELU, gl, s->fc1, N * 4 * C, r->err));
    TRY(linear_forward_kept(r, out, &p->fc2, gl, s->gelub, N));
    arena_release(r->a, mk);
    if (drop_mlp) scale_rows(out, drop_mlp, B, T, C);
    return nn_add(r->c, out, s->x1, out, N * C, r->err);
}

/* A linear layer's backward (dinp overwritten) from its input as the forward kept it: f32, or bf16. */
static int linear_backward_kept(m3_run *r, float *dinp, const m3_linear *l, const float *dout, const float *inp,
                                const uint16_t *inb, long N)
{
    float *db = l->b >= 0 ? M3G(r, l->b) : NULL;
    if (inb)
        return nn_linear_backward_bf16in(r->c, dinp, M3G(r, l->w), db, dout, inb, M3P(r, l->w), N, l->in, l->out,
                                         r->err);
    return nn_linear_backward_set(r->c, dinp, M3G(r, l->w), db, dout, inp, M3P(r, l->w), N, l->in, l->out, r->err);
}

int m3_block_backward(m3_run *r, const m3_block *p, float *dinp, const float *dout,
                      const m3_block_state *s, const float *inp, long B, long T, int heads)
{
    long N = B * T, C = p->C;
    arena_mark_t mk = arena_mark(r->a);
    /* dgelu, dln, dattn are written whole by the linear backwards (nn_linear_backward_set: no
     * zeroing pass); dqkv is accumulated into by the attention's backward */
    float *dbranch = arena_floats(r->a, N * C), *dgelu = arena_floats(r->a, N * 4 * C),
          *dfc1 = arena_floats(r->a, N * 4 * C), *dln = arena_floats(r->a, N * C),
          *dx1 = arena_floats(r->a, N * C), *dattn = arena_floats(r->a, N * C),
          *dqkv = arena_zeros(r->a, N * 3 * C);
    NEED(dbranch && dgelu && dfc1 && dln && dx1 && dattn && dqkv);
    /* MLP branch */
    copy_scaled_rows(dbranch, dout, s->drop_mlp, B, T, C);
    TRY(linear_backward_kept(r, dgelu, &p->fc2, dbranch, s->gelu, s->gelub, N));
    TRY(nn_act_backward_set(r->c, NN_GELU, dfc1, dgelu, s->fc1, N * 4 * C, r->err));
    TRY(linear_backward_kept(r, dln, &p->fc1, dfc1, s->ln2, s->ln2b, N));
    memcpy(dx1, dout, sizeof(float) * (size_t)(N * C));
    TRY(nn_layernorm_backward(r->c, dx1, M3G(r, p->norm2.w), M3G(r, p->norm2.b), dln, s->x1,
                              M3P(r, p->norm2.w), M3P(r, p->norm2.b), s->ln2_mean, s->ln2_var, N, C,
                              r->err));
    /* attention branch */
    copy_scaled_rows(dbranch, dx1, s->drop_attn, B, T, C);
    TRY(linear_backward_kept(r, dattn, &p->proj, dbranch, s->attn_out, s->attn_outb, N));
    TRY(nn_attention_backward(r->c, dqkv, dattn, s->qkv, s->att, B, T, C, heads, r->err));
    TRY(linear_backward_kept(r, dln, &p->qkv, dqkv, s->ln1, s->ln1b, N));
    TRY(nn_layernorm_backward(r->c, dinp, M3G(r, p->norm1.w), M3G(r, p->norm1.b), dln, inp,
                              M3P(r, p->norm1.w), M3P(r, p->norm1.b), s->ln1_mean, s->ln1_var, N, C,
                              r->err));
    TRY(nn_accumulate(r->c, dinp, dx1, N * C, r->err));
    arena_release(r->a, mk);
    return 0;
}
