/* cpu_peak.c -- measures the machine's arithmetic peak instead of assuming it: every OpenMP thread
 * runs, at the same time as the others, 12 independent chains of fused multiply-adds (enough to fill
 * two FMA pipes of latency 4-6), and the fastest of 10 windows per thread is kept (a window without
 * preemption). Three kinds:
 *   fp32 zmm  vfmadd231ps on 512-bit registers (16 lanes x 2 FLOP per instruction)
 *   fp32 ymm  the same on 256-bit registers (8 lanes x 2 FLOP)
 *   bf16 zmm  vdpbf16ps (32 bf16 pairs x 2 FLOP per instruction), where the CPU has avx512_bf16
 * The fp32 peak is the better of zmm and ymm. Why measured: a core that runs AVX-512 on 256-bit
 * halves (AMD Zen 4) does 32 fp32 FLOP/cycle, one with full 512-bit FMA pipes (Zen 5, Intel server
 * cores with two FMA units) 64, and the CPUID model name of a VM ("AMD EPYC") does not say which.
 * Prints, for the threads together:
 *   peak_fp32_gflops X   peak_bf16_gflops Y (0 without avx512_bf16)
 *   then a line per kind with the FLOP/cycle/core at the clock given as argv[1] (GHz; optional).
 * Built and run by bench_vit.sh, bench_roofline.sh and bench_train_step.sh. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define ACCS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11"

__attribute__((target("avx512f"))) static void fma_zmm(long n)
{
    for (long i = 0; i < n; i++)
        __asm__ volatile("vfmadd231ps %%zmm12, %%zmm13, %%zmm0\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm1\n\t"
                         "vfmadd231ps %%zmm12, %%zmm13, %%zmm2\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm3\n\t"
                         "vfmadd231ps %%zmm12, %%zmm13, %%zmm4\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm5\n\t"
                         "vfmadd231ps %%zmm12, %%zmm13, %%zmm6\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm7\n\t"
                         "vfmadd231ps %%zmm12, %%zmm13, %%zmm8\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm9\n\t"
                         "vfmadd231ps %%zmm12, %%zmm13, %%zmm10\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm11"
                         ::: ACCS);
}

__attribute__((target("avx2,fma"))) static void fma_ymm(long n)
{
    for (long i = 0; i < n; i++)
        __asm__ volatile("vfmadd231ps %%ymm12, %%ymm13, %%ymm0\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm1\n\t"
                         "vfmadd231ps %%ymm12, %%ymm13, %%ymm2\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm3\n\t"
                         "vfmadd231ps %%ymm12, %%ymm13, %%ymm4\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm5\n\t"
                         "vfmadd231ps %%ymm12, %%ymm13, %%ymm6\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm7\n\t"
                         "vfmadd231ps %%ymm12, %%ymm13, %%ymm8\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm9\n\t"
                         "vfmadd231ps %%ymm12, %%ymm13, %%ymm10\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm11"
                         ::: ACCS);
}

__attribute__((target("avx512f,avx512bf16"))) static void dot_bf16(long n)
{
    for (long i = 0; i < n; i++)
        __asm__ volatile("vdpbf16ps %%zmm12, %%zmm13, %%zmm0\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm1\n\t"
                         "vdpbf16ps %%zmm12, %%zmm13, %%zmm2\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm3\n\t"
                         "vdpbf16ps %%zmm12, %%zmm13, %%zmm4\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm5\n\t"
                         "vdpbf16ps %%zmm12, %%zmm13, %%zmm6\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm7\n\t"
                         "vdpbf16ps %%zmm12, %%zmm13, %%zmm8\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm9\n\t"
                         "vdpbf16ps %%zmm12, %%zmm13, %%zmm10\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm11"
                         ::: ACCS);
}

/* GFLOP/s of all threads together: each thread's fastest window, summed. */
static double measure(void (*kernel)(long), double flop_per_instr)
{
    const long n = 4000000L; /* 48 M instructions per window */
    double total = 0;
#pragma omp parallel reduction(+ : total)
    {
        double best = 1e30;
        for (int w = 0; w < 10; w++) {
            double t0 = now_s();
            kernel(n);
            double t = now_s() - t0;
            if (t < best) best = t;
        }
        total += 12.0 * flop_per_instr * (double)n / best * 1e-9;
    }
    return total;
}

int main(int argc, char **argv)
{
    double ghz = argc > 1 ? atof(argv[1]) : 0;
    int threads = omp_get_max_threads();
    __builtin_cpu_init();
    double zmm = 0, ymm = 0, bf16 = 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ymm = measure(fma_ymm, 16);
    if (__builtin_cpu_supports("avx512f")) zmm = measure(fma_zmm, 32);
    if (__builtin_cpu_supports("avx512bf16")) bf16 = measure(dot_bf16, 64);
    double fp32 = zmm > ymm ? zmm : ymm;
    printf("peak_fp32_gflops %.1f peak_bf16_gflops %.1f threads %d\n", fp32, bf16, threads);
    if (ghz > 0)
        printf("per core at %.3f GHz: fp32 zmm %.1f, fp32 ymm %.1f, bf16 zmm %.1f FLOP/cycle\n", ghz,
               zmm / threads / ghz, ymm / threads / ghz, bf16 / threads / ghz);
    return 0;
}
