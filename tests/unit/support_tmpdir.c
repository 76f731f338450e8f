/* support_tmpdir.c -- scratch directories of the unit tests (support_tmpdir.h). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "support_tmpdir.h"

int test_tmpdir_make(char *dir, size_t len, const char *name)
{
    int n = snprintf(dir, len, "/tmp/i2pmae-%s-XXXXXX", name);
    return n > 0 && (size_t)n < len && mkdtemp(dir) ? 0 : -1;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int test_tmpdir_remove(const char *dir)
{
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
