/* seg_metrics.c -- per-shape part IoU, instance and class mIoU (seg_metrics.h). */
#include "seg_metrics.h"

void seg_predict(const part_table *t, int c, const float *logits, long N, int32_t *pred)
{
    int lo = t->first[c], hi = lo + t->count[c];
    for (long i = 0; i < N; i++) {
        const float *z = logits + i * t->n_parts;
        int best = lo;
        for (int p = lo + 1; p < hi; p++)
            if (z[p] > z[best]) best = p;
        pred[i] = best;
    }
}

double seg_shape_iou(const part_table *t, int c, const int32_t *pred, const int32_t *truth, long N)
{
    double sum = 0;
    for (int p = t->first[c]; p < t->first[c] + t->count[c]; p++) {
        long inter = 0, uni = 0;
        for (long i = 0; i < N; i++) {
            int a = pred[i] == p, b = truth[i] == p;
            inter += a && b;
            uni += a || b;
        }
        sum += uni ? (double)inter / (double)uni : 1.0;
    }
    return sum / t->count[c];
}

void seg_miou(const part_table *t, const int32_t *category, const double *iou, long n, double *instance,
              double *class_miou, double *per_class)
{
    double all = 0, csum[PART_MAX_CATEGORIES] = {0};
    long ccount[PART_MAX_CATEGORIES] = {0};
    for (long i = 0; i < n; i++) {
        all += iou[i];
        csum[category[i]] += iou[i];
        ccount[category[i]]++;
    }
    double cls = 0;
    int present = 0;
    for (int c = 0; c < t->n_categories; c++) {
        double mean = ccount[c] ? csum[c] / (double)ccount[c] : -1.0;
        if (per_class) per_class[c] = mean;
        if (ccount[c]) {
            cls += mean;
            present++;
        }
    }
    *instance = n ? all / (double)n : 0.0;
    *class_miou = present ? cls / present : 0.0;
}
