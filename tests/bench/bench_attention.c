/* bench_attention.c -- nn_attention_forward_bias + nn_attention_backward alone on one shape, the
 * way the 3D step calls them (key padding bias on the last keys of each sample). Usage:
 * bench_attention B T C H fp32|bf16 REPS. After one warm-up call pair, prints per repetition the
 * wall and process CPU milliseconds of the forward and of the backward, then the best and the mean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "nn.h"

static double now(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
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
    if (argc < 7) {
        fprintf(stderr, "usage: bench_attention B T C H fp32|bf16 REPS\n");
        return 2;
    }
    long B = atol(argv[1]), T = atol(argv[2]), C = atol(argv[3]), H = atol(argv[4]);
    int reps = atoi(argv[6]);
    char err[I2P_ERR_LEN];
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
          *att = malloc(sizeof(float) * (size_t)ns),
          *dqkv = calloc((size_t)(3 * n), sizeof(float)), *kb = calloc((size_t)(B * T), sizeof(float));
    for (long b = 0; b < B; b++)
        for (long t = T - T / 8; t < T; t++) kb[b * T + t] = -1e5f;
    double best[2] = {1e30, 1e30}, sum[2] = {0, 0};
    for (int r = -1; r < reps; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (nn_attention_forward_bias(&c, out, att, qkv, kb, NULL, B, T, C, H, err)) break;
        double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (nn_attention_backward(&c, dqkv, dout, qkv, att, B, T, C, H, err)) break;
        double w2 = now(CLOCK_MONOTONIC), c2 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (r < 0) continue;
        double cpu[2] = {1e3 * (c1 - c0), 1e3 * (c2 - c1)};
        printf("rep %d: fwd %.1f ms (cpu %.1f), bwd %.1f ms (cpu %.1f)\n", r, 1e3 * (w1 - w0), cpu[0],
               1e3 * (w2 - w1), cpu[1]);
        for (int i = 0; i < 2; i++) {
            best[i] = cpu[i] < best[i] ? cpu[i] : best[i];
            sum[i] += cpu[i];
        }
    }
    if (err[0] && best[0] > 1e29) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("attention %ldx%ldx%ldx%ld %s: cpu ms fwd best %.1f mean %.1f, bwd best %.1f mean %.1f; out[7] %.6g dq[7] %.6g\n",
           B, T, C, H, argv[5], best[0], sum[0] / reps, best[1], sum[1] / reps, out[7], dqkv[7]);
    nn_cache_free(&c);
    dnn_ctx_destroy(&ctx);
    return 0;
}
