/* rec_heads.c -- the two reconstruction heads on the decoder output and their losses, forward and
 * backward: the 3D head predicts each masked scale-1 token's k1 neighbour offsets (Chamfer L2
 * against the scale-0 centres), the 2D head each visible scale-1 token's view features at its k1
 * neighbours' pixels (MSE against the bicubic-sampled 2D grids) (docs/model3d.md).
 */
#include "model3d_impl.h"

#include <string.h>

#include "bicubic.h"
#include "losses.h"

static void target_2d(const model3d *m, const m3_heads_state *h, const m3_encoder_state *e,
                      const model3d_batch *batch);

int m3_heads_forward(m3_run *r, const model3d *m, m3_heads_state *h, const m3_encoder_state *e,
                     const m3_decoder_state *d, const model3d_batch *batch, model3d_losses *L)
{
    const model3d_config *c = &m->cfg;
    long B = e->B, G0 = c->groups[0], G1 = c->groups[1], k1 = c->k[1], D1 = c->dec_dims[1];
    long W2 = k1 * c->views * c->feat_dim;
    /* 3D head on every scale-1 token; the loss reads the masked ones */
    NEED(h->rec3d = arena_floats(r->a, B * G1 * 3 * k1));
    NEED(h->gt3d = arena_floats(r->a, B * G1 * 3 * k1));
    NEED(h->masked1 = arena_alloc(r->a, (size_t)(B * G1)));
    if (m->loss_w3 > 0)
        TRY(nn_linear_forward(r->c, h->rec3d, d->ds1.normed, M3P(r, m->rec3d.w), M3P(r, m->rec3d.b), B * G1,
                              D1, 3 * k1, r->err));
    else
        memset(h->rec3d, 0, sizeof(float) * (size_t)(B * G1 * 3 * k1));
    for (long t = 0; t < B * G1; t++) {
        long b = t / G1;
        h->masked1[t] = !e->mk.vis[1][t];
        for (long j = 0; j < k1; j++)
            for (int x = 0; x < 3; x++)
                h->gt3d[(t * k1 + j) * 3 + x] = e->tk.ctr[0][(b * G0 + e->tk.knn[1][t * k1 + j]) * 3 + x] -
                                                e->tk.ctr[1][t * 3 + x];
    }
    L->loss_3d = m->loss_w3 > 0 ? loss_chamfer_forward(h->rec3d, h->gt3d, h->masked1, B * G1, k1) : 0;
    L->loss_2d = 0;
    L->loss = m->loss_w3 * L->loss_3d;
    h->n_vrows = h->vcap = 0;
    if (!m3_heads_2d_on(m)) return 0; /* no 2D head: the grids and pixels are not read */
    /* 2D head on the visible scale-1 tokens, rows padded to B * cap1 */
    h->vcap = B * e->mk.cap[1];
    NEED(h->vrows = (int32_t *)arena_ints(r->a, h->vcap));
    NEED(h->v_in = arena_zeros(r->a, h->vcap * D1));
    NEED(h->rec2d = arena_floats(r->a, h->vcap * W2));
    NEED(h->tgt2d = arena_floats(r->a, h->vcap * W2));
    h->n_vrows = 0;
    for (long t = 0; t < B * G1; t++)
        if (!h->masked1[t]) h->vrows[h->n_vrows++] = (int32_t)t;
    nn_gather_rows(h->v_in, d->ds1.normed, h->vrows, h->n_vrows, D1);
    TRY(nn_linear_forward(r->c, h->rec2d, h->v_in, M3P(r, m->rec2d.w), M3P(r, m->rec2d.b), h->vcap, D1, W2,
                          r->err));
    target_2d(m, h, e, batch);
    L->loss_2d = loss_mse_forward(h->rec2d, h->tgt2d, h->n_vrows, W2);
    L->loss += m->loss_w2 * L->loss_2d;
    return 0;
}

int m3_heads_2d_on(const model3d *m)
{
    return m->cfg.feat_dim > 0 && m->loss_w2 > 0;
}

int m3_heads_backward(m3_run *r, const model3d *m, const m3_heads_state *h, const m3_decoder_state *d,
                      long B, float *ddec1)
{
    const model3d_config *c = &m->cfg;
    long G1 = c->groups[1], k1 = c->k[1], D1 = c->dec_dims[1], W2 = k1 * c->views * c->feat_dim;
    if (m->loss_w3 > 0) {
        float *drec3d = arena_zeros(r->a, B * G1 * 3 * k1);
        NEED(drec3d);
        loss_chamfer_backward(drec3d, h->rec3d, h->gt3d, h->masked1, B * G1, k1, m->loss_w3);
        TRY(nn_linear_backward(r->c, ddec1, M3G(r, m->rec3d.w), M3G(r, m->rec3d.b), drec3d, d->ds1.normed,
                               M3P(r, m->rec3d.w), B * G1, D1, 3 * k1, r->err));
    }
    if (!m3_heads_2d_on(m)) return 0;
    float *drec2d = arena_floats(r->a, h->vcap * W2), *dv_in = arena_zeros(r->a, h->vcap * D1);
    NEED(drec2d && dv_in);
    loss_mse_backward_set(drec2d, h->rec2d, h->tgt2d, h->n_vrows, W2, m->loss_w2);
    memset(drec2d + h->n_vrows * W2, 0, sizeof(float) * (size_t)((h->vcap - h->n_vrows) * W2)); /* padding rows */
    TRY(nn_linear_backward(r->c, dv_in, M3G(r, m->rec2d.w), M3G(r, m->rec2d.b), drec2d, h->v_in,
                           M3P(r, m->rec2d.w), h->vcap, D1, W2, r->err));
    nn_scatter_add_rows(ddec1, dv_in, h->vrows, h->n_vrows, D1);
    return 0;
}

/* h->tgt2d row i, (k1, V, F): the 2D features of visible row h->vrows[i]'s k1 neighbours (original
 * points) in each view, bicubic-sampled at their pixels. */
static void target_2d(const model3d *m, const m3_heads_state *h, const m3_encoder_state *e,
                      const model3d_batch *batch)
{
    const model3d_config *c = &m->cfg;
    long G0 = c->groups[0], G1 = c->groups[1], k1 = c->k[1], V = c->views, F = c->feat_dim, P = c->points;
    long W2 = k1 * V * F, g = c->grid;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < h->n_vrows; i++) {
        long t = h->vrows[i], b = t / G1;
        for (long j = 0; j < k1; j++) {
            long n = e->tk.orig[0][b * G0 + e->tk.knn[1][t * k1 + j]];
            for (long v = 0; v < V; v++) {
                const int16_t *px = batch->pixels + ((b * V + v) * P + n) * 2;
                bicubic_sample(batch->grids + (b * V + v) * g * g * F, (int)g, (int)F, c->image, px[0], px[1],
                               h->tgt2d + i * W2 + j * V * F + v * F);
            }
        }
    }
}
