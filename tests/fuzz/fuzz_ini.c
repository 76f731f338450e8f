/* fuzz_ini.c -- libFuzzer harness: INI config files (`--config FILE`, src/cli.c load_config with
 * libinih) and each command's option check, on arbitrary file contents.
 *
 * Input: byte 0 picks the command (i2p_commands); the rest is the file. */
#include <stdint.h>

#include "fuzz_cli_common.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char path[512];
    if (fuzz_write_file(path, sizeof path, "in.ini", data + 1, size - 1)) return 0;
    char *argv[] = {NULL, "--config", path, NULL};
    fuzz_cli_run(data[0], 3, argv);
    return 0;
}
