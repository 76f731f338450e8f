/* cli_svm.c -- `i2pmae svm`: linear-SVM evaluation of a frozen encoder (i2pmae-spec.md section 8).
 *
 * Every rank encodes a contiguous block of each split (dist_block_range) in batches with
 * model3d_encode_global (no mask, BatchNorm in eval mode, max-pool of the last stage after its
 * LayerNorm); rank 0 gathers the features, trains liblinear (svm.h) on the training split and
 * reports accuracy on the test split, a per-class table and the JSON line.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "commands.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "log.h"
#include "model_opts.h"
#include "summary.h"
#include "svm.h"

#define SVM_DEFAULT_C 0.0093 /* spec section 8: ModelNet40 */

typedef struct {
    char data[CLI_STR_LEN], test[CLI_STR_LEN], checkpoint[CLI_STR_LEN], c[CLI_STR_LEN];
    int random_init, folds;
    long batch, seed;
    model_opts model;
} svm_args;

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
 * mask-ratio and drop-path, which do not change the parameters) or the spec's defaults. */
static int svm_config(const svm_args *a, model3d_config *cfg, char *err)
{
    if (a->random_init) {
        model3d_config_default(cfg);
        if (model_opts_apply(&a->model, cfg, err)) return -1;
        return model3d_config_check(cfg, err);
    }
    ckpt_state st;
    char *json = malloc(CKPT_CONFIG_LEN);
    if (!json) return errf(err, "out of memory");
    int rc = ckpt_read_header(a->checkpoint, MPI_COMM_WORLD, &st, json, err);
    cJSON *root = rc ? NULL : cJSON_Parse(json);
    free(json);
    if (rc) return -1;
    cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    rc = m ? model3d_config_from_json(m, cfg, err)
           : errf(err, "%s: checkpoint has no model configuration", a->checkpoint);
    cJSON_Delete(root);
    if (rc) return err_prefix(err, a->checkpoint);
    model_opts arch = a->model, points = {0};
    arch.v[0][0] = arch.v[9][0] = arch.v[10][0] = 0; /* points, mask-ratio, drop-path */
    if (model_opts_check_against(&arch, cfg, a->checkpoint, err)) return -1;
    memcpy(points.v[0], a->model.v[0], sizeof points.v[0]);
    if (model_opts_apply(&points, cfg, err)) return -1;
    return model3d_config_check(cfg, err);
}

/* Loads parameters and BatchNorm buffers of the checkpoint into the model. */
static int svm_load(const svm_args *a, model3d *m, char *err)
{
    ckpt_array arrays[2] = {
        {"/params", CKPT_F32, model3d_params(m), model3d_n_params(m)},
        {"/buffers", CKPT_F32, model3d_buffers(m), model3d_n_buffers(m)},
    };
    ckpt_state st;
    return ckpt_read(a->checkpoint, MPI_COMM_WORLD, &st, NULL, arrays, 2, err);
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
        rc = dataset_read(&s->d, start + off, nb, raw, lab + off, err);
        for (long b = 0; !rc && b < nb; b++) /* the first Pm points of each sample */
            memcpy(pts + b * Pm * 3, raw + b * P * 3, sizeof(float) * (size_t)(Pm * 3));
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
    int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
    for (int r = 0; r < size; r++) {
        long st, ct;
        dist_block_range(s->n, size, r, &st, &ct);
        counts[r] = (int)(ct * dim);
        displs[r] = (int)(st * dim);
    }
    if (rank == 0) {
        s->x = malloc(sizeof(float) * (size_t)(s->n * dim));
        s->y = malloc(sizeof(int32_t) * (size_t)s->n);
    }
    MPI_Gatherv(feat, (int)(count * dim), MPI_FLOAT, s->x, counts, displs, MPI_FLOAT, 0,
                MPI_COMM_WORLD);
    for (int r = 0; r < size; r++) {
        counts[r] /= dim;
        displs[r] /= dim;
    }
    MPI_Gatherv(lab, (int)count, MPI_INT32_T, s->y, counts, displs, MPI_INT32_T, 0, MPI_COMM_WORLD);
    free(counts);
    free(displs);
out:
    free(raw);
    free(pts);
    free(feat);
    free(lab);
    return rc ? -1 : 0;
}

/* Rank 0: chooses C, trains, predicts the test split. pred (n_test) receives the predictions. */
static int svm_fit(const svm_args *a, const split *tr, const split *te, int dim, double *c_used,
                   double *cv_acc, int32_t *pred, char *err)
{
    if (!strcmp(a->c, "auto")) {
        double acc[C_GRID_N];
        if (svm_select_c(tr->x, tr->y, tr->n, dim, c_grid, C_GRID_N, a->folds, (unsigned)a->seed,
                         c_used, acc, err))
            return -1;
        for (int i = 0; i < C_GRID_N; i++) {
            log_info("svm: C = %-8g %d-fold cross-validation accuracy %.2f%%", c_grid[i], a->folds,
                     100 * acc[i]);
            if (c_grid[i] == *c_used) *cv_acc = acc[i];
        }
    }
    svm_classifier *clf;
    if (svm_train(tr->x, tr->y, tr->n, dim, *c_used, (unsigned)a->seed, &clf, err)) return -1;
    svm_predict(clf, te->x, te->n, dim, pred);
    svm_free(clf);
    return 0;
}

/* The i-th '\n'-separated class name, or its number. */
static void class_name(const char *names, int i, char *out, size_t n)
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

/* Prints the per-class table; returns the mean class accuracy. */
static double per_class_table(const split *te, const int32_t *pred, int n_classes, const char *names)
{
    long *total = calloc((size_t)n_classes, sizeof(long)), *right = calloc((size_t)n_classes, sizeof(long));
    for (long i = 0; i < te->n; i++) {
        total[te->y[i]]++;
        right[te->y[i]] += pred[i] == te->y[i];
    }
    printf("%-4s %-20s %8s %8s %9s\n", "id", "class", "test", "correct", "accuracy");
    double sum = 0;
    int present = 0;
    for (int c = 0; c < n_classes; c++) {
        if (!total[c]) continue;
        char nm[64];
        class_name(names, c, nm, sizeof nm);
        double acc = (double)right[c] / (double)total[c];
        printf("%-4d %-20s %8ld %8ld %8.2f%%\n", c, nm, total[c], right[c], 100 * acc);
        sum += acc;
        present++;
    }
    fflush(stdout);
    free(total);
    free(right);
    return present ? sum / present : 0;
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

static int svm_run(const svm_args *a, int rank, int size, char *err)
{
    model3d_config cfg;
    if (dist_any_error(MPI_COMM_WORLD, svm_config(a, &cfg, err), err)) return -1;
    split tr, te;
    int rc = open_split(&tr, a->data, &cfg, err);
    if (!rc) rc = open_split(&te, a->test, &cfg, err);
    else memset(&te, 0, sizeof te);
    if (!rc && te.d.n_classes > tr.d.n_classes)
        rc = errf(err, "%s: %d classes, more than the %d of the training split %s", a->test,
                  te.d.n_classes, tr.d.n_classes, a->data);
    dnn_ctx ctx = {0};
    model3d *m = NULL;
    if (!rc) rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = model3d_create(&m, &cfg, (int)a->batch, (uint64_t)a->seed, &ctx, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto out;
    if (!a->random_init && svm_load(a, m, err)) { rc = -1; goto out; }

    int dim = cfg.dims[2];
    double t0 = now_s();
    progress pr;
    progress_start(&pr, "svm: encode", "samples", tr.n + te.n);
    long done = 0;
    rc = encode_split(&tr, m, &cfg, a->batch, &pr, &done, err);
    if (!rc) rc = encode_split(&te, m, &cfg, a->batch, &pr, &done, err);
    if (rc) goto out;
    progress_finish(&pr);
    double t_enc = now_s() - t0, t1 = now_s();

    double c_used = strcmp(a->c, "auto") ? atof(a->c) : 0, cv_acc = -1, acc = 0, mean_class = 0;
    int32_t *pred = rank == 0 ? malloc(sizeof(int32_t) * (size_t)te.n) : NULL;
    if (rank == 0) {
        rc = pred ? svm_fit(a, &tr, &te, dim, &c_used, &cv_acc, pred, err) : errf(err, "out of memory");
        if (!rc) {
            long right = 0;
            for (long i = 0; i < te.n; i++) right += pred[i] == te.y[i];
            acc = (double)right / (double)te.n;
            mean_class = per_class_table(&te, pred, tr.d.n_classes, tr.d.class_names);
        }
    }
    free(pred);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto out;
    double t_svm = now_s() - t1;
    const char *what = a->random_init ? "random-init encoder" : a->checkpoint;
    log_info("svm: %s: test accuracy %.2f%% (mean class accuracy %.2f%%), C = %g%s, %ld train / %ld "
             "test samples, %d-d features", what, 100 * acc, 100 * mean_class, c_used,
             strcmp(a->c, "auto") ? "" : " (cross-validated)", tr.n, te.n, dim);
    cJSON *s = summary_begin("svm", size);
    cJSON_AddStringToObject(s, "encoder", a->random_init ? "random-init" : "checkpoint");
    if (!a->random_init) cJSON_AddStringToObject(s, "checkpoint", a->checkpoint);
    cJSON_AddStringToObject(s, "data", a->data);
    cJSON_AddStringToObject(s, "test", a->test);
    cJSON_AddNumberToObject(s, "accuracy", acc);
    cJSON_AddNumberToObject(s, "mean_class_accuracy", mean_class);
    cJSON_AddNumberToObject(s, "c", c_used);
    cJSON_AddStringToObject(s, "c_selection", strcmp(a->c, "auto") ? "given" : "cross-validation");
    if (cv_acc >= 0) cJSON_AddNumberToObject(s, "cv_accuracy", cv_acc);
    cJSON_AddStringToObject(s, "solver", "liblinear L2R_L1LOSS_SVC_DUAL (one-vs-rest)");
    cJSON_AddNumberToObject(s, "train_samples", (double)tr.n);
    cJSON_AddNumberToObject(s, "test_samples", (double)te.n);
    cJSON_AddNumberToObject(s, "points", cfg.points);
    cJSON_AddNumberToObject(s, "feature_dim", dim);
    cJSON_AddNumberToObject(s, "seconds_encode", t_enc);
    cJSON_AddNumberToObject(s, "seconds_svm", t_svm);
    cJSON_AddNumberToObject(s, "encode_samples_per_s", t_enc > 0 ? (tr.n + te.n) / t_enc : 0);
    summary_emit(s, rank);
out:
    model3d_free(m);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    close_split(&tr);
    close_split(&te);
    return rc ? -1 : 0;
}

int cmd_svm(int argc, char **argv)
{
    svm_args a = {.folds = 5, .batch = 32, .seed = 1};
    snprintf(a.c, sizeof a.c, "%g", SVM_DEFAULT_C);
    cli_opt all[8 + MODEL_OPTS_COUNT] = {
        {"data", OPT_STRING, a.data, "FILE", "training split (point-cloud file, e.g. ModelNet40 train)"},
        {"test", OPT_STRING, a.test, "FILE", "test split"},
        {"checkpoint", OPT_STRING, a.checkpoint, "FILE", "pre-trained checkpoint (ckpt-*.h5)"},
        {"random-init", OPT_FLAG, &a.random_init, NULL, "evaluate a randomly initialised encoder instead"},
        {"c", OPT_STRING, a.c, "C", "SVM cost, or 'auto' (cross-validation on the training split)"},
        {"folds", OPT_INT, &a.folds, "K", "cross-validation folds for --c auto"},
        {"batch", OPT_LONG, &a.batch, "B", "samples per encoder batch (per rank)"},
        {"seed", OPT_LONG, &a.seed, "S", "seed of --random-init weights and of liblinear"},
    };
    model_opts_table(&a.model, all + 8);
    const cli_cmd cmd = {
        "svm", "linear-SVM evaluation of a frozen encoder",
        "i2pmae svm --data TRAIN.h5 --test TEST.h5 (--checkpoint CKPT | --random-init) [--c C|auto]",
        "Encodes both splits with the frozen encoder (no mask, BatchNorm in eval mode; feature =\n"
        "max-pool of the last stage's tokens after its LayerNorm, dims[2] wide), trains a linear SVM\n"
        "(liblinear, hinge loss, L2, one-vs-rest) on the training split and reports test accuracy,\n"
        "a per-class table and a JSON line. The architecture comes from the checkpoint; model\n"
        "options given must agree with it, except --points (the spec's protocol uses the first 1024\n"
        "points: jobs/svm-modelnet40.ini). Layout and protocol: docs/svm.md.",
        all, 8 + MODEL_OPTS_COUNT, 0};
    int rank = 0, size = 1;
    cli_common common;
    int started = cmd_start(&cmd, argc, argv, &common, &rank, &size);
    if (started) return started > 0 ? 0 : 2;
    char err[I2P_ERR_LEN];
    int rc = 0;
    if (!rc && (!a.data[0] || !a.test[0])) rc = errf(err, "svm: --data and --test are required");
    if (!rc && !a.random_init == !a.checkpoint[0])
        rc = errf(err, "svm: give exactly one of --checkpoint FILE and --random-init");
    if (!rc && strcmp(a.c, "auto")) {
        char *end;
        double c = strtod(a.c, &end);
        if (end == a.c || *end || !(c > 0)) rc = errf(err, "--c %s: must be a positive number or 'auto'", a.c);
    }
    if (!rc && (a.folds < 2)) rc = errf(err, "--folds %d: must be at least 2", a.folds);
    if (!rc && a.batch < 1) rc = errf(err, "--batch %ld: must be at least 1", a.batch);
    if (!rc && a.seed < 0) rc = errf(err, "--seed %ld: must be non-negative", a.seed);
    if (rc) {
        if (rank == 0) log_error("%s", err);
        return 2;
    }
    log_set_verbose(common.verbose);
    if (svm_run(&a, rank, size, err)) {
        if (rank == 0) log_error("%s", err);
        return 1;
    }
    return 0;
}
