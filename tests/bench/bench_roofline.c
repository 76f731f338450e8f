/* bench_roofline.c -- the raw figures of the roofline table (docs/performance.md), read by
 * tests/bench/roofline.py; run by tests/bench/bench_roofline.sh with ONEDNN_VERBOSE=1.
 *
 * Usage: bench_roofline VIT_BATCH M3_BATCH [fp32|bf16]
 *
 * Phases, each opened by a line "roofline phase NAME load L" (L = 1-minute load average):
 *  vit_insitu  a ViT-B/16 forward (random:base) at VIT_BATCH after a warm-up forward (INSITU_REPS
 *              times, one phase line each): oneDNN's verbose exec lines of this phase are "our"
 *              per-primitive times;
 *  vit_alone   each primitive of that forward's plan executed alone, in a loop, on its own buffers;
 *  m3_insitu   a training step of the 3D network (INSITU_REPS times) (spec configuration, synthetic inputs as in
 *              bench_train_step.c) at M3_BATCH after a warm-up step, then one AdamW update;
 *  m3_alone    each primitive of the step's cache executed alone;
 *  kernels     the hand-written kernels of the step (FPS, kNN at the three scales, Chamfer, AdamW)
 *              and the projection of extract, timed alone at the same sizes, and a copy bandwidth.
 * Lines written here (everything else on stdout is oneDNN's verbose output):
 *  roofline total PHASE SECONDS, and PHASE_cpu: process CPU seconds / threads
 *  roofline alone LABEL FLOPS BYTES IMPL        a primitive timed alone, then its verbose exec
 *                                                lines (the first one names it for roofline.py),
 *  roofline alone_ms LABEL MS CPU_MS             then its best time, and its best process CPU
 *                                                time / threads (less sensitive to the load);
 *  roofline any LABEL FLOPS BYTES IMPL, roofline any_ms LABEL MS: the same matmul with
 *                                                src/weights/dst in format `any`;
 *  roofline kernel NAME FLOPS BYTES MS CALLS    a hand-written kernel: MS per call, CALLS per step
 *  roofline copy_gbs X
 * MS of "alone" and "kernel" is the best of several runs (the machine is shared).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnn.h"
#include "errors.h"
#include "losses.h"
#include "model3d.h"
#include "model3d_impl.h"
#include "optim.h"
#include "pointops.h"
#include "project.h"
#include "rng.h"
#include "support_bench.h"
#include "vit.h"
#include "vit_model.h"
#include "vit_plan.h"

static double load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static void phase(const char *name)
{
    printf("roofline phase %s load %.2f\n", name, load1());
    fflush(stdout);
}

static dnn_ctx ctx;

/* Measured forwards / steps after the warm-up one (roofline.py keeps, per primitive, its smallest
 * per-run sum: the machine is shared). */
#define INSITU_REPS 3

/* The execution arguments a primitive may take (binary post-ops are not used here). */
static const int cand_args[] = {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_SRC_2, DNNL_ARG_WEIGHTS,
                                DNNL_ARG_BIAS, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                                DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_WORKSPACE, DNNL_ARG_DIFF_SRC,
                                DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS,
                                DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT, DNNL_ARG_SCRATCHPAD,
                                /* the binary post-ops' second inputs (the attention's key and pair biases) */
                                DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                                DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1};
#define N_CAND ((int)(sizeof cand_args / sizeof cand_args[0]))

static double md_elems(const dnnl_memory_desc_t *md)
{
    double n = 1;
    for (int i = 0; i < md->ndims; i++) n *= (double)md->dims[i];
    return n;
}

/* 2*M*K*N of a (batched) matmul primitive: dst elements x the reduced dimension of src. */
static double matmul_flops(const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *s = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                             *d = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if (!s || !d || s->ndims < 2) return 0;
    return 2.0 * md_elems(d) * (double)s->dims[s->ndims - 1];
}

static int is_matmul(const_dnnl_primitive_desc_t pd)
{
    dnnl_primitive_kind_t k = dnnl_undefined_primitive;
    dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &k);
    return k == dnnl_matmul;
}

/* Executes prim alone on buffers of its own (filled with 0.25: positive variances, finite
 * everything) until 0.5 s or 60 runs (at least 8 after 2 warm-ups); prints one line; returns the best
 * milliseconds. bytes = every argument's size but the scratchpad. */
static double time_alone(const char *tag, const char *label, const_dnnl_primitive_t prim)
{
    const_dnnl_primitive_desc_t pd = NULL;
    char err[I2P_ERR_LEN];
    if (dnn_check(dnnl_primitive_get_primitive_desc(prim, &pd), "pd", err)) {
        fprintf(stderr, "roofline: %s\n", err);
        return -1;
    }
    dnnl_exec_arg_t args[N_CAND];
    void *bufs[N_CAND];
    int n = 0;
    double bytes = 0;
    for (int i = 0; i < N_CAND; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, cand_args[i]);
        if (!md || md->ndims == 0) continue;
        size_t sz = dnnl_memory_desc_get_size(md);
        if (sz == 0) continue;
        float *b = dnn_alloc(sz);
        if (!b) { fprintf(stderr, "roofline: out of memory\n"); exit(1); }
        for (size_t j = 0; j < sz / sizeof(float); j++) b[j] = 0.25f;
        if (cand_args[i] != DNNL_ARG_SCRATCHPAD) bytes += (double)sz;
        bufs[n] = b;
        args[n].arg = cand_args[i];
        if (dnn_memory(&ctx, &args[n].memory, md, b, "alone memory", err)) {
            fprintf(stderr, "roofline: %s\n", err);
            exit(1);
        }
        n++;
    }
    double flops = is_matmul(pd) ? matmul_flops(pd) : 0, best = 1e30, best_cpu = 1e30, spent = 0;
    printf("roofline %s %s %.0f %.0f %s\n", tag, label, flops, bytes, dnn_impl_name(pd));
    fflush(stdout);
    for (int r = 0; r < 60 && (r < 10 || spent < 0.5); r++) {
        double t0 = bench_now_s(), c0 = bench_cpu_s();
        if (dnn_execute(&ctx, prim, n, args, "alone", err) || dnn_wait(&ctx, "alone", err)) {
            fprintf(stderr, "roofline: %s: %s\n", label, err);
            exit(1);
        }
        double dt = bench_now_s() - t0, dc = bench_cpu_s() - c0;
        if (r >= 2 && dt < best) best = dt;
        if (r >= 2 && dc < best_cpu) best_cpu = dc;
        spent += dt;
    }
    fflush(stdout);
    printf("roofline %s_ms %s %.5f %.5f\n", tag, label, 1e3 * best, 1e3 * best_cpu / omp_get_max_threads());
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        dnnl_memory_destroy(args[i].memory);
        free(bufs[i]);
    }
    return 1e3 * best;
}

/* The same matmul with src, weights and dst in format `any` (oneDNN picks the layout), timed alone. */
static void time_any(const char *label, const_dnnl_primitive_t prim)
{
    const_dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success || !is_matmul(pd)) return;
    const_dnnl_op_desc_t od = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_matmul_d, 0, &od) != dnnl_success || !od) return;
    dnnl_matmul_desc_t d = *(const dnnl_matmul_desc_t *)od;
    dnnl_memory_desc_t *mds[] = {&d.src_desc, &d.weights_desc, &d.dst_desc};
    for (int i = 0; i < 3; i++) {
        dnnl_memory_desc_t a;
        if (dnnl_memory_desc_init_by_tag(&a, mds[i]->ndims, mds[i]->dims, mds[i]->data_type,
                                         dnnl_format_tag_any) != dnnl_success)
            return;
        *mds[i] = a;
    }
    const_dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_get_attr(pd, &attr);
    dnnl_primitive_desc_t pd2 = NULL;
    dnnl_primitive_t p2 = NULL;
    if (dnnl_primitive_desc_create(&pd2, &d, attr, ctx.engine, NULL) != dnnl_success) return;
    if (dnnl_primitive_create(&p2, pd2) == dnnl_success) {
        time_alone("any", label, p2);
        dnnl_primitive_destroy(p2);
    }
    dnnl_primitive_desc_destroy(pd2);
}

/* ---- the ViT ---- */
static int vit_part(int B, vit_precision prec)
{
    char err[I2P_ERR_LEN], sha[65];
    vit_model *m = NULL;
    if (vit_load(&m, "random:base", prec, &ctx, sha, err)) { fprintf(stderr, "roofline: %s\n", err); return -1; }
    const int S = 224, depth = vit_get_config(m)->depth;
    float *img = malloc(sizeof(float) * (size_t)B * 3 * S * S),
          *tok = malloc(sizeof(float) * (size_t)vit_token_floats(m, B)),
          *cls = malloc(sizeof(float) * (size_t)B * 1024);
    rng_t r;
    rng_seed(&r, 2, 0);
    for (long i = 0; i < (long)B * 3 * S * S; i++) img[i] = (float)rng_normal(&r);
    for (int it = 0; it < 1 + INSITU_REPS; it++) {
        if (it >= 1) phase("vit_insitu");
        double t0 = bench_now_s(), c0 = bench_cpu_s();
        if (vit_embed(m, B, img, tok, err) || vit_blocks(m, B, 0, depth, tok, NULL, err) ||
            vit_head(m, B, tok, NULL, cls, err)) {
            fprintf(stderr, "roofline: %s\n", err);
            return -1;
        }
        if (it >= 1)
            printf("roofline total vit_forward %.4f\nroofline total vit_forward_cpu %.4f\n", bench_now_s() - t0,
                   (bench_cpu_s() - c0) / omp_get_max_threads());
    }
    phase("vit_alone");
    vit_plan *pl = vit_plan_get(m, B, err);
    if (!pl) { fprintf(stderr, "roofline: %s\n", err); return -1; }
    struct { const char *name; const vit_op *op; } ops[] = {
        {"im2col", &pl->im2col}, {"embed_mm", &pl->embed_mm}, {"embed_rows", &pl->embed_rows},
        {"pos_add", &pl->pos_add}, {"layer_norm", &pl->ln}, {"to_bf16", &pl->to_bf16},
        {"qkv_mm", &pl->qkv_mm}, {"split_heads", &pl->split}, {"score_mm", &pl->score_mm},
        {"softmax", &pl->softmax}, {"pv_mm", &pl->pv_mm}, {"proj_mm", &pl->proj_mm},
        {"fc1_mm", &pl->fc1_mm}, {"fc2_mm", &pl->fc2_mm}, {"head_mm", &pl->head_mm},
        {"cls_row", &pl->head_cls}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!ops[i].op->prim) continue;
        time_alone("alone", ops[i].name, ops[i].op->prim);
        time_any(ops[i].name, ops[i].op->prim);
    }
    vit_free(m);
    free(img); free(tok); free(cls);
    return 0;
}

/* ---- the 3D training step ---- */

/* "linear_fwd:16384x96x384x1x0": the kind and the cache key (the shape) without trailing zeros;
 * "@side" after a one-thread primitive's (run side by side: roofline.py divides its time). */
static void prim_label(char *out, size_t n, const nn_prim *p)
{
    int last = NN_MAX_KEY;
    while (last > 0 && p->key[last - 1] == 0) last--;
    size_t len = (size_t)snprintf(out, n, "%s", nn_kind_name(p->kind));
    for (int j = 0; j < last && len < n; j++)
        len += (size_t)snprintf(out + len, n - len, "%c%ld", j ? 'x' : ':', p->key[j]);
    if (p->one_thread && len < n) snprintf(out + len, n - len, "@side");
}
static int m3_part(int B)
{
    char err[I2P_ERR_LEN];
    model3d_config c;
    model3d_config_default(&c);
    model3d *m;
    if (model3d_create(&m, &c, B, 1, &ctx, err)) { fprintf(stderr, "roofline: %s\n", err); return -1; }
    long P = c.points, V = c.views;
    rng_t r;
    rng_seed(&r, 1, 0);
    bench_m3_inputs in;
    bench_m3_inputs_make(&in, &c, B, &r);
    adamw_config ac;
    adamw_config_default(&ac);
    adamw_state st;
    if (adamw_init(&st, model3d_n_params(m), err)) return -1;
    double adamw_ms = 0;
    for (int it = 0; it < 1 + INSITU_REPS; it++) {
        model3d_batch bt = bench_m3_batch(&in, it);
        model3d_losses L;
        if (it >= 1) phase("m3_insitu");
        double t0 = bench_now_s(), c0 = bench_cpu_s();
        if (model3d_train_step(m, &bt, &L, err)) { fprintf(stderr, "roofline: %s\n", err); return -1; }
        double t1 = bench_now_s();
        adamw_step(&st, &ac, 1e-3, model3d_params(m), model3d_grads(m), model3d_get_tensor(m, 0),
                   model3d_n_tensors(m));
        double t2 = bench_now_s();
        if (it >= 1) {
            printf("roofline total m3_step %.4f\nroofline total m3_step_cpu %.4f\n", t2 - t0,
                   (bench_cpu_s() - c0) / omp_get_max_threads());
            if (adamw_ms == 0 || 1e3 * (t2 - t1) < adamw_ms) adamw_ms = 1e3 * (t2 - t1);
        }
    }
    phase("m3_alone");
    nn_cache *cache = &m->st.cache;
    for (int i = 0; i < cache->n_prims; i++) {
        char label[160];
        prim_label(label, sizeof label, &cache->prims[i]);
        time_alone("alone", label, cache->prims[i].prim);
        time_any(label, cache->prims[i].prim);
    }

    phase("kernels");
    /* FPS and kNN of the tokenizer at its three scales (tokenizer.c), on the same points */
    long n_src = P;
    float *src = in.points, *work = malloc(sizeof(float) * (size_t)(B * (4 * P + 64)));
    for (int s = 0; s < 3; s++) {
        long G = c.groups[s], k = c.k[s];
        int32_t *fps = malloc(sizeof(int32_t) * (size_t)(B * G)), *knn = malloc(sizeof(int32_t) * (size_t)(B * G * k));
        float *ctr = malloc(sizeof(float) * (size_t)(B * G * 3));
        double bf = 1e30, bk = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = bench_now_s();
            fps_sample_batch_ws(src, B, n_src, G, c.fps_skip_origin, fps, work);
            double t1 = bench_now_s();
            for (long b = 0; b < B; b++) pc_gather(src + b * n_src * 3, fps + b * G, G, ctr + b * G * 3);
            double t2 = bench_now_s();
            knn_query_batch_ws(src, B, n_src, ctr, G, (int)k, knn, work);
            double t3 = bench_now_s();
            if (t1 - t0 < bf) bf = t1 - t0;
            if (t3 - t2 < bk) bk = t3 - t2;
        }
        /* FPS: G x P distance updates (3 sub, 3 mul, 2 add, 1 min = 9 flops) and an argmax pass;
           kNN: G x P distances (8 flops) and the top-k scan */
        printf("roofline kernel fps_s%d_%ldto%ld %.0f %.0f %.5f 1\n", s, n_src, G, 9.0 * B * G * n_src,
               4.0 * 4 * B * G * n_src, 1e3 * bf);
        printf("roofline kernel knn_s%d_%ldx%ld_k%ld %.0f %.0f %.5f 1\n", s, G, n_src, k, 8.0 * B * G * n_src,
               4.0 * 4 * B * G * n_src, 1e3 * bk);
        if (s > 0) free(src);
        src = ctr;
        n_src = G;
        free(fps); free(knn);
    }
    free(src);
    free(work);
    {   /* Chamfer L2 forward + backward over the scale-1 groups (rec_heads.c), every group used */
        long M = B * c.groups[1], k = c.k[1];
        float *pred = malloc(sizeof(float) * (size_t)(M * k * 3)), *gt = malloc(sizeof(float) * (size_t)(M * k * 3)),
              *dp = calloc((size_t)(M * k * 3), sizeof(float));
        uint8_t *use = malloc((size_t)M);
        for (long i = 0; i < M * k * 3; i++) { pred[i] = (float)rng_range(&r, -1, 1); gt[i] = (float)rng_range(&r, -1, 1); }
        memset(use, 1, (size_t)M);
        double best = 1e30;
        volatile double sink = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = bench_now_s();
            sink += loss_chamfer_forward(pred, gt, use, M, k);
            loss_chamfer_backward(dp, pred, gt, use, M, k, 1.0);
            double dt = bench_now_s() - t0;
            if (dt < best) best = dt;
        }
        (void)sink;
        printf("roofline kernel chamfer_fwd_bwd_%ldx%ld %.0f %.0f %.5f 1\n", M, k, 2 * 8.0 * M * k * k,
               4.0 * 3 * 3 * M * k, 1e3 * best);
        free(pred); free(gt); free(dp); free(use);
    }
    printf("roofline kernel adamw_%ld_params %.0f %.0f %.5f 1\n", model3d_n_params(m),
           14.0 * model3d_n_params(m), 4.0 * 7 * model3d_n_params(m), adamw_ms);
    {   /* extract's projection of B clouds into 3 depth images of 224 px + pixel coordinates */
        int S = 224;
        float *img = malloc(sizeof(float) * (size_t)B * V * 3 * S * S);
        int16_t *px = malloc(sizeof(int16_t) * (size_t)(B * V * P * 2));
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = bench_now_s();
            if (project_batch(in.points, B, P, (int)V, S, img, px, NULL, err)) { fprintf(stderr, "roofline: %s\n", err); return -1; }
            double dt = bench_now_s() - t0;
            if (dt < best) best = dt;
        }
        printf("roofline kernel project_%ldx%ldviews_%dpx 0 %.0f %.5f 1\n", (long)B, V,
               S, 4.0 * (B * P * 3 + B * V * 3 * S * S), 1e3 * best);
        free(img); free(px);
    }
    {   /* the copy bandwidth roof: memcpy of 256 MiB, best of 4 */
        size_t n = (size_t)256 << 20;
        char *a = malloc(n), *b = malloc(n);
        memset(a, 1, n);
        memset(b, 2, n);
        double best = 1e30;
        for (int rep = 0; rep < 4; rep++) {
            double t0 = bench_now_s();
#pragma omp parallel
            {
                int nt = omp_get_num_threads(), t = omp_get_thread_num();
                size_t lo = n / (size_t)nt * (size_t)t, hi = t == nt - 1 ? n : n / (size_t)nt * (size_t)(t + 1);
                memcpy(b + lo, a + lo, hi - lo);
            }
            double dt = bench_now_s() - t0;
            if (dt < best) best = dt;
        }
        printf("roofline copy_gbs %.2f\n", 2.0 * (double)n / best / 1e9);
        free(a); free(b);
    }
    fflush(stdout);
    adamw_free(&st);
    model3d_free(m);
    bench_m3_inputs_free(&in);
    return 0;
}

int main(int argc, char **argv)
{
    int vb = argc > 1 ? atoi(argv[1]) : 8, mb = argc > 2 ? atoi(argv[2]) : 8;
    vit_precision prec = argc > 3 && !strcmp(argv[3], "bf16") ? VIT_BF16 : VIT_FP32;
    char err[I2P_ERR_LEN];
    if (dnn_ctx_create(&ctx, err)) { fprintf(stderr, "roofline: %s\n", err); return 1; }
    printf("roofline threads %d\n", omp_get_max_threads());
    if (vb > 0 && vit_part(vb, prec)) return 1;
    if (mb > 0 && m3_part(mb)) return 1;
    printf("roofline phase end load %.2f\n", load1());
    dnn_ctx_destroy(&ctx);
    return 0;
}
