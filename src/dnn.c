/* dnn.c -- the process-wide oneDNN engine and stream, and the checked helpers on top of them (see dnn.h). */
#include "dnn.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

const char *dnn_status_name(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}

int dnn_check(dnnl_status_t s, const char *what, char *err)
{
    if (s == dnnl_success) return 0;
    return errf(err, "oneDNN: %s: %s", what, dnn_status_name(s));
}

int dnn_ctx_create(dnn_ctx *ctx, char *err)
{
    memset(ctx, 0, sizeof *ctx);
    if (dnn_check(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0), "create CPU engine", err)) return -1;
    if (dnn_check(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags),
                  "create stream", err)) {
        dnnl_engine_destroy(ctx->engine);
        ctx->engine = NULL;
        return -1;
    }
    return 0;
}

void dnn_ctx_destroy(dnn_ctx *ctx)
{
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
    ctx->stream = NULL;
    ctx->engine = NULL;
}

/* ---- host buffers ---- */

void *dnn_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64)) return NULL;
    return p;
}

/* ---- memory descriptors and memories ---- */

int dnn_md_tag(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt,
               dnnl_format_tag_t tag, const char *what, char *err)
{
    dnnl_dims_t d = {0};
    memcpy(d, dims, sizeof(dnnl_dim_t) * (size_t)nd);
    return dnn_check(dnnl_memory_desc_init_by_tag(md, nd, d, dt, tag), what, err);
}

int dnn_md_strides(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt,
                   const dnnl_dim_t *strides, const char *what, char *err)
{
    dnnl_dims_t d = {0}, s = {0};
    memcpy(d, dims, sizeof(dnnl_dim_t) * (size_t)nd);
    memcpy(s, strides, sizeof(dnnl_dim_t) * (size_t)nd);
    return dnn_check(dnnl_memory_desc_init_by_strides(md, nd, d, dt, s), what, err);
}

int dnn_memory(const dnn_ctx *ctx, dnnl_memory_t *mem, const dnnl_memory_desc_t *md, void *handle,
               const char *what, char *err)
{
    return dnn_check(dnnl_memory_create(mem, md, ctx->engine, handle), what, err);
}

int dnn_bind(dnnl_memory_t mem, const void *ptr, const char *what, char *err)
{
    return dnn_check(dnnl_memory_set_data_handle(mem, (void *)ptr), what, err);
}

int dnn_handle(const_dnnl_memory_t mem, void **ptr, const char *what, char *err)
{
    return dnn_check(dnnl_memory_get_data_handle(mem, ptr), what, err);
}

/* ---- primitives ---- */

int dnn_attr_user_scratchpad(dnnl_primitive_attr_t *attr, char *err)
{
    *attr = NULL;
    if (dnn_check(dnnl_primitive_attr_create(attr), "attr create", err)) return -1;
    if (dnn_check(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user),
                  "scratchpad mode", err)) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
        return -1;
    }
    return 0;
}

int dnn_pd_create(const dnn_ctx *ctx, dnnl_primitive_desc_t *pd, const void *op_desc,
                  const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                  const char *what, char *err)
{
    return dnn_check(dnnl_primitive_desc_create(pd, op_desc, attr, ctx->engine, hint), what, err);
}

const dnnl_memory_desc_t *dnn_scratchpad_md(const_dnnl_primitive_desc_t pd, size_t *bytes)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    return *bytes ? md : NULL;
}

const char *dnn_impl_name(const_dnnl_primitive_desc_t pd)
{
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return "?";
    return s;
}

int dnn_execute(const dnn_ctx *ctx, const_dnnl_primitive_t prim, int n_args,
                const dnnl_exec_arg_t *args, const char *what, char *err)
{
    return dnn_check(dnnl_primitive_execute(prim, ctx->stream, n_args, args), what, err);
}

int dnn_wait(const dnn_ctx *ctx, const char *what, char *err)
{
    dnnl_status_t s = dnnl_stream_wait(ctx->stream);
    if (s == dnnl_success) return 0;
    return errf(err, "oneDNN: %s: stream wait: %s", what, dnn_status_name(s));
}

int dnn_reorder_once(const dnn_ctx *ctx, dnnl_memory_t src, dnnl_memory_t dst, const char *what,
                     char *err)
{
    const dnnl_memory_desc_t *smd = NULL, *dmd = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_status_t s = dnnl_memory_get_memory_desc(src, &smd);
    if (s == dnnl_success) s = dnnl_memory_get_memory_desc(dst, &dmd);
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&pd, smd, ctx->engine, dmd, ctx->engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&r, pd);
    if (s == dnnl_success) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        s = dnnl_primitive_execute(r, ctx->stream, 2, a);
    }
    int rc = dnn_check(s, what, err);
    if (r && !rc) rc = dnn_wait(ctx, what, err); /* before the primitive goes */
    if (r) dnnl_primitive_destroy(r);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}
