/* cpu_freq.c -- measures the core clock while a core runs: a chain of dependent 64-bit imul takes
 * 3 cycles per multiply on every recent x86 (AMD Zen 1-5, Intel since Sandy Bridge), and nothing
 * can overlap or fold it, so 3 * multiplies / seconds = cycles per second. The machine is shared,
 * so it takes 200 windows of ~8 ms and keeps the fastest (a window without preemption).
 * Built and run by bench_vit.sh; prints "cpu_ghz X". */
#include <stdio.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void)
{
    const long n = 8000000L; /* multiplies per window: 24 M cycles */
    double best = 0;
    for (int w = 0; w < 200; w++) {
        long x = 3;
        double t0 = now_s();
        for (long i = 0; i < n; i += 4)
            __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0" : "+r"(x));
        double ghz = 3.0 * (double)n / (now_s() - t0) * 1e-9;
        if (ghz > best) best = ghz;
    }
    printf("cpu_ghz %.3f\n", best);
    return 0;
}
