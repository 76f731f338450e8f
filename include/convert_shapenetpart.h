/* convert_shapenetpart.h -- ShapeNetPart (`shapenetcore_partanno_segmentation_benchmark_v0_normal`)
 * for `i2pmae convert --format shapenetpart` (docs/datasets.md).
 *
 * Layout read: DIR/synsetoffset2category.txt ("<Category>\t<synset>" per line: the 16 categories,
 * in label order), DIR/train_test_split/shuffled_{train,val,test}_file_list.json (JSON arrays of
 * "shape_data/<synset>/<model>"), and DIR/<synset>/<model>.txt: one point per row,
 * "x y z nx ny nz part" (part a global part id written as a number, e.g. 12.000000). The 50 parts
 * are numbered per category as in Point-M2AE's seg_classes (Airplane 0-3, Bag 4-5, ..., Table
 * 47-49), so each category's parts are contiguous (part_table.h).
 * Split "trainval" is the train list followed by the val list (Point-M2AE trains on it).
 *
 * Loading a shape (as PartNormalDataset): every row is checked (7 numbers, a part of the shape's
 * category), xyz normalised into the unit sphere (centroid, largest norm), then P_out points drawn
 * uniformly WITH replacement from rng stream (seed, sample index). Normals are checked but not stored.
 */
#ifndef I2P_CONVERT_SHAPENETPART_H
#define I2P_CONVERT_SHAPENETPART_H

#include <stdint.h>

#include "part_table.h"

#define SHAPENETPART_CATEGORIES 16

typedef struct {
    long n;
    char **files;          /* DIR/<synset>/<model>.txt per sample */
    int32_t *category;     /* per sample */
    char class_names[1024];
    char part_names[4096];
    part_table parts;
} shapenetpart_source;

/* split: train, val, test or trainval. Errors name the list or file. */
int shapenetpart_open(shapenetpart_source *s, const char *dir, const char *split, char *err);
/* Samples [start, start+count): points (count,P_out,3), category (count), seg (count,P_out). */
int shapenetpart_load(const shapenetpart_source *s, long start, long count, long P_out, uint64_t seed,
                      float *points, int32_t *category, int32_t *seg, char *err);
void shapenetpart_free(shapenetpart_source *s);

#endif
