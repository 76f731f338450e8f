/* pointops.h -- point-cloud operations: normalisation, farthest point sampling, kNN.
 *
 * Points are (P,3) float32, row-major xyz. All functions are deterministic:
 *  - fps_sample starts at index 0 (as PointNet++ / Point-MAE do); on equal distances the lowest
 *    index wins. Distances are squared Euclidean in float, summed x, y, z in that order.
 *    skip_origin = 1 reproduces a quirk of the official pointnet2 CUDA kernel (i2pmae-spec.md
 *    section 5): after index 0, a point whose squared norm is <= 1e-3 is never selected; if no
 *    other point is left, index 0 is selected again. 0 = plain FPS.
 *  - knn_query returns, per query, the k nearest points in ascending squared distance, ties broken
 *    by the lower point index. k must be <= P.
 *  - The indices are the same on every CPU: the AVX-512 paths (pointops.c) give the plain loops'
 *    results exactly.
 * The _batch variants run OpenMP over the batch; the single-cloud ones are serial.
 */
#ifndef I2P_POINTOPS_H
#define I2P_POINTOPS_H

#include <stdint.h>

/* Subtracts the centroid and divides by the largest norm (unit sphere). A cloud of identical
 * points is only centred. pts is (P,3). */
void pc_normalize_unit_sphere(float *pts, long P);

/* Returns 1 if all n floats are finite, else 0. */
int pc_all_finite(const float *v, long n);

/* pts (P,3) -> idx (M) with M <= P. */
void fps_sample(const float *pts, long P, long M, int skip_origin, int32_t *idx);
/* pts (B,P,3) -> idx (B,M). */
void fps_sample_batch(const float *pts, long B, long P, long M, int skip_origin, int32_t *idx);

/* pts (P,3), queries (Q,3) -> idx (Q,k) into pts. */
void knn_query(const float *pts, long P, const float *queries, long Q, int k, int32_t *idx);
/* pts (B,P,3), queries (B,Q,3) -> idx (B,Q,k). */
void knn_query_batch(const float *pts, long B, long P, const float *queries, long Q, int k, int32_t *idx);

/* Whether FPS and kNN may take their AVX-512 paths (1, the default: where the CPU has AVX-512) or
 * must run the plain loops (0), for the whole process; returns the previous setting. For tests and
 * benchmarks of the plain loops on AVX-512 machines: the indices are the same either way. Set it
 * while no FPS or kNN runs. */
int pointops_allow_avx512(int allow);

/* The batched ones with caller-provided scratch (no allocation): B times 4P floats (fps) or
 * 4P + k floats (knn) per cloud, cloud b's at b * the per-cloud size. */
void fps_sample_batch_ws(const float *pts, long B, long P, long M, int skip_origin, int32_t *idx,
                         float *work);
void knn_query_batch_ws(const float *pts, long B, long P, const float *queries, long Q, int k,
                        int32_t *idx, float *work);

/* Gathers rows: out (M,3) = pts[idx[m]]. */
void pc_gather(const float *pts, const int32_t *idx, long M, float *out);

#endif
