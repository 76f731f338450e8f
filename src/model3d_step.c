/* model3d_step.c -- one training step of the 3D network, in order: encoder (tokenize, mask, embed
 * and encode three scales), decoder, heads and losses, then the backward of each in reverse; the
 * encoder-only forward that gives the pooled global feature, and the same forward with the encoder's
 * BatchNorms in training mode for their batch statistics (svm --bn-stats data); and the activations
 * of the last step for the reference tests. Semantics: docs/model3d.md. Activations live in the
 * model's step arena (the encoder-only forwards: in its eval arena);
 * every size requested depends only on (config, B), so steps after the first allocate nothing
 * (model3d_alloc_stats).
 */
#include "model3d_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

typedef struct {
    m3_encoder_state e;
    m3_decoder_state d;
    m3_heads_state h;
} m3_fwd;

static int backward(m3_run *r, const model3d *m, const m3_fwd *f);

int model3d_train_step(model3d *m, const model3d_batch *b, model3d_losses *out, char *err)
{
    m3_run r;
    m3_fwd *f = m3_store_begin(&m->st, &r, 1, b->B, sizeof *f, "model3d", err);
    if (!f) return -1;
    model3d_losses L = {0};
    if (m3_encoder_forward(&r, m, &f->e, b->B, b->points, MASK_DRAWN, b) ||
        m3_decoder_forward(&r, m, &f->d, &f->e, b->drop_key) ||
        m3_heads_forward(&r, m, &f->h, &f->e, &f->d, b, &L) || backward(&r, m, f))
        return -1;
    m->steps_done++;
    m->last_fwd = f->e.light0 && !r.scratch ? NULL : f; /* embed0's backward reused the arena */
    if (out) *out = L;
    return 0;
}

/* The backward of the parts in reverse order; gradients accumulate into r->G. The parts' order is
 * the reverse of the parameter table's (model3d.c), so the progress reports (m3_grads_final) hold:
 * heads here, the decoder's and the stages' in theirs; the encoder's embeddings (the table's
 * start) are final when the step returns. */
static int backward(m3_run *r, const model3d *m, const m3_fwd *f)
{
    const model3d_config *c = &m->cfg;
    long B = f->e.B, G1 = c->groups[1], D1 = c->dec_dims[1];
    float *ddec1 = arena_zeros(r->a, B * G1 * D1), *dnormed[3] = {NULL, NULL, NULL};
    NEED(ddec1);
    TRY(m3_heads_backward(r, m, &f->h, &f->d, B, ddec1));
    m3_grads_final(r, m->rec3d.w); /* the heads end the parameter table */
    for (int s = 1; s < 3; s++) NEED(dnormed[s] = arena_zeros(r->a, B * f->e.mk.cap[s] * c->dims[s]));
    TRY(m3_decoder_backward(r, m, &f->d, &f->e, ddec1, dnormed));
    return m3_encoder_backward(r, m, &f->e, dnormed);
}

long m3_activation(const model3d *m, const char *name, float *out)
{
    const m3_fwd *f = m->last_fwd;
    const model3d_config *c = &m->cfg;
    if (!f) return -1;
    const m3_encoder_state *e = &f->e;
    const m3_heads_state *h = &f->h;
    long B = e->B, G1 = c->groups[1], k1 = c->k[1], W2 = k1 * c->views * c->feat_dim;
    for (int s = 0; s < 3; s++) {
        char n[32];
        long G = c->groups[s], C = c->dims[s];
        snprintf(n, sizeof n, "enc%d_full", s);
        if (!strcmp(name, n)) {
            memcpy(out, e->full[s], sizeof(float) * (size_t)(B * G * C));
            return B * G * C;
        }
        snprintf(n, sizeof n, "enc%d_out", s);
        if (!strcmp(name, n)) {
            memset(out, 0, sizeof(float) * (size_t)(B * G * C));
            mask_scatter_visible(&e->mk, s, B, G, C, e->es[s].normed, out);
            return B * G * C;
        }
    }
    if (!strcmp(name, "dec1_out")) {
        memcpy(out, f->d.ds1.normed, sizeof(float) * (size_t)(B * G1 * c->dec_dims[1]));
        return B * G1 * c->dec_dims[1];
    }
    if (!strcmp(name, "rec3d") || !strcmp(name, "target3d")) {
        const float *src = name[0] == 'r' ? h->rec3d : h->gt3d;
        for (long t = 0; t < B * G1; t++)
            for (long j = 0; j < 3 * k1; j++) out[t * 3 * k1 + j] = h->masked1[t] || name[0] == 't' ? src[t * 3 * k1 + j] : 0;
        return B * G1 * 3 * k1;
    }
    if (!strcmp(name, "rec2d") || !strcmp(name, "target2d")) {
        const float *src = name[0] == 'r' ? h->rec2d : h->tgt2d;
        memset(out, 0, sizeof(float) * (size_t)(B * G1 * W2));
        for (long i = 0; i < h->n_vrows; i++)
            memcpy(out + (long)h->vrows[i] * W2, src + i * W2, sizeof(float) * (size_t)W2);
        return B * G1 * W2;
    }
    return -1;
}

int model3d_encode(model3d *m, int B, const float *points, float *gmax, float *gmean, float *tokens,
                  float *centres, char *err)
{
    m3_run r;
    m3_encoder_state *e = m3_store_begin(&m->st, &r, 0, B, sizeof *e, "model3d", err);
    if (!e) return -1;
    TRY(m3_encoder_forward(&r, m, e, B, points, MASK_EVAL_SVM, NULL));
    /* scale 2 is all visible: the stage's rows are the tokens in order */
    long G2 = m->cfg.groups[2], C = m->cfg.dims[2];
    const float *x = e->es[2].normed;
    for (long b = 0; b < B; b++)
        for (long j = 0; j < C; j++) {
            float v = x[(b * G2) * C + j];
            double sum = 0;
            for (long t = 0; t < G2; t++) {
                float u = x[(b * G2 + t) * C + j];
                if (u > v) v = u;
                sum += u;
            }
            if (gmax) gmax[b * C + j] = v;
            if (gmean) gmean[b * C + j] = (float)(sum / (double)G2);
        }
    if (tokens) memcpy(tokens, x, sizeof(float) * (size_t)(B * G2 * C));
    if (centres) memcpy(centres, e->tk.ctr[2], sizeof(float) * (size_t)(B * G2 * 3));
    return 0;
}

int model3d_reconstruction(const model3d *m, int b, float *vis, long *n_vis, float *gt, float *rec,
                           long *n_masked, char *err)
{
    const m3_fwd *f = m->last_fwd;
    if (!f)
        return errf(err, m->st.recompute ? "model3d: the last step's activations are not kept with recompute"
                                         : "model3d: no training step run yet");
    if (b < 0 || b >= f->e.B) return errf(err, "model3d: sample %d of a batch of %ld", b, f->e.B);
    long G1 = m->cfg.groups[1], k1 = m->cfg.k[1], nv = 0, nm = 0;
    for (long t = (long)b * G1; t < (long)(b + 1) * G1; t++) {
        const float *c = f->e.tk.ctr[1] + t * 3, *g = f->h.gt3d + t * k1 * 3, *r = f->h.rec3d + t * k1 * 3;
        for (long j = 0; j < k1; j++)
            for (int x = 0; x < 3; x++) {
                if (f->h.masked1[t]) {
                    gt[(nm + j) * 3 + x] = c[x] + g[j * 3 + x];
                    rec[(nm + j) * 3 + x] = c[x] + r[j * 3 + x];
                } else {
                    vis[(nv + j) * 3 + x] = c[x] + g[j * 3 + x];
                }
            }
        if (f->h.masked1[t]) nm += k1;
        else nv += k1;
    }
    *n_vis = nv;
    *n_masked = nm;
    return 0;
}

/* The encoder's BatchNorms in model3d's order: embed0.bn1, embed0.bn2, merge1.bn1, ..., merge2.bn2. */
static const m3_bn *encoder_bn(const model3d *m, int i)
{
    return i % 2 ? &m->embed[i / 2].bn2 : &m->embed[i / 2].bn1;
}

enum { ENCODER_BNS = 6 };

long model3d_encoder_bn_values(const model3d *m)
{
    long n = 0;
    for (int i = 0; i < ENCODER_BNS; i++) n += 2 * encoder_bn(m, i)->C;
    return n;
}

int model3d_encoder_bn_batch_stats(model3d *m, int B, const float *points, double *stats, char *err)
{
    if (B < 2) return errf(err, "model3d: BatchNorm statistics of a batch of %d sample (at least 2)", B);
    const model3d_config *c = &m->cfg;
    int nb = c->depths[0] + c->depths[1] + c->depths[2];
    double *rates = malloc(sizeof(double) * (size_t)nb);
    float *saved = malloc(sizeof(float) * (size_t)(m->st.n_buffers ? m->st.n_buffers : 1));
    if (!rates || !saved) {
        free(rates);
        free(saved);
        return errf(err, "model3d: out of memory for the BatchNorm statistics");
    }
    /* the eval arena, no gradients; BatchNorm in training mode (batch statistics, running update
       undone below), drop path off */
    memcpy(saved, m->st.buffers, sizeof(float) * (size_t)m->st.n_buffers);
    for (int s = 0, i = 0; s < 3; s++)
        for (int j = 0; j < c->depths[s]; j++, i++) {
            rates[i] = m->enc[s].blocks[j].drop_rate;
            m->enc[s].blocks[j].drop_rate = 0;
        }
    m3_run r;
    m3_encoder_state *e = m3_store_begin(&m->st, &r, 0, B, sizeof *e, "model3d", err);
    int rc = e ? 0 : -1;
    if (!rc) {
        r.train = 1;
        rc = m3_encoder_forward(&r, m, e, B, points, MASK_EVAL_SVM, NULL);
    }
    for (int i = 0, at = 0; !rc && i < ENCODER_BNS; i++) {
        const m3_group_state *g = &e->gs[i / 2];
        const float *mean = i % 2 ? g->mean2 : g->mean1, *var = i % 2 ? g->var2 : g->var1;
        long C = encoder_bn(m, i)->C, rows = (long)B * c->groups[i / 2] * c->k[i / 2];
        for (long j = 0; j < C; j++) {
            stats[at + j] = mean[j];
            stats[at + C + j] = (double)var[j] * (double)rows / (double)(rows - 1); /* unbiased, as torch's */
        }
        at += 2 * C;
    }
    memcpy(m->st.buffers, saved, sizeof(float) * (size_t)m->st.n_buffers);
    for (int s = 0, i = 0; s < 3; s++)
        for (int j = 0; j < c->depths[s]; j++, i++) m->enc[s].blocks[j].drop_rate = rates[i];
    free(rates);
    free(saved);
    return rc;
}

void model3d_set_encoder_bn_stats(model3d *m, const double *stats)
{
    for (int i = 0, at = 0; i < ENCODER_BNS; i++) {
        const m3_bn *bn = encoder_bn(m, i);
        for (long j = 0; j < bn->C; j++) {
            m->st.buffers[bn->run_mean + j] = (float)stats[at + j];
            m->st.buffers[bn->run_var + j] = (float)stats[at + bn->C + j];
        }
        at += 2 * bn->C;
    }
}

int model3d_encode_global(model3d *m, int B, const float *points, float *global, char *err)
{
    return model3d_encode(m, B, points, global, NULL, NULL, NULL, err);
}
