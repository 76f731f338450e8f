/* cls_units.h -- one micro-batch of the fine-tuning classifier run unit by unit, for a pipeline
 * stage of `finetune --stages S` that holds units [lo, hi) (pipe_split.h):
 *   0 embed0     tokenizer, mini-PointNet of the scale-0 neighbourhoods   (sends x0[0] (B,G0,C0))
 *   1 encoder.0  encoder stage 0                                          (sends its output (B,G0,C0))
 *   2 encoder.1  merge1 + encoder stage 1                                 (sends its output (B,G1,C1))
 *   3 encoder.2  merge2 + encoder stage 2                                 (sends its output (B,G2,C2))
 *   4 head       LayerNorm, pooling, classification head, cross-entropy
 * Boundary b sits before unit b; its backward message is the gradient of the forward one's
 * tensor. Every stage runs cls_units_prepare (drop-path and dropout draws from the batch's
 * drop_key, and the tokenizer: deterministic, cheap next to the transformer) instead of receiving
 * them. The operations are classifier_train_step's in the same order, so every gradient is bitwise
 * the same. A received message is not copied: the state points into it.
 */
#ifndef I2P_CLS_UNITS_H
#define I2P_CLS_UNITS_H

#include "classifier_impl.h"
#include "pipe_split.h"

enum { CLS_EMBED0, CLS_ENC0, CLS_ENC1, CLS_ENC2, CLS_HEAD, CLS_UNITS };

typedef struct {
    cls_fwd f;
    float *dx0;       /* gradient w.r.t. f.e.x0[0] (boundary 1) */
    float *draw[3];   /* gradients w.r.t. f.e.es[s].raw (boundaries 2, 3, 4) */
    double loss;      /* the head's cross-entropy */
} cls_units;

/* The five units with their FLOPs per sample (matmuls, forward + backward) for m's configuration. */
void cls_units_table(const classifier *m, pipe_unit_table *u);
/* The five units' names, each with cost 1 (checks of --stages and --stage-split before the
 * network exists). */
void cls_units_names(pipe_unit_table *u);
/* The unit of a parameter or buffer tensor, from its name; -1 unknown. */
int cls_unit_of_tensor(const char *name);

/* Clears u; the masks and the tokenizer of batch b (r's arena, reset by the caller). */
int cls_units_prepare(m3_run *r, classifier *m, cls_units *u, const classifier_batch *b);
/* Forward of unit `unit` (its inputs in u: computed by the previous unit or attached). */
int cls_units_forward(m3_run *r, classifier *m, cls_units *u, int unit, const classifier_batch *b);
/* Backward of unit `unit` (the gradient of its output in u); parameter gradients into r->G. */
int cls_units_backward(m3_run *r, classifier *m, cls_units *u, int unit, const classifier_batch *b);

/* Floats of boundary b's message (1 <= b < CLS_UNITS) for micro-batch size B. */
long cls_msg_floats(const classifier *m, long B, int b);
/* Copies the state's tensor of boundary b into msg / points the state at msg. */
void cls_msg_pack(const classifier *m, cls_units *u, int b, int backward, float *msg);
void cls_msg_attach(cls_units *u, int b, int backward, float *msg);

#endif
