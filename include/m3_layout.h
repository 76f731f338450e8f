/* m3_layout.h -- builds a parameter table: named tensors at consecutive offsets of one parameter
 * buffer, BatchNorm running statistics at consecutive offsets of one buffers array, and the layer
 * structs of m3_layers.h that index them. Used by the pre-training model (model3d.c) and the classifier
 * (classifier.c).
 *
 * A layout is run twice: first with tensors == NULL to count, then with arrays of the counted size
 * to fill; both runs give the same offsets. Names are printf-formatted (at most 95 characters).
 */
#ifndef I2P_M3_LAYOUT_H
#define I2P_M3_LAYOUT_H

#include "m3_layers.h"
#include "model3d.h"

typedef struct {
    model3d_tensor *tensors;        /* NULL: count only */
    model3d_tensor *buffer_tensors; /* "<bn>.running_mean" / ".running_var" views into the buffers */
    long n_params, n_buffers;
    int n_tensors, n_buffer_tensors;
} m3_layout;

/* Appends a tensor; returns its offset. decay: 1 if AdamW weight decay applies. */
long m3_layout_tensor(m3_layout *L, int decay, int rank, const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* "<name>.weight" (out,in), decayed, and "<name>.bias" (out) if bias. */
m3_linear m3_layout_linear(m3_layout *L, int in, int out, int bias, const char *name);
/* LayerNorm "<name>.weight", "<name>.bias" (C). */
m3_norm m3_layout_norm(m3_layout *L, int C, const char *name);
/* BatchNorm: weight and bias (C) as parameters, running mean and var (C) as buffers. */
m3_bn m3_layout_bn(m3_layout *L, int C, const char *name);
/* mini-PointNet "<name>.conv1|bn1|conv2|conv3|bn2|conv4" (m3_layers.h, m3_group). */
m3_group m3_layout_group(m3_layout *L, int cin, int a, int b, int c, int cout, const char *name);
/* positional MLP "<name>.fc1|fc2". */
m3_pos m3_layout_pos(m3_layout *L, int C, const char *name);
/* transformer block "<name>.norm1|attn.qkv|attn.proj|norm2|mlp.fc1|mlp.fc2" of width C. */
void m3_layout_block(m3_layout *L, m3_block *b, int C, const char *name);
/* the st->depth blocks "<prefix>.blocks.<i>" of a stage. */
void m3_layout_blocks(m3_layout *L, m3_stage *st, int C, const char *prefix);
/* The hierarchical encoder of c: "embed0", "merge1", "merge2" into embed, then per scale s
 * "encoder.<s>.pos", its blocks and, if stage_norms, "encoder.<s>.norm" into enc (blocks allocated). */
void m3_layout_encoder(m3_layout *L, m3_group embed[3], m3_stage enc[3], const model3d_config *c,
                       int stage_norms);

/* ---- the stages' blocks, before and after the layout ---- */
/* Allocates depths[i] blocks (zeroed, one spare) for each of the n stages; 0, or -1 when out of
 * memory (m3_stages_free releases what was made). */
int m3_stages_alloc(m3_stage *st, int n, const int *depths);
void m3_stages_free(m3_stage *st, int n);
/* Stochastic depth: the rate rises linearly 0..drop_path over all blocks of the n stages in order
 * (torch.linspace); 0 for a single block. */
void m3_stages_drop_path(m3_stage *st, int n, double drop_path);

#endif
