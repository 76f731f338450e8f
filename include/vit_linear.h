/* vit_linear.h -- the matmul primitive descriptor of a ViT linear layer, shared by the one-time
 * weight packing (vit.c) and the per-batch plans (vit_plan.c). Internal to the 2D model: use vit.h.
 */
#ifndef I2P_VIT_LINEAR_H
#define I2P_VIT_LINEAR_H

#include "vit_model.h"

/* Post-op of a linear layer. */
typedef enum { VIT_POST_NONE, VIT_POST_SUM, VIT_POST_GELU } vit_post;

/* A matmul primitive descriptor dst(M,N) = src(M,K) x W(K,N) [+ bias(1,N) f32] [post-op], plain
 * row-major src/dst, weights in format `any` (the caller reorders them to the chosen format), user
 * scratchpad. GELU is erf GELU, or CLIP's quick GELU x*sigmoid(1.702x) (eltwise swish, alpha 1.702)
 * when m->cfg.quick_gelu. The caller destroys *pd. */
int vit_linear_pd(const vit_model *m, long M, long K, long N, dnnl_data_type_t src_dt,
                  dnnl_data_type_t wei_dt, dnnl_data_type_t dst_dt, int bias, vit_post post,
                  dnnl_primitive_desc_t *pd, char *err);

#endif
