/* fuzz_h5_dataset.c -- libFuzzer harness: point-cloud dataset files (src/dataset_read.c,
 * src/dataset_parts.c): open and layout checks, then every sample's points, labels and part
 * labels of what was accepted. Input: the whole .h5 file (fuzz_h5_common.h). */
#include <stdint.h>
#include <stdlib.h>

#include "dataset.h"
#include "errors.h"
#include "fuzz_h5_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[I2P_ERR_LEN];
    if (fuzz_write_file(path, sizeof path, "in.h5", data, size)) return 0;
    dataset d;
    if (dataset_open(&d, path, MPI_COMM_SELF, err)) return 0;
    if (d.n > 0 && d.points > 0 && d.points <= FUZZ_H5_MAX_ELEMS / 3) {
        long count = FUZZ_H5_MAX_ELEMS / (3 * d.points);
        if (count > d.n) count = d.n;
        float *pts = malloc(sizeof(float) * 3 * (size_t)(count * d.points));
        int32_t *labels = malloc(sizeof(int32_t) * (size_t)count);
        int32_t *seg = malloc(sizeof(int32_t) * (size_t)(count * d.points));
        if (pts && labels && seg && dataset_read(&d, 0, count, pts, labels, err) == 0) {
            part_table t;
            if (dataset_open_parts(&d, &t, err) == 0)
                dataset_read_seg(&d, &t, 0, count, labels, seg, err);
        }
        free(pts);
        free(labels);
        free(seg);
    }
    dataset_close(&d);
    return 0;
}
