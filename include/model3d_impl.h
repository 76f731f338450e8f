/* model3d_impl.h -- internals of the 3D network shared by its source files (not a public API),
 * top-down: the model (model3d.c), and the three parts of one forward / backward pass, each with
 * the activations it saves: the hierarchical encoder (encoder.c), the decoder (decoder.c) and the
 * reconstruction heads with their losses (rec_heads.c). model3d_step.c runs them in order.
 * The layers they are made of are in m3_layers.h, the tokenizer and the masking in tokenizer.h and
 * mask.h.
 */
#ifndef I2P_MODEL3D_IMPL_H
#define I2P_MODEL3D_IMPL_H

#include <stdint.h>

#include "arena.h"
#include "m3_layers.h"
#include "m3_store.h"
#include "mask.h"
#include "model3d.h"
#include "nn.h"
#include "tokenizer.h"

/* ---- the model: configuration, parameter layout, buffers, work memory (model3d.c) ---- */
struct model3d {
    model3d_config cfg;
    m3_store st;             /* parameters, gradients, buffers, their tables, arenas, primitive cache */
    void *last_fwd;                  /* the last train step's saved forward (in step_arena) */
    m3_group embed[3];       /* embed0, merge1, merge2 */
    m3_stage enc[3];
    long mask_token;         /* (1,1,dec_dims[0]) */
    m3_stage dec[2];         /* dec[0].norm unused; dec[1].norm = decoder.1.norm */
    m3_interp interp;
    m3_linear rec3d, rec2d;  /* rec2d only when cfg.feat_dim > 0 */
    double loss_w3, loss_w2; /* model3d_set_loss_weights; 0: that head is off */
    int pad_multiple;        /* model3d_set_pad_multiple (mask_build's pad_multiple) */
    long steps_done;
};

/* ---- hierarchical encoder over the three scales (encoder.c) ---- */
typedef struct {
    long B;
    m3_tokens tk;
    m3_mask mk;
    float *grp_in[3];        /* group inputs: nb0 (B*G0*k0,3); gathered tokens (B*G_s*k_s, C_{s-1}) */
    m3_group_state gs[3];
    float *full[3];          /* (B*G_s, C_s): embeddings, visible rows overwritten by the encoder */
    float *x0[3], *ctr[3], *keybias[3]; /* visible tokens, centres, key bias (B, cap_s, .) */
    m3_stage_state es[3];    /* es[s].normed (B,cap_s,C_s): the encoder outputs */
    /* embed0 under --recompute (training): its light forward kept only statistics and argmaxes
     * (m3_group_forward_light); its backward recomputes the rest. Without r->scratch the step's
     * arena is first released to mark0, just above embed0's state and dkeep0 (B*G0*C0 floats), into
     * which the gradient w.r.t. full[0] is copied: everything the later units saved is dead then. */
    int light0;
    float *dkeep0;
    arena_mark_t mark0;
} m3_encoder_state;
/* points (B,P,3): tokenize, mask (mask_mode: MASK_DRAWN, MASK_ALL_VISIBLE or MASK_EVAL_SVM of
 * mask.h; batch gives the saliency, mask keys, forced mask and drop-path key, NULL in eval), then
 * per scale embed / merge and encode the visible tokens. */
int m3_encoder_forward(m3_run *r, const model3d *m, m3_encoder_state *e, long B, const float *points,
                       int mask_mode, const model3d_batch *batch);
/* dnormed[s] (B,cap_s,C_s) or NULL: the gradient w.r.t. e->es[s].normed; all parameter gradients. */
int m3_encoder_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, float *const dnormed[3]);
/* The parts of the two above, for a network split over pipeline stages (pipe_units.c):
 * prepare = tokenize and mask (e->tk, e->mk); scale_forward = embed_forward (scale s's embed0 /
 * merge, reading e->full[s-1] for s > 0, into e->full[s]) then stage_forward (the stage on the
 * visible rows of e->full[s], into e->es[s] and back into e->full[s]). scale_backward =
 * stage_backward (dfull[s] (B,G_s,C_s) holds the gradient from scale s+1's merge, zeros for s = 2;
 * afterwards the gradient w.r.t. the embedding) then embed_backward (dfull[s-1] += the gradient
 * w.r.t. e->full[s-1], s > 0). */
int m3_encoder_prepare(m3_run *r, const model3d *m, m3_encoder_state *e, long B, const float *points,
                       int mask_mode, const model3d_batch *batch);
int m3_encoder_scale_forward(m3_run *r, const model3d *m, m3_encoder_state *e, int s, uint64_t drop_key);
int m3_encoder_embed_forward(m3_run *r, const model3d *m, m3_encoder_state *e, int s);
int m3_encoder_stage_forward(m3_run *r, const model3d *m, m3_encoder_state *e, int s, uint64_t drop_key);
int m3_encoder_scale_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, int s,
                              float *const dfull[3], float *const dnormed[3]);
int m3_encoder_stage_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, int s,
                              float *const dfull[3], float *const dnormed[3]);
int m3_encoder_embed_backward(m3_run *r, const model3d *m, const m3_encoder_state *e, int s,
                              float *const dfull[3]);

/* ---- decoder: stage 0 on scale 2 with mask tokens, upsampling + skip, stage 1 (decoder.c) ---- */
typedef struct {
    int32_t *order;          /* (B,G2) token at each decoder-0 row: visible ascending, then masked */
    int32_t *row_of;         /* (B,G2) decoder-0 row of each token */
    float *d0_in, *d0_ctr;
    m3_stage_state ds0;
    int32_t *idx3;           /* (B,G1,3) decoder-0 rows of the 3 nearest scale-2 centres */
    float *w3, *skip, *up;
    m3_interp_state is;
    m3_stage_state ds1;      /* ds1.normed (B,G1,D1): the decoder output */
} m3_decoder_state;
int m3_decoder_forward(m3_run *r, const model3d *m, m3_decoder_state *d, const m3_encoder_state *e,
                       uint64_t drop_key);
/* ddec1 (B,G1,D1): gradient w.r.t. d->ds1.normed. dnormed[1], dnormed[2] (B,cap_s,C_s), zeroed by
 * the caller: the visible rows receive the gradient w.r.t. e->es[s].normed (dnormed[0] unused). */
int m3_decoder_backward(m3_run *r, const model3d *m, const m3_decoder_state *d, const m3_encoder_state *e,
                        const float *ddec1, float *const dnormed[3]);

/* ---- reconstruction heads and losses (rec_heads.c): 3D offsets of the masked scale-1 tokens
 * (Chamfer), 2D features of the visible ones (MSE against the bicubic-sampled grids) ---- */
typedef struct {
    float *rec3d, *gt3d;     /* (B,G1,k1,3) */
    uint8_t *masked1;        /* (B,G1) */
    int32_t *vrows;          /* (Vcap) visible scale-1 rows b*G1+t, batch-major ascending */
    long n_vrows, vcap;
    float *v_in, *rec2d, *tgt2d;
} m3_heads_state;
int m3_heads_forward(m3_run *r, const model3d *m, m3_heads_state *h, const m3_encoder_state *e,
                     const m3_decoder_state *d, const model3d_batch *batch, model3d_losses *L);
/* 1 if the 2D head runs (the model has one and its loss weight is not 0). */
int m3_heads_2d_on(const model3d *m);
/* ddec1 (B,G1,D1) += gradient of w3 * loss_3d + w2 * loss_2d w.r.t. d->ds1.normed (a head whose
 * weight is 0 is skipped). */
int m3_heads_backward(m3_run *r, const model3d *m, const m3_heads_state *h, const m3_decoder_state *d,
                      long B, float *ddec1);

/* ---- the last train step (model3d_step.c) ---- */
/* An activation of the last train step in the reference-file layout (docs/model3d.md,
 * /expected/activations): enc{s}_full, enc{s}_out, dec1_out, rec3d, rec2d, target2d, target3d.
 * Writes B*G*C floats; returns the count or -1 if unknown / no step yet. */
long m3_activation(const model3d *m, const char *name, float *out);

#endif
