/* m3_block.c -- the pre-norm transformer block (x += proj(attn(norm1(x))); x += fc2(gelu(fc1(
 * norm2(x))))) with optional per-sample stochastic depth (each residual branch scaled per sample,
 * by its own scales) and optional attention biases per key and per (query, key), forward and backward. Saved activations live in the run's arena.
 */
#include "m3_layers.h"

#include <string.h>

/* rows (B,T,C): row block b scaled by scale[b] */
static void scale_rows(float *x, const float *scale, long B, long T, long C)
{
    for (long b = 0; b < B; b++)
        if (scale[b] != 1.0f) {
            float *xb = x + b * T * C, sb = scale[b];
#pragma omp simd
            for (long i = 0; i < T * C; i++) xb[i] *= sb;
        }
}

/* dst = src, row block b scaled by scale[b] if scale: the copy and scale_rows in one pass */
static void copy_scaled_rows(float *dst, const float *src, const float *scale, long B, long T, long C)
{
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

/* The bf16 form of the block (every linear layer bf16): ln1, attn_out, ln2 and gelu are computed into a
 * temporary and kept only rounded to bf16 (ln1b, ...), the copy each linear layer reads in the forward
 * and again in its weight gradient (nn_linear_backward_bf16in); the same bits as converting them at
 * each use (the same rounding of the same values), one conversion instead of two. */
static int block_forward_bf16(m3_run *r, const m3_block *p, float *out, m3_block_state *s, const float *inp,
                              const float *keybias, const float *pairbias, long B, long T, int heads)
{
    long N = B * T, C = p->C, n_att = (B * heads * T * T + 1) / 2; /* bf16 probabilities, two a float */
    m3_buffer saved[] = {{&s->ln1_mean, N}, {&s->ln1_var, N}, {&s->qkv, N * 3 * C}, {&s->att, n_att},
                         {&s->x1, N * C},   {&s->ln2_mean, N}, {&s->ln2_var, N},    {&s->fc1, N * 4 * C}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    float *b16[4];
    m3_buffer halves[] = {{&b16[0], (N * C + 1) / 2}, {&b16[1], (N * C + 1) / 2}, {&b16[2], (N * C + 1) / 2},
                          {&b16[3], (N * 4 * C + 1) / 2}};
    TRY(m3_alloc_floats(r, halves, sizeof halves / sizeof *halves));
    s->ln1b = (uint16_t *)b16[0], s->attn_outb = (uint16_t *)b16[1], s->ln2b = (uint16_t *)b16[2];
    s->gelub = (uint16_t *)b16[3];
    arena_mark_t mk = arena_mark(r->a);
    float *tmp = arena_floats(r->a, N * 4 * C);
    NEED(tmp);
    /* x1 = inp + proj(attn(norm1(inp))) */
    TRY(nn_layernorm_forward(r->c, tmp, s->ln1_mean, s->ln1_var, inp, M3P(r, p->norm1.w), M3P(r, p->norm1.b), N,
                             C, r->err));
    nn_to_bf16(s->ln1b, tmp, N * C);
    TRY(nn_linear_forward_bf16in(r->c, s->qkv, s->ln1b, M3P(r, p->qkv.w), NULL, N, C, 3 * C, r->err));
    TRY(nn_attention_forward_bias(r->c, tmp, s->att, s->qkv, keybias, pairbias, B, T, C, heads, r->err));
    nn_to_bf16(s->attn_outb, tmp, N * C);
    TRY(nn_linear_forward_bf16in(r->c, out, s->attn_outb, M3P(r, p->proj.w), M3P(r, p->proj.b), N, C, C, r->err));
    if (s->drop_attn) scale_rows(out, s->drop_attn, B, T, C);
    TRY(nn_add(r->c, s->x1, inp, out, N * C, r->err));
    /* out = x1 + fc2(gelu(fc1(norm2(x1)))) */
    TRY(nn_layernorm_forward(r->c, tmp, s->ln2_mean, s->ln2_var, s->x1, M3P(r, p->norm2.w), M3P(r, p->norm2.b), N,
                             C, r->err));
    nn_to_bf16(s->ln2b, tmp, N * C);
    TRY(nn_linear_forward_bf16in(r->c, s->fc1, s->ln2b, M3P(r, p->fc1.w), M3P(r, p->fc1.b), N, C, 4 * C, r->err));
    TRY(nn_act_forward(r->c, NN_GELU, tmp, s->fc1, N * 4 * C, r->err));
    nn_to_bf16(s->gelub, tmp, N * 4 * C);
    TRY(nn_linear_forward_bf16in(r->c, out, s->gelub, M3P(r, p->fc2.w), M3P(r, p->fc2.b), N, 4 * C, C, r->err));
    arena_release(r->a, mk);
    if (s->drop_mlp) scale_rows(out, s->drop_mlp, B, T, C);
    return nn_add(r->c, out, s->x1, out, N * C, r->err);
}

int m3_block_forward(m3_run *r, const m3_block *p, float *out, m3_block_state *s, const float *inp,
                     const float *keybias, const float *pairbias, const float *drop_attn,
                     const float *drop_mlp, long B, long T, int heads)
{
    long N = B * T, C = p->C, n_att = B * heads * T * T;
    memset(s, 0, sizeof *s);
    s->drop_attn = drop_attn;
    s->drop_mlp = drop_mlp;
    if (nn_linear_is_bf16(r->c, C, C))
        return block_forward_bf16(r, p, out, s, inp, keybias, pairbias, B, T, heads);
    /* the saved probabilities: floats, or under NN_BF16 bf16 values, two per float (nn.h) */
    if (r->c->precision == NN_BF16) n_att = (n_att + 1) / 2;
    m3_buffer saved[] = {{&s->ln1, N * C},      {&s->ln1_mean, N}, {&s->ln1_var, N},
                         {&s->qkv, N * 3 * C},  {&s->att, n_att},
                         {&s->attn_out, N * C}, {&s->x1, N * C},   {&s->ln2, N * C},
                         {&s->ln2_mean, N},     {&s->ln2_var, N},  {&s->fc1, N * 4 * C},
                         {&s->gelu, N * 4 * C}};
    TRY(m3_alloc_floats(r, saved, sizeof saved / sizeof *saved));
    /* x1 = inp + proj(attn(norm1(inp))) */
    TRY(nn_layernorm_forward(r->c, s->ln1, s->ln1_mean, s->ln1_var, inp, M3P(r, p->norm1.w),
                             M3P(r, p->norm1.b), N, C, r->err));
    TRY(nn_linear_forward(r->c, s->qkv, s->ln1, M3P(r, p->qkv.w), NULL, N, C, 3 * C, r->err));
    TRY(nn_attention_forward_bias(r->c, s->attn_out, s->att, s->qkv, keybias, pairbias, B, T, C, heads,
                                  r->err));
    TRY(nn_linear_forward(r->c, out, s->attn_out, M3P(r, p->proj.w), M3P(r, p->proj.b), N, C, C, r->err));
    if (drop_attn) scale_rows(out, drop_attn, B, T, C);
    TRY(nn_add(r->c, s->x1, inp, out, N * C, r->err));
    /* out = x1 + fc2(gelu(fc1(norm2(x1)))) */
    TRY(nn_layernorm_forward(r->c, s->ln2, s->ln2_mean, s->ln2_var, s->x1, M3P(r, p->norm2.w),
                             M3P(r, p->norm2.b), N, C, r->err));
    TRY(nn_linear_forward(r->c, s->fc1, s->ln2, M3P(r, p->fc1.w), M3P(r, p->fc1.b), N, C, 4 * C, r->err));
    TRY(nn_act_forward(r->c, NN_GELU, s->gelu, s->fc1, N * 4 * C, r->err));
    TRY(nn_linear_forward(r->c, out, s->gelu, M3P(r, p->fc2.w), M3P(r, p->fc2.b), N, 4 * C, C, r->err));
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
