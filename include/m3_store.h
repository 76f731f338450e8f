/* m3_store.h -- the memory of a network built from m3 layers (the pre-training model, model3d.c, and
 * the classifier, classifier.c): one flat parameter buffer with its gradients and named tensor table,
 * the BatchNorm running statistics ("buffers") with theirs, the work arenas of the train and eval
 * steps and the oneDNN primitive cache. Each model keeps one and answers its accessors from it.
 */
#ifndef I2P_M3_STORE_H
#define I2P_M3_STORE_H

#include <stdint.h>

#include "arena.h"
#include "m3_layers.h"
#include "m3_layout.h"
#include "model3d.h"
#include "nn.h"
#include "rng.h"

typedef struct {
    int max_batch;
    dnn_ctx *ctx;
    nn_cache cache;
    arena step_arena, eval_arena;
    float *params, *grads, *buffers;
    uint16_t *params_bf16;  /* NN_BF16: the bf16 rounding of params (m3_store_bf16_refresh) */
    int bf16_stale;         /* params may have changed since params_bf16 was made */
    long bf16_copies;       /* times params_bf16 was made (tests, model3d_alloc_stats) */
    long n_params, n_buffers;
    model3d_tensor *tensors;
    int n_tensors;
    model3d_tensor *buffer_tensors;  /* <bn>.running_mean / .running_var views into buffers */
    int n_buffer_tensors;
    /* copied into every train run (m3_layers.h m3_run): backward progress and recomputation */
    void (*grads_final)(void *ctx, long lo);
    void *grads_final_ctx;
    int recompute;
} m3_store;

/* Places the tensors of model (its layer structs) with L (m3_layout.h); run twice by m3_store_init. */
typedef void (*m3_layout_fn)(void *model, m3_layout *L);

/* Sets up s (zeroed by the caller) for model, whose layer structs layout fills: the arenas, the
 * tensor tables, the primitive cache, then params, grads and buffers (all zero). what names the
 * model in the messages ("model3d: out of memory"). On failure s holds what was made so far, for
 * m3_store_free. */
int m3_store_init(m3_store *s, m3_layout_fn layout, void *model, int max_batch, dnn_ctx *ctx,
                  const char *what, char *err);
/* Bytes the step arena holds (its chunks: the peak of the train steps so far). */
long m3_store_step_arena_bytes(const m3_store *s);
/* Releases what m3_store_init made (s may be partly set up). */
void m3_store_free(m3_store *s);

/* Initialises tensor t's count floats at p from its own stream r (rng_seed(seed, t)); returns 0
 * for a tensor it does not handle. */
typedef int (*m3_init_fn)(const m3_store *s, int t, rng_t *r, float *p);
/* The spec's initialisation of every parameter tensor, one rng stream per tensor index: special
 * first (may be NULL), else Xavier-uniform weights of rank >= 2, unit norm scales ("*.weight" of
 * rank 1) and zero biases; BatchNorm running means 0 and variances 1. */
void m3_store_init_params(m3_store *s, uint64_t seed, m3_init_fn special);

/* Entry i of the parameter / buffer tensor table, or NULL outside it. */
const model3d_tensor *m3_store_tensor(const m3_store *s, int i);
const model3d_tensor *m3_store_buffer_tensor(const m3_store *s, int i);

/* The matmul precision of s's network (nn.h): NN_BF16 makes the bf16 copy of the parameters that
 * the bf16 matmuls read (m3_store_bf16_refresh) and fails where the CPU has no bf16 support. */
int m3_store_set_precision(m3_store *s, nn_precision p, char *err);

/* The parameters for writing: marks the bf16 copy stale, so that the next run remakes it once
 * (every model's xxx_params accessor goes through here). A writer takes the pointer again after a
 * run before it writes (the optimiser step, a checkpoint load, an initialisation do): a pointer kept
 * from before a run and written after it would leave the bf16 copy stale. */
float *m3_store_params(m3_store *s);
/* NN_BF16: remakes the bf16 copy of the parameters if m3_store_params was called since it was last
 * made (so once per optimiser step, shared by all its micro-batches, forward and backward, and by the
 * eval batches that follow); else nothing. m3_store_run calls it; a step that makes its own run
 * context (pipe_step.c) calls it first. */
void m3_store_bf16_refresh(m3_store *s);

/* The run context of one step over s, its arena reset: train = 1 the step arena, the gradients
 * (zeroed here), BatchNorm batch statistics and s's grads_final / recompute; train = 0 the
 * eval arena, no gradients. With NN_BF16 the bf16 copy of the parameters is brought up to date
 * here (m3_store_bf16_refresh: remade only if the parameters were taken for writing since). */
m3_run m3_store_run(m3_store *s, int train, char *err);
/* Starts a step of B samples: checks 1 <= B <= max_batch ("<what>: batch of B samples (max N)"),
 * sets *r = m3_store_run(s, train, err) and returns a zeroed block of bytes from the run's arena
 * for the step's saved state; NULL with err set on failure. */
void *m3_store_begin(m3_store *s, m3_run *r, int train, int B, size_t bytes, const char *what, char *err);

#endif
