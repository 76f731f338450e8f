/* dataset_parts.c -- the part-segmentation labels of the canonical point-cloud file (dataset.h):
 * /seg (N,P) int32 and the root attributes n_parts, parts_per_class, part_names. */
#include "dataset.h"

#include <string.h>

#include "errors.h"

int dataset_writer_add_parts(dataset_writer *w, const part_table *t, const char *part_names, char *err)
{
    char counts[4 * PART_MAX_CATEGORIES + 8];
    part_table_format(t, counts, sizeof counts);
    hsize_t dims[2] = {(hsize_t)w->n, (hsize_t)w->points};
    if (h5_create_dataset(&w->f, "/seg", H5T_STD_I32LE, 2, dims, NULL, 0, err) ||
        h5_attr_write_long(&w->f, "/", "n_parts", t->n_parts, err) ||
        h5_attr_write_str(&w->f, "/", "parts_per_class", counts, err) ||
        h5_attr_write_str(&w->f, "/", "part_names", part_names ? part_names : "", err))
        return -1;
    return 0;
}

int dataset_open_parts(dataset *d, part_table *t, char *err)
{
    const char *path = d->f.path;
    if (!h5_exists(&d->f, "/seg"))
        return errf(err, "%s: no /seg dataset: not a part-segmentation file (i2pmae synth --parts, "
                    "convert --format shapenetpart)", path);
    if (h5_check_shape(&d->f, "/seg", 2, (hsize_t[]){(hsize_t)d->n, (hsize_t)d->points}, err)) return -1;
    if (h5_type_class(&d->f, "/seg", err) != H5T_INTEGER) return errf(err, "%s: /seg is not an integer dataset", path);
    char counts[4 * PART_MAX_CATEGORIES + 8];
    long n_parts = 0;
    if (!h5_attr_exists(&d->f, "/", "parts_per_class") || !h5_attr_exists(&d->f, "/", "n_parts"))
        return errf(err, "%s: attributes parts_per_class and n_parts are required beside /seg", path);
    if (h5_attr_read_str(&d->f, "/", "parts_per_class", counts, sizeof counts, err) ||
        h5_attr_read_long(&d->f, "/", "n_parts", &n_parts, err))
        return -1;
    if (part_table_parse(t, counts, err)) return err_prefix(err, path);
    if (t->n_parts != n_parts)
        return errf(err, "%s: n_parts = %ld but parts_per_class \"%s\" sums to %d", path, n_parts, counts,
                    t->n_parts);
    if (t->n_categories != d->n_classes)
        return errf(err, "%s: parts_per_class lists %d categories, the file has %d classes", path,
                    t->n_categories, d->n_classes);
    return 0;
}

int dataset_read_seg(dataset *d, const part_table *t, long start, long count, const int32_t *labels,
                     int32_t *seg, char *err)
{
    if (h5_read_rows(&d->f, "/seg", H5T_NATIVE_INT32, start, count, seg, err)) return -1;
    for (long i = 0; i < count; i++) {
        int c = labels[i];
        if (c < 0 || c >= t->n_categories)
            return errf(err, "%s: sample %ld: category %d outside [0, %d)", d->f.path, start + i, c, t->n_categories);
        int lo = t->first[c], hi = lo + t->count[c];
        for (long k = 0; k < d->points; k++) {
            int p = seg[i * d->points + k];
            if (p < lo || p >= hi)
                return errf(err, "%s: /seg: sample %ld point %ld has part %d, outside the parts [%d, %d) of "
                            "its category %d", d->f.path, start + i, k, p, lo, hi, c);
        }
    }
    return 0;
}
