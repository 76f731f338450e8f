/* finetune_eval.c -- test-split evaluation, voting and --eval-only (see finetune_eval.h). */
#include "finetune_eval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckpt_kind.h"
#include "dist.h"
#include "errors.h"
#include "log.h"

/* This rank's samples: the whole chunks dist_block_range gives it. */
static void rank_range(long n, long chunk, MPI_Comm comm, long *first, long *count)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    long n_chunks = (n + chunk - 1) / chunk, c0, nc;
    dist_block_range(n_chunks, size, rank, &c0, &nc);
    *first = c0 * chunk < n ? c0 * chunk : n;
    long end = (c0 + nc) * chunk < n ? (c0 + nc) * chunk : n;
    *count = end - *first;
}

static int testset_load(ft_testset *t, const char *path, long Pm, int skip_origin, int n_classes,
                        long chunk, const char *train_path, MPI_Comm comm, char *err)
{
    if (dataset_open(&t->d, path, MPI_COMM_SELF, err)) return -1;
    t->open = 1;
    t->n = t->d.n;
    t->chunk = chunk;
    t->Pm = Pm;
    t->n_classes = n_classes;
    if (t->d.points < Pm)
        return errf(err, "%s: samples have %ld points, the network takes %ld (--points)", path,
                    t->d.points, Pm);
    if (t->d.n_classes > n_classes)
        return errf(err, "%s: labels up to %d, outside the %d classes of the training data %s",
                    path, t->d.n_classes - 1, n_classes, train_path);
    if (ft_sampler_init(&t->smp, t->d.points, Pm, err)) return -1;
    t->smp.skip_origin = skip_origin;
    rank_range(t->n, chunk, comm, &t->first, &t->count);
    long nf = t->smp.n_fps, P = t->d.points, cnt = t->count ? t->count : 1;
    t->cand = malloc(sizeof(float) * (size_t)(cnt * nf * 3));
    t->labels = malloc(sizeof(int32_t) * (size_t)cnt);
    t->pts = malloc(sizeof(float) * (size_t)(chunk * Pm * 3));
    t->logits = malloc(sizeof(float) * (size_t)(chunk * n_classes));
    t->sum = malloc(sizeof(float) * (size_t)(chunk * n_classes));
    t->pred = malloc(sizeof(int32_t) * (size_t)chunk);
    float *raw = malloc(sizeof(float) * (size_t)(P * 3));
    int rc = t->cand && t->labels && t->pts && t->logits && t->sum && t->pred && raw
           ? 0 : errf(err, "%s: out of memory for %ld test samples", path, t->count);
    for (long i = 0; !rc && i < t->count; i++) {
        rc = dataset_read(&t->d, t->first + i, 1, raw, t->labels + i, err);
        if (!rc && (t->labels[i] < 0 || t->labels[i] >= n_classes))
            rc = errf(err, "%s: sample %ld has label %d, outside the %d classes of the training data "
                      "%s", path, t->first + i, t->labels[i], n_classes, train_path);
        if (!rc) ft_candidates(&t->smp, raw, t->cand + i * nf * 3);
    }
    free(raw);
    return rc;
}

int ft_testset_open(ft_testset *t, const char *path, long Pm, int skip_origin, int n_classes,
                    long chunk, const char *train_path, MPI_Comm comm, char *err)
{
    memset(t, 0, sizeof *t);
    int rc = testset_load(t, path, Pm, skip_origin, n_classes, chunk, train_path, comm, err);
    return dist_any_error(comm, rc, err);
}

void ft_testset_close(ft_testset *t)
{
    if (t->open) dataset_close(&t->d);
    ft_sampler_free(&t->smp);
    free(t->cand);
    free(t->labels);
    free(t->pts);
    free(t->logits);
    free(t->sum);
    free(t->pred);
    memset(t, 0, sizeof *t);
}

int ft_testset_eval(ft_testset *t, classifier *c, confusion *cm, MPI_Comm comm, char *err)
{
    confusion_reset(cm);
    long nf = t->smp.n_fps, Pm = t->Pm;
    int rc = 0;
    for (long off = 0; !rc && off < t->count; off += t->chunk) {
        long nb = t->count - off < t->chunk ? t->count - off : t->chunk;
        for (long i = 0; i < nb; i++) /* FPS to Pm = the first Pm candidates */
            memcpy(t->pts + i * Pm * 3, t->cand + (off + i) * nf * 3, sizeof(float) * (size_t)(Pm * 3));
        rc = classifier_forward(c, (int)nb, t->pts, t->logits, err);
        if (!rc) {
            logits_argmax(t->logits, nb, t->n_classes, t->pred);
            confusion_add(cm, t->labels + off, t->pred, nb);
        }
    }
    if (dist_any_error(comm, rc, err)) return -1;
    long n = (long)cm->n_classes * cm->n_classes;
    MPI_Allreduce(MPI_IN_PLACE, cm->counts, (int)n, MPI_INT64_T, MPI_SUM, comm);
    return 0;
}

int ft_testset_vote(ft_testset *t, classifier *c, ft_protocol p, uint64_t seed, long views,
                    long repeat, long *correct, MPI_Comm comm, char *err)
{
    long nf = t->smp.n_fps, Pm = t->Pm, right = 0;
    int C = t->n_classes, rc = 0;
    for (long off = 0; !rc && off < t->count; off += t->chunk) {
        long nb = t->count - off < t->chunk ? t->count - off : t->chunk;
        memset(t->sum, 0, sizeof(float) * (size_t)(nb * C));
        for (long v = 0; !rc && v < views; v++) {
            for (long i = 0; i < nb; i++) {
                rng_t r;
                ft_vote_stream(&r, seed, repeat, v, t->first + off + i);
                ft_random_view(&t->smp, p, t->cand + (off + i) * nf * 3, &r, t->pts + i * Pm * 3);
            }
            rc = classifier_forward(c, (int)nb, t->pts, t->logits, err);
            for (long i = 0; !rc && i < nb * C; i++) t->sum[i] += t->logits[i];
        }
        if (!rc) {
            logits_argmax(t->sum, nb, C, t->pred);
            for (long i = 0; i < nb; i++) right += t->pred[i] == t->labels[off + i];
        }
    }
    if (dist_any_error(comm, rc, err)) return -1;
    MPI_Allreduce(&right, correct, 1, MPI_LONG, MPI_SUM, comm);
    return 0;
}

/* ---- --eval-only ---- */

static double json_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : dflt;
}

/* The classifier configuration and training settings stored in a fine-tuning checkpoint. */
static int read_ft_config(const ft_eval_args *a, classifier_config *cfg, long *micro, long *seed,
                          ft_protocol *proto, long *epoch, MPI_Comm comm, char *err)
{
    ckpt_state st;
    cJSON *root;
    if (ckpt_read_config(a->checkpoint, comm, &st, &root, err)) return -1;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "classifier");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "train");
    int rc = ckpt_kind_require(root, a->checkpoint, "--checkpoint", "finetune --eval-only", CKPT_KIND_FINETUNE, err);
    if (!rc && classifier_config_from_json(c, cfg, err)) rc = err_prefix(err, a->checkpoint);
    if (!rc) {
        *micro = (long)json_num(tr, "micro_batch", 32);
        *seed = (long)json_num(tr, "seed", 0);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(tr, "protocol");
        *proto = cJSON_IsString(p) && !strcmp(p->valuestring, "scanobjectnn") ? FT_SCANOBJECTNN
                                                                              : FT_MODELNET40;
        *epoch = st.epoch;
    }
    cJSON_Delete(root);
    return rc;
}

int finetune_eval_only(const ft_eval_args *a, MPI_Comm comm, ft_eval_result *r, confusion *cm,
                       char *err)
{
    memset(r, 0, sizeof *r);
    int rank;
    MPI_Comm_rank(comm, &rank);
    classifier_config cfg;
    long micro = 0, seed = 0, epoch = 0;
    ft_protocol proto = FT_MODELNET40;
    if (read_ft_config(a, &cfg, &micro, &seed, &proto, &epoch, comm, err)) return -1;
    if (a->micro > 0) micro = a->micro;
    if (micro < 1) micro = 32;
    if (a->seed >= 0) seed = a->seed;
    if (a->protocol_set) proto = a->protocol;
    r->epoch = epoch;
    r->n_classes = cfg.n_classes;
    r->points = cfg.enc.points;
    r->protocol = proto;
    r->seed = seed;
    dnn_ctx ctx = {0};
    classifier *c = NULL;
    ft_testset ts;
    memset(&ts, 0, sizeof ts);
    int rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = classifier_create(&c, &cfg, (int)micro, (uint64_t)seed, &ctx, err);
    if (!rc) rc = confusion_init(cm, cfg.n_classes, err);
    if (dist_any_error(comm, rc, err)) goto out;
    rc = ckpt_read_network(a->checkpoint, comm, classifier_params(c), classifier_n_params(c), classifier_buffers(c),
                           classifier_n_buffers(c), NULL, err);
    if (!rc) rc = ft_testset_open(&ts, a->test, cfg.enc.points, cfg.enc.fps_skip_origin, cfg.n_classes, micro, "(the checkpoint)",
                                  comm, err);
    if (rc) goto out;
    double t0 = now_s();
    rc = ft_testset_eval(&ts, c, cm, comm, err);
    if (rc) goto out;
    r->seconds_eval = now_s() - t0;
    r->rec = (ft_record){.epoch = epoch - 1, .correct = confusion_correct(cm),
                         .total = confusion_total(cm), .acc = confusion_accuracy(cm),
                         .mean_class_acc = confusion_mean_class_accuracy(cm)};
    log_info("finetune: %s: test accuracy %.2f%% (%ld/%ld), mean class accuracy %.2f%%", a->checkpoint,
             100 * r->rec.acc, r->rec.correct, r->rec.total, 100 * r->rec.mean_class_acc);
    if (rank == 0) per_class_print(cm, ts.d.class_names);
    if (a->vote) {
        double t1 = now_s(), s = 0, s2 = 0;
        r->vote_max = -1;
        r->vote_min = 2;
        double *accs = malloc(sizeof(double) * (size_t)a->vote_repeats);
        if (!accs) {
            rc = errf(err, "out of memory");
            goto out;
        }
        for (long k = 0; k < a->vote_repeats; k++) {
            long right = 0;
            if (ft_testset_vote(&ts, c, proto, (uint64_t)seed, a->vote_views, k, &right, comm, err)) {
                free(accs);
                rc = -1;
                goto out;
            }
            double acc = (double)right / (double)ts.n;
            accs[k] = acc;
            s += acc;
            if (acc > r->vote_max) r->vote_max = acc;
            if (acc < r->vote_min) r->vote_min = acc;
            log_info("finetune: vote %ld/%ld (%ld views): accuracy %.2f%%", k + 1, a->vote_repeats,
                     a->vote_views, 100 * acc);
        }
        double n = (double)a->vote_repeats;
        r->vote_mean = s / n;
        for (long k = 0; k < a->vote_repeats; k++)
            s2 += (accs[k] - r->vote_mean) * (accs[k] - r->vote_mean);
        free(accs);
        r->vote_std = sqrt(s2 / n);
        r->seconds_vote = now_s() - t1;
        r->vote_clouds_per_s = r->seconds_vote > 0
            ? (double)ts.n * (double)a->vote_views * n / r->seconds_vote : 0;
        log_info("finetune: voting over %ld repetitions of %ld views: mean %.2f%%, std %.2f%%, max "
                 "%.2f%% (the official code reports the max)", a->vote_repeats, a->vote_views,
                 100 * r->vote_mean, 100 * r->vote_std, 100 * r->vote_max);
    }
out:
    ft_testset_close(&ts);
    if (c) classifier_free(c);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    return rc ? -1 : 0;
}
