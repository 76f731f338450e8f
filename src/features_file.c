/* features_file.c -- creating, resuming and writing the features file (see features_file.h; the
 * layout itself: features_layout.c). */
#include "features_file.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

int features_create(features_file *ff, const char *path, MPI_Comm comm, const features_meta *m,
                    const char *config_json, int force, char *err)
{
    memset(ff, 0, sizeof *ff);
    ff->m = *m;
    if (h5_create(&ff->f, path, comm, force, err)) return -1;
    char *identity = features_identity_json(m);
    /* the identity attribute goes last, after a flush: a partial file without it is an unfinished
     * creation and is recreated by the next run */
    int rc = features_layout_create(&ff->f, m, err) ||
             features_attrs_write(&ff->f, m, config_json, err) || h5_flush(&ff->f, err) ||
             h5_attr_write_str(&ff->f, "/", "identity", identity, err) || h5_flush(&ff->f, err);
    free(identity);
    if (rc) {
        h5_abort(&ff->f);
        return -1;
    }
    return 0;
}

int features_resume(features_file *ff, const char *path, MPI_Comm comm, const features_meta *m,
                    char *err)
{
    memset(ff, 0, sizeof *ff);
    ff->m = *m;
    char err2[I2P_ERR_LEN];
    int rc = h5_open_partial(&ff->f, path, comm, err2);
    if (rc == 0) return 0;
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (rc < 0 || !h5_attr_exists(&ff->f, "/", "identity")) {
        if (rank == 0) log_warn("%s.partial: unfinished or unreadable; starting it again", path);
        h5_close(&ff->f);
        return 0;
    }
    if (features_identity_check(&ff->f, m, 0, err) || features_layout_check(&ff->f, m, err)) {
        h5_close(&ff->f);
        return -1;
    }
    return 1;
}

int features_write_rows(features_file *ff, const features_rows *r, char *err)
{
    h5file *f = &ff->f;
    for (int id = 0; id < FEATURES_DONE; id++) {
        features_dataset d = features_dataset_of(&ff->m, (features_dataset_id)id);
        if (h5_write_row_list(f, d.name, d.mem_type, r->rows, r->count, r->data[id], err)) return -1;
    }
    if (h5_flush(f, err)) return -1;
    uint8_t *ones = malloc((size_t)(r->count ? r->count : 1));
    if (!ones) return errf(err, "%s: out of memory", f->path);
    memset(ones, 1, (size_t)(r->count ? r->count : 1));
    /* not flushed here: the next flush (or the close) carries it, always after its rows */
    features_dataset done = features_dataset_of(&ff->m, FEATURES_DONE);
    int rc = h5_write_row_list(f, done.name, done.mem_type, r->rows, r->count, ones, err);
    free(ones);
    return rc;
}

int features_commit(features_file *ff, char *err) { return h5_commit(&ff->f, err); }

void features_close_partial(features_file *ff) { h5_close(&ff->f); }
