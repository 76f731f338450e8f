/* dataset_read.c -- opening and reading point-cloud datasets: the canonical file and the
 * ModelNet40 / ScanObjectNN h5 releases as they are (see dataset.h). */
#include "dataset.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "paths.h"
#include "pointops.h"

/* Layout checks on an open file; fills d->n, d->points, names and source. group is "" (the root)
 * or e.g. "/train" (only the canonical layout there). */
static int check_layout(dataset *d, const char *path, const char *group, char *err)
{
    h5file *f = &d->f;
    char points[sizeof d->points_name];
    snprintf(points, sizeof points, "%s/points", group);
    snprintf(d->label_name, sizeof d->label_name, "%s/label", group);
    if (group[0] && !h5_exists(f, group)) {
        return errf(err, "%s: no group %s in this file%s", path, group,
                    h5_exists(f, "/points") || h5_exists(f, "/data")
                        ? " (a plain point-cloud dataset, not a few-shot split)" : "");
    } else if (h5_exists(f, points)) {
        snprintf(d->points_name, sizeof d->points_name, "%s", points);
    } else if (!group[0] && h5_exists(f, "/data")) {
        snprintf(d->points_name, sizeof d->points_name, "/data");
    } else if (!group[0] && h5_exists(f, "/train/points") && h5_exists(f, "/test/points")) {
        return errf(err, "%s: a few-shot split (groups /train and /test): name a group, "
                    "%s:/train or %s:/test", path, path, path);
    } else if (group[0]) {
        return errf(err, "%s: no %s dataset: not a point-cloud group", path, points);
    } else {
        return errf(err, "%s: no /points dataset (canonical) and no /data dataset "
                    "(ModelNet40/ScanObjectNN h5): not a point-cloud dataset", path);
    }
    if (!h5_exists(f, d->label_name)) return errf(err, "%s: dataset %s is missing", path, d->label_name);

    int rank;
    hsize_t dims[H5IO_MAX_RANK];
    if (h5_check_shape(f, d->points_name, 3, (hsize_t[]){0, 0, 3}, err)) return -1;
    if (h5_dims(f, d->points_name, &rank, dims, err)) return -1;
    if (h5_type_class(f, d->points_name, err) != H5T_FLOAT)
        return errf(err, "%s: %s is not a floating-point dataset", path, d->points_name);
    d->n = (long)dims[0];
    d->points = (long)dims[1];
    if (d->n == 0) return errf(err, "%s: %s holds no samples (shape (0,%ld,3))", path,
                               d->points_name, d->points);
    if (d->points == 0) return errf(err, "%s: %s: clouds have zero points (shape (%ld,0,3))", path,
                                    d->points_name, d->n);

    hsize_t ldims[H5IO_MAX_RANK];
    const char *label = d->label_name;
    if (h5_dims(f, label, &rank, ldims, err)) return -1;
    /* (N) canonical, (N,1) in the ModelNet40 / ScanObjectNN releases */
    if (rank == 2 ? h5_check_shape(f, label, 2, (hsize_t[]){(hsize_t)d->n, 1}, err)
                  : h5_check_shape(f, label, 1, (hsize_t[]){(hsize_t)d->n}, err))
        return -1;
    if (h5_type_class(f, label, err) != H5T_INTEGER)
        return errf(err, "%s: %s is not an integer dataset", path, label);
    return 0;
}

/* Class names of a ModelNet40 h5 release: shape_names.txt next to the file, one per line. */
static void read_shape_names(dataset *d, const char *path)
{
    char tmp[I2P_PATH_LEN], names[I2P_PATH_LEN];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(names, sizeof names, "%s/shape_names.txt", dirname(tmp));
    FILE *fp = fopen(names, "r");
    if (!fp) return;
    size_t len = 0;
    char line[256];
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        int n = snprintf(d->class_names + len, sizeof d->class_names - len, "%s%s", len ? "\n" : "", line);
        if (n < 0 || (size_t)n >= sizeof d->class_names - len) break;
        len += (size_t)n;
    }
    fclose(fp);
}

static int read_labels_all(dataset *d, int32_t **out, char *err)
{
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)d->n);
    if (!lab) return errf(err, "%s: out of memory for %ld labels", d->f.path, d->n);
    if (h5_read_all(&d->f, d->label_name, H5T_NATIVE_INT32, lab, err)) { free(lab); return -1; }
    *out = lab;
    return 0;
}

static int open_local(dataset *d, const char *path, const char *group, char *err)
{
    if (check_layout(d, path, group, err)) return -1;
    const char *obj = group[0] ? group : "/"; /* where the attributes are */
    if (strcmp(d->points_name, "/data")) {
        char src[64] = "";
        if (h5_attr_exists(&d->f, obj, "source") &&
            h5_attr_read_str(&d->f, obj, "source", src, sizeof src, err))
            return -1;
        snprintf(d->source, sizeof d->source, "canonical:%.50s", src[0] ? src : "unknown");
        if (h5_attr_exists(&d->f, obj, "class_names") &&
            h5_attr_read_str(&d->f, obj, "class_names", d->class_names, sizeof d->class_names, err))
            return -1;
    } else {
        char tmp[I2P_PATH_LEN];
        snprintf(tmp, sizeof tmp, "%s", path);
        const char *base = basename(tmp);
        int mn40 = !strncmp(base, "ply_data_", 9);
        snprintf(d->source, sizeof d->source, mn40 ? "modelnet40-h5" : "scanobjectnn-h5");
        if (mn40) read_shape_names(d, path);
    }
    if (h5_attr_exists(&d->f, obj, "n_classes")) {
        long nc;
        if (h5_attr_read_long(&d->f, obj, "n_classes", &nc, err)) return -1;
        if (nc < 1 || nc > DATASET_MAX_CLASSES)
            return errf(err, "%s: attribute n_classes = %ld is out of range [1, %d]", path, nc,
                        DATASET_MAX_CLASSES);
        d->n_classes = (int)nc;
        return 0;
    }
    int32_t *lab = NULL;
    if (read_labels_all(d, &lab, err)) return -1;
    int32_t mx = -1;
    int rc = 0;
    for (long i = 0; i < d->n && !rc; i++) {
        if (lab[i] < 0 || lab[i] >= DATASET_MAX_CLASSES)
            rc = errf(err, "%s: %s: sample %ld has label %d, outside [0, %d)", path, d->label_name,
                      i, lab[i], DATASET_MAX_CLASSES);
        if (lab[i] > mx) mx = lab[i];
    }
    free(lab);
    d->n_classes = (int)mx + 1;
    return rc;
}

/* "FILE:/GROUP" -> FILE and "/GROUP" when FILE exists and the whole name does not; otherwise the
 * name is the file and the group "" (the root). */
static int split_group(const char *name, char *file, char *group, size_t group_len, char *err)
{
    snprintf(file, I2P_PATH_LEN, "%s", name);
    group[0] = 0;
    const char *colon = strstr(name, ":/");
    for (const char *c = colon; c; c = strstr(c + 1, ":/")) colon = c; /* the last one */
    if (!colon || access(name, F_OK) == 0) return 0;
    snprintf(file, I2P_PATH_LEN, "%.*s", (int)(colon - name), name);
    if (access(file, F_OK) != 0) { snprintf(file, I2P_PATH_LEN, "%s", name); return 0; }
    const char *g = colon + 1;
    size_t n = strlen(g);
    while (n > 1 && g[n - 1] == '/') n--;
    if (n + 16 > group_len) return errf(err, "%s: group name too long", name);
    snprintf(group, group_len, "%.*s", (int)n, g);
    if (!strcmp(group, "/")) group[0] = 0;
    return 0;
}

int dataset_open(dataset *d, const char *name, MPI_Comm comm, char *err)
{
    memset(d, 0, sizeof *d);
    d->f.file = -1;
    char path[I2P_PATH_LEN], group[sizeof d->points_name];
    if (split_group(name, path, group, sizeof group, err)) return -1;
    if (h5_open_read(&d->f, path, comm, err)) return -1;
    /* The layout is the same on every rank, but agree anyway so no rank is left waiting. */
    int rc = open_local(d, path, group, err);
    int any = rc ? 1 : 0, all = 0;
    MPI_Allreduce(&any, &all, 1, MPI_INT, MPI_MAX, comm);
    if (all) {
        if (!rc) errf(err, "%s: invalid dataset (reported on another rank)", path);
        h5_close(&d->f);
        return -1;
    }
    return 0;
}

int dataset_read(dataset *d, long start, long count, float *points, int32_t *labels, char *err)
{
    const char *path = d->f.path;
    int rc = h5_read_rows(&d->f, d->points_name, H5T_NATIVE_FLOAT, start, count, points, err);
    if (labels) {
        char err2[I2P_ERR_LEN];
        int rc2 = h5_read_rows(&d->f, d->label_name, H5T_NATIVE_INT32, start, count, labels, err2);
        if (rc2 && !rc) { memcpy(err, err2, I2P_ERR_LEN); rc = -1; }
    }
    if (rc) return -1;
    for (long i = 0; i < count; i++) {
        const float *p = points + i * d->points * 3;
        if (!pc_all_finite(p, d->points * 3))
            return errf(err, "%s: %s: sample %ld has a NaN or Inf coordinate", path, d->points_name,
                        start + i);
        if (labels && (labels[i] < 0 || labels[i] >= d->n_classes))
            return errf(err, "%s: %s: sample %ld has label %d, outside [0, %d)", path, d->label_name,
                        start + i, labels[i], d->n_classes);
    }
    return 0;
}

void dataset_close(dataset *d) { h5_close(&d->f); }
