/* bench_attention.c -- nn_attention_forward_bias + nn_attention_backward alone on one shape, the
 * way the 3D step calls them (key padding bias on the last keys of each sample). Usage:
 *   bench_attention B T C H fp32|bf16 REPS [FWD_OPS/BWD_OPS]
 * After one warm-up call pair, prints per repetition the wall and process CPU milliseconds of the
 * forward and of the backward, then the best and the mean. With the optional op pattern (the names
 * of the primitive executions of one block, in order, e.g. qk,sm,av/dp,dv,sm,dq,dk), the CPU and
 * wall milliseconds of every execution are summed per name (cyclically over the blocks), mean per
 * repetition: the per-op breakdown of the chain without ONEDNN_VERBOSE's wall-clock-only timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "nn.h"

#define MAX_OPS 16

static double now(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Per-execution timing through nn_prim.c's hook: op names of one block per direction, and the
 * CPU / wall seconds summed per name. */
static struct {
    int on, dir, n_ops[2], next[2];
    char name[2][MAX_OPS][16];
    double cpu[2][MAX_OPS], wall[2][MAX_OPS], c0, w0;
} g_ops;

void nn_exec_hook(int inside)
{
    if (!g_ops.on) return;
    double c = now(CLOCK_PROCESS_CPUTIME_ID), w = now(CLOCK_MONOTONIC);
    if (inside) {
        g_ops.c0 = c, g_ops.w0 = w;
        return;
    }
    int d = g_ops.dir, i = g_ops.next[d];
    g_ops.cpu[d][i] += c - g_ops.c0;
    g_ops.wall[d][i] += w - g_ops.w0;
    g_ops.next[d] = (i + 1) % g_ops.n_ops[d];
}

/* "a,b,c/d,e" -> the names of the two directions; 0, or -1 if malformed. */
static int parse_ops(const char *s)
{
    int d = 0, i = 0;
    while (*s) {
        size_t len = strcspn(s, ",/");
        if (len == 0 || len >= 16 || i >= MAX_OPS) return -1;
        memcpy(g_ops.name[d][i], s, len);
        g_ops.name[d][i++][len] = 0;
        s += len;
        if (*s == '/') {
            if (d == 1) return -1;
            g_ops.n_ops[d++] = i, i = 0;
        }
        if (*s) s++;
    }
    g_ops.n_ops[d] = i;
    return d == 1 && i > 0 ? 0 : -1;
}

/* FNV-1a over n bytes: a fingerprint to compare the bits of two builds */
static unsigned long fnv(const void *p, size_t n, unsigned long h)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ul;
    return h;
}

static float *filled(long n, unsigned s)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xffffff) / 16777216.0f * 4.0f - 2.0f;
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 7 || (argc > 7 && parse_ops(argv[7]))) {
        fprintf(stderr, "usage: bench_attention B T C H fp32|bf16 REPS [FWD_OPS/BWD_OPS, e.g. qk,sm,av/dp,dv,sm,dq,dk]\n");
        return 2;
    }
    long B = atol(argv[1]), T = atol(argv[2]), C = atol(argv[3]), H = atol(argv[4]);
    int reps = atoi(argv[6]);
    char err[I2P_ERR_LEN] = "";
    dnn_ctx ctx;
    nn_cache c;
    nn_precision prec;
    if (dnn_ctx_create(&ctx, err) || nn_cache_init(&c, &ctx, 64, err) || nn_precision_parse(argv[5], &prec, err) ||
        nn_cache_set_precision(&c, prec, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    long n = B * T * C, ns = B * H * T * T;
    float *qkv = filled(3 * n, 1), *dout = filled(n, 2), *out = malloc(sizeof(float) * (size_t)n),
          *att = malloc(sizeof(float) * (size_t)ns), *dqkv = calloc((size_t)(3 * n), sizeof(float)),
          *kb = calloc((size_t)(B * T), sizeof(float));
    for (long b = 0; b < B; b++)
        for (long t = T - T / 8; t < T; t++) kb[b * T + t] = -1e5f;
    double best[2] = {1e30, 1e30}, sum[2] = {0, 0}, wbest[2] = {1e30, 1e30};
    int done = 0;
    for (int r = -1; r < reps; r++) {
        g_ops.on = r >= 0 && g_ops.n_ops[1] > 0;
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        g_ops.dir = 0;
        if (nn_attention_forward_bias(&c, out, att, qkv, kb, NULL, B, T, C, H, err)) break;
        double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
        g_ops.dir = 1;
        if (nn_attention_backward(&c, dqkv, dout, qkv, att, B, T, C, H, err)) break;
        double w2 = now(CLOCK_MONOTONIC), c2 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (r < 0) continue;
        double cpu[2] = {1e3 * (c1 - c0), 1e3 * (c2 - c1)}, wall[2] = {1e3 * (w1 - w0), 1e3 * (w2 - w1)};
        printf("rep %d: fwd %.1f ms (cpu %.1f), bwd %.1f ms (cpu %.1f)\n", r, wall[0], cpu[0], wall[1], cpu[1]);
        for (int i = 0; i < 2; i++) {
            best[i] = cpu[i] < best[i] ? cpu[i] : best[i];
            wbest[i] = wall[i] < wbest[i] ? wall[i] : wbest[i];
            sum[i] += cpu[i];
        }
        done++;
    }
    if (done < reps) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int d = 0; d < 2 && g_ops.n_ops[1] > 0; d++)
        for (int i = 0; i < g_ops.n_ops[d]; i++)
            printf("op %s %-6s cpu ms %7.1f wall ms %7.1f (mean per repetition)\n", d ? "bwd" : "fwd", g_ops.name[d][i],
                   1e3 * g_ops.cpu[d][i] / reps, 1e3 * g_ops.wall[d][i] / reps);
    printf("attention %ldx%ldx%ldx%ld %s: cpu ms fwd best %.1f mean %.1f, bwd best %.1f mean %.1f; wall ms best fwd "
           "%.1f bwd %.1f; bits of out, att, dqkv %016lx\n",
           B, T, C, H, argv[5], best[0], sum[0] / reps, best[1], sum[1] / reps, wbest[0], wbest[1],
           fnv(dqkv, sizeof(float) * (size_t)(3 * n),
               fnv(att, (prec == NN_BF16 ? 2 : 4) * (size_t)ns, fnv(out, sizeof(float) * (size_t)n, 14695981039346656037ul))));
    free(qkv), free(dout), free(out), free(att), free(dqkv), free(kb);
    nn_cache_free(&c);
    dnn_ctx_destroy(&ctx);
    return 0;
}
