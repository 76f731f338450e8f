/* tokenizer.c -- FPS + kNN at three scales (see tokenizer.h); every centre keeps its original
 * point index for saliency and 2D-target look-ups.
 */
#include "tokenizer.h"

#include "pointops.h"

int tokenizer_run(const model3d_config *c, arena *a, const float *points, int B, m3_tokens *t)
{
    const float *src = points;
    long n_src = c->points;
    for (int s = 0; s < 3; s++) {
        long G = c->groups[s], k = c->k[s];
        int32_t *fps = (int32_t *)arena_ints(a, B * G);
        t->knn[s] = (int32_t *)arena_ints(a, B * G * k);
        t->orig[s] = (int32_t *)arena_ints(a, B * G);
        t->ctr[s] = arena_floats(a, B * G * 3);
        float *work = arena_floats(a, B * (4 * n_src + k));
        if (!fps || !t->knn[s] || !t->orig[s] || !t->ctr[s] || !work) return -1;
        fps_sample_batch_ws(src, B, n_src, G, c->fps_skip_origin, fps, work);
        for (long b = 0; b < B; b++) {
            pc_gather(src + b * n_src * 3, fps + b * G, G, t->ctr[s] + b * G * 3);
            for (long g = 0; g < G; g++)
                t->orig[s][b * G + g] = s == 0 ? fps[b * G + g] : t->orig[s - 1][b * n_src + fps[b * G + g]];
        }
        knn_query_batch_ws(src, B, n_src, t->ctr[s], G, (int)k, t->knn[s], work);
        src = t->ctr[s];
        n_src = G;
    }
    long G0 = c->groups[0], k0 = c->k[0], P = c->points;
    t->nb0 = arena_floats(a, B * G0 * k0 * 3);
    if (!t->nb0) return -1;
#pragma omp parallel for schedule(static)
    for (long bg = 0; bg < B * G0; bg++) {
        long b = bg / G0;
        const float *ctr = t->ctr[0] + bg * 3;
        for (long j = 0; j < k0; j++) {
            const float *p = points + (b * P + t->knn[0][bg * k0 + j]) * 3;
            float *o = t->nb0 + (bg * k0 + j) * 3;
            for (int d = 0; d < 3; d++) o[d] = p[d] - ctr[d];
        }
    }
    return 0;
}
