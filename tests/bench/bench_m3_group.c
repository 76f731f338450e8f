/* bench_m3_group.c -- embed0's mini-PointNet (m3_group.c) alone at the spec widths (3 -> 128 -> 256,
 * [g, h2] 512 -> 512 -> 96, k = 16): the full forward then the backward (m3_group_forward /
 * m3_group_backward, as a training step without --recompute) on G = BATCH x 512 groups, or the light
 * pair (light != 0: m3_group_forward_light / m3_group_backward_light, as --recompute).
 * Usage: bench_m3_group BATCH STEPS [light] [fp32|bf16]. Prints per-step wall and process CPU seconds
 * (after one warm-up step) and the output's and input gradient's checksums.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "errors.h"
#include "m3_layers.h"
#include "rng.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static long take(long *off, long n)
{
    long o = *off;
    *off += n;
    return o;
}

int main(int argc, char **argv)
{
    long batch = argc > 1 ? atol(argv[1]) : 8, G = batch * 512, k = 16, R;
    int steps = argc > 2 ? atoi(argv[2]) : 2, light = argc > 3 ? atoi(argv[3]) : 0;
    int bf16 = argc > 4 && !strcmp(argv[4], "bf16");
    enum { CIN = 3, A = 128, B = 256, C = 512, COUT = 96 };
    char err[I2P_ERR_LEN];
    dnn_ctx dnn;
    nn_cache cache;
    if (dnn_ctx_create(&dnn, err) || nn_cache_init(&cache, &dnn, 128, err)) {
        fprintf(stderr, "bench_m3_group: %s\n", err);
        return 1;
    }
    if (bf16 && nn_cache_set_precision(&cache, NN_BF16, err)) {
        fprintf(stderr, "bench_m3_group: %s\n", err);
        return 1;
    }
    R = G * k;
    m3_group p;
    memset(&p, 0, sizeof p);
    long off = 0, boff = 0;
    int dims[4][2] = {{A, CIN}, {B, A}, {C, 2 * B}, {COUT, C}};
    m3_linear *conv[4] = {&p.conv1, &p.conv2, &p.conv3, &p.conv4};
    for (int i = 0; i < 4; i++) {
        conv[i]->out = dims[i][0];
        conv[i]->in = dims[i][1];
        conv[i]->w = take(&off, (long)dims[i][0] * dims[i][1]);
        conv[i]->b = take(&off, dims[i][0]);
    }
    m3_bn *bn[2] = {&p.bn1, &p.bn2};
    int bc[2] = {A, C};
    for (int i = 0; i < 2; i++) {
        bn[i]->C = bc[i];
        bn[i]->w = take(&off, bc[i]);
        bn[i]->b = take(&off, bc[i]);
        bn[i]->run_mean = take(&boff, bc[i]);
        bn[i]->run_var = take(&boff, bc[i]);
    }
    float *P = malloc(sizeof(float) * (size_t)off), *Gr = calloc((size_t)off, sizeof(float)),
          *buf = calloc((size_t)boff, sizeof(float)), *inp = malloc(sizeof(float) * (size_t)(R * CIN)),
          *out = malloc(sizeof(float) * (size_t)(G * COUT)), *dout = malloc(sizeof(float) * (size_t)(G * COUT));
    rng_t r;
    rng_seed(&r, 5, 0);
    for (long i = 0; i < off; i++) P[i] = (float)rng_range(&r, -0.1, 0.1);
    for (long i = 0; i < R * CIN; i++) inp[i] = (float)rng_range(&r, -1, 1);
    for (long i = 0; i < G * COUT; i++) dout[i] = (float)rng_range(&r, -1, 1);
    arena a;
    arena_init(&a, (size_t)R * 4 * 2400);
    m3_run run = {.c = &cache, .a = &a, .P = P, .G = Gr, .buf = buf, .train = 1, .err = err};
    double wall = 0, cpu = 0;
    for (int it = 0; it <= steps; it++) {
        arena_reset(&a);
        double w0 = omp_get_wtime(), c0 = cpu_now();
        m3_group_state s;
        int rc = light ? m3_group_forward_light(&run, &p, out, &s, inp, G, k) : m3_group_forward(&run, &p, out, &s, inp, G, k);
        if (!rc) rc = light ? m3_group_backward_light(&run, &p, NULL, dout, &s, inp, G, k)
                            : m3_group_backward(&run, &p, NULL, dout, &s, inp, G, k);
        if (rc) {
            fprintf(stderr, "bench_m3_group: %s\n", err);
            return 1;
        }
        double w1 = omp_get_wtime(), c1 = cpu_now();
        printf("step %d: %.3f s wall, %.3f s cpu\n", it, w1 - w0, c1 - c0);
        if (it > 0) {
            wall += w1 - w0;
            cpu += c1 - c0;
        }
    }
    double so = 0, sg = 0;
    for (long i = 0; i < G * COUT; i++) so += out[i];
    for (long i = 0; i < off; i++) sg += Gr[i];
    printf("{\"bench\": \"m3_group\", \"batch\": %ld, \"light\": %d, \"threads\": %d, \"wall_s\": %.4f, \"cpu_s\": %.4f, "
           "\"out_sum\": %.9g, \"grad_sum\": %.9g}\n",
           batch, light, omp_get_max_threads(), wall / steps, cpu / steps, so, sg);
    arena_free(&a);
    free(P); free(Gr); free(buf); free(inp); free(out); free(dout);
    nn_cache_free(&cache);
    dnn_ctx_destroy(&dnn);
    return 0;
}
