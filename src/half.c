/* half.c -- binary16 <-> binary32 with round-to-nearest-even (see half.h). */
#include "half.h"

#include <immintrin.h>
#include <string.h>

uint16_t half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or NaN (keep a quiet NaN payload bit) */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u | ((absx >> 13) & 0x3ffu) : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {                                 /* below 2^-14: subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;         /* < 2^-25: rounds to zero */
        uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
        /* value = mant * 2^(e-150); the half subnormal unit is 2^-24, so units = mant >> (126 - e) */
        int shift = 126 - (int)(absx >> 23);
        uint32_t units = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (units & 1u))) units++;
        return (uint16_t)(sign | units);
    }
    /* normal: rebias exponent 127 -> 15, round 23 -> 10 mantissa bits (carry may bump the exponent) */
    uint32_t h = ((absx - 0x38000000u) >> 13);
    uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0x1f) {
        x = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        if (m == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            int k = -1;
            do {
                k++;
                m <<= 1;
            } while (!(m & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - k) << 23) | ((m & 0x3ffu) << 13);
        }
    } else {
        x = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void half_from_floats(const float *in, long n, uint16_t *out)
{
    for (long i = 0; i < n; i++) out[i] = half_from_float(in[i]);
}

/* The first n - n % 8 elements with F16C's vcvtph2ps: exact, as half_to_float, except that a
 * signalling NaN comes out quiet. Each block of 8 is loaded before it is stored, so the in-place
 * expansion of half_to_floats' callers (in at the second half of out's bytes) stays correct. */
__attribute__((target("avx,f16c"))) static long half_to_floats_f16c(const uint16_t *in, long n, float *out)
{
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(in + i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    return i;
}

void half_to_floats(const uint16_t *in, long n, float *out)
{
    long i = __builtin_cpu_supports("f16c") ? half_to_floats_f16c(in, n, out) : 0;
    for (; i < n; i++) out[i] = half_to_float(in[i]);
}
