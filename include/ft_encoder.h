/* ft_encoder.h -- the pre-trained hierarchical encoder as the fine-tuning models run it (internal;
 * used by the classifier and the part-segmentation network): every token of every scale takes part
 * (no masking, no visibility propagation), optional local attention per stage (keys at centre
 * distance >= radius get -1e5), optional stage LayerNorms ("encoder.{s}.norm", kept by part
 * segmentation as Point-M2AE's H_Encoder_seg does), stochastic depth from given per-sample scales.
 */
#ifndef I2P_FT_ENCODER_H
#define I2P_FT_ENCODER_H

#include <stdint.h>

#include "m3_layers.h"
#include "model3d.h"
#include "rng.h"
#include "tokenizer.h"

/* The layers (owned by the model) and what the encoder needs of the configuration. */
typedef struct {
    const model3d_config *cfg;
    const double *radius;     /* [3], 0 = no local attention */
    const m3_group *embed;    /* [3] embed0, merge1, merge2 */
    const m3_stage *enc;      /* [3] */
    int use_norm;             /* 1: apply the stage norms (es[s].normed) */
} ft_encoder;

typedef struct {
    long B;
    m3_tokens tk;
    float *grp_in[3];          /* nb0 (B*G0*k0,3); gathered tokens (B*G_s*k_s, C_{s-1}) */
    m3_group_state gs[3];
    float *x0[3];              /* (B,G_s,C_s) token embeddings: the stage inputs */
    float *pairbias[3];        /* (B,G_s,G_s) local-attention bias or NULL */
    m3_stage_extra ex[3];      /* drop-path scales: set by ft_encoder_drop_path before the forward */
    m3_stage_state es[3];      /* es[s].raw (B,G_s,C_s) stage outputs; es[s].normed with use_norm */
} ft_encoder_state;

int ft_encoder_n_blocks(const model3d_config *c);
/* Draws the stochastic-depth scales of a train step into f->ex: for sample b, from g[b], one
 * uniform per encoder block (stages in order) for the attention branch and one for the MLP branch
 * (scale 0 if < the block's rate, else 1/(1-rate)). forced (B, n_blocks, 2) or NULL: the scales
 * given instead (the uniforms are still drawn, so later draws from g do not move). */
int ft_encoder_drop_path(m3_run *r, const ft_encoder *e, ft_encoder_state *f, long B, rng_t *g,
                         const float *forced);
/* points (B,P,3): tokenize, then per scale embed / merge and encode. */
int ft_encoder_forward(m3_run *r, const ft_encoder *e, ft_encoder_state *f, long B, const float *points);
/* The same in pieces (pipeline stages, pipe_split.h): the tokenizer; scale s's token embedding
 * (s = 0: the mini-PointNet of the neighbourhoods; else the merge of es[s-1].raw); its stage. */
int ft_encoder_tokenize(m3_run *r, const ft_encoder *e, ft_encoder_state *f, long B, const float *points);
int ft_encoder_embed_forward(m3_run *r, const ft_encoder *e, ft_encoder_state *f, int s);
int ft_encoder_stage_forward(m3_run *r, const ft_encoder *e, ft_encoder_state *f, int s);
/* draw2 (B,G2,C2) or NULL: gradient w.r.t. es[2].raw (consumed); dnormed[s] (B,G_s,C_s) or NULL:
 * gradients w.r.t. es[s].normed (dnormed may be NULL). All parameter gradients into r->G. */
int ft_encoder_backward(m3_run *r, const ft_encoder *e, const ft_encoder_state *f, float *draw2,
                        float *const *dnormed);

/* The backward in pieces: stage s (draw: gradient w.r.t. es[s].raw; dnormed or NULL) into a new
 * zeroed *dx0 (B,G_s,C_s); then scale s's embedding from dx0, for s > 0 into a new zeroed *dprev
 * (B,G_{s-1},C_{s-1}), the gradient w.r.t. es[s-1].raw. ft_encoder_backward runs them for
 * s = 2, 1, 0. */
int ft_encoder_stage_backward(m3_run *r, const ft_encoder *e, const ft_encoder_state *f, int s, float *draw,
                              float *dnormed, float **dx0);
int ft_encoder_embed_backward(m3_run *r, const ft_encoder *e, const ft_encoder_state *f, int s, const float *dx0,
                              float **dprev);

/* Copies the encoder tensors of one table (what: "tensor" parameters or "buffer" BatchNorm
 * statistics) of a pre-training model (theirs, src) into a fine-tuning model's (mine, dst) by
 * name: embed0, merge1/2, encoder.{s}.pos / .blocks, and with stage_norms encoder.{s}.norm. Shapes
 * must match; an encoder tensor on either side without its counterpart is an error (another
 * architecture). Errors start with who ("classifier", "partseg"). */
int ft_encoder_copy(const char *who, int stage_norms, const char *what, const model3d_tensor *mine,
                    int n_mine, float *dst, const model3d_tensor *theirs, int n_theirs, const float *src,
                    char *err);

#endif
