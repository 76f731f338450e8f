/* fuzz_safetensors.c -- libFuzzer harness: the safetensors header check (src/safetensors.c) on
 * arbitrary bytes; every tensor of an accepted file is then read as float (F32/F16/BF16) and its
 * bytes touched, and the metadata looked up. */
#include <stdint.h>
#include <stdlib.h>

#include "errors.h"
#include "fuzz_util.h"
#include "safetensors.h"

static volatile unsigned char sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[I2P_ERR_LEN];
    if (fuzz_write_file(path, sizeof path, "in.safetensors", data, size)) return 0;
    st_file f;
    if (st_open(&f, path, err)) return 0;
    st_metadata(&f, "format");
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (st_find(&f, t->name) == NULL) abort(); /* every listed tensor can be found */
        unsigned char sum = 0; /* touch every byte: a range past the mapping shows up */
        for (size_t b = t->begin; b < t->end; b++) sum += f.data[b];
        sink = sum;
        int64_t numel = 1;
        int too_big = 0;
        for (int d = 0; d < t->rank; d++) too_big |= __builtin_mul_overflow(numel, t->shape[d], &numel);
        if (too_big || numel < 0 || numel > (1 << 20)) continue;
        float *out = malloc(sizeof(float) * (size_t)(numel ? numel : 1));
        if (out) st_read_f32(&f, t->name, t->rank, t->shape, out, err);
        free(out);
    }
    char hex[65];
    st_sha256_hex(&f, hex);
    st_close(&f);
    return 0;
}
