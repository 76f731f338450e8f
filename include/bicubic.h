/* bicubic.h -- reading a coarse (g x g) patch grid at one pixel of the S x S image, exactly as
 * PyTorch's F.interpolate(mode='bicubic', align_corners=False) would after upsampling g -> S
 * (i2pmae-spec.md 3): source coordinate (dst + 0.5) * g / S - 0.5, cubic coefficient A = -0.75,
 * tap indices clamped to the border. Only the 4x4 taps at the queried pixel are computed.
 */
#ifndef I2P_BICUBIC_H
#define I2P_BICUBIC_H

/* The 4 tap indices (clamped to [0, g-1]) and weights for output coordinate dst of an S-long axis. */
void bicubic_taps(int g, int S, int dst, int idx[4], float w[4]);

/* grid is (g,g,C) channel-last (row-major over rows then cols); out (C) = value at pixel (row,col). */
void bicubic_sample(const float *grid, int g, int C, int S, int row, int col, float *out);

/* Scalar grid (g,g): value at pixel (row,col). */
float bicubic_sample1(const float *grid, int g, int S, int row, int col);

#endif
