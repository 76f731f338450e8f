/* fuzz_util.h -- helpers shared by the libFuzzer harnesses of tests/fuzz/ (`make fuzz`).
 *
 * Our readers take file names, so a harness writes the fuzzer's bytes to a scratch file (in
 * /dev/shm when there is one: no disk traffic) and calls the reader on it. One scratch directory
 * per process, named after the pid, removed at exit.
 */
#ifndef I2P_FUZZ_UTIL_H
#define I2P_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir_path[256];

static void fuzz_dir_remove(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd)) { /* best effort */ }
}

/* The scratch directory of this process (created on first use). */
static const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/i2pmae-fuzz-%ld", base, (long)getpid());
        mkdir(fuzz_dir_path, 0700);
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* Writes data[0..size) to <scratch>/name and its path to path; 0, or -1 if it could not. */
static int fuzz_write_file(char *path, size_t path_len, const char *name, const uint8_t *data,
                           size_t size)
{
    snprintf(path, path_len, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    int rc = fclose(f);
    return w == size && rc == 0 ? 0 : -1;
}

#endif
