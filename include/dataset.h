/* dataset.h -- point-cloud datasets: the canonical file, and real layouts read as they are.
 *
 * Canonical file (written by `synth` and `convert`; layout in docs/datasets.md):
 *   /points (N,P,3) float32, chunked one sample per chunk
 *   /label  (N)     int32, 0 <= label < n_classes
 *   optional /normal (N,P,3) float32
 *   root attributes: "format" = "i2pmae-points", "source" (e.g. "synth", "modelnet40-h5"),
 *                    "class_names" (one string, names separated by '\n'), "n_classes".
 * Also read as they are: ModelNet40 `ply_data_*.h5` and ScanObjectNN `.h5` (`/data` (N,P,3) float32,
 * `/label` (N) or (N,1) any integer type).
 *
 * dataset_open checks the layout (datasets present, ranks, shapes, types) and fails with an error
 * naming the file and the problem. dataset_read additionally checks every coordinate is finite and
 * every label is in range, naming the sample index on failure. P == 0 is an error at open.
 * All functions taking the dataset are collective over the communicator given to dataset_open.
 */
#ifndef I2P_DATASET_H
#define I2P_DATASET_H

#include <mpi.h>
#include <stdint.h>

#include "h5io.h"
#include "part_table.h"

#define DATASET_MAX_CLASSES 1024

typedef struct {
    h5file f;
    long n;                 /* samples */
    long points;            /* points per sample */
    int n_classes;          /* from the "n_classes" attribute, else max label + 1 */
    char points_name[256];  /* "/points" or "/data" ("/train/points" in a group) */
    char label_name[256];   /* "/label" ("/train/label") */
    char source[64];        /* "canonical:<source>", "modelnet40-h5", "scanobjectnn-h5" ... */
    char class_names[8192]; /* '\n'-separated, may be empty */
} dataset;

/* path is a file, or "FILE:/GROUP" for a canonical dataset in a group of FILE (e.g. a few-shot
 * split's "SPLIT.h5:/train"; fewshot_split.h): points, label and the attributes are then read from
 * the group. A name that exists as a file is always the file. */
int dataset_open(dataset *d, const char *path, MPI_Comm comm, char *err);
/* Reads samples [start, start+count): points (count,P,3), labels (count) (labels may be NULL).
 * Collective (a rank with nothing to read passes count 0). */
int dataset_read(dataset *d, long start, long count, float *points, int32_t *labels, char *err);
void dataset_close(dataset *d);

/* Writing the canonical file: create (collective; fails if path exists and !force), write row
 * blocks (collective), commit (rename from .partial). On any failure call dataset_writer_abort. */
typedef struct {
    h5file f;
    long n, points;
} dataset_writer;

int dataset_writer_create(dataset_writer *w, const char *path, MPI_Comm comm, long n, long points,
                          int n_classes, const char *class_names, const char *source, int force,
                          char *err);
int dataset_writer_write(dataset_writer *w, long start, long count, const float *points,
                         const int32_t *labels, char *err);
int dataset_writer_commit(dataset_writer *w, char *err);
void dataset_writer_abort(dataset_writer *w);

/* Produces samples [start, start+count) of the file: points (count,P,3) and labels (count).
 * Returns 0, or -1 with err set. Called with count 0 by a rank that has run out of samples. */
typedef int (*dataset_fill_fn)(void *user, long start, long count, float *points, int32_t *labels,
                               char *err);

/* Writes all w->n samples: ranks take contiguous blocks (dist_block_range) and, in rounds of up to
 * `batch` samples, fill them and write them collectively; progress lines are labelled `what`.
 * Collective over the writer's communicator; a failure of any rank is agreed on every rank (err
 * holds the lowest failing rank's message). Neither commits nor aborts: the caller does. */
int dataset_write_blocks(dataset_writer *w, long batch, const char *what, dataset_fill_fn fill,
                         void *user, char *err);

/* ---- part segmentation (docs/datasets.md "Part labels") ----
 * /seg (N,P) int32: the global part label of every point, inside the range of the sample's
 * category (/label); root attributes "n_parts", "parts_per_class" (part_table.h) and "part_names"
 * ('\n'-separated). Code: src/dataset_parts.c. */

/* Adds /seg and the part attributes to a file being written (collective). */
int dataset_writer_add_parts(dataset_writer *w, const part_table *t, const char *part_names, char *err);
/* As dataset_fill_fn, with seg (count,P) to fill too. */
typedef int (*dataset_fill_parts_fn)(void *user, long start, long count, float *points, int32_t *labels,
                                     int32_t *seg, char *err);
/* dataset_write_blocks for a file with parts (dataset_writer_add_parts done). */
int dataset_write_blocks_parts(dataset_writer *w, long batch, const char *what, dataset_fill_parts_fn fill,
                               void *user, char *err);

/* Checks that an open dataset has /seg of shape (N,P), integer, and reads its part table; the
 * categories must match n_classes. Errors name the file. */
int dataset_open_parts(dataset *d, part_table *t, char *err);
/* Reads seg (count,P) of samples [start, start+count) (collective) and checks every label lies in
 * the range of its sample's category labels[i] (naming sample and point). */
int dataset_read_seg(dataset *d, const part_table *t, long start, long count, const int32_t *labels,
                     int32_t *seg, char *err);

#endif
