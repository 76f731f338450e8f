/* test_bicubic.c -- bicubic reads against PyTorch's F.interpolate (tests/ref/bicubic_ref.py),
 * tolerance 1e-5 absolute on unit-normal data; SKIP (with the reason) when torch/h5py are missing. Plus checks
 * that need no reference: weights sum to 1, a constant grid stays constant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bicubic.h"
#include "errors.h"
#include "h5io.h"
#include "ref_python.h"

static void test_weights_sum_to_one(void **state)
{
    (void)state;
    for (int d = 0; d < 224; d++) {
        int idx[4];
        float w[4];
        bicubic_taps(14, 224, d, idx, w);
        assert_true(fabsf(w[0] + w[1] + w[2] + w[3] - 1.0f) < 1e-6f);
        for (int k = 0; k < 4; k++) assert_true(idx[k] >= 0 && idx[k] < 14);
    }
}

static void test_constant_grid(void **state)
{
    (void)state;
    float grid[14 * 14];
    for (int i = 0; i < 196; i++) grid[i] = 2.5f;
    assert_true(fabsf(bicubic_sample1(grid, 14, 224, 0, 0) - 2.5f) < 1e-5f);
    assert_true(fabsf(bicubic_sample1(grid, 14, 224, 117, 223) - 2.5f) < 1e-5f);
}

static void test_against_torch(void **state)
{
    (void)state;
    if (!python_has_modules("bicubic_against_torch", "torch, h5py, numpy")) skip();
    char path[64];
    snprintf(path, sizeof path, "/tmp/i2pmae-bicubic-ref.%ld.h5", (long)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/bicubic_ref.py %s 2>/dev/null",
             getenv("ROOT") ? getenv("ROOT") : ".", path);
    assert_int_equal(run_reference(cmd), 0);
    char err[I2P_ERR_LEN];
    h5file f;
    assert_int_equal(h5_open_read(&f, path, MPI_COMM_SELF, err), 0);
    float grid[14 * 14 * 5], expected[205 * 5], out[5];
    int32_t pix[205 * 2];
    assert_int_equal(h5_read_all(&f, "/grid", H5T_NATIVE_FLOAT, grid, err), 0);
    assert_int_equal(h5_read_all(&f, "/pixels", H5T_NATIVE_INT32, pix, err), 0);
    assert_int_equal(h5_read_all(&f, "/expected", H5T_NATIVE_FLOAT, expected, err), 0);
    h5_close(&f);
    unlink(path);
    double maxerr = 0;
    for (int q = 0; q < 205; q++) {
        bicubic_sample(grid, 14, 5, 224, pix[2 * q], pix[2 * q + 1], out);
        for (int c = 0; c < 5; c++) {
            double e = fabs(out[c] - expected[q * 5 + c]);
            if (e > maxerr) maxerr = e;
        }
    }
    printf("bicubic vs torch: max abs error %.3g (tolerance 1e-5)\n", maxerr);
    assert_true(maxerr < 1e-5);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    h5io_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_sum_to_one),
        cmocka_unit_test(test_constant_grid),
        cmocka_unit_test(test_against_torch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
