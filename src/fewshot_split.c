/* fewshot_split.c -- drawing one few-shot fold and writing it as /train and /test groups
 * (see fewshot_split.h). */
#include "fewshot_split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "errors.h"
#include "log.h"
#include "rng.h"

static int cmp_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* The name of class c: line c of names, else the number itself. */
static void class_name(const char *names, int c, char *out, size_t len)
{
    const char *p = names ? names : "";
    for (int i = 0; i < c && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    size_t n = p ? strcspn(p, "\n") : 0;
    if (!n) { snprintf(out, len, "%d", c); return; }
    snprintf(out, len, "%.*s", (int)(n < len - 1 ? n : len - 1), p);
}

/* The first k entries of a[0..n) become a uniform random k-subset in random order (partial
 * Fisher-Yates on r). */
static void partial_shuffle_long(long *a, long n, long k, rng_t *r)
{
    for (long i = 0; i < k; i++) {
        long j = i + (long)rng_below(r, (uint64_t)(n - i));
        long t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

uint64_t fewshot_stream(long way, long shot, long fold, long part)
{
    return rng_mix(rng_mix(rng_mix((uint64_t)way, (uint64_t)shot), (uint64_t)fold), (uint64_t)part);
}

void fewshot_plan_free(fewshot_plan *plan)
{
    free(plan->classes);
    free(plan->train);
    free(plan->test);
    memset(plan, 0, sizeof *plan);
}

int fewshot_plan_make(const int32_t *labels, long n, int n_classes, const char *class_names,
                      long way, long shot, long query, long fold, uint64_t seed, fewshot_plan *plan,
                      char *err)
{
    memset(plan, 0, sizeof *plan);
    if (way < 1 || way > n_classes)
        return errf(err, "--way %ld: must be between 1 and the %d classes of the input", way, n_classes);
    if (shot < 1) return errf(err, "--shot %ld: must be at least 1", shot);
    if (query < 1) return errf(err, "--query %ld: must be at least 1", query);
    long *count = calloc((size_t)n_classes, sizeof *count);
    if (!count) return errf(err, "out of memory for %d class counts", n_classes);
    for (long i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= n_classes) {
            free(count);
            return errf(err, "sample %ld has label %d, outside [0, %d)", i, labels[i], n_classes);
        }
        count[labels[i]]++;
    }
    for (int c = 0; c < n_classes; c++) {
        if (count[c] >= shot + query) continue;
        char name[256];
        class_name(class_names, c, name, sizeof name);
        long have = count[c];
        free(count);
        return errf(err, "class %d '%s' has %ld clouds, fewer than --shot %ld + --query %ld = %ld "
                    "(every class may be drawn, so every class needs that many)",
                    c, name, have, shot, query, shot + query);
    }
    plan->way = way;
    plan->shot = shot;
    plan->query = query;
    plan->classes = malloc(sizeof *plan->classes * (size_t)way);
    plan->train = malloc(sizeof *plan->train * (size_t)(way * shot));
    plan->test = malloc(sizeof *plan->test * (size_t)(way * query));
    long *perm = malloc(sizeof *perm * (size_t)(n > n_classes ? n : n_classes));
    if (!plan->classes || !plan->train || !plan->test || !perm) {
        free(count);
        free(perm);
        fewshot_plan_free(plan);
        return errf(err, "out of memory for a split of %ld samples", n);
    }
    rng_t r;
    rng_seed(&r, seed, fewshot_stream(way, shot, fold, 0));
    for (int c = 0; c < n_classes; c++) perm[c] = c;
    partial_shuffle_long(perm, n_classes, way, &r);
    for (long i = 0; i < way; i++) plan->classes[i] = (int32_t)perm[i];
    qsort(plan->classes, (size_t)way, sizeof *plan->classes, cmp_int32);

    for (long i = 0; i < way; i++) {
        int32_t c = plan->classes[i];
        long m = 0;
        for (long s = 0; s < n; s++)
            if (labels[s] == c) perm[m++] = s;
        rng_seed(&r, seed, fewshot_stream(way, shot, fold, 1 + (long)c));
        partial_shuffle_long(perm, m, shot + query, &r);
        long *tr = plan->train + i * shot, *te = plan->test + i * query;
        memcpy(tr, perm, sizeof *tr * (size_t)shot);
        memcpy(te, perm + shot, sizeof *te * (size_t)query);
        qsort(tr, (size_t)shot, sizeof *tr, cmp_long);
        qsort(te, (size_t)query, sizeof *te, cmp_long);
    }
    free(perm);
    free(count);
    return 0;
}

/* Creates one group's datasets and attributes (collective). */
static int create_group(h5file *f, const char *g, long rows, long points, long way,
                        const char *names, char *err)
{
    char p[64], l[64], x[64];
    snprintf(p, sizeof p, "/%s/points", g);
    snprintf(l, sizeof l, "/%s/label", g);
    snprintf(x, sizeof x, "/%s/index", g);
    hsize_t pd[3] = {(hsize_t)rows, (hsize_t)points, 3}, pc[3] = {1, (hsize_t)points, 3};
    hsize_t ld[1] = {(hsize_t)rows};
    char obj[64];
    snprintf(obj, sizeof obj, "/%s", g);
    return h5_create_dataset(f, p, H5T_IEEE_F32LE, 3, pd, pc, 0, err) ||
                   h5_create_dataset(f, l, H5T_STD_I32LE, 1, ld, NULL, 0, err) ||
                   h5_create_dataset(f, x, H5T_STD_I64LE, 1, ld, NULL, 0, err) ||
                   h5_attr_write_str(f, obj, "format", "i2pmae-points", err) ||
                   h5_attr_write_str(f, obj, "source", "fewshot-split", err) ||
                   h5_attr_write_str(f, obj, "class_names", names, err) ||
                   h5_attr_write_long(f, obj, "n_classes", way, err)
               ? -1
               : 0;
}

/* Copies the rows `rows` (n of them, `per_class` per new label) of the input into group g: each rank
 * reads a contiguous block of them from its own handle of the input and all write collectively. */
static int copy_rows(dataset *in, h5file *out, MPI_Comm comm, const char *g, const long *rows, long n,
                     long per_class, char *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    long start, count;
    dist_block_range(n, size, rank, &start, &count);
    long P = in->points;
    float *pts = malloc(sizeof(float) * 3 * (size_t)(P * (count ? count : 1)));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(count ? count : 1));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
    int rc = pts && lab && idx ? 0 : errf(err, "%s: out of memory for %ld clouds", out->final_path, count);
    for (long i = 0; i < count && !rc; i++) {
        int32_t orig;
        rc = dataset_read(in, rows[start + i], 1, pts + i * P * 3, &orig, err);
        lab[i] = (int32_t)((start + i) / per_class);
        idx[i] = rows[start + i];
    }
    rc = dist_any_error(comm, rc, err);
    char p[64], l[64], x[64];
    snprintf(p, sizeof p, "/%s/points", g);
    snprintf(l, sizeof l, "/%s/label", g);
    snprintf(x, sizeof x, "/%s/index", g);
    if (!rc) rc = dist_any_error(comm, h5_write_rows(out, p, H5T_NATIVE_FLOAT, start, count, pts, err), err);
    if (!rc) rc = dist_any_error(comm, h5_write_rows(out, l, H5T_NATIVE_INT32, start, count, lab, err), err);
    if (!rc) rc = dist_any_error(comm, h5_write_rows(out, x, H5T_NATIVE_INT64, start, count, idx, err), err);
    free(pts);
    free(lab);
    free(idx);
    return rc ? -1 : 0;
}

/* Opens the input on this rank alone, reads its labels and draws the plan (the same on every rank). */
static int plan_from_input(const fewshot_split_args *a, dataset *d, fewshot_plan *plan,
                           fewshot_split_result *r, char *err)
{
    if (dataset_open(d, a->data, MPI_COMM_SELF, err)) return -1;
    int32_t *lab = malloc(sizeof *lab * (size_t)d->n);
    if (!lab) return errf(err, "%s: out of memory for %ld labels", a->data, d->n);
    int rc = h5_read_all(&d->f, d->label_name, H5T_NATIVE_INT32, lab, err);
    if (!rc) {
        rc = fewshot_plan_make(lab, d->n, d->n_classes, d->class_names, a->way, a->shot, a->query,
                               a->fold, (uint64_t)a->seed, plan, err);
        if (rc) err_prefix(err, a->data);
    }
    free(lab);
    r->input_classes = d->n_classes;
    r->input_samples = d->n;
    r->points = d->points;
    return rc;
}

int fewshot_split_run(const fewshot_split_args *a, MPI_Comm comm, fewshot_split_result *r, char *err)
{
    memset(r, 0, sizeof *r);
    double t0 = now_s();
    dataset d;
    fewshot_plan plan;
    memset(&plan, 0, sizeof plan);
    int opened = 0;
    int rc = plan_from_input(a, &d, &plan, r, err);
    opened = d.f.file >= 0;
    rc = dist_any_error(comm, rc, err);

    char names[8192] = "", ids[sizeof r->class_ids] = "";
    size_t nlen = 0, ilen = 0;
    for (long i = 0; !rc && i < plan.way; i++) {
        char name[256];
        class_name(d.class_names, plan.classes[i], name, sizeof name);
        int k = snprintf(names + nlen, sizeof names - nlen, "%s%s", i ? "\n" : "", name);
        int m = snprintf(ids + ilen, sizeof ids - ilen, "%s%d", i ? "," : "", plan.classes[i]);
        if (k < 0 || (size_t)k >= sizeof names - nlen || m < 0 || (size_t)m >= sizeof ids - ilen)
            rc = errf(err, "%s: the class names of %ld classes do not fit in %zu bytes", a->data,
                      plan.way, sizeof names);
        else { nlen += (size_t)k; ilen += (size_t)m; }
    }
    rc = dist_any_error(comm, rc, err);

    h5file out = {.file = -1};
    if (!rc) rc = dist_any_error(comm, h5_create(&out, a->output, comm, a->force, err), err);
    int created = !rc;
    if (!rc) {
        long n_tr = plan.way * plan.shot, n_te = plan.way * plan.query;
        rc = create_group(&out, "train", n_tr, d.points, plan.way, names, err) ||
                     create_group(&out, "test", n_te, d.points, plan.way, names, err) ||
                     h5_attr_write_str(&out, "/", "format", "i2pmae-fewshot-split", err) ||
                     h5_attr_write_long(&out, "/", "way", a->way, err) ||
                     h5_attr_write_long(&out, "/", "shot", a->shot, err) ||
                     h5_attr_write_long(&out, "/", "query", a->query, err) ||
                     h5_attr_write_long(&out, "/", "fold", a->fold, err) ||
                     h5_attr_write_long(&out, "/", "seed", a->seed, err) ||
                     h5_attr_write_long(&out, "/", "input_classes", d.n_classes, err) ||
                     h5_attr_write_str(&out, "/", "input_source", d.source, err) ||
                     h5_attr_write_str(&out, "/", "class_ids", ids, err)
                 ? -1
                 : 0;
        rc = dist_any_error(comm, rc, err);
        if (!rc) rc = copy_rows(&d, &out, comm, "train", plan.train, n_tr, plan.shot, err);
        if (!rc) rc = copy_rows(&d, &out, comm, "test", plan.test, n_te, plan.query, err);
        if (!rc) rc = dist_any_error(comm, h5_commit(&out, err), err);
        r->n_train = n_tr;
        r->n_test = n_te;
    }
    if (rc && created) h5_abort(&out);
    if (opened) dataset_close(&d);
    snprintf(r->class_ids, sizeof r->class_ids, "%s", ids);
    fewshot_plan_free(&plan);
    r->seconds = now_s() - t0;
    return rc ? -1 : 0;
}
