/* dnn.h -- the process-wide oneDNN runtime (v2 C API, oneDNN 2.6): one CPU engine and one stream,
 * and the small checked helpers every oneDNN user here (the ViT, the 3D layer library) builds on.
 *
 * Layers create and cache their own primitives against this engine (the 3D layers one per shape in
 * nn_cache, the ViT one set per batch size in its plans); nothing else here is global. Every helper
 * that calls oneDNN returns 0, or -1 with err = "oneDNN: <what>: <status name>" (dnn_check), so no
 * dnnl_status_t is dropped on the way.
 */
#ifndef I2P_DNN_H
#define I2P_DNN_H

#include <stddef.h>

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

/* ---- host buffers ---- */
/* A 64-byte aligned buffer of at least `bytes` (rounded up to 64; 0 counts as 64), released with
 * free(). NULL when out of memory. */
void *dnn_alloc(size_t bytes);

/* ---- memory descriptors and memories ---- */
/* dims / strides hold nd entries (oneDNN's prototypes take full DNNL_MAX_NDIMS arrays). */
int dnn_md_tag(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt,
               dnnl_format_tag_t tag, const char *what, char *err);
int dnn_md_strides(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt,
                   const dnnl_dim_t *strides, const char *what, char *err);
/* A memory object for md on the engine over `handle` (DNNL_MEMORY_NONE: bound later with
 * dnn_bind; DNNL_MEMORY_ALLOCATE: oneDNN owns the buffer). */
int dnn_memory(const dnn_ctx *ctx, dnnl_memory_t *mem, const dnnl_memory_desc_t *md, void *handle,
               const char *what, char *err);
/* Re-binds the data pointer of a memory object (nothing is allocated). */
int dnn_bind(dnnl_memory_t mem, const void *ptr, const char *what, char *err);
/* The data pointer of a memory object. */
int dnn_handle(const_dnnl_memory_t mem, void **ptr, const char *what, char *err);

/* ---- primitives ---- */
/* A primitive attribute with the scratchpad mode "user" (the caller provides the scratchpad
 * memory at execution); the caller destroys it. */
int dnn_attr_user_scratchpad(dnnl_primitive_attr_t *attr, char *err);
/* A primitive descriptor for op_desc (a dnnl_*_desc_t) with optional attr and forward hint; the
 * caller destroys it. */
int dnn_pd_create(const dnn_ctx *ctx, dnnl_primitive_desc_t *pd, const void *op_desc,
                  const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                  const char *what, char *err);
/* The scratchpad memory descriptor of pd and its size in bytes (NULL and 0 when none). */
const dnnl_memory_desc_t *dnn_scratchpad_md(const_dnnl_primitive_desc_t pd, size_t *bytes);
/* oneDNN's implementation name of a primitive descriptor ("brg:avx512_core", ...; "?" if none). */
const char *dnn_impl_name(const_dnnl_primitive_desc_t pd);
/* Submits a primitive to the stream (asynchronous: dnn_wait before reading the results). */
int dnn_execute(const dnn_ctx *ctx, const_dnnl_primitive_t prim, int n_args,
                const dnnl_exec_arg_t *args, const char *what, char *err);
/* Waits for everything submitted to the stream; err = "oneDNN: <what>: stream wait: <status>". */
int dnn_wait(const dnn_ctx *ctx, const char *what, char *err);
/* Copies src into dst converting the layout / data type (a reorder primitive created, run,
 * waited for and destroyed here): for one-time work such as packing weights. */
int dnn_reorder_once(const dnn_ctx *ctx, dnnl_memory_t src, dnnl_memory_t dst, const char *what,
                     char *err);

#endif
