/* metrics.h -- classification metrics: the confusion matrix, overall accuracy, per-class and mean
 * class accuracy, and their CSV files / table (fine-tuning, docs/finetune.md).
 *
 * counts[t * C + p] = samples of true class t predicted as p (int64, so matrices of several ranks
 * add exactly). Mean class accuracy averages the per-class accuracies of the classes that have at
 * least one sample (classes absent from the test split are left out, as scikit-learn's
 * balanced_accuracy_score does). Not collective.
 */
#ifndef I2P_METRICS_H
#define I2P_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n_classes;
    int64_t *counts;  /* (C, C): row = true class, column = prediction */
} confusion;

int confusion_init(confusion *c, int n_classes, char *err);
void confusion_free(confusion *c);
void confusion_reset(confusion *c);
/* Adds n (label, prediction) pairs; labels and predictions must lie in [0, C). */
void confusion_add(confusion *c, const int32_t *labels, const int32_t *pred, long n);
long confusion_total(const confusion *c);
long confusion_correct(const confusion *c);
double confusion_accuracy(const confusion *c);               /* 0 when empty */
double confusion_mean_class_accuracy(const confusion *c);    /* 0 when empty */
/* Samples and correct predictions of class k. */
void confusion_class(const confusion *c, int k, long *total, long *correct);

/* pred (n) <- the index of the largest of each row of logits (n, C); the first one on ties. */
void logits_argmax(const float *logits, long n, int C, int32_t *pred);

/* The i-th '\n'-separated name of names, or the number i when names has none. */
void class_name_at(const char *names, int i, char *out, size_t n);

/* path (via path.partial + rename, atomic_file.h): a header "true\pred,<name 0>,...", then one row per true class
 * "<name>,<count>,...". */
int confusion_write_csv(const confusion *c, const char *path, const char *names, char *err);
/* path (via .partial + rename): "id,class,samples,correct,accuracy" per class with samples. */
int per_class_write_csv(const confusion *c, const char *path, const char *names, char *err);
/* The per-class table on stdout. */
void per_class_print(const confusion *c, const char *names);

#endif
