/* classifier_step.c -- the classifier's forward (tokenize, embed + encode three scales with every
 * token, local attention, fresh LayerNorm, pooling, head), its loss and backward (a train step),
 * and the eval forward. Semantics: docs/finetune.md. Activations live in the model's step (or
 * eval) arena; every size requested depends only on (config, B).
 */
#include "classifier_impl.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "losses.h"
#include "rng.h"
#include "tokenizer.h"


typedef struct {
    long B;
    m3_tokens tk;
    float *grp_in[3];          /* nb0 (B*G0*k0,3); gathered tokens (B*G_s*k_s, C_{s-1}) */
    m3_group_state gs[3];
    float *x0[3];              /* (B,G_s,C_s) token embeddings: the stage inputs */
    float *pairbias[3];        /* (B,G_s,G_s) local-attention bias or NULL */
    m3_stage_extra ex[3];
    m3_stage_state es[3];      /* es[s].raw (B,G_s,C_s): the stage outputs */
    float *normed, *ln_mean, *ln_var;
    float *pooled;             /* (B,d) */
    int32_t *arg;              /* (B,C2) max-pool winners */
    cls_head_state hs;
    const float *mask1, *mask2; /* (B,H) dropout scales or NULL */
    float *logits;             /* (B,n) */
} cls_fwd;

static int n_blocks(const model3d_config *c) { return c->depths[0] + c->depths[1] + c->depths[2]; }

/* Stochastic-depth and dropout scales of a train step, drawn from drop_key (or copied from the
 * batch's forced masks), laid out per stage and block as m3_stage_extra wants them. */
static int make_masks(m3_run *r, const classifier *m, cls_fwd *f, const classifier_batch *b)
{
    const model3d_config *c = &m->cfg.enc;
    long B = b->B, nb = n_blocks(c), H = m->cfg.head_hidden;
    double p = m->cfg.dropout;
    float *dp = arena_floats(r->a, B * nb * 2 + 1), *dr = arena_floats(r->a, B * 2 * H);
    double *rate = (double *)arena_alloc(r->a, sizeof(double) * (size_t)(nb + 1));
    NEED(dp && dr && rate);
    for (int s = 0, i = 0; s < 3; s++)
        for (int j = 0; j < c->depths[s]; j++) rate[i++] = m->enc[s].blocks[j].drop_rate;
    if (b->forced_drop_path) memcpy(dp, b->forced_drop_path, sizeof(float) * (size_t)(B * nb * 2));
    if (b->forced_dropout) memcpy(dr, b->forced_dropout, sizeof(float) * (size_t)(B * 2 * H));
    for (long s = 0; s < B; s++) {
        rng_t g;
        rng_seed(&g, b->drop_key, (uint64_t)s);
        for (long i = 0; i < nb; i++)
            for (int j = 0; j < 2; j++) {
                double u = rng_uniform(&g);
                if (!b->forced_drop_path)
                    dp[(s * nb + i) * 2 + j] = u < rate[i] ? 0.0f : (float)(1.0 / (1.0 - rate[i]));
            }
        for (long i = 0; i < 2 * H; i++) {
            double u = rng_uniform(&g);
            if (!b->forced_dropout) dr[s * 2 * H + i] = u < p ? 0.0f : (float)(1.0 / (1.0 - p));
        }
    }
    /* per block: (B) scales of each branch */
    for (int s = 0, i = 0; s < 3; s++) {
        int D = c->depths[s];
        const float **da = arena_alloc(r->a, sizeof(float *) * (size_t)(D + 1));
        const float **dm = arena_alloc(r->a, sizeof(float *) * (size_t)(D + 1));
        NEED(da && dm);
        for (int j = 0; j < D; j++, i++) {
            float *a = arena_floats(r->a, B), *mm = arena_floats(r->a, B);
            NEED(a && mm);
            for (long t = 0; t < B; t++) {
                a[t] = dp[(t * nb + i) * 2];
                mm[t] = dp[(t * nb + i) * 2 + 1];
            }
            da[j] = a;
            dm[j] = mm;
        }
        f->ex[s].drop_attn = da;
        f->ex[s].drop_mlp = dm;
    }
    float *m1 = arena_floats(r->a, B * H), *m2 = arena_floats(r->a, B * H);
    NEED(m1 && m2);
    for (long t = 0; t < B; t++) {
        memcpy(m1 + t * H, dr + t * 2 * H, sizeof(float) * (size_t)H);
        memcpy(m2 + t * H, dr + t * 2 * H + H, sizeof(float) * (size_t)H);
    }
    f->mask1 = m1;
    f->mask2 = m2;
    return 0;
}

/* batch NULL: eval (no masks) */
static int forward(m3_run *r, classifier *m, cls_fwd *f, long B, const float *points, const classifier_batch *batch)
{
    const model3d_config *c = &m->cfg.enc;
    f->B = B;
    if (tokenizer_run(c, r->a, points, (int)B, &f->tk)) return errf(r->err, "classifier: out of memory (tokenizer)");
    if (batch) TRY(make_masks(r, m, f, batch));
    for (int s = 0; s < 3; s++) {
        long G = c->groups[s], k = c->k[s], C = c->dims[s];
        if (s == 0) {
            f->grp_in[0] = f->tk.nb0;
        } else {
            long Gp = c->groups[s - 1], Cp = c->dims[s - 1];
            const float *prev = f->es[s - 1].raw;
            NEED(f->grp_in[s] = arena_floats(r->a, B * G * k * Cp));
#pragma omp parallel for schedule(static)
            for (long i = 0; i < B * G * k; i++) {
                long b = i / (G * k);
                memcpy(f->grp_in[s] + i * Cp, prev + (b * Gp + f->tk.knn[s][i]) * Cp, sizeof(float) * (size_t)Cp);
            }
        }
        NEED(f->x0[s] = arena_floats(r->a, B * G * C));
        TRY(m3_group_forward(r, &m->embed[s], f->x0[s], &f->gs[s], f->grp_in[s], B * G, k));
        if (m->cfg.radius[s] > 0) {
            NEED(f->pairbias[s] = arena_floats(r->a, B * G * G));
            cls_local_bias(f->pairbias[s], f->tk.ctr[s], B, G, m->cfg.radius[s]);
        }
        f->ex[s].pairbias = f->pairbias[s];
        TRY(m3_stage_forward_ex(r, &m->enc[s], &f->es[s], f->x0[s], f->tk.ctr[s], NULL, &f->ex[s], B, G,
                                c->heads, 0));
    }
    long G2 = c->groups[2], C2 = c->dims[2], d = m->head.fc1.in;
    NEED(f->normed = arena_floats(r->a, B * G2 * C2));
    NEED(f->ln_mean = arena_floats(r->a, B * G2));
    NEED(f->ln_var = arena_floats(r->a, B * G2));
    TRY(nn_layernorm_forward(r->c, f->normed, f->ln_mean, f->ln_var, f->es[2].raw, M3P(r, m->norm.w),
                             M3P(r, m->norm.b), B * G2, C2, r->err));
    NEED(f->pooled = arena_floats(r->a, B * d));
    NEED(f->arg = (int32_t *)arena_ints(r->a, B * C2));
    cls_pool_forward(m->cfg.pooling, f->pooled, f->arg, f->normed, B, G2, C2);
    NEED(f->logits = arena_floats(r->a, B * m->cfg.n_classes));
    return cls_head_forward(r, &m->head, f->logits, &f->hs, f->pooled, f->mask1, f->mask2, B);
}

static int backward(m3_run *r, classifier *m, cls_fwd *f, const int32_t *labels)
{
    const model3d_config *c = &m->cfg.enc;
    long B = f->B, n = m->cfg.n_classes, d = m->head.fc1.in, G2 = c->groups[2], C2 = c->dims[2];
    float *dlogits = arena_zeros(r->a, B * n), *dpooled = arena_zeros(r->a, B * d),
          *dnormed = arena_zeros(r->a, B * G2 * C2), *draw = arena_zeros(r->a, B * G2 * C2);
    NEED(dlogits && dpooled && dnormed && draw);
    loss_xent_backward(dlogits, f->logits, labels, B, n, m->cfg.smoothing, 1.0);
    TRY(cls_head_backward(r, &m->head, dpooled, dlogits, &f->hs, f->pooled, B));
    cls_pool_backward(m->cfg.pooling, dnormed, dpooled, f->arg, B, G2, C2);
    TRY(nn_layernorm_backward(r->c, draw, M3G(r, m->norm.w), M3G(r, m->norm.b), dnormed, f->es[2].raw,
                              M3P(r, m->norm.w), M3P(r, m->norm.b), f->ln_mean, f->ln_var, B * G2, C2, r->err));
    /* stages 2, 1, 0 with the token merging between them; draw: gradient w.r.t. stage s's output */
    for (int s = 2; s >= 0; s--) {
        long G = c->groups[s], C = c->dims[s], k = c->k[s], Cp = s > 0 ? c->dims[s - 1] : 3;
        float *dx0 = arena_zeros(r->a, B * G * C), *dgrp = NULL, *dprev = NULL;
        NEED(dx0);
        TRY(m3_stage_backward(r, &m->enc[s], &f->es[s], draw, NULL, dx0, c->heads));
        if (s > 0) NEED(dgrp = arena_zeros(r->a, B * G * k * Cp));
        TRY(m3_group_backward(r, &m->embed[s], dgrp, dx0, &f->gs[s], f->grp_in[s], B * G, k));
        if (s == 0) break;
        long Gp = c->groups[s - 1];
        NEED(dprev = arena_zeros(r->a, B * Gp * Cp));
#pragma omp parallel for schedule(static)
        for (long b = 0; b < B; b++) /* serial within a sample: neighbourhoods overlap */
            for (long i = b * G * k; i < (b + 1) * G * k; i++) {
                float *dst = dprev + (b * Gp + f->tk.knn[s][i]) * Cp;
                for (long j = 0; j < Cp; j++) dst[j] += dgrp[i * Cp + j];
            }
        draw = dprev;
    }
    return 0;
}

int classifier_train_step(classifier *m, const classifier_batch *b, double *loss, float *logits, char *err)
{
    if (b->B < 2 || b->B > m->max_batch)
        return errf(err, "classifier: a train batch of %d samples (needs 2..%d)", b->B, m->max_batch);
    for (int i = 0; i < b->B; i++)
        if (b->labels[i] < 0 || b->labels[i] >= m->cfg.n_classes)
            return errf(err, "classifier: label %d of sample %d outside 0..%d", (int)b->labels[i], i,
                        m->cfg.n_classes - 1);
    arena_reset(&m->step_arena);
    m3_run r = {.c = &m->cache, .a = &m->step_arena, .P = m->params, .G = m->grads, .buf = m->buffers,
                .train = 1, .err = err};
    cls_fwd *f = arena_alloc(r.a, sizeof *f);
    if (!f) return errf(err, "classifier: out of memory (step arena)");
    memset(f, 0, sizeof *f);
    memset(m->grads, 0, sizeof(float) * (size_t)m->n_params);
    m->last_fwd = NULL;
    if (forward(&r, m, f, b->B, b->points, b)) return -1;
    double L = loss_xent_forward(f->logits, b->labels, b->B, m->cfg.n_classes, m->cfg.smoothing);
    if (backward(&r, m, f, b->labels)) return -1;
    m->last_fwd = f;
    if (loss) *loss = L;
    if (logits) memcpy(logits, f->logits, sizeof(float) * (size_t)(b->B * m->cfg.n_classes));
    return 0;
}

int classifier_forward(classifier *m, int B, const float *points, float *logits, char *err)
{
    if (B < 1 || B > m->max_batch) return errf(err, "classifier: batch of %d samples (max %d)", B, m->max_batch);
    arena_reset(&m->eval_arena);
    m3_run r = {.c = &m->cache, .a = &m->eval_arena, .P = m->params, .G = NULL, .buf = m->buffers,
                .train = 0, .err = err};
    cls_fwd *f = arena_alloc(r.a, sizeof *f);
    if (!f) return errf(err, "classifier: out of memory (eval arena)");
    memset(f, 0, sizeof *f);
    TRY(forward(&r, m, f, B, points, NULL));
    memcpy(logits, f->logits, sizeof(float) * (size_t)(B * m->cfg.n_classes));
    return 0;
}

long cls_activation(const classifier *m, const char *name, float *out)
{
    const cls_fwd *f = m->last_fwd;
    if (!f) return -1;
    const model3d_config *c = &m->cfg.enc;
    long B = f->B, n = -1;
    const float *src = NULL;
    char key[16];
    for (int s = 0; s < 3; s++) {
        snprintf(key, sizeof key, "enc%d_out", s);
        if (!strcmp(name, key)) {
            src = f->es[s].raw;
            n = B * c->groups[s] * c->dims[s];
        }
    }
    if (!strcmp(name, "normed")) {
        src = f->normed;
        n = B * c->groups[2] * c->dims[2];
    } else if (!strcmp(name, "pooled")) {
        src = f->pooled;
        n = B * m->head.fc1.in;
    } else if (!strcmp(name, "logits")) {
        src = f->logits;
        n = B * m->cfg.n_classes;
    }
    if (!src) return -1;
    memcpy(out, src, sizeof(float) * (size_t)n);
    return n;
}
