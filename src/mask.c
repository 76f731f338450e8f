/* mask.c -- 2D-guided masking at scale 2 (softmax of the centres' saliency, sequential multinomial
 * draws without replacement; without a saliency the same draws from the uniform distribution; or
 * every scale-2 token on the SVM path), its propagation to scales 1 and 0 through the kNN sets, and the
 * gather / scatter between the padded visible lists and token order (mask.h).
 */
#include "mask.h"

#include <math.h>
#include <string.h>

#include "rng.h"

int mask_n_visible(const model3d_config *c)
{
    if (c->visible > 0) return c->visible;
    return c->groups[2] - (int)(c->mask_ratio * c->groups[2]);
}

void mask_draw_visible(const float *saliency, int G, int n_vis, uint64_t key, int32_t *vis, double *work)
{
    double *p = work, *taken = work + G;
    for (int i = 0; i < G; i++) taken[i] = 0;
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < G; i++) if (saliency[i] > mx) mx = saliency[i];
    for (int i = 0; i < G; i++) z += p[i] = exp((double)saliency[i] - mx);
    for (int i = 0; i < G; i++) p[i] /= z;
    rng_t r;
    rng_seed(&r, key, 0);
    double remaining = 1.0;
    for (int d = 0; d < n_vis; d++) {
        double u = rng_uniform(&r) * remaining, cum = 0;
        int pick = -1, last = -1;
        for (int i = 0; i < G; i++) {
            if (taken[i]) continue;
            last = i;
            cum += p[i];
            if (cum > u) { pick = i; break; }
        }
        if (pick < 0) pick = last; /* rounding at the end of the range */
        taken[pick] = 1;
        remaining -= p[pick];
        if (remaining < 0) remaining = 0;
    }
    int n = 0;
    for (int i = 0; i < G; i++) if (taken[i]) vis[n++] = i;
}

/* From vis flags (B,G) build the ascending padded index list. */
static void list_from_flags(const uint8_t *vis, int B, int G, int cap, int *count, int32_t *idx)
{
    for (int b = 0; b < B; b++) {
        int n = 0;
        for (int g = 0; g < G; g++)
            if (vis[b * G + g] && n < cap) idx[b * cap + n++] = g;
        count[b] = n;
        for (int i = n; i < cap; i++) idx[b * cap + i] = 0;
    }
}

/* The largest visible count of the B samples' flags (B,G), rounded up to a multiple of q, at most
 * bound. */
static int batch_max_cap(const uint8_t *vis, int B, int G, int bound, int q)
{
    int most = 0;
    for (int b = 0; b < B; b++) {
        int n = 0;
        for (int g = 0; g < G; g++) n += vis[b * G + g];
        if (n > most) most = n;
    }
    long cap = ((long)most + q - 1) / q * q;
    return cap < bound ? (int)cap : bound;
}

int mask_build(const model3d_config *c, arena *a, const m3_tokens *t, int B, int mode, int pad_multiple,
               const float *point_saliency, const uint64_t *mask_keys, const int32_t *forced_visible,
               m3_mask *mk)
{
    int nv = mode == MASK_DRAWN ? mask_n_visible(c) : c->groups[2];
    if (mode == MASK_ALL_VISIBLE) {
        for (int s = 0; s < 3; s++) mk->cap[s] = c->groups[s];
    } else {
        mk->cap[2] = nv;
        mk->cap[1] = c->groups[1] < nv * c->k[2] ? c->groups[1] : nv * c->k[2];
        mk->cap[0] = c->groups[0] < mk->cap[1] * c->k[1] ? c->groups[0] : mk->cap[1] * c->k[1];
    }
    for (int s = 0; s < 3; s++) {
        mk->count[s] = arena_ints(a, B);
        mk->vis[s] = arena_alloc(a, (size_t)B * c->groups[s]);
        if (!mk->count[s] || !mk->vis[s]) return -1;
        memset(mk->vis[s], mode == MASK_ALL_VISIBLE || (mode == MASK_EVAL_SVM && s == 2) ? 1 : 0,
               (size_t)B * c->groups[s]);
    }
    if (mode == MASK_DRAWN) {
        int G2 = c->groups[2];
        float *sal = (float *)arena_floats(a, G2);
        int32_t *v = (int32_t *)arena_ints(a, nv);
        double *work = arena_alloc(a, sizeof(double) * 2 * (size_t)G2);
        if (!sal || !v || !work) return -1;
        for (int b = 0; b < B; b++) {
            const int32_t *chosen = forced_visible ? forced_visible + (long)b * nv : v;
            if (!forced_visible) {
                for (int g = 0; g < G2; g++) /* no saliency: random masking, uniform draws */
                    sal[g] = point_saliency ? point_saliency[(long)b * c->points + t->orig[2][b * G2 + g]]
                                            : 0.0f;
                mask_draw_visible(sal, G2, nv, mask_keys ? mask_keys[b] : (uint64_t)b, v, work);
            }
            for (int i = 0; i < nv; i++) mk->vis[2][b * G2 + chosen[i]] = 1;
        }
    }
    if (mode != MASK_ALL_VISIBLE) {
        /* a finer token is visible iff it is in the kNN set of a visible coarser token */
        for (int s = 2; s >= 1; s--) {
            int G = c->groups[s], Gf = c->groups[s - 1], k = c->k[s];
            for (int b = 0; b < B; b++)
                for (int g = 0; g < G; g++)
                    if (mk->vis[s][b * G + g])
                        for (int j = 0; j < k; j++) mk->vis[s - 1][b * Gf + t->knn[s][((long)b * G + g) * k + j]] = 1;
        }
    }
    if (pad_multiple > 0) mk->cap[0] = batch_max_cap(mk->vis[0], B, c->groups[0], mk->cap[0], pad_multiple);
    for (int s = 0; s < 3; s++) {
        if (!(mk->idx[s] = (int32_t *)arena_ints(a, (long)B * mk->cap[s]))) return -1;
        list_from_flags(mk->vis[s], B, c->groups[s], mk->cap[s], mk->count[s], mk->idx[s]);
    }
    return 0;
}

void mask_gather_visible(const m3_mask *mk, int s, long B, long G, long C, const float *tokens, float *rows)
{
    long cap = mk->cap[s];
    for (long b = 0; b < B; b++)
        for (long i = 0; i < mk->count[s][b]; i++)
            memcpy(rows + (b * cap + i) * C, tokens + (b * G + mk->idx[s][b * cap + i]) * C,
                   sizeof(float) * (size_t)C);
}

void mask_scatter_visible(const m3_mask *mk, int s, long B, long G, long C, const float *rows, float *tokens)
{
    long cap = mk->cap[s];
    for (long b = 0; b < B; b++)
        for (long i = 0; i < mk->count[s][b]; i++)
            memcpy(tokens + (b * G + mk->idx[s][b * cap + i]) * C, rows + (b * cap + i) * C,
                   sizeof(float) * (size_t)C);
}
