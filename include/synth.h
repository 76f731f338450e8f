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

/* ---- the parts-labelled set (`synth --parts`, part segmentation) ----
 * SYNTH_PART_CATEGORIES objects made of 2-3 primitive parts each, upright and unrotated (like
 * ShapeNetPart's aligned shapes): capsule (body, ends), cone (side, base), cylinder (side, caps),
 * table (top, legs), lamp (shade, stem, base), airplane (fuselage, wings, tail). Parts are numbered
 * globally, category by category (capsule 0-1, cone 2-3, ..., airplane 11-13).
 * Sample i: category i % SYNTH_PART_CATEGORIES; each point picks a part with fixed odds (every part
 * is likely present), lies on that part's surface and carries its label; then a per-axis scale
 * U(0.8, 1.2), jitter N(0, 0.01^2) and normalisation into the unit sphere. Stream (seed, i). */
#define SYNTH_PART_CATEGORIES 6
#define SYNTH_PARTS 14

/* Category names joined by '\n'; parts per category ("2 2 2 2 3 3"); part names joined by '\n'. */
void synth_part_category_names(char *out, size_t n);
void synth_part_counts(int counts[SYNTH_PART_CATEGORIES]);
void synth_part_names(char *out, size_t n);
/* Writes sample i: pts (P,3), *category, seg (P) global part labels. */
void synth_parts_sample(uint64_t seed, long i, long P, float *pts, int32_t *category, int32_t *seg);

#endif
