/* features_layout.c -- the features file's datasets, attributes and identity as tables (see
 * features_layout.h). */
#include "features_layout.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "version.h"

/* ---- datasets ---- */

/* A dimension, as the metadata gives it. */
typedef enum { DIM_SAMPLES, DIM_VIEWS, DIM_GRID, DIM_FEATURES, DIM_POINTS, DIM_ROW_COL } layout_dim;
/* An element type: ELEM_STORED is half, or float32 for a file written with --fp32. */
typedef enum { ELEM_STORED, ELEM_F32, ELEM_I16, ELEM_I32, ELEM_U8 } layout_elem;

static const struct {
    const char *name;
    layout_elem elem;
    int rank;
    layout_dim dims[5];
    int per_sample_chunks;
} DATASETS[FEATURES_N_DATASETS] = {
    [FEATURES_PATCH] = {"/patch", ELEM_STORED, 5,
                        {DIM_SAMPLES, DIM_VIEWS, DIM_GRID, DIM_GRID, DIM_FEATURES}, 1},
    [FEATURES_CLS] = {"/cls", ELEM_STORED, 3, {DIM_SAMPLES, DIM_VIEWS, DIM_FEATURES}, 1},
    [FEATURES_SALIENCY] = {"/saliency", ELEM_F32, 4, {DIM_SAMPLES, DIM_VIEWS, DIM_GRID, DIM_GRID}, 1},
    [FEATURES_PIXEL] = {"/pixel", ELEM_I16, 4, {DIM_SAMPLES, DIM_VIEWS, DIM_POINTS, DIM_ROW_COL}, 1},
    [FEATURES_POINT_SALIENCY] = {"/point_saliency", ELEM_F32, 2, {DIM_SAMPLES, DIM_POINTS}, 1},
    [FEATURES_LABEL] = {"/label", ELEM_I32, 1, {DIM_SAMPLES}, 0},
    [FEATURES_DONE] = {"/done", ELEM_U8, 1, {DIM_SAMPLES}, 0},
};

static hsize_t dim_value(const features_meta *m, layout_dim d)
{
    switch (d) {
    case DIM_SAMPLES: return (hsize_t)m->n;
    case DIM_VIEWS: return (hsize_t)m->views;
    case DIM_GRID: return (hsize_t)m->grid;
    case DIM_FEATURES: return (hsize_t)m->feat_dim;
    case DIM_POINTS: return (hsize_t)m->points;
    case DIM_ROW_COL: return 2;
    }
    return 0;
}

static void set_types(features_dataset *d, layout_elem e, int fp32)
{
    if (e == ELEM_STORED && fp32) e = ELEM_F32;
    switch (e) {
    case ELEM_STORED: /* half (converted by half.h, never by HDF5) */
        d->file_type = d->mem_type = h5_type_f16();
        d->elem_bytes = sizeof(uint16_t);
        break;
    case ELEM_F32:
        d->file_type = H5T_IEEE_F32LE;
        d->mem_type = H5T_NATIVE_FLOAT;
        d->elem_bytes = sizeof(float);
        break;
    case ELEM_I16:
        d->file_type = H5T_STD_I16LE;
        d->mem_type = H5T_NATIVE_INT16;
        d->elem_bytes = sizeof(int16_t);
        break;
    case ELEM_I32:
        d->file_type = H5T_STD_I32LE;
        d->mem_type = H5T_NATIVE_INT32;
        d->elem_bytes = sizeof(int32_t);
        break;
    case ELEM_U8:
        d->file_type = H5T_STD_U8LE;
        d->mem_type = H5T_NATIVE_UINT8;
        d->elem_bytes = sizeof(uint8_t);
        break;
    }
}

features_dataset features_dataset_of(const features_meta *m, features_dataset_id id)
{
    features_dataset d = {.name = DATASETS[id].name, .rank = DATASETS[id].rank,
                          .per_sample_chunks = DATASETS[id].per_sample_chunks};
    for (int k = 0; k < d.rank; k++) d.dims[k] = dim_value(m, DATASETS[id].dims[k]);
    set_types(&d, DATASETS[id].elem, m->fp32);
    return d;
}

long features_row_elems(const features_meta *m, features_dataset_id id)
{
    long e = 1;
    for (int k = 1; k < DATASETS[id].rank; k++) e *= (long)dim_value(m, DATASETS[id].dims[k]);
    return e;
}

size_t features_row_bytes(const features_meta *m, features_dataset_id id)
{
    return features_dataset_of(m, id).elem_bytes * (size_t)features_row_elems(m, id);
}

size_t features_sample_bytes(const features_meta *m)
{
    size_t b = 0;
    for (int id = 0; id < FEATURES_N_DATASETS; id++) b += features_row_bytes(m, (features_dataset_id)id);
    return b;
}

int features_layout_create(h5file *f, const features_meta *m, char *err)
{
    for (int id = 0; id < FEATURES_N_DATASETS; id++) {
        features_dataset d = features_dataset_of(m, (features_dataset_id)id);
        hsize_t chunk[H5IO_MAX_RANK];
        memcpy(chunk, d.dims, sizeof chunk);
        chunk[0] = 1;
        int rc = d.per_sample_chunks
                     ? h5_create_dataset_unfilled(f, d.name, d.file_type, d.rank, d.dims, chunk, err)
                     : h5_create_dataset(f, d.name, d.file_type, d.rank, d.dims, NULL, 0, err);
        if (rc) return -1;
    }
    return 0;
}

int features_layout_check(h5file *f, const features_meta *m, char *err)
{
    for (int id = 0; id < FEATURES_N_DATASETS; id++) {
        features_dataset d = features_dataset_of(m, (features_dataset_id)id);
        if (h5_check_shape(f, d.name, d.rank, d.dims, err)) return -1;
    }
    return 0;
}

/* ---- root attributes ---- */

typedef enum {
    ATTR_INT,     /* an int field of features_meta */
    ATTR_LONG,    /* a long field */
    ATTR_TEXT,    /* a char array field */
    ATTR_STORAGE, /* "fp32" | "fp16", the fp32 field */
    ATTR_FORMAT,  /* FEATURES_FORMAT; read and checked before the others */
    ATTR_VERSION, /* the program version; not read back */
    ATTR_CONFIG   /* the command configuration; not read back */
} attr_kind;

/* Sanity limits on the integer attributes read back (the largest ViT input is 16384 px). */
#define FEATURES_MAX_INT_ATTR 1000000
#define FEATURES_MAX_IMAGE 16384
#define FEATURES_MAX_VIEWS 64

/* In writing order (the identity attribute comes after these, see features_create). */
static const struct {
    const char *name;
    attr_kind kind;
    size_t offset, size; /* of the features_meta field */
} ATTRS[] = {
    {"views", ATTR_INT, offsetof(features_meta, views), 0},
    {"image", ATTR_INT, offsetof(features_meta, image), 0},
    {"patch", ATTR_INT, offsetof(features_meta, patch), 0},
    {"grid", ATTR_INT, offsetof(features_meta, grid), 0},
    {"feat_dim", ATTR_INT, offsetof(features_meta, feat_dim), 0},
    {"block", ATTR_INT, offsetof(features_meta, block), 0},
    {"source_samples", ATTR_LONG, offsetof(features_meta, n), 0},
    {"source_points", ATTR_LONG, offsetof(features_meta, points), 0},
    {"format", ATTR_FORMAT, 0, 0},
    {"vit", ATTR_TEXT, offsetof(features_meta, vit), sizeof ((features_meta *)0)->vit},
    {"vit_spec", ATTR_TEXT, offsetof(features_meta, vit_spec), sizeof ((features_meta *)0)->vit_spec},
    {"weights_sha256", ATTR_TEXT, offsetof(features_meta, weights_sha256),
     sizeof ((features_meta *)0)->weights_sha256},
    {"precision", ATTR_TEXT, offsetof(features_meta, precision), sizeof ((features_meta *)0)->precision},
    {"storage", ATTR_STORAGE, 0, 0},
    {"i2pmae", ATTR_VERSION, 0, 0},
    {"config", ATTR_CONFIG, 0, 0},
    {"source", ATTR_TEXT, offsetof(features_meta, source), sizeof ((features_meta *)0)->source},
    {"source_fingerprint", ATTR_TEXT, offsetof(features_meta, source_fingerprint),
     sizeof ((features_meta *)0)->source_fingerprint},
};
enum { N_ATTRS = sizeof ATTRS / sizeof ATTRS[0] };

static const char *storage_name(int fp32) { return fp32 ? "fp32" : "fp16"; }

int features_attrs_write(h5file *f, const features_meta *m, const char *config_json, char *err)
{
    for (int i = 0; i < N_ATTRS; i++) {
        const char *field = (const char *)m + ATTRS[i].offset, *name = ATTRS[i].name;
        int rc = 0;
        switch (ATTRS[i].kind) {
        case ATTR_INT: rc = h5_attr_write_long(f, "/", name, *(const int *)field, err); break;
        case ATTR_LONG: rc = h5_attr_write_long(f, "/", name, *(const long *)field, err); break;
        case ATTR_TEXT: rc = h5_attr_write_str(f, "/", name, field, err); break;
        case ATTR_STORAGE: rc = h5_attr_write_str(f, "/", name, storage_name(m->fp32), err); break;
        case ATTR_FORMAT: rc = h5_attr_write_str(f, "/", name, FEATURES_FORMAT, err); break;
        case ATTR_VERSION: rc = h5_attr_write_str(f, "/", name, I2PMAE_VERSION, err); break;
        case ATTR_CONFIG: rc = h5_attr_write_str(f, "/", name, config_json, err); break;
        }
        if (rc) return -1;
    }
    return 0;
}

static int check_format(h5file *f, char *err)
{
    char fmt[64];
    if (!h5_attr_exists(f, "/", "format"))
        return errf(err, "%s: not a features file (no 'format' attribute)", f->path);
    if (h5_attr_read_str(f, "/", "format", fmt, sizeof fmt, err)) return -1;
    if (strcmp(fmt, FEATURES_FORMAT))
        return errf(err, "%s: format is '%s', expected '%s'", f->path, fmt, FEATURES_FORMAT);
    return 0;
}

int features_meta_read(h5file *f, features_meta *m, char *err)
{
    memset(m, 0, sizeof *m);
    if (check_format(f, err)) return -1;
    for (int i = 0; i < N_ATTRS; i++) {
        char *field = (char *)m + ATTRS[i].offset, storage[16];
        const char *name = ATTRS[i].name;
        long v;
        switch (ATTRS[i].kind) {
        case ATTR_INT:
            if (h5_attr_read_long(f, "/", name, &v, err)) return -1;
            if (v < 0 || v > FEATURES_MAX_INT_ATTR)
                return errf(err, "%s: attribute %s = %ld is outside [0, %d]", f->path, name, v,
                            FEATURES_MAX_INT_ATTR);
            *(int *)field = (int)v;
            break;
        case ATTR_LONG:
            if (h5_attr_read_long(f, "/", name, (long *)field, err)) return -1;
            break;
        case ATTR_TEXT:
            if (h5_attr_read_str(f, "/", name, field, ATTRS[i].size, err)) return -1;
            break;
        case ATTR_STORAGE:
            if (h5_attr_read_str(f, "/", name, storage, sizeof storage, err)) return -1;
            if (strcmp(storage, "fp32") && strcmp(storage, "fp16"))
                return errf(err, "%s: storage '%s': must be fp32 or fp16", f->path, storage);
            m->fp32 = !strcmp(storage, "fp32");
            break;
        case ATTR_FORMAT:
        case ATTR_VERSION:
        case ATTR_CONFIG: break;
        }
    }
    if (m->n < 1 || m->points < 1 || m->views < 1 || m->grid < 1 || m->feat_dim < 1)
        return errf(err, "%s: attributes describe an empty layout", f->path);
    /* sizes the readers index with: image = grid x patch, within the ViT's limits */
    if (m->patch < 1 || m->image > FEATURES_MAX_IMAGE || m->image != m->grid * m->patch ||
        m->views > FEATURES_MAX_VIEWS || m->points > 32767)
        return errf(err, "%s: attributes image %d, patch %d, grid %d, views %d, points %ld are not "
                    "a consistent layout (image = grid x patch <= %d, views <= %d, points <= 32767)",
                    f->path, m->image, m->patch, m->grid, m->views, m->points, FEATURES_MAX_IMAGE,
                    FEATURES_MAX_VIEWS);
    return 0;
}

/* ---- identity ---- */

/* The attributes the stored values depend on, in the order of the identity JSON. */
static const char *const IDENTITY[] = {
    "source", "source_samples", "source_points", "source_fingerprint", "vit_spec", "weights_sha256",
    "views", "image", "block", "precision", "storage"};

static void add_identity_item(cJSON *o, const features_meta *m, const char *name)
{
    for (int i = 0; i < N_ATTRS; i++) {
        if (strcmp(ATTRS[i].name, name)) continue;
        const char *field = (const char *)m + ATTRS[i].offset;
        switch (ATTRS[i].kind) {
        case ATTR_INT: cJSON_AddNumberToObject(o, name, *(const int *)field); break;
        case ATTR_LONG: cJSON_AddNumberToObject(o, name, (double)*(const long *)field); break;
        case ATTR_TEXT: cJSON_AddStringToObject(o, name, field); break;
        case ATTR_STORAGE: cJSON_AddStringToObject(o, name, storage_name(m->fp32)); break;
        case ATTR_FORMAT:
        case ATTR_VERSION:
        case ATTR_CONFIG: break; /* not in the identity */
        }
    }
}

char *features_identity_json(const features_meta *m)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof IDENTITY / sizeof IDENTITY[0]; i++)
        add_identity_item(o, m, IDENTITY[i]);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The longest identity attribute read back (the JSON of a few paths and names). */
enum { IDENTITY_MAX_BYTES = 65536 };

int features_identity_check(h5file *f, const features_meta *m, int final, char *err)
{
    char *want = features_identity_json(m);
    char *have = malloc(IDENTITY_MAX_BYTES);
    int rc = want && have ? h5_attr_read_str(f, "/", "identity", have, IDENTITY_MAX_BYTES, err)
                          : errf(err, "%s: out of memory", f->path);
    if (!rc && strcmp(want, have))
        rc = errf(err, "%s: %swas made with another configuration (%s; now %s): use --force to "
                  "replace it", f->path, final ? "exists and " : "", have, want);
    free(want);
    free(have);
    return rc ? -1 : 0;
}
