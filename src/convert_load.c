/* convert_load.c -- loading samples of a convert_source and bringing each to P_out points in the
 * unit sphere (see convert_source.h). Files are read serially; subsampling and normalisation run
 * OpenMP-parallel over the samples. */
#include <mpi.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convert_source.h"
#include "dataset.h"
#include "errors.h"
#include "npy.h"
#include "off_mesh.h"
#include "pointops.h"

/* Raw rows [start, start+count) of the h5 files into raw (count, s->points, 3). */
static int load_h5(const convert_source *s, long start, long count, float *raw, int32_t *labels, char *err)
{
    long end = start + count;
    for (int k = 0; k < s->n_files; k++) {
        long a = s->file_start[k], b = s->file_start[k + 1];
        long lo = start > a ? start : a, hi = end < b ? end : b;
        if (lo >= hi) continue;
        dataset d;
        if (dataset_open(&d, s->files[k], MPI_COMM_SELF, err)) return -1;
        int rc = dataset_read(&d, lo - a, hi - lo, raw + (lo - start) * s->points * 3, labels + (lo - start), err);
        dataset_close(&d);
        if (rc) return -1;
        for (long i = lo; i < hi; i++)
            if (labels[i - start] >= s->n_classes)
                return errf(err, "%s: /label: sample %ld has label %d, outside [0, %d)", s->files[k],
                            i - a, labels[i - start], s->n_classes);
    }
    return 0;
}

static int load_npy(const convert_source *s, long start, long count, float *raw, int32_t *labels, char *err)
{
    for (long i = 0; i < count; i++) {
        const char *path = s->items[start + i];
        float *p;
        long P;
        if (npy_read_points(path, &p, &P, err)) return -1;
        int rc = 0;
        if (P != s->points)
            rc = errf(err, "%s: has %ld points, the first file has %ld (all must match)", path, P, s->points);
        else if (P == 0) rc = errf(err, "%s: cloud has zero points", path);
        else if (!pc_all_finite(p, 3 * P)) rc = errf(err, "%s: NaN or Inf coordinate", path);
        if (!rc) memcpy(raw + i * P * 3, p, sizeof(float) * 3 * (size_t)P);
        free(p);
        if (rc) return -1;
        labels[i] = s->labels[start + i];
    }
    return 0;
}

static int load_off(const convert_source *s, long start, long count, long P_out, uint64_t seed,
                    float *out, int32_t *labels, char *err)
{
    for (long i = 0; i < count; i++) {
        const char *path = s->items[start + i];
        off_mesh m;
        if (off_mesh_read(path, &m, err)) return -1;
        int rc = off_mesh_sample(&m, P_out, seed, (uint64_t)(start + i), out + i * P_out * 3, path, err);
        off_mesh_free(&m);
        if (rc) return -1;
        labels[i] = s->labels[start + i];
    }
    return 0;
}

/* 0 if the P points are finite and not all equal; else -1 with err naming sample `index`: such
 * a cloud has no shape, and the unit-sphere normalisation would silently turn it into zeros. */
static int check_cloud(const float *pts, long P, long index, char *err)
{
    int spread = 0;
    for (long i = 0; i < P * 3; i++) {
        if (!isfinite(pts[i]))
            return errf(err, "sample %ld: point %ld holds a non-finite coordinate", index, i / 3);
        if (pts[i] != pts[i % 3]) spread = 1;
    }
    if (!spread)
        return errf(err, "sample %ld: degenerate cloud (%ld point%s, all equal): nothing to normalise",
                    index, P, P == 1 ? "" : "s");
    return 0;
}

int convert_source_load(const convert_source *s, long start, long count, long P_out, int use_fps,
                        uint64_t seed, float *out, int32_t *labels, char *err)
{
    if (s->format == FMT_OFF) {
        if (load_off(s, start, count, P_out, seed, out, labels, err)) return -1;
        for (long i = 0; i < count; i++)
            if (check_cloud(out + i * P_out * 3, P_out, start + i, err)) return -1;
#pragma omp parallel for schedule(static)
        for (long i = 0; i < count; i++) pc_normalize_unit_sphere(out + i * P_out * 3, P_out);
        return 0;
    }
    long P = s->points;
    float *raw = malloc(sizeof(float) * 3 * (size_t)(count * P + 1));
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(count * P_out + 1));
    if (!raw || !idx) {
        free(raw);
        free(idx);
        return errf(err, "out of memory for %ld samples of %ld points", count, P);
    }
    int rc = s->format == FMT_SHAPENET55 ? load_npy(s, start, count, raw, labels, err)
                                         : load_h5(s, start, count, raw, labels, err);
    for (long i = 0; !rc && i < count; i++) rc = check_cloud(raw + i * P * 3, P, start + i, err);
    if (!rc) {
#pragma omp parallel for schedule(dynamic)
        for (long i = 0; i < count; i++) {
            const float *src = raw + i * P * 3;
            float *dst = out + i * P_out * 3;
            if (use_fps && P_out < P) {
                fps_sample(src, P, P_out, 0, idx + i * P_out);
                pc_gather(src, idx + i * P_out, P_out, dst);
            } else {
                memcpy(dst, src, sizeof(float) * 3 * (size_t)P_out);
            }
            pc_normalize_unit_sphere(dst, P_out);
        }
    }
    free(raw);
    free(idx);
    return rc;
}
