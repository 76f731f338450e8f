/* test_half.c -- binary16 conversion against the compiler's _Float16 (round-to-nearest-even). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "half.h"

static uint16_t ref_half(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

static void test_all_halves_roundtrip(void **state)
{
    (void)state;
    for (uint32_t u = 0; u < 65536; u++) {
        float f = half_to_float((uint16_t)u);
        _Float16 h;
        uint16_t uu = (uint16_t)u;
        memcpy(&h, &uu, 2);
        if (isnan(f)) {
            assert_true(isnan((float)h));
            continue;
        }
        assert_true(f == (float)h);
        assert_int_equal(half_from_float(f), u);
    }
}

static void test_rounding_matches_compiler(void **state)
{
    (void)state;
    /* every float bit pattern with a stride that hits all exponents and many ties */
    for (uint64_t x = 0; x < 0x100000000ull; x += 4099) {
        uint32_t b = (uint32_t)x;
        float f;
        memcpy(&f, &b, 4);
        if (isnan(f)) continue;
        assert_int_equal(half_from_float(f), ref_half(f));
    }
    /* exact ties between neighbouring halves, normal and subnormal */
    for (uint32_t u = 0; u < 0x7bff; u++) {
        float lo = half_to_float((uint16_t)u), hi = half_to_float((uint16_t)(u + 1));
        float mid = (float)(((double)lo + (double)hi) / 2);
        assert_int_equal(half_from_float(mid), ref_half(mid));
        assert_int_equal(half_from_float(-mid), ref_half(-mid));
    }
    assert_int_equal(half_from_float(65520.0f), 0x7c00);
    assert_int_equal(half_from_float(65519.0f), 0x7bff);
}

/* The array form (F16C where the CPU has it, then the scalar tail) against the scalar conversion,
 * bitwise but for NaNs (which need only stay NaN): all 65536 patterns, at lengths that leave tails
 * of 0 to 7, copied and expanded in place as features_read does. */
static void test_array_form_matches_scalar(void **state)
{
    (void)state;
    enum { N = 65536 + 7 };
    static uint16_t in[N];
    static float out[N], inplace[N];
    for (long i = 0; i < N; i++) in[i] = (uint16_t)(i * 40503u); /* odd multiplier: every pattern */
    for (long n = N - 7; n <= N; n++) {
        memset(out, 0xff, sizeof out);
        half_to_floats(in, n, out);
        uint16_t *h = (uint16_t *)inplace + n;
        memcpy(h, in, sizeof(uint16_t) * (size_t)n);
        half_to_floats(h, n, inplace);
        for (long i = 0; i < n; i++) {
            float want = half_to_float(in[i]);
            if (isnan(want)) {
                assert_true(isnan(out[i]) && isnan(inplace[i]));
                continue;
            }
            assert_memory_equal(&out[i], &want, sizeof want);
            assert_memory_equal(&inplace[i], &want, sizeof want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_halves_roundtrip),
        cmocka_unit_test(test_rounding_matches_compiler),
        cmocka_unit_test(test_array_form_matches_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
