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
#include "ft_encoder.h"
#include "tokenizer.h"


ft_encoder cls_encoder_of(const classifier *m)
{
    return (ft_encoder){.cfg = &m->cfg.enc, .radius = m->cfg.radius, .embed = m->embed, .enc = m->enc,
                        .use_norm = 0};
}

int cls_make_masks(m3_run *r, const classifier *m, cls_fwd *f, const classifier_batch *b)
{
    long B = b->B, H = m->cfg.head_hidden;
    double p = m->cfg.dropout;
    ft_encoder e = cls_encoder_of(m);
    rng_t *g = arena_alloc(r->a, sizeof(rng_t) * (size_t)B);
    float *m1 = arena_floats(r->a, B * H), *m2 = arena_floats(r->a, B * H);
    NEED(g && m1 && m2);
    for (long s = 0; s < B; s++) rng_seed(&g[s], b->drop_key, (uint64_t)s);
    TRY(ft_encoder_drop_path(r, &e, &f->e, B, g, b->forced_drop_path));
    for (long s = 0; s < B; s++)
        for (long i = 0; i < 2 * H; i++) {
            double u = rng_uniform(&g[s]);
            float v = b->forced_dropout ? b->forced_dropout[s * 2 * H + i] : u < p ? 0.0f : (float)(1.0 / (1.0 - p));
            if (i < H) m1[s * H + i] = v;
            else m2[s * H + i - H] = v;
        }
    f->mask1 = m1;
    f->mask2 = m2;
    return 0;
}

int cls_top_forward(m3_run *r, classifier *m, cls_fwd *f)
{
    const model3d_config *c = &m->cfg.enc;
    long B = f->e.B, G2 = c->groups[2], C2 = c->dims[2], d = m->head.fc1.in;
    NEED(f->normed = arena_floats(r->a, B * G2 * C2));
    NEED(f->ln_mean = arena_floats(r->a, B * G2));
    NEED(f->ln_var = arena_floats(r->a, B * G2));
    TRY(nn_layernorm_forward(r->c, f->normed, f->ln_mean, f->ln_var, f->e.es[2].raw, M3P(r, m->norm.w),
                             M3P(r, m->norm.b), B * G2, C2, r->err));
    NEED(f->pooled = arena_floats(r->a, B * d));
    NEED(f->arg = (int32_t *)arena_ints(r->a, B * C2));
    cls_pool_forward(m->cfg.pooling, f->pooled, f->arg, f->normed, B, G2, C2);
    NEED(f->logits = arena_floats(r->a, B * m->cfg.n_classes));
    return cls_head_forward(r, &m->head, f->logits, &f->hs, f->pooled, f->mask1, f->mask2, B);
}

/* batch NULL: eval (no masks) */
static int forward(m3_run *r, classifier *m, cls_fwd *f, long B, const float *points, const classifier_batch *batch)
{
    ft_encoder e = cls_encoder_of(m);
    if (batch) TRY(cls_make_masks(r, m, f, batch));
    TRY(ft_encoder_forward(r, &e, &f->e, B, points));
    return cls_top_forward(r, m, f);
}

int cls_top_backward(m3_run *r, classifier *m, cls_fwd *f, const int32_t *labels, float **draw_out)
{
    const model3d_config *c = &m->cfg.enc;
    long B = f->e.B, n = m->cfg.n_classes, d = m->head.fc1.in, G2 = c->groups[2], C2 = c->dims[2];
    float *dlogits = arena_zeros(r->a, B * n), *dpooled = arena_zeros(r->a, B * d),
          *dnormed = arena_zeros(r->a, B * G2 * C2), *draw = arena_zeros(r->a, B * G2 * C2);
    NEED(dlogits && dpooled && dnormed && draw);
    loss_xent_backward(dlogits, f->logits, labels, B, n, m->cfg.smoothing, 1.0);
    TRY(cls_head_backward(r, &m->head, dpooled, dlogits, &f->hs, f->pooled, B));
    cls_pool_backward(m->cfg.pooling, dnormed, dpooled, f->arg, B, G2, C2);
    TRY(nn_layernorm_backward(r->c, draw, M3G(r, m->norm.w), M3G(r, m->norm.b), dnormed, f->e.es[2].raw,
                              M3P(r, m->norm.w), M3P(r, m->norm.b), f->ln_mean, f->ln_var, B * G2, C2, r->err));
    *draw_out = draw;
    return 0;
}

static int backward(m3_run *r, classifier *m, cls_fwd *f, const int32_t *labels)
{
    float *draw = NULL;
    TRY(cls_top_backward(r, m, f, labels, &draw));
    ft_encoder e = cls_encoder_of(m);
    return ft_encoder_backward(r, &e, &f->e, draw, NULL);
}

int cls_check_batch(const classifier *m, const classifier_batch *b, char *err)
{
    if (b->B < 2 || b->B > m->st.max_batch)
        return errf(err, "classifier: a train batch of %d samples (needs 2..%d)", b->B, m->st.max_batch);
    for (int i = 0; i < b->B; i++)
        if (b->labels[i] < 0 || b->labels[i] >= m->cfg.n_classes)
            return errf(err, "classifier: label %d of sample %d outside 0..%d", (int)b->labels[i], i,
                        m->cfg.n_classes - 1);
    return 0;
}

int classifier_train_step(classifier *m, const classifier_batch *b, double *loss, float *logits, char *err)
{
    if (cls_check_batch(m, b, err)) return -1;
    m3_run r;
    cls_fwd *f = m3_store_begin(&m->st, &r, 1, b->B, sizeof *f, "classifier", err);
    if (!f) return -1;
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
    m3_run r;
    cls_fwd *f = m3_store_begin(&m->st, &r, 0, B, sizeof *f, "classifier", err);
    if (!f) return -1;
    TRY(forward(&r, m, f, B, points, NULL));
    memcpy(logits, f->logits, sizeof(float) * (size_t)(B * m->cfg.n_classes));
    return 0;
}

long cls_activation(const classifier *m, const char *name, float *out)
{
    const cls_fwd *f = m->last_fwd;
    if (!f) return -1;
    const model3d_config *c = &m->cfg.enc;
    long B = f->e.B, n = -1;
    const float *src = NULL;
    char key[16];
    for (int s = 0; s < 3; s++) {
        snprintf(key, sizeof key, "enc%d_out", s);
        if (!strcmp(name, key)) {
            src = f->e.es[s].raw;
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
