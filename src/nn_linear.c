/* nn_linear.c -- linear layer (and kernel-1 Conv1d) on oneDNN matmul: forward, backward data and
 * backward weights (matmul on transposed memory descriptors), accumulation by a sum post-op.
 * With NN_BF16 (nn.h), for at least NN_BF16_MIN_DIM inputs and outputs, the two inputs of the
 * forward, backward-data and backward-weights matmuls are bf16 (activations and output gradients
 * converted into the cache's bf16 buffer, weights from the declared bf16 copy), the output and its
 * accumulation f32. The bias gradient is no matmul: column sums of the output gradient in double over
 * fixed blocks of rows (nn_col_sums_add), in bf16 layers summed in the sweep that converts it; the
 * same bits in both precisions and at every thread count.
 */
#include "nn.h"

#include <omp.h>
#include <string.h>

#include "errors.h"

/* The f32 weight gradient's sum over the M rows is split here, the same way for every thread count.
 * oneDNN 2.6's matmul splits a reduction of 2048 rows or more between threads when its output has few
 * blocks for them (dW (8,3) over 2048 rows at 2 threads; (512,512) over 3072 rows at 16), which
 * makes the bits depend on the thread count; it was never seen to split one of <= 1536 (1 to 32
 * threads, tests/bench/bench_dnn_threads.c). So for M > DW_ROWS, dW is the sum of the partial products
 * of consecutive DW_ROWS-row chunks (one 2-D matmul call per chunk: a batched matmul over the
 * chunks gave wrong sums at 4 threads for 2 chunks of 2048 rows; a crash of the Slurm requeue test
 * seen with it came while other test clusters with the same job ids ran, slurm/local-cluster.sh),
 * added in chunk order;
 * M <= DW_ROWS is one matmul as before. The bf16 weight gradient (bf16 inputs, f32 partials and sums)
 * is chunked the same way. */
enum { DW_ROWS = 1024 };

/* A (rows, cols) descriptor of type dt with the given strides. */
static int md2t(dnnl_memory_desc_t *md, long rows, long cols, long s0, long s1, dnnl_data_type_t dt, char *err)
{
    dnnl_dims_t d = {rows, cols}, s = {s0, s1};
    return dnn_check(dnnl_memory_desc_init_by_strides(md, 2, d, dt, s), "matmul md", err);
}

static int md2(dnnl_memory_desc_t *md, long rows, long cols, long s0, long s1, char *err)
{
    return md2t(md, rows, cols, s0, s1, dnnl_f32, err);
}

/* dst = src x wei (+ bias) (+ dst if accumulate); src and wei of one type (f32 or bf16); packed:
 * wei's layout left to oneDNN (format any; wei gives its dims and type). */
static nn_prim *matmul_prim(nn_cache *c, int kind, long M, long K, long N, int bias, int accumulate, int packed,
                            const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                            const dnnl_memory_desc_t *dst, char *err)
{
    long key[] = {M, K, N, bias, accumulate, src->data_type == dnnl_bf16, packed};
    nn_prim *p = nn_cache_find(c, kind, key, 7);
    if (p) return p;
    dnnl_memory_desc_t bmd, wany;
    if (bias && md2(&bmd, 1, N, N, 1, err)) return NULL;
    if (packed && dnn_check(dnnl_memory_desc_init_by_tag(&wany, 2, wei->dims, wei->data_type, dnnl_format_tag_any),
                            "matmul weights md", err))
        return NULL;
    dnnl_matmul_desc_t d;
    if (dnn_check(dnnl_matmul_desc_init(&d, src, packed ? &wany : wei, bias ? &bmd : NULL, dst), "matmul desc", err))
        return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (dnn_check(dnnl_primitive_attr_create(&attr), "attr", err)) return NULL;
    if (accumulate) {
        if (dnn_check(dnnl_post_ops_create(&po), "post ops", err) ||
            dnn_check(dnnl_post_ops_append_sum(po, 1.0f), "sum post op", err) ||
            dnn_check(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops", err)) {
            if (po) dnnl_post_ops_destroy(po);
            dnnl_primitive_attr_destroy(attr);
            return NULL;
        }
        dnnl_post_ops_destroy(po);
    }
    int args_b[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    p = nn_cache_add(c, kind, key, 7, &d, attr, NULL, args_b, bias ? 4 : 3, 0, err);
    dnnl_primitive_attr_destroy(attr);
    return p;
}

/* The forward and backward-data matmuls of at least NN_WPACK_ROWS rows read their weights in the
 * blocked layout that oneDNN picks for them (format any: BA16a64b for f32, BA16a64b2a for bf16 on
 * AVX-512), reordered from the layer's plain weights (or their bf16 copy) into the cache's pack
 * buffer at every call, so no packed copy can go stale. On a full-rate AVX-512 core the big products
 * run 5-20 % faster so (tests/bench/bench_wlayout.c, docs/performance.md "wpack"); the reorder
 * moves K*N values against the product's 2*M*K*N FLOPs. The blocked layout changes no dot product's
 * order: the same bits as the plain weights (bench_wlayout's hashes, the checkpoint checks).
 *
 * pack_weights: w (plain, described by wplain) reordered into the layout that the packed matmul p reads, in the
 * cache's pack buffer (returned; NULL with err). The reorder is cached under p's kind and key. */
static void *pack_weights(nn_cache *c, const nn_prim *p, const dnnl_memory_desc_t *wplain, const void *w, char *err)
{
    const_dnnl_primitive_desc_t pd = NULL;
    if (dnn_check(dnnl_primitive_get_primitive_desc(p->prim, &pd), "matmul descriptor", err)) return NULL;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!wmd) {
        errf(err, "linear: the packed matmul has no weights descriptor");
        return NULL;
    }
    long key[8] = {p->kind};
    memcpy(key + 1, p->key, 7 * sizeof *key);
    nn_prim *r = nn_cache_find(c, NN_K_LINEAR_WPACK, key, 8);
    if (!r) r = nn_cache_add_reorder(c, NN_K_LINEAR_WPACK, key, 8, wplain, wmd, 0, err);
    if (!r) return NULL;
    c->pack_buf = nn_cache_grow(c, c->pack_buf, &c->pack_cap, (long)dnnl_memory_desc_get_size(wmd), 1,
                                "packed weights", "bytes", err);
    if (!c->pack_buf) return NULL;
    void *ptr[] = {(void *)w, c->pack_buf};
    return nn_exec(c, r, ptr, err) ? NULL : c->pack_buf;
}

/* The forward (kind NN_K_LINEAR_FWD) or backward-data matmul dst (M,N') = src (M,K') x wei (K',N')
 * (+ b) (+ dst if accumulate), M K N the layer's sizes; the weights packed from M = NN_WPACK_ROWS on. */
static int matmul_run(nn_cache *c, int kind, long M, long K, long N, int accumulate, const dnnl_memory_desc_t *s,
                      const dnnl_memory_desc_t *wt, const dnnl_memory_desc_t *d, const void *src, const void *w,
                      float *dst, const float *b, char *err)
{
    int packed = M >= NN_WPACK_ROWS;
    nn_prim *p = matmul_prim(c, kind, M, K, N, b != NULL, accumulate, packed, s, wt, d, err);
    const void *wp = p && packed ? pack_weights(c, p, wt, w, err) : w;
    if (!p || !wp) return -1;
    void *ptr[] = {(void *)src, (void *)wp, dst, (void *)b};
    c->matmul_flops += 2.0 * M * K * N;
    return nn_exec(c, p, ptr, err);
}

/* The bf16 forward: inp converted into the cache's bf16 buffer (and w, if it has no declared copy);
 * inb: inp already in bf16 (then inp is unused). */
static int linear_forward_bf16(nn_cache *c, float *out, const float *inp, const uint16_t *inb, const float *w,
                               const float *b, long M, long K, long N, char *err)
{
    dnnl_memory_desc_t s, wt, d;
    if (md2t(&s, M, K, K, 1, dnnl_bf16, err) || md2t(&wt, K, N, 1, K, dnnl_bf16, err) || md2(&d, M, N, N, 1, err))
        return -1;
    uint16_t *ib = nn_bf16_buffer(c, (inb ? 0 : M * K) + N * K, err);
    if (!ib) return -1;
    if (!inb) nn_to_bf16(ib, inp, M * K);
    const uint16_t *wb = nn_bf16_weights(c, w, N * K, ib + (inb ? 0 : M * K));
    return matmul_run(c, NN_K_LINEAR_FWD, M, K, N, 0, &s, &wt, &d, inb ? (const void *)inb : ib, wb, out, b, err);
}

/* Whether the chunks' products are dW^T (K,N) = inp^T dout rather than dW (N,K) = dout^T inp: when dW
 * has more rows than columns (N > K), up to N = 1024. dW's rows narrower than one 16-float vector (the
 * 3D input layer's K = 3) fill oneDNN's vectors so: 2.5 to 4x faster at 1 and 2 threads. The wider
 * shapes of the step run their full chunks on one thread each (dw_add_side), and there, on a
 * full-rate AVX-512 core, dW^T is 4-25 % faster for N > K (bf16: 512x256 -6 %, 384x96 -15 %, 768x192
 * -9 %; fp32: 384x96 -22 %, 288x96 -21 %, 768x192 -10 %; fp32 512x256 +2 %), and 4-7 % slower for
 * N > 1024 (12288 x 192, 1536 x 384) and for N < K (tests/bench/bench_dw.c variants, docs/
 * performance.md "dwswap"). Each element is the same f32 dot product over the chunk's rows either
 * way (bench_dw bits: the same bits as dW at 1, 2, 3, 4, 8 and 16 threads, fp32 and bf16); the sums
 * of the chunks' products are elementwise, so the running sum stays transposed and is added to dw
 * transposed once at the end. */
static int dw_transposed(long K, long N)
{
    return N > K && (K < 16 || N <= 1024);
}

/* The chunk product's primitive for (rows, K, N, dt): part = dout^T x inp ((N,K), or its transpose
 * (K,N) when dw_transposed). slot < 0: the cache's primitive for all threads, whose temporary
 * (tmp_count floats) holds the running sum and one chunk's product when tmp_count > 0; slot >= 0: a
 * one-thread copy for side-by-side chunks (dw_add_side), its temporary one chunk's product. */
static nn_prim *dw_chunk_prim(nn_cache *c, dnnl_data_type_t dt, long rows, long K, long N, long tmp_count, int slot,
                              char *err)
{
    long key[] = {rows, K, N, tmp_count > 0, dt == dnnl_bf16, slot + 1};
    int kind = slot < 0 ? NN_K_LINEAR_DW_CHUNK : NN_K_LINEAR_DW_SIDE, tr = dw_transposed(K, N);
    nn_prim *p = nn_cache_find(c, kind, key, 6);
    if (p) return p;
    dnnl_memory_desc_t s, wt, d;
    dnnl_matmul_desc_t md;
    int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    long a = tr ? K : N, b = tr ? N : K; /* (a, rows: read transposed) x (rows, b) */
    if (md2t(&s, a, rows, 1, a, dt, err) || md2t(&wt, rows, b, b, 1, dt, err) || md2(&d, a, b, b, 1, err) ||
        dnn_check(dnnl_matmul_desc_init(&md, &s, &wt, NULL, &d), "matmul desc", err))
        return NULL;
    return nn_cache_add_for_slot(c, slot, kind, key, 6, &md, NULL, NULL, args, 3, tmp_count, err);
}

/* The pointers of a chunk product over the rows from r0 on of dout and inp (type dt) into part. */
static void dw_chunk_ptrs(void **ptr, float *part, const void *dout, const void *inp, dnnl_data_type_t dt, long r0,
                          long K, long N)
{
    long es = dt == dnnl_bf16 ? (long)sizeof(uint16_t) : (long)sizeof(float);
    void *g = (char *)dout + r0 * N * es, *x = (char *)inp + r0 * K * es;
    int tr = dw_transposed(K, N);
    ptr[0] = tr ? x : g;
    ptr[1] = tr ? g : x;
    ptr[2] = part;
}

/* part = the chunk product over the rows [r0, r0 + rows) with the cache's primitive (part NULL:
 * into its temporary). */
static nn_prim *dw_chunk(nn_cache *c, float *part, const void *dout, const void *inp, dnnl_data_type_t dt,
                         long r0, long rows, long K, long N, long tmp_count, char *err)
{
    nn_prim *p = dw_chunk_prim(c, dt, rows, K, N, tmp_count, -1, err);
    if (!p) return NULL;
    void *ptr[3];
    dw_chunk_ptrs(ptr, part ? part : p->tmp, dout, inp, dt, r0, K, N);
    c->matmul_flops += 2.0 * rows * K * N;
    return nn_exec(c, p, ptr, err) ? NULL : p;
}

/* acc[i] += x[i], i < n (elementwise: the same bits for every split between threads) */
static void add_into(float *acc, const float *x, long n)
{
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) acc[i] += x[i];
}

/* dw (N,K) += sum, the running sum of the chunks' products in their layout ((K,N) when dw_transposed):
 * elementwise, in 32 x 32 tiles when transposed. */
static void add_sum_into(float *dw, const float *sum, long K, long N)
{
    if (!dw_transposed(K, N)) {
        add_into(dw, sum, N * K);
        return;
    }
    enum { T = 32 };
#pragma omp parallel for collapse(2) schedule(static)
    for (long n0 = 0; n0 < N; n0 += T)
        for (long k0 = 0; k0 < K; k0 += T)
            for (long k = k0; k < k0 + T && k < K; k++)
                for (long n = n0; n < n0 + T && n < N; n++) dw[n * K + k] += sum[k * N + n];
}

/* Threads compute full chunks side by side (nn_side_threads()): each runs a one-thread copy of the
 * chunk primitive on a chunk of its own, instead of every chunk split between all threads: 1.05-1.35x
 * faster for the step's shapes at 2 threads (docs/performance.md, "dwside"), the same bits (a chunk's
 * product does not depend on how its output is split between threads: every element is one thread's
 * dot product over the chunk's rows, bench_dw).
 * The next g full chunks of the sum *s (rows [0, g DW_ROWS) of dout and inp), side by side: chunk j
 * by thread j into its primitive's temporary (into acc when it is the sum's first chunk), then added
 * to acc in chunk order, element by element (the bits of dw_add's one-at-a-time sum). */
static int dw_add_side(nn_cache *c, nn_dw_sum *s, const void *dout, const void *inp, dnnl_data_type_t dt, int g,
                       char *err)
{
    long NK = s->N * s->K;
    nn_prim *q[NN_SIDE_MAX];
    for (int j = 0; j < g; j++) {
        q[j] = dw_chunk_prim(c, dt, DW_ROWS, s->K, s->N, NK, j, err);
        if (!q[j] || nn_side_stream(c, j, err)) return -1;
    }
    int first = s->rows == 0, rc[NN_SIDE_MAX] = {0};
    char errs[NN_SIDE_MAX][I2P_ERR_LEN];
    nn_exec_region(c, 1, g);
#pragma omp parallel num_threads(g)
    { /* chunk j on stream j; a thread takes several if the runtime gives fewer than g */
        for (int j = omp_get_thread_num(); j < g; j += omp_get_num_threads()) {
            void *ptr[3];
            dw_chunk_ptrs(ptr, first && j == 0 ? s->acc : q[j]->tmp, dout, inp, dt, j * DW_ROWS, s->K, s->N);
            rc[j] = nn_exec_side(c, q[j], j, ptr, errs[j]);
        }
    }
    nn_exec_region(c, 0, 0);
    for (int j = 0; j < g; j++)
        if (rc[j]) return errf(err, "%s", errs[j]);
    c->matmul_flops += 2.0 * g * DW_ROWS * NK;
    float *acc = s->acc;
    const float *prod[NN_SIDE_MAX];
    for (int j = 0; j < g; j++) prod[j] = q[j]->tmp;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < NK; i++) {
        float a = acc[i];
        for (int j = first; j < g; j++) a += prod[j][i];
        acc[i] = a;
    }
    s->rows += g * DW_ROWS;
    return 0;
}

/* Adds the rows [0, rows) of dout and inp (type dt) to the running sum *s: its next DW_ROWS-row
 * chunks' products, each added to acc in chunk order (the first chunk of the sum is written into acc),
 * full chunks side by side where nn_side_threads allows. Only the last piece of a sum may end in a
 * partial chunk. */
static int dw_add(nn_cache *c, nn_dw_sum *s, const void *dout, const void *inp, dnnl_data_type_t dt, long rows,
                  char *err)
{
    long NK = s->N * s->K, es = dt == dnnl_bf16 ? (long)sizeof(uint16_t) : (long)sizeof(float);
    if (s->rows % DW_ROWS)
        return errf(err, "linear: a weight gradient summed in pieces got rows after a partial chunk");
    int side = nn_side_threads();
    long r0 = 0;
    while (side > 1 && rows - r0 >= 2 * DW_ROWS) {
        long full = (rows - r0) / DW_ROWS;
        int g = full < side ? (int)full : side;
        if (dw_add_side(c, s, (const char *)dout + r0 * s->N * es, (const char *)inp + r0 * s->K * es, dt, g, err))
            return -1;
        r0 += g * DW_ROWS;
    }
    for (; r0 < rows; r0 += DW_ROWS) {
        long n = rows - r0 < DW_ROWS ? rows - r0 : DW_ROWS;
        int first = s->rows == 0;
        if (!dw_chunk(c, first ? s->acc : s->prod, dout, inp, dt, r0, n, s->K, s->N, n == DW_ROWS ? 2 * NK : 0,
                      err))
            return -1;
        if (!first) add_into(s->acc, s->prod, NK);
        s->rows += n;
    }
    return 0;
}

/* dw (N,K) += dout^T inp for M > DW_ROWS, dout and inp of type dt, summed in f32 in an order fixed by
 * M alone (the comment at DW_ROWS): acc = chunk 0's product, then acc += each later chunk's product in
 * chunk order, then dw += acc (acc transposed when dw_transposed). The full chunks' primitive's
 * temporary holds acc and one chunk's product (2 N K floats, whatever M), so the memory does not grow
 * with the rows. nn_linear_dw_* run the same sum over rows given in pieces. */
static int linear_dw_chunked(nn_cache *c, float *dw, const void *dout, const void *inp, dnnl_data_type_t dt,
                             long M, long K, long N, char *err)
{
    long NK = N * K;
    nn_prim *p = dw_chunk_prim(c, dt, DW_ROWS, K, N, 2 * NK, -1, err);
    if (!p) return -1;
    nn_dw_sum s = {.acc = p->tmp, .prod = p->tmp + NK, .K = K, .N = N, .rows = 0};
    if (dw_add(c, &s, dout, inp, dt, M, err)) return -1;
    add_sum_into(dw, s.acc, K, N);
    return 0;
}

/* Whether the layer (K inputs, N outputs) runs in bf16. */
static int layer_bf16(const nn_cache *c, long K, long N)
{
    return c->precision == NN_BF16 && K >= NN_BF16_MIN_DIM && N >= NN_BF16_MIN_DIM;
}

long nn_linear_dw_rows(void)
{
    return DW_ROWS;
}

void nn_linear_dw_begin(nn_dw_sum *s, float *work, long K, long N)
{
    *s = (nn_dw_sum){.acc = work, .prod = work + N * K, .K = K, .N = N, .rows = 0};
}

/* f32 or bf16 pieces, as nn_linear_backward's weight gradient for the layer: the bf16 one converts the
 * piece's dout (and inp, unless inb) into the cache's bf16 buffer, as linear_backward_bf16 does. */
static int dw_add_layer(nn_cache *c, nn_dw_sum *s, const float *dout, const float *inp, const uint16_t *inb,
                        long rows, char *err)
{
    if (!layer_bf16(c, s->K, s->N)) return dw_add(c, s, dout, inp, dnnl_f32, rows, err);
    long ni = inb ? 0 : rows * s->K;
    uint16_t *gb = nn_bf16_buffer(c, rows * s->N + ni, err);
    if (!gb) return -1;
    nn_to_bf16(gb, dout, rows * s->N);
    if (!inb) nn_to_bf16(gb + rows * s->N, inp, rows * s->K);
    return dw_add(c, s, gb, inb ? (const void *)inb : gb + rows * s->N, dnnl_bf16, rows, err);
}

int nn_linear_dw_add(nn_cache *c, nn_dw_sum *s, const float *dout, const float *inp, long rows, char *err)
{
    return dw_add_layer(c, s, dout, inp, NULL, rows, err);
}

int nn_linear_dw_add_bf16in(nn_cache *c, nn_dw_sum *s, const float *dout, const uint16_t *inp, long rows,
                            char *err)
{
    if (!layer_bf16(c, s->K, s->N))
        return errf(err, "linear: a bf16 input needs bf16 precision and %d inputs and outputs (K %ld, N %ld)",
                    NN_BF16_MIN_DIM, s->K, s->N);
    return dw_add_layer(c, s, dout, NULL, inp, rows, err);
}

int nn_linear_dw_finish(nn_dw_sum *s, float *dw, char *err)
{
    if (s->rows <= DW_ROWS)
        return errf(err, "linear: a weight gradient summed in pieces needs more than %d rows (%ld)", DW_ROWS,
                    s->rows);
    if (dw) add_sum_into(dw, s->acc, s->K, s->N);
    return 0;
}

/* The bf16 backward of data and weights: dout (and inp for dw, unless given in bf16 as inb) converted
 * once for both, the bias gradient (db, or NULL) summed in double during dout's conversion; or dout
 * given in bf16 as doutb (db then NULL: its caller has no bias gradient). dinp is overwritten when
 * set, else accumulated. */
static int linear_backward_bf16(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                                const uint16_t *doutb, const float *inp, const uint16_t *inb, const float *w,
                                long M, long K, long N, int set, char *err)
{
    long ni = dw && !inb ? M * K : 0, ng = doutb ? 0 : M * N;
    uint16_t *buf = nn_bf16_buffer(c, ng + ni + (dinp ? N * K : 0), err);
    if (!buf) return -1;
    uint16_t *ib = buf + ng, *spare = ib + ni;
    const uint16_t *gb = doutb ? doutb : buf;
    if (!doutb && db) { /* the bias gradient's sums in the conversion's sweep over dout */
        double *sc = nn_sums_buffer(c, nn_col_sums_scratch(N), err);
        if (!sc) return -1;
        nn_col_sums_to_bf16_add(db, buf, dout, M, N, sc);
    } else if (!doutb)
        nn_to_bf16(buf, dout, M * N);
    dnnl_memory_desc_t s, wt, d;
    if (dinp) { /* dinp (M,K) (+)= dout (M,N) x w (N,K) */
        if (md2t(&s, M, N, N, 1, dnnl_bf16, err) || md2t(&wt, N, K, K, 1, dnnl_bf16, err) ||
            md2(&d, M, K, K, 1, err))
            return -1;
        if (matmul_run(c, NN_K_LINEAR_BWD_DATA, M, K, N, !set, &s, &wt, &d, gb, nn_bf16_weights(c, w, N * K, spare),
                       dinp, NULL, err))
            return -1;
    }
    if (dw && M > DW_ROWS) {
        if (!inb) nn_to_bf16(ib, inp, M * K);
        if (linear_dw_chunked(c, dw, gb, inb ? (const void *)inb : ib, dnnl_bf16, M, K, N, err)) return -1;
    } else if (dw) { /* dw (N,K) += dout^T (N,M: strides (1,N)) x inp (M,K), one chunk */
        if (md2t(&s, N, M, 1, N, dnnl_bf16, err) || md2t(&wt, M, K, K, 1, dnnl_bf16, err) ||
            md2(&d, N, K, K, 1, err))
            return -1;
        nn_prim *p = matmul_prim(c, NN_K_LINEAR_BWD_W, M, K, N, 0, 1, 0, &s, &wt, &d, err);
        if (!p) return -1;
        if (!inb) nn_to_bf16(ib, inp, M * K);
        void *ptr[] = {(void *)gb, inb ? (void *)inb : ib, dw};
        c->matmul_flops += 2.0 * M * K * N;
        if (nn_exec(c, p, ptr, err)) return -1;
    }
    return 0;
}

int nn_linear_forward(nn_cache *c, float *out, const float *inp, const float *w, const float *b,
                      long M, long K, long N, char *err)
{
    if (c->precision == NN_BF16 && K >= NN_BF16_MIN_DIM && N >= NN_BF16_MIN_DIM)
        return linear_forward_bf16(c, out, inp, NULL, w, b, M, K, N, err);
    /* out (M,N) = inp (M,K) x w^T (K,N: w read with strides (1,K)) + b */
    dnnl_memory_desc_t s, wt, d;
    if (md2(&s, M, K, K, 1, err) || md2(&wt, K, N, 1, K, err) || md2(&d, M, N, N, 1, err)) return -1;
    return matmul_run(c, NN_K_LINEAR_FWD, M, K, N, 0, &s, &wt, &d, inp, w, out, b, err);
}

/* The backward with inp in f32 or (inb not NULL, bf16 layers only) in bf16; dinp overwritten when set
 * (a matmul without the sum post-op: the same products, no read of dinp), else accumulated. */
static int linear_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const uint16_t *inb, const float *w, long M, long K, long N, int set, char *err)
{
    dnnl_memory_desc_t s, wt, d;
    if (layer_bf16(c, K, N) && (dinp || dw))
        return linear_backward_bf16(c, dinp, dw, db, dout, NULL, inp, inb, w, M, K, N, set, err);
    if (dinp) { /* dinp (M,K) (+)= dout (M,N) x w (N,K) */
        if (md2(&s, M, N, N, 1, err) || md2(&wt, N, K, K, 1, err) || md2(&d, M, K, K, 1, err)) return -1;
        if (matmul_run(c, NN_K_LINEAR_BWD_DATA, M, K, N, !set, &s, &wt, &d, dout, w, dinp, NULL, err)) return -1;
    }
    if (dw && M > DW_ROWS) {
        if (linear_dw_chunked(c, dw, dout, inp, dnnl_f32, M, K, N, err)) return -1;
    } else if (dw) { /* dw (N,K) += dout^T (N,M: strides (1,N)) x inp (M,K), one chunk */
        if (md2(&s, N, M, 1, N, err) || md2(&wt, M, K, K, 1, err) || md2(&d, N, K, K, 1, err)) return -1;
        nn_prim *p = matmul_prim(c, NN_K_LINEAR_BWD_W, M, K, N, 0, 1, 0, &s, &wt, &d, err);
        if (!p) return -1;
        void *ptr[] = {(void *)dout, (void *)inp, dw};
        c->matmul_flops += 2.0 * M * K * N;
        if (nn_exec(c, p, ptr, err)) return -1;
    }
    if (db) { /* db (N) += the column sums of dout (M,N) */
        double *sc = nn_sums_buffer(c, nn_col_sums_scratch(N), err);
        if (!sc) return -1;
        nn_col_sums_add(db, dout, M, N, sc);
    }
    return 0;
}

int nn_linear_backward(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, long M, long K, long N, char *err)
{
    return linear_backward(c, dinp, dw, db, dout, inp, NULL, w, M, K, N, 0, err);
}

int nn_linear_backward_set(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, long M, long K, long N, char *err)
{
    return linear_backward(c, dinp, dw, db, dout, inp, NULL, w, M, K, N, 1, err);
}

static int bf16in_check(const nn_cache *c, long K, long N, char *err)
{
    if (layer_bf16(c, K, N)) return 0;
    return errf(err, "linear: a bf16 input needs bf16 precision and %d inputs and outputs (K %ld, N %ld)",
                NN_BF16_MIN_DIM, K, N);
}

int nn_linear_forward_bf16in(nn_cache *c, float *out, const uint16_t *inp, const float *w, const float *b,
                             long M, long K, long N, char *err)
{
    if (bf16in_check(c, K, N, err)) return -1;
    return linear_forward_bf16(c, out, NULL, inp, w, b, M, K, N, err);
}

int nn_linear_backward_bf16in(nn_cache *c, float *dinp, float *dw, float *db, const float *dout,
                              const uint16_t *inp, const float *w, long M, long K, long N, char *err)
{
    if (bf16in_check(c, K, N, err)) return -1;
    return linear_backward(c, dinp, dw, db, dout, NULL, inp, w, M, K, N, 1, err);
}

int nn_linear_is_bf16(const nn_cache *c, long K, long N)
{
    return layer_bf16(c, K, N);
}

int nn_linear_backward_bf16dout(nn_cache *c, float *dinp, float *dw, const uint16_t *dout, const float *inp,
                                const float *w, long M, long K, long N, char *err)
{
    if (bf16in_check(c, K, N, err)) return -1;
    if (!dinp && !dw) return 0;
    return linear_backward_bf16(c, dinp, dw, NULL, NULL, dout, inp, NULL, w, M, K, N, 0, err);
}

int nn_linear_backward_bf16dout_in(nn_cache *c, float *dinp, float *dw, const uint16_t *dout, const uint16_t *inp,
                                   const float *w, long M, long K, long N, int set, char *err)
{
    if (bf16in_check(c, K, N, err)) return -1;
    if (!dinp && !dw) return 0;
    return linear_backward_bf16(c, dinp, dw, NULL, NULL, dout, NULL, inp, w, M, K, N, set, err);
}
