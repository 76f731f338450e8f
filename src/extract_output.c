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
    long missing = 0;
    int rc = features_identity_check(&old.f, m, 1, err);
    if (!rc) rc = features_count_missing(&old, &missing, err);
    if (!rc && missing) rc = errf(err, "%s: complete file with %ld samples missing", path, missing);
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

int output_buffer_alloc(output_buffer *b, long cap, const features_meta *m, char *err)
{
    memset(b, 0, sizeof *b);
    *b = (output_buffer){.cap = cap, .m = *m};
    int oom = 0;
    b->rows = malloc(sizeof(long) * (size_t)(cap ? cap : 1));
    oom |= !b->rows;
    for (int id = 0; id < FEATURES_DONE; id++) {
        size_t n = features_row_bytes(m, (features_dataset_id)id) * (size_t)cap;
        b->data[id] = malloc(n ? n : 1);
        oom |= !b->data[id];
    }
    if (oom) {
        output_buffer_free(b);
        return errf(err, "out of memory for a flush buffer of %ld samples", cap);
    }
    return 0;
}

void output_buffer_free(output_buffer *b)
{
    free(b->rows);
    for (int id = 0; id < FEATURES_DONE; id++) free(b->data[id]);
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
    const features_meta *m = &b->m;
    const long V = m->views, gg = (long)m->grid * m->grid, C = m->feat_dim, P = m->points;
    const long np = V * gg * C, nc = V * C, at = b->count;
    float *sal_out = b->data[FEATURES_SALIENCY], *ps_out = b->data[FEATURES_POINT_SALIENCY];
    int16_t *pix_out = b->data[FEATURES_PIXEL];
    int32_t *lab_out = b->data[FEATURES_LABEL];
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        long k = at + i;
        if (m->fp32) {
            memcpy((float *)b->data[FEATURES_PATCH] + k * np, patch + i * np, sizeof(float) * (size_t)np);
            memcpy((float *)b->data[FEATURES_CLS] + k * nc, cls + i * nc, sizeof(float) * (size_t)nc);
        } else {
            half_from_floats(patch + i * np, np, (uint16_t *)b->data[FEATURES_PATCH] + k * np);
            half_from_floats(cls + i * nc, nc, (uint16_t *)b->data[FEATURES_CLS] + k * nc);
        }
        memcpy(sal_out + k * V * gg, saliency + i * V * gg, sizeof(float) * (size_t)(V * gg));
        memcpy(pix_out + k * V * P * 2, pixel + i * V * P * 2, sizeof(int16_t) * (size_t)(V * P * 2));
        point_saliency(saliency + i * V * gg, pixel + i * V * P * 2, m->views, m->grid, m->image, P,
                       ps_out + k * P);
        b->rows[k] = rows[i];
        lab_out[k] = label[i];
    }
    b->count += n;
}

int output_buffer_flush(output_buffer *b, features_file *ff, double *bytes, char *err)
{
    features_rows r = {.rows = b->rows, .count = b->count};
    for (int id = 0; id < FEATURES_DONE; id++) r.data[id] = b->data[id];
    int rc = features_write_rows(ff, &r, err);
    if (!rc) *bytes += (double)b->count * (double)features_sample_bytes(&b->m);
    b->count = 0;
    return rc;
}
