/* encoder.c -- the hierarchical encoder of the 3D network over its three scales, forward and
 * backward: tokenize and mask, then per scale embed the neighbourhoods (embed0) or merge the
 * previous scale's tokens (merge1, merge2), and run the scale's transformer stage on the visible
 * tokens, padded to cap_s rows per sample; the encoded tokens are written back into token order
 * for the next scale's merge (docs/model3d.md).
 */
#include "model3d_impl.h"

#include <string.h>

#define PAD_BIAS (-1e5f)

int m3_encoder_prepare(m3_run *r, const model3d *m, m3_encoder_state *e, long B, const float *points,
                       int mask_mode, const model3d_batch *batch)
{
    e->B = B;
    if (tokenizer_run(&m->cfg, r->a, points, (int)B, &e->tk) ||
        mask_build(&m->cfg, r->a, &e->tk, (int)B, mask_mode, m->pad_multiple,
                   batch ? batch->point_saliency : NULL, batch ? batch->mask_keys : NULL,
                   batch ? batch->forced_visible : NULL, &e->mk))
        return errf(r->err, "model3d: out of memory (tokenizer)");
    return 0;
}

int m3_encoder_forward(m3_run *r, const model3d *m, m3_encoder_state *e, long B, const float *points,
                       int mask_mode, const model3d_batch *batch)
{
    TRY(m3_encoder_prepare(r, m, e, B, points, mask_mode, batch));
    for (int s = 0; s < 3; s++) TRY(m3_encoder_scale_forward(r, m, e, s, batch ? batch->drop_key : 0));
    return 0;
}

int m3_encoder_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, float *const dnormed[3])
{
    const model3d_config *c = &m->cfg;
    long B = e->B;
    /* stages 2, 1, 0 with the token merging between them */
    float *dfull[3];
    for (int s = 0; s < 3; s++) NEED(dfull[s] = arena_zeros(r->a, B * c->groups[s] * c->dims[s]));
    for (int s = 2; s >= 0; s--) TRY(m3_encoder_scale_backward(r, m, e, s, dfull, dnormed));
    return 0;
}

int m3_encoder_scale_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, int s,
                              float *const dfull[3], float *const dnormed[3])
{
    TRY(m3_encoder_stage_backward(r, m, e, s, dfull, dnormed));
    return m3_encoder_embed_backward(r, m, e, s, dfull);
}

int m3_encoder_stage_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, int s,
                              float *const dfull[3], float *const dnormed[3])
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G = c->groups[s], C = c->dims[s], cap = e->mk.cap[s];
    arena_mark_t mk = arena_mark(r->a);
    float *draw = arena_zeros(r->a, B * cap * C), *dx0 = arena_zeros(r->a, B * cap * C);
    NEED(draw && dx0);
    mask_gather_visible(&e->mk, s, B, G, C, dfull[s], draw);
    TRY(m3_stage_backward(r, &m->enc[s], &e->es[s], draw, dnormed[s], dx0, c->heads));
    /* visible rows of the embedding get the encoder-input gradient instead */
    mask_scatter_visible(&e->mk, s, B, G, C, dx0, dfull[s]);
    arena_release(r->a, mk);
    return 0;
}

/* embed0 after its light forward: the gradient w.r.t. full[0] into dkeep0, the arena released to
 * mark0 (or the scratch arena used), its activations recomputed, its backward. */
static int embed0_backward_light(m3_run *r, const model3d *m, const m3_encoder_state *e, const float *dfull0)
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G = c->groups[0], k = c->k[0];
    m3_run rr = *r;
    arena_mark_t mk;
    if (r->scratch) {
        rr.a = r->scratch;
        mk = arena_mark(rr.a);
    } else {
        memcpy(e->dkeep0, dfull0, sizeof(float) * (size_t)(B * G * c->dims[0]));
        dfull0 = e->dkeep0;
        arena_release(rr.a, e->mark0);
        mk = e->mark0;
    }
    int rc = m3_group_backward_light(&rr, &m->embed[0], NULL, dfull0, &e->gs[0], e->grp_in[0], B * G, k);
    arena_release(rr.a, mk);
    return rc ? -1 : 0;
}

int m3_encoder_embed_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, int s,
                              float *const dfull[3])
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G = c->groups[s], k = c->k[s];
    if (s == 0 && e->light0) return embed0_backward_light(r, m, e, dfull[0]);
    arena_mark_t mk = arena_mark(r->a);
    float *dgrp = NULL;
    long Cp = s > 0 ? c->dims[s - 1] : 3;
    if (s > 0) NEED(dgrp = arena_zeros(r->a, B * G * k * Cp));
    TRY(m3_group_backward(r, &m->embed[s], dgrp, dfull[s], &e->gs[s], e->grp_in[s], B * G, k));
    if (s > 0) { /* each sample's rows of dfull[s - 1] its own: parallel over samples, serial within */
        long Gp = c->groups[s - 1];
#pragma omp parallel for schedule(static)
        for (long b = 0; b < B; b++)
            for (long i = b * G * k; i < (b + 1) * G * k; i++) {
                float *d = dfull[s - 1] + (b * Gp + e->tk.knn[s][i]) * Cp;
                for (long j = 0; j < Cp; j++) d[j] += dgrp[i * Cp + j];
            }
    }
    arena_release(r->a, mk);
    return 0;
}

int m3_encoder_scale_forward(m3_run *r, const model3d *m, m3_encoder_state *e, int s, uint64_t drop_key)
{
    TRY(m3_encoder_embed_forward(r, m, e, s));
    return m3_encoder_stage_forward(r, m, e, s, drop_key);
}

/* Scale s's tokens: embed0 of the scale-0 neighbourhoods, or merge of the previous scale's tokens
 * gathered by the kNN sets, into e->full[s]. */
int m3_encoder_embed_forward(m3_run *r, const model3d *m, m3_encoder_state *e, int s)
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G = c->groups[s], k = c->k[s], C = c->dims[s];
    NEED(e->full[s] = arena_floats(r->a, B * G * C));
    if (s == 0) {
        e->grp_in[0] = e->tk.nb0;
    } else {
        long Gp = c->groups[s - 1], Cp = c->dims[s - 1];
        NEED(e->grp_in[s] = arena_floats(r->a, B * G * k * Cp));
#pragma omp parallel for schedule(static)
        for (long i = 0; i < B * G * k; i++) {
            long b = i / (G * k);
            memcpy(e->grp_in[s] + i * Cp, e->full[s - 1] + (b * Gp + e->tk.knn[s][i]) * Cp,
                   sizeof(float) * (size_t)Cp);
        }
    }
    if (s == 0) e->light0 = r->recompute && r->train && r->G;
    if (s > 0 || !e->light0) return m3_group_forward(r, &m->embed[s], e->full[s], &e->gs[s], e->grp_in[s], B * G, k);
    TRY(m3_group_forward_light(r, &m->embed[0], e->full[0], &e->gs[0], e->grp_in[0], B * G, k));
    if (!r->scratch) NEED(e->dkeep0 = arena_floats(r->a, B * G * C));
    e->mark0 = arena_mark(r->a);
    return 0;
}

/* Scale s's stage on its visible tokens of e->full[s], written back into e->full[s]. */
int m3_encoder_stage_forward(m3_run *r, const model3d *m, m3_encoder_state *e, int s, uint64_t drop_key)
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G = c->groups[s], C = c->dims[s], cap = e->mk.cap[s];
    /* gather the visible tokens, padded to cap rows per sample */
    NEED(e->x0[s] = arena_zeros(r->a, B * cap * C));
    NEED(e->ctr[s] = arena_zeros(r->a, B * cap * 3));
    NEED(e->keybias[s] = arena_floats(r->a, B * cap));
    mask_gather_visible(&e->mk, s, B, G, C, e->full[s], e->x0[s]);
    mask_gather_visible(&e->mk, s, B, G, 3, e->tk.ctr[s], e->ctr[s]);
    for (long b = 0; b < B; b++)
        for (long i = 0; i < cap; i++) e->keybias[s][b * cap + i] = i < e->mk.count[s][b] ? 0.0f : PAD_BIAS;
    int idx0 = 0;
    for (int j = 0; j < s; j++) idx0 += c->depths[j];
    TRY(m3_stage_forward(r, &m->enc[s], &e->es[s], e->x0[s], e->ctr[s], e->keybias[s], B, cap, c->heads, 1,
                         drop_key, idx0));
    /* write the encoded visible tokens back into the full array */
    mask_scatter_visible(&e->mk, s, B, G, C, e->es[s].raw, e->full[s]);
    return 0;
}
