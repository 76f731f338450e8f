/* features_file.c -- creating, resuming and writing the features file (see features_file.h). */
#include "features_file.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "half.h"
#include "log.h"
#include "version.h"

char *features_identity_json(const features_meta *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", m->source);
    cJSON_AddNumberToObject(o, "source_samples", (double)m->n);
    cJSON_AddNumberToObject(o, "source_points", (double)m->points);
    cJSON_AddStringToObject(o, "source_fingerprint", m->source_fingerprint);
    cJSON_AddStringToObject(o, "vit_spec", m->vit_spec);
    cJSON_AddStringToObject(o, "weights_sha256", m->weights_sha256);
    cJSON_AddNumberToObject(o, "views", m->views);
    cJSON_AddNumberToObject(o, "image", m->image);
    cJSON_AddNumberToObject(o, "block", m->block);
    cJSON_AddStringToObject(o, "precision", m->precision);
    cJSON_AddStringToObject(o, "storage", m->fp32 ? "fp32" : "fp16");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int write_attrs(h5file *f, const features_meta *m, const char *config_json, char *err)
{
    const struct {
        const char *name;
        long v;
    } longs[] = {{"views", m->views},     {"image", m->image},       {"patch", m->patch},
                 {"grid", m->grid},       {"feat_dim", m->feat_dim}, {"block", m->block},
                 {"source_samples", m->n}, {"source_points", m->points}};
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++)
        if (h5_attr_write_long(f, "/", longs[i].name, longs[i].v, err)) return -1;
    const struct {
        const char *name, *v;
    } strs[] = {{"format", FEATURES_FORMAT},
                {"vit", m->vit},
                {"vit_spec", m->vit_spec},
                {"weights_sha256", m->weights_sha256},
                {"precision", m->precision},
                {"storage", m->fp32 ? "fp32" : "fp16"},
                {"i2pmae", I2PMAE_VERSION},
                {"config", config_json},
                {"source", m->source},
                {"source_fingerprint", m->source_fingerprint}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (h5_attr_write_str(f, "/", strs[i].name, strs[i].v, err)) return -1;
    return 0;
}

static int create_datasets(h5file *f, const features_meta *m, char *err)
{
    hsize_t N = (hsize_t)m->n, V = (hsize_t)m->views, g = (hsize_t)m->grid, C = (hsize_t)m->feat_dim;
    hsize_t P = (hsize_t)m->points;
    hid_t ft = m->fp32 ? H5T_IEEE_F32LE : h5_type_f16();
    /* one sample per chunk; every row of these is written, so no fill values at creation */
    if (h5_create_dataset_unfilled(f, "/patch", ft, 5, (hsize_t[]){N, V, g, g, C},
                                   (hsize_t[]){1, V, g, g, C}, err) ||
        h5_create_dataset_unfilled(f, "/cls", ft, 3, (hsize_t[]){N, V, C}, (hsize_t[]){1, V, C}, err) ||
        h5_create_dataset_unfilled(f, "/saliency", H5T_IEEE_F32LE, 4, (hsize_t[]){N, V, g, g},
                                   (hsize_t[]){1, V, g, g}, err) ||
        h5_create_dataset_unfilled(f, "/pixel", H5T_STD_I16LE, 4, (hsize_t[]){N, V, P, 2},
                                   (hsize_t[]){1, V, P, 2}, err) ||
        h5_create_dataset_unfilled(f, "/point_saliency", H5T_IEEE_F32LE, 2, (hsize_t[]){N, P},
                                   (hsize_t[]){1, P}, err) ||
        h5_create_dataset(f, "/label", H5T_STD_I32LE, 1, (hsize_t[]){N}, NULL, 0, err) ||
        h5_create_dataset(f, "/done", H5T_STD_U8LE, 1, (hsize_t[]){N}, NULL, 0, err)) /* zeros */
        return -1;
    return 0;
}

int features_create(features_file *ff, const char *path, MPI_Comm comm, const features_meta *m,
                    const char *config_json, int force, char *err)
{
    memset(ff, 0, sizeof *ff);
    ff->m = *m;
    if (h5_create(&ff->f, path, comm, force, err)) return -1;
    char *identity = features_identity_json(m);
    /* the identity attribute goes last, after a flush: a partial file without it is an unfinished
     * creation and is recreated by the next run */
    int rc = create_datasets(&ff->f, m, err) || write_attrs(&ff->f, m, config_json, err) ||
             h5_flush(&ff->f, err) || h5_attr_write_str(&ff->f, "/", "identity", identity, err) ||
             h5_flush(&ff->f, err);
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
    char *want = features_identity_json(m);
    char *have = malloc(65536);
    rc = have ? h5_attr_read_str(&ff->f, "/", "identity", have, 65536, err)
              : errf(err, "%s: out of memory", path);
    if (!rc && strcmp(want, have))
        rc = errf(err, "%s.partial: was made with another configuration (%s; now %s): use --force to "
                  "replace it", path, have, want);
    free(want);
    free(have);
    if (rc) {
        h5_close(&ff->f);
        return -1;
    }
    return 1;
}

int features_write_rows(features_file *ff, const features_rows *r, char *err)
{
    h5file *f = &ff->f;
    hid_t mt = ff->m.fp32 ? H5T_NATIVE_FLOAT : h5_type_f16();
    int rc = h5_write_row_list(f, "/patch", mt, r->rows, r->count, r->patch, err);
    if (!rc) rc = h5_write_row_list(f, "/cls", mt, r->rows, r->count, r->cls, err);
    if (!rc) rc = h5_write_row_list(f, "/saliency", H5T_NATIVE_FLOAT, r->rows, r->count, r->saliency, err);
    if (!rc) rc = h5_write_row_list(f, "/pixel", H5T_NATIVE_INT16, r->rows, r->count, r->pixel, err);
    if (!rc)
        rc = h5_write_row_list(f, "/point_saliency", H5T_NATIVE_FLOAT, r->rows, r->count,
                               r->point_saliency, err);
    if (!rc) rc = h5_write_row_list(f, "/label", H5T_NATIVE_INT32, r->rows, r->count, r->label, err);
    if (!rc) rc = h5_flush(f, err);
    if (rc) return -1;
    uint8_t *ones = malloc((size_t)(r->count ? r->count : 1));
    if (!ones) return errf(err, "%s: out of memory", f->path);
    memset(ones, 1, (size_t)(r->count ? r->count : 1));
    /* not flushed here: the next flush (or the close) carries it, always after its rows */
    rc = h5_write_row_list(f, "/done", H5T_NATIVE_UINT8, r->rows, r->count, ones, err);
    free(ones);
    return rc;
}

int features_commit(features_file *ff, char *err) { return h5_commit(&ff->f, err); }

void features_close_partial(features_file *ff) { h5_close(&ff->f); }
