/* bench_wlayout.c -- the weight layout of the linear layers' forward and backward-data matmuls
 * (issue 17): for each shape of the 3D step's big products, the best time of one oneDNN matmul with
 * the weights described 'ab', 'ba' or format_tag any (reordered once, the reorder timed apart), with
 * and without the sum post-op (accumulation into dst), and by row blocks, plus an FNV hash of each
 * output so that runs at 1 and 2 threads (and layouts) can be compared bit for bit.
 * Usage: bench_wlayout f32|bf16 REPS [M_SCALE] [ROWBLOCK] [NAME]  (M_SCALE divides the
 * rows, default 1; NAME: only the shapes whose name contains it)
 * Product: dst (M,N') = src (M,K') x wei (K',N'), the weights stored (N',K') ("w", an (out, in)
 * layer weight: forward) or (K',N') ("wT": backward data dX = dY W); described by strides.
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnn.h"
#include "nn.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* the largest per-thread CPU time since the last call (run with OMP_WAIT_POLICY=passive, so that a
 * thread waiting for the others sleeps): the 2-thread wall time the work would take on an idle
 * machine, which a loaded machine's wall time does not show */
static double tcpu_last[64];
static double thread_max(void)
{
    double now_t[64] = {0}, mx = 0;
#pragma omp parallel
    {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        now_t[omp_get_thread_num()] = t.tv_sec + 1e-9 * t.tv_nsec;
    }
    for (int i = 0; i < omp_get_max_threads(); i++) {
        double d = now_t[i] - tcpu_last[i];
        if (d > mx) mx = d;
        tcpu_last[i] = now_t[i];
    }
    return mx;
}

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void fill(float *p, long n, unsigned s)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        unsigned x = (unsigned)i * 2654435761u + s * 97u;
        x ^= x >> 13;
        x *= 0x5bd1e995u;
        x ^= x >> 15;
        p[i] = (float)(x & 0xffff) / 65536.0f - 0.5f;
    }
}

static char err[256];

static void die(const char *what)
{
    fprintf(stderr, "bench_wlayout: %s: %s\n", what, err);
    exit(1);
}

typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t m[5];
    int n;
    int args[5];
    void *scratch;
} mm;

/* wlay: 0 'ab' (rows K), 1 'ba', 2 any */
static dnnl_memory_desc_t make_mm(dnn_ctx *d, mm *o, long M, long K, long N, dnnl_data_type_t dt, int wlay, int acc)
{
    dnnl_memory_desc_t s, w, dst, wq;
    dnnl_dims_t sd = {M, K}, ss = {K, 1}, wd = {K, N}, wsab = {N, 1}, wsba = {1, K}, dd = {M, N}, ds = {N, 1};
    if (dnn_check(dnnl_memory_desc_init_by_strides(&s, 2, sd, dt, ss), "s", err)) die("md");
    if (wlay == 2) {
        if (dnn_check(dnnl_memory_desc_init_by_tag(&w, 2, wd, dt, dnnl_format_tag_any), "w", err)) die("md");
    } else if (dnn_check(dnnl_memory_desc_init_by_strides(&w, 2, wd, dt, wlay ? wsba : wsab), "w", err))
        die("md");
    if (dnn_check(dnnl_memory_desc_init_by_strides(&dst, 2, dd, dnnl_f32, ds), "d", err)) die("md");
    dnnl_matmul_desc_t md;
    if (dnn_check(dnnl_matmul_desc_init(&md, &s, &w, NULL, &dst), "desc", err)) die("desc");
    dnnl_primitive_attr_t attr;
    dnn_attr_user_scratchpad(&attr, err);
    if (acc) {
        dnnl_post_ops_t po;
        dnnl_post_ops_create(&po);
        dnnl_post_ops_append_sum(po, 1.0f);
        dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    if (dnn_pd_create(d, &pd, &md, attr, NULL, "pd", err)) die("pd");
    dnnl_primitive_attr_destroy(attr);
    if (dnn_check(dnnl_primitive_create(&o->prim, pd), "prim", err)) die("prim");
    int a[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    for (int i = 0; i < 3; i++) {
        o->args[i] = a[i];
        dnn_memory(d, &o->m[i], dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a[i]), DNNL_MEMORY_NONE,
                   "mem", err);
    }
    o->n = 3;
    wq = *dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS);
    size_t sb = 0;
    const dnnl_memory_desc_t *smd = dnn_scratchpad_md(pd, &sb);
    if (smd) {
        o->scratch = dnn_alloc(sb);
        o->args[3] = DNNL_ARG_SCRATCHPAD;
        dnn_memory(d, &o->m[3], smd, o->scratch, "scr", err);
        o->n = 4;
    }
    static int shown;
    if (shown++ < 1 && wlay == 2) {
        const dnnl_blocking_desc_t *b = &wq.format_desc.blocking;
        fprintf(stderr, "  [%s any -> kind %d strides %ld,%ld blocks", dnn_impl_name(pd), (int)wq.format_kind,
                (long)b->strides[0], (long)b->strides[1]);
        for (int k = 0; k < b->inner_nblks; k++) fprintf(stderr, " %ld%c", (long)b->inner_blks[k], 'a' + (int)b->inner_idxs[k]);
        fprintf(stderr, " extra %d]\n", (int)wq.extra.flags);
    }
    dnnl_primitive_desc_destroy(pd);
    return wq;
}

static void run(dnn_ctx *d, mm *o, void *s, void *w, void *dst)
{
    void *p[] = {s, w, dst};
    for (int i = 0; i < 3; i++) dnn_bind(o->m[i], p[i], "bind", err);
    dnnl_exec_arg_t ea[5];
    for (int i = 0; i < o->n; i++) ea[i] = (dnnl_exec_arg_t){o->args[i], o->m[i]};
    if (dnn_execute(d, o->prim, o->n, ea, "exec", err) || dnn_wait(d, "wait", err)) die("exec");
}

static void free_mm(mm *o)
{
    for (int i = 0; i < o->n; i++) dnnl_memory_destroy(o->m[i]);
    dnnl_primitive_destroy(o->prim);
    free(o->scratch);
}

typedef struct {
    const char *name;
    long M, K, N; /* the matmul's dims */
    int bwd;      /* weights stored (K,N) row-major (dX = dY W) rather than (N,K) */
} shape;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_wlayout f32|bf16 REPS [M_SCALE] [ROWBLOCK]\n");
        return 2;
    }
    dnnl_data_type_t dt = strcmp(argv[1], "bf16") ? dnnl_f32 : dnnl_bf16;
    int reps = atoi(argv[2]);
    long scale = argc > 3 ? atol(argv[3]) : 1, rb = argc > 4 ? atol(argv[4]) : 16384;
    dnn_ctx d;
    if (dnn_ctx_create(&d, err)) die("ctx");
    const shape sh[] = {
        {"fwd 256->512", 262144, 256, 512, 0}, {"bwd 512->256", 262144, 512, 256, 1},
        {"fwd 512->96", 262144, 512, 96, 0},   {"bwd 96->512", 262144, 96, 512, 1},
        {"fwd 128->256", 262144, 128, 256, 0}, {"bwd 256->128", 262144, 256, 128, 1},
        {"fwd 16k 96->384", 16384, 96, 384, 0}, {"bwd 16k 384->96", 16384, 384, 96, 1},
        {"bwd 16k 96->384", 16384, 96, 384, 1}, {"bwd 16k 512->256", 16384, 512, 256, 1},
    };
    printf("threads %d dt %s reps %d scale %ld rowblock %ld\n", omp_get_max_threads(), argv[1], reps, scale, rb);
    for (size_t i = 0; i < sizeof sh / sizeof *sh; i++) {
        if (argc > 5 && !strstr(sh[i].name, argv[5])) continue;
        long M = sh[i].M / (sh[i].M > 16384 ? scale : 1), K = sh[i].K, N = sh[i].N;
        long es = dt == dnnl_bf16 ? 2 : 4;
        float *sf = dnn_alloc(4 * M * K), *wf = dnn_alloc(4 * K * N), *dst = dnn_alloc(4 * M * N);
        fill(sf, M * K, 1);
        fill(wf, K * N, 2);
        void *src = sf, *wst = wf;
        if (dt == dnnl_bf16) {
            uint16_t *sb = dnn_alloc(2 * M * K), *wb = dnn_alloc(2 * K * N);
            nn_to_bf16(sb, sf, M * K);
            nn_to_bf16(wb, wf, K * N);
            src = sb;
            wst = wb;
        }
        /* the stored weights: (N,K) row-major for fwd (natural layout 'ba' of the (K,N) operand),
         * (K,N) row-major for bwd ('ab'); the other layout is its transpose */
        int nat = sh[i].bwd ? 0 : 1;
        void *wtr = dnn_alloc(es * K * N);
        for (long r = 0; r < K; r++)
            for (long c = 0; c < N; c++) {
                /* natural index and transposed index of element (r,c) of the (K,N) operand */
                long in = nat ? c * K + r : r * N + c, it = nat ? r * N + c : c * K + r;
                if (es == 4) ((float *)wtr)[it] = ((float *)wst)[in];
                else ((uint16_t *)wtr)[it] = ((uint16_t *)wst)[in];
            }
        double gf = 2.0 * M * K * N * 1e-9;
        printf("%-18s M %6ld K %4ld N %4ld\n", sh[i].name, M, K, N);
        uint64_t h0 = 0;
        for (int acc = 0; acc < 2; acc++)
            for (int lay = 0; lay < 3; lay++) {
                mm o;
                dnnl_memory_desc_t wq = make_mm(&d, &o, M, K, N, dt, lay, acc);
                void *w = lay == nat ? wst : wtr;
                double treo = 0;
                void *wany = NULL;
                if (lay == 2) {
                    wany = dnn_alloc(dnnl_memory_desc_get_size(&wq));
                    dnnl_memory_desc_t wn;
                    dnnl_dims_t wd = {K, N}, wsn = {nat ? 1 : N, nat ? K : 1};
                    dnnl_memory_desc_init_by_strides(&wn, 2, wd, dt, wsn);
                    dnnl_memory_t a, b;
                    dnn_memory(&d, &a, &wn, wst, "a", err);
                    dnn_memory(&d, &b, &wq, wany, "b", err);
                    treo = 1e9;
                    for (int r = 0; r < 5; r++) {
                        double t0 = now();
                        if (dnn_reorder_once(&d, a, b, "reorder", err)) die("reorder");
                        double t = now() - t0;
                        if (t < treo) treo = t;
                    }
                    dnnl_memory_destroy(a);
                    dnnl_memory_destroy(b);
                    w = wany;
                }
                double best = 1e9, cbest = 1e9;
                uint64_t h = 0;
                for (int r = 0; r < reps; r++) {
                    memset(dst, 0, 4 * M * N);
                    thread_max();
                    double t0 = now();
                    run(&d, &o, src, w, dst);
                    double t = now() - t0, ct = thread_max();
                    if (t < best) best = t;
                    if (ct < cbest) cbest = ct;
                    if (r == 0) h = fnv(dst, 4 * M * N);
                }
                free_mm(&o);
                /* row blocks of rb rows (same layout), one primitive */
                double bbest = 1e9, bcbest = 1e9;
                uint64_t hb = 0;
                if (M > rb && M % rb == 0) {
                    mm ob;
                    make_mm(&d, &ob, rb, K, N, dt, lay, acc);
                    for (int r = 0; r < reps; r++) {
                        memset(dst, 0, 4 * M * N);
                        thread_max();
                        double t0 = now();
                        for (long r0 = 0; r0 < M; r0 += rb)
                            run(&d, &ob, (char *)src + r0 * K * es, w, dst + r0 * N);
                        double t = now() - t0, ct = thread_max();
                        if (t < bbest) bbest = t;
                        if (ct < bcbest) bcbest = ct;
                        if (r == 0) hb = fnv(dst, 4 * M * N);
                    }
                    free_mm(&ob);
                }
                if (!acc && lay == 0) h0 = h;
                static const char *ln[] = {"ab", "ba", "any"};
                printf("  %-3s %-3s wall %7.2f ms %6.1f GF/s tmax %7.2f ms %6.1f GF/s hash %016llx%s | rows %ld: wall %7.2f "
                       "tmax %7.2f ms%s",
                       ln[lay], acc ? "sum" : "set", best * 1e3, gf / best, cbest * 1e3, gf / cbest, (unsigned long long)h,
                       h == h0 ? " =" : " !", rb, bbest * 1e3, bcbest * 1e3, hb == h ? " =" : " !");
                if (lay == 2) printf(" | reorder %.3f ms", treo * 1e3);
                printf("\n");
                fflush(stdout);
                free(wany);
            }
        free(wtr);
        if (src != sf) {
            free(src);
            free(wst);
        }
        free(sf);
        free(wf);
        free(dst);
    }
    dnn_ctx_destroy(&d);
    return 0;
}
