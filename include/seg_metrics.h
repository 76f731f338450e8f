/* seg_metrics.h -- part-segmentation metrics as Point-M2AE's runner computes them (docs/partseg.md).
 *
 * Per shape of category c: IoU of every part of c (parts of other categories are not looked at),
 * where a part absent from both prediction and truth counts as IoU 1; the shape's IoU is their
 * mean. Instance mIoU = mean over shapes; class mIoU = mean over the categories that have shapes of
 * the mean over their shapes. Sums run in shape order, so the figures do not depend on how the
 * shapes were spread over ranks.
 */
#ifndef I2P_SEG_METRICS_H
#define I2P_SEG_METRICS_H

#include <stdint.h>

#include "part_table.h"

/* pred (N) = for each point the part of category c with the largest logit (logits (N, n_parts);
 * the first on ties): predictions are restricted to the parts of the known category. */
void seg_predict(const part_table *t, int c, const float *logits, long N, int32_t *pred);

/* The IoU of one shape of category c (pred, truth (N) global part labels). */
double seg_shape_iou(const part_table *t, int c, const int32_t *pred, const int32_t *truth, long N);

/* From the per-shape IoUs iou (n) and categories (n): instance and class mIoU; per_class (t's
 * n_categories entries, may be NULL) receives each category's mean, -1 for a category without shapes. */
void seg_miou(const part_table *t, const int32_t *category, const double *iou, long n, double *instance,
              double *class_miou, double *per_class);

#endif
