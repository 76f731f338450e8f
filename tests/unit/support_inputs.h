/* support_inputs.h -- made-up inputs for the unit tests: uniform random arrays (test_nn_layers,
 * test_nn_bf16, test_classifier) and a random training batch of the 3D network (test_model3d,
 * test_step_options, test_pipe). */
#ifndef I2P_TEST_SUPPORT_INPUTS_H
#define I2P_TEST_SUPPORT_INPUTS_H

#include <stdint.h>

#include "model3d.h"

/* n floats (malloc'ed, caller frees) uniform in [lo, hi), drawn from rng_seed(seed, stream). */
float *test_uniform(long n, uint64_t seed, uint64_t stream, double lo, double hi);

enum { M3_TEST_MAX_B = 8 };

typedef struct {
    model3d_config cfg; /* a copy of the configuration the inputs are drawn for */
    int B;
    float *points, *sal, *grids;
    int16_t *pixels;
    uint64_t keys[M3_TEST_MAX_B];
    model3d_batch batch; /* points at the arrays above, forced_visible NULL */
} m3_test_inputs;

/* Draws B samples (1..M3_TEST_MAX_B) for cfg from one generator rng_seed(seed, 1), in this order:
 * points U(-1,1) (B,P,3), point saliency U(0,0.05) (B,P), grids U(-1,1) (B,V,g,g,F), pixels in
 * [0, image) (B,V,P,2). Mask keys are key0 + b; drop_key as given. Free with m3_test_inputs_free. */
void m3_test_inputs_make(m3_test_inputs *in, const model3d_config *cfg, int B, uint64_t seed, uint64_t key0,
                         uint64_t drop_key);
void m3_test_inputs_free(m3_test_inputs *in);

#endif
