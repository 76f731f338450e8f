/* mask.h -- 2D-guided masking of the 3D network's tokens (docs/model3d.md): the scale-2 visible
 * tokens drawn from the saliency of their centres, propagated to scales 1 and 0 through the kNN
 * sets, as padded per-sample lists; and the moves between those lists and token order.
 */
#ifndef I2P_MASK_H
#define I2P_MASK_H

#include <stdint.h>

#include "arena.h"
#include "model3d.h"
#include "tokenizer.h"

typedef struct {
    int cap[3];        /* padded capacity per scale (rows per sample in the encoder): the bound of
                          mask_build, scale 0 possibly less (pad_multiple) */
    int *count[3];     /* (B) visible tokens per sample */
    int32_t *idx[3];   /* (B,cap) visible token indices, ascending; padding repeats index 0 */
    uint8_t *vis[3];   /* (B,G_s) 1 if visible */
} m3_mask;

/* Samples G indices without replacement with probabilities softmax(saliency (G)) by sequential
 * multinomial draws from the rng.h stream (key, 0): at each draw u = rng_uniform, the first
 * not-yet-drawn index whose cumulative probability exceeds u * remaining mass. Writes the first
 * n_vis drawn, sorted ascending, into vis (n_vis); work holds 2G doubles. */
void mask_draw_visible(const float *saliency, int G, int n_vis, uint64_t key, int32_t *vis, double *work);

/* How mask_build chooses the visible tokens. */
enum {
    MASK_DRAWN = 0,       /* pre-training: scale 2 drawn (or forced), propagated to scales 1 and 0 */
    MASK_ALL_VISIBLE = 1, /* fine-tuning: every token of every scale, no propagation */
    MASK_EVAL_SVM = 2     /* the official SVM path (pre-training model, eval=True): scale 2 all
                             visible, propagated -- a finer token in no kNN set of a coarser one
                             stays masked (i2pmae-spec.md section 8) */
};

/* The masks of all scales for mode (MASK_*): MASK_DRAWN takes the scale-2 visible tokens from
 * forced_visible (B,n_vis) or draws them from the point saliency at the scale-2 centres (key
 * mask_keys[b]); point_saliency NULL: random masking, the same draws with every token equally
 * likely (the saliency is not read).
 * Capacities: every scale's cap starts at the bound that no mask can exceed (MASK_ALL_VISIBLE: G_s;
 * else scale 2: n_vis, scale 1: min(G1, n_vis k2), scale 0: min(G0, cap1 k1)). pad_multiple > 0
 * lowers scale 0's to the batch's largest visible count rounded up to a multiple of pad_multiple
 * (never above the bound): the official code pads to the batch maximum, and at the spec's sizes the
 * bound (512) is ~1.4x the largest count (~360). The other scales keep their bounds (they are close to
 * the counts, and the pipeline's messages are sized by them). cap depends on the B samples' masks
 * only, so a micro-batch gets the same cap on every rank count and pipeline stage. */
int mask_build(const model3d_config *c, arena *a, const m3_tokens *t, int B, int mode, int pad_multiple,
               const float *point_saliency, const uint64_t *mask_keys, const int32_t *forced_visible,
               m3_mask *mk);

/* Visible scale-2 tokens per sample: c->visible if set, else groups[2] - int(mask_ratio * groups[2]). */
int mask_n_visible(const model3d_config *c);

/* Scale s, B samples of G tokens, rows of C floats. Gather: rows (B,cap_s,C) <- the visible
 * tokens of tokens (B,G,C), in list order; padding rows are left as they are. Scatter: the
 * visible tokens of tokens (B,G,C) <- rows (B,cap_s,C); the masked tokens are left as they are. */
void mask_gather_visible(const m3_mask *mk, int s, long B, long G, long C, const float *tokens, float *rows);
void mask_scatter_visible(const m3_mask *mk, int s, long B, long G, long C, const float *rows, float *tokens);

#endif
