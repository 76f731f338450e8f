/* m3_store.c -- the parameter store of a network built from m3 layers (m3_store.h): the two layout
 * passes, the allocations, the tensor-table lookups and the run context of a step.
 */
#include "m3_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

int m3_store_init(m3_store *s, m3_layout_fn layout, void *model, int max_batch, dnn_ctx *ctx,
                  const char *what, char *err)
{
    s->max_batch = max_batch;
    s->ctx = ctx;
    arena_init(&s->step_arena, (size_t)64 << 20);
    arena_init(&s->eval_arena, (size_t)16 << 20);
    m3_layout L = {0};
    layout(model, &L);
    s->tensors = calloc((size_t)L.n_tensors, sizeof *s->tensors);
    s->buffer_tensors = calloc((size_t)L.n_buffer_tensors, sizeof *s->buffer_tensors);
    if (!s->tensors || !s->buffer_tensors) return errf(err, "%s: out of memory", what);
    L = (m3_layout){.tensors = s->tensors, .buffer_tensors = s->buffer_tensors};
    layout(model, &L);
    s->n_tensors = L.n_tensors;
    s->n_buffer_tensors = L.n_buffer_tensors;
    s->n_params = L.n_params;
    s->n_buffers = L.n_buffers;
    /* ~260 primitives at the spec sizes, ~26 more per padded length of the first stage that a run
     * meets (model3d_set_pad_multiple: at most G0 / 32 = 16 of them) */
    if (nn_cache_init(&s->cache, ctx, 2048, err)) return -1;
    s->params = calloc((size_t)s->n_params, sizeof(float));
    s->grads = calloc((size_t)s->n_params, sizeof(float));
    s->buffers = calloc((size_t)s->n_buffers + 1, sizeof(float));
    if (!s->params || !s->grads || !s->buffers)
        return errf(err, "%s: out of memory (%ld parameters)", what, s->n_params);
    return 0;
}

void m3_store_free(m3_store *s)
{
    nn_cache_free(&s->cache);
    arena_free(&s->step_arena);
    arena_free(&s->eval_arena);
    free(s->tensors);
    free(s->buffer_tensors);
    free(s->params);
    free(s->params_bf16);
    free(s->grads);
    free(s->buffers);
}

long m3_store_step_arena_bytes(const m3_store *s)
{
    long n = 0;
    n += (long)arena_bytes(&s->step_arena);
    return n;
}

void m3_store_init_params(m3_store *s, uint64_t seed, m3_init_fn special)
{
    s->bf16_stale = 1;
    for (int t = 0; t < s->n_tensors; t++) {
        const model3d_tensor *T = &s->tensors[t];
        float *p = s->params + T->offset;
        rng_t r;
        rng_seed(&r, seed, (uint64_t)t);
        const char *suffix = strrchr(T->name, '.');
        if (special && special(s, t, &r, p)) continue;
        if (T->rank >= 2) {
            double bound = sqrt(6.0 / (T->shape[0] + T->shape[1]));
            for (long i = 0; i < T->count; i++) p[i] = (float)rng_range(&r, -bound, bound);
        } else {
            float v = suffix && strcmp(suffix, ".weight") == 0 ? 1.0f : 0.0f;
            for (long i = 0; i < T->count; i++) p[i] = v;
        }
    }
    for (int i = 0; i < s->n_buffer_tensors; i++) {
        const model3d_tensor *T = &s->buffer_tensors[i];
        float v = strstr(T->name, "running_var") ? 1.0f : 0.0f;
        for (long j = 0; j < T->count; j++) s->buffers[T->offset + j] = v;
    }
}

const model3d_tensor *m3_store_tensor(const m3_store *s, int i)
{
    return i >= 0 && i < s->n_tensors ? &s->tensors[i] : NULL;
}

const model3d_tensor *m3_store_buffer_tensor(const m3_store *s, int i)
{
    return i >= 0 && i < s->n_buffer_tensors ? &s->buffer_tensors[i] : NULL;
}

int m3_store_set_precision(m3_store *s, nn_precision p, char *err)
{
    if (nn_cache_set_precision(&s->cache, p, err)) return -1;
    if (p == NN_BF16 && !s->params_bf16) {
        s->params_bf16 = dnn_alloc(sizeof(uint16_t) * (size_t)s->n_params);
        if (!s->params_bf16) return errf(err, "out of memory (bf16 copy of %ld parameters)", s->n_params);
    }
    nn_cache_set_bf16_weights(&s->cache, s->params, p == NN_BF16 ? s->params_bf16 : NULL, s->n_params);
    s->bf16_stale = 1;
    return 0;
}

float *m3_store_params(m3_store *s)
{
    s->bf16_stale = 1;
    return s->params;
}

void m3_store_bf16_refresh(m3_store *s)
{
    if (s->cache.precision != NN_BF16 || !s->bf16_stale) return;
    nn_to_bf16(s->params_bf16, s->params, s->n_params);
    s->bf16_stale = 0;
    s->bf16_copies++;
}

m3_run m3_store_run(m3_store *s, int train, char *err)
{
    arena *a = train ? &s->step_arena : &s->eval_arena;
    arena_reset(a);
    m3_store_bf16_refresh(s);
    m3_run r = {.c = &s->cache, .a = a, .P = s->params, .G = NULL, .buf = s->buffers, .train = train,
                .err = err};
    if (train) {
        nn_zero_floats(s->grads, s->n_params); /* 70 MB at the spec size: split between the threads */
        r.G = s->grads;
        r.grads_final = s->grads_final;
        r.grads_final_ctx = s->grads_final_ctx;
        r.recompute = s->recompute;
    }
    return r;
}

void *m3_store_begin(m3_store *s, m3_run *r, int train, int B, size_t bytes, const char *what, char *err)
{
    if (B < 1 || B > s->max_batch) {
        errf(err, "%s: batch of %d samples (max %d)", what, B, s->max_batch);
        return NULL;
    }
    *r = m3_store_run(s, train, err);
    void *state = arena_alloc(r->a, bytes);
    if (!state) {
        errf(err, "%s: out of memory (%s arena)", what, train ? "step" : "eval");
        return NULL;
    }
    memset(state, 0, bytes);
    return state;
}
