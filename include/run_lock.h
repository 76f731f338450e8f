/* run_lock.h -- one run at a time per output: an exclusive lock (flock) on a lock file, held for
 * the life of the run by the rank that takes it (rank 0), released by the kernel if the process
 * dies. The file holds "pid P on HOST since TIME", so a second run is refused with an error naming
 * the first one instead of failing later on a confusing rename.
 *
 * Where the lock file cannot be created (missing or read-only directory) the lock is skipped: the
 * run then fails on its output with the error that names the real problem.
 * On a file system without flock (ENOLCK, ENOSYS, EOPNOTSUPP) the lock is skipped: runs are then
 * not protected against each other, as before. Not collective: callers agree with dist_any_error.
 */
#ifndef I2P_RUN_LOCK_H
#define I2P_RUN_LOCK_H

#include "paths.h"

typedef struct {
    int fd; /* -1: not held */
    char path[I2P_PATH_LEN];
} run_lock;

/* Creates or opens path and locks it. what names the output in the error ("run directory X"). */
int run_lock_take(run_lock *l, const char *path, const char *what, char *err);
/* Deletes the lock file and releases the lock; safe on a lock not held. */
void run_lock_release(run_lock *l);

#endif
