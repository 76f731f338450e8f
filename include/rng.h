/* rng.h -- deterministic random numbers, independent of rank count and thread count.
 *
 * xoshiro256** seeded through splitmix64 from (seed, stream). Use a stream per logical unit
 * (e.g. stream = sample index, or rng_mix(step, sample)) so the numbers drawn for one unit never
 * depend on who draws them or in which order units are processed.
 */
#ifndef I2P_RNG_H
#define I2P_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } rng_t;

void rng_seed(rng_t *r, uint64_t seed, uint64_t stream);
uint64_t rng_mix(uint64_t a, uint64_t b);   /* a well-mixed 64-bit hash of two values */
uint64_t rng_u64(rng_t *r);
double rng_uniform(rng_t *r);               /* [0, 1), 53 bits */
double rng_range(rng_t *r, double lo, double hi);
double rng_normal(rng_t *r);                /* N(0,1), Box-Muller (no cached second value) */
uint64_t rng_below(rng_t *r, uint64_t n);   /* uniform integer in [0, n), unbiased */

#endif
