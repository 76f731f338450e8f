/* metrics.c -- confusion matrix, accuracies and their files (see metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "errors.h"

int confusion_init(confusion *c, int n_classes, char *err)
{
    c->n_classes = n_classes;
    c->counts = n_classes > 0 ? calloc((size_t)n_classes * (size_t)n_classes, sizeof(int64_t)) : NULL;
    if (!c->counts) return errf(err, "out of memory for a %d-class confusion matrix", n_classes);
    return 0;
}

void confusion_free(confusion *c)
{
    free(c->counts);
    c->counts = NULL;
    c->n_classes = 0;
}

void confusion_reset(confusion *c)
{
    memset(c->counts, 0, sizeof(int64_t) * (size_t)c->n_classes * (size_t)c->n_classes);
}

void confusion_add(confusion *c, const int32_t *labels, const int32_t *pred, long n)
{
    for (long i = 0; i < n; i++) c->counts[(long)labels[i] * c->n_classes + pred[i]]++;
}

long confusion_total(const confusion *c)
{
    long s = 0;
    for (long i = 0; i < (long)c->n_classes * c->n_classes; i++) s += (long)c->counts[i];
    return s;
}

long confusion_correct(const confusion *c)
{
    long s = 0;
    for (int k = 0; k < c->n_classes; k++) s += (long)c->counts[(long)k * c->n_classes + k];
    return s;
}

double confusion_accuracy(const confusion *c)
{
    long t = confusion_total(c);
    return t ? (double)confusion_correct(c) / (double)t : 0;
}

void confusion_class(const confusion *c, int k, long *total, long *correct)
{
    long t = 0;
    for (int p = 0; p < c->n_classes; p++) t += (long)c->counts[(long)k * c->n_classes + p];
    *total = t;
    *correct = (long)c->counts[(long)k * c->n_classes + k];
}

double confusion_mean_class_accuracy(const confusion *c)
{
    double sum = 0;
    int present = 0;
    for (int k = 0; k < c->n_classes; k++) {
        long t, r;
        confusion_class(c, k, &t, &r);
        if (!t) continue;
        sum += (double)r / (double)t;
        present++;
    }
    return present ? sum / present : 0;
}

void logits_argmax(const float *logits, long n, int C, int32_t *pred)
{
    for (long i = 0; i < n; i++) {
        const float *l = logits + i * C;
        int best = 0;
        for (int k = 1; k < C; k++)
            if (l[k] > l[best]) best = k;
        pred[i] = best;
    }
}

void class_name_at(const char *names, int i, char *out, size_t n)
{
    const char *p = names;
    for (int k = 0; k < i && p && *p; k++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) {
        snprintf(out, n, "%d", i);
        return;
    }
    size_t len = strcspn(p, "\n");
    snprintf(out, n, "%.*s", (int)(len < n - 1 ? len : n - 1), p);
}

int confusion_write_csv(const confusion *c, const char *path, const char *names, char *err)
{
    char nm[64];
    atomic_file out;
    if (atomic_file_open(&out, path, err)) return -1;
    FILE *f = out.f;
    fputs("true\\pred", f);
    for (int p = 0; p < c->n_classes; p++) {
        class_name_at(names, p, nm, sizeof nm);
        fprintf(f, ",%s", nm);
    }
    fputc('\n', f);
    for (int t = 0; t < c->n_classes; t++) {
        class_name_at(names, t, nm, sizeof nm);
        fputs(nm, f);
        for (int p = 0; p < c->n_classes; p++)
            fprintf(f, ",%lld", (long long)c->counts[(long)t * c->n_classes + p]);
        fputc('\n', f);
    }
    return atomic_file_commit(&out, err);
}

int per_class_write_csv(const confusion *c, const char *path, const char *names, char *err)
{
    char nm[64];
    atomic_file out;
    if (atomic_file_open(&out, path, err)) return -1;
    FILE *f = out.f;
    fputs("id,class,samples,correct,accuracy\n", f);
    for (int k = 0; k < c->n_classes; k++) {
        long t, r;
        confusion_class(c, k, &t, &r);
        if (!t) continue;
        class_name_at(names, k, nm, sizeof nm);
        fprintf(f, "%d,%s,%ld,%ld,%.6f\n", k, nm, t, r, (double)r / (double)t);
    }
    return atomic_file_commit(&out, err);
}

void per_class_print(const confusion *c, const char *names)
{
    printf("%-4s %-20s %8s %8s %9s\n", "id", "class", "test", "correct", "accuracy");
    for (int k = 0; k < c->n_classes; k++) {
        long t, r;
        confusion_class(c, k, &t, &r);
        if (!t) continue;
        char nm[64];
        class_name_at(names, k, nm, sizeof nm);
        printf("%-4d %-20s %8ld %8ld %8.2f%%\n", k, nm, t, r, 100.0 * (double)r / (double)t);
    }
    fflush(stdout);
}
