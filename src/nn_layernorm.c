/* nn_layernorm.c -- layer normalisation over the last dimension (eps 1e-5) on oneDNN
 * layer_normalization forward / backward; parameter and input gradients are accumulated.
 */
#include "nn.h"

#include "errors.h"

enum { K_LN_FWD = 40, K_LN_BWD };

#define LN_EPS 1e-5f

static int ln_descs(dnnl_layer_normalization_desc_t *fd, dnnl_layer_normalization_desc_t *bd,
                    long M, long C, char *err)
{
    dnnl_memory_desc_t data, stat;
    dnnl_dims_t dd = {M, C}, sd = {M};
    unsigned flags = dnnl_use_scale | dnnl_use_shift;
    if (dnn_check(dnnl_memory_desc_init_by_tag(&data, 2, dd, dnnl_f32, dnnl_ab), "ln md", err) ||
        dnn_check(dnnl_memory_desc_init_by_tag(&stat, 1, sd, dnnl_f32, dnnl_a), "ln stat md", err) ||
        dnn_check(dnnl_layer_normalization_forward_desc_init(fd, dnnl_forward_training, &data, &stat,
                                                             LN_EPS, flags), "ln fwd desc", err))
        return -1;
    if (bd && dnn_check(dnnl_layer_normalization_backward_desc_init(bd, dnnl_backward, &data, &data,
                                                                    &stat, LN_EPS, flags),
                        "ln bwd desc", err))
        return -1;
    return 0;
}

int nn_layernorm_forward(nn_cache *c, float *out, float *mean, float *var, const float *inp,
                         const float *w, const float *b, long M, long C, char *err)
{
    long key[] = {M, C};
    nn_prim *p = nn_cache_find(c, K_LN_FWD, key, 2);
    if (!p) {
        dnnl_layer_normalization_desc_t fd;
        if (ln_descs(&fd, NULL, M, C, err)) return -1;
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                      DNNL_ARG_SHIFT};
        p = nn_cache_add(c, K_LN_FWD, key, 2, &fd, NULL, NULL, args, 6, 0, err);
        if (!p) return -1;
    }
    void *ptr[] = {(void *)inp, out, mean, var, (void *)w, (void *)b};
    return nn_exec(c, p, ptr, err);
}

static int ln_backward_descs(nn_norm_desc *fd, nn_norm_desc *bd, long M, long C, char *err)
{
    return ln_descs(&fd->ln, &bd->ln, M, C, err);
}

int nn_layernorm_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *b, const float *mean,
                          const float *var, long M, long C, char *err)
{
    return nn_norm_backward(c, K_LN_BWD, ln_backward_descs, dinp, dw, db, dout, inp, w, b, mean, var, M,
                            C, err);
}
