/* bench_dw.c -- the weight-gradient products of the 3D step (issue 17): dW (N,K) = dout^T inp summed
 * over 1024-row chunks, timed on the exact shapes of the batch-32 step.
 *
 * Usage:
 *   bench_dw api [fp32|bf16] [CHUNKS] [REPS]   nn_linear_backward's weight gradient alone (dinp, db
 *       NULL) over CHUNKS x 1024 rows (default 16: the inputs do not fit the caches, as in the step),
 *       per shape: ms per chunk (best of REPS), GFLOP/s, and the step's total (ms per chunk x the
 *       number of chunk products of the shape in one batch-32 step, from the ONEDNN_VERBOSE profile).
 *   bench_dw variants [fp32|bf16] [CHUNKS] [REPS]   one chunk's product, several ways, each on raw
 *       oneDNN matmuls over the same rotating chunks: cur (dout^T 'ba' x inp), swap (inp^T 'ba' x dout
 *       giving dW^T), trA (dout chunk transposed by a oneDNN
 *       reorder, then 'ab' x 'ab'), trA_swap (inp chunk transposed, then inp^T x dout); per variant the
 *       ms per chunk, GFLOP/s and whether its dW bits equal cur's.
 *   bench_dw bits [fp32|bf16]   per shape, a hash of nn_linear_backward's dW over 2.5 chunks at 1, 2,
 *       3, 4, 8 and 16 threads, and whether they agree (exit 2 if not); diff two builds' lines to see
 *       whether a change kept the bits.
 * The inputs start on a 64-byte boundary, or BENCH_DW_OFFSET bytes after one. The thread count is
 * OMP_NUM_THREADS. Run from the worktree after `make all`:
 *   OMP_NUM_THREADS=1 build/bench/bench_dw api fp32; OMP_NUM_THREADS=2 build/bench/bench_dw variants bf16
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "nn.h"

enum { ROWS = 1024 };

/* The step's chunked weight gradients (batch 32, spec configuration): N outputs, K inputs, the chunk
 * products of that shape in one step (fp32 profile /work/wt/v32.txt, 15:03 UTC). */
typedef struct {
    long N, K, calls;
} dw_shape;

static const dw_shape shapes[] = {
    {512, 256, 272}, {96, 512, 256}, {256, 128, 256}, {192, 192, 146}, {384, 96, 80}, {96, 384, 80},
    {288, 96, 80},   {96, 96, 224},  {128, 3, 256},   {192, 96, 72},   {192, 768, 23}, {768, 192, 23},
    {576, 192, 23},  {384, 384, 20}, {384, 192, 18},  {192, 576, 8},   {96, 3, 16},    {192, 3, 11},
    {12288, 192, 3}, {1536, 384, 2}, {384, 1536, 2},  {1152, 384, 2},  {24, 192, 8}};
enum { N_SHAPES = (int)(sizeof shapes / sizeof *shapes) };

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* The inputs' offset in bytes from a 64-byte boundary (BENCH_DW_OFFSET, default 0): the step's
 * activations need not start on a cache line. */
static long input_offset;

static void *filled(long n, unsigned seed, int bf16)
{
    size_t bytes = ((size_t)n * (bf16 ? 2 : 4) + 2 * 64) / 64 * 64;
    char *base = aligned_alloc(64, bytes), *p = base + input_offset;
    for (long i = 0; i < n; i++) {
        float v = frand(&seed);
        if (bf16) {
            uint32_t u;
            memcpy(&u, &v, 4);
            ((uint16_t *)p)[i] = (uint16_t)(u >> 16);
        } else
            ((float *)p)[i] = v;
    }
    return p;
}

static void unfill(void *p)
{
    free((char *)p - input_offset);
}

/* The largest CPU seconds of one OpenMP thread so far (the pool's threads are the ones oneDNN runs on).
 * Under load the wall clock counts other processes' time too; with OMP_WAIT_POLICY=passive a thread
 * waiting at a barrier sleeps, so the busiest thread's CPU time is the wall time the call would take
 * on idle cores (its work and the imbalance between threads, without the waits). */
static double thread_cpu_s[256];

static void read_thread_cpu(void)
{
#pragma omp parallel
    {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        thread_cpu_s[omp_get_thread_num() % 256] = t.tv_sec + 1e-9 * t.tv_nsec;
    }
}

/* The busiest thread's CPU seconds since the last read_thread_cpu (which it does again). */
static double busiest_cpu_s(void)
{
    double before[256], most = 0;
    int n = omp_get_max_threads() < 256 ? omp_get_max_threads() : 256;
    memcpy(before, thread_cpu_s, sizeof before);
    read_thread_cpu();
    for (int i = 0; i < n; i++)
        if (thread_cpu_s[i] - before[i] > most) most = thread_cpu_s[i] - before[i];
    return most;
}

/* ---- api: nn_linear_backward's weight gradient ---- */

static int bench_api(int bf16, long chunks, int reps)
{
    char err[I2P_ERR_LEN];
    dnn_ctx dnn;
    nn_cache c;
    if (dnn_ctx_create(&dnn, err) || nn_cache_init(&c, &dnn, 256, err)) return fprintf(stderr, "%s\n", err), 1;
    if (nn_cache_set_precision(&c, bf16 ? NN_BF16 : NN_FP32, err)) return fprintf(stderr, "%s\n", err), 1;
    double total = 0, total_cpu = 0, total_flop = 0;
    long M = chunks * ROWS;
    printf("api %s, %d threads, %ld rows (%ld chunks), best of %d\n", bf16 ? "bf16" : "fp32", omp_get_max_threads(),
           M, chunks, reps);
    for (int i = 0; i < N_SHAPES; i++) {
        long N = shapes[i].N, K = shapes[i].K;
        float *inp = filled(M * K, 1, 0), *dout = filled(M * N, 3, 0), *dw = calloc(N * K, sizeof *dw);
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r < reps + 1; r++) {
            read_thread_cpu();
            double t0 = omp_get_wtime();
            if (nn_linear_backward(&c, NULL, dw, NULL, dout, inp, NULL, M, K, N, err))
                return fprintf(stderr, "%s\n", err), 1;
            double t = omp_get_wtime() - t0, tc = busiest_cpu_s();
            if (r && t < best) best = t;
            if (r && tc < best_cpu) best_cpu = tc;
        }
        double per = 1e3 * best / chunks, per_cpu = 1e3 * best_cpu / chunks, flop = 2.0 * ROWS * N * K;
        total += per * shapes[i].calls, total_cpu += per_cpu * shapes[i].calls, total_flop += flop * shapes[i].calls;
        printf("  %4ldx1024:1024x%-4ld wall %7.3f ms/chunk %6.1f GFLOP/s, busiest thread CPU %7.3f ms  x%3ld = %7.1f ms "
               "(CPU %7.1f)\n",
               N, K, per, flop / per / 1e6, per_cpu, shapes[i].calls, per * shapes[i].calls,
               per_cpu * shapes[i].calls);
        unfill(inp), unfill(dout), free(dw);
    }
    printf("api total wall %.1f ms (%.1f GFLOP/s), busiest thread CPU %.1f ms\n", total, total_flop / total / 1e6, total_cpu);
    nn_cache_free(&c);
    dnn_ctx_destroy(&dnn);
    return 0;
}

/* ---- bits: nn_linear_backward's weight gradient at several thread counts ---- */

static uint64_t fnv1a(const void *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

/* Per shape, over 2.5 chunks (two full chunks and a partial one), the FNV-1a hash of dW's bytes at 1,
 * 2, 3, 4, 8 and 16 threads (a fresh cache per count), and whether they all agree: compare the lines of
 * two builds to see whether a change kept the bits. */
static int bench_bits(int bf16)
{
    static const int counts[] = {1, 2, 3, 4, 8, 16};
    char err[I2P_ERR_LEN];
    dnn_ctx dnn;
    int differ = 0;
    if (dnn_ctx_create(&dnn, err)) return fprintf(stderr, "%s\n", err), 1;
    printf("bits %s: FNV-1a of dW over 2.5 chunks at 1 2 3 4 8 16 threads\n", bf16 ? "bf16" : "fp32");
    for (int i = 0; i < N_SHAPES; i++) {
        long N = shapes[i].N, K = shapes[i].K, M = 2 * ROWS + ROWS / 2;
        float *inp = filled(M * K, 1, 0), *dout = filled(M * N, 3, 0), *dw = malloc(N * K * sizeof *dw);
        uint64_t h[6];
        for (int t = 0; t < 6; t++) {
            nn_cache c;
            omp_set_num_threads(counts[t]);
            if (nn_cache_init(&c, &dnn, 8, err) || nn_cache_set_precision(&c, bf16 ? NN_BF16 : NN_FP32, err))
                return fprintf(stderr, "%s\n", err), 1;
            for (long j = 0; j < N * K; j++) dw[j] = 0.25f * (float)(j % 7);
            if (nn_linear_backward(&c, NULL, dw, NULL, dout, inp, NULL, M, K, N, err))
                return fprintf(stderr, "%s\n", err), 1;
            h[t] = fnv1a(dw, N * K * sizeof *dw);
            nn_cache_free(&c);
        }
        int same = 1;
        for (int t = 1; t < 6; t++) same &= h[t] == h[0];
        differ |= !same;
        printf("  %4ldx%-4ld %016llx %s\n", N, K, (unsigned long long)h[0], same ? "same at every count" : "DIFFER");
        unfill(inp), unfill(dout), free(dw);
    }
    dnn_ctx_destroy(&dnn);
    return differ ? 2 : 0;
}

/* ---- variants: raw oneDNN ---- */

typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t st;
} raw_ctx;

static int die(const char *what)
{
    fprintf(stderr, "bench_dw: %s failed\n", what);
    return 1;
}

static dnnl_status_t md_strided(dnnl_memory_desc_t *md, long rows, long cols, long s0, long s1,
                                dnnl_data_type_t dt)
{
    dnnl_dims_t d = {rows, cols}, s = {s0, s1};
    return dnnl_memory_desc_init_by_strides(md, 2, d, dt, s);
}

/* A matmul (rows x inner) x (inner x cols), strides given per operand (dst always f32). */
static dnnl_primitive_t matmul(raw_ctx *x, dnnl_data_type_t dt, long rows, long inner, long cols, const long *sa,
                               const long *sb, const long *sc)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    if (md_strided(&a, rows, inner, sa[0], sa[1], dt) || md_strided(&b, inner, cols, sb[0], sb[1], dt) ||
        md_strided(&c, rows, cols, sc[0], sc[1], dnnl_f32) || dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) ||
        dnnl_primitive_desc_create(&pd, &md, NULL, x->eng, NULL) || dnnl_primitive_create(&p, pd))
        return NULL;
    dnnl_primitive_desc_destroy(pd);
    return p;
}

/* A transpose (rows, cols) row-major -> (cols, rows) row-major as a oneDNN reorder. */
static dnnl_primitive_t transposer(raw_ctx *x, dnnl_data_type_t dt, long rows, long cols)
{
    dnnl_memory_desc_t a, b;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    if (md_strided(&a, rows, cols, cols, 1, dt) || md_strided(&b, rows, cols, 1, rows, dt) ||
        dnnl_reorder_primitive_desc_create(&pd, &a, x->eng, &b, x->eng, NULL) || dnnl_primitive_create(&p, pd))
        return NULL;
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static int exec(raw_ctx *x, dnnl_primitive_t p, int n, const int *kinds, void *const *ptr)
{
    dnnl_exec_arg_t a[3];
    for (int i = 0; i < n; i++) {
        const_dnnl_primitive_desc_t pd;
        const dnnl_memory_desc_t *md;
        a[i].arg = kinds[i];
        if (dnnl_primitive_get_primitive_desc(p, &pd)) return -1;
        md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, kinds[i]);
        if (dnnl_memory_create(&a[i].memory, md, x->eng, ptr[i])) return -1;
    }
    int rc = dnnl_primitive_execute(p, x->st, n, a) || dnnl_stream_wait(x->st) ? -1 : 0;
    for (int i = 0; i < n; i++) dnnl_memory_destroy(a[i].memory);
    return rc;
}

enum { V_CUR, V_SWAP, V_TRA, V_TRA_SWAP, N_VARIANTS };
static const char *vname[N_VARIANTS] = {"cur", "swap", "trA", "trA_swap"};

/* One chunk's dW of variant v into dw (N,K) row-major (the dW^T variants transposed back after the
 * clock); buf: N*ROWS or K*ROWS elements for the transposing variants. */
static int run_variant(raw_ctx *x, int v, dnnl_primitive_t mm, dnnl_primitive_t tr, const char *dout,
                       const char *inp, char *buf, float *out)
{
    static const int mmk[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST}, trk[] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    if (v == V_CUR) return exec(x, mm, 3, mmk, (void *[]){(void *)dout, (void *)inp, out});
    if (v == V_SWAP) return exec(x, mm, 3, mmk, (void *[]){(void *)inp, (void *)dout, out});
    if (v == V_TRA)
        return exec(x, tr, 2, trk, (void *[]){(void *)dout, buf}) ||
               exec(x, mm, 3, mmk, (void *[]){buf, (void *)inp, out});
    return exec(x, tr, 2, trk, (void *[]){(void *)inp, buf}) || exec(x, mm, 3, mmk, (void *[]){buf, (void *)dout, out});
}

static int bench_variants(int bf16, long chunks, int reps)
{
    raw_ctx x;
    if (dnnl_engine_create(&x.eng, dnnl_cpu, 0) || dnnl_stream_create(&x.st, x.eng, dnnl_stream_default_flags))
        return die("engine");
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    long es = bf16 ? 2 : 4;
    double tot[N_VARIANTS] = {0}, tot_cpu[N_VARIANTS] = {0};
    printf("variants %s, %d threads, %ld chunks of %d rows, best of %d (wall ms per chunk (busiest thread CPU ms), GFLOP/s, bits vs cur)\n",
           bf16 ? "bf16" : "fp32", omp_get_max_threads(), chunks, ROWS, reps);
    for (int i = 0; i < N_SHAPES; i++) {
        long N = shapes[i].N, K = shapes[i].K, M = chunks * ROWS;
        char *dout = filled(M * N, 3, bf16), *inp = filled(M * K, 1, bf16);
        char *buf = malloc(ROWS * (N > K ? N : K) * es);
        float *ref = malloc(N * K * sizeof *ref), *got = malloc(N * K * sizeof *got), *back = malloc(N * K * 4);
        printf("  %4ldx1024:1024x%-4ld", N, K);
        for (int v = 0; v < N_VARIANTS; v++) {
            dnnl_primitive_t mm = NULL, tr = NULL;
            if (v == V_CUR) mm = matmul(&x, dt, N, ROWS, K, (long[]){1, N}, (long[]){K, 1}, (long[]){K, 1});
            if (v == V_SWAP) mm = matmul(&x, dt, K, ROWS, N, (long[]){1, K}, (long[]){N, 1}, (long[]){N, 1});
            if (v == V_TRA) {
                mm = matmul(&x, dt, N, ROWS, K, (long[]){ROWS, 1}, (long[]){K, 1}, (long[]){K, 1});
                tr = transposer(&x, dt, ROWS, N);
            }
            if (v == V_TRA_SWAP) {
                mm = matmul(&x, dt, K, ROWS, N, (long[]){ROWS, 1}, (long[]){N, 1}, (long[]){N, 1});
                tr = transposer(&x, dt, ROWS, K);
            }
            if (!mm || ((v == V_TRA || v == V_TRA_SWAP) && !tr)) return die(vname[v]);
            double best = 1e30, best_cpu = 1e30;
            for (int r = 0; r < reps + 1; r++) {
                double t0 = omp_get_wtime(), tc = 0;
                read_thread_cpu();
                for (long j = 0; j < chunks; j++) {
                    if (run_variant(&x, v, mm, tr, dout + j * ROWS * N * es, inp + j * ROWS * K * es, buf, got))
                        return die(vname[v]);
                    tc += busiest_cpu_s();
                }
                double t = omp_get_wtime() - t0;
                if (r && t < best) best = t;
                if (r && tc < best_cpu) best_cpu = tc;
            }
            /* the bits of chunk 0 */
            if (run_variant(&x, v, mm, tr, dout, inp, buf, got)) return die(vname[v]);
            int transposed = v == V_SWAP || v == V_TRA_SWAP;
            for (long n = 0; n < N; n++)
                for (long k = 0; k < K; k++) back[n * K + k] = transposed ? got[k * N + n] : got[n * K + k];
            if (v == V_CUR) memcpy(ref, back, N * K * sizeof *ref);
            double per = 1e3 * best / chunks, per_cpu = 1e3 * best_cpu / chunks;
            tot[v] += per * shapes[i].calls, tot_cpu[v] += per_cpu * shapes[i].calls;
            printf(" %s %6.3f (%6.3f) %5.1f %s |", vname[v], per, per_cpu, 2.0 * ROWS * N * K / per / 1e6,
                   memcmp(ref, back, N * K * sizeof *ref) ? "DIFF" : "same");
            dnnl_primitive_destroy(mm);
            if (tr) dnnl_primitive_destroy(tr);
        }
        printf("\n");
        fflush(stdout);
        unfill(dout), unfill(inp), free(buf), free(ref), free(got), free(back);
    }
    printf("variants step totals, wall (busiest thread CPU) ms:");
    for (int v = 0; v < N_VARIANTS; v++) printf(" %s %.1f (%.1f)", vname[v], tot[v], tot_cpu[v]);
    printf("\n");
    dnnl_stream_destroy(x.st);
    dnnl_engine_destroy(x.eng);
    return 0;
}

int main(int argc, char **argv)
{
    int bf16 = argc > 2 && !strcmp(argv[2], "bf16");
    input_offset = getenv("BENCH_DW_OFFSET") ? atol(getenv("BENCH_DW_OFFSET")) % 64 : 0;
    long chunks = argc > 3 ? atol(argv[3]) : 16;
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    if (argc > 1 && !strcmp(argv[1], "api")) return bench_api(bf16, chunks, reps);
    if (argc > 1 && !strcmp(argv[1], "variants")) return bench_variants(bf16, chunks, reps);
    if (argc > 1 && !strcmp(argv[1], "bits")) return bench_bits(bf16);
    fprintf(stderr, "usage: bench_dw api|variants|bits [fp32|bf16] [CHUNKS] [REPS]\n");
    return 2;
}
