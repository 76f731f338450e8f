/* m3_layers.h -- the layers of the 3D network (internal, not a public API): parameter offsets, the
 * run context every forward / backward takes, and one forward/backward pair per layer, one section
 * per source file (m3_run.c, m3_bn.c, m3_conv_bn.c, m3_pos.c, m3_block.c, m3_stage.c, m3_group.c,
 * m3_interp.c).
 *
 * Layers hold offsets (in floats) into the one parameter buffer (and the same offsets into the
 * gradient buffer); BatchNorm running statistics are offsets into the buffers array. Saved
 * activations ("state") live in the run's arena. Backward functions accumulate (+=) into the input
 * gradient they are given, like the nn_* layers (nn.h), and into the gradient buffer.
 */
#ifndef I2P_M3_LAYERS_H
#define I2P_M3_LAYERS_H

#include <stdint.h>

#include "arena.h"
#include "errors.h"
#include "nn.h"

/* What every forward / backward needs: primitive cache, arena for saved activations and
 * temporaries, parameters P, gradients G (NULL in eval), BatchNorm running statistics buf,
 * training / eval mode and the caller's error line. */
typedef struct {
    nn_cache *c;
    arena *a;
    const float *P;
    float *G;                /* NULL in eval */
    float *buf;
    int train;               /* 1: BN batch statistics + running-stat update; 0: eval */
    char *err;
    /* Backward progress, or NULL: grads_final(grads_final_ctx, lo) says that the gradient of every
     * parameter at offset >= lo is final for this step. The backward of a network calls it only
     * where it runs in reverse parameter-table order (m3_grads_final). */
    void (*grads_final)(void *ctx, long lo);
    void *grads_final_ctx;
    /* 1 (training only): a transformer stage keeps each block's input only; the block's other
     * activations are recomputed in the backward (activation checkpointing, same results bitwise) */
    int recompute;
    /* NULL, or (with recompute) an arena for the temporaries of embed0's light forward and for its
     * recomputation and backward (a pipeline stage's, shared by its micro-batches in flight) */
    arena *scratch;
} m3_run;

/* The parameter (gradient) pointer of a tensor at offset off; M3G is NULL in eval. */
#define M3P(r, off) ((r)->P + (off))
#define M3G(r, off) ((r)->G ? (r)->G + (off) : NULL)

/* The error paths of the 3D network's functions, which all return 0 or -1 and have an m3_run *r in
 * scope: TRY(call) returns -1 when call failed (it already filled r->err); NEED(pointer) returns
 * -1 with "out of memory" in r->err when an arena allocation gave NULL. */
#define TRY(x) do { if (x) return -1; } while (0)
#define NEED(p) do { if (!(p)) return errf(r->err, "model3d: out of memory (step arena)"); } while (0)

/* A float buffer of a layer's saved state: *ptr receives count floats from the run's arena. */
typedef struct { float **ptr; long count; } m3_buffer;
/* Allocates the n buffers in order (m3_run.c); 0, or -1 with "out of memory" in r->err. */
int m3_alloc_floats(m3_run *r, const m3_buffer *list, int n);
/* Calls r->grads_final with lo when it is set (m3_run.c). */
void m3_grads_final(const m3_run *r, long lo);

/* ---- plain parameter sets, used through nn_linear_* / nn_layernorm_* directly ---- */
typedef struct { long w, b; int in, out; } m3_linear;        /* w (out,in), b (out) or -1 */
typedef struct { long w, b; int C; } m3_norm;                 /* LayerNorm */

/* ---- BatchNorm in the run's mode (m3_bn.c) ---- */
typedef struct { long w, b, run_mean, run_var; int C; } m3_bn; /* run_* index the buffers */
/* inp, out (M,C); training: batch statistics into mean, var (C) + running update; eval: running
 * statistics (mean, var unused). The backward is nn_batchnorm_backward. */
int m3_bn_forward(m3_run *r, const m3_bn *p, float *out, float *mean, float *var, const float *inp, long M);
/* m3_bn_forward's output again, bitwise, from the same inp and the mean, var it saved (training)
 * or the running statistics (eval); no running-stat update. For backwards that recompute it. */
int m3_bn_apply(m3_run *r, const m3_bn *p, float *out, const float *mean, const float *var,
                const float *inp, long M);

/* ---- conv-BN-activation unit (m3_conv_bn.c): kernel-1 Conv1d, BatchNorm in the run's mode, then
 * NN_RELU, NN_GELU or 0 (no activation) ---- */
typedef struct {
    float *h;                /* (R,C) conv output */
    float *mean, *var;       /* (C) batch statistics (training) */
    float *b;                /* (R,C) BN output: the activation's input, or the unit's output for act 0 */
} m3_conv_bn_state;
/* inp (R,conv->in) -> out (R,conv->out) = act(bn(conv(inp))); for act 0 out is unused and s->b is
 * the output. The state's buffers are the caller's (allocated with its other saved activations). */
int m3_conv_bn_act_forward(m3_run *r, const m3_linear *conv, const m3_bn *bn, int act, float *out,
                           const m3_conv_bn_state *s, const float *inp, long R);
/* dout (R,conv->out): gradient w.r.t. out (w.r.t. s->b for act 0); dinp (R,conv->in) += ... (may
 * be NULL); conv and BN parameter gradients into r->G. */
int m3_conv_bn_act_backward(m3_run *r, const m3_linear *conv, const m3_bn *bn, int act, float *dinp,
                            const float *dout, const m3_conv_bn_state *s, const float *inp, long R);

/* BatchNorm -> ReLU -> kernel-1 conv, as the mini-PointNet (m3_group.c) runs it: out (R,conv->out) =
 * conv(relu(bn(h))), h (R,bn->C). stats 1: BN in the run's mode (m3_bn_forward: training takes the
 * batch statistics into mean, var and updates the running ones); stats 0: from the saved mean, var
 * (m3_bn_apply). tmp: (R,bn->C) floats of scratch. fp32, or a conv below the bf16 thresholds: bitwise
 * m3_bn_* into tmp, nn_act_forward (ReLU) in place, nn_linear_forward (in training BN and ReLU in one
 * pass, nn_batchnorm_relu_train). bf16: the ReLU output is written once, in bf16, into tmp
 * (nn_batchnorm_relu_bf16) and read by the conv as it is. */
int m3_bn_relu_conv_forward(m3_run *r, const m3_bn *bn, const m3_linear *conv, int stats, float *out,
                            float *mean, float *var, float *tmp, const float *h, long R);
/* Its backward, the ReLU output recomputed from h and the saved mean, var: conv's gradients into
 * r->G from dout (R,conv->out); dy (R,bn->C) = the gradient at bn's output (overwritten); tmp as
 * above. */
int m3_bn_relu_conv_backward(m3_run *r, const m3_bn *bn, const m3_linear *conv, float *dy, float *tmp,
                             const float *mean, const float *var, const float *h, const float *dout, long R);
/* m3_bn_relu_conv_backward followed by BatchNorm's backward (training): dh (R,bn->C) OVERWRITTEN with the
 * gradient at h, bitwise nn_batchnorm_backward of dy into zeros, ReLU's backward folded into its passes
 * (nn_batchnorm_relu_backward); bn's and conv's parameter gradients into r->G, conv's bias gradient only
 * with conv_bias (0: its caller summed it from dout). dy (R,bn->C): scratch (conv's input gradient,
 * before ReLU's backward); tmp as above; dh may alias tmp. */
int m3_bn_relu_conv_bn_backward(m3_run *r, const m3_bn *bn, const m3_linear *conv, int conv_bias, float *dh,
                                float *dy, float *tmp, const float *mean, const float *var, const float *h,
                                const float *dout, long R);
/* m3_bn_relu_conv_bn_backward from conv's output gradient given in bf16 (doutb (R,conv->out), e.g.
 * rounded by its producer's sweep): the same results as from the f32 gradient that rounds to it, but
 * conv's bias gradient, which its caller adds (it needs the f32 gradient); only for a conv in bf16 (else
 * an error). */
int m3_bn_relu_conv_bn_backward_bf16dout(m3_run *r, const m3_bn *bn, const m3_linear *conv, float *dh, float *dy,
                                        float *tmp, const float *mean, const float *var, const float *h,
                                        const uint16_t *doutb, long R);
/* Whether conv's matmuls run in bf16 (nn_linear_is_bf16 of its shape). */
int m3_conv_is_bf16(const m3_run *r, const m3_linear *conv);
/* m3_bn_relu_conv_bn_backward with the gradient at h handed to sink piece by piece (the same values,
 * nn_batchnorm_relu_backward_sink) instead of written into dh; only for a conv in bf16 (else an
 * error). scratch: nn_bn_sink_scratch(bn->C, sink->align) floats. */
int m3_bn_relu_conv_bn_backward_sink(m3_run *r, const m3_bn *bn, const m3_linear *conv, const nn_rows_sink *sink,
                                     float *scratch, float *dy, float *tmp, const float *mean, const float *var,
                                     const float *h, const float *dout, long R);
/* The same on R rows of a backward by row chunks: dy and tmp as above; conv's weight gradient is added
 * to the running sum *dw (nn_linear_dw_add; NULL: none), its bias gradient left to the caller (a sum
 * over all rows at once). dy, tmp and the conv's data gradient bitwise those of the whole rows. */
int m3_bn_relu_conv_backward_rows(m3_run *r, const m3_bn *bn, const m3_linear *conv, float *dy, float *tmp,
                                  const float *mean, const float *var, const float *h, const float *dout, long R,
                                  nn_dw_sum *dw);

/* ---- positional MLP of the centres: 3 -> C, GELU, C -> C (m3_pos.c) ---- */
typedef struct { m3_linear fc1, fc2; } m3_pos;
typedef struct { float *h, *g; } m3_pos_state;
/* xyz (N,3) -> out (N,C). */
int m3_pos_forward(m3_run *r, const m3_pos *p, float *out, m3_pos_state *s, const float *xyz, long N);
/* Parameter gradients only (the centres need none). */
int m3_pos_backward(m3_run *r, const m3_pos *p, const float *dout, const m3_pos_state *s,
                    const float *xyz, long N);

/* ---- pre-norm transformer block with stochastic depth (m3_block.c) ---- */
typedef struct {
    m3_norm norm1, norm2;
    m3_linear qkv, proj, fc1, fc2;
    int C;
    double drop_rate;
} m3_block;
typedef struct {
    float *ln1, *ln1_mean, *ln1_var, *qkv, *att, *attn_out, *x1, *ln2, *ln2_mean, *ln2_var, *fc1,
        *gelu;
    /* When the block's linear layers run bf16 (nn_linear_is_bf16 at width C), the four inputs that
     * only their weight gradients read again are kept rounded to bf16 instead (ln1, attn_out, ln2
     * and gelu NULL): converted once in the forward, read as they are by the forward and backward. */
    uint16_t *ln1b, *attn_outb, *ln2b, *gelub;
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

/* ---- transformer stage: x = block_i(x + pos(ctr)) for each block, then LayerNorm (m3_stage.c);
 * the encoder's three stages and the decoder's two ---- */
typedef struct {
    m3_pos pos;
    m3_block *blocks;
    int depth;
    m3_norm norm;
} m3_stage;
typedef struct {
    long B, T;
    const float *x0, *ctr, *keybias;  /* inputs (B,T,C), (B,T,3), (B,T) or NULL; owned by the caller */
    float *pos;                       /* (B,T,C) */
    m3_pos_state pos_s;
    float **xin;                      /* per block (B,T,C): x + pos */
    m3_block_state *bs;
    float *raw;                       /* (B,T,C) last block output (x0 if no blocks) */
    float *normed, *ln_mean, *ln_var; /* (B,T,C), (B*T), (B*T); NULL if the stage has no norm */
    const float *pairbias;            /* the run's (m3_stage_extra), for a recomputation */
    int recomputed;                   /* 1: bs[i] hold only the drop scales; the backward recomputes
                                         each block's activations from xin[i] (r->recompute) */
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
 * dx0 (B,T,C) += gradient w.r.t. x0. Reports backward progress (m3_grads_final) after each block
 * and at the end, so the stage's backward must come after that of every parameter above it. */
int m3_stage_backward(m3_run *r, const m3_stage *p, const m3_stage_state *s, float *draw,
                      const float *dnormed, float *dx0, int heads);

/* ---- mini-PointNet on a neighbourhood (m3_group.c): conv1 (a,cin) bn1 relu conv2 (b,a) | max,
 * concat [g, x] | conv3 (c,2b) bn2 relu conv4 (cout,c) | max. Used by embed0 and merge1/merge2.
 * conv3 is computed factorised over the concat, never built: with W3 = [W_g | W_h] (global half
 * first), y3 = h2 W_h^T (R rows) + broadcast over k of (g W_g^T + b3) (G rows); in the backward the
 * global half's gradients come from dy3 summed over k (G rows). Same mathematics, other rounding. ---- */
typedef struct {
    m3_linear conv1, conv2, conv3, conv4;
    m3_bn bn1, bn2;
} m3_group;
/* Saved by the forward (R = G k rows): b + c floats per row (and b bf16 values with h2b). The
 * backward recomputes, bitwise, what it needs besides: r1 = relu(bn1(conv1(inp))) from the input and
 * r2 = relu(bn2(h3)) from h3, each BN applied again with the saved statistics (m3_bn_apply); ReLU's
 * backward uses its output. conv4's output is a temporary, its max-pool keeps the argmax. */
typedef struct {
    float *h2;                 /* (R,b) conv2 output */
    uint16_t *h2b;             /* (R,b) h2 rounded to bf16, kept by the forward that keeps h2 when conv3's
                                  per-point half and conv4 run bf16 (m3_group.c): conv3's input in the
                                  forward and in the backward (no conversion of h2 in either); else NULL */
    float *g;                  /* (G,b) max over k of h2 */
    float *h3;                 /* (R,c) conv3 output: bn2's input */
    float *mean1, *var1, *mean2, *var2; /* (a), (c) batch statistics (training) */
    int32_t *arg1, *arg2;      /* (G,b), (G,cout) max-pool winners */
} m3_group_state;
/* inp (G,k,cin) -> out (G,cout). */
int m3_group_forward(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                     long G, long k);
/* The same forward (the same out, statistics and running-statistics update) keeping only the
 * statistics and the argmaxes: (2a + 2c) floats and G (b + cout) ints instead of R (b + c) floats
 * more; s->h2, g, h3 are NULL. Its temporaries (h2, g, h3 among them) come from r->scratch when set,
 * else from r's arena (released before the return). Training with R above a chunk
 * (M3_GROUP_CHUNK_ROWS, R / 4): by chunks of rows, the BatchNorm statistics summed chunk by chunk
 * (nn_bn_stats_*), the temporaries one chunk's rows (a + max(a, c) + b + c + cout floats each) and
 * G b floats instead of R (b + c + max(2a, c + cout)); conv1 runs 3 times, conv2 and conv3 twice. */
int m3_group_forward_light(m3_run *r, const m3_group *p, float *out, m3_group_state *s, const float *inp,
                           long G, long k);
/* The backward after m3_group_forward_light: by rows (m3_group_backward_rows, M3_GROUP_CHUNK_ROWS)
 * when R exceeds a chunk; else it rebuilds h3 (h2 a temporary) first and h2 just before conv3's
 * backward (conv1, bn1, conv2 twice), holding R (max(2c, c + 2a + b, 3a + b) + c + cout) floats at
 * its peak (1632 at embed0's widths) instead of R (b + c) more. The same results, bitwise. */
int m3_group_backward_light(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                            const m3_group_state *s, const float *inp, long G, long k);
/* The rows of a chunk of m3_group_backward_light's backward by rows. */
enum { M3_GROUP_CHUNK_ROWS = 8192 };
/* m3_group_backward_light by chunks of at most rows and R / 4 rows (whole groups, a multiple of
 * nn_linear_dw_rows(), at least one), bitwise the same results: several passes over the chunks, each recomputing its
 * chunks' activations from the input with the saved statistics, the BatchNorm sums and the weight
 * gradients continued from chunk to chunk. It holds R max(b, 2a) floats (256 at embed0's widths) and
 * one chunk's rows (b + c + max(c, 2a) + cout + 2c floats each) plus G (b + c) and weight-sized
 * floats. When R fits in one chunk, rows <= 0, or a > b or a > c, it runs the whole-rows light
 * backward. */
int m3_group_backward_rows(m3_run *r, const m3_group *p, float *dinp, const float *dout, const m3_group_state *s,
                           const float *inp, long G, long k, long rows);
/* dinp (G,k,cin) += ... (dinp may be NULL). Temporaries: R (max(2c, c + b, 3a + b) + cout) floats
 * at most, plus G and weight-sized ones. */
int m3_group_backward(m3_run *r, const m3_group *p, float *dinp, const float *dout,
                      const m3_group_state *s, const float *inp, long G, long k);

/* ---- decoder upsampling (m3_interp.c): 3-NN interpolation + skip concat, conv-BN-GELU, residual ---- */
typedef struct {
    m3_linear conv;
    m3_bn bn;
    m3_linear res_conv1, res_conv2;
    m3_bn res_bn1, res_bn2;
} m3_interp;
typedef struct {
    m3_conv_bn_state u, res1, res2; /* conv-bn-gelu, res_conv1-res_bn1-gelu, res_conv2-res_bn2 (res2.b = y) */
    float *cat, *x0, *g1, *sum;
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
