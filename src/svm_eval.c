/* svm_eval.c -- linear-SVM evaluation of a frozen encoder: encode both splits over the ranks,
 * liblinear on rank 0 (see svm_eval.h). */
#include "svm_eval.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckpt_kind.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "log.h"
#include "metrics.h"
#include "svm.h"

/* Features of one split: rank 0 holds all (n, dim) and the labels after encode_split. */
typedef struct {
    dataset d;
    int open;
    float *x;
    int32_t *y;
    long n;
} split;

static const double c_grid[] = {1e-4, 3e-4, 1e-3, 3e-3, 0.0093, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100};
enum { C_GRID_N = (int)(sizeof c_grid / sizeof c_grid[0]) };

/* Builds the model configuration: from the checkpoint (options given must agree, except points,
 * fps-skip-origin, mask-ratio and drop-path, which do not change the parameters) or the spec's
 * defaults. */
static int svm_config(const svm_eval_options *o, model3d_config *cfg, char *err)
{
    if (o->random_init) {
        model3d_config_default(cfg);
        if (model_opts_apply(o->model, cfg, err)) return -1;
        return model3d_config_check(cfg, err);
    }
    if (ckpt_pretrain_config(o->checkpoint, "--checkpoint", MPI_COMM_WORLD, cfg, NULL, NULL, err)) return -1;
    model_opts arch = *o->model, points = {0};
    model_opts_clear(&arch, "points");
    model_opts_clear(&arch, "mask-ratio");
    model_opts_clear(&arch, "drop-path");
    model_opts_clear(&arch, "fps-skip-origin");
    if (model_opts_check_against(&arch, cfg, o->checkpoint, err)) return -1;
    model_opts_set(&points, "points", model_opts_get(o->model, "points"));
    model_opts_set(&points, "fps-skip-origin", model_opts_get(o->model, "fps-skip-origin"));
    if (model_opts_apply(&points, cfg, err)) return -1;
    return model3d_config_check(cfg, err);
}

/* Loads parameters and BatchNorm buffers of the checkpoint into the model. */
static int svm_load(const char *checkpoint, model3d *m, char *err)
{
    return ckpt_read_network(checkpoint, MPI_COMM_WORLD, model3d_params(m), model3d_n_params(m), model3d_buffers(m),
                             model3d_n_buffers(m), NULL, err);
}

/* Rank 0 receives every rank's block of rows (row_len values each) of a split of n rows. */
static int gather_rows(const void *mine, void *all, long n, int row_len, MPI_Datatype type,
                       char *err)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
    int rc = counts && displs ? 0 : errf(err, "out of memory for %d ranks' counts", size);
    if (!dist_any_error(MPI_COMM_WORLD, rc, err)) {
        for (int r = 0; r < size; r++) {
            long st, ct;
            dist_block_range(n, size, r, &st, &ct);
            counts[r] = (int)(ct * row_len);
            displs[r] = (int)(st * row_len);
        }
        MPI_Gatherv(mine, counts[rank], type, all, counts, displs, type, 0, MPI_COMM_WORLD);
    } else {
        rc = -1;
    }
    free(counts);
    free(displs);
    return rc;
}

/* Samples [start, start + nb) of s (dataset_read: collective, nb 0 on a rank with nothing to read):
 * points into raw (nb, P, 3), labels into lab, and the first Pm points of each, as the encoder takes
 * them, into pts (nb, Pm, 3). */
static int read_clouds(split *s, long start, long nb, long Pm, float *raw, float *pts, int32_t *lab, char *err)
{
    long P = s->d.points;
    if (dataset_read(&s->d, start, nb, raw, lab, err)) return -1;
    for (long b = 0; b < nb; b++) memcpy(pts + b * Pm * 3, raw + b * P * 3, sizeof(float) * (size_t)(Pm * 3));
    return 0;
}

/* Encodes this rank's block of s in batches; gathers (n, dim) features and labels on rank 0. */
static int encode_split(split *s, model3d *m, const model3d_config *cfg, long batch,
                        progress *pr, long *done_total, char *err)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long start, count, dummy, largest;
    dist_block_range(s->n, size, rank, &start, &count);
    dist_block_range(s->n, size, 0, &dummy, &largest);
    int dim = cfg->dims[2];
    long P = s->d.points, Pm = cfg->points;
    float *raw = malloc(sizeof(float) * (size_t)(batch * P * 3));
    float *pts = malloc(sizeof(float) * (size_t)(batch * Pm * 3));
    float *feat = malloc(sizeof(float) * (size_t)(count ? count : 1) * (size_t)dim);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(count ? count : 1));
    int rc = raw && pts && feat && lab ? 0 : errf(err, "%s: out of memory", s->d.f.path);
    for (long off = 0; off < largest && !dist_any_error(MPI_COMM_WORLD, rc, err); off += batch) {
        long nb = off >= count ? 0 : (count - off < batch ? count - off : batch);
        rc = read_clouds(s, start + off, nb, Pm, raw, pts, lab + off, err);
        if (!rc && nb) rc = model3d_encode_global(m, (int)nb, pts, feat + off * dim, err);
        for (long i = 0; !rc && i < nb * dim; i++)
            if (!isfinite(feat[off * dim + i]))
                rc = errf(err, "%s: sample %ld: the encoder gave a non-finite feature", s->d.f.path,
                          start + off + i / dim);
        long local = off + nb, all = 0;
        MPI_Allreduce(&local, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
        progress_update(pr, *done_total + all);
    }
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto out;
    *done_total += s->n;
    if (rank == 0) {
        s->x = malloc(sizeof(float) * (size_t)(s->n * dim));
        s->y = malloc(sizeof(int32_t) * (size_t)s->n);
        if (!s->x || !s->y)
            rc = errf(err, "%s: out of memory for %ld x %d features", s->d.f.path, s->n, dim);
    }
    if (dist_any_error(MPI_COMM_WORLD, rc, err) ||
        gather_rows(feat, s->x, s->n, dim, MPI_FLOAT, err) ||
        gather_rows(lab, s->y, s->n, 1, MPI_INT32_T, err))
        rc = -1;
out:
    free(raw);
    free(pts);
    free(feat);
    free(lab);
    return rc ? -1 : 0;
}

/* The size of batch j of the nbat batches of bs over n samples: the last takes a remainder of 2 or more. */
static long bn_batch_size(long j, long nbat, long n, long bs)
{
    return j == nbat - 1 && n % bs >= 2 ? n % bs : bs;
}

/* --bn-stats data: the encoder's BatchNorm statistics re-estimated on the training split tr (docs/svm.md):
 * fixed global batches of bs consecutive samples (the last one takes a remainder of 2 or more; a
 * remainder of 1 sample is left out), in rounds of one batch per rank (batch j on rank j mod size).
 * Each round's statistics (model3d_encoder_bn_batch_stats) go to every rank, each batch in its own
 * row of a table summed over the ranks (one rank writes each row: exact), and are added in batch
 * order, weighted by the batch sizes; their average becomes the running statistics. The same
 * values on any number of ranks; memory: one row per rank. */
static int reestimate_bn(split *tr, model3d *m, const model3d_config *cfg, long bs, char *err)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long n = tr->n, V = model3d_encoder_bn_values(m);
    if (n < 2 || bs < 2)
        return errf(err, "%s: --bn-stats data needs batches of at least 2 training samples (%ld samples, --batch %ld)",
                    tr->d.f.path, n, bs);
    if (bs > n) bs = n;
    long nbat = n / bs + (n % bs >= 2);
    long P = tr->d.points, Pm = cfg->points, used = 0;
    float *raw = malloc(sizeof(float) * (size_t)(bs * P * 3)), *pts = malloc(sizeof(float) * (size_t)(bs * Pm * 3));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)bs);
    double *rows = malloc(sizeof(double) * (size_t)(size * V)), *est = calloc((size_t)V, sizeof(double));
    int rc = raw && pts && lab && rows && est ? 0 : errf(err, "out of memory for the BatchNorm statistics");
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    for (long j0 = 0; !rc && j0 < nbat; j0 += size) { /* the same rounds on every rank */
        long j = j0 + rank, nb = j < nbat ? bn_batch_size(j, nbat, n, bs) : 0;
        memset(rows, 0, sizeof(double) * (size_t)(size * V));
        rc = read_clouds(tr, nb ? j * bs : 0, nb, Pm, raw, pts, lab, err);
        if (!rc && nb) rc = model3d_encoder_bn_batch_stats(m, (int)nb, pts, rows + rank * V, err);
        if ((rc = dist_any_error(MPI_COMM_WORLD, rc, err))) break;
        MPI_Allreduce(MPI_IN_PLACE, rows, (int)(size * V), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        for (long i = 0; i < size && j0 + i < nbat; i++) {
            long w = bn_batch_size(j0 + i, nbat, n, bs);
            for (long v = 0; v < V; v++) est[v] += (double)w * rows[i * V + v];
            used += w;
        }
    }
    if (!rc) {
        for (long v = 0; v < V; v++) est[v] /= (double)used;
        model3d_set_encoder_bn_stats(m, est);
        log_info("svm: the encoder's BatchNorm statistics re-estimated on %ld of the %ld training samples, %ld "
                 "batches of %ld (--bn-stats data)", used, n, nbat, bs);
    }
    free(raw);
    free(pts);
    free(lab);
    free(rows);
    free(est);
    return rc ? -1 : 0;
}

/* Rank 0: chooses C (o->c == 0), trains, predicts the test split into pred (n_test). */
static int svm_fit(const svm_eval_options *o, const split *tr, const split *te, int dim,
                   svm_eval_result *r, int32_t *pred, char *err)
{
    r->c = o->c;
    r->cv_accuracy = -1;
    if (o->c == 0) {
        double acc[C_GRID_N];
        if (svm_select_c(tr->x, tr->y, tr->n, dim, c_grid, C_GRID_N, o->folds, (unsigned)o->seed,
                         &r->c, acc, err))
            return -1;
        for (int i = 0; i < C_GRID_N; i++) {
            log_info("svm: C = %-8g %d-fold cross-validation accuracy %.2f%%", c_grid[i], o->folds,
                     100 * acc[i]);
            if (c_grid[i] == r->c) r->cv_accuracy = acc[i];
        }
    }
    svm_classifier *clf;
    if (svm_train(tr->x, tr->y, tr->n, dim, r->c, (unsigned)o->seed, &clf, err)) return -1;
    svm_predict(clf, te->x, te->n, dim, pred);
    svm_free(clf);
    return 0;
}

/* Prints the per-class table (unless quiet); *mean receives the mean class accuracy. */
static int per_class_table(const split *te, const int32_t *pred, int n_classes, const char *names,
                           int quiet, double *mean, char *err)
{
    long *total = calloc((size_t)n_classes, sizeof(long)), *right = calloc((size_t)n_classes, sizeof(long));
    if (!total || !right) {
        free(total);
        free(right);
        return errf(err, "out of memory for a table of %d classes", n_classes);
    }
    for (long i = 0; i < te->n; i++) {
        total[te->y[i]]++;
        right[te->y[i]] += pred[i] == te->y[i];
    }
    if (!quiet) printf("%-4s %-20s %8s %8s %9s\n", "id", "class", "test", "correct", "accuracy");
    double sum = 0;
    int present = 0;
    for (int c = 0; c < n_classes; c++) {
        if (!total[c]) continue;
        char nm[64];
        class_name_at(names, c, nm, sizeof nm);
        double acc = (double)right[c] / (double)total[c];
        if (!quiet) printf("%-4d %-20s %8ld %8ld %8.2f%%\n", c, nm, total[c], right[c], 100 * acc);
        sum += acc;
        present++;
    }
    fflush(stdout);
    free(total);
    free(right);
    *mean = present ? sum / present : 0;
    return 0;
}

/* Rank 0: the SVM on the gathered features, test accuracy and the per-class table. */
static int classify(const svm_eval_options *o, const split *tr, const split *te, int dim,
                    svm_eval_result *r, char *err)
{
    int32_t *pred = malloc(sizeof(int32_t) * (size_t)(te->n ? te->n : 1));
    if (!pred) return errf(err, "out of memory for %ld predictions", te->n);
    int rc = svm_fit(o, tr, te, dim, r, pred, err);
    if (!rc) {
        long right = 0;
        for (long i = 0; i < te->n; i++) right += pred[i] == te->y[i];
        r->correct = right;
        r->accuracy = (double)right / (double)te->n;
        rc = per_class_table(te, pred, tr->d.n_classes, tr->d.class_names, o->quiet,
                             &r->mean_class_accuracy, err);
    }
    free(pred);
    return rc;
}

static int open_split(split *s, const char *path, const model3d_config *cfg, char *err)
{
    memset(s, 0, sizeof *s);
    if (dataset_open(&s->d, path, MPI_COMM_WORLD, err)) return -1;
    s->open = 1;
    s->n = s->d.n;
    if (s->d.points < cfg->points)
        return errf(err, "%s: samples have %ld points, the encoder takes %d (set --points)", path,
                    s->d.points, cfg->points);
    return 0;
}

static void close_split(split *s)
{
    if (s->open) dataset_close(&s->d);
    free(s->x);
    free(s->y);
}

/* Opens both splits and checks them against cfg; *tr and *te are closed by close_split. */
static int open_splits(const svm_eval_options *o, const model3d_config *cfg, split *tr, split *te,
                       char *err)
{
    int rc = open_split(tr, o->data, cfg, err);
    if (!rc) rc = open_split(te, o->test, cfg, err);
    else memset(te, 0, sizeof *te);
    if (!rc && te->d.n_classes > tr->d.n_classes)
        rc = errf(err, "%s: %d classes, more than the %d of the training split %s", o->test,
                  te->d.n_classes, tr->d.n_classes, o->data);
    return rc;
}

/* The encode batch: o->batch, but no larger than a rank's share of the larger split (a huge
 * --batch must not allocate for samples that do not exist). */
static long batch_for(long batch, long n_train, long n_test)
{
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long most = ((n_train > n_test ? n_train : n_test) + size - 1) / size;
    return batch > most ? (most > 0 ? most : 1) : batch;
}

/* svm_eval_check_splits, and the encode batch for these splits into *batch (may be NULL). */
static int check_splits(const svm_eval_options *o, const model3d_config *cfg, long *batch, char *err)
{
    split tr, te;
    int rc = open_splits(o, cfg, &tr, &te, err);
    if (!rc && batch) { /* --bn-stats data: room for its batches too (of o->batch on any number of ranks) */
        *batch = batch_for(o->batch, tr.n, te.n);
        long bs = o->batch < tr.n ? o->batch : tr.n;
        if (o->bn_stats && bs > *batch) *batch = bs;
    }
    close_split(&tr);
    close_split(&te);
    return dist_any_error(MPI_COMM_WORLD, rc, err);
}

int svm_eval_check_splits(const svm_eval_options *o, const model3d_config *cfg, char *err)
{
    return check_splits(o, cfg, NULL, err);
}

int svm_eval_model(const svm_eval_options *o, model3d *m, const model3d_config *cfg,
                   svm_eval_result *r, char *err)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    memset(r, 0, sizeof *r);
    r->cv_accuracy = -1;
    split tr, te;
    int rc = open_splits(o, cfg, &tr, &te, err);
    long batch = rc ? 1 : batch_for(o->batch, tr.n, te.n);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto out;
    int dim = cfg->dims[2];
    double t0 = now_s();
    progress pr;
    progress_start(&pr, "svm: encode", "samples", tr.n + te.n);
    long done = 0;
    if (o->bn_stats) rc = reestimate_bn(&tr, m, cfg, o->batch, err);
    if (!rc) rc = encode_split(&tr, m, cfg, batch, &pr, &done, err);
    if (!rc) rc = encode_split(&te, m, cfg, batch, &pr, &done, err);
    if (rc) goto out;
    if (!o->quiet) progress_finish(&pr);
    r->seconds_encode = now_s() - t0;
    double t1 = now_s();
    rc = rank == 0 ? classify(o, &tr, &te, dim, r, err) : 0;
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) { rc = -1; goto out; }
    r->seconds_svm = now_s() - t1;
    r->train_samples = tr.n;
    r->test_samples = te.n;
    r->points = cfg->points;
    r->feature_dim = dim;
out:
    close_split(&tr);
    close_split(&te);
    return rc ? -1 : 0;
}

int svm_eval_run(const svm_eval_options *o, svm_eval_result *r, char *err)
{
    memset(r, 0, sizeof *r);
    r->cv_accuracy = -1;
    model3d_config cfg;
    if (dist_any_error(MPI_COMM_WORLD, svm_config(o, &cfg, err), err)) return -1;
    long batch = o->batch;
    if (check_splits(o, &cfg, &batch, err)) return -1;
    dnn_ctx ctx = {0};
    model3d *m = NULL;
    int rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = model3d_create(&m, &cfg, (int)batch, (uint64_t)o->seed, &ctx, err);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc && !o->random_init) rc = svm_load(o->checkpoint, m, err);
    if (!rc) rc = svm_eval_model(o, m, &cfg, r, err);
    model3d_free(m);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    return rc ? -1 : 0;
}
