/* partseg_step.c -- the part-segmentation network's forward (encoder with stage norms, feature
 * propagation of the three scales to the points, global and category features, per-point head),
 * its loss and backward (a train step), and the eval forward (partseg.h). Activations live in the
 * model's step (or eval) arena; every size requested depends only on (config, B).
 */
#include "partseg_impl.h"

#include <stdio.h>
#include <string.h>

#include "classifier_impl.h"
#include "ft_encoder.h"
#include "losses.h"
#include "rng.h"

#define SEG_LEAKY_SLOPE 0.2f

typedef struct {
    long B, N;
    ft_encoder_state e;
    int32_t *idx3[3];
    float *w3[3];              /* (B,N,3) */
    float *cat[3];             /* (B*N, 3+C_s): [xyz | interpolated] */
    seg_prop_state ps[3];
    float *prop[3];            /* (B*N, F) */
    float *x;                  /* (B*N, 3F) */
    float *global;             /* (B, 3F) max + mean over points */
    int32_t *arg;              /* (B, 3F) */
    float *onehot, *lh, *lb, *lmean, *lvar, *label; /* (B,K), (B,L) x3, (L) x2, (B,L) */
    float *feat;               /* (B*N, D): [global | label | x] */
    seg_head_state hs;
    const float *mask;         /* (B*N, H1) or NULL */
    float *logits;             /* (B*N, n_parts) */
} seg_fwd;

static ft_encoder encoder_of(const partseg *m)
{
    return (ft_encoder){.cfg = &m->cfg.enc, .radius = m->cfg.radius, .embed = m->embed, .enc = m->enc,
                        .use_norm = 1};
}

/* Drop path, then the head's dropout, from sample b's stream (b->forced_* when given). */
static int make_masks(m3_run *r, const partseg *m, seg_fwd *f, const partseg_batch *b)
{
    long B = b->B, N = m->cfg.enc.points, H = m->cfg.head[0];
    double p = m->cfg.dropout;
    ft_encoder e = encoder_of(m);
    rng_t *g = arena_alloc(r->a, sizeof(rng_t) * (size_t)B);
    float *mask = arena_floats(r->a, B * N * H);
    NEED(g && mask);
    for (long s = 0; s < B; s++) rng_seed(&g[s], b->drop_key, (uint64_t)s);
    TRY(ft_encoder_drop_path(r, &e, &f->e, B, g, b->forced_drop_path));
    float keep = (float)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static)
    for (long s = 0; s < B; s++)
        for (long i = s * N * H; i < (s + 1) * N * H; i++) {
            double u = rng_uniform(&g[s]);
            mask[i] = b->forced_dropout ? b->forced_dropout[i] : u < p ? 0.0f : keep;
        }
    f->mask = mask;
    return 0;
}

static int forward(m3_run *r, partseg *m, seg_fwd *f, long B, const float *points, const int32_t *category,
                   const partseg_batch *batch)
{
    const partseg_config *pc = &m->cfg;
    const model3d_config *c = &pc->enc;
    long N = c->points, F = pc->prop_out, K = pc->n_categories, L = pc->label_dim, R = B * N;
    long D = 6 * F + L;
    f->B = B;
    f->N = N;
    ft_encoder e = encoder_of(m);
    if (batch) TRY(make_masks(r, m, f, batch));
    TRY(ft_encoder_forward(r, &e, &f->e, B, points));
    NEED(f->x = arena_floats(r->a, R * 3 * F));
    for (int s = 0; s < 3; s++) {
        long G = c->groups[s], C = c->dims[s];
        f->idx3[s] = (int32_t *)arena_ints(r->a, R * 3);
        f->w3[s] = arena_floats(r->a, R * 3);
        f->cat[s] = arena_floats(r->a, R * (3 + C));
        f->prop[s] = arena_floats(r->a, R * F);
        NEED(f->idx3[s] && f->w3[s] && f->cat[s] && f->prop[s]);
        seg_interp_weights(f->idx3[s], f->w3[s], points, f->e.tk.ctr[s], B, N, G);
        for (long t = 0; t < R; t++) memcpy(f->cat[s] + t * (3 + C), points + t * 3, sizeof(float) * 3);
        seg_interp_forward(f->cat[s] + 3, 3 + C, f->e.es[s].normed, f->idx3[s], f->w3[s], B, N, G, C);
        TRY(seg_prop_forward(r, &m->prop[s], f->prop[s], &f->ps[s], f->cat[s], R));
        for (long t = 0; t < R; t++) memcpy(f->x + t * 3 * F + s * F, f->prop[s] + t * F, sizeof(float) * (size_t)F);
    }
    NEED(f->global = arena_floats(r->a, B * 3 * F));
    NEED(f->arg = (int32_t *)arena_ints(r->a, B * 3 * F));
    cls_pool_forward(CLS_POOL_MEAN_PLUS_MAX, f->global, f->arg, f->x, B, N, 3 * F);
    /* category feature */
    f->onehot = arena_zeros(r->a, B * K);
    f->lh = arena_floats(r->a, B * L);
    f->lb = arena_floats(r->a, B * L);
    f->label = arena_floats(r->a, B * L);
    f->lmean = arena_floats(r->a, L);
    f->lvar = arena_floats(r->a, L);
    NEED(f->onehot && f->lh && f->lb && f->label && f->lmean && f->lvar);
    for (long b = 0; b < B; b++) {
        if (category[b] < 0 || category[b] >= K)
            return errf(r->err, "partseg: category %d of sample %ld outside 0..%ld", (int)category[b], b, K - 1);
        f->onehot[b * K + category[b]] = 1.0f;
    }
    TRY(nn_linear_forward(r->c, f->lh, f->onehot, M3P(r, m->label_conv.w), NULL, B, K, L, r->err));
    TRY(m3_bn_forward(r, &m->label_bn, f->lb, f->lmean, f->lvar, f->lh, B));
    seg_leaky_forward(f->label, f->lb, B * L, SEG_LEAKY_SLOPE);
    /* per-point input [global | label | x] */
    NEED(f->feat = arena_floats(r->a, R * D));
#pragma omp parallel for schedule(static)
    for (long t = 0; t < R; t++) {
        long b = t / N;
        float *o = f->feat + t * D;
        memcpy(o, f->global + b * 3 * F, sizeof(float) * (size_t)(3 * F));
        memcpy(o + 3 * F, f->label + b * L, sizeof(float) * (size_t)L);
        memcpy(o + 3 * F + L, f->x + t * 3 * F, sizeof(float) * (size_t)(3 * F));
    }
    NEED(f->logits = arena_floats(r->a, R * pc->n_parts));
    return seg_head_forward(r, &m->head, f->logits, &f->hs, f->feat, f->mask, R);
}

static int backward(m3_run *r, partseg *m, seg_fwd *f, const int32_t *seg)
{
    const partseg_config *pc = &m->cfg;
    const model3d_config *c = &pc->enc;
    long B = f->B, N = f->N, R = B * N, F = pc->prop_out, K = pc->n_categories, L = pc->label_dim;
    long D = 6 * F + L, n = pc->n_parts;
    float *dlogits = arena_zeros(r->a, R * n), *dfeat = arena_zeros(r->a, R * D),
          *dglobal = arena_zeros(r->a, B * 3 * F), *dlabel = arena_zeros(r->a, B * L),
          *dlb = arena_zeros(r->a, B * L), *dlh = arena_zeros(r->a, B * L), *dx = arena_zeros(r->a, R * 3 * F),
          *dprop = arena_floats(r->a, R * F);
    NEED(dlogits && dfeat && dglobal && dlabel && dlb && dlh && dx && dprop);
    loss_xent_backward(dlogits, f->logits, seg, R, n, 0.0, 1.0);
    TRY(seg_head_backward(r, &m->head, dfeat, dlogits, &f->hs, f->feat, R));
    for (long b = 0; b < B; b++) /* the broadcast global and label features: sums over the points */
        for (long t = b * N; t < (b + 1) * N; t++) {
            const float *d = dfeat + t * D;
            for (long j = 0; j < 3 * F; j++) dglobal[b * 3 * F + j] += d[j];
            for (long j = 0; j < L; j++) dlabel[b * L + j] += d[3 * F + j];
        }
#pragma omp parallel for schedule(static)
    for (long t = 0; t < R; t++) memcpy(dx + t * 3 * F, dfeat + t * D + 3 * F + L, sizeof(float) * (size_t)(3 * F));
    cls_pool_backward(CLS_POOL_MEAN_PLUS_MAX, dx, dglobal, f->arg, B, N, 3 * F);
    seg_leaky_backward(dlb, dlabel, f->lb, B * L, SEG_LEAKY_SLOPE);
    TRY(nn_batchnorm_backward(r->c, dlh, M3G(r, m->label_bn.w), M3G(r, m->label_bn.b), dlb, f->lh,
                              M3P(r, m->label_bn.w), M3P(r, m->label_bn.b), f->lmean, f->lvar, B, L, r->err));
    TRY(nn_linear_backward(r->c, NULL, M3G(r, m->label_conv.w), NULL, dlh, f->onehot, M3P(r, m->label_conv.w), B,
                           K, L, r->err));
    float *dnormed[3];
    for (int s = 0; s < 3; s++) {
        long G = c->groups[s], C = c->dims[s];
        float *dcat = arena_zeros(r->a, R * (3 + C));
        NEED(dnormed[s] = arena_zeros(r->a, B * G * C));
        NEED(dcat);
        for (long t = 0; t < R; t++) memcpy(dprop + t * F, dx + t * 3 * F + s * F, sizeof(float) * (size_t)F);
        TRY(seg_prop_backward(r, &m->prop[s], dcat, dprop, &f->ps[s], f->cat[s], f->prop[s], R));
        seg_interp_backward(dnormed[s], dcat + 3, 3 + C, f->idx3[s], f->w3[s], B, N, G, C);
    }
    ft_encoder e = encoder_of(m);
    return ft_encoder_backward(r, &e, &f->e, NULL, dnormed);
}

int partseg_train_step(partseg *m, const partseg_batch *b, double *loss, float *logits, char *err)
{
    const partseg_config *pc = &m->cfg;
    long N = pc->enc.points;
    if (b->B < 2 || b->B > m->st.max_batch)
        return errf(err, "partseg: a train batch of %d samples (needs 2..%d)", b->B, m->st.max_batch);
    for (long i = 0; i < b->B * N; i++)
        if (b->seg[i] < 0 || b->seg[i] >= pc->n_parts)
            return errf(err, "partseg: part label %d of sample %ld point %ld outside 0..%d", (int)b->seg[i], i / N,
                        i % N, pc->n_parts - 1);
    m3_run r;
    seg_fwd *f = m3_store_begin(&m->st, &r, 1, b->B, sizeof *f, "partseg", err);
    if (!f) return -1;
    m->last_fwd = NULL;
    if (forward(&r, m, f, b->B, b->points, b->category, b)) return -1;
    double Lv = loss_xent_forward(f->logits, b->seg, b->B * N, pc->n_parts, 0.0);
    if (backward(&r, m, f, b->seg)) return -1;
    m->last_fwd = f;
    if (loss) *loss = Lv;
    if (logits) memcpy(logits, f->logits, sizeof(float) * (size_t)(b->B * N * pc->n_parts));
    return 0;
}

int partseg_forward(partseg *m, int B, const float *points, const int32_t *category, float *logits, char *err)
{
    m3_run r;
    seg_fwd *f = m3_store_begin(&m->st, &r, 0, B, sizeof *f, "partseg", err);
    if (!f) return -1;
    TRY(forward(&r, m, f, B, points, category, NULL));
    memcpy(logits, f->logits, sizeof(float) * (size_t)((long)B * m->cfg.enc.points * m->cfg.n_parts));
    return 0;
}

long partseg_activation(const partseg *m, const char *name, float *out)
{
    const seg_fwd *f = m->last_fwd;
    if (!f) return -1;
    const partseg_config *pc = &m->cfg;
    long B = f->B, N = f->N, F = pc->prop_out, n = -1;
    const float *src = NULL;
    char key[16];
    for (int s = 0; s < 3; s++) {
        snprintf(key, sizeof key, "enc%d_out", s);
        if (!strcmp(name, key)) {
            src = f->e.es[s].normed;
            n = B * pc->enc.groups[s] * pc->enc.dims[s];
        }
        snprintf(key, sizeof key, "prop%d", s);
        if (!strcmp(name, key)) {
            src = f->prop[s];
            n = B * N * F;
        }
    }
    if (!strcmp(name, "global")) {
        src = f->global;
        n = B * 3 * F;
    } else if (!strcmp(name, "label")) {
        src = f->label;
        n = B * pc->label_dim;
    } else if (!strcmp(name, "logits")) {
        src = f->logits;
        n = B * N * pc->n_parts;
    }
    if (!src) return -1;
    memcpy(out, src, sizeof(float) * (size_t)n);
    return n;
}
