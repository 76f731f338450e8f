/* nn_norm_backward.c -- the backward of a normalisation, shared by layer normalisation
 * (nn_layernorm.c) and batch normalisation (nn_batchnorm.c): both oneDNN primitives take the same
 * arguments and give dx, dscale, dshift, which are accumulated into the caller's gradients.
 */
#include "nn.h"

static const int backward_args[9] = {DNNL_ARG_SRC,   DNNL_ARG_DIFF_DST, DNNL_ARG_MEAN,
                                     DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                                     DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};

int nn_norm_backward(nn_cache *c, int kind, nn_norm_descs_fn descs, float *dinp, float *dw, float *db,
                     const float *dout, const float *inp, const float *w, const float *b,
                     const float *mean, const float *var, long M, long C, char *err)
{
    long key[] = {M, C};
    nn_prim *p = nn_cache_find(c, kind, key, 2);
    if (!p) { /* the forward training descriptor is the backward's hint; tmp holds dx, dw, db */
        nn_norm_desc fd, bd;
        dnnl_primitive_desc_t hint = NULL;
        if (descs(&fd, &bd, M, C, err) || nn_pd_create(c, &hint, &fd, NULL, err)) return -1;
        p = nn_cache_add(c, kind, key, 2, &bd, NULL, hint, backward_args, 9, M * C + 2 * C, err);
        dnnl_primitive_desc_destroy(hint);
        if (!p) return -1;
    }
    float *tdx = p->tmp, *tdw = p->tmp + M * C, *tdb = tdw + C;
    void *ptr[] = {(void *)inp, (void *)dout, (void *)mean, (void *)var, (void *)w, (void *)b, tdx, tdw,
                   tdb};
    if (nn_exec(c, p, ptr, err)) return -1;
    if (dinp && nn_accumulate(c, dinp, tdx, M * C, err)) return -1;
    if (dw && nn_accumulate(c, dw, tdw, C, err)) return -1;
    if (db && nn_accumulate(c, db, tdb, C, err)) return -1;
    return 0;
}
