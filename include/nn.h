/* nn.h -- the layer library of the 3D network: one forward and one backward function per layer,
 * on oneDNN primitives cached by shape (nn_cache), plus the few hand-written loops (max-pool over
 * neighbours, row gathers/scatters) that have no primitive.
 *
 * Conventions (llm.c style):
 *  - activations are row-major (rows, channels); a linear / kernel-1 conv weight is (out, in);
 *  - every backward ACCUMULATES (+=) into the gradients it is given (input and parameter grads);
 *    a NULL gradient pointer means "not needed";
 *  - functions return 0 or -1 with err filled (errors.h).
 * Primitives and their scratchpads / temporaries are created at the first call with a new shape and
 * reused afterwards; nn_cache counts creations and bytes so tests can prove a steady state allocates
 * nothing.
 */
#ifndef I2P_NN_H
#define I2P_NN_H

#include <stddef.h>
#include <stdint.h>

#include "dnn.h"

#define NN_MAX_KEY 12
#define NN_MAX_ARGS 10
#define NN_SIDE_MAX 4 /* primitives run side by side from OpenMP threads, at most */

typedef struct {
    int kind;
    long key[NN_MAX_KEY];
    dnnl_primitive_t prim;
    int n_args;
    dnnl_exec_arg_t args[NN_MAX_ARGS];
    void *scratch;          /* user scratchpad (may be NULL) */
    float *tmp;             /* primitive-owned temporary (kind dependent) */
    long tmp_count;
    int one_thread;         /* created by nn_cache_add_one_thread, run side by side (nn_exec_side) */
} nn_prim;

/* Precision of the matmuls of nn_linear_* and nn_attention_* (nn_cache_set_precision). */
typedef enum { NN_FP32 = 0, NN_BF16 = 1 } nn_precision;

typedef struct {
    dnn_ctx *dnn;
    nn_precision precision; /* NN_FP32 (the default) or NN_BF16 */
    const float *wbase;     /* bf16: weights inside [wbase, wbase + wcount) are read from their */
    const uint16_t *wbf16;  /* bf16 copy at the same offset (nn_cache_set_bf16_weights) */
    long wcount;
    uint16_t *bf16_buf;     /* bf16 matmul inputs of the call in progress (grown, never shrunk) */
    long bf16_cap;
    double *sums_buf;       /* the bias gradients' column sums (nn_col_sums_add; grown, never shrunk) */
    long sums_cap;
    void *pack_buf;         /* a linear layer's weights in a matmul's blocked layout (grown, never shrunk) */
    long pack_cap;          /* bytes */
    nn_prim *prims;         /* fixed capacity, never reallocated */
    int n_prims, cap;
    long n_created;         /* primitives created so far (a steady state adds none) */
    long bytes_allocated;   /* scratchpads + temporaries allocated so far */
    double matmul_flops;    /* 2*M*K*N summed over every matmul executed (linear + attention) */
    long n_exec;            /* primitive executions so far */
    dnnl_stream_t side[NN_SIDE_MAX]; /* streams of primitives run side by side (nn_side_stream) */
} nn_cache;

int nn_cache_init(nn_cache *c, dnn_ctx *dnn, int capacity, char *err);
void nn_cache_free(nn_cache *c);

/* The kind of a cached primitive (nn_prim.kind, the first half of its cache key): one per operation of
 * the nn_*.c files. nn_kind_name gives each its label ("linear_dw_side", ...; "kind?" for a number
 * outside the enum), for benchmarks and reports. */
typedef enum {
    NN_K_LINEAR_FWD = 1, NN_K_LINEAR_BWD_DATA, NN_K_LINEAR_BWD_W, NN_K_LINEAR_DW_CHUNK, NN_K_LINEAR_DW_SIDE,
    NN_K_LINEAR_WPACK,
    NN_K_ADD = 20, NN_K_ACT_FWD, NN_K_ACT_BWD, NN_K_RELU_BWD_DST,
    NN_K_LN_FWD = 40, NN_K_LN_BWD,
    NN_K_BN_TRAIN = 60, NN_K_BN_EVAL,
    NN_K_ATT_QK = 80, NN_K_ATT_PV, NN_K_ATT_SOFTMAX_FWD, NN_K_ATT_SOFTMAX_BWD, NN_K_ATT_DP, NN_K_ATT_DV,
    NN_K_ATT_DQ, NN_K_ATT_DK, NN_K_ATT_HEADS
} nn_kind;
const char *nn_kind_name(int kind);

/* Looks up a cached primitive (internal to the nn_*.c files). Returns NULL if absent. */
nn_prim *nn_cache_find(nn_cache *c, int kind, const long *key, int n_key);
/* Creates a primitive for op_desc (a dnnl_*_desc_t), with optional attr (scratchpad mode is set to
 * user here), optional forward hint, and memory objects for the listed execution args. */
nn_prim *nn_cache_add(nn_cache *c, int kind, const long *key, int n_key, const void *op_desc,
                      dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                      const int *args, int n_args, long tmp_count, char *err);
/* Creates a reorder from src to dst (dst += the reordered src when accumulate: a sum post-op),
 * executed by nn_exec with {src, dst}. */
nn_prim *nn_cache_add_reorder(nn_cache *c, int kind, const long *key, int n_key, const dnnl_memory_desc_t *src,
                              const dnnl_memory_desc_t *dst, int accumulate, char *err);
/* Binds the data pointers (in the order of args at creation) and executes synchronously. */
int nn_exec(nn_cache *c, nn_prim *p, void *const *ptrs, char *err);
/* Primitives run side by side, one per OpenMP thread of a parallel region (up to NN_SIDE_MAX): each
 * created one-thread (nn_cache_add_one_thread, with its own memory objects and scratchpad) and
 * executed by nn_exec_side on stream `slot` (nn_side_stream, created before the region). Neither
 * counts executions nor calls the execution hook: the caller does, once around the region. */
nn_prim *nn_cache_add_one_thread(nn_cache *c, int kind, const long *key, int n_key, const void *op_desc,
                                 dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, const int *args,
                                 int n_args, long tmp_count, char *err);
/* nn_cache_add (slot < 0: the primitive for all threads) or nn_cache_add_one_thread (slot >= 0: a
 * copy for side-by-side use on stream slot). */
nn_prim *nn_cache_add_for_slot(nn_cache *c, int slot, int kind, const long *key, int n_key, const void *op_desc,
                               dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, const int *args,
                               int n_args, long tmp_count, char *err);
/* How many threads run primitives side by side here: omp_get_max_threads() from 2 to NN_SIDE_MAX
 * outside a parallel region, else 1 (none: with more threads a few one-thread primitives would leave
 * the others idle). */
int nn_side_threads(void);
int nn_side_stream(nn_cache *c, int slot, char *err);
int nn_exec_side(nn_cache *c, nn_prim *p, int slot, void *const *ptrs, char *err);
/* The execution hook (see nn_exec) around a region of nn_exec_side calls: 1 before, 0 after. */
void nn_exec_region(nn_cache *c, int inside, long n_exec);
/* Creates a primitive descriptor (for use as a backward hint); the caller destroys it. */
int nn_pd_create(nn_cache *c, dnnl_primitive_desc_t *pd, const void *op_desc,
                 const_dnnl_primitive_desc_t hint, char *err);

/* ---- bf16 mixed precision (nn_bf16.c) ----
 * With NN_BF16 every matmul of nn_linear_* and nn_attention_* (forward and backward) reads its two
 * inputs rounded to bf16 (8-bit mantissa, round to nearest even) and accumulates and writes in f32;
 * bias, bias gradient (column sums in double, nn_col_sums_add), softmax, masks and every other
 * layer stay f32. Needs avx512_bf16 or AMX (else an error: oneDNN would emulate bf16, slower than fp32).
 * Where bf16 gains nothing the layer stays f32 (measured, docs/model3d.md): a linear layer with fewer
 * than NN_BF16_MIN_DIM inputs or outputs (e.g. the 3 -> C layers on raw coordinates: memory-bound,
 * and coordinates would lose their low bits). Attention (every head dimension) also keeps its
 * probabilities and score gradient in bf16, as the softmax primitives write them (nn_attention_*). */
#define NN_BF16_MIN_DIM 16
int nn_cache_set_precision(nn_cache *c, nn_precision p, char *err);
/* "fp32" / "bf16" <-> nn_precision (the --precision option); parse fails naming the value. */
int nn_precision_parse(const char *s, nn_precision *p, char *err);
const char *nn_precision_name(nn_precision p);
/* Declares copy (count bf16 values, owned by the caller) the bf16 rounding of base (count floats):
 * bf16 matmuls whose weights lie inside base read them there instead of converting them at every
 * call. The caller keeps copy current (nn_to_bf16 after each change of base); NULL: none. */
void nn_cache_set_bf16_weights(nn_cache *c, const float *base, const uint16_t *copy, long count);
/* dst (n) = src (n) rounded to bf16 (nearest even; subnormals to zero, as the AVX-512 BF16
 * instruction does): OpenMP over chunks, and a serial form for use inside parallel loops; _stream
 * stores dst past the caches (non-temporal; for a destination that is not read again soon). */
void nn_to_bf16(uint16_t *dst, const float *src, long n);
void nn_to_bf16_serial(uint16_t *dst, const float *src, long n);
void nn_to_bf16_serial_stream(uint16_t *dst, const float *src, long n);
/* Internal to the nn_*.c files: the cache's bf16 buffer with room for count values (grown at the
 * first call of a larger shape, so a steady state allocates nothing); NULL with err if out of
 * memory. nn_bf16_weights: the bf16 copy of w (count) if declared, else w converted into spare. */
uint16_t *nn_bf16_buffer(nn_cache *c, long count, char *err);
const uint16_t *nn_bf16_weights(nn_cache *c, const float *w, long count, uint16_t *spare);

/* ---- element-wise and binary ---- */
/* out (n) = a (n) + b (n); out may alias a or b. */
int nn_add(nn_cache *c, float *out, const float *a, const float *b, long n, char *err);
/* dst (n) += src (n) */
int nn_accumulate(nn_cache *c, float *dst, const float *src, long n, char *err);

typedef enum { NN_GELU = 1, NN_RELU = 2 } nn_act;
/* out (n) = act(inp (n)); out may alias inp only for the forward. */
int nn_act_forward(nn_cache *c, nn_act a, float *out, const float *inp, long n, char *err);
/* dinp (n) += act'(inp) * dout */
int nn_act_backward(nn_cache *c, nn_act a, float *dinp, const float *dout, const float *inp, long n,
                    char *err);
/* dinp (n) = act'(inp) * dout: the same values as nn_act_backward into zeros (up to the sign of a
 * zero: 0 + -0 is +0 there), without the temporary, the zeroing and the add pass */
int nn_act_backward_set(nn_cache *c, nn_act a, float *dinp, const float *dout, const float *inp, long n,
                        char *err);

/* ReLU's backward from its output: dinp (n) = (out > 0) * dout. OVERWRITES dinp (no accumulation,
 * no temporary), which may alias dout; lets a caller keep ReLU's output instead of its input. */
int nn_relu_backward_dst(nn_cache *c, float *dinp, const float *dout, const float *out, long n, char *err);

/* nn_relu_backward_dst from ReLU's output rounded to bf16 (nn_batchnorm_relu_bf16): dinp (n) =
 * (out > 0) * dout, overwritten; dinp may alias dout. */
void nn_relu_backward_dst_bf16(float *dinp, const float *dout, const uint16_t *out, long n);
/* p (n floats) = 0, each thread zeroing one contiguous share (a large buffer: one memset per thread
 * instead of one thread's). Opens its own OpenMP region. */
void nn_zero_floats(float *p, long n);

/* ---- linear (also kernel-1 Conv1d) ---- */
/* From M = NN_WPACK_ROWS rows on, the forward and backward-data products read the weights in
 * oneDNN's blocked layout, repacked from w at every call (a change of w is always seen): the same
 * bits as the plain layout, faster on full-rate AVX-512 cores (nn_linear.c). */
#define NN_WPACK_ROWS 512
/* out (M,N) = inp (M,K) w^T + b;  w (N,K), b (N) or NULL. */
int nn_linear_forward(nn_cache *c, float *out, const float *inp, const float *w, const float *b,
                      long M, long K, long N, char *err);
/* dinp (M,K) += dout w;  dw (N,K) += dout^T inp;  db (N) += sum_rows dout. */
int nn_linear_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, long M, long K, long N, char *err);
/* The same with dinp OVERWRITTEN (= dout w, the same bits as += into zeros): no zeroing beforehand,
 * no read of dinp. */
int nn_linear_backward_set(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, long M, long K, long N, char *err);

/* The same with the input already in bf16 (inp (M,K) bf16, e.g. from nn_batchnorm_relu_bf16): only
 * with NN_BF16 and K, N >= NN_BF16_MIN_DIM (else an error); the forward and backward-weights
 * matmuls read it as it is, skipping their conversion of inp. The backward OVERWRITES dinp
 * (= dout w: no zeroing beforehand, no read of it); dw and db accumulate as above. */
int nn_linear_forward_bf16in(nn_cache *c, float *out, const uint16_t *inp, const float *w, const float *b,
                             long M, long K, long N, char *err);
int nn_linear_backward_bf16in(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                              const uint16_t *inp, const float *w, long M, long K, long N, char *err);
/* Whether a linear layer of K inputs and N outputs runs its matmuls in bf16 here (NN_BF16 and both
 * dimensions NN_BF16_MIN_DIM or more). */
int nn_linear_is_bf16(const nn_cache *c, long K, long N);
/* nn_linear_backward without db, the output gradient given in bf16 (dout (M,N), e.g. written by a
 * sink of nn_batchnorm_relu_backward_sink): the same products as nn_linear_backward on the f32 dout
 * that rounds to it, bitwise; only for a bf16 layer (nn_linear_is_bf16, else an error). dinp and dw
 * accumulate (either may be NULL). */
int nn_linear_backward_bf16dout(nn_cache *c, float *dinp, float *dw, const uint16_t *dout, const float *inp,
                                const float *w, long M, long K, long N, char *err);
/* The same with the input in bf16 as well (inp (M,K) bf16, e.g. kept from the forward): no conversion;
 * bitwise nn_linear_backward_bf16dout on the f32 input that rounds to inp. set: dinp OVERWRITTEN (= dout w,
 * as nn_linear_backward_set), else accumulated. */
int nn_linear_backward_bf16dout_in(nn_cache *c, float *dinp, float *dw, const uint16_t *dout, const uint16_t *inp,
                                   const float *w, long M, long K, long N, int set, char *err);

/* A weight gradient dw (N,K) += dout^T inp over M > nn_linear_dw_rows() rows given in consecutive
 * pieces (a backward by row chunks): bitwise nn_linear_backward's dw over all M rows (f32, or bf16 for
 * a bf16 layer, as nn_linear_backward / nn_linear_backward_bf16in would run it). begin with work = 2 N K
 * floats of the caller's (the running sum and one chunk's product, live until finish); add pieces in
 * row order, each a multiple of nn_linear_dw_rows() rows except the last; finish adds the sum to dw
 * (NULL: dropped) and fails when M <= nn_linear_dw_rows() (nn_linear_backward sums those otherwise).
 * acc and prod are nn_linear.c's (the running sum may be held transposed, (K,N)). */
typedef struct {
    float *acc, *prod;
    long K, N, rows;
} nn_dw_sum;
long nn_linear_dw_rows(void);
void nn_linear_dw_begin(nn_dw_sum *s, float *work, long K, long N);
int nn_linear_dw_add(nn_cache *c, nn_dw_sum *s, const float *dout, const float *inp, long rows, char *err);
int nn_linear_dw_add_bf16in(nn_cache *c, nn_dw_sum *s, const float *dout, const uint16_t *inp, long rows,
                            char *err);
int nn_linear_dw_finish(nn_dw_sum *s, float *dw, char *err);

/* ---- layer normalisation over the last dim (eps 1e-5) ---- */
/* out, inp (M,C); w, b (C); mean, var (M) saved for the backward. */
int nn_layernorm_forward(nn_cache *c, float *out, float *mean, float *var, const float *inp,
                         const float *w, const float *b, long M, long C, char *err);
int nn_layernorm_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *b, const float *mean,
                          const float *var, long M, long C, char *err);

/* ---- column sums over many rows (nn_row_sums.c) ----
 * The normalisations' sums per column (BatchNorm's batch statistics and backward sums, LayerNorm's
 * parameter gradients) run over rows split between threads in fixed blocks of NN_ROW_BLOCK rows: each
 * block's sums in row order into a partial of its own, the partials added into acc in block order; so
 * the bits depend on the row count alone, never on the thread count. Rows given in pieces (the
 * *_rows functions below, called per chunk) give the sums of all rows at once, bitwise, when every
 * piece but the last holds a multiple of NN_ROW_BLOCK rows (the chunked backward's pieces are
 * multiples of nn_linear_dw_rows(), 1024). */
#define NN_ROW_BLOCK 256
#define NN_ROW_SUMS_BLOCKS 16 /* blocks per round: the scratch holds one partial each */
/* fn adds the column sums of rows [r0, r1), each column in row order, into part (width doubles, zero
 * on entry); arg: its inputs. */
typedef void nn_row_sums_fn(double *part, long r0, long r1, const void *arg);
/* acc (width doubles) += the column sums of rows [0, rows) in the order above; part: scratch of
 * nn_row_sums_scratch(width) doubles. Opens its own OpenMP regions (call it outside one). */
void nn_row_block_sums(double *acc, double *part, long width, long rows, nn_row_sums_fn *fn, const void *arg);
long nn_row_sums_scratch(long width);
/* db (N) += the column sums of x (M,N) in the order above (double partials of NN_ROW_BLOCK rows, each
 * column's total rounded to float once): nn_linear_*'s bias gradient, the same bits for every thread
 * count and in both precisions. nn_col_sums_to_bf16_add also writes dst (M,N) = x rounded to bf16
 * (nn_to_bf16's values) in the same sweep over x. scratch: nn_col_sums_scratch(N) doubles. */
long nn_col_sums_scratch(long N);
/* part (N) += the column sums of x (rows,N), each column in row order (AVX2 where the CPU has it,
 * the same bits): the row-block pass of nn_col_sums_*. */
void nn_col_sums_rows(double *part, const float *x, long rows, long N);
/* Internal: db (N) += the column totals that fn's row-block passes (nn_row_block_sums) sum into
 * scratch, each rounded to float once: the common driver of nn_col_sums_add and _to_bf16_add. */
void nn_col_sums_by(float *db, long M, long N, double *scratch, nn_row_sums_fn *fn, const void *arg);
void nn_col_sums_add(float *db, const float *x, long M, long N, double *scratch);
void nn_col_sums_to_bf16_add(float *db, uint16_t *dst, const float *x, long M, long N, double *scratch);
/* Internal to the nn_*.c files: the cache's scratch of count doubles for nn_col_sums_* (grown at the
 * first call of a larger shape); NULL with err if out of memory. */
double *nn_sums_buffer(nn_cache *c, long count, char *err);
/* Internal: buf (cap elements of size bytes) if count fit, else freed and replaced by one of count
 * elements (*cap updated, counted in bytes_allocated): the grow-only buffers of the cache (nn_bf16_buffer,
 * nn_sums_buffer). NULL with err "nn cache: out of memory (<what> of <count> <unit>)" (buf freed, *cap 0). */
void *nn_cache_grow(nn_cache *c, void *buf, long *cap, long count, size_t size, const char *what,
                    const char *unit, char *err);
/* Doubles of the acc that the BatchNorm functions over pieces of rows (nn_bn_stats_*,
 * nn_batchnorm_sums_rows) take for C columns: 2C sums, then C of scratch for per-column factors (the
 * statistics' shift) and the sums' scratch. */
long nn_bn_acc_doubles(long C);

/* The reductions of the normalisations' backwards (internal, nn_norm_backward.c), each sum in an
 * order fixed by the shapes (the same bits for every thread count); acc: scratch.
 * Layer normalisation (statistics per row): dw (C) += sum_rows dout xhat, db (C) += sum_rows dout
 * (either may be NULL); acc: nn_bn_acc_doubles(C) doubles. */
void nn_layernorm_param_grads(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                              const float *var, float eps, long M, long C, double *acc);
/* Batch normalisation over rows (statistics per column): accumulates dinp (M,C), dw, db (C) (each may
 * be NULL); acc: 2C + nn_bn_acc_doubles(C) doubles. */
void nn_batchnorm_backward_rows(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, const float *mean, const float *var, float eps, long M, long C,
                                double *acc);
/* How BatchNorm -> ReLU formed its output from inp (so that ReLU's mask, output > 0, can be recomputed
 * from inp): NN_BN_MULADD s (inp - mean) + b, NN_BN_FMA fma(inp - mean, s, b), s = w / sqrt(var + eps)
 * (nn_batchnorm_relu_train, which matches the primitive's arithmetic), NN_BN_RELU_BF16 the muladd
 * form rounded to bf16 (nn_batchnorm_relu_bf16); NN_BN_PRIM: unknown (the primitive's output given). */
typedef enum { NN_BN_ERROR = -1, NN_BN_PRIM = 0, NN_BN_MULADD, NN_BN_FMA, NN_BN_RELU_BF16 } nn_bn_arith;
/* The backward of out = relu(bn(inp)) with dout the gradient at out: ReLU's backward (as
 * nn_relu_backward_dst: dout where out > 0, else 0 dout) folded into nn_batchnorm_backward_rows'
 * column sums and input-gradient pass, dinp (M,C) OVERWRITTEN (the values nn_batchnorm_backward_rows
 * accumulates onto zeros, bitwise); dw, db accumulate (may be NULL). relu: how out was formed; y: for
 * NN_BN_PRIM the BN output (M,C), may alias dinp; else unused. acc: 3C + nn_bn_acc_doubles(C) doubles. */
void nn_batchnorm_relu_backward_rows(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                     const float *w, const float *b, const float *mean, const float *var,
                                     const float *y, nn_bn_arith relu, float eps, long M, long C, double *acc);
/* A consumer of input-gradient rows: fn(rows, r0, r1, arg) gets rows [r0, r1) of the gradient, an
 * (r1 - r0, C) array in a per-thread scratch, valid during the call. It is called from inside an
 * OpenMP team (each call by one thread), on disjoint pieces that cover [0, M), each starting at a
 * multiple of align rows. */
typedef void nn_rows_sink_fn(const float *rows, long r0, long r1, void *arg);
typedef struct {
    nn_rows_sink_fn *fn;
    void *arg;
    long align;
} nn_rows_sink;
/* Floats of the scratch of nn_batchnorm_relu_backward_*sink for C columns and a sink's align, at up
 * to omp_get_max_threads() threads. */
long nn_bn_sink_scratch(long C, long align);
/* nn_batchnorm_relu_backward_rows with the input gradient handed to sink piece by piece (the same
 * values) instead of stored as an (M,C) array; relu not NN_BN_PRIM (no y). */
void nn_batchnorm_relu_backward_rows_sink(const nn_rows_sink *sink, float *scratch, float *dw, float *db,
                                          const float *dout, const float *inp, const float *w, const float *b,
                                          const float *mean, const float *var, nn_bn_arith relu, float eps,
                                          long M, long C, double *acc);
/* The same in pieces of consecutive rows (a backward by row chunks), bitwise (pieces of multiples of
 * NN_ROW_BLOCK rows but the last): acc (nn_bn_acc_doubles(C)) with its first 2C zeroed by the caller; nn_batchnorm_sums_rows for each piece in row order (the sums of dout xhat and dout);
 * nn_batchnorm_sums_grads once (dw, db += them; either may be NULL); then nn_batchnorm_dinp_rows
 * accumulates each piece's dinp (rows, C), M being the rows of all pieces. */
void nn_batchnorm_sums_rows(double *acc, const float *dout, const float *inp, const float *mean, const float *var,
                            float eps, long rows, long C);
void nn_batchnorm_sums_grads(float *dw, float *db, const double *acc, long C);
void nn_batchnorm_dinp_rows(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                            const float *var, float eps, long M, long rows, long C, const double *acc);

/* ---- batch normalisation over rows (eps 1e-5) ---- */
#define NN_BN_EPS 1e-5f /* its eps (also for nn_batchnorm_sums_rows / dinp_rows) */
#define NN_BN_MOMENTUM 0.1f /* its running statistics' momentum */
/* nn_batchnorm_stats_train over rows given in pieces (nn_batchnorm.c, the same pass), bitwise (pieces
 * of multiples of NN_ROW_BLOCK rows but the last): acc (nn_bn_acc_doubles(C)); nn_bn_stats_begin with
 * the first row of all the rows (row0; NULL: no shift), nn_bn_stats_rows for each piece in row order,
 * nn_bn_stats_end (M: all the rows; the running update when running_mean, running_var are not NULL).
 * The statistics are shifted sums in double (d = x - row0: sum d, sum d^2), from which the mean and
 * the biased variance follow without cancellation. nn_bn_stats_part is the pass of one block of rows
 * (part: 2C doubles, the sums of d and d^2 added in row order), for a caller that makes the rows
 * block by block (nn_row_block_sums with width 2C and scratch acc + 3C): the same bits. */
void nn_bn_stats_begin(double *acc, const float *row0, long C);
void nn_bn_stats_rows(double *acc, const float *inp, long rows, long C);
void nn_bn_stats_part(double *part, const double *acc, const float *inp, long rows, long C);
void nn_bn_stats_end(const double *acc, float *mean, float *var, float *running_mean, float *running_var, long M,
                     long C);
/* Training: out, inp (M,C); mean, var (C) = batch statistics (biased var), saved for backward;
 * running_mean / running_var (C) updated with momentum 0.1 (unbiased var) if not NULL. */
int nn_batchnorm_forward_train(nn_cache *c, float *out, float *mean, float *var, const float *inp,
                               const float *w, const float *b, float *running_mean,
                               float *running_var, long M, long C, char *err);
/* The training forward's normalisation again, with the statistics it saved (mean, var): the same
 * primitive on the same input, so the same bits; the running statistics are not touched (used by
 * backwards that recompute a BN output instead of keeping it). */
int nn_batchnorm_apply_train(nn_cache *c, float *out, const float *inp, const float *w,
                             const float *b, const float *mean, const float *var, long M, long C,
                             char *err);
/* The training forward's statistics alone: mean, var (C) and the running update, as
 * nn_batchnorm_forward_train computes them (for nn_batchnorm_relu_bf16). */
int nn_batchnorm_stats_train(nn_cache *c, float *mean, float *var, const float *inp, float *running_mean,
                             float *running_var, long M, long C, char *err);
/* BatchNorm -> ReLU in training with the given statistics: out (M,C) = relu(bn(inp)), bitwise
 * nn_batchnorm_apply_train then nn_act_forward (NN_RELU), in one pass when the primitive's arithmetic
 * is known (nn_batchnorm_arith), else by those two. */
int nn_batchnorm_relu_train(nn_cache *c, float *out, const float *inp, const float *w, const float *b,
                            const float *mean, const float *var, long M, long C, char *err);
/* The arithmetic of the training primitive for (M,C) (NN_BN_PRIM: unknown; NN_BN_ERROR with err). */
nn_bn_arith nn_batchnorm_arith(nn_cache *c, long M, long C, char *err);
/* The backward of nn_batchnorm_relu_train (bf16 0) or nn_batchnorm_relu_bf16 (bf16 1) from dout, the
 * gradient at ReLU's output: dinp (M,C) OVERWRITTEN, bitwise nn_relu_backward_dst (or _bf16) then
 * nn_batchnorm_backward into zeros, in two passes (nn_batchnorm_relu_backward_rows); dw, db accumulate
 * (may be NULL). */
int nn_batchnorm_relu_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *b, const float *mean,
                               const float *var, long M, long C, int bf16, char *err);
/* nn_batchnorm_relu_backward with bf16 1 (after nn_batchnorm_relu_bf16), the input gradient handed to
 * sink (the same values; nn_batchnorm_relu_backward_rows_sink) instead of written; scratch:
 * nn_bn_sink_scratch(C, sink->align) floats. */
int nn_batchnorm_relu_backward_sink(nn_cache *c, const nn_rows_sink *sink, float *scratch, float *dw, float *db,
                                    const float *dout, const float *inp, const float *w, const float *b,
                                    const float *mean, const float *var, long M, long C, char *err);
/* bf16 path of BatchNorm -> ReLU -> a bf16 matmul, in one pass: out (M,C) = relu(w (inp - mean) /
 * sqrt(var + eps) + b) rounded to bf16 (nn_to_bf16), with the given statistics (batch or running).
 * Its f32 value may differ from the primitive's in the last bit before the rounding. */
int nn_batchnorm_relu_bf16(nn_cache *c, uint16_t *out, const float *inp, const float *w, const float *b,
                           const float *mean, const float *var, long M, long C, char *err);
/* Eval: normalises with the running statistics. */
int nn_batchnorm_forward_eval(nn_cache *c, float *out, const float *inp, const float *w,
                              const float *b, const float *running_mean, const float *running_var,
                              long M, long C, char *err);
int nn_batchnorm_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *b, const float *mean,
                          const float *var, long M, long C, char *err);

/* ---- multi-head self-attention core (no projections) ---- */
/* qkv (B,T,3C) with q,k,v blocks of C along the last dim, heads H, head dim C/H;
 * keybias (B,T) additive on the keys (0 or -1e5) or NULL; att (B,H,T,T) softmax probabilities
 * saved for backward (B H T T floats; under NN_BF16 they are stored as B H T T bf16 values, uint16_t,
 * so a buffer of (B H T T + 1) / 2 floats is enough, read so by nn_attention_backward); out (B,T,C)
 * with head h in columns [h*C/H, (h+1)*C/H). */
int nn_attention_forward(nn_cache *c, float *out, float *att, const float *qkv,
                         const float *keybias, long B, long T, long C, long H, char *err);
/* The same with pairbias (B,T,T) additive on the scores of every head (local attention: 0 or -1e5
 * per query and key) or NULL; the backward is nn_attention_backward (the biases are constants). */
int nn_attention_forward_bias(nn_cache *c, float *out, float *att, const float *qkv,
                              const float *keybias, const float *pairbias, long B, long T, long C,
                              long H, char *err);
/* dqkv (B,T,3C) += ...; att as nn_attention_forward left it. The (B,H,T,T) chain runs in blocks of
 * samples whose T x T scratch the cache owns (a few MB), so the caller provides no T x T scratch. */
int nn_attention_backward(nn_cache *c, float *dqkv, const float *dout, const float *qkv, const float *att,
                          long B, long T, long C, long H, char *err);

/* ---- hand-written loops (OpenMP) ---- */
/* out (G,C) = max over k of inp (G,k,C); arg (G,C) = the winning k (first on ties). */
void nn_maxpool_forward(float *out, int32_t *arg, const float *inp, long G, long k, long C);
/* The same, and inb (G,k,C) = inp rounded to bf16 (nn_to_bf16's bits, stored past the caches) in the
 * same sweep: the bf16 copy a bf16 layer reads of inp (nn_linear_forward_bf16in) without a pass of its own. */
void nn_maxpool_forward_bf16(float *out, int32_t *arg, uint16_t *inb, const float *inp, long G, long k, long C);
/* dinp (G,k,C) += dout routed to the winners. */
void nn_maxpool_backward(float *dinp, const float *dout, const int32_t *arg, long G, long k, long C);
/* The same into zeros, OVERWRITING dinp (G,k,C): bitwise a memset to 0 then nn_maxpool_backward
 * (0 + the routed value), in one pass over dinp. */
void nn_maxpool_backward_set(float *dinp, const float *dout, const int32_t *arg, long G, long k, long C);
/* out (n,C) = src[idx[i]] rows. */
void nn_gather_rows(float *out, const float *src, const int32_t *idx, long n, long C);
/* dsrc[idx[i]] += dout (n,C) rows (serial over i: idx may repeat). */
void nn_scatter_add_rows(float *dsrc, const float *dout, const int32_t *idx, long n, long C);

#endif
