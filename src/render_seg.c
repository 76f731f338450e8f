/* render_seg.c -- the picture of one shape's true and predicted parts (see render_seg.h). */
#include "render_seg.h"

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "h5io.h"
#include "png_write.h"

#define GAP_PX 4
#define N_COLOURS 12

static const uint8_t palette[N_COLOURS][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189}, {140, 86, 75},
    {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}, {0, 0, 128},     {128, 64, 0}};

/* Panel (row v, column col): points projected on axes (v+1)%3 (down) and v (right), scaled by the
 * shape's extent, each a 3x3 dot in the colour of its label. */
static void draw_panel(uint8_t *canvas, int width, int S, int v, int col, const float *p, const int32_t *label,
                       long n, const float lo[3], float span)
{
    int ay = (v + 1) % 3, ax = v % 3, y0 = v * (S + GAP_PX), x0 = col * (S + GAP_PX);
    for (int y = 0; y < S; y++) memset(canvas + ((long)(y0 + y) * width + x0) * 3, 255, (size_t)S * 3);
    for (long i = 0; i < n; i++) {
        const float *q = p + i * 3;
        const uint8_t *rgb = palette[(label[i] % N_COLOURS + N_COLOURS) % N_COLOURS];
        int py = (int)((q[ay] - lo[ay]) / span * (S - 8)) + 4, px = (int)((q[ax] - lo[ax]) / span * (S - 8)) + 4;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int yy = py + dy, xx = px + dx;
                if (yy < 0 || yy >= S || xx < 0 || xx >= S) continue;
                memcpy(canvas + ((long)(y0 + yy) * width + x0 + xx) * 3, rgb, 3);
            }
    }
}

/* The sample's rows of the predictions file, after checking its shapes. */
static int read_sample(const render_seg_options *o, long *P, float **pts, int32_t **seg, int32_t **pred,
                       int32_t *category, char *err)
{
    h5file f;
    if (h5_open_read(&f, o->predictions, MPI_COMM_SELF, err)) return -1;
    hsize_t want3[3] = {0, 0, 3}, dims[H5IO_MAX_RANK];
    int rank, rc = h5_check_shape(&f, "/points", 3, want3, err);
    if (!rc) rc = h5_dims(&f, "/points", &rank, dims, err);
    hsize_t want2[2] = {dims[0], dims[1]}, want1[1] = {dims[0]};
    if (!rc) rc = h5_check_shape(&f, "/seg", 2, want2, err);
    if (!rc) rc = h5_check_shape(&f, "/pred", 2, want2, err);
    if (!rc) rc = h5_check_shape(&f, "/category", 1, want1, err);
    if (!rc && (o->sample < 0 || o->sample >= (long)dims[0]))
        rc = dims[0] ? errf(err, "--sample %ld: %s has samples 0..%ld", o->sample, o->predictions, (long)dims[0] - 1)
                     : errf(err, "%s: no samples", o->predictions);
    if (!rc) {
        *P = (long)dims[1];
        *pts = malloc(sizeof(float) * 3 * (size_t)*P);
        *seg = malloc(sizeof(int32_t) * (size_t)*P);
        *pred = malloc(sizeof(int32_t) * (size_t)*P);
        if (!*pts || !*seg || !*pred) rc = errf(err, "%s: out of memory", o->predictions);
    }
    if (!rc) rc = h5_read_rows(&f, "/points", H5T_NATIVE_FLOAT, o->sample, 1, *pts, err);
    if (!rc) rc = h5_read_rows(&f, "/seg", H5T_NATIVE_INT32, o->sample, 1, *seg, err);
    if (!rc) rc = h5_read_rows(&f, "/pred", H5T_NATIVE_INT32, o->sample, 1, *pred, err);
    if (!rc) rc = h5_read_rows(&f, "/category", H5T_NATIVE_INT32, o->sample, 1, category, err);
    h5_close(&f);
    return rc;
}

int render_segmentation(const render_seg_options *o, render_seg_result *r, char *err)
{
    long P = 0;
    float *pts = NULL;
    int32_t *seg = NULL, *pred = NULL, category = 0;
    int rc = read_sample(o, &P, &pts, &seg, &pred, &category, err);
    uint8_t *canvas = NULL;
    if (!rc) {
        float lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY}, span = 0;
        for (long i = 0; i < P; i++)
            for (int d = 0; d < 3; d++) {
                lo[d] = fminf(lo[d], pts[3 * i + d]);
                hi[d] = fmaxf(hi[d], pts[3 * i + d]);
            }
        for (int d = 0; d < 3; d++) span = fmaxf(span, hi[d] - lo[d]);
        if (!(span > 0)) span = 1;
        int S = o->size, width = 2 * S + GAP_PX, height = 3 * S + 2 * GAP_PX;
        canvas = calloc((size_t)width * (size_t)height * 3, 1);
        if (!canvas) rc = errf(err, "%s: out of memory", o->output);
        for (int v = 0; !rc && v < 3; v++) {
            draw_panel(canvas, width, S, v, 0, pts, seg, P, lo, span);
            draw_panel(canvas, width, S, v, 1, pts, pred, P, lo, span);
        }
        if (!rc) rc = png_write_rgb(o->output, width, height, canvas, err);
        r->points = P;
        r->category = category;
        r->correct = 0;
        for (long i = 0; i < P; i++) r->correct += seg[i] == pred[i];
    }
    free(canvas);
    free(pts);
    free(seg);
    free(pred);
    return rc;
}
