/* vit_linear.c -- the matmul primitive descriptor of a ViT linear layer (see vit_linear.h). */
#include "vit_linear.h"

/* A user-scratchpad attribute carrying the post-op; the caller destroys *attr. */
static int linear_attr(vit_post post, int quick_gelu, dnnl_primitive_attr_t *attr, char *err)
{
    if (dnn_attr_user_scratchpad(attr, err)) return -1;
    if (post == VIT_POST_NONE) return 0;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t s = dnnl_post_ops_create(&po);
    if (s == dnnl_success) {
        if (post == VIT_POST_SUM) s = dnnl_post_ops_append_sum(po, 1.0f);
        else if (quick_gelu) s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.702f, 0.0f);
        else s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
    }
    if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(*attr, po);
    if (po) dnnl_post_ops_destroy(po);
    if (dnn_check(s, "matmul post-op", err)) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
        return -1;
    }
    return 0;
}

int vit_linear_pd(const vit_model *m, long M, long K, long N, dnnl_data_type_t src_dt,
                  dnnl_data_type_t wei_dt, dnnl_data_type_t dst_dt, int bias, vit_post post,
                  dnnl_primitive_desc_t *pd, char *err)
{
    dnnl_memory_desc_t src, wei, b, dst;
    const char *what = "matmul memory descriptor";
    if (dnn_md_tag(&src, 2, (dnnl_dim_t[]){M, K}, src_dt, dnnl_ab, what, err) ||
        dnn_md_tag(&wei, 2, (dnnl_dim_t[]){K, N}, wei_dt, dnnl_format_tag_any, what, err) ||
        dnn_md_tag(&b, 2, (dnnl_dim_t[]){1, N}, dnnl_f32, dnnl_ab, what, err) ||
        dnn_md_tag(&dst, 2, (dnnl_dim_t[]){M, N}, dst_dt, dnnl_ab, what, err))
        return -1;
    dnnl_matmul_desc_t d;
    if (dnn_check(dnnl_matmul_desc_init(&d, &src, &wei, bias ? &b : NULL, &dst), "matmul desc", err))
        return -1;
    dnnl_primitive_attr_t attr = NULL;
    if (linear_attr(post, m->cfg.quick_gelu, &attr, err)) return -1;
    int rc = dnn_pd_create(m->ctx, pd, &d, attr, NULL, "matmul primitive descriptor", err);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}
