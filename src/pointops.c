/* pointops.c -- normalisation, farthest point sampling and kNN (see pointops.h).
 *
 * FPS costs M*P distance updates (about 8 flops each); kNN costs Q*P distances plus a top-k
 * selection that, after the first k candidates, mostly rejects with one compare. Both keep the
 * coordinates as structure-of-arrays in a scratch buffer so the distance loops vectorise. On
 * AVX-512 CPUs FPS's argmax runs in the distance loop's lanes (fps_step_avx512) and kNN with k <= 16
 * ranks only the points within a threshold (knn_one_avx512); both give the plain loops' indices
 * exactly (test_pointops compares them with brute force on ties, duplicates and odd sizes).
 */
#include "pointops.h"

#ifdef __x86_64__
#include <immintrin.h>
#endif
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void pc_normalize_unit_sphere(float *pts, long P)
{
    if (P <= 0) return;
    double c[3] = {0, 0, 0};
    for (long i = 0; i < P; i++)
        for (int d = 0; d < 3; d++) c[d] += pts[3 * i + d];
    for (int d = 0; d < 3; d++) c[d] /= (double)P;
    double m = 0;
    for (long i = 0; i < P; i++) {
        double s = 0;
        for (int d = 0; d < 3; d++) {
            double v = pts[3 * i + d] - c[d];
            s += v * v;
        }
        if (s > m) m = s;
    }
    m = sqrt(m);
    double inv = m > 0 ? 1.0 / m : 1.0;
    for (long i = 0; i < P; i++)
        for (int d = 0; d < 3; d++) pts[3 * i + d] = (float)((pts[3 * i + d] - c[d]) * inv);
}

int pc_all_finite(const float *v, long n)
{
    /* blocks of 1024 without a branch inside (the exponent test vectorises), up to the first block
     * with an infinity or a NaN */
    for (long i0 = 0; i0 < n; i0 += 1024) {
        long i1 = i0 + 1024 < n ? i0 + 1024 : n;
        uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
        for (long i = i0; i < i1; i++) {
            uint32_t x;
            memcpy(&x, v + i, sizeof x);
            bad |= (x & 0x7f800000u) == 0x7f800000u;
        }
        if (bad) return 0;
    }
    return 1;
}

/* One cloud with caller-provided scratch: fps 4P floats, knn 4P + k floats. */
static void fps_sample_ws(const float *pts, long P, long M, int skip_origin, int32_t *idx, float *buf);
static void knn_query_ws(const float *pts, long P, const float *queries, long Q, int k, int32_t *idx,
                         float *buf);

static int g_allow_avx512 = 1;

int pointops_allow_avx512(int allow)
{
    int was = g_allow_avx512;
    g_allow_avx512 = allow != 0;
    return was;
}

/* Whether the AVX-512 paths run: allowed (pointops_allow_avx512) and the CPU has them. */
static int use_avx512(void)
{
#ifdef __x86_64__
    return g_allow_avx512 && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

static void to_soa(const float *pts, long P, float *x, float *y, float *z)
{
    for (long i = 0; i < P; i++) {
        x[i] = pts[3 * i];
        y[i] = pts[3 * i + 1];
        z[i] = pts[3 * i + 2];
    }
}

#ifdef __x86_64__
/* Lanes [0, n) of a 16-lane block set, for the block's tail (n < 16). */
static __mmask16 lanes(long n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* The squared distances of points [i, i + 16) (lanes m) to (qx, qy, qz): x, y, z summed in that order
 * without FMA, the plain loops' float rounding; 0 in the lanes outside m. */
__attribute__((target("avx512f"))) static inline __m512 dist16(const float *x, const float *y, const float *z,
                                                               long i, __mmask16 m, __m512 qx, __m512 qy, __m512 qz)
{
    __m512 dx = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), qx);
    __m512 dy = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, y + i), qy);
    __m512 dz = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, z + i), qz);
    return _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(dx, dx), _mm512_mul_ps(dy, dy)), _mm512_mul_ps(dz, dz));
}

/* One FPS step on 16 lanes: dist = min(d, dist) to the point last, d from dist16 (vminps keeps
 * dist unless d < dist: the plain loop's `d < dist ? d : dist`), and the argmax of the updated dist:
 * per lane the first index with the lane's largest value (strict >, indices ascending), then over
 * the lanes the largest value, on equal values the lowest index; index 0 when no value exceeds -1
 * (the plain loop's best = -1, arg = 0). The same index as the plain loop, bit for bit the same dist. */
__attribute__((target("avx512f"))) static long fps_step_avx512(const float *x, const float *y, const float *z,
                                                               float *dist, long P, long last)
{
    __m512 lx = _mm512_set1_ps(x[last]), ly = _mm512_set1_ps(y[last]), lz = _mm512_set1_ps(z[last]);
    __m512 bv = _mm512_set1_ps(-1.0f);
    __m512i bi = _mm512_setzero_si512(), ix = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    for (long i = 0; i < P; i += 16) {
        __mmask16 m = lanes(P - i);
        __m512 nd = _mm512_min_ps(dist16(x, y, z, i, m, lx, ly, lz), _mm512_maskz_loadu_ps(m, dist + i));
        _mm512_mask_storeu_ps(dist + i, m, nd);
        __mmask16 gt = _mm512_mask_cmp_ps_mask(m, nd, bv, _CMP_GT_OQ);
        bv = _mm512_mask_mov_ps(bv, gt, nd);
        bi = _mm512_mask_mov_epi32(bi, gt, ix);
        ix = _mm512_add_epi32(ix, step);
    }
    float v[16];
    int32_t w[16];
    _mm512_storeu_ps(v, bv);
    _mm512_storeu_si512((void *)w, bi);
    float best = -1.0f;
    long arg = 0;
    for (int l = 0; l < 16; l++) {
        if (v[l] > best) best = v[l], arg = w[l];
        else if (v[l] == best && best > -1.0f && w[l] < arg) arg = w[l];
    }
    return arg;
}

/* Candidates of one kNN query held at most (more: select_topk over all P instead). */
enum { KNN_CAND = 256 };

/* One kNN query (k <= 16) on 16 lanes: d (P) = the squared distances as knn_query_ws's loop makes
 * them (dist16), then the k nearest by (distance, index) among the candidates d <= T, T the k-th
 * smallest of the 16 lanes' minima (each lane's minimum is a distinct point, so at least k points
 * lie within T and none of the k nearest beyond it): candidates compressed in index order, each
 * one's rank = the candidates before it by (distance, index), out[rank] for the ranks below k --
 * select_topk's order exactly. Returns 0 and leaves d complete for select_topk when a distance is
 * NaN (select_topk's order for NaN is its own) or the candidates exceed KNN_CAND (many equal
 * distances). */
__attribute__((target("avx512f"))) static int knn_one_avx512(const float *x, const float *y, const float *z,
                                                             long P, const float *q, int k, float *d, int32_t *out)
{
    __m512 qx = _mm512_set1_ps(q[0]), qy = _mm512_set1_ps(q[1]), qz = _mm512_set1_ps(q[2]);
    __m512 mn = _mm512_set1_ps(INFINITY);
    __mmask16 nan = 0;
    for (long i = 0; i < P; i += 16) {
        __mmask16 m = lanes(P - i);
        __m512 dd = dist16(x, y, z, i, m, qx, qy, qz);
        _mm512_mask_storeu_ps(d + i, m, dd);
        mn = _mm512_mask_min_ps(mn, m, dd, mn);
        nan |= _mm512_mask_cmp_ps_mask(m, dd, dd, _CMP_UNORD_Q);
    }
    if (nan) return 0;
    float lm[16], T = INFINITY;
    _mm512_storeu_ps(lm, mn);
    for (int l = 0; l < 16; l++) { /* T = the lane minimum of rank k - 1 by (value, lane) */
        __m512 v = _mm512_set1_ps(lm[l]);
        int rank = __builtin_popcount(_mm512_cmp_ps_mask(mn, v, _CMP_LT_OQ)) +
                   __builtin_popcount(_mm512_mask_cmp_ps_mask(lanes(l), mn, v, _CMP_EQ_OQ));
        if (rank == k - 1) T = lm[l];
    }
    __m512 vt = _mm512_set1_ps(T);
    float cv[KNN_CAND + 16];
    int32_t ci[KNN_CAND + 16];
    long c = 0;
    __m512i ix = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    for (long i = 0; i < P; i += 16) {
        __mmask16 m = lanes(P - i);
        __m512 dd = _mm512_maskz_loadu_ps(m, d + i);
        __mmask16 hit = _mm512_mask_cmp_ps_mask(m, dd, vt, _CMP_LE_OQ);
        if (c > KNN_CAND) return 0; /* stored whole blocks, without a branch on hit */
        _mm512_storeu_ps(cv + c, _mm512_maskz_compress_ps(hit, dd));
        _mm512_storeu_si512((void *)(ci + c), _mm512_maskz_compress_epi32(hit, ix));
        c += __builtin_popcount(hit);
        ix = _mm512_add_epi32(ix, step);
    }
    for (long j = 0; j < c; j++) {
        __m512 vj = _mm512_set1_ps(cv[j]);
        int rank = 0;
        for (long t = 0; t < c && rank < k; t += 16) { /* ranks only grow: stop at k */
            __mmask16 m = lanes(c - t), before = lanes(j - t < 0 ? 0 : j - t);
            __m512 v = _mm512_maskz_loadu_ps(m, cv + t);
            __mmask16 lt = _mm512_mask_cmp_ps_mask(m, v, vj, _CMP_LT_OQ);
            __mmask16 eq = _mm512_mask_cmp_ps_mask(m & before, v, vj, _CMP_EQ_OQ);
            rank += __builtin_popcount(lt | eq);
        }
        if (rank < k) out[rank] = ci[j];
    }
    return 1;
}
#endif

void fps_sample(const float *pts, long P, long M, int skip_origin, int32_t *idx)
{
    if (M <= 0 || P <= 0) return;
    float *buf = malloc(sizeof(float) * 4 * (size_t)P);
    fps_sample_ws(pts, P, M, skip_origin, idx, buf);
    free(buf);
}

/* The pointnet2 kernel's rule (skip_origin): a point with x*x + y*y + z*z <= 1e-3 (float sum, double
 * compare, as `if (mag <= 1e-3) continue;`) is never a candidate after index 0. Its distance is set
 * to -1 here: the running minimum keeps it there and the argmax (best starts at -1, strict >)
 * never takes it; when no candidate is left, index 0 is taken, as the kernel's besti = 0. */
static void fps_sample_ws(const float *pts, long P, long M, int skip_origin, int32_t *idx, float *buf)
{
    if (M <= 0 || P <= 0) return;
    float *x = buf, *y = buf + P, *z = buf + 2 * P, *dist = buf + 3 * P;
    to_soa(pts, P, x, y, z);
    for (long i = 0; i < P; i++) {
        float mag = x[i] * x[i] + y[i] * y[i] + z[i] * z[i];
        dist[i] = skip_origin && (double)mag <= 1e-3 ? -1.0f : FLT_MAX;
    }
    long last = 0;
    idx[0] = 0;
#ifdef __x86_64__
    if (use_avx512()) {
        for (long m = 1; m < M; m++) idx[m] = (int32_t)(last = fps_step_avx512(x, y, z, dist, P, last));
        return;
    }
#endif
    for (long m = 1; m < M; m++) {
        const float lx = x[last], ly = y[last], lz = z[last];
#pragma omp simd
        for (long i = 0; i < P; i++) {
            float dx = x[i] - lx, dy = y[i] - ly, dz = z[i] - lz;
            float d = dx * dx + dy * dy + dz * dz;
            dist[i] = d < dist[i] ? d : dist[i];
        }
        float best = -1.0f;
        long arg = 0;
        for (long i = 0; i < P; i++)
            if (dist[i] > best) { best = dist[i]; arg = i; }
        idx[m] = (int32_t)arg;
        last = arg;
    }
}

void fps_sample_batch(const float *pts, long B, long P, long M, int skip_origin, int32_t *idx)
{
#pragma omp parallel for schedule(dynamic)
    for (long b = 0; b < B; b++) fps_sample(pts + b * P * 3, P, M, skip_origin, idx + b * M);
}

void fps_sample_batch_ws(const float *pts, long B, long P, long M, int skip_origin, int32_t *idx,
                         float *work)
{
#pragma omp parallel for schedule(dynamic)
    for (long b = 0; b < B; b++)
        fps_sample_ws(pts + b * P * 3, P, M, skip_origin, idx + b * M, work + b * 4 * P);
}

/* Top-k by (distance, index) over one query: scans i ascending, so on equal distances the earlier
 * (lower) index stays ahead. */
static void select_topk(const float *d, long P, int k, int32_t *out, float *best)
{
    int n = 0;
    for (long i = 0; i < P; i++) {
        float v = d[i];
        if (n == k && !(v < best[k - 1])) continue;
        int pos = n < k ? n : k - 1;
        while (pos > 0 && v < best[pos - 1]) {
            best[pos] = best[pos - 1];
            out[pos] = out[pos - 1];
            pos--;
        }
        best[pos] = v;
        out[pos] = (int32_t)i;
        if (n < k) n++;
    }
}

void knn_query(const float *pts, long P, const float *queries, long Q, int k, int32_t *idx)
{
    if (Q <= 0 || k <= 0) return;
    float *buf = malloc(sizeof(float) * (4 * (size_t)P + (size_t)k));
    knn_query_ws(pts, P, queries, Q, k, idx, buf);
    free(buf);
}

static void knn_query_ws(const float *pts, long P, const float *queries, long Q, int k, int32_t *idx,
                         float *buf)
{
    if (Q <= 0 || k <= 0) return;
    float *x = buf, *y = buf + P, *z = buf + 2 * P, *d = buf + 3 * P, *best = buf + 4 * P;
    to_soa(pts, P, x, y, z);
    int wide = k <= 16 && use_avx512();
    for (long q = 0; q < Q; q++) {
#ifdef __x86_64__
        if (wide) {
            if (!knn_one_avx512(x, y, z, P, queries + 3 * q, k, d, idx + q * k))
                select_topk(d, P, k, idx + q * k, best);
            continue;
        }
#endif
        const float qx = queries[3 * q], qy = queries[3 * q + 1], qz = queries[3 * q + 2];
#pragma omp simd
        for (long i = 0; i < P; i++) {
            float dx = x[i] - qx, dy = y[i] - qy, dz = z[i] - qz;
            d[i] = dx * dx + dy * dy + dz * dz;
        }
        select_topk(d, P, k, idx + q * k, best);
    }
}

void knn_query_batch(const float *pts, long B, long P, const float *queries, long Q, int k,
                     int32_t *idx)
{
#pragma omp parallel for schedule(dynamic)
    for (long b = 0; b < B; b++)
        knn_query(pts + b * P * 3, P, queries + b * Q * 3, Q, k, idx + b * Q * k);
}

void pc_gather(const float *pts, const int32_t *idx, long M, float *out)
{
    for (long m = 0; m < M; m++) memcpy(out + 3 * m, pts + 3 * (long)idx[m], 3 * sizeof(float));
}

void knn_query_batch_ws(const float *pts, long B, long P, const float *queries, long Q, int k,
                        int32_t *idx, float *work)
{
#pragma omp parallel for schedule(dynamic)
    for (long b = 0; b < B; b++)
        knn_query_ws(pts + b * P * 3, P, queries + b * Q * 3, Q, k, idx + b * Q * k, work + b * (4 * P + k));
}
