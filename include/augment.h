/* augment.h -- pre-training augmentation of the 3D input (i2pmae-spec.md sections 1 and 10).
 *
 * Scale-and-translate as Point-MAE's PointcloudScaleAndTranslate: per-axis scale s ~ U(2/3, 3/2),
 * then per-axis shift t ~ U(-0.2, 0.2) (the three scales are drawn first, then the three shifts);
 * p' = p * s + t. Only the network's xyz are augmented; the 2D features stay those of the
 * un-augmented cloud and are looked up by point index (spec section 10).
 * The draw comes from the rng stream of (seed, epoch, sample index), so a sample's augmentation
 * does not depend on the rank or the order in which samples are processed.
 */
#ifndef I2P_AUGMENT_H
#define I2P_AUGMENT_H

#include <stdint.h>

#define AUGMENT_SCALE_LO (2.0 / 3.0)
#define AUGMENT_SCALE_HI (3.0 / 2.0)
#define AUGMENT_SHIFT 0.2

/* The scale (3) and shift (3) of sample `sample` in `epoch`. */
void augment_draw(uint64_t seed, long epoch, long sample, double scale[3], double shift[3]);

/* Applies the draw in place to pts (P,3). */
void augment_scale_translate(float *pts, long P, uint64_t seed, long epoch, long sample);

#endif
