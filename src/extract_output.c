/* extract_output.c -- opening the features output and the flush buffer (see extract_output.h). */
#include "extract_output.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bicubic.h"
#include "errors.h"
#include "half.h"

/* A complete final file: same identity -> 1, another -> -1 (error), unreadable -> -1. */
static int final_matches(const char *path, MPI_Comm io, const features_meta *m, char *err)
{
    features_file old;
    if (features_open(&old, path, io, err)) {
        err_prefix(err, "existing output (use --force to replace it)");
        return -1;
    }
    char *want = features_identity_json(m);
    char *have = malloc(65536);
    int rc = have ? h5_attr_read_str(&old.f, "/", "identity", have, 65536, err)
                  : errf(err, "%s: out of memory", path);
    if (!rc && strcmp(want, have))
        rc = errf(err, "%s: exists and was made with another configuration (%s; now %s): use --force "
                  "to replace it", path, have, want);
    long missing = 0;
    if (!rc) rc = features_count_missing(&old, &missing, err);
    if (!rc && missing) rc = errf(err, "%s: complete file with %ld samples missing", path, missing);
    free(want);
    free(have);
    features_close(&old);
    return rc ? -1 : 1;
}

int extract_output_open(features_file *ff, const char *path, MPI_Comm io, const features_meta *m,
                        const char *config_json, int force, output_state *state, uint8_t *done,
                        char *err)
{
    int rank;
    MPI_Comm_rank(io, &rank);
    memset(done, 0, (size_t)m->n);
    if (!force) {
        int exists = rank == 0 ? access(path, F_OK) == 0 : 0;
        MPI_Bcast(&exists, 1, MPI_INT, 0, io);
        if (exists) {
            if (final_matches(path, io, m, err) < 0) return -1;
            memset(done, 1, (size_t)m->n);
            *state = OUTPUT_COMPLETE;
            return 0;
        }
        int r = features_resume(ff, path, io, m, err);
        if (r < 0) return -1;
        if (r == 1) {
            *state = OUTPUT_RESUMED;
            if (features_read_done(ff, done, err)) {
                features_close_partial(ff);
                return -1;
            }
            return 0;
        }
    }
    *state = OUTPUT_CREATED;
    return features_create(ff, path, io, m, config_json, force, err);
}

static void *alloc_bytes(size_t n, int *oom)
{
    void *p = malloc(n ? n : 1);
    if (!p) *oom = 1;
    return p;
}

int output_buffer_alloc(output_buffer *b, long cap, int V, int g, int C, int S, long P, int fp32,
                        char *err)
{
    memset(b, 0, sizeof *b);
    *b = (output_buffer){.cap = cap, .V = V, .g = g, .C = C, .S = S, .P = P, .fp32 = fp32};
    size_t el = fp32 ? sizeof(float) : sizeof(uint16_t);
    int oom = 0;
    b->rows = alloc_bytes(sizeof(long) * (size_t)cap, &oom);
    b->patch = alloc_bytes(el * (size_t)(cap * V * g * g * C), &oom);
    b->cls = alloc_bytes(el * (size_t)(cap * V * C), &oom);
    b->saliency = alloc_bytes(sizeof(float) * (size_t)(cap * V * g * g), &oom);
    b->point_saliency = alloc_bytes(sizeof(float) * (size_t)(cap * P), &oom);
    b->pixel = alloc_bytes(sizeof(int16_t) * (size_t)(cap * V * P * 2), &oom);
    b->label = alloc_bytes(sizeof(int32_t) * (size_t)cap, &oom);
    if (oom) {
        output_buffer_free(b);
        return errf(err, "out of memory for a flush buffer of %ld samples", cap);
    }
    return 0;
}

void output_buffer_free(output_buffer *b)
{
    free(b->rows);
    free(b->patch);
    free(b->cls);
    free(b->saliency);
    free(b->point_saliency);
    free(b->pixel);
    free(b->label);
    memset(b, 0, sizeof *b);
}

/* sal (V, g*g), pixel (V, P, 2) -> ps (P): bicubic read at each point's pixel, mean over the views
 * where the point is inside (0 if none). */
static void point_saliency(const float *sal, const int16_t *pixel, int V, int g, int S, long P,
                           float *ps)
{
    for (long p = 0; p < P; p++) {
        float sum = 0.0f;
        int n = 0;
        for (int v = 0; v < V; v++) {
            const int16_t *px = pixel + ((long)v * P + p) * 2;
            if (px[0] < 0) continue;
            sum += bicubic_sample1(sal + (long)v * g * g, g, S, px[0], px[1]);
            n++;
        }
        ps[p] = n ? sum / (float)n : 0.0f;
    }
}

void output_buffer_add(output_buffer *b, long n, const long *rows, const float *patch,
                       const float *cls, const float *saliency, const int16_t *pixel,
                       const int32_t *label)
{
    const long V = b->V, gg = (long)b->g * b->g, C = b->C, P = b->P, at = b->count;
    const long np = V * gg * C, nc = V * C;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        long k = at + i;
        if (b->fp32) {
            memcpy((float *)b->patch + k * np, patch + i * np, sizeof(float) * (size_t)np);
            memcpy((float *)b->cls + k * nc, cls + i * nc, sizeof(float) * (size_t)nc);
        } else {
            half_from_floats(patch + i * np, np, (uint16_t *)b->patch + k * np);
            half_from_floats(cls + i * nc, nc, (uint16_t *)b->cls + k * nc);
        }
        memcpy(b->saliency + k * V * gg, saliency + i * V * gg, sizeof(float) * (size_t)(V * gg));
        memcpy(b->pixel + k * V * P * 2, pixel + i * V * P * 2, sizeof(int16_t) * (size_t)(V * P * 2));
        point_saliency(saliency + i * V * gg, pixel + i * V * P * 2, b->V, b->g, b->S, P,
                       b->point_saliency + k * P);
        b->rows[k] = rows[i];
        b->label[k] = label[i];
    }
    b->count += n;
}

int output_buffer_flush(output_buffer *b, features_file *ff, double *bytes, char *err)
{
    features_rows r = {b->rows, b->count, b->patch, b->cls, b->saliency, b->point_saliency,
                       b->pixel, b->label};
    int rc = features_write_rows(ff, &r, err);
    if (!rc) {
        const double V = b->V, gg = (double)b->g * b->g, P = (double)b->P;
        double el = b->fp32 ? 4.0 : 2.0;
        *bytes += (double)b->count * (el * V * gg * b->C + el * V * b->C + 4.0 * V * gg +
                                      2.0 * V * P * 2 + 4.0 * P + 4.0 + 1.0);
    }
    b->count = 0;
    return rc;
}
