/* replay_main.c -- a main() for the fuzz harnesses without libFuzzer: runs LLVMFuzzerTestOneInput
 * once on each file named on the command line (the corpora and the regression inputs of
 * tests/fuzz/), so `make test` replays them with the ordinary compiler (and under SAN=1 with
 * AddressSanitizer + UBSan). Prints one line per file; exit status 0 if every call returned. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    fclose(f);
    *size = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        size_t size = 0;
        unsigned char *data = read_all(argv[i], &size);
        if (!data) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            bad = 1;
            continue;
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        printf("replayed %s (%zu bytes)\n", argv[i], size);
    }
    return bad;
}
