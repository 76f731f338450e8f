/* nn_layernorm.c -- layer normalisation over the last dimension (eps 1e-5) on oneDNN
 * layer_normalization forward / backward; parameter and input gradients are accumulated, the
 * parameter gradients summed by nn_layernorm_param_grads (the same bits for every thread count; oneDNN's
 * backward adds per-thread partials).
 */
#include "nn.h"

#include "errors.h"

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
    nn_prim *p = nn_cache_find(c, NN_K_LN_FWD, key, 2);
    if (!p) {
        dnnl_layer_normalization_desc_t fd;
        if (ln_descs(&fd, NULL, M, C, err)) return -1;
        int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                      DNNL_ARG_SHIFT};
        p = nn_cache_add(c, NN_K_LN_FWD, key, 2, &fd, NULL, NULL, args, 6, 0, err);
        if (!p) return -1;
    }
    void *ptr[] = {(void *)inp, out, mean, var, (void *)w, (void *)b};
    return nn_exec(c, p, ptr, err);
}

/* The backward: dx by oneDNN (each row by one thread) into the temporary, then accumulated; dw, db
 * summed here (oneDNN's own, discarded, go to the temporary: oneDNN 2.6 has no backward-data layer
 * normalisation with a scale). tmp: nn_bn_acc_doubles(C) doubles for the sums (2 A floats), M x C
 * floats for dx, 2C for oneDNN's dscale and dshift. */
int nn_layernorm_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *b, const float *mean,
                          const float *var, long M, long C, char *err)
{
    long key[] = {M, C}, A = nn_bn_acc_doubles(C);
    nn_prim *p = nn_cache_find(c, NN_K_LN_BWD, key, 2);
    if (!p) { /* the forward training descriptor is the backward's hint */
        dnnl_layer_normalization_desc_t fd, bd;
        dnnl_primitive_desc_t hint = NULL;
        if (ln_descs(&fd, &bd, M, C, err) || nn_pd_create(c, &hint, &fd, NULL, err)) return -1;
        int args[] = {DNNL_ARG_SRC,   DNNL_ARG_DIFF_DST, DNNL_ARG_MEAN,       DNNL_ARG_VARIANCE,  DNNL_ARG_SCALE,
                      DNNL_ARG_SHIFT, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};
        p = nn_cache_add(c, NN_K_LN_BWD, key, 2, &bd, NULL, hint, args, 9, 2 * A + M * C + 2 * C, err);
        dnnl_primitive_desc_destroy(hint);
        if (!p) return -1;
    }
    if (dinp) {
        float *tdx = p->tmp + 2 * A, *tds = tdx + M * C;
        void *ptr[] = {(void *)inp, (void *)dout, (void *)mean, (void *)var, (void *)w, (void *)b, tdx, tds, tds + C};
        if (nn_exec(c, p, ptr, err) || nn_accumulate(c, dinp, tdx, M * C, err)) return -1;
    }
    if (dw || db) nn_layernorm_param_grads(dw, db, dout, inp, mean, var, LN_EPS, M, C, (double *)p->tmp);
    return 0;
}
