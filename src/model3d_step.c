/* model3d_step.c -- one training step of the 3D network (tokenize, mask, embed + encode three
 * scales, decode, both heads and losses, then the whole backward), and the encoder-only forward
 * that gives the pooled global feature. Semantics: docs/model3d.md. Activations live in the model's
 * step arena; every size requested depends only on (config, B), so steps after the first allocate
 * nothing (model3d_alloc_stats).
 */
#include "model3d_impl.h"

#include <stdio.h>
#include <string.h>

#include "bicubic.h"
#include "errors.h"
#include "losses.h"
#include "pointops.h"
#include "tokenizer.h"

#define TRY(x) do { if (x) return -1; } while (0)
#define NEED(p) do { if (!(p)) return errf(r->err, "model3d: out of memory (step arena)"); } while (0)
#define PAD_BIAS (-1e5f)

typedef struct {
    long B;
    m3_tokens tk;
    m3_mask mk;
    float *grp_in[3];        /* group inputs: nb0 (B*G0*k0,3); gathered tokens (B*G_s*k_s, C_{s-1}) */
    m3_group_state gs[3];
    float *full[3];          /* (B*G_s, C_s): embeddings, visible rows overwritten by the encoder */
    float *x0[3], *ctr[3], *keybias[3];
    m3_stage_state es[3];
    /* decoder */
    int32_t *order;          /* (B,G2) token at each decoder-0 row: visible ascending, then masked */
    int32_t *row_of;         /* (B,G2) decoder-0 row of each token */
    float *d0_in, *d0_ctr;
    m3_stage_state ds0;
    int32_t *idx3;
    float *w3, *skip, *up;
    m3_interp_state is;
    m3_stage_state ds1;
    /* heads */
    float *rec3d, *gt3d;
    uint8_t *masked1;
    int32_t *vrows;          /* (Vcap) visible scale-1 rows b*G1+t, batch-major ascending */
    long n_vrows, vcap;
    float *v_in, *rec2d, *tgt2d;
} m3_fwd;

/* ---- encoder side, shared by train and eval ---- */

static int encode_scale(m3_run *r, const model3d *m, m3_fwd *f, int s, uint64_t drop_key)
{
    const model3d_config *c = &m->cfg;
    long B = f->B, G = c->groups[s], k = c->k[s], C = c->dims[s], cap = f->mk.cap[s];
    NEED(f->full[s] = arena_floats(r->a, B * G * C));
    if (s == 0) {
        f->grp_in[0] = f->tk.nb0;
    } else {
        long Gp = c->groups[s - 1], Cp = c->dims[s - 1];
        NEED(f->grp_in[s] = arena_floats(r->a, B * G * k * Cp));
#pragma omp parallel for schedule(static)
        for (long i = 0; i < B * G * k; i++) {
            long b = i / (G * k);
            memcpy(f->grp_in[s] + i * Cp, f->full[s - 1] + (b * Gp + f->tk.knn[s][i]) * Cp,
                   sizeof(float) * (size_t)Cp);
        }
    }
    TRY(m3_group_forward(r, &m->embed[s], f->full[s], &f->gs[s], f->grp_in[s], B * G, k));
    /* gather the visible tokens, padded to cap rows per sample */
    NEED(f->x0[s] = arena_zeros(r->a, B * cap * C));
    NEED(f->ctr[s] = arena_zeros(r->a, B * cap * 3));
    NEED(f->keybias[s] = arena_floats(r->a, B * cap));
    for (long b = 0; b < B; b++)
        for (long i = 0; i < cap; i++) {
            int valid = i < f->mk.count[s][b];
            f->keybias[s][b * cap + i] = valid ? 0.0f : PAD_BIAS;
            if (!valid) continue;
            long t = f->mk.idx[s][b * cap + i];
            memcpy(f->x0[s] + (b * cap + i) * C, f->full[s] + (b * G + t) * C, sizeof(float) * (size_t)C);
            memcpy(f->ctr[s] + (b * cap + i) * 3, f->tk.ctr[s] + (b * G + t) * 3, sizeof(float) * 3);
        }
    int idx0 = 0;
    for (int j = 0; j < s; j++) idx0 += c->depths[j];
    TRY(m3_stage_forward(r, &m->enc[s], &f->es[s], f->x0[s], f->ctr[s], f->keybias[s], B, cap, c->heads, 1,
                         drop_key, idx0));
    /* write the encoded visible tokens back into the full array */
    for (long b = 0; b < B; b++)
        for (long i = 0; i < f->mk.count[s][b]; i++)
            memcpy(f->full[s] + (b * G + f->mk.idx[s][b * cap + i]) * C, f->es[s].raw + (b * cap + i) * C,
                   sizeof(float) * (size_t)C);
    return 0;
}

static int encode_all(m3_run *r, model3d *m, m3_fwd *f, long B, const float *points, int all_visible,
                      const model3d_batch *batch)
{
    f->B = B;
    if (tokenizer_run(&m->cfg, r->a, points, (int)B, &f->tk) ||
        mask_build(&m->cfg, r->a, &f->tk, (int)B, all_visible, batch ? batch->point_saliency : NULL,
                   batch ? batch->mask_keys : NULL, batch ? batch->forced_visible : NULL, &f->mk))
        return errf(r->err, "model3d: out of memory (tokenizer)");
    for (int s = 0; s < 3; s++) TRY(encode_scale(r, m, f, s, batch ? batch->drop_key : 0));
    return 0;
}

/* ---- decoder and heads ---- */

static int decode(m3_run *r, model3d *m, m3_fwd *f, const model3d_batch *batch)
{
    const model3d_config *c = &m->cfg;
    long B = f->B, G1 = c->groups[1], G2 = c->groups[2], D0 = c->dec_dims[0], D1 = c->dec_dims[1];
    long cap2 = f->mk.cap[2], cap1 = f->mk.cap[1];
    NEED(f->order = (int32_t *)arena_ints(r->a, B * G2));
    NEED(f->row_of = (int32_t *)arena_ints(r->a, B * G2));
    NEED(f->d0_in = arena_floats(r->a, B * G2 * D0));
    NEED(f->d0_ctr = arena_floats(r->a, B * G2 * 3));
    for (long b = 0; b < B; b++) {
        long n = 0;
        for (long i = 0; i < f->mk.count[2][b]; i++) {
            memcpy(f->d0_in + (b * G2 + n) * D0, f->es[2].normed + (b * cap2 + i) * D0, sizeof(float) * (size_t)D0);
            f->order[b * G2 + n++] = f->mk.idx[2][b * cap2 + i];
        }
        for (long t = 0; t < G2; t++)
            if (!f->mk.vis[2][b * G2 + t]) {
                memcpy(f->d0_in + (b * G2 + n) * D0, M3P(r, m->mask_token), sizeof(float) * (size_t)D0);
                f->order[b * G2 + n++] = (int32_t)t;
            }
        for (long i = 0; i < G2; i++) {
            long t = f->order[b * G2 + i];
            f->row_of[b * G2 + t] = (int32_t)i;
            memcpy(f->d0_ctr + (b * G2 + i) * 3, f->tk.ctr[2] + (b * G2 + t) * 3, sizeof(float) * 3);
        }
    }
    int idx0 = c->depths[0] + c->depths[1] + c->depths[2];
    TRY(m3_stage_forward(r, &m->dec[0], &f->ds0, f->d0_in, f->d0_ctr, NULL, B, G2, c->heads, 0,
                         batch->drop_key, idx0));
    /* 3-NN of every scale-1 centre among the scale-2 centres, inverse squared distance weights */
    NEED(f->idx3 = (int32_t *)arena_ints(r->a, B * G1 * 3));
    NEED(f->w3 = arena_floats(r->a, B * G1 * 3));
    float *work = arena_floats(r->a, B * (4 * G2 + 3));
    NEED(work);
    knn_query_batch_ws(f->tk.ctr[2], B, G2, f->tk.ctr[1], G1, 3, f->idx3, work);
    for (long t = 0; t < B * G1; t++) {
        long b = t / G1;
        const float *q = f->tk.ctr[1] + t * 3;
        float w[3], z = 0;
        for (int i = 0; i < 3; i++) {
            const float *p = f->tk.ctr[2] + (b * G2 + f->idx3[t * 3 + i]) * 3;
            float dx = q[0] - p[0], dy = q[1] - p[1], dz = q[2] - p[2];
            w[i] = 1.0f / (dx * dx + dy * dy + dz * dz + 1e-8f);
            z += w[i];
        }
        for (int i = 0; i < 3; i++) {
            f->w3[t * 3 + i] = w[i] / z;
            f->idx3[t * 3 + i] = f->row_of[b * G2 + f->idx3[t * 3 + i]];
        }
    }
    NEED(f->skip = arena_zeros(r->a, B * G1 * D1));
    for (long b = 0; b < B; b++)
        for (long i = 0; i < f->mk.count[1][b]; i++)
            memcpy(f->skip + (b * G1 + f->mk.idx[1][b * cap1 + i]) * D1, f->es[1].normed + (b * cap1 + i) * D1,
                   sizeof(float) * (size_t)D1);
    NEED(f->up = arena_floats(r->a, B * G1 * D1));
    TRY(m3_interp_forward(r, &m->interp, f->up, &f->is, f->ds0.raw, f->idx3, f->w3, f->skip, B, G1, G2));
    return m3_stage_forward(r, &m->dec[1], &f->ds1, f->up, f->tk.ctr[1], NULL, B, G1, c->heads, 1,
                            batch->drop_key, idx0 + c->dec_depths[0]);
}

static int heads_and_losses(m3_run *r, model3d *m, m3_fwd *f, const model3d_batch *batch, model3d_losses *L)
{
    const model3d_config *c = &m->cfg;
    long B = f->B, G0 = c->groups[0], G1 = c->groups[1], k1 = c->k[1], D1 = c->dec_dims[1];
    long V = c->views, F = c->feat_dim, W2 = k1 * V * F, P = c->points;
    /* 3D head on every scale-1 token; the loss reads the masked ones */
    NEED(f->rec3d = arena_floats(r->a, B * G1 * 3 * k1));
    NEED(f->gt3d = arena_floats(r->a, B * G1 * 3 * k1));
    NEED(f->masked1 = arena_alloc(r->a, (size_t)(B * G1)));
    TRY(nn_linear_forward(r->c, f->rec3d, f->ds1.normed, M3P(r, m->rec3d.w), M3P(r, m->rec3d.b), B * G1, D1,
                          3 * k1, r->err));
    for (long t = 0; t < B * G1; t++) {
        long b = t / G1;
        f->masked1[t] = !f->mk.vis[1][t];
        for (long j = 0; j < k1; j++)
            for (int d = 0; d < 3; d++)
                f->gt3d[(t * k1 + j) * 3 + d] = f->tk.ctr[0][(b * G0 + f->tk.knn[1][t * k1 + j]) * 3 + d] -
                                                f->tk.ctr[1][t * 3 + d];
    }
    L->loss_3d = loss_chamfer_forward(f->rec3d, f->gt3d, f->masked1, B * G1, k1);
    /* 2D head on the visible scale-1 tokens, rows padded to B * cap1 */
    f->vcap = B * f->mk.cap[1];
    NEED(f->vrows = (int32_t *)arena_ints(r->a, f->vcap));
    NEED(f->v_in = arena_zeros(r->a, f->vcap * D1));
    NEED(f->rec2d = arena_floats(r->a, f->vcap * W2));
    NEED(f->tgt2d = arena_floats(r->a, f->vcap * W2));
    f->n_vrows = 0;
    for (long t = 0; t < B * G1; t++)
        if (!f->masked1[t]) f->vrows[f->n_vrows++] = (int32_t)t;
    nn_gather_rows(f->v_in, f->ds1.normed, f->vrows, f->n_vrows, D1);
    TRY(nn_linear_forward(r->c, f->rec2d, f->v_in, M3P(r, m->rec2d.w), M3P(r, m->rec2d.b), f->vcap, D1, W2,
                          r->err));
    long g = c->grid;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < f->n_vrows; i++) {
        long t = f->vrows[i], b = t / G1;
        for (long j = 0; j < k1; j++) {
            long n = f->tk.orig[0][b * G0 + f->tk.knn[1][t * k1 + j]];
            for (long v = 0; v < V; v++) {
                const int16_t *px = batch->pixels + ((b * V + v) * P + n) * 2;
                bicubic_sample(batch->grids + (b * V + v) * g * g * F, (int)g, (int)F, c->image, px[0], px[1],
                               f->tgt2d + i * W2 + j * V * F + v * F);
            }
        }
    }
    L->loss_2d = loss_mse_forward(f->rec2d, f->tgt2d, f->n_vrows, W2);
    L->loss = L->loss_3d + L->loss_2d;
    return 0;
}

/* ---- backward ---- */

static int backward(m3_run *r, model3d *m, m3_fwd *f)
{
    const model3d_config *c = &m->cfg;
    long B = f->B, G1 = c->groups[1], G2 = c->groups[2], k1 = c->k[1], D0 = c->dec_dims[0], D1 = c->dec_dims[1];
    long W2 = k1 * c->views * c->feat_dim;
    float *drec3d = arena_zeros(r->a, B * G1 * 3 * k1), *drec2d = arena_zeros(r->a, f->vcap * W2),
          *ddec1 = arena_zeros(r->a, B * G1 * D1), *dv_in = arena_zeros(r->a, f->vcap * D1);
    NEED(drec3d && drec2d && ddec1 && dv_in);
    loss_chamfer_backward(drec3d, f->rec3d, f->gt3d, f->masked1, B * G1, k1, 1.0);
    loss_mse_backward(drec2d, f->rec2d, f->tgt2d, f->n_vrows, W2, 1.0);
    TRY(nn_linear_backward(r->c, ddec1, M3G(r, m->rec3d.w), M3G(r, m->rec3d.b), drec3d, f->ds1.normed,
                           M3P(r, m->rec3d.w), B * G1, D1, 3 * k1, r->err));
    TRY(nn_linear_backward(r->c, dv_in, M3G(r, m->rec2d.w), M3G(r, m->rec2d.b), drec2d, f->v_in,
                           M3P(r, m->rec2d.w), f->vcap, D1, W2, r->err));
    nn_scatter_add_rows(ddec1, dv_in, f->vrows, f->n_vrows, D1);
    /* decoder stage 1, upsampling, decoder stage 0 */
    float *draw1 = arena_zeros(r->a, B * G1 * D1), *dup = arena_zeros(r->a, B * G1 * D1),
          *ddec0 = arena_zeros(r->a, B * G2 * D0), *dskip = arena_zeros(r->a, B * G1 * D1),
          *dd0_in = arena_zeros(r->a, B * G2 * D0);
    NEED(draw1 && dup && ddec0 && dskip && dd0_in);
    TRY(m3_stage_backward(r, &m->dec[1], &f->ds1, draw1, ddec1, dup, c->heads));
    TRY(m3_interp_backward(r, &m->interp, ddec0, dskip, dup, &f->is, f->idx3, f->w3, B, G1, G2));
    TRY(m3_stage_backward(r, &m->dec[0], &f->ds0, ddec0, NULL, dd0_in, c->heads));
    /* gradients into the encoder's normalised outputs (scale 2 from decoder 0, scale 1 from the skip) */
    float *dnormed[3] = {NULL, NULL, NULL};
    for (int s = 1; s < 3; s++) NEED(dnormed[s] = arena_zeros(r->a, B * f->mk.cap[s] * c->dims[s]));
    float *dtoken = M3G(r, m->mask_token);
    for (long b = 0; b < B; b++) {
        long nv = f->mk.count[2][b];
        for (long i = 0; i < G2; i++) {
            const float *d = dd0_in + (b * G2 + i) * D0;
            if (i < nv) memcpy(dnormed[2] + (b * f->mk.cap[2] + i) * D0, d, sizeof(float) * (size_t)D0);
            else for (long j = 0; j < D0; j++) dtoken[j] += d[j];
        }
        for (long i = 0; i < f->mk.count[1][b]; i++)
            memcpy(dnormed[1] + (b * f->mk.cap[1] + i) * D1, dskip + (b * G1 + f->mk.idx[1][b * f->mk.cap[1] + i]) * D1,
                   sizeof(float) * (size_t)D1);
    }
    /* encoder stages 2, 1, 0 with the token merging between them */
    float *dfull[3];
    for (int s = 0; s < 3; s++) NEED(dfull[s] = arena_zeros(r->a, B * c->groups[s] * c->dims[s]));
    for (int s = 2; s >= 0; s--) {
        long G = c->groups[s], C = c->dims[s], cap = f->mk.cap[s], k = c->k[s];
        arena_mark_t mk = arena_mark(r->a);
        float *draw = arena_zeros(r->a, B * cap * C), *dx0 = arena_zeros(r->a, B * cap * C);
        NEED(draw && dx0);
        for (long b = 0; b < B; b++)
            for (long i = 0; i < f->mk.count[s][b]; i++)
                memcpy(draw + (b * cap + i) * C, dfull[s] + (b * G + f->mk.idx[s][b * cap + i]) * C,
                       sizeof(float) * (size_t)C);
        TRY(m3_stage_backward(r, &m->enc[s], &f->es[s], draw, dnormed[s], dx0, c->heads));
        /* visible rows of the embedding get the encoder-input gradient instead */
        for (long b = 0; b < B; b++)
            for (long i = 0; i < f->mk.count[s][b]; i++)
                memcpy(dfull[s] + (b * G + f->mk.idx[s][b * cap + i]) * C, dx0 + (b * cap + i) * C,
                       sizeof(float) * (size_t)C);
        float *dgrp = NULL;
        long Cp = s > 0 ? c->dims[s - 1] : 3;
        if (s > 0) NEED(dgrp = arena_zeros(r->a, B * G * k * Cp));
        TRY(m3_group_backward(r, &m->embed[s], dgrp, dfull[s], &f->gs[s], f->grp_in[s], B * G, k));
        if (s > 0) {
            long Gp = c->groups[s - 1];
            for (long b = 0; b < B; b++)
                for (long i = b * G * k; i < (b + 1) * G * k; i++) {
                    float *d = dfull[s - 1] + (b * Gp + f->tk.knn[s][i]) * Cp;
                    for (long j = 0; j < Cp; j++) d[j] += dgrp[i * Cp + j];
                }
        }
        arena_release(r->a, mk);
    }
    return 0;
}

int model3d_train_step(model3d *m, const model3d_batch *b, model3d_losses *out, char *err)
{
    if (b->B < 1 || b->B > m->max_batch)
        return errf(err, "model3d: batch of %d samples (max %d)", b->B, m->max_batch);
    arena_reset(&m->step_arena);
    m3_run r = {.c = &m->cache, .a = &m->step_arena, .P = m->params, .G = m->grads, .buf = m->buffers,
                .train = 1, .err = err};
    m3_fwd *f = arena_alloc(r.a, sizeof *f);
    if (!f) return errf(err, "model3d: out of memory (step arena)");
    memset(f, 0, sizeof *f);
    memset(m->grads, 0, sizeof(float) * (size_t)m->n_params);
    model3d_losses L = {0};
    if (encode_all(&r, m, f, b->B, b->points, 0, b) || decode(&r, m, f, b) ||
        heads_and_losses(&r, m, f, b, &L) || backward(&r, m, f))
        return -1;
    m->steps_done++;
    m->last_fwd = f;
    if (out) *out = L;
    return 0;
}

/* rows (B,cap,C) of scale s scattered to token order (B,G,C), zeros elsewhere */
static void scatter_visible(const m3_fwd *f, int s, long G, long C, const float *rows, float *out)
{
    memset(out, 0, sizeof(float) * (size_t)(f->B * G * C));
    long cap = f->mk.cap[s];
    for (long b = 0; b < f->B; b++)
        for (long i = 0; i < f->mk.count[s][b]; i++)
            memcpy(out + (b * G + f->mk.idx[s][b * cap + i]) * C, rows + (b * cap + i) * C, sizeof(float) * (size_t)C);
}

long m3_activation(const model3d *m, const char *name, float *out)
{
    const m3_fwd *f = m->last_fwd;
    const model3d_config *c = &m->cfg;
    if (!f) return -1;
    long B = f->B, G1 = c->groups[1], k1 = c->k[1], W2 = k1 * c->views * c->feat_dim;
    for (int s = 0; s < 3; s++) {
        char n[32];
        long G = c->groups[s], C = c->dims[s];
        snprintf(n, sizeof n, "enc%d_full", s);
        if (!strcmp(name, n)) {
            memcpy(out, f->full[s], sizeof(float) * (size_t)(B * G * C));
            return B * G * C;
        }
        snprintf(n, sizeof n, "enc%d_out", s);
        if (!strcmp(name, n)) {
            scatter_visible(f, s, G, C, f->es[s].normed, out);
            return B * G * C;
        }
    }
    if (!strcmp(name, "dec1_out")) {
        memcpy(out, f->ds1.normed, sizeof(float) * (size_t)(B * G1 * c->dec_dims[1]));
        return B * G1 * c->dec_dims[1];
    }
    if (!strcmp(name, "rec3d") || !strcmp(name, "target3d")) {
        const float *src = name[0] == 'r' ? f->rec3d : f->gt3d;
        for (long t = 0; t < B * G1; t++)
            for (long j = 0; j < 3 * k1; j++) out[t * 3 * k1 + j] = f->masked1[t] || name[0] == 't' ? src[t * 3 * k1 + j] : 0;
        return B * G1 * 3 * k1;
    }
    if (!strcmp(name, "rec2d") || !strcmp(name, "target2d")) {
        const float *src = name[0] == 'r' ? f->rec2d : f->tgt2d;
        memset(out, 0, sizeof(float) * (size_t)(B * G1 * W2));
        for (long i = 0; i < f->n_vrows; i++)
            memcpy(out + (long)f->vrows[i] * W2, src + i * W2, sizeof(float) * (size_t)W2);
        return B * G1 * W2;
    }
    return -1;
}

int model3d_encode_global(model3d *m, int B, const float *points, float *global, char *err)
{
    if (B < 1 || B > m->max_batch) return errf(err, "model3d: batch of %d samples (max %d)", B, m->max_batch);
    arena_reset(&m->eval_arena);
    m3_run r = {.c = &m->cache, .a = &m->eval_arena, .P = m->params, .G = NULL, .buf = m->buffers,
                .train = 0, .err = err};
    m3_fwd *f = arena_alloc(r.a, sizeof *f);
    if (!f) return errf(err, "model3d: out of memory (eval arena)");
    memset(f, 0, sizeof *f);
    TRY(encode_all(&r, m, f, B, points, 1, NULL));
    long G2 = m->cfg.groups[2], C = m->cfg.dims[2];
    for (long b = 0; b < B; b++)
        for (long j = 0; j < C; j++) {
            float v = f->es[2].normed[(b * G2) * C + j];
            for (long t = 1; t < G2; t++)
                if (f->es[2].normed[(b * G2 + t) * C + j] > v) v = f->es[2].normed[(b * G2 + t) * C + j];
            global[b * C + j] = v;
        }
    return 0;
}

void model3d_alloc_stats(const model3d *m, model3d_alloc_info *info)
{
    info->arena_chunks = m->step_arena.n_mallocs + m->eval_arena.n_mallocs;
    info->primitives = m->cache.n_created;
    info->primitive_bytes = m->cache.bytes_allocated;
    info->matmul_flops = m->cache.matmul_flops;
    info->executions = m->cache.n_exec;
}
