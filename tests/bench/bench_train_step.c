/* bench_train_step.c -- one training step of the 3D network (tokenize + mask + 2D targets +
 * forward + backward + AdamW update) at the spec configuration, timed after warm-up steps.
 * Usage: bench_train_step BATCH STEPS WARMUP [fp32|bf16] [PAD]. Prints one JSON line and
 * "c_seconds_per_step X". bf16: the mixed-precision step (model3d_set_precision). PAD: the first
 * stage's pad multiple (model3d_set_pad_multiple; default MODEL3D_PAD_MULTIPLE, 0 = the fixed bound).
 * Inputs are synthetic (uniform points, saliency, unit-normal grids, orthographic pixels), as in the
 * reference's --bench.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "errors.h"
#include "model3d.h"
#include "optim.h"
#include "support_bench.h"

/* Minor page faults, user and system CPU seconds of this process so far. */
static void usage_now(long *minflt, double *user_s, double *sys_s)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    *minflt = u.ru_minflt;
    *user_s = u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec;
    *sys_s = u.ru_stime.tv_sec + 1e-6 * u.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
    int B = argc > 1 ? atoi(argv[1]) : 32, steps = argc > 2 ? atoi(argv[2]) : 1,
        warmup = argc > 3 ? atoi(argv[3]) : 1;
    const char *prec = argc > 4 ? argv[4] : "fp32";
    int pad = argc > 5 ? atoi(argv[5]) : MODEL3D_PAD_MULTIPLE;
    char err[I2P_ERR_LEN];
    model3d_config c;
    model3d_config_default(&c);
    dnn_ctx ctx;
    model3d *m;
    if (dnn_ctx_create(&ctx, err) || model3d_create(&m, &c, B, 1, &ctx, err) ||
        model3d_set_precision(m, strcmp(prec, "bf16") ? NN_FP32 : NN_BF16, err) ||
        model3d_set_pad_multiple(m, pad, err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    long P = c.points;
    rng_t r;
    rng_seed(&r, 1, 0);
    bench_m3_inputs in;
    bench_m3_inputs_make(&in, &c, B, &r);
    adamw_config ac;
    adamw_config_default(&ac);
    adamw_state st;
    if (adamw_init(&st, model3d_n_params(m), err)) return 1;
    double total = 0, total_cpu = 0, flops0 = 0, user = 0, sys = 0;
    long faults = 0;
    model3d_alloc_info info;
    for (int it = 0; it < warmup + steps; it++) {
        /* the warm-up steps run the timed steps' batches (as far as they reach): the first stage's
         * padded lengths (model3d_set_pad_multiple) of the timed steps are then met before the timing,
         * and the timed steps show the steady state (no primitive created, no page touched first) */
        model3d_batch bt = bench_m3_batch(&in, it < warmup ? warmup + it % steps : it);
        model3d_losses L;
        if (it == warmup) {
            model3d_alloc_stats(m, &info);
            flops0 = info.matmul_flops;
        }
        long f0, f1;
        double u0, s0, u1, s1;
        usage_now(&f0, &u0, &s0);
        double t0 = bench_now_s(), c0 = bench_cpu_s();
        if (model3d_train_step(m, &bt, &L, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        adamw_step(&st, &ac, 1e-3, model3d_params(m), model3d_grads(m), model3d_get_tensor(m, 0),
                   model3d_n_tensors(m));
        double dt = bench_now_s() - t0, dc = bench_cpu_s() - c0;
        usage_now(&f1, &u1, &s1);
        if (it >= warmup) {
            total += dt;
            total_cpu += dc;
            faults += f1 - f0;
            user += u1 - u0;
            sys += s1 - s0;
        }
        model3d_alloc_info now;
        model3d_alloc_stats(m, &now);
        printf("step %d: %.3f s loss %.4f; minor faults %ld, cpu user %.2f s sys %.2f s; %ld primitives, "
               "arena %.2f GB\n", it, dt, L.loss, f1 - f0, u1 - u0, s1 - s0, now.primitives,
               now.step_arena_bytes / 1e9);
        fflush(stdout);
    }
    model3d_alloc_stats(m, &info);
    double step_s = total / steps, flops = (info.matmul_flops - flops0) / steps;
    printf("{\"bench\": \"model3d_c\", \"precision\": \"%s\", \"pad_multiple\": %d, \"batch\": %d, \"points\": %ld, \"threads\": %d, "
           "\"params\": %ld, \"steps\": %d, \"seconds_per_step\": %.4f, \"cpu_seconds_per_step\": %.4f, "
           "\"matmul_gflop_per_step\": %.2f, \"gflop_per_s\": %.2f, \"minor_faults_per_step\": %ld, "
           "\"user_s_per_step\": %.3f, \"sys_s_per_step\": %.3f}\n",
           prec, pad, B, P, omp_get_max_threads(), model3d_n_params(m), steps, step_s, total_cpu / steps, flops / 1e9,
           flops / 1e9 / step_s, faults / steps, user / steps, sys / steps);
    printf("c_seconds_per_step %.4f\nc_cpu_seconds_per_step %.4f\nc_gflop_per_step %.3f\n", step_s,
           total_cpu / steps, flops / 1e9);
    adamw_free(&st);
    model3d_free(m);
    dnn_ctx_destroy(&ctx);
    bench_m3_inputs_free(&in);
    return 0;
}
