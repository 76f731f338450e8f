/* ft_encoder.c -- the unmasked hierarchical encoder of the fine-tuning models (ft_encoder.h):
 * tokenize, embed + encode three scales with every token, local attention, optional stage norms;
 * and its backward through the stages and the token merging.
 */
#include "ft_encoder.h"

#include <stdio.h>
#include <string.h>

#include "classifier_impl.h"

int ft_encoder_n_blocks(const model3d_config *c) { return c->depths[0] + c->depths[1] + c->depths[2]; }

int ft_encoder_drop_path(m3_run *r, const ft_encoder *e, ft_encoder_state *f, long B, rng_t *g,
                         const float *forced)
{
    const model3d_config *c = e->cfg;
    long nb = ft_encoder_n_blocks(c);
    float *dp = arena_floats(r->a, B * nb * 2 + 1);
    double *rate = (double *)arena_alloc(r->a, sizeof(double) * (size_t)(nb + 1));
    NEED(dp && rate);
    for (int s = 0, i = 0; s < 3; s++)
        for (int j = 0; j < c->depths[s]; j++) rate[i++] = e->enc[s].blocks[j].drop_rate;
    for (long b = 0; b < B; b++)
        for (long i = 0; i < nb; i++)
            for (int j = 0; j < 2; j++) {
                double u = rng_uniform(&g[b]);
                long at = (b * nb + i) * 2 + j;
                dp[at] = forced ? forced[at] : u < rate[i] ? 0.0f : (float)(1.0 / (1.0 - rate[i]));
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
    return 0;
}

int ft_encoder_tokenize(m3_run *r, const ft_encoder *e, ft_encoder_state *f, long B, const float *points)
{
    f->B = B;
    if (tokenizer_run(e->cfg, r->a, points, (int)B, &f->tk)) return errf(r->err, "encoder: out of memory (tokenizer)");
    return 0;
}

int ft_encoder_embed_forward(m3_run *r, const ft_encoder *e, ft_encoder_state *f, int s)
{
    const model3d_config *c = e->cfg;
    long B = f->B, G = c->groups[s], k = c->k[s], C = c->dims[s];
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
    return m3_group_forward(r, &e->embed[s], f->x0[s], &f->gs[s], f->grp_in[s], B * G, k);
}

int ft_encoder_stage_forward(m3_run *r, const ft_encoder *e, ft_encoder_state *f, int s)
{
    const model3d_config *c = e->cfg;
    long B = f->B, G = c->groups[s];
    if (e->radius[s] > 0) {
        NEED(f->pairbias[s] = arena_floats(r->a, B * G * G));
        cls_local_bias(f->pairbias[s], f->tk.ctr[s], B, G, e->radius[s]);
    }
    f->ex[s].pairbias = f->pairbias[s];
    return m3_stage_forward_ex(r, &e->enc[s], &f->es[s], f->x0[s], f->tk.ctr[s], NULL, &f->ex[s], B, G,
                               c->heads, e->use_norm);
}

int ft_encoder_forward(m3_run *r, const ft_encoder *e, ft_encoder_state *f, long B, const float *points)
{
    TRY(ft_encoder_tokenize(r, e, f, B, points));
    for (int s = 0; s < 3; s++) {
        TRY(ft_encoder_embed_forward(r, e, f, s));
        TRY(ft_encoder_stage_forward(r, e, f, s));
    }
    return 0;
}

int ft_encoder_stage_backward(m3_run *r, const ft_encoder *e, const ft_encoder_state *f, int s, float *draw,
                              float *dnormed, float **dx0)
{
    const model3d_config *c = e->cfg;
    NEED(*dx0 = arena_zeros(r->a, f->B * c->groups[s] * c->dims[s]));
    return m3_stage_backward(r, &e->enc[s], &f->es[s], draw, dnormed, *dx0, c->heads);
}

int ft_encoder_embed_backward(m3_run *r, const ft_encoder *e, const ft_encoder_state *f, int s, const float *dx0,
                              float **dprev)
{
    const model3d_config *c = e->cfg;
    long B = f->B, G = c->groups[s], k = c->k[s], Cp = s > 0 ? c->dims[s - 1] : 3;
    float *dgrp = NULL;
    if (s > 0) NEED(dgrp = arena_zeros(r->a, B * G * k * Cp));
    TRY(m3_group_backward(r, &e->embed[s], dgrp, dx0, &f->gs[s], f->grp_in[s], B * G, k));
    if (s == 0) return 0;
    long Gp = c->groups[s - 1];
    float *dp;
    NEED(dp = arena_zeros(r->a, B * Gp * Cp));
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; b++) /* serial within a sample: neighbourhoods overlap */
        for (long i = b * G * k; i < (b + 1) * G * k; i++) {
            float *dst = dp + (b * Gp + f->tk.knn[s][i]) * Cp;
            for (long j = 0; j < Cp; j++) dst[j] += dgrp[i * Cp + j];
        }
    *dprev = dp;
    return 0;
}

int ft_encoder_backward(m3_run *r, const ft_encoder *e, const ft_encoder_state *f, float *draw2,
                        float *const *dnormed)
{
    const model3d_config *c = e->cfg;
    float *draw = draw2;
    if (!draw) NEED(draw = arena_zeros(r->a, f->B * c->groups[2] * c->dims[2]));
    /* stages 2, 1, 0 with the token merging between them; draw: gradient w.r.t. stage s's output */
    for (int s = 2; s >= 0; s--) {
        float *dx0 = NULL, *dprev = NULL;
        TRY(ft_encoder_stage_backward(r, e, f, s, draw, dnormed ? dnormed[s] : NULL, &dx0));
        TRY(ft_encoder_embed_backward(r, e, f, s, dx0, &dprev));
        draw = dprev;
    }
    return 0;
}

/* ---- loading a pre-trained encoder ---- */

/* 1 for the tensors a fine-tuning model shares with the pre-training model: the token embedding
 * and merging, the positional MLPs and the blocks, and with stage_norms the stage norms (not the
 * decoder or heads). */
static int is_encoder_tensor(const char *name, int stage_norms)
{
    if (!strncmp(name, "embed0.", 7) || !strncmp(name, "merge1.", 7) || !strncmp(name, "merge2.", 7))
        return 1;
    return !strncmp(name, "encoder.", 8) &&
           (strstr(name, ".pos.") || strstr(name, ".blocks.") || (stage_norms && strstr(name, ".norm.")));
}

static void shape_str(const model3d_tensor *t, char *s, size_t n)
{
    int at = snprintf(s, n, "(");
    for (int i = 0; i < t->rank && at < (int)n; i++) at += snprintf(s + at, n - (size_t)at, i ? ",%d" : "%d", t->shape[i]);
    if (at < (int)n) snprintf(s + at, n - (size_t)at, ")");
}

int ft_encoder_copy(const char *who, int stage_norms, const char *what, const model3d_tensor *mine,
                    int n_mine, float *dst, const model3d_tensor *theirs, int n_theirs, const float *src,
                    char *err)
{
    for (int i = 0; i < n_mine; i++) {
        const model3d_tensor *t = &mine[i];
        if (!is_encoder_tensor(t->name, stage_norms)) continue;
        const model3d_tensor *u = NULL;
        for (int j = 0; j < n_theirs && !u; j++)
            if (!strcmp(theirs[j].name, t->name)) u = &theirs[j];
        if (!u) return errf(err, "%s: %s '%s' missing from the pre-trained model", who, what, t->name);
        int same = u->rank == t->rank && u->count == t->count;
        for (int k = 0; same && k < t->rank; k++) same = u->shape[k] == t->shape[k];
        if (!same) {
            char a[64], b[64];
            shape_str(u, a, sizeof a);
            shape_str(t, b, sizeof b);
            return errf(err, "%s: %s '%s' has shape %s in the pre-trained model, %s here", who, what,
                        t->name, a, b);
        }
        memcpy(dst + t->offset, src + u->offset, sizeof(float) * (size_t)t->count);
    }
    /* an encoder tensor of the pre-trained model that this model lacks: another architecture */
    for (int j = 0; j < n_theirs; j++) {
        if (!is_encoder_tensor(theirs[j].name, stage_norms)) continue;
        int found = 0;
        for (int i = 0; i < n_mine && !found; i++) found = !strcmp(mine[i].name, theirs[j].name);
        if (!found)
            return errf(err, "%s: pre-trained %s '%s' has no counterpart in the %s", who, what,
                        theirs[j].name, who);
    }
    return 0;
}

