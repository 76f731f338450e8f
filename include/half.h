/* half.h -- IEEE 754 binary16 conversion done by us (HDF5's float -> half conversion does not
 * promise round-to-nearest-even). Stored little-endian through h5io with h5_type_f16().
 */
#ifndef I2P_HALF_H
#define I2P_HALF_H

#include <stdint.h>

/* Round to nearest, ties to even; overflow gives +-inf, NaN stays NaN; subnormals exact. */
uint16_t half_from_float(float f);
/* Exact. */
float half_to_float(uint16_t h);

/* Array forms (n elements, OpenMP-free, vectorisable loops; half_to_floats uses F16C where the
 * CPU has it: the same values, NaNs quiet). half_to_floats may also expand in place, with in at
 * (uint16_t *)out + n: the halves in the second half of out's own bytes. */
void half_from_floats(const float *in, long n, uint16_t *out);
void half_to_floats(const uint16_t *in, long n, float *out);

#endif
