/* nn_prim.c -- the shape-keyed cache of oneDNN primitives behind the layer library (nn.h).
 *
 * Every primitive is created once per (kind, shape) with a user scratchpad that the cache owns, and
 * with one memory object per execution argument whose data handle is re-bound at each call, so a
 * steady state (same shapes) creates and allocates nothing. The cache has a fixed capacity.
 */
#include "nn.h"

#include <omp.h>

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "errors.h"

int nn_cache_init(nn_cache *c, dnn_ctx *dnn, int capacity, char *err)
{
    memset(c, 0, sizeof *c);
    c->dnn = dnn;
    c->prims = calloc((size_t)capacity, sizeof *c->prims);
    if (!c->prims) return errf(err, "nn cache: out of memory (%d primitives)", capacity);
    c->cap = capacity;
    return 0;
}

static void prim_release(nn_prim *p)
{
    for (int i = 0; i < p->n_args; i++)
        if (p->args[i].memory) dnnl_memory_destroy(p->args[i].memory);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    free(p->scratch);
    free(p->tmp);
    memset(p, 0, sizeof *p);
}

void nn_cache_free(nn_cache *c)
{
    if (!c->prims) return;
    for (int i = 0; i < NN_SIDE_MAX; i++)
        if (c->side[i]) dnnl_stream_destroy(c->side[i]);
    for (int i = 0; i < c->n_prims; i++) prim_release(&c->prims[i]);
    free(c->prims);
    free(c->bf16_buf);
    free(c->sums_buf);
    free(c->pack_buf);
    memset(c, 0, sizeof *c);
}

void *nn_cache_grow(nn_cache *c, void *buf, long *cap, long count, size_t size, const char *what,
                    const char *unit, char *err)
{
    if (count <= *cap) return buf;
    free(buf);
    buf = dnn_alloc(size * (size_t)count);
    *cap = buf ? count : 0;
    if (!buf) {
        errf(err, "nn cache: out of memory (%s of %ld %s)", what, count, unit);
        return NULL;
    }
    c->bytes_allocated += (long)size * count;
    return buf;
}

double *nn_sums_buffer(nn_cache *c, long count, char *err)
{
    c->sums_buf = nn_cache_grow(c, c->sums_buf, &c->sums_cap, count, sizeof *c->sums_buf, "column sums' scratch",
                                "doubles", err);
    return c->sums_buf;
}

const char *nn_kind_name(int kind)
{
    switch ((nn_kind)kind) { /* no default: -Wswitch names a kind added without a label */
    case NN_K_LINEAR_FWD: return "linear_fwd";
    case NN_K_LINEAR_BWD_DATA: return "linear_bwd_data";
    case NN_K_LINEAR_BWD_W: return "linear_bwd_weights";
    case NN_K_LINEAR_DW_CHUNK: return "linear_dw_chunk";
    case NN_K_LINEAR_DW_SIDE: return "linear_dw_side";
    case NN_K_LINEAR_WPACK: return "linear_wpack";
    case NN_K_ADD: return "add";
    case NN_K_ACT_FWD: return "act_fwd";
    case NN_K_ACT_BWD: return "act_bwd";
    case NN_K_RELU_BWD_DST: return "relu_bwd_dst";
    case NN_K_LN_FWD: return "layernorm_fwd";
    case NN_K_LN_BWD: return "layernorm_bwd";
    case NN_K_BN_TRAIN: return "batchnorm_fwd_train";
    case NN_K_BN_EVAL: return "batchnorm_fwd_eval";
    case NN_K_ATT_QK: return "attn_qk";
    case NN_K_ATT_PV: return "attn_pv";
    case NN_K_ATT_SOFTMAX_FWD: return "attn_softmax_fwd";
    case NN_K_ATT_SOFTMAX_BWD: return "attn_softmax_bwd";
    case NN_K_ATT_DP: return "attn_bwd_dp";
    case NN_K_ATT_DV: return "attn_bwd_dv";
    case NN_K_ATT_DQ: return "attn_bwd_dq";
    case NN_K_ATT_DK: return "attn_bwd_dk";
    case NN_K_ATT_HEADS: return "attn_heads";
    }
    return "kind?";
}

nn_prim *nn_cache_find(nn_cache *c, int kind, const long *key, int n_key)
{
    for (int i = 0; i < c->n_prims; i++) {
        nn_prim *p = &c->prims[i];
        if (p->kind != kind) continue;
        int same = 1;
        for (int j = 0; j < n_key && same; j++) same = p->key[j] == key[j];
        for (int j = n_key; j < NN_MAX_KEY && same; j++) same = p->key[j] == 0;
        if (same) return p;
    }
    return NULL;
}

int nn_pd_create(nn_cache *c, dnnl_primitive_desc_t *pd, const void *op_desc,
                 const_dnnl_primitive_desc_t hint, char *err)
{
    return dnn_pd_create(c->dnn, pd, op_desc, NULL, hint, "primitive descriptor (hint)", err);
}

/* The next slot of the cache for (kind, key), or NULL with err when full. */
static nn_prim *cache_slot(nn_cache *c, int kind, const long *key, int n_key, int n_args, char *err)
{
    if (c->n_prims >= c->cap) {
        errf(err, "nn cache: more than %d primitive shapes", c->cap);
        return NULL;
    }
    if (n_key > NN_MAX_KEY || n_args > NN_MAX_ARGS) {
        errf(err, "nn cache: key or argument list too long");
        return NULL;
    }
    nn_prim *p = &c->prims[c->n_prims];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    memcpy(p->key, key, sizeof(long) * (size_t)n_key);
    return p;
}

/* Completes the slot p from its primitive descriptor pd (destroyed here, as p on failure): the
 * primitive, one memory object per execution argument, the user scratchpad, the temporary. */
static nn_prim *cache_finish(nn_cache *c, nn_prim *p, dnnl_primitive_desc_t pd, const int *args, int n_args,
                             long tmp_count, char *err)
{
    if (dnn_check(dnnl_primitive_create(&p->prim, pd), "primitive create", err)) goto fail;
    for (int i = 0; i < n_args; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, args[i]);
        if (!md) { errf(err, "oneDNN: no memory descriptor for argument %d", args[i]); goto fail; }
        p->args[i].arg = args[i];
        if (dnn_memory(c->dnn, &p->args[i].memory, md, DNNL_MEMORY_NONE, "memory create", err)) goto fail;
        p->n_args = i + 1;
    }
    size_t sbytes = 0;
    const dnnl_memory_desc_t *smd = dnn_scratchpad_md(pd, &sbytes);
    if (smd) {
        p->scratch = arena_chunk_alloc(sbytes > 64 ? sbytes : 64);
        if (!p->scratch) { errf(err, "nn cache: out of memory (scratchpad)"); goto fail; }
        c->bytes_allocated += (long)sbytes;
        int a = p->n_args;
        p->args[a].arg = DNNL_ARG_SCRATCHPAD;
        if (dnn_memory(c->dnn, &p->args[a].memory, smd, p->scratch, "scratchpad memory", err)) goto fail;
        p->n_args = a + 1;
    }
    if (tmp_count > 0) {
        p->tmp = arena_chunk_alloc(sizeof(float) * (size_t)tmp_count);
        if (!p->tmp) { errf(err, "nn cache: out of memory (temporary)"); goto fail; }
        p->tmp_count = tmp_count;
        c->bytes_allocated += (long)sizeof(float) * tmp_count;
    }
    dnnl_primitive_desc_destroy(pd);
    c->n_prims++;
    c->n_created++;
    return p;
fail:
    dnnl_primitive_desc_destroy(pd);
    prim_release(p);
    return NULL;
}

nn_prim *nn_cache_add(nn_cache *c, int kind, const long *key, int n_key, const void *op_desc,
                      dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                      const int *args, int n_args, long tmp_count, char *err)
{
    nn_prim *p = cache_slot(c, kind, key, n_key, n_args, err);
    if (!p) return NULL;
    dnnl_primitive_attr_t own = NULL;
    int rc = attr ? dnn_check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                              "scratchpad mode", err)
                  : dnn_attr_user_scratchpad(&own, err);
    if (rc) return NULL;
    if (own) attr = own;
    dnnl_primitive_desc_t pd = NULL;
    rc = dnn_pd_create(c->dnn, &pd, op_desc, attr, hint, "primitive descriptor", err);
    if (own) dnnl_primitive_attr_destroy(own);
    if (rc) return NULL;
    return cache_finish(c, p, pd, args, n_args, tmp_count, err);
}

nn_prim *nn_cache_add_reorder(nn_cache *c, int kind, const long *key, int n_key, const dnnl_memory_desc_t *src,
                              const dnnl_memory_desc_t *dst, int accumulate, char *err)
{
    int args[] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    nn_prim *p = cache_slot(c, kind, key, n_key, 2, err);
    if (!p) return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int rc = dnn_attr_user_scratchpad(&attr, err);
    if (!rc && accumulate)
        rc = dnn_check(dnnl_post_ops_create(&po), "post ops", err) ||
             dnn_check(dnnl_post_ops_append_sum(po, 1.0f), "sum post op", err) ||
             dnn_check(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops", err);
    dnnl_primitive_desc_t pd = NULL;
    if (!rc)
        rc = dnn_check(dnnl_reorder_primitive_desc_create(&pd, src, c->dnn->engine, dst, c->dnn->engine, attr),
                       "reorder descriptor", err);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc ? NULL : cache_finish(c, p, pd, args, 2, 0, err);
}

/* Optional hook (defined only by tests/unit/test_model3d_alloc.c): told when a oneDNN execution
 * starts (1) and ends (0), so a counting allocator can set apart the small argument map that
 * oneDNN 2.6 builds on the heap inside every dnnl_primitive_execute. */
void nn_exec_hook(int inside) __attribute__((weak));

/* Binds the data pointers of p's execution arguments (all but the scratchpad). */
static int bind_args(nn_prim *p, void *const *ptrs, char *err)
{
    int n_user = p->n_args - (p->scratch ? 1 : 0);
    for (int i = 0; i < n_user; i++)
        if (dnn_bind(p->args[i].memory, ptrs[i], "bind memory", err)) return -1;
    return 0;
}

int nn_exec(nn_cache *c, nn_prim *p, void *const *ptrs, char *err)
{
    if (bind_args(p, ptrs, err)) return -1;
    c->n_exec++;
    if (nn_exec_hook) nn_exec_hook(1);
    int rc = dnn_execute(c->dnn, p->prim, p->n_args, p->args, "execute", err);
    if (!rc) rc = dnn_wait(c->dnn, "execute", err);
    if (nn_exec_hook) nn_exec_hook(0);
    return rc;
}

/* oneDNN sizes a primitive's work split for omp_get_max_threads() at its creation: created with one
 * thread, it runs its whole work in the calling thread wherever it is executed. */
nn_prim *nn_cache_add_one_thread(nn_cache *c, int kind, const long *key, int n_key, const void *op_desc,
                                 dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, const int *args,
                                 int n_args, long tmp_count, char *err)
{
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    nn_prim *p = nn_cache_add(c, kind, key, n_key, op_desc, attr, hint, args, n_args, tmp_count, err);
    omp_set_num_threads(threads);
    if (p) p->one_thread = 1;
    return p;
}

nn_prim *nn_cache_add_for_slot(nn_cache *c, int slot, int kind, const long *key, int n_key, const void *op_desc,
                               dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, const int *args,
                               int n_args, long tmp_count, char *err)
{
    if (slot < 0) return nn_cache_add(c, kind, key, n_key, op_desc, attr, hint, args, n_args, tmp_count, err);
    return nn_cache_add_one_thread(c, kind, key, n_key, op_desc, attr, hint, args, n_args, tmp_count, err);
}

int nn_side_threads(void)
{
    int t = omp_get_max_threads();
    return t >= 2 && t <= NN_SIDE_MAX && !omp_in_parallel() ? t : 1;
}

int nn_side_stream(nn_cache *c, int slot, char *err)
{
    if (slot < 0 || slot >= NN_SIDE_MAX) return errf(err, "nn cache: side stream %d of %d", slot, NN_SIDE_MAX);
    if (c->side[slot]) return 0;
    return dnn_check(dnnl_stream_create(&c->side[slot], c->dnn->engine, dnnl_stream_default_flags),
                     "side stream create", err);
}

int nn_exec_side(nn_cache *c, nn_prim *p, int slot, void *const *ptrs, char *err)
{
    if (bind_args(p, ptrs, err)) return -1;
    if (dnn_check(dnnl_primitive_execute(p->prim, c->side[slot], p->n_args, p->args), "execute", err)) return -1;
    return dnn_check(dnnl_stream_wait(c->side[slot]), "stream wait", err);
}

void nn_exec_region(nn_cache *c, int inside, long n_exec)
{
    c->n_exec += n_exec;
    if (nn_exec_hook) nn_exec_hook(inside);
}
