/* dataset_write.c -- writing the canonical point-cloud file (see dataset.h).
 *
 * Layout: /points (N,P,3) float32 chunked (1,P,3), one sample per chunk; /label (N) int32
 * contiguous; root attributes format, source, class_names, n_classes. Every rank writes its own
 * contiguous block of rows collectively; nothing depends on the rank count, so the same content
 * gives the same bytes.
 */
#include "dataset.h"

#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "errors.h"
#include "log.h"

int dataset_writer_create(dataset_writer *w, const char *path, MPI_Comm comm, long n, long points,
                          int n_classes, const char *class_names, const char *source, int force,
                          char *err)
{
    memset(w, 0, sizeof *w);
    w->f.file = -1;
    w->n = n;
    w->points = points;
    if (n < 1) return errf(err, "%s: no samples to write (N = %ld)", path, n);
    if (points < 1) return errf(err, "%s: clouds need at least one point (P = %ld)", path, points);
    if (n_classes < 1 || n_classes > DATASET_MAX_CLASSES)
        return errf(err, "%s: %d classes, outside [1, %d]", path, n_classes, DATASET_MAX_CLASSES);
    if (h5_create(&w->f, path, comm, force, err)) return -1;
    hsize_t pd[3] = {(hsize_t)n, (hsize_t)points, 3}, pc[3] = {1, (hsize_t)points, 3};
    hsize_t ld[1] = {(hsize_t)n};
    if (h5_create_dataset(&w->f, "/points", H5T_IEEE_F32LE, 3, pd, pc, 0, err) ||
        h5_create_dataset(&w->f, "/label", H5T_STD_I32LE, 1, ld, NULL, 0, err) ||
        h5_attr_write_str(&w->f, "/", "format", "i2pmae-points", err) ||
        h5_attr_write_str(&w->f, "/", "source", source ? source : "", err) ||
        h5_attr_write_str(&w->f, "/", "class_names", class_names ? class_names : "", err) ||
        h5_attr_write_long(&w->f, "/", "n_classes", n_classes, err)) {
        h5_abort(&w->f);
        return -1;
    }
    return 0;
}

int dataset_writer_write(dataset_writer *w, long start, long count, const float *points,
                         const int32_t *labels, char *err)
{
    /* Both writes are collective: call both even if the first failed, so ranks stay in step. */
    char err2[I2P_ERR_LEN];
    int rc = h5_write_rows(&w->f, "/points", H5T_NATIVE_FLOAT, start, count, points, err);
    int rc2 = h5_write_rows(&w->f, "/label", H5T_NATIVE_INT32, start, count, labels, err2);
    if (rc2 && !rc) memcpy(err, err2, I2P_ERR_LEN);
    return rc || rc2 ? -1 : 0;
}

int dataset_writer_commit(dataset_writer *w, char *err) { return h5_commit(&w->f, err); }

void dataset_writer_abort(dataset_writer *w) { h5_abort(&w->f); }

/* The block loop of dataset_write_blocks(_parts): exactly one of fill, fill_parts is set. */
static int write_blocks(dataset_writer *w, long batch, const char *what, dataset_fill_fn fill,
                        dataset_fill_parts_fn fill_parts, void *user, char *err)
{
    MPI_Comm comm = w->f.comm;
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    long start, count, largest, dummy;
    dist_block_range(w->n, size, rank, &start, &count);
    dist_block_range(w->n, size, 0, &dummy, &largest); /* rank 0 holds the largest block */
    if (batch > largest) batch = largest > 0 ? largest : 1; /* no buffer beyond the samples */
    float *pts = malloc(sizeof(float) * 3 * (size_t)(batch * w->points));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)batch);
    int32_t *seg = fill_parts ? malloc(sizeof(int32_t) * (size_t)(batch * w->points)) : NULL;
    int rc = pts && lab && (seg || !fill_parts)
                 ? 0
                 : errf(err, "%s: out of memory for a batch of %ld samples of %ld points",
                        w->f.final_path, batch, w->points);
    rc = dist_any_error(comm, rc, err);
    if (rc) goto out;
    progress pr;
    progress_start(&pr, what, "samples", w->n);
    for (long off = 0; off < largest; off += batch) {
        long n = off >= count ? 0 : (count - off < batch ? count - off : batch);
        int frc = fill_parts ? fill_parts(user, start + off, n, pts, lab, seg, err)
                             : fill(user, start + off, n, pts, lab, err);
        rc = dist_any_error(comm, frc, err);
        if (!rc) rc = dist_any_error(comm, dataset_writer_write(w, start + off, n, pts, lab, err), err);
        if (!rc && fill_parts)
            rc = dist_any_error(comm, h5_write_rows(&w->f, "/seg", H5T_NATIVE_INT32, start + off, n, seg, err), err);
        if (rc) goto out;
        /* rank 0 holds the largest block, so its share done scales to the whole */
        progress_update(&pr, (long)((double)(off + n) / (double)(count ? count : 1) * (double)w->n));
    }
    pr.done = w->n;
    progress_finish(&pr);
out:
    free(pts);
    free(lab);
    free(seg);
    return rc ? -1 : 0;
}

int dataset_write_blocks(dataset_writer *w, long batch, const char *what, dataset_fill_fn fill,
                         void *user, char *err)
{
    return write_blocks(w, batch, what, fill, NULL, user, err);
}

int dataset_write_blocks_parts(dataset_writer *w, long batch, const char *what, dataset_fill_parts_fn fill,
                               void *user, char *err)
{
    return write_blocks(w, batch, what, NULL, fill, user, err);
}
