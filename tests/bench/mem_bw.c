/* mem_bw.c -- the memory bandwidth the machine gives at this moment, printed beside the step
 * timings: on the shared 2-core development VM the arithmetic peak (cpu_peak.c) stays within ~2 %
 * from one run to the next, while the bandwidth to DRAM moved between 15 and 39 GB/s within an hour
 * (other tenants of the host), and the training step, whose BatchNorm / ReLU / conversion sweeps and
 * large matmul outputs stream hundreds of MB each, was slowest in the low-bandwidth stretches
 * (docs/performance.md, "bandwidth").
 * Every OpenMP thread streams its share of three arrays of 2^26 floats (256 MB each, far above the
 * L3), STREAM's way:
 *   triad  c[i] = a[i] + s b[i]   12 bytes an element (the write-allocate read of c not counted)
 *   read   sum of a[i] * b[i]      8 bytes an element
 * Prints the best and the median of 7 repetitions of each, in GB/s (10^9 bytes):
 *   mem_triad_gbps BEST MEDIAN mem_read_gbps BEST MEDIAN threads N
 * Built and run by bench_train_step.sh. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { REPS = 7 };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* best (largest) and median of the n rates r, sorted in place */
static void best_median(double *r, int n, double *best, double *median)
{
    qsort(r, (size_t)n, sizeof *r, cmp_double);
    *best = r[n - 1];
    *median = r[n / 2];
}

int main(void)
{
    const long n = 1L << 26;
    float *a = aligned_alloc(64, sizeof(float) * (size_t)n), *b = aligned_alloc(64, sizeof(float) * (size_t)n),
          *c = aligned_alloc(64, sizeof(float) * (size_t)n);
    if (!a || !b || !c) {
        fprintf(stderr, "mem_bw: out of memory (3 x %ld floats)\n", n);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) { /* first touch by the thread that streams it later */
        a[i] = 1.0f;
        b[i] = 2.0f;
        c[i] = 0.0f;
    }
    double triad[REPS], read[REPS], sum = 0;
    for (int r = 0; r < REPS; r++) {
        double t = now_s();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) c[i] = a[i] + 1.5f * b[i];
        triad[r] = 12.0 * (double)n / (now_s() - t) / 1e9;
        t = now_s();
        double s = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : s)
        for (long i = 0; i < n; i++) s += a[i] * c[i];
        read[r] = 8.0 * (double)n / (now_s() - t) / 1e9;
        sum += s;
    }
    double tb, tm, rb, rm;
    best_median(triad, REPS, &tb, &tm);
    best_median(read, REPS, &rb, &rm);
    printf("mem_triad_gbps %.1f %.1f mem_read_gbps %.1f %.1f threads %d\n", tb, tm, rb, rm, omp_get_max_threads());
    free(a), free(b), free(c);
    return sum > 0 ? 0 : 1; /* the sums keep the read loop; every product is positive */
}
