/* synth.h -- parametric shape classes for the synthetic labelled dataset (`i2pmae synth`).
 *
 * Sample i of a dataset with seed S depends only on (S, i) (rng stream i): its class is
 * i % SYNTH_N_CLASSES (balanced), its points are drawn on the class's surface, then scaled per axis
 * by U(0.75, 1.25), rotated uniformly at random, jittered by N(0, 0.01^2) per coordinate, and
 * normalised into the unit sphere (centroid 0, largest norm 1).
 */
#ifndef I2P_SYNTH_H
#define I2P_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#define SYNTH_N_CLASSES 12

/* All class names joined by '\n' into out (n bytes). */
void synth_class_names(char *out, size_t n);
/* Writes sample i: pts (P,3) float32 (caller-owned), *label. */
void synth_sample(uint64_t seed, long i, long P, float *pts, int32_t *label);

#endif
