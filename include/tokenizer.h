/* tokenizer.h -- the multi-scale tokenizer of the 3D network (docs/model3d.md): FPS + kNN per scale,
 * centres carried with their original point index, and 2D-guided masking consistent across scales.
 */
#ifndef I2P_TOKENIZER_H
#define I2P_TOKENIZER_H

#include <stdint.h>

#include "arena.h"
#include "model3d.h"

typedef struct {
    int32_t *knn[3];   /* (B,G_s,k_s) indices into the previous level (points, scale-0, scale-1 centres) */
    int32_t *orig[3];  /* (B,G_s) original point index of each centre */
    float *ctr[3];     /* (B,G_s,3) centre xyz */
    float *nb0;        /* (B,G0,k0,3) scale-0 neighbourhoods relative to their centre */
} m3_tokens;

typedef struct {
    int cap[3];        /* padded capacity per scale (rows per sample in the encoder) */
    int *count[3];     /* (B) visible tokens per sample */
    int32_t *idx[3];   /* (B,cap) visible token indices, ascending; padding repeats index 0 */
    uint8_t *vis[3];   /* (B,G_s) 1 if visible */
} m3_mask;

/* points (B,P,3) -> tokens; buffers from the arena. 0 or -1 (out of memory). */
int tokenizer_run(const model3d_config *c, arena *a, const float *points, int B, m3_tokens *t);

/* Samples G indices without replacement with probabilities softmax(saliency (G)) by sequential
 * multinomial draws from the rng.h stream (key, 0): at each draw u = rng_uniform, the first
 * not-yet-drawn index whose cumulative probability exceeds u * remaining mass. Writes the first
 * n_vis drawn, sorted ascending, into vis (n_vis); work holds 2G doubles. */
void mask_draw_visible(const float *saliency, int G, int n_vis, uint64_t key, int32_t *vis, double *work);

/* The masks of all scales: scale-2 visible tokens from forced_visible (B,n_vis) or drawn from the
 * point saliency at the scale-2 centres (key mask_keys[b]); all_visible = 1 for eval. */
int mask_build(const model3d_config *c, arena *a, const m3_tokens *t, int B, int all_visible,
               const float *point_saliency, const uint64_t *mask_keys, const int32_t *forced_visible,
               m3_mask *mk);

/* Visible scale-2 tokens per sample = groups[2] - int(mask_ratio * groups[2]). */
int mask_n_visible(const model3d_config *c);

#endif
