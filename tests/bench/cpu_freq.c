/* cpu_freq.c -- measures the core clock of one core while it runs: a chain of dependent integer
 * adds retires one per cycle on x86 (1-cycle latency), so adds / seconds = cycles per second.
 * Built and run by bench_vit.sh; prints "cpu_ghz X". */
#include <stdio.h>
#include <time.h>

int main(void)
{
    const long n = 400000000L; /* ~0.1-0.2 s */
    struct timespec a, b;
    for (int rep = 0; rep < 2; rep++) { /* first pass warms the clock up */
        long x = 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i += 8)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        if (rep == 1) printf("cpu_ghz %.3f\n", (double)n / s * 1e-9);
    }
    return 0;
}
