/* support_bench.h -- shared by the C bench drivers (bench_train_step, bench_roofline,
 * bench_finetune): the clocks they time with and the synthetic inputs of a 3D-network training
 * step. Built with each driver by the Makefile and by the bench scripts that compile a driver. */
#ifndef I2P_BENCH_SUPPORT_H
#define I2P_BENCH_SUPPORT_H

#include <stdint.h>

#include "model3d.h"
#include "rng.h"

/* Monotonic wall-clock seconds. */
double bench_now_s(void);

/* CPU seconds of the whole process (all threads): on a shared machine a steadier measure of the
 * work than the wall time (with 2 threads it includes OpenMP's spin-waits). */
double bench_cpu_s(void);

/* Synthetic inputs of B clouds, as in the reference's --bench. */
typedef struct {
    int B;
    float *points, *sal, *grids; /* (B,P,3) uniform in [-1,1]; (B,P) uniform in [0,0.02]; (B,V,g,g,F) N(0,1) */
    int16_t *pixels;             /* (B,V,P,2) orthographic: view v's axes (v+1)%3, (v+2)%3 of the point */
    uint64_t *keys;              /* (B) the mask keys of the current step (bench_m3_batch) */
} bench_m3_inputs;

/* Allocates and fills in for B clouds of c, drawing points, saliency and grids in that order from r
 * (the drivers seed it rng_seed(r, 1, 0)). Free with bench_m3_inputs_free. */
void bench_m3_inputs_make(bench_m3_inputs *in, const model3d_config *c, int B, rng_t *r);

/* The batch of step it over in's arrays: mask keys it * 1000 + b, drop key it, no forced mask. */
model3d_batch bench_m3_batch(bench_m3_inputs *in, int it);

void bench_m3_inputs_free(bench_m3_inputs *in);

#endif
