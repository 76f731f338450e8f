/* atomic_file.c -- "<path>.partial", checked writes, fsync, rename (see atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"

int atomic_file_open(atomic_file *a, const char *path, char *err)
{
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->partial, sizeof a->partial, "%s.partial", path);
    a->f = fopen(a->partial, "wb");
    if (!a->f) return errf(err, "%s: cannot create: %s", path, strerror(errno));
    return 0;
}

int atomic_file_write(atomic_file *a, const void *buf, size_t n, char *err)
{
    if (n == 0 || fwrite(buf, 1, n, a->f) == n) return 0;
    int e = errno;
    atomic_file_abort(a);
    return errf(err, "%s: write failed: %s", a->path, strerror(e));
}

int atomic_file_commit(atomic_file *a, char *err)
{
    int failed = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int e = errno;
    if (fclose(a->f) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    a->f = NULL;
    if (failed) {
        atomic_file_abort(a);
        return errf(err, "%s: write failed: %s", a->path, strerror(e ? e : EIO));
    }
    if (rename(a->partial, a->path) != 0) {
        errf(err, "%s: cannot rename from %s: %s", a->path, a->partial, strerror(errno));
        atomic_file_abort(a);
        return -1;
    }
    a->partial[0] = 0;
    return 0;
}

void atomic_file_abort(atomic_file *a)
{
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (a->partial[0]) unlink(a->partial);
    a->partial[0] = 0;
}
