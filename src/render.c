/* render.c -- the picture of one sample: depth maps and saliency (see render.h). */
#include "render.h"

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bicubic.h"
#include "dataset.h"
#include "errors.h"
#include "features_file.h"
#include "h5io.h"
#include "png_write.h"
#include "project.h"

#define GAP_PX 4

typedef struct {
    long P;
    int V, S;
    float *points, *depth, *image, *saliency; /* saliency (V,g,g) or NULL */
    int16_t *pixel;
    int grid;
} render_data;

static void render_data_free(render_data *r)
{
    free(r->points);
    free(r->depth);
    free(r->image);
    free(r->saliency);
    free(r->pixel);
}

/* grey level of a depth-sum pixel: black where empty, 40..255 over the occupied range */
static uint8_t depth_grey(float d, float lo, float hi)
{
    if (d == 0.0f) return 0;
    float t = hi > lo ? (d - lo) / (hi - lo) : 1.0f;
    return (uint8_t)(40.0f + 215.0f * t + 0.5f);
}

/* "hot" colour ramp: black -> red -> yellow -> white */
static void hot(float t, float rgb[3])
{
    rgb[0] = fminf(1.0f, 3.0f * t);
    rgb[1] = fminf(1.0f, fmaxf(0.0f, 3.0f * t - 1.0f));
    rgb[2] = fminf(1.0f, fmaxf(0.0f, 3.0f * t - 2.0f));
}

static void draw_view(const render_data *r, int v, uint8_t *canvas, int width)
{
    const int S = r->S;
    const float *d = r->depth + (long)v * S * S;
    float lo = INFINITY, hi = -INFINITY;
    for (long i = 0; i < (long)S * S; i++)
        if (d[i] != 0.0f) {
            lo = fminf(lo, d[i]);
            hi = fmaxf(hi, d[i]);
        }
    float smax = 0.0f;
    const float *sal = r->saliency ? r->saliency + (long)v * r->grid * r->grid : NULL;
    for (int i = 0; sal && i < r->grid * r->grid; i++) smax = fmaxf(smax, sal[i]);
    int y0 = v * (S + GAP_PX);
    for (int y = 0; y < S; y++) {
        for (int x = 0; x < S; x++) {
            uint8_t gval = depth_grey(d[(long)y * S + x], lo, hi);
            uint8_t *px = canvas + ((long)(y0 + y) * width + x) * 3;
            px[0] = px[1] = px[2] = gval;
            if (!sal) continue;
            float t = smax > 0 ? bicubic_sample1(sal, r->grid, S, y, x) / smax : 0.0f;
            float c[3];
            hot(fminf(1.0f, fmaxf(0.0f, t)), c);
            uint8_t *q = px + (S + GAP_PX) * 3;
            for (int k = 0; k < 3; k++) q[k] = (uint8_t)(0.35f * gval + 0.65f * 255.0f * c[k] + 0.5f);
        }
    }
}

static int write_picture(const render_options *a, const render_data *r, char *err)
{
    int cols = r->saliency ? 2 : 1;
    int width = cols * r->S + (cols - 1) * GAP_PX, height = r->V * r->S + (r->V - 1) * GAP_PX;
    uint8_t *canvas = malloc((size_t)width * height * 3);
    if (!canvas) return errf(err, "%s: out of memory for a %dx%d picture", a->output, width, height);
    memset(canvas, 64, (size_t)width * height * 3); /* dark grey gaps */
    for (int v = 0; v < r->V; v++) draw_view(r, v, canvas, width);
    int rc = png_write_rgb(a->output, width, height, canvas, err);
    free(canvas);
    return rc;
}

static int write_dump(const render_options *a, const render_data *r, char *err)
{
    h5file f;
    if (h5_create(&f, a->dump, MPI_COMM_SELF, a->force, err)) return -1;
    hsize_t V = (hsize_t)r->V, S = (hsize_t)r->S;
    int rc = h5_write_small(&f, "/depth", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, (hsize_t[]){V, S, S},
                            r->depth, err) ||
             h5_write_small(&f, "/image", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4,
                            (hsize_t[]){V, 3, S, S}, r->image, err) ||
             h5_write_small(&f, "/pixel", H5T_STD_I16LE, H5T_NATIVE_INT16, 3,
                            (hsize_t[]){V, (hsize_t)r->P, 2}, r->pixel, err) ||
             h5_commit(&f, err);
    if (rc) h5_abort(&f);
    return rc ? -1 : 0;
}

static int load_saliency(const render_options *a, dataset *d, render_data *r, char *err)
{
    features_file ff;
    if (features_open(&ff, a->features, MPI_COMM_SELF, err)) return -1;
    int rc = features_check_dataset(&ff, d, 1, err);
    if (!rc && ff.m.image != r->S)
        rc = errf(err, "%s: made for %dx%d images, render uses %d", a->features, ff.m.image,
                  ff.m.image, r->S);
    if (!rc) {
        r->V = ff.m.views;
        r->grid = ff.m.grid;
        r->saliency = malloc(sizeof(float) * (size_t)r->V * r->grid * r->grid);
        rc = r->saliency ? features_read_saliency(&ff, &a->sample, 1, r->saliency, err)
                         : errf(err, "%s: out of memory", a->features);
    }
    features_close(&ff);
    return rc;
}

int render_sample(const render_options *a, char *err)
{
    dataset d;
    if (dataset_open(&d, a->input, MPI_COMM_SELF, err)) return -1;
    render_data r = {.P = d.points, .V = a->views, .S = a->image};
    int rc = 0;
    if (a->sample < 0 || a->sample >= d.n)
        rc = errf(err, "--sample %ld: %s has samples 0..%ld", a->sample, a->input, d.n - 1);
    if (!rc && a->features && a->features[0]) rc = load_saliency(a, &d, &r, err);
    if (!rc) {
        long SS = (long)r.S * r.S;
        r.points = malloc(sizeof(float) * (size_t)r.P * 3);
        r.depth = malloc(sizeof(float) * (size_t)(r.V * SS));
        r.image = malloc(sizeof(float) * (size_t)(r.V * 3 * SS));
        r.pixel = malloc(sizeof(int16_t) * (size_t)(r.V * r.P * 2));
        if (!r.points || !r.depth || !r.image || !r.pixel) rc = errf(err, "%s: out of memory", a->input);
    }
    if (!rc) rc = dataset_read(&d, a->sample, 1, r.points, NULL, err);
    dataset_close(&d);
    if (!rc) rc = project_batch(r.points, 1, r.P, r.V, r.S, r.image, r.pixel, r.depth, err);
    if (!rc && a->dump && a->dump[0]) rc = write_dump(a, &r, err);
    if (!rc) rc = write_picture(a, &r, err);
    render_data_free(&r);
    return rc;
}
