/* fuzz_off.c -- libFuzzer harness: the OFF mesh reader (src/off_mesh.c) on arbitrary bytes, then
 * surface sampling of whatever it accepted. */
#include <stdint.h>

#include "errors.h"
#include "fuzz_util.h"
#include "off_mesh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[I2P_ERR_LEN];
    if (fuzz_write_file(path, sizeof path, "in.off", data, size)) return 0;
    off_mesh m;
    if (off_mesh_read(path, &m, err) == 0) {
        float pts[3 * 16];
        off_mesh_sample(&m, 16, 1, 0, pts, path, err);
        off_mesh_free(&m);
    }
    return 0;
}
