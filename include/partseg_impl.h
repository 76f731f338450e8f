/* partseg_impl.h -- internals of the part-segmentation network shared by its source files and the
 * tests (not a public API): the model struct and its layers. Layers follow m3_layers.h: offsets
 * into the one parameter buffer, an m3_run for every call, saved state in the run's arena,
 * backward functions accumulating (+=) into input gradients and r->G.
 */
#ifndef I2P_PARTSEG_IMPL_H
#define I2P_PARTSEG_IMPL_H

#include <stdint.h>

#include "m3_layers.h"
#include "m3_store.h"
#include "partseg.h"

/* Conv(in,h)-BN-ReLU-Conv(h,F)-BN-ReLU on [xyz | interpolated] (in = 3 + C_s) */
typedef struct {
    m3_linear conv1, conv2;
    m3_bn bn1, bn2;
} seg_prop;

/* Conv(D,H1)-BN-ReLU-Dropout-Conv(H1,H2)-BN-ReLU-Conv(H2,H3)-BN-ReLU-Conv(H3,n) */
typedef struct {
    m3_linear conv[4];
    m3_bn bn[3];
} seg_head;

struct partseg {
    partseg_config cfg;
    m3_store st;             /* parameters, gradients, buffers, their tables, arenas, primitive cache */
    m3_group embed[3];       /* embed0, merge1, merge2 */
    m3_stage enc[3];         /* encoder.{s}.pos / .blocks / .norm */
    seg_prop prop[3];        /* prop.{s}.conv1|bn1|conv2|bn2 */
    m3_linear label_conv;    /* label.conv (no bias) */
    m3_bn label_bn;          /* label.bn */
    seg_head head;           /* head.conv{1..4}, head.bn{1..3} */
    void *last_fwd;
};

/* ---- 3-NN inverse-distance interpolation (seg_interp.c) ---- */
/* For every point n of xyz (B,N,3) the 3 nearest of ctr (B,G,3) (squared Euclidean distance in
 * double, ties to the lower index) and weights w = (1/(d2 + 1e-8)) / sum: idx3, w3 (B,N,3). G >= 3. */
void seg_interp_weights(int32_t *idx3, float *w3, const float *xyz, const float *ctr, long B, long N, long G);
/* out (B,N,C) = sum_i w3 * src[b, idx3] with src (B,G,C); out rows have stride ldo (>= C). */
void seg_interp_forward(float *out, long ldo, const float *src, const int32_t *idx3, const float *w3, long B,
                        long N, long G, long C);
/* dsrc (B,G,C) += ... from dout (B,N,C) rows of stride ldd. */
void seg_interp_backward(float *dsrc, const float *dout, long ldd, const int32_t *idx3, const float *w3, long B,
                         long N, long G, long C);

/* ---- LeakyReLU(slope) (seg_interp.c) ---- */
void seg_leaky_forward(float *out, const float *inp, long n, float slope);
/* dinp += dout * (inp > 0 ? 1 : slope) */
void seg_leaky_backward(float *dinp, const float *dout, const float *inp, long n, float slope);

/* ---- propagation MLP and head (seg_layers.c) ---- */
typedef struct {
    float *h1, *b1, *a1, *m1, *v1, *h2, *b2, *m2, *v2; /* a2 is the caller's out */
} seg_prop_state;
/* inp (R,in) -> out (R,F). */
int seg_prop_forward(m3_run *r, const seg_prop *p, float *out, seg_prop_state *s, const float *inp, long R);
/* dout (R,F) is consumed; dinp (R,in) += ... */
int seg_prop_backward(m3_run *r, const seg_prop *p, float *dinp, const float *dout, const seg_prop_state *s,
                      const float *inp, const float *out, long R);

typedef struct {
    float *h[3], *b[3], *a[3], *mean[3], *var[3];
    const float *mask; /* (R,H1) dropout scales or NULL; kept, not copied */
} seg_head_state;
/* inp (R,D) -> logits (R,n); mask (R,H1) multiplies the first ReLU output when not NULL. */
int seg_head_forward(m3_run *r, const seg_head *p, float *logits, seg_head_state *s, const float *inp,
                     const float *mask, long R);
/* dinp (R,D) += ... */
int seg_head_backward(m3_run *r, const seg_head *p, float *dinp, const float *dlogits, const seg_head_state *s,
                      const float *inp, long R);

#endif
