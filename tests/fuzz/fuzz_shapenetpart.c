/* fuzz_shapenetpart.c -- libFuzzer harness: the ShapeNetPart reader (src/convert_shapenetpart.c)
 * on arbitrary bytes, in a scratch copy of the release's layout.
 *
 * Input: byte 0: bits 0-3 pick the category of the shape (0..15); bit 7 set: the rest is the split
 * list (train_test_split/shuffled_test_file_list.json) and the shape file is a valid one;
 * bit 7 clear: the rest is the shape file's text rows ("x y z nx ny nz part"). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "convert_shapenetpart.h"
#include "errors.h"
#include "fuzz_util.h"

static const char *names[SHAPENETPART_CATEGORIES] = {
    "Airplane", "Bag", "Cap", "Car", "Chair", "Earphone", "Guitar", "Knife",
    "Lamp", "Laptop", "Motorbike", "Mug", "Pistol", "Rocket", "Skateboard", "Table"};
static const int first_part[SHAPENETPART_CATEGORIES] = {0, 4, 6, 8, 12, 16, 19, 22,
                                                        24, 28, 30, 36, 38, 41, 44, 47};

static int put(const char *name, const void *data, size_t size)
{
    char path[512];
    return fuzz_write_file(path, sizeof path, name, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static int ready = 0;
    char text[4096];
    if (!ready) { /* the category table and the synset directories, once */
        size_t n = 0;
        for (int c = 0; c < SHAPENETPART_CATEGORIES; c++) {
            n += (size_t)snprintf(text + n, sizeof text - n, "%s\ts%02d\n", names[c], c);
            char dir[512];
            snprintf(dir, sizeof dir, "%s/s%02d", fuzz_dir(), c);
            mkdir(dir, 0700);
        }
        char dir[512];
        snprintf(dir, sizeof dir, "%s/train_test_split", fuzz_dir());
        mkdir(dir, 0700);
        if (put("synsetoffset2category.txt", text, n)) return 0;
        ready = 1;
    }
    int c = data[0] & 15;
    char shape[64];
    snprintf(shape, sizeof shape, "s%02d/m.txt", c);
    if (data[0] & 0x80) {
        int n = snprintf(text, sizeof text, "0 0 0 0 0 1 %d\n1 0 0 0 0 1 %d\n0 1 0 0 0 1 %d\n",
                         first_part[c], first_part[c], first_part[c]);
        if (put(shape, text, (size_t)n) ||
            put("train_test_split/shuffled_test_file_list.json", data + 1, size - 1))
            return 0;
    } else {
        int n = snprintf(text, sizeof text, "[\"shape_data/s%02d/m\"]", c);
        if (put(shape, data + 1, size - 1) ||
            put("train_test_split/shuffled_test_file_list.json", text, (size_t)n))
            return 0;
    }
    shapenetpart_source s;
    char err[I2P_ERR_LEN];
    if (shapenetpart_open(&s, fuzz_dir(), "test", err)) return 0;
    float pts[8 * 3];
    int32_t cat, seg[8];
    for (long i = 0; i < s.n; i++) shapenetpart_load(&s, i, 1, 8, 1, pts, &cat, seg, err);
    shapenetpart_free(&s);
    return 0;
}
