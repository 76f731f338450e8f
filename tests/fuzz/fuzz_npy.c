/* fuzz_npy.c -- libFuzzer harness: the .npy point reader (src/npy.c) on arbitrary bytes: the
 * header-only count and the whole read must agree on what they accept. */
#include <stdint.h>
#include <stdlib.h>

#include "errors.h"
#include "fuzz_util.h"
#include "npy.h"

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[I2P_ERR_LEN];
    if (fuzz_write_file(path, sizeof path, "in.npy", data, size)) return 0;
    long n_count = -1, n_read = -1;
    int rc_count = npy_points_count(path, &n_count, err);
    float *pts = NULL;
    int rc_read = npy_read_points(path, &pts, &n_read, err);
    if (rc_read == 0) {
        float sum = 0; /* touch every value: a short buffer shows up under ASan */
        for (long i = 0; i < 3 * n_read; i++) sum += pts[i];
        sink = sum;
        if (rc_count != 0 || n_count != n_read) abort(); /* the two readers disagree */
    }
    free(pts);
    return 0;
}
