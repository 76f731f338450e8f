/* project.h -- the multi-view orthographic depth projection of I2P-MAE (i2pmae-spec.md section 2)
 * and each point's pixel in every view (for back-projection, spec sections 2 and 10).
 *
 * View v treats the permuted coordinates as (row, col, depth): view 0 (x,y,z), view 1 (z,x,y),
 * view 2 (y,z,x); at most PROJECT_MAX_VIEWS views. For an S x S image (S = 224 in the spec), per
 * sample and view, all in float32 exactly as the reference code computes it:
 *   min = per-coordinate minimum; g = max(range row, range col) / (S - 3)  (g = 1 if that is 0);
 *   b = floor((c - min) / g) for row and col; each point splats a 5x5 block d = b + off + 1,
 *   off in {-2..2}^2; centring shift s = S/2 - floor((max d + min d) / 2) - 1 per axis (over all
 *   splats); d += s; entries < 0 get +1, > S-1 get -1 (then clamped to the image, which the
 *   reference asserts never happens); each splat adds the point's raw depth coordinate to its pixel
 *   (scatter-sum in point-major, offset-minor order; rows of the offset block outer); empty pixels 0.
 *   The image is sigmoid(depth sum), copied to 3 channels and normalised with the ImageNet mean
 *   (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
 *   A point's pixel is p = b + 1 + s (no offset, not clamped); (-1, -1) if it falls outside.
 * No rotation, no perspective, no smoothing (the spec overrides the issue text there).
 * Everything is a pure function of the cloud: no state, no allocation inside the per-view kernels.
 */
#ifndef I2P_PROJECT_H
#define I2P_PROJECT_H

#include <stdint.h>

#define PROJECT_MAX_VIEWS 3
#define PROJECT_MIN_IMAGE 8

/* The frame of one view of one cloud: minimum of row/col coordinates, grid step g and the
 * centring shift per axis. */
typedef struct {
    float min_row, min_col, g;
    int shift_row, shift_col;
} project_frame;

/* points (P,3): the frame of view `view` for an S x S image. */
void project_frame_compute(const float *points, long P, int view, int S, project_frame *fr);

/* points (P,3) -> depth (S,S): the scatter-summed raw depth of view `view` (before sigmoid). */
void project_depth_view(const float *points, long P, int view, int S, const project_frame *fr,
                        float *depth);

/* points (P,3) -> pixels (P,2) int16 (row, col), (-1,-1) where outside the S x S image. */
void project_pixels_view(const float *points, long P, int view, int S, const project_frame *fr,
                         int16_t *pixels);

/* depth (S,S) -> image (3,S,S): sigmoid, then ImageNet mean/std per channel. */
void project_normalise(const float *depth, int S, float *image);

/* Batch over samples (OpenMP over sample x view): points (n,P,3) ->
 *   images (n,V,3,S,S) normalised (may be NULL), pixels (n,V,P,2) (may be NULL),
 *   depth  (n,V,S,S) raw depth sums (may be NULL).
 * Returns 0, or -1 with err set for bad arguments (views outside 1..3, S < PROJECT_MIN_IMAGE or
 * S > 32767, P < 1). */
int project_batch(const float *points, long n, long P, int views, int S, float *images,
                  int16_t *pixels, float *depth, char *err);

/* The view's (row, col, depth) coordinate indices into (x,y,z). */
void project_view_axes(int view, int axes[3]);

#endif
