/* pipe_units.h -- one micro-batch of the 3D pre-training network run unit by unit (pipe_split.h),
 * for a pipeline stage that holds units [lo, hi): the saved activations of the units it runs, the
 * gradients flowing between units, and the messages that cross a stage boundary.
 *
 * Boundary b sits before unit b (1 <= b < PIPE_UNITS). Its messages, one float buffer each, every
 * tensor starting at a multiple of 16 floats (sizes from the micro-batch B and the mask capacities):
 *   b  forward (unit b-1 -> b)             backward (unit b -> b-1)
 *   1  full0 from embed0 (B,G0,C0)         its gradient (after stage 0)
 *   2  full0 after stage 0 (B,G0,C0)       its gradient (from merge1)
 *   3  full1 (B,G1,C1), enc1 out           d full1, d enc1 out (B,cap1,C1)
 *   4  enc1 out (B,cap1,C1), enc2 out      d enc1 out, d enc2 out (B,cap2,C2)
 *   5  dec1 out (B,G1,D1)                  d dec1 out
 * "out" is an encoder stage's LayerNorm output (the decoder's skip inputs), "full" a scale's token
 * embeddings after its stage (the next scale's merge input). A received message is not copied: the
 * state points into it, so it must live until the micro-batch's backward is done.
 * Every stage runs pipe_units_prepare (tokenizer and mask: deterministic and cheap next to the
 * transformer) instead of receiving centres, neighbourhoods and masks. The operations are the
 * monolithic step's (model3d_step.c) in the same order, so every gradient is bitwise the same.
 */
#ifndef I2P_PIPE_UNITS_H
#define I2P_PIPE_UNITS_H

#include "model3d_impl.h"
#include "pipe_split.h"

typedef struct {
    m3_encoder_state e;
    m3_decoder_state d;
    m3_heads_state h;
    uint64_t drop_key;
    float *dfull[3], *dnormed[3], *ddec1; /* gradients between units (dnormed[0] stays NULL) */
    model3d_losses loss;                  /* the heads' losses (stage holding the heads) */
} pipe_units;

/* Tokenizer and mask of batch b into u (r's arena, reset by the caller); also clears u. */
int pipe_units_prepare(m3_run *r, const model3d *m, pipe_units *u, const model3d_batch *b);
/* Forward of unit `unit` (its inputs in u: computed by the previous unit or attached). */
int pipe_units_forward(m3_run *r, const model3d *m, pipe_units *u, int unit, const model3d_batch *b);
/* Zeroed gradient buffers for the units [lo, hi) from r's arena; call before attaching the
 * backward message of boundary hi. */
int pipe_units_backward_begin(m3_run *r, const model3d *m, pipe_units *u, int lo, int hi);
/* Backward of unit `unit`; parameter gradients accumulate into r->G. */
int pipe_units_backward(m3_run *r, const model3d *m, pipe_units *u, int unit);

/* Floats of boundary b's message (backward 0/1) for micro-batch size B. */
long pipe_msg_floats(const model3d_config *c, long B, int b, int backward);
/* Copies the state's tensors of boundary b into msg / points the state at msg's tensors. */
void pipe_msg_pack(const model3d_config *c, const pipe_units *u, int b, int backward, float *msg);
void pipe_msg_attach(const model3d_config *c, pipe_units *u, int b, int backward, float *msg);

#endif
