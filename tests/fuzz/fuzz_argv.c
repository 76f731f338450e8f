/* fuzz_argv.c -- libFuzzer harness: the command-line parser (src/cli.c cli_parse) and each
 * command's option check, on argument vectors made from arbitrary bytes.
 *
 * Input: byte 0 picks the command (i2p_commands); the rest, split at NUL bytes, is argv[1..]
 * (at most 64 arguments). Arguments naming a config file (--config...) are dropped: reading an
 * arbitrary path (/dev/zero ...) is not what this harness tests (fuzz_ini does INI files). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_cli_common.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *buf = malloc(size); /* bytes 1.. plus a terminating NUL */
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 1;
    for (size_t at = 0; at < size - 1 && argc <= MAX_ARGS;) {
        char *a = buf + at;
        at += strlen(a) + 1;
        if (!strncmp(a, "--config", 8)) continue;
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    fuzz_cli_run(data[0], argc, argv);
    free(buf);
    return 0;
}
