/* atomic_file.h -- writing a file that appears under its name only when complete.
 *
 * For the files we write without HDF5 (PNG, safetensors, the CSV log's rewrite; HDF5 files have
 * the same rule in h5io.h): the bytes go to "<path>.partial"; commit flushes, fsyncs and closes it,
 * checking each step, then renames it to path. On any failure the partial is removed and err names
 * the final file: "<path>: cannot create: <cause>", "<path>: write failed: <cause>",
 * "<path>: cannot rename from <path>.partial: <cause>". Not collective; one process writes.
 *
 *   atomic_file a;
 *   if (atomic_file_open(&a, path, err)) return -1;
 *   if (atomic_file_write(&a, buf, n, err)) return -1;   // already aborted
 *   return atomic_file_commit(&a, err);
 *
 * a.f may also be handed to a library that writes a FILE (libpng), and another process may write
 * the partial by its name (a.partial) while it is open (gnuplot); commit checks ferror(a.f) and
 * syncs whatever the file holds.
 */
#ifndef I2P_ATOMIC_FILE_H
#define I2P_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "paths.h"

typedef struct {
    FILE *f;                    /* open for writing on partial; NULL once committed or aborted */
    char path[I2P_PATH_LEN];    /* the final name */
    char partial[I2P_PATH_LEN]; /* path + ".partial" */
} atomic_file;

/* Creates (truncates) path.partial for writing. */
int atomic_file_open(atomic_file *a, const char *path, char *err);

/* Writes n bytes; on failure aborts (the partial is removed) and returns -1. */
int atomic_file_write(atomic_file *a, const void *buf, size_t n, char *err);

/* Flushes, fsyncs, closes and renames the partial to path; on failure aborts and returns -1. */
int atomic_file_commit(atomic_file *a, char *err);

/* Closes and removes the partial; nothing under path is touched. Safe to call again, and after a
 * failed write or commit. */
void atomic_file_abort(atomic_file *a);

#endif
