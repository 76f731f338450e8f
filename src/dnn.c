/* dnn.c -- the process-wide oneDNN engine and stream (see dnn.h). */
#include "dnn.h"

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
