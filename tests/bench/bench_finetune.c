/* bench_finetune.c -- one fine-tuning training step of the classifier (classifier_train_step:
 * tokenize + forward + loss + backward; then clip_grad_norm and AdamW, as src/finetune.c does) at
 * the spec's ModelNet40 configuration (classifier_config_default: 1024 points, group sizes
 * 48,24,24, radii 0.24,0.48,0.96), timed after warm-up steps; then the eval-mode forward
 * (classifier_forward, what voting runs) in clouds per second.
 * Usage: bench_finetune BATCH STEPS WARMUP EVAL_REPS. Prints one JSON line and
 * "c_seconds_per_step X", "c_cpu_seconds_per_step X", "c_train_vmhwm_kb X", "c_eval_clouds_per_s X",
 * "c_eval_cpu_per_cloud X" (CPU seconds per cloud), "c_vmhwm_kb X".
 * Inputs are synthetic (uniform points in [-1,1]^3, uniform labels), as in the reference's bench.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "errors.h"
#include "optim.h"
#include "rng.h"
#include "support_bench.h"

/* VmHWM (peak resident set) of this process in kB, -1 when unreadable. */
static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = atol(line + 6);
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    int B = argc > 1 ? atoi(argv[1]) : 32, steps = argc > 2 ? atoi(argv[2]) : 1,
        warmup = argc > 3 ? atoi(argv[3]) : 1, eval_reps = argc > 4 ? atoi(argv[4]) : 2;
    char err[I2P_ERR_LEN];
    classifier_config cfg;
    classifier_config_default(&cfg);
    dnn_ctx ctx;
    classifier *c;
    long base_kb = vm_hwm_kb();
    if (dnn_ctx_create(&ctx, err) || classifier_create(&c, &cfg, B, 1, &ctx, err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    long P = cfg.enc.points;
    float *pts = malloc(sizeof(float) * (size_t)(B * P * 3)),
          *logits = malloc(sizeof(float) * (size_t)(B * cfg.n_classes));
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)B);
    rng_t r;
    rng_seed(&r, 1, 0);
    for (long i = 0; i < B * P * 3; i++) pts[i] = (float)rng_range(&r, -1, 1);
    for (int b = 0; b < B; b++) labels[b] = (int32_t)rng_below(&r, (uint64_t)cfg.n_classes);
    adamw_config ac;
    adamw_config_default(&ac);
    adamw_state st;
    if (adamw_init(&st, classifier_n_params(c), err)) return 1;
    double total = 0, total_cpu = 0;
    for (int it = 0; it < warmup + steps; it++) {
        classifier_batch bt = {.B = B, .points = pts, .labels = labels, .drop_key = (uint64_t)it};
        double loss, t0 = bench_now_s(), c0 = bench_cpu_s();
        if (classifier_train_step(c, &bt, &loss, NULL, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        clip_grad_norm(classifier_grads(c), classifier_n_params(c), 10.0);
        adamw_step(&st, &ac, 5e-4, classifier_params(c), classifier_grads(c), classifier_get_tensor(c, 0),
                   classifier_n_tensors(c));
        double dt = bench_now_s() - t0;
        if (it >= warmup) {
            total += dt;
            total_cpu += bench_cpu_s() - c0;
        }
        printf("step %d: %.3f s loss %.4f\n", it, dt, loss);
        fflush(stdout);
    }
    long train_kb = vm_hwm_kb();
    if (classifier_forward(c, B, pts, logits, err)) { /* warm-up */
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    for (int i = 0; i < eval_reps; i++)
        if (classifier_forward(c, B, pts, logits, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
    double eval_s = bench_now_s() - t0, cps = eval_reps * B / eval_s, eval_cpu = bench_cpu_s() - c0;
    long all_kb = vm_hwm_kb();
    double step_s = total / steps, step_cpu = total_cpu / steps, cloud_cpu = eval_cpu / (eval_reps * B);
    printf("{\"bench\": \"finetune_c\", \"batch\": %d, \"points\": %ld, \"threads\": %d, \"params\": %ld, "
           "\"steps\": %d, \"seconds_per_step\": %.4f, \"cpu_seconds_per_step\": %.4f, "
           "\"start_vmhwm_kb\": %ld, \"train_vmhwm_kb\": %ld, \"eval_clouds_per_s\": %.2f, "
           "\"eval_cpu_seconds_per_cloud\": %.4f, \"vmhwm_kb\": %ld}\n",
           B, P, omp_get_max_threads(), classifier_n_params(c), steps, step_s, step_cpu, base_kb, train_kb, cps,
           cloud_cpu, all_kb);
    printf("c_seconds_per_step %.4f\nc_cpu_seconds_per_step %.4f\nc_train_vmhwm_kb %ld\n"
           "c_eval_clouds_per_s %.3f\nc_eval_cpu_per_cloud %.4f\nc_vmhwm_kb %ld\n",
           step_s, step_cpu, train_kb, cps, cloud_cpu, all_kb);
    adamw_free(&st);
    classifier_free(c);
    dnn_ctx_destroy(&ctx);
    free(pts); free(logits); free(labels);
    return 0;
}
