/* classifier_impl.h -- internals of the fine-tuning classifier shared by its source files and the
 * tests (not a public API): the model struct, the head, pooling and local-attention layers.
 * Layers follow model3d_impl.h: offsets into the one parameter buffer, an m3_run for every call,
 * saved activations in the run's arena, backward functions accumulating (+=) into gradients.
 */
#ifndef I2P_CLASSIFIER_IMPL_H
#define I2P_CLASSIFIER_IMPL_H

#include <stdint.h>

#include "classifier.h"
#include "ft_encoder.h"
#include "model3d_impl.h"

/* Linear(d,H) -> BN -> ReLU -> Dropout -> Linear(H,H) -> BN -> ReLU -> Dropout -> Linear(H,n) */
typedef struct {
    m3_linear fc1, fc2, fc3;
    m3_bn bn1, bn2;
} cls_head;

struct classifier {
    classifier_config cfg;
    m3_store st;             /* parameters, gradients, buffers, their tables, arenas, primitive cache */
    m3_group embed[3];       /* embed0, merge1, merge2 (pre-training names) */
    m3_stage enc[3];         /* encoder.{s}.pos / .blocks; the stage norms are not part of it */
    m3_norm norm;            /* the fresh LayerNorm over the last-stage tokens, "norm" */
    cls_head head;           /* "head.fc1", "head.bn1", "head.fc2", "head.bn2", "head.fc3" */
    void *last_fwd;          /* the last train step's saved forward (in step_arena) */
};

/* ---- mean and max over tokens (pool_meanmax.c) ---- */
/* x (B,T,C) -> out (B,C) = mean_t x + max_t x (CLS_POOL_MEAN_PLUS_MAX) or out (B,2C) =
 * [mean_t x | max_t x] (CLS_POOL_CONCAT); arg (B,C) = the winning t (first on ties). */
void cls_pool_forward(cls_pooling mode, float *out, int32_t *arg, const float *x, long B, long T, long C);
/* dx (B,T,C) += the gradient of out (dout has out's shape). */
void cls_pool_backward(cls_pooling mode, float *dx, const float *dout, const int32_t *arg, long B, long T,
                       long C);

/* ---- the head (cls_head.c) ---- */
typedef struct {
    m3_conv_bn_state u1, u2; /* fc1-bn1-relu, fc2-bn2-relu (B,H) */
    float *a1, *a2;          /* (B,H) the ReLU outputs after dropout */
    const float *mask1, *mask2; /* (B,H) dropout scales (0 or 1/(1-p)) or NULL; kept, not copied */
} cls_head_state;
/* inp (B,d) -> logits (B,n). BatchNorm in the run's mode; mask1 / mask2 multiply the ReLU outputs
 * (dropout) when not NULL. */
int cls_head_forward(m3_run *r, const cls_head *p, float *logits, cls_head_state *s, const float *inp,
                     const float *mask1, const float *mask2, long B);
/* dinp (B,d) += ... (dinp may be NULL); parameter gradients into r->G. */
int cls_head_backward(m3_run *r, const cls_head *p, float *dinp, const float *dlogits,
                      const cls_head_state *s, const float *inp, long B);

/* ---- local attention (local_attention.c) ---- */
#define CLS_FAR_BIAS (-1e5f)
/* ctr (B,T,3) -> bias (B,T,T): CLS_FAR_BIAS where the Euclidean distance between the centres of
 * query t and key u is >= radius, else 0 (radius > 0). Distances in double. */
void cls_local_bias(float *bias, const float *ctr, long B, long T, double radius);

/* ---- the step in pieces (classifier_step.c), for the pipeline stages (cls_units.h) ---- */
typedef struct {
    ft_encoder_state e;
    float *normed, *ln_mean, *ln_var;
    float *pooled;              /* (B,d) */
    int32_t *arg;               /* (B,C2) max-pool winners */
    cls_head_state hs;
    const float *mask1, *mask2; /* (B,H) dropout scales or NULL */
    float *logits;              /* (B,n) */
} cls_fwd;
/* The encoder's view of the classifier's layers. */
ft_encoder cls_encoder_of(const classifier *m);
/* The train step's drop-path scales (into f->e) and dropout masks, from b's drop_key. */
int cls_make_masks(m3_run *r, const classifier *m, cls_fwd *f, const classifier_batch *b);
/* After the encoder (f->e.es[2].raw, f->e.B): the norm, pooling and head, into f->logits. */
int cls_top_forward(m3_run *r, classifier *m, cls_fwd *f);
/* The loss's gradient back through the head, pooling and norm: *draw (B,G2,C2), new, the gradient
 * w.r.t. f->e.es[2].raw. */
int cls_top_backward(m3_run *r, classifier *m, cls_fwd *f, const int32_t *labels, float **draw);
/* classifier_train_step's checks of a batch (size, labels). */
int cls_check_batch(const classifier *m, const classifier_batch *b, char *err);

/* ---- the step's activations (classifier_step.c), for the reference tests ---- */
/* enc{s}_out (B,G_s,dims[s]): stage outputs; normed (B,G2,dims[2]); pooled (B,d); logits (B,n).
 * Writes the floats and returns their count, or -1 if unknown / no train step yet. */
long cls_activation(const classifier *c, const char *name, float *out);

#endif
