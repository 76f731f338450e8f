/* decoder.c -- the decoder of the 3D network, forward and backward: stage 0 on the scale-2 tokens
 * (the encoded visible ones, then the mask token for every masked one), the upsampling to scale 1
 * (3-NN inverse-squared-distance weights, the scale-1 encoder outputs as skip), then stage 1 with
 * its LayerNorm (docs/model3d.md).
 */
#include "model3d_impl.h"

#include <string.h>

#include "pointops.h"

static int decoder0_input(m3_run *r, const model3d *m, m3_decoder_state *d, const m3_encoder_state *e);
static int upsample_weights(m3_run *r, const model3d *m, m3_decoder_state *d, const m3_encoder_state *e);

int m3_decoder_forward(m3_run *r, const model3d *m, m3_decoder_state *d, const m3_encoder_state *e,
                       uint64_t drop_key)
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G1 = c->groups[1], G2 = c->groups[2], D1 = c->dec_dims[1];
    TRY(decoder0_input(r, m, d, e));
    int idx0 = c->depths[0] + c->depths[1] + c->depths[2];
    TRY(m3_stage_forward(r, &m->dec[0], &d->ds0, d->d0_in, d->d0_ctr, NULL, B, G2, c->heads, 0,
                         drop_key, idx0));
    TRY(upsample_weights(r, m, d, e));
    NEED(d->skip = arena_zeros(r->a, B * G1 * D1));
    mask_scatter_visible(&e->mk, 1, B, G1, D1, e->es[1].normed, d->skip);
    NEED(d->up = arena_floats(r->a, B * G1 * D1));
    TRY(m3_interp_forward(r, &m->interp, d->up, &d->is, d->ds0.raw, d->idx3, d->w3, d->skip, B, G1, G2));
    return m3_stage_forward(r, &m->dec[1], &d->ds1, d->up, e->tk.ctr[1], NULL, B, G1, c->heads, 1,
                            drop_key, idx0 + c->dec_depths[0]);
}

int m3_decoder_backward(m3_run *r, const model3d *m, const m3_decoder_state *d, const m3_encoder_state *e,
                        const float *ddec1, float *const dnormed[3])
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G1 = c->groups[1], G2 = c->groups[2], D0 = c->dec_dims[0], D1 = c->dec_dims[1];
    /* stage 1, upsampling, stage 0 */
    float *draw1 = arena_zeros(r->a, B * G1 * D1), *dup = arena_zeros(r->a, B * G1 * D1),
          *ddec0 = arena_zeros(r->a, B * G2 * D0), *dskip = arena_zeros(r->a, B * G1 * D1),
          *dd0_in = arena_zeros(r->a, B * G2 * D0);
    NEED(draw1 && dup && ddec0 && dskip && dd0_in);
    TRY(m3_stage_backward(r, &m->dec[1], &d->ds1, draw1, ddec1, dup, c->heads));
    TRY(m3_interp_backward(r, &m->interp, ddec0, dskip, dup, &d->is, d->idx3, d->w3, B, G1, G2));
    m3_grads_final(r, m->interp.conv.w);
    TRY(m3_stage_backward(r, &m->dec[0], &d->ds0, ddec0, NULL, dd0_in, c->heads));
    /* into the encoder's outputs (scale 2 from stage 0's visible rows, scale 1 from the skip) and
     * the mask token (stage 0's masked rows) */
    float *dtoken = M3G(r, m->mask_token);
    for (long b = 0; b < B; b++) {
        long nv = e->mk.count[2][b];
        for (long i = 0; i < G2; i++) {
            const float *g = dd0_in + (b * G2 + i) * D0;
            if (i < nv) memcpy(dnormed[2] + (b * e->mk.cap[2] + i) * D0, g, sizeof(float) * (size_t)D0);
            else for (long j = 0; j < D0; j++) dtoken[j] += g[j];
        }
    }
    mask_gather_visible(&e->mk, 1, B, G1, D1, dskip, dnormed[1]);
    m3_grads_final(r, m->mask_token);
    return 0;
}

/* Stage 0's rows per sample: the encoded visible scale-2 tokens (ascending), then the mask token
 * for each masked one; d->order / d->row_of map rows <-> tokens, d->d0_ctr their centres. */
static int decoder0_input(m3_run *r, const model3d *m, m3_decoder_state *d, const m3_encoder_state *e)
{
    long B = e->B, G2 = m->cfg.groups[2], D0 = m->cfg.dec_dims[0], cap2 = e->mk.cap[2];
    NEED(d->order = (int32_t *)arena_ints(r->a, B * G2));
    NEED(d->row_of = (int32_t *)arena_ints(r->a, B * G2));
    NEED(d->d0_in = arena_floats(r->a, B * G2 * D0));
    NEED(d->d0_ctr = arena_floats(r->a, B * G2 * 3));
    for (long b = 0; b < B; b++) {
        long n = 0;
        for (long i = 0; i < e->mk.count[2][b]; i++) {
            memcpy(d->d0_in + (b * G2 + n) * D0, e->es[2].normed + (b * cap2 + i) * D0, sizeof(float) * (size_t)D0);
            d->order[b * G2 + n++] = e->mk.idx[2][b * cap2 + i];
        }
        for (long t = 0; t < G2; t++)
            if (!e->mk.vis[2][b * G2 + t]) {
                memcpy(d->d0_in + (b * G2 + n) * D0, M3P(r, m->mask_token), sizeof(float) * (size_t)D0);
                d->order[b * G2 + n++] = (int32_t)t;
            }
        for (long i = 0; i < G2; i++) {
            long t = d->order[b * G2 + i];
            d->row_of[b * G2 + t] = (int32_t)i;
            memcpy(d->d0_ctr + (b * G2 + i) * 3, e->tk.ctr[2] + (b * G2 + t) * 3, sizeof(float) * 3);
        }
    }
    return 0;
}

/* 3-NN of every scale-1 centre among the scale-2 centres, inverse squared distance weights;
 * d->idx3 holds stage-0 rows (d->row_of), d->w3 the normalised weights. */
static int upsample_weights(m3_run *r, const model3d *m, m3_decoder_state *d, const m3_encoder_state *e)
{
    long B = e->B, G1 = m->cfg.groups[1], G2 = m->cfg.groups[2];
    NEED(d->idx3 = (int32_t *)arena_ints(r->a, B * G1 * 3));
    NEED(d->w3 = arena_floats(r->a, B * G1 * 3));
    float *work = arena_floats(r->a, B * (4 * G2 + 3));
    NEED(work);
    knn_query_batch_ws(e->tk.ctr[2], B, G2, e->tk.ctr[1], G1, 3, d->idx3, work);
    for (long t = 0; t < B * G1; t++) {
        long b = t / G1;
        const float *q = e->tk.ctr[1] + t * 3;
        float w[3], z = 0;
        for (int i = 0; i < 3; i++) {
            const float *p = e->tk.ctr[2] + (b * G2 + d->idx3[t * 3 + i]) * 3;
            float dx = q[0] - p[0], dy = q[1] - p[1], dz = q[2] - p[2];
            w[i] = 1.0f / (dx * dx + dy * dy + dz * dz + 1e-8f);
            z += w[i];
        }
        for (int i = 0; i < 3; i++) {
            d->w3[t * 3 + i] = w[i] / z;
            d->idx3[t * 3 + i] = d->row_of[b * G2 + d->idx3[t * 3 + i]];
        }
    }
    return 0;
}
