/* fuzz_h5_checkpoint.c -- libFuzzer harness: training checkpoints (src/checkpoint.c): the header
 * (attributes: format, step, epoch, seed, configuration JSON), array sizes, then a full read of
 * the arrays the file says it has, with the configuration compared to itself. Input: the whole
 * .h5 file (fuzz_h5_common.h). */
#include <stdint.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "errors.h"
#include "fuzz_h5_common.h"

static char config[CKPT_CONFIG_LEN];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[I2P_ERR_LEN];
    if (fuzz_write_file(path, sizeof path, "in.h5", data, size)) return 0;
    ckpt_state st;
    if (ckpt_read_header(path, MPI_COMM_SELF, &st, config, err)) return 0;
    static const char *names[] = {"/params", "/adamw/m", "/adamw/v", "/buffers", "/data_order/perm"};
    ckpt_array arrays[5];
    int n = 0;
    for (int i = 0; i < 5; i++) {
        long count = 0;
        if (ckpt_array_count(path, MPI_COMM_SELF, names[i], &count, err)) break;
        if (count <= 0 || count > FUZZ_H5_MAX_ELEMS) continue;
        ckpt_type type = i == 4 ? CKPT_I64 : CKPT_F32;
        void *buf = malloc((type == CKPT_I64 ? 8 : 4) * (size_t)count);
        if (!buf) continue;
        arrays[n++] = (ckpt_array){names[i], type, buf, count};
    }
    ckpt_read(path, MPI_COMM_SELF, &st, config, arrays, n, err);
    for (int i = 0; i < n; i++) free(arrays[i].data);
    return 0;
}
