/* features_read.c -- opening, validating and reading the features file (see features_file.h). */
#include "features_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "half.h"
#include "pointops.h"

typedef struct {
    long row, pos;
} row_pos;

static int cmp_row_pos(const void *a, const void *b)
{
    const row_pos *x = a, *y = b;
    return x->row < y->row ? -1 : (x->row > y->row ? 1 : (x->pos < y->pos ? -1 : x->pos > y->pos));
}

int features_open(features_file *ff, const char *path, MPI_Comm comm, char *err)
{
    memset(ff, 0, sizeof *ff);
    if (h5_open_read(&ff->f, path, comm, err)) return -1;
    if (features_meta_read(&ff->f, &ff->m, err) || features_layout_check(&ff->f, &ff->m, err)) {
        h5_close(&ff->f);
        return -1;
    }
    return 0;
}

void features_close(features_file *ff) { h5_close(&ff->f); }

int features_read_done(features_file *ff, uint8_t *done, char *err)
{
    features_dataset d = features_dataset_of(&ff->m, FEATURES_DONE);
    return h5_read_all(&ff->f, d.name, d.mem_type, done, err);
}

int features_count_missing(features_file *ff, long *missing, char *err)
{
    uint8_t *done = malloc((size_t)ff->m.n);
    if (!done) return errf(err, "%s: out of memory", ff->f.path);
    int rc = features_read_done(ff, done, err);
    long k = 0;
    for (long i = 0; !rc && i < ff->m.n; i++) k += !done[i];
    free(done);
    *missing = k;
    return rc;
}

int features_check_dataset(features_file *ff, dataset *d, int min_views, char *err)
{
    const features_meta *m = &ff->m;
    if (m->n != d->n)
        return errf(err, "%s: has %ld samples but dataset %s has %ld", ff->f.path, m->n, d->f.path, d->n);
    if (m->points != d->points)
        return errf(err, "%s: has %ld points per sample but dataset %s has %ld", ff->f.path, m->points,
                    d->f.path, d->points);
    if (m->views < min_views)
        return errf(err, "%s: has %d views, %d needed", ff->f.path, m->views, min_views);
    char fp[17];
    if (features_fingerprint(d, fp, err)) return -1;
    if (strcmp(fp, m->source_fingerprint))
        return errf(err, "%s: was extracted from another dataset (%s, fingerprint %s) than %s "
                    "(fingerprint %s)", ff->f.path, m->source, m->source_fingerprint, d->f.path, fp);
    long missing;
    if (features_count_missing(ff, &missing, err)) return -1;
    if (missing) return errf(err, "%s: %ld samples are not extracted yet", ff->f.path, missing);
    return 0;
}

/* Reads the increasing rows uniq[0..nu) into tmp. On a file of one process each run of
 * consecutive rows is one plain hyperslab read: HDF5 takes ~100x longer to walk a union of row
 * hyperslabs on these chunked datasets (25 ms vs 0.3 ms for 8 rows of /patch) and nothing here is
 * collective with other ranks. On a shared file every rank makes the one collective call. */
static int read_unique_rows(features_file *ff, features_dataset d, size_t row_bytes,
                            const long *uniq, long nu, char *tmp, char *err)
{
    int size = 1;
    MPI_Comm_size(ff->f.comm, &size);
    if (size > 1 || (nu > 0 && (uniq[0] < 0 || uniq[nu - 1] >= ff->m.n)))
        return h5_read_row_list(&ff->f, d.name, d.mem_type, uniq, nu, tmp, err); /* its errors */
    for (long i = 0; i < nu;) {
        long j = i + 1;
        while (j < nu && uniq[j] == uniq[j - 1] + 1) j++;
        if (h5_read_rows(&ff->f, d.name, d.mem_type, uniq[i], j - i, tmp + (size_t)i * row_bytes, err))
            return -1;
        i = j;
    }
    return 0;
}

/* Reads `count` rows of dataset id in any order into out (in its memory type): sorted unique rows
 * are read collectively, then placed. */
static int read_rows_any(features_file *ff, features_dataset_id id, const long *rows, long count,
                         void *out, char *err)
{
    features_dataset d = features_dataset_of(&ff->m, id);
    size_t row_bytes = features_row_bytes(&ff->m, id);
    row_pos *rp = malloc(sizeof *rp * (size_t)(count ? count : 1));
    long *uniq = malloc(sizeof *uniq * (size_t)(count ? count : 1));
    char *tmp = malloc(row_bytes * (size_t)(count ? count : 1));
    if (!rp || !uniq || !tmp) {
        free(rp);
        free(uniq);
        free(tmp);
        errf(err, "%s: %s: out of memory for %ld rows", ff->f.path, d.name, count);
        h5_read_row_list(&ff->f, d.name, d.mem_type, NULL, 0, NULL, err); /* keep the collective going */
        return -1;
    }
    for (long i = 0; i < count; i++) rp[i] = (row_pos){rows[i], i};
    if (count > 0) qsort(rp, (size_t)count, sizeof *rp, cmp_row_pos);
    long nu = 0;
    for (long i = 0; i < count; i++)
        if (nu == 0 || uniq[nu - 1] != rp[i].row) uniq[nu++] = rp[i].row;
    int rc = read_unique_rows(ff, d, row_bytes, uniq, nu, tmp, err);
    for (long i = 0, u = -1; !rc && i < count; i++) {
        if (i == 0 || rp[i].row != rp[i - 1].row) u++;
        memcpy((char *)out + (size_t)rp[i].pos * row_bytes, tmp + (size_t)u * row_bytes, row_bytes);
    }
    free(rp);
    free(uniq);
    free(tmp);
    return rc;
}

/* Features are model inputs: a NaN or an infinity (a damaged file, a broken ViT) is an error, not
 * a silently wrong mask or loss. */
static int check_finite(features_file *ff, features_dataset_id id, const long *rows, long count,
                        const float *v, char *err)
{
    long per_row = features_row_elems(&ff->m, id);
    if (pc_all_finite(v, count * per_row)) return 0; /* the vectorised test; below, which one */
    for (long i = 0; i < count * per_row; i++)
        if (!isfinite(v[i]))
            return errf(err, "%s: %s: sample %ld holds a non-finite value (%g)", ff->f.path,
                        features_dataset_of(&ff->m, id).name, rows[i / per_row], v[i]);
    return 0;
}

/* /patch or /cls rows as float, whichever type they are stored in. */
static int read_as_float(features_file *ff, features_dataset_id id, const long *rows, long count,
                         float *out, char *err)
{
    if (ff->m.fp32)
        return read_rows_any(ff, id, rows, count, out, err) ? -1
                                                            : check_finite(ff, id, rows, count, out, err);
    /* half rows land in the second half of out's own bytes, then expand forwards in place */
    long n = count * features_row_elems(&ff->m, id);
    uint16_t *h = (uint16_t *)out + n;
    if (read_rows_any(ff, id, rows, count, h, err)) return -1;
    half_to_floats(h, n, out);
    return check_finite(ff, id, rows, count, out, err);
}

int features_read_patch(features_file *ff, const long *rows, long count, float *out, char *err)
{
    return read_as_float(ff, FEATURES_PATCH, rows, count, out, err);
}

int features_read_cls(features_file *ff, const long *rows, long count, float *out, char *err)
{
    return read_as_float(ff, FEATURES_CLS, rows, count, out, err);
}

int features_read_saliency(features_file *ff, const long *rows, long count, float *out, char *err)
{
    return read_rows_any(ff, FEATURES_SALIENCY, rows, count, out, err) ? -1
           : check_finite(ff, FEATURES_SALIENCY, rows, count, out, err);
}

int features_read_pixel(features_file *ff, const long *rows, long count, int16_t *out, char *err)
{
    if (read_rows_any(ff, FEATURES_PIXEL, rows, count, out, err)) return -1;
    long per_row = features_row_elems(&ff->m, FEATURES_PIXEL), n = count * per_row;
    int16_t lo = 0, hi = 0; /* min and max first (a loop that vectorises); below, which one */
#pragma omp simd reduction(min : lo) reduction(max : hi)
    for (long i = 0; i < n; i++) {
        lo = out[i] < lo ? out[i] : lo;
        hi = out[i] > hi ? out[i] : hi;
    }
    if (lo >= -1 && hi < ff->m.image) return 0;
    for (long i = 0; i < n; i++) /* -1: outside the view; else a pixel index */
        if (out[i] < -1 || out[i] >= ff->m.image)
            return errf(err, "%s: /pixel: sample %ld holds %d, outside [-1, %d)", ff->f.path,
                        rows[i / per_row], out[i], ff->m.image);
    return 0;
}

int features_read_point_saliency(features_file *ff, const long *rows, long count, float *out,
                                 char *err)
{
    return read_rows_any(ff, FEATURES_POINT_SALIENCY, rows, count, out, err) ? -1
           : check_finite(ff, FEATURES_POINT_SALIENCY, rows, count, out, err);
}

int features_read_label(features_file *ff, const long *rows, long count, int32_t *out, char *err)
{
    return read_rows_any(ff, FEATURES_LABEL, rows, count, out, err);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Samples read at a time for the fingerprint (a few MB for clouds of 2048 points). */
#define FINGERPRINT_BLOCK 256L

int features_fingerprint(dataset *d, char out[17], char *err)
{
    long block = d->n < FINGERPRINT_BLOCK ? d->n : FINGERPRINT_BLOCK;
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)d->n);
    float *pts = malloc(sizeof(float) * (size_t)d->points * 3 * (size_t)(block > 0 ? block : 1));
    int rc = lab && pts ? 0 : errf(err, "%s: out of memory for the fingerprint", d->f.path);
    if (!rc) rc = h5_read_all(&d->f, d->label_name, H5T_NATIVE_INT32, lab, err);
    uint64_t h = 1469598103934665603ull;
    int64_t dims[2] = {d->n, d->points};
    h = fnv1a(h, dims, sizeof dims);
    if (!rc) h = fnv1a(h, lab, sizeof(int32_t) * (size_t)d->n);
    /* every cloud, in order (collective reads: every rank of d's communicator reads them all) */
    for (long s = 0; s < d->n; s += block) {
        long n = d->n - s < block ? d->n - s : block;
        if (dataset_read(d, s, rc ? 0 : n, pts, NULL, err)) rc = -1;
        if (!rc) h = fnv1a(h, pts, sizeof(float) * (size_t)(n * d->points * 3));
    }
    if (!rc) snprintf(out, 17, "%016llx", (unsigned long long)h);
    free(lab);
    free(pts);
    return rc;
}
