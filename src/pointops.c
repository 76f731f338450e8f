/* pointops.c -- normalisation, farthest point sampling and kNN (see pointops.h).
 *
 * FPS costs M*P distance updates (about 8 flops each); kNN costs Q*P distances plus a top-k
 * selection that, after the first k candidates, mostly rejects with one compare. Both keep the
 * coordinates as structure-of-arrays in a scratch buffer so the distance loops vectorise.
 */
#include "pointops.h"

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
    for (long i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* One cloud with caller-provided scratch: fps 4P floats, knn 4P + k floats. */
static void fps_sample_ws(const float *pts, long P, long M, int skip_origin, int32_t *idx, float *buf);
static void knn_query_ws(const float *pts, long P, const float *queries, long Q, int k, int32_t *idx,
                         float *buf);

static void to_soa(const float *pts, long P, float *x, float *y, float *z)
{
    for (long i = 0; i < P; i++) {
        x[i] = pts[3 * i];
        y[i] = pts[3 * i + 1];
        z[i] = pts[3 * i + 2];
    }
}

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
    for (long q = 0; q < Q; q++) {
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
