/* dnn.h -- the process-wide oneDNN runtime (v2 C API, oneDNN 2.6): one CPU engine and one stream.
 *
 * Layers create and cache their own primitives (one per shape) against this engine; nothing else
 * here is global. dnn_check turns a dnnl_status_t into an error line naming what was attempted.
 */
#ifndef I2P_DNN_H
#define I2P_DNN_H

#include <dnnl.h>

typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
} dnn_ctx;

int dnn_ctx_create(dnn_ctx *ctx, char *err);
void dnn_ctx_destroy(dnn_ctx *ctx);
/* Returns 0 if s == dnnl_success, else -1 with err = "oneDNN: <what>: <status name>". */
int dnn_check(dnnl_status_t s, const char *what, char *err);
const char *dnn_status_name(dnnl_status_t s);

#endif
