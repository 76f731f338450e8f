/* nn_row_sums.c -- column sums over many rows with the rows split between threads, in an order fixed
 * by the row count alone: rows in blocks of NN_ROW_BLOCK, each block summed in row order into its own
 * partial (one thread per block), the partials added into the running sums in block order (one thread
 * per column range). Threads that each stream whole rows read memory 3-4x faster than threads that
 * split every row's columns between them (the order this replaced): 28 GB/s against 7-9 GB/s on the
 * 2-core development machine for a (65536, 512) float sweep (docs/performance.md, "rowsums").
 */
#include "nn.h"

#include <string.h>

long nn_row_sums_scratch(long width)
{
    return NN_ROW_SUMS_BLOCKS * width;
}

/* 2C sums, C doubles that hold C floats (nn_batchnorm_sums_rows' 1 / sqrt(var + eps)), the scratch. */
long nn_bn_acc_doubles(long C)
{
    return 3 * C + nn_row_sums_scratch(2 * C);
}

/* Columns per task of the partials' reduction: a few cache lines of acc per thread task. */
enum { REDUCE_COLS = 256 };

void nn_row_block_sums(double *acc, double *part, long width, long rows, nn_row_sums_fn *fn, const void *arg)
{
    long n_blocks = (rows + NN_ROW_BLOCK - 1) / NN_ROW_BLOCK;
    for (long b0 = 0; b0 < n_blocks; b0 += NN_ROW_SUMS_BLOCKS) {
        long nb = n_blocks - b0 < NN_ROW_SUMS_BLOCKS ? n_blocks - b0 : NN_ROW_SUMS_BLOCKS;
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (long q = 0; q < nb; q++) { /* block b0 + q into partial q */
                double *p = part + q * width;
                long r0 = (b0 + q) * NN_ROW_BLOCK, r1 = r0 + NN_ROW_BLOCK < rows ? r0 + NN_ROW_BLOCK : rows;
                memset(p, 0, sizeof(double) * (size_t)width);
                fn(p, r0, r1, arg);
            }
#pragma omp for schedule(static)
            for (long j0 = 0; j0 < width; j0 += REDUCE_COLS) { /* acc += partials, in block order */
                long j1 = j0 + REDUCE_COLS < width ? j0 + REDUCE_COLS : width;
                for (long q = 0; q < nb; q++) {
                    const double *p = part + q * width;
#pragma omp simd
                    for (long j = j0; j < j1; j++) acc[j] += p[j];
                }
            }
        }
    }
}

long nn_col_sums_scratch(long N)
{
    return N + nn_row_sums_scratch(N);
}

/* part (N) += the column sums of rows (rows,N) of x, each column in row order; the same loop for the
 * baseline ISA and for AVX2 (per column the same additions in the same order: the same bits). */
static inline void col_rows_body(double *part, const float *x, long rows, long N)
{
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * N;
#pragma omp simd
        for (long j = 0; j < N; j++) part[j] += row[j];
    }
}

static void col_rows_base(double *part, const float *x, long rows, long N)
{
    col_rows_body(part, x, rows, N);
}

#ifdef __x86_64__
__attribute__((target("avx2"))) static void col_rows_avx2(double *part, const float *x, long rows, long N)
{
    col_rows_body(part, x, rows, N);
}
#endif

void nn_col_sums_rows(double *part, const float *x, long rows, long N)
{
#ifdef __x86_64__
    if (__builtin_cpu_supports("avx2")) {
        col_rows_avx2(part, x, rows, N);
        return;
    }
#endif
    col_rows_base(part, x, rows, N);
}

typedef struct { const float *x; long N; } col_sums_arg;

static void col_sums_block(double *part, long r0, long r1, const void *arg)
{
    const col_sums_arg *a = arg;
    nn_col_sums_rows(part, a->x + r0 * a->N, r1 - r0, a->N);
}

void nn_col_sums_by(float *db, long M, long N, double *scratch, nn_row_sums_fn *fn, const void *arg)
{
    memset(scratch, 0, sizeof(double) * (size_t)N);
    nn_row_block_sums(scratch, scratch + N, N, M, fn, arg);
    for (long j = 0; j < N; j++) db[j] += (float)scratch[j];
}

void nn_col_sums_add(float *db, const float *x, long M, long N, double *scratch)
{
    col_sums_arg a = {x, N};
    nn_col_sums_by(db, M, N, scratch, col_sums_block, &a);
}
