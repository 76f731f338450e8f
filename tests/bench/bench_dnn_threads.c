/* bench_dnn_threads.c -- which oneDNN primitive of the 3D step gives thread-count dependent bits:
 * runs each nn_* operation alone on the step's shapes at 1 and at N threads (a fresh nn_cache per
 * thread count, created after omp_set_num_threads) on the same inputs and prints, per operation and
 * output, whether the bits agree, the number of differing floats and the largest difference.
 * Usage: bench_dnn_threads [tiny|spec] [N] (default tiny 2); bench_dnn_threads linear N M K N': one
 * linear backward; bench_dnn_threads time N M K N' REPS: the best time of nn_linear_backward's weight
 * gradient alone; time_any N M K N' REPS: the same product as one matmul in `any` layouts.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "nn.h"

typedef struct {
    const char *what;
    long a, b, c, d; /* shape: linear M K N; norms M C; attention B T C H */
} probe_case;

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *filled(long n, unsigned seed)
{
    float *p = malloc(n * sizeof *p);
    for (long i = 0; i < n; i++) p[i] = frand(&seed);
    return p;
}

/* Runs one case at nthr threads; outputs (each zero-initialised, gradients accumulate) in out[]. */
static int run_case(dnn_ctx *dnn, const probe_case *pc, int nthr, float **out, long *n_out, char *err)
{
    omp_set_num_threads(nthr);
    nn_cache c;
    if (nn_cache_init(&c, dnn, 16, err)) return -1;
    int rc = -1;
    if (!strcmp(pc->what, "linear")) {
        long M = pc->a, K = pc->b, N = pc->c;
        float *inp = filled(M * K, 1), *w = filled(N * K, 2), *dout = filled(M * N, 3);
        n_out[0] = M * K, n_out[1] = N * K, n_out[2] = N;
        for (int i = 0; i < 3; i++) out[i] = calloc(n_out[i], sizeof(float));
        rc = nn_linear_backward(&c, out[0], out[1], out[2], dout, inp, w, M, K, N, err);
        free(inp), free(w), free(dout);
    } else if (!strcmp(pc->what, "layernorm") || !strcmp(pc->what, "batchnorm")) {
        int ln = !strcmp(pc->what, "layernorm");
        long M = pc->a, C = pc->b, ns = ln ? M : C;
        float *inp = filled(M * C, 1), *w = filled(C, 2), *b = filled(C, 3), *dout = filled(M * C, 4);
        float *y = malloc(M * C * sizeof *y), *mean = malloc(ns * sizeof *mean), *var = malloc(ns * sizeof *var);
        n_out[0] = M * C, n_out[1] = C, n_out[2] = C;
        for (int i = 0; i < 3; i++) out[i] = calloc(n_out[i], sizeof(float));
        if (ln)
            rc = nn_layernorm_forward(&c, y, mean, var, inp, w, b, M, C, err) ||
                 nn_layernorm_backward(&c, out[0], out[1], out[2], dout, inp, w, b, mean, var, M, C, err);
        else
            rc = nn_batchnorm_forward_train(&c, y, mean, var, inp, w, b, NULL, NULL, M, C, err) ||
                 nn_batchnorm_backward(&c, out[0], out[1], out[2], dout, inp, w, b, mean, var, M, C, err);
        rc = rc ? -1 : 0;
        free(inp), free(w), free(b), free(dout), free(y), free(mean), free(var);
    } else { /* attention */
        long B = pc->a, T = pc->b, C = pc->c, H = pc->d;
        float *qkv = filled(B * T * 3 * C, 1), *dout = filled(B * T * C, 2);
        float *o = malloc(B * T * C * sizeof *o), *att = malloc(B * H * T * T * sizeof *att);
        n_out[0] = B * T * 3 * C, n_out[1] = B * T * C, n_out[2] = 0;
        out[0] = calloc(n_out[0], sizeof(float));
        out[1] = o, out[2] = NULL;
        rc = nn_attention_forward(&c, o, att, qkv, NULL, B, T, C, H, err) ||
             nn_attention_backward(&c, out[0], dout, qkv, att, B, T, C, H, err);
        rc = rc ? -1 : 0;
        free(qkv), free(dout), free(att);
    }
    nn_cache_free(&c);
    return rc;
}


/* the tiny test network's shapes (tests/e2e/pretrain_lib.sh, batch 8) and the spec's largest */
static const probe_case tiny[] = {
    {"linear", 512, 12, 12, 0},    {"linear", 2048, 3, 8, 0},     {"linear", 256, 24, 24, 0},
    {"linear", 128, 24, 24, 0},    {"linear", 64, 48, 192, 0},    {"linear", 64, 24, 96, 0},
    {"linear", 16, 48, 48, 0},     {"layernorm", 128, 24, 0, 0},  {"layernorm", 256, 12, 0, 0},
    {"layernorm", 16, 48, 0, 0},   {"batchnorm", 128, 24, 0, 0},  {"batchnorm", 512, 12, 0, 0},
    {"batchnorm", 2048, 32, 0, 0}, {"batchnorm", 256, 48, 0, 0},  {"attention", 8, 32, 24, 2},
    {"attention", 8, 8, 48, 2}};
static const probe_case big[] = {
    {"linear", 65536, 512, 96, 0},   {"linear", 65536, 256, 512, 0}, {"linear", 65536, 3, 128, 0},
    {"linear", 4096, 96, 384, 0},    {"linear", 4096, 384, 96, 0},   {"linear", 1024, 192, 768, 0},
    {"layernorm", 4096, 96, 0, 0},   {"layernorm", 1024, 192, 0, 0}, {"batchnorm", 65536, 128, 0, 0},
    {"batchnorm", 65536, 256, 0, 0}, {"attention", 8, 512, 96, 6}};

static int run_cases(const probe_case *cases, int n, int nthr);

/* Seconds of dW (N,K) = dout^T (N,M) x inp (M,K) as one oneDNN matmul with every layout `any` (what
 * oneDNN would choose if the reorders into it were free), executed alone on its own buffers. */
static int time_dw_any(int nthr, long M, long K, long N, int reps)
{
    omp_set_num_threads(nthr);
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dnnl_memory_desc_t s, w, d;
    dnnl_dims_t ds = {N, M}, dw = {M, K}, dd = {N, K};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) || dnnl_stream_create(&st, eng, dnnl_stream_default_flags) ||
        dnnl_memory_desc_init_by_tag(&s, 2, ds, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&w, 2, dw, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&d, 2, dd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_matmul_desc_init(&md, &s, &w, NULL, &d) || dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) ||
        dnnl_primitive_create(&prim, pd))
        return fprintf(stderr, "time_any: oneDNN setup failed\n"), 1;
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    int kinds[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    dnnl_exec_arg_t args[3];
    for (int i = 0; i < 3; i++) {
        args[i].arg = kinds[i];
        if (dnnl_memory_create(&args[i].memory, dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, kinds[i]),
                               eng, DNNL_MEMORY_ALLOCATE))
            return 1;
        void *h = NULL;
        dnnl_memory_get_data_handle(args[i].memory, &h);
        memset(h, 0, dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, kinds[i])));
    }
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = omp_get_wtime(), c0 = (double)clock() / CLOCKS_PER_SEC;
        dnnl_primitive_execute(prim, st, 3, args);
        dnnl_stream_wait(st);
        double t = omp_get_wtime() - t0, tc = ((double)clock() / CLOCKS_PER_SEC - c0) / nthr;
        if (r && t < best) best = t;
        if (r && tc < best_cpu) best_cpu = tc;
    }
    printf("dw any %ld x %ld x %ld (%s), %d threads: best of %d: %.2f ms (CPU / threads %.2f ms)\n", M, K, N, impl,
           nthr, reps, 1e3 * best, 1e3 * best_cpu);
    for (int i = 0; i < 3; i++) dnnl_memory_destroy(args[i].memory);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return 0;
}

/* Seconds (wall, and process CPU / threads) of nn_linear_backward's weight gradient alone. */
static int time_dw(int nthr, long M, long K, long N, int reps)
{
    char err[I2P_ERR_LEN];
    dnn_ctx dnn;
    nn_cache c;
    omp_set_num_threads(nthr);
    if (dnn_ctx_create(&dnn, err) || nn_cache_init(&c, &dnn, 8, err)) return fprintf(stderr, "%s\n", err), 1;
    float *inp = filled(M * K, 1), *dout = filled(M * N, 3), *dw = calloc(N * K, sizeof *dw);
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = omp_get_wtime(), c0 = (double)clock() / CLOCKS_PER_SEC;
        if (nn_linear_backward(&c, NULL, dw, NULL, dout, inp, NULL, M, K, N, err))
            return fprintf(stderr, "%s\n", err), 1;
        double t = omp_get_wtime() - t0, tc = ((double)clock() / CLOCKS_PER_SEC - c0) / nthr;
        if (r && t < best) best = t;
        if (r && tc < best_cpu) best_cpu = tc;
    }
    printf("dw %ld x %ld x %ld, %d threads: best of %d: %.2f ms (CPU / threads %.2f ms)\n", M, K, N, nthr, reps,
           1e3 * best, 1e3 * best_cpu);
    free(inp), free(dout), free(dw);
    nn_cache_free(&c);
    dnn_ctx_destroy(&dnn);
    return 0;
}

int main(int argc, char **argv)
{
    int nthr = argc > 2 ? atoi(argv[2]) : 2;
    if (argc > 5 && !strcmp(argv[1], "linear")) { /* bench_dnn_threads linear N M K N' */
        probe_case one = {"linear", atol(argv[3]), atol(argv[4]), atol(argv[5]), 0};
        return run_cases(&one, 1, nthr);
    }
    if (argc > 6 && !strcmp(argv[1], "time")) /* bench_dnn_threads time N M K N' REPS: dw alone */
        return time_dw(nthr, atol(argv[3]), atol(argv[4]), atol(argv[5]), atoi(argv[6]));
    if (argc > 6 && !strcmp(argv[1], "time_any")) /* the same product, src / weights / dst `any` */
        return time_dw_any(nthr, atol(argv[3]), atol(argv[4]), atol(argv[5]), atoi(argv[6]));
    if (argc > 1 && !strcmp(argv[1], "spec")) return run_cases(big, (int)(sizeof big / sizeof *big), nthr);
    return run_cases(tiny, (int)(sizeof tiny / sizeof *tiny), nthr);
}

/* Runs cases at 1 and nthr threads, prints one line per output; 2 if any differ. */
static int run_cases(const probe_case *cases, int n, int nthr)
{
    char err[I2P_ERR_LEN];
    dnn_ctx dnn;
    if (dnn_ctx_create(&dnn, err)) return fprintf(stderr, "%s\n", err), 1;
    static const char *names[] = {"dinp", "dw", "db"};
    int differ = 0;
    for (int i = 0; i < n; i++) {
        float *o1[3], *on[3];
        long n1[3], nn_[3];
        if (run_case(&dnn, &cases[i], 1, o1, n1, err) || run_case(&dnn, &cases[i], nthr, on, nn_, err))
            return fprintf(stderr, "%s\n", err), 1;
        for (int j = 0; j < 3; j++) {
            if (!n1[j]) continue;
            long bad = 0;
            double md = 0;
            for (long k = 0; k < n1[j]; k++)
                if (memcmp(&o1[j][k], &on[j][k], sizeof(float))) {
                    bad++;
                    double d = fabs((double)o1[j][k] - on[j][k]);
                    if (d > md) md = d;
                }
            differ |= bad > 0;
            printf("%-9s %6ld %4ld %4ld %2ld %-6s 1 vs %d threads: %s (%ld of %ld differ, max %.3g)\n",
                   cases[i].what, cases[i].a, cases[i].b, cases[i].c, cases[i].d,
                   !strcmp(cases[i].what, "attention") && j == 1 ? "out" : names[j], nthr,
                   bad ? "DIFFER" : "same", bad, n1[j], md);
            free(o1[j]), free(on[j]);
        }
    }
    dnn_ctx_destroy(&dnn);
    return differ ? 2 : 0;
}
