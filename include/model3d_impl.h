/* model3d_impl.h -- internals of the 3D network shared by its source files (not a public API).
 *
 * Layers hold offsets (in floats) into the one parameter buffer (and the same offsets into the
 * gradient buffer); BatchNorm running statistics are offsets into the buffers array. A m3_run
 * carries what every forward / backward needs: primitive cache, step arena, the three buffers,
 * training / eval mode and the error line.
 */
#ifndef I2P_MODEL3D_IMPL_H
#define I2P_MODEL3D_IMPL_H

#include <stdint.h>

#include "arena.h"
#include "model3d.h"
#include "nn.h"

typedef struct { long w, b; int in, out; } m3_linear;        /* w (out,in), b (out) or -1 */
typedef struct { long w, b; int C; } m3_norm;                 /* LayerNorm */
typedef struct { long w, b, run_mean, run_var; int C; } m3_bn; /* run_* index the buffers */
typedef struct { m3_linear fc1, fc2; } m3_pos;                /* 3 -> C -> C, GELU between */
typedef struct {
    m3_norm norm1, norm2;
    m3_linear qkv, proj, fc1, fc2;
    int C;
    double drop_rate;
} m3_block;
/* mini-PointNet on a neighbourhood: conv1 (a,cin) bn1 relu conv2 (b,a) | max, concat [g, x] |
 * conv3 (c,2b) bn2 relu conv4 (cout,c) | max. Used by embed0 and by merge1/merge2. */
typedef struct {
    m3_linear conv1, conv2, conv3, conv4;
    m3_bn bn1, bn2;
} m3_group;
typedef struct {
    m3_pos pos;
    m3_block *blocks;
    int depth;
    m3_norm norm;
} m3_stage;
typedef struct {
    m3_linear conv;
    m3_bn bn;
    m3_linear res_conv1, res_conv2;
    m3_bn res_bn1, res_bn2;
} m3_interp;

struct model3d {
    model3d_config cfg;
    int max_batch;
    dnn_ctx *ctx;
    nn_cache cache;
    arena step_arena, eval_arena;
    float *params, *grads, *buffers;
    long n_params, n_buffers;
    model3d_tensor *tensors;
    int n_tensors;
    model3d_tensor *buffer_tensors;  /* <bn>.running_mean / .running_var views into buffers */
    int n_buffer_tensors;
    void *last_fwd;                  /* the last train step's saved forward (in step_arena) */
    m3_group embed[3];       /* embed0, merge1, merge2 */
    m3_stage enc[3];
    long mask_token;         /* (1,1,dec_dims[0]) */
    m3_stage dec[2];         /* dec[0].norm unused; dec[1].norm = decoder.1.norm */
    m3_interp interp;
    m3_linear rec3d, rec2d;
    long steps_done;
};

typedef struct {
    nn_cache *c;
    arena *a;
    const float *P;
    float *G;                /* NULL in eval */
    float *buf;
    int train;               /* 1: BN batch statistics + running-stat update; 0: eval */
    char *err;
} m3_run;

#define M3P(r, off) ((r)->P + (off))
#define M3G(r, off) ((r)->G ? (r)->G + (off) : NULL)

/* ---- parameter table (model3d.c) ---- */
int m3_build_layout(model3d *m, char *err);

/* An activation of the last train step in the reference-file layout (docs/model3d.md,
 * /expected/activations): enc{s}_full, enc{s}_out, dec1_out, rec3d, rec2d, target2d, target3d.
 * Writes B*G*C floats; returns the count or -1 if unknown / no step yet. (model3d_step.c) */
long m3_activation(const model3d *m, const char *name, float *out);

/* ---- small layers (nn_block.c) ---- */
typedef struct { float *h, *g; } m3_pos_state;
int m3_pos_forward(m3_run *r, const m3_pos *p, float *out, m3_pos_state *s, const float *xyz, long N);
int m3_pos_backward(m3_run *r, const m3_pos *p, const float *dout, const m3_pos_state *s,
                    const float *xyz, long N);
typedef struct {
    float *ln1, *ln1_mean, *ln1_var, *qkv, *att, *attn_out, *x1, *ln2, *ln2_mean, *ln2_var, *fc1,
        *gelu;
    const float *drop_attn, *drop_mlp; /* (B) per-sample residual scales, NULL when no drop path */
} m3_block_state;
/* out, inp (B,T,C); keybias (B,T) or NULL; pairbias (B,T,T) or NULL (attention biases, see
 * nn_attention_forward_bias); drop_attn, drop_mlp (B) scales of the attention and MLP residual
 * branches or NULL (both are kept, not copied: they must live until the backward). */
int m3_block_forward(m3_run *r, const m3_block *p, float *out, m3_block_state *s, const float *inp,
                     const float *keybias, const float *pairbias, const float *drop_attn,
                     const float *drop_mlp, long B, long T, int heads);
/* dinp (B,T,C) += ... */
int m3_block_backward(m3_run *r, const m3_block *p, float *dinp, const float *dout,
                      const m3_block_state *s, const float *inp, long B, long T, int heads);

/* ---- mini-PointNet (token_embed.c) ---- */
typedef struct {
    float *h1, *bn1_mean, *bn1_var, *b1, *r1, *h2, *g, *cat, *h3, *bn2_mean, *bn2_var, *b2, *r2, *h4;
    int32_t *arg1, *arg2;
} m3_group_state;
/* inp (G,k,cin) -> out (G,cout). */
int m3_group_forward(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                     long G, long k);
/* dinp (G,k,cin) += ... (dinp may be NULL). */
int m3_group_backward(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                      const m3_group_state *s, const float *inp, long G, long k);

/* ---- transformer stage (encoder.c): x = block_i(x + pos(ctr)) for each block, then LayerNorm ---- */
typedef struct {
    long B, T;
    const float *x0, *ctr, *keybias;  /* inputs (B,T,C), (B,T,3), (B,T) or NULL; owned by the caller */
    float *pos;                       /* (B,T,C) */
    m3_pos_state pos_s;
    float **xin;                      /* per block (B,T,C): x + pos */
    m3_block_state *bs;
    float *raw;                       /* (B,T,C) last block output (x0 if no blocks) */
    float *normed, *ln_mean, *ln_var; /* (B,T,C), (B*T), (B*T); NULL if the stage has no norm */
} m3_stage_state;
/* drop_key / drop_index0: stochastic-depth stream and the global index of the stage's first block
 * (used only when r->train and a block's drop_rate > 0). */
int m3_stage_forward(m3_run *r, const m3_stage *p, m3_stage_state *s, const float *x0, const float *ctr,
                     const float *keybias, long B, long T, int heads, int use_norm, uint64_t drop_key,
                     int drop_index0);
/* What a stage run may add (fine-tuning): pairbias (B,T,T) additive per (query, key) or NULL; the
 * stochastic-depth scales per block and branch, drop_attn[i], drop_mlp[i] (B) or NULL (none), the
 * arrays themselves NULL for none at all. Everything must live until the backward. */
typedef struct {
    const float *pairbias;
    const float *const *drop_attn, *const *drop_mlp;
} m3_stage_extra;
/* The stage with the extras given explicitly (ex may be NULL); no draws from any stream. */
int m3_stage_forward_ex(m3_run *r, const m3_stage *p, m3_stage_state *s, const float *x0, const float *ctr,
                        const float *keybias, const m3_stage_extra *ex, long B, long T, int heads,
                        int use_norm);
/* draw (B,T,C): gradient w.r.t. raw (consumed, modified); dnormed (B,T,C) or NULL;
 * dx0 (B,T,C) += gradient w.r.t. x0. */
int m3_stage_backward(m3_run *r, const m3_stage *p, const m3_stage_state *s, float *draw,
                      const float *dnormed, float *dx0, int heads);

/* BatchNorm forward in the run's mode (token_embed.c): training statistics + running update, or eval. */
int m3_bn_forward(m3_run *r, const m3_bn *p, float *out, float *mean, float *var, const float *inp, long M);

/* ---- decoder upsampling (decoder.c): 3-NN interpolation + skip concat, conv-BN-GELU, residual ---- */
typedef struct {
    float *cat, *h, *bn_mean, *bn_var, *b, *x0, *h1, *bn1_mean, *bn1_var, *b1, *g1, *h2, *bn2_mean,
        *bn2_var, *y, *sum;
} m3_interp_state;
/* src (B,G2,D0) rows; idx3, w3 (B,G1,3): source rows and weights per target token;
 * skip (B,G1,d1) -> out (B,G1,D1). */
int m3_interp_forward(m3_run *r, const m3_interp *p, float *out, m3_interp_state *s, const float *src,
                      const int32_t *idx3, const float *w3, const float *skip, long B, long G1, long G2);
/* dsrc (B,G2,D0) += ..., dskip (B,G1,d1) += ... */
int m3_interp_backward(m3_run *r, const m3_interp *p, float *dsrc, float *dskip, const float *dout,
                       const m3_interp_state *s, const int32_t *idx3, const float *w3, long B, long G1,
                       long G2);

#endif
