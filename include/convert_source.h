/* convert_source.h -- the real dataset layouts `i2pmae convert` reads, as a list of samples.
 *
 * convert_source_open scans the input (collectively cheap: every rank lists the same files) and
 * fixes the sample order, labels and class names:
 *   modelnet40   DIR with ply_data_<split><k>.h5 (k = 0, 1, ...: /data (N,P,3) float32, /label
 *                (N,1) uint8) and shape_names.txt; samples in file order.
 *   scanobjectnn one .h5 file (/data (N,P,3), /label (N) or (N,1)); the 15 class names of
 *                ScanObjectNN when labels are < 15.
 *   shapenet55   DIR with <split>.txt (or DIR/ShapeNet-55/<split>.txt) listing <synset>-<model>.npy
 *                files in DIR/shapenet_pc (or next to the list directory); label = index of the
 *                synset among the sorted synsets of train.txt and test.txt.
 *   off          DIR/<class>/<split>/<name>.off (the raw ModelNet40 layout); classes and files sorted by
 *                name; points sampled on the surface (area-weighted, rng stream = sample index).
 * convert_source_load fills samples [start, start+count) brought to P_out points: the first P_out
 * or farthest-point-sampled (use_fps), then normalised into the unit sphere. Not collective.
 */
#ifndef I2P_CONVERT_SOURCE_H
#define I2P_CONVERT_SOURCE_H

#include <stdint.h>

typedef enum { FMT_MODELNET40, FMT_SCANOBJECTNN, FMT_SHAPENET55, FMT_OFF } convert_format;

typedef struct {
    convert_format format;
    const char *source_name;   /* the "source" attribute: "modelnet40-h5", ... */
    long n;                    /* samples */
    long points;               /* points per source sample; 0 for meshes */
    int n_classes;
    char class_names[8192];    /* '\n'-separated */
    int n_files;               /* h5 formats: files and the first sample of each (n_files + 1) */
    char **files;
    long *file_start;
    char **items;              /* npy / off: one file per sample */
    int32_t *labels;
} convert_source;

/* format: "modelnet40", "scanobjectnn", "shapenet55", "off"; split: "train" or "test". */
int convert_source_open(convert_source *s, const char *format, const char *input, const char *split,
                        char *err);
/* out (count,P_out,3), labels (count). seed drives OFF surface sampling. */
int convert_source_load(const convert_source *s, long start, long count, long P_out, int use_fps,
                        uint64_t seed, float *out, int32_t *labels, char *err);
void convert_source_free(convert_source *s);

#endif
