/* m3_stage.c -- one transformer stage, used by the encoder's three scales and the decoder's two:
 * the positional MLP of the centres is added before every block (x = block(x + pos)), then an
 * optional stage LayerNorm; padded keys are excluded through the additive key bias, far keys (local
 * attention, fine-tuning) through a per-(query, key) bias; the per-sample stochastic-depth draws of
 * the blocks. Forward and backward; with r->recompute (training) each block's activations are
 * dropped after its forward and recomputed from its input in the backward (activation
 * checkpointing: the same operations on the same inputs, so the same results bitwise).
 */
#include "m3_layers.h"

#include <string.h>

#include "rng.h"

static int block_recompute(m3_run *r, const m3_stage *p, const m3_stage_state *s, int i, int heads,
                           m3_block_state *again, const m3_block_state **bs);

int m3_stage_forward(m3_run *r, const m3_stage *p, m3_stage_state *s, const float *x0, const float *ctr,
                     const float *keybias, long B, long T, int heads, int use_norm, uint64_t drop_key,
                     int drop_index0)
{
    /* one per-sample scale per block, shared by its two residual branches */
    int D = p->depth;
    float **drop = arena_alloc(r->a, sizeof(float *) * (size_t)(D + 1));
    NEED(drop);
    for (int i = 0; i < D; i++) {
        drop[i] = NULL;
        double rate = p->blocks[i].drop_rate;
        if (r->train && rate > 0) {
            NEED(drop[i] = arena_floats(r->a, B));
            rng_t g;
            rng_seed(&g, drop_key, (uint64_t)(drop_index0 + i));
            for (long b = 0; b < B; b++)
                drop[i][b] = rng_uniform(&g) < rate ? 0.0f : (float)(1.0 / (1.0 - rate));
        }
    }
    m3_stage_extra ex = {.pairbias = NULL, .drop_attn = (const float *const *)drop,
                         .drop_mlp = (const float *const *)drop};
    return m3_stage_forward_ex(r, p, s, x0, ctr, keybias, &ex, B, T, heads, use_norm);
}

int m3_stage_forward_ex(m3_run *r, const m3_stage *p, m3_stage_state *s, const float *x0, const float *ctr,
                        const float *keybias, const m3_stage_extra *ex, long B, long T, int heads,
                        int use_norm)
{
    long C = p->pos.fc2.out, N = B * T;
    int D = p->depth;
    memset(s, 0, sizeof *s);
    s->B = B;
    s->T = T;
    s->x0 = x0;
    s->ctr = ctr;
    s->keybias = keybias;
    s->pairbias = ex ? ex->pairbias : NULL;
    s->recomputed = r->recompute && r->G;
    s->pos = arena_floats(r->a, N * C);
    s->xin = arena_alloc(r->a, sizeof(float *) * (size_t)(D + 1));
    s->bs = arena_alloc(r->a, sizeof(m3_block_state) * (size_t)(D + 1));
    NEED(s->pos && s->xin && s->bs);
    TRY(m3_pos_forward(r, &p->pos, s->pos, &s->pos_s, ctr, N));
    const float *x = x0;
    for (int i = 0; i < D; i++) {
        float *out = arena_floats(r->a, N * C);
        s->xin[i] = arena_floats(r->a, N * C);
        NEED(out && s->xin[i]);
        const float *da = ex && ex->drop_attn ? ex->drop_attn[i] : NULL;
        const float *dm = ex && ex->drop_mlp ? ex->drop_mlp[i] : NULL;
        TRY(nn_add(r->c, s->xin[i], x, s->pos, N * C, r->err));
        arena_mark_t mk = arena_mark(r->a);
        TRY(m3_block_forward(r, &p->blocks[i], out, &s->bs[i], s->xin[i], keybias, s->pairbias, da, dm, B,
                             T, heads));
        if (s->recomputed) arena_release(r->a, mk); /* kept: xin[i], out and the drop scales */
        x = out;
    }
    s->raw = (float *)x;
    if (use_norm) {
        s->normed = arena_floats(r->a, N * C);
        s->ln_mean = arena_floats(r->a, N);
        s->ln_var = arena_floats(r->a, N);
        NEED(s->normed && s->ln_mean && s->ln_var);
        TRY(nn_layernorm_forward(r->c, s->normed, s->ln_mean, s->ln_var, s->raw, M3P(r, p->norm.w),
                                 M3P(r, p->norm.b), N, C, r->err));
    }
    return 0;
}

int m3_stage_backward(m3_run *r, const m3_stage *p, const m3_stage_state *s, float *draw,
                      const float *dnormed, float *dx0, int heads)
{
    long C = p->pos.fc2.out, B = s->B, T = s->T, N = B * T;
    int D = p->depth;
    if (dnormed && s->normed)
        TRY(nn_layernorm_backward(r->c, draw, M3G(r, p->norm.w), M3G(r, p->norm.b), dnormed, s->raw,
                                  M3P(r, p->norm.w), M3P(r, p->norm.b), s->ln_mean, s->ln_var, N, C, r->err));
    arena_mark_t mk = arena_mark(r->a);
    float *dpos = arena_zeros(r->a, N * C), *dxin = arena_floats(r->a, N * C);
    NEED(dpos && dxin);
    for (int i = D - 1; i >= 0; i--) {
        memset(dxin, 0, sizeof(float) * (size_t)(N * C));
        arena_mark_t bm = arena_mark(r->a);
        const m3_block_state *bs = &s->bs[i];
        m3_block_state again;
        if (s->recomputed) TRY(block_recompute(r, p, s, i, heads, &again, &bs));
        TRY(m3_block_backward(r, &p->blocks[i], dxin, draw, bs, s->xin[i], B, T, heads));
        arena_release(r->a, bm);
        TRY(nn_accumulate(r->c, dpos, dxin, N * C, r->err));
        memcpy(draw, dxin, sizeof(float) * (size_t)(N * C)); /* gradient w.r.t. the previous x */
        m3_grads_final(r, p->blocks[i].norm1.w);
    }
    if (D > 0) TRY(m3_pos_backward(r, &p->pos, dpos, &s->pos_s, s->ctr, N));
    TRY(nn_accumulate(r->c, dx0, draw, N * C, r->err));
    arena_release(r->a, mk);
    m3_grads_final(r, p->pos.fc1.w);
    return 0;
}

/* Block i's forward again from its saved input, with the forward's biases and drop scales, its
 * activations in *again from the arena (the caller releases them); *bs := again. */
static int block_recompute(m3_run *r, const m3_stage *p, const m3_stage_state *s, int i, int heads,
                           m3_block_state *again, const m3_block_state **bs)
{
    long N = s->B * s->T, C = p->pos.fc2.out;
    float *out = arena_floats(r->a, N * C);
    NEED(out);
    TRY(m3_block_forward(r, &p->blocks[i], out, again, s->xin[i], s->keybias, s->pairbias, s->bs[i].drop_attn,
                         s->bs[i].drop_mlp, s->B, s->T, heads));
    *bs = again;
    return 0;
}
