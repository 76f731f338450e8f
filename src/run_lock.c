/* run_lock.c -- one run at a time per output (see run_lock.h). */
#include "run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"

int run_lock_take(run_lock *l, const char *path, const char *what, char *err)
{
    l->fd = -1;
    snprintf(l->path, sizeof l->path, "%s", path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == EROFS))
        return 0; /* no directory to write in: the run fails on its output, with that error */
    if (fd < 0) return errf(err, "%s: cannot create the lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == ENOLCK || e == ENOSYS || e == EOPNOTSUPP) { /* no locks here: go on unprotected */
            close(fd);
            return 0;
        }
        char owner[256] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, owner, sizeof owner - 1, 0) : -1;
        close(fd);
        if (n > 0) owner[n] = 0;
        owner[strcspn(owner, "\n")] = 0;
        if (e == EWOULDBLOCK)
            return errf(err, "%s is in use by another run (%s; lock %s): wait for it to end or stop it",
                        what, owner[0] ? owner : "owner unknown", path);
        return errf(err, "%s: cannot lock: %s", path, strerror(e));
    }
    char host[128] = "?", when[64] = "?", text[512];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    int len = snprintf(text, sizeof text, "pid %ld on %s since %s\n", (long)getpid(), host, when);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) { /* only informative */ }
    l->fd = fd;
    return 0;
}

void run_lock_release(run_lock *l)
{
    if (l->fd < 0) return;
    unlink(l->path); /* while still locked: a run waiting on this file fails, a new one makes its own */
    close(l->fd);
    l->fd = -1;
}
