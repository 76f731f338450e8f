/* fuzz_h5_features.c -- libFuzzer harness: features files (src/features_read.c, layout checks of
 * src/features_layout.c): open and validation, then the rows of every dataset of the first
 * samples. Input: the whole .h5 file (fuzz_h5_common.h). */
#include <stdint.h>
#include <stdlib.h>

#include "errors.h"
#include "features_file.h"
#include "fuzz_h5_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[I2P_ERR_LEN];
    if (fuzz_write_file(path, sizeof path, "in.h5", data, size)) return 0;
    features_file ff;
    if (features_open(&ff, path, MPI_COMM_SELF, err)) return 0;
    long missing = 0;
    features_count_missing(&ff, &missing, err);
    long rows[2] = {0, ff.m.n - 1};
    long count = ff.m.n > 0 ? 2 : 0;
    long most = 1;
    for (int id = 0; id < FEATURES_DONE; id++) {
        long e = features_row_elems(&ff.m, (features_dataset_id)id);
        if (e > most) most = e;
    }
    if (count && most <= FUZZ_H5_MAX_ELEMS) {
        float *f = malloc(sizeof(float) * 2 * (size_t)most);
        int16_t *px = malloc(sizeof(int16_t) * 2 * (size_t)most);
        int32_t lab[2];
        if (f && px) {
            features_read_patch(&ff, rows, count, f, err);
            features_read_cls(&ff, rows, count, f, err);
            features_read_saliency(&ff, rows, count, f, err);
            features_read_pixel(&ff, rows, count, px, err);
            features_read_point_saliency(&ff, rows, count, f, err);
            features_read_label(&ff, rows, count, lab, err);
        }
        free(f);
        free(px);
    }
    features_close(&ff);
    return 0;
}
