/* partseg_eval.h -- the splits of part segmentation (internal to the runner, partseg_train.h): a
 * part-labelled file read per sample with its training or test view, and the test split held in
 * memory and evaluated (per-shape IoU, instance / class mIoU; seg_metrics.h).
 */
#ifndef I2P_PARTSEG_EVAL_H
#define I2P_PARTSEG_EVAL_H

#include <mpi.h>
#include <stdint.h>

#include "dataset.h"
#include "part_table.h"
#include "partseg.h"
#include "partseg_train.h"

typedef struct {
    dataset d;
    int open;
    part_table parts;
    float *raw;           /* (P,3) */
    int32_t *raw_seg;     /* (P) */
} segset;

/* This rank's share of the test split, read once: chunks of `chunk` consecutive samples. */
typedef struct {
    segset s;
    long n, chunk, first, count, Pm;
    float *points;        /* (count, Pm, 3) */
    int32_t *category, *seg, *pred; /* (count), (count, Pm), (count, Pm): pred filled by segtest_eval */
    float *logits;        /* (chunk, Pm, n_parts) */
    double *iou;          /* (n): this rank's shapes, zero elsewhere */
    int32_t *all_category; /* (n) */
} segtest;
/* Opens path on comm (MPI_COMM_SELF: independent reads) with its part table. */
int segset_open(segset *s, const char *path, MPI_Comm comm, char *err);
void segset_close(segset *s);
/* The network's categories and parts must be the file's (0 in cfg: take the file's), and the file
 * must hold at least the network's points. what: the file, for the message. */
int segset_match(const segset *s, partseg_config *cfg, const char *what, char *err);
/* Sample id into pts (Pm,3), seg (Pm), *category: the training view (augment 1: a random Pm-subset
 * when P > Pm, one scale U(0.8,1.25), a shift U(-0.1,0.1) per axis, stream (seed, epoch, id)) or
 * the test view (augment 0: the first Pm points). */
int segset_view(segset *s, long id, long Pm, int augment, uint64_t seed, long epoch, float *pts, int32_t *seg,
              int32_t *category, char *err);

/* Opens the test split on every rank and reads this rank's chunks of `chunk` samples
 * (dist_block_range over the chunks). Collective. */
int segtest_open(segtest *t, const char *path, partseg_config *cfg, long chunk, MPI_Comm comm, char *err);
void segtest_close(segtest *t);
/* Eval-mode forward of this rank's chunks; rec and per_class (n_categories, may be NULL) of the
 * whole split on every rank. Collective. */
int segtest_eval(segtest *t, partseg *m, seg_record *rec, double *per_class, MPI_Comm comm, char *err);
/* The split's points, true and predicted parts and categories (after segtest_eval) into the HDF5
 * file path (format: partseg_eval_only in partseg_train.h), replaced if it exists. Collective. */
int segtest_write_predictions(const segtest *t, const char *path, MPI_Comm comm, char *err);

#endif
