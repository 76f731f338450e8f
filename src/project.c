/* project.c -- multi-view depth projection and point->pixel table (see project.h, spec section 2). */
#include "project.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

/* (row, col, depth) axes of the three axis-permutation views */
static const int VIEW_AXES[PROJECT_MAX_VIEWS][3] = {{0, 1, 2}, {2, 0, 1}, {1, 2, 0}};

void project_view_axes(int view, int axes[3])
{
    for (int k = 0; k < 3; k++) axes[k] = VIEW_AXES[view][k];
}

static int floor_div2(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* floor((c - min) / g) as the float32 reference computes it */
static inline int base_index(float c, float min, float g) { return (int)floorf((c - min) / g); }

void project_frame_compute(const float *points, long P, int view, int S, project_frame *fr)
{
    const int ar = VIEW_AXES[view][0], ac = VIEW_AXES[view][1];
    float min_r = points[ar], max_r = points[ar], min_c = points[ac], max_c = points[ac];
#pragma omp simd reduction(min : min_r, min_c) reduction(max : max_r, max_c)
    for (long i = 0; i < P; i++) {
        float r = points[i * 3 + ar], c = points[i * 3 + ac];
        min_r = fminf(min_r, r);
        max_r = fmaxf(max_r, r);
        min_c = fminf(min_c, c);
        max_c = fmaxf(max_c, c);
    }
    float g = fmaxf(max_r - min_r, max_c - min_c) / (float)(S - 3);
    if (!(g > 0.0f) || !isfinite(g)) g = 1.0f; /* a single point, or all points equal */
    int bmin_r = 1 << 30, bmax_r = -(1 << 30), bmin_c = 1 << 30, bmax_c = -(1 << 30);
    for (long i = 0; i < P; i++) {
        int br = base_index(points[i * 3 + ar], min_r, g);
        int bc = base_index(points[i * 3 + ac], min_c, g);
        bmin_r = br < bmin_r ? br : bmin_r;
        bmax_r = br > bmax_r ? br : bmax_r;
        bmin_c = bc < bmin_c ? bc : bmin_c;
        bmax_c = bc > bmax_c ? bc : bmax_c;
    }
    /* splats reach b - 2 + 1 .. b + 2 + 1 */
    int ctr_r = floor_div2((bmax_r + 3) + (bmin_r - 1));
    int ctr_c = floor_div2((bmax_c + 3) + (bmin_c - 1));
    fr->min_row = min_r;
    fr->min_col = min_c;
    fr->g = g;
    fr->shift_row = S / 2 - ctr_r - 1;
    fr->shift_col = S / 2 - ctr_c - 1;
}

/* clamp by one step (spec 2.5), then to the image (never needed for clouds the reference accepts) */
static inline int clamp_splat(int d, int S)
{
    d += d < 0;
    d -= d > S - 1;
    return d < 0 ? 0 : (d > S - 1 ? S - 1 : d);
}

void project_depth_view(const float *points, long P, int view, int S, const project_frame *fr,
                        float *depth)
{
    const int ar = VIEW_AXES[view][0], ac = VIEW_AXES[view][1], ad = VIEW_AXES[view][2];
    memset(depth, 0, sizeof(float) * (size_t)S * (size_t)S);
    for (long i = 0; i < P; i++) {
        const float *p = points + i * 3;
        int r0 = base_index(p[ar], fr->min_row, fr->g) + 1 + fr->shift_row;
        int c0 = base_index(p[ac], fr->min_col, fr->g) + 1 + fr->shift_col;
        float z = p[ad];
        for (int dr = -2; dr <= 2; dr++) {
            long row = clamp_splat(r0 + dr, S);
            for (int dc = -2; dc <= 2; dc++) depth[row * S + clamp_splat(c0 + dc, S)] += z;
        }
    }
}

void project_pixels_view(const float *points, long P, int view, int S, const project_frame *fr,
                         int16_t *pixels)
{
    const int ar = VIEW_AXES[view][0], ac = VIEW_AXES[view][1];
    for (long i = 0; i < P; i++) {
        int r = base_index(points[i * 3 + ar], fr->min_row, fr->g) + 1 + fr->shift_row;
        int c = base_index(points[i * 3 + ac], fr->min_col, fr->g) + 1 + fr->shift_col;
        int inside = r >= 0 && r < S && c >= 0 && c < S;
        pixels[i * 2] = (int16_t)(inside ? r : -1);
        pixels[i * 2 + 1] = (int16_t)(inside ? c : -1);
    }
}

/* One sigmoid per pixel for the three channels (the same float operations per channel). */
void project_normalise(const float *depth, int S, float *image)
{
    const long n = (long)S * S;
    float *r = image, *g = image + n, *b = image + 2 * n;
#pragma omp simd
    for (long i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-depth[i]));
        r[i] = (s - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        g[i] = (s - IMAGENET_MEAN[1]) / IMAGENET_STD[1];
        b[i] = (s - IMAGENET_MEAN[2]) / IMAGENET_STD[2];
    }
}

int project_batch(const float *points, long n, long P, int views, int S, float *images,
                  int16_t *pixels, float *depth, char *err)
{
    if (views < 1 || views > PROJECT_MAX_VIEWS)
        return errf(err, "--views %d: must be 1..%d (the spec's axis-permutation views)", views,
                    PROJECT_MAX_VIEWS);
    if (S < PROJECT_MIN_IMAGE || S > 32767)
        return errf(err, "image size %d: must be %d..32767", S, PROJECT_MIN_IMAGE);
    if (P < 1) return errf(err, "projection: a cloud needs at least one point");
    const long SS = (long)S * S;
    int oom = 0;
#pragma omp parallel
    {
        float *scratch = (images && !depth) ? malloc(sizeof(float) * (size_t)SS) : NULL;
        if (images && !depth && !scratch) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic)
        for (long k = 0; k < n * views; k++) {
            if (oom) continue;
            long s = k / views;
            int v = (int)(k % views);
            const float *pts = points + s * P * 3;
            project_frame fr;
            project_frame_compute(pts, P, v, S, &fr);
            if (pixels) project_pixels_view(pts, P, v, S, &fr, pixels + k * P * 2);
            if (images || depth) {
                float *dm = depth ? depth + k * SS : scratch;
                project_depth_view(pts, P, v, S, &fr, dm);
                if (images) project_normalise(dm, S, images + k * 3 * SS);
            }
        }
        free(scratch);
    }
    if (oom) return errf(err, "projection: out of memory for a %dx%d depth map", S, S);
    return 0;
}
