/* bench_pointops.c -- times farthest point sampling and kNN of pointops.c on random clouds.
 *
 *   bench_pointops B P M Q K REPS [plain]
 * B clouds of P points uniform in [-1,1]^3: fps_sample_batch (P -> M) and knn_query_batch (K nearest
 * of Q centres, the first Q FPS centres). Prints the best of REPS wall times as one JSON line.
 * plain: the plain loops also on an AVX-512 CPU (pointops_allow_avx512(0)); "avx512" in the JSON
 * line says whether the AVX-512 paths were allowed. Threads: OMP_NUM_THREADS. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pointops.h"
#include "rng.h"

int main(int argc, char **argv)
{
    if (argc != 7 && !(argc == 8 && strcmp(argv[7], "plain") == 0)) {
        fprintf(stderr, "usage: bench_pointops B P M Q K REPS [plain]\n");
        return 2;
    }
    int avx512 = argc == 8 ? 0 : 1;
    pointops_allow_avx512(avx512);
    long B = atol(argv[1]), P = atol(argv[2]), M = atol(argv[3]), Q = atol(argv[4]);
    int K = atoi(argv[5]), reps = atoi(argv[6]);
    if (B < 1 || P < 1 || M < 1 || M > P || Q < 1 || Q > M || K < 1 || K > P || reps < 1) {
        fprintf(stderr, "bench_pointops: bad sizes\n");
        return 2;
    }
    float *pts = malloc(sizeof(float) * 3 * (size_t)(B * P));
    float *centres = malloc(sizeof(float) * 3 * (size_t)(B * Q));
    int32_t *fidx = malloc(sizeof(int32_t) * (size_t)(B * M));
    int32_t *kidx = malloc(sizeof(int32_t) * (size_t)(B * Q * K));
    if (!pts || !centres || !fidx || !kidx) return 1;
    rng_t r;
    rng_seed(&r, 42, 0);
    for (long i = 0; i < 3 * B * P; i++) pts[i] = (float)rng_range(&r, -1, 1);

    double fps_best = 1e30, knn_best = 1e30;
    for (int it = 0; it < reps; it++) {
        double t0 = now_s();
        fps_sample_batch(pts, B, P, M, 0, fidx);
        double t1 = now_s();
        if (t1 - t0 < fps_best) fps_best = t1 - t0;
    }
    for (long b = 0; b < B; b++)
        pc_gather(pts + b * P * 3, fidx + b * M, Q, centres + b * Q * 3);
    for (int it = 0; it < reps; it++) {
        double t0 = now_s();
        knn_query_batch(pts, B, P, centres, Q, K, kidx);
        double t1 = now_s();
        if (t1 - t0 < knn_best) knn_best = t1 - t0;
    }
    long check = 0;
    for (long i = 0; i < B * M; i++) check += fidx[i];
    long kcheck = 0;
    for (long i = 0; i < B * Q * K; i++) kcheck += kidx[i];
    printf("{\"threads\":%d,\"avx512\":%d,\"fps_s\":%.6f,\"knn_s\":%.6f,\"fps_index_sum\":%ld,"
           "\"knn_index_sum\":%ld}\n",
           omp_get_max_threads(), avx512, fps_best, knn_best, check, kcheck);
    free(pts);
    free(centres);
    free(fidx);
    free(kidx);
    return 0;
}
