/* augment.c -- per-sample scale-and-translate of the 3D input (see augment.h). */
#include "augment.h"

#include "rng.h"

#define AUGMENT_STREAM 0x6175676d656e74ull /* "augment" */

void augment_draw(uint64_t seed, long epoch, long sample, double scale[3], double shift[3])
{
    rng_t r;
    rng_seed(&r, seed, rng_mix(AUGMENT_STREAM, rng_mix((uint64_t)epoch, (uint64_t)sample)));
    for (int k = 0; k < 3; k++) scale[k] = rng_range(&r, AUGMENT_SCALE_LO, AUGMENT_SCALE_HI);
    for (int k = 0; k < 3; k++) shift[k] = rng_range(&r, -AUGMENT_SHIFT, AUGMENT_SHIFT);
}

void augment_scale_translate(float *pts, long P, uint64_t seed, long epoch, long sample)
{
    double s[3], t[3];
    augment_draw(seed, epoch, sample, s, t);
    for (long i = 0; i < P; i++)
        for (int k = 0; k < 3; k++) pts[i * 3 + k] = (float)(pts[i * 3 + k] * s[k] + t[k]);
}
