/* support_bench.c -- clocks and synthetic 3D-network inputs for the C bench drivers (support_bench.h). */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "support_bench.h"

double bench_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

double bench_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

void bench_m3_inputs_make(bench_m3_inputs *in, const model3d_config *c, int B, rng_t *r)
{
    long P = c->points, V = c->views, g = c->grid, F = c->feat_dim;
    in->B = B;
    in->points = malloc(sizeof(float) * (size_t)(B * P * 3));
    in->sal = malloc(sizeof(float) * (size_t)(B * P));
    in->grids = malloc(sizeof(float) * (size_t)(B * V * g * g * F));
    in->pixels = malloc(sizeof(int16_t) * (size_t)(B * V * P * 2));
    in->keys = malloc(sizeof(uint64_t) * (size_t)B);
    for (long i = 0; i < B * P * 3; i++) in->points[i] = (float)rng_range(r, -1, 1);
    for (long i = 0; i < B * P; i++) in->sal[i] = (float)rng_range(r, 0, 0.02);
    for (long i = 0; i < B * V * g * g * F; i++) in->grids[i] = (float)rng_normal(r);
    for (long b = 0; b < B; b++)
        for (long v = 0; v < V; v++)
            for (long n = 0; n < P; n++)
                for (int a = 0; a < 2; a++) {
                    float x = in->points[(b * P + n) * 3 + (v + a + 1) % 3];
                    int p = (int)floorf((x + 1) / 2 * c->image);
                    in->pixels[((b * V + v) * P + n) * 2 + a] =
                        (int16_t)(p < 0 ? 0 : p >= c->image ? c->image - 1 : p);
                }
}

model3d_batch bench_m3_batch(bench_m3_inputs *in, int it)
{
    for (int b = 0; b < in->B; b++) in->keys[b] = (uint64_t)(it * 1000 + b);
    return (model3d_batch){.B = in->B, .points = in->points, .point_saliency = in->sal, .grids = in->grids,
                           .pixels = in->pixels, .mask_keys = in->keys, .drop_key = (uint64_t)it,
                           .forced_visible = NULL};
}

void bench_m3_inputs_free(bench_m3_inputs *in)
{
    free(in->points);
    free(in->sal);
    free(in->grids);
    free(in->pixels);
    free(in->keys);
}
