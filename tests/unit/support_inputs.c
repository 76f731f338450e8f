/* support_inputs.c -- made-up inputs for the unit tests (support_inputs.h). */
#include <stdlib.h>

#include "rng.h"
#include "support_inputs.h"

float *test_uniform(long n, uint64_t seed, uint64_t stream, double lo, double hi)
{
    rng_t r;
    rng_seed(&r, seed, stream);
    float *v = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) v[i] = (float)rng_range(&r, lo, hi);
    return v;
}

void m3_test_inputs_make(m3_test_inputs *in, const model3d_config *cfg, int B, uint64_t seed, uint64_t key0,
                         uint64_t drop_key)
{
    in->cfg = *cfg;
    const model3d_config *c = &in->cfg;
    in->B = B;
    rng_t r;
    rng_seed(&r, seed, 1);
    long P = c->points, V = c->views, g = c->grid, F = c->feat_dim;
    in->points = malloc(sizeof(float) * (size_t)(B * P * 3));
    in->sal = malloc(sizeof(float) * (size_t)(B * P));
    in->grids = malloc(sizeof(float) * (size_t)(B * V * g * g * F));
    in->pixels = malloc(sizeof(int16_t) * (size_t)(B * V * P * 2));
    for (long i = 0; i < B * P * 3; i++) in->points[i] = (float)rng_range(&r, -1, 1);
    for (long i = 0; i < B * P; i++) in->sal[i] = (float)rng_range(&r, 0, 0.05);
    for (long i = 0; i < B * V * g * g * F; i++) in->grids[i] = (float)rng_range(&r, -1, 1);
    for (long i = 0; i < B * V * P * 2; i++) in->pixels[i] = (int16_t)rng_below(&r, (uint64_t)c->image);
    for (int b = 0; b < B; b++) in->keys[b] = key0 + (uint64_t)b;
    in->batch = (model3d_batch){.B = B, .points = in->points, .point_saliency = in->sal, .grids = in->grids,
                                .pixels = in->pixels, .mask_keys = in->keys, .drop_key = drop_key,
                                .forced_visible = NULL};
}

void m3_test_inputs_free(m3_test_inputs *in)
{
    free(in->points);
    free(in->sal);
    free(in->grids);
    free(in->pixels);
}
