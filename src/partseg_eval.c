/* partseg_eval.c -- the splits of part segmentation: training and test views of a part-labelled
 * file, the test split's evaluation, and --eval-only (partseg_eval.h, partseg_train.h). */
#include "partseg_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckpt_kind.h"
#include "dist.h"
#include "errors.h"
#include "h5io.h"
#include "rng.h"
#include "seg_metrics.h"

#define VIEW_STREAM 0x76696577ull /* "view" */

int segset_open(segset *s, const char *path, MPI_Comm comm, char *err)
{
    memset(s, 0, sizeof *s);
    if (dataset_open(&s->d, path, comm, err)) return -1;
    s->open = 1;
    if (dataset_open_parts(&s->d, &s->parts, err)) return -1;
    s->raw = malloc(sizeof(float) * 3 * (size_t)s->d.points);
    s->raw_seg = malloc(sizeof(int32_t) * (size_t)s->d.points);
    if (!s->raw || !s->raw_seg) return errf(err, "%s: out of memory", path);
    return 0;
}

void segset_close(segset *s)
{
    if (s->open) dataset_close(&s->d);
    free(s->raw);
    free(s->raw_seg);
    memset(s, 0, sizeof *s);
}

/* The model's categories and parts must be the file's (0 in cfg: take the file's). */
int segset_match(const segset *s, partseg_config *cfg, const char *what, char *err)
{
    if (!cfg->n_categories) cfg->n_categories = s->parts.n_categories;
    if (!cfg->n_parts) cfg->n_parts = s->parts.n_parts;
    if (cfg->n_categories != s->parts.n_categories || cfg->n_parts != s->parts.n_parts)
        return errf(err, "%s: %d categories and %d parts, the network has %d and %d", what,
                    s->parts.n_categories, s->parts.n_parts, cfg->n_categories, cfg->n_parts);
    if (s->d.points < cfg->enc.points)
        return errf(err, "%s: samples have %ld points, the network takes %d (--points)", what, s->d.points,
                    cfg->enc.points);
    return 0;
}

/* Sample id into pts (Pm,3), seg (Pm), *category: the training view (augment 1) or the test view. */
int segset_view(segset *s, long id, long Pm, int augment, uint64_t seed, long epoch, float *pts,
                     int32_t *seg, int32_t *category, char *err)
{
    if (dataset_read(&s->d, id, 1, s->raw, category, err) ||
        dataset_read_seg(&s->d, &s->parts, id, 1, category, s->raw_seg, err))
        return -1;
    long P = s->d.points;
    rng_t r;
    rng_seed(&r, rng_mix(seed ^ VIEW_STREAM, (uint64_t)epoch), (uint64_t)id);
    if (augment && P > Pm) /* partial Fisher-Yates: a random Pm-subset */
        for (long k = 0; k < Pm; k++) {
            long j = k + (long)rng_below(&r, (uint64_t)(P - k));
            for (int d = 0; d < 3; d++) {
                float t = s->raw[3 * k + d];
                s->raw[3 * k + d] = s->raw[3 * j + d];
                s->raw[3 * j + d] = t;
            }
            int32_t t = s->raw_seg[k];
            s->raw_seg[k] = s->raw_seg[j];
            s->raw_seg[j] = t;
        }
    double scale = 1, shift[3] = {0, 0, 0};
    if (augment) {
        scale = rng_range(&r, 0.8, 1.25);
        for (int d = 0; d < 3; d++) shift[d] = rng_range(&r, -0.1, 0.1);
    }
    for (long k = 0; k < Pm; k++) {
        for (int d = 0; d < 3; d++) pts[3 * k + d] = (float)(s->raw[3 * k + d] * scale + shift[d]);
        seg[k] = s->raw_seg[k];
    }
    return 0;
}

/* Opens the test split on every rank and reads this rank's chunks. Collective. */
int segtest_open(segtest *t, const char *path, partseg_config *cfg, long chunk, MPI_Comm comm, char *err)
{
    memset(t, 0, sizeof *t);
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int rc = segset_open(&t->s, path, MPI_COMM_SELF, err);
    if (!rc) rc = segset_match(&t->s, cfg, path, err);
    if (dist_any_error(comm, rc, err)) return -1;
    t->n = t->s.d.n;
    t->chunk = chunk;
    t->Pm = cfg->enc.points;
    long n_chunks = (t->n + chunk - 1) / chunk, c0, cn;
    dist_block_range(n_chunks, size, rank, &c0, &cn);
    t->first = c0 * chunk;
    t->count = cn ? ((c0 + cn) * chunk < t->n ? (c0 + cn) * chunk : t->n) - t->first : 0;
    t->points = malloc(sizeof(float) * 3 * (size_t)((t->count + 1) * t->Pm));
    t->seg = malloc(sizeof(int32_t) * (size_t)((t->count + 1) * t->Pm));
    t->pred = malloc(sizeof(int32_t) * (size_t)((t->count + 1) * t->Pm));
    t->category = malloc(sizeof(int32_t) * (size_t)(t->count + 1));
    t->logits = malloc(sizeof(float) * (size_t)(chunk * t->Pm * cfg->n_parts));
    t->iou = malloc(sizeof(double) * (size_t)t->n);
    t->all_category = calloc((size_t)t->n, sizeof(int32_t));
    rc = t->points && t->seg && t->pred && t->category && t->logits && t->iou && t->all_category
             ? 0 : errf(err, "%s: out of memory for the test split", path);
    for (long i = 0; !rc && i < t->count; i++)
        rc = segset_view(&t->s, t->first + i, t->Pm, 0, 0, 0, t->points + i * t->Pm * 3, t->seg + i * t->Pm,
                       t->category + i, err);
    if (dist_any_error(comm, rc, err)) return -1;
    for (long i = 0; i < t->count; i++) t->all_category[t->first + i] = t->category[i];
    MPI_Allreduce(MPI_IN_PLACE, t->all_category, (int)t->n, MPI_INT32_T, MPI_SUM, comm);
    return 0;
}

void segtest_close(segtest *t)
{
    segset_close(&t->s);
    free(t->points);
    free(t->seg);
    free(t->pred);
    free(t->category);
    free(t->logits);
    free(t->iou);
    free(t->all_category);
    memset(t, 0, sizeof *t);
}

/* Eval-mode forward of this rank's chunks; rec and per_class (n_categories, may be NULL) of the
 * whole split on every rank. Collective. */
int segtest_eval(segtest *t, partseg *m, seg_record *rec, double *per_class, MPI_Comm comm, char *err)
{
    const partseg_config *c = partseg_get_config(m);
    long Pm = t->Pm, n = c->n_parts;
    memset(t->iou, 0, sizeof(double) * (size_t)t->n);
    int64_t hits[2] = {0, 0};
    int rc = 0;
    for (long off = 0; !rc && off < t->count; off += t->chunk) {
        long B = t->count - off < t->chunk ? t->count - off : t->chunk;
        rc = partseg_forward(m, (int)B, t->points + off * Pm * 3, t->category + off, t->logits, err);
        for (long b = 0; !rc && b < B; b++) {
            const int32_t *truth = t->seg + (off + b) * Pm;
            int cat = t->category[off + b];
            int32_t *pred = t->pred + (off + b) * Pm;
            seg_predict(&t->s.parts, cat, t->logits + b * Pm * n, Pm, pred);
            t->iou[t->first + off + b] = seg_shape_iou(&t->s.parts, cat, pred, truth, Pm);
            for (long k = 0; k < Pm; k++) hits[0] += pred[k] == truth[k];
            hits[1] += Pm;
        }
    }
    if (dist_any_error(comm, rc, err)) return -1;
    /* one owner per shape: the sum is exact, the order of the mean is the sample order */
    MPI_Allreduce(MPI_IN_PLACE, t->iou, (int)t->n, MPI_DOUBLE, MPI_SUM, comm);
    MPI_Allreduce(MPI_IN_PLACE, hits, 2, MPI_INT64_T, MPI_SUM, comm);
    seg_miou(&t->s.parts, t->all_category, t->iou, t->n, &rec->instance_miou, &rec->class_miou, per_class);
    rec->accuracy = hits[1] ? (double)hits[0] / (double)hits[1] : 0;
    return 0;
}

/* The split's points, true and predicted labels and categories into path (replaced if it exists),
 * each rank writing its rows. Collective. */
int segtest_write_predictions(const segtest *t, const char *path, MPI_Comm comm, char *err)
{
    h5file f;
    int rc = h5_create(&f, path, comm, 1, err);
    if (dist_any_error(comm, rc, err)) return -1;
    hsize_t d3[3] = {(hsize_t)t->n, (hsize_t)t->Pm, 3};
    rc = h5_create_dataset(&f, "/points", H5T_IEEE_F32LE, 3, d3, NULL, 0, err);
    if (!rc) rc = h5_create_dataset(&f, "/seg", H5T_STD_I32LE, 2, d3, NULL, 0, err);
    if (!rc) rc = h5_create_dataset(&f, "/pred", H5T_STD_I32LE, 2, d3, NULL, 0, err);
    if (!rc) rc = h5_create_dataset(&f, "/category", H5T_STD_I32LE, 1, d3, NULL, 0, err);
    if (!rc) rc = h5_write_rows(&f, "/points", H5T_NATIVE_FLOAT, t->first, t->count, t->points, err);
    if (!rc) rc = h5_write_rows(&f, "/seg", H5T_NATIVE_INT32, t->first, t->count, t->seg, err);
    if (!rc) rc = h5_write_rows(&f, "/pred", H5T_NATIVE_INT32, t->first, t->count, t->pred, err);
    if (!rc) rc = h5_write_rows(&f, "/category", H5T_NATIVE_INT32, t->first, t->count, t->category, err);
    if (!rc) rc = h5_attr_write_long(&f, "/", "n_parts", t->s.parts.n_parts, err);
    if (!rc) rc = h5_attr_write_long(&f, "/", "n_categories", t->s.parts.n_categories, err);
    if (dist_any_error(comm, rc, err)) {
        h5_abort(&f);
        return -1;
    }
    return h5_commit(&f, err);
}

/* ---- --eval-only ---- */

int partseg_eval_only(const char *checkpoint, const char *test, const char *predictions, long micro,
                      MPI_Comm comm, seg_record *rec, long *n_test, char *err)
{
    ckpt_state st;
    partseg_config cfg;
    long ck_micro = 0;
    cJSON *root;
    if (ckpt_read_config(checkpoint, comm, &st, &root, err)) return -1;
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(root, "partseg");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "train");
    const cJSON *mb = tr ? cJSON_GetObjectItemCaseSensitive(tr, "micro_batch") : NULL;
    int rc = ckpt_kind_require(root, checkpoint, "--checkpoint", "partseg --eval-only", CKPT_KIND_PARTSEG, err);
    if (!rc && partseg_config_from_json(pj, &cfg, err)) rc = err_prefix(err, checkpoint);
    if (cJSON_IsNumber(mb)) ck_micro = (long)mb->valuedouble;
    cJSON_Delete(root);
    if (rc) return -1;
    long chunk = micro > 0 ? micro : ck_micro > 0 ? ck_micro : 16;
    segtest ts;
    dnn_ctx ctx = {0};
    partseg *m = NULL;
    if (segtest_open(&ts, test, &cfg, chunk, comm, err)) {
        segtest_close(&ts);
        return -1;
    }
    rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = partseg_create(&m, &cfg, (int)chunk, 0, &ctx, err);
    if (!dist_any_error(comm, rc, err)) {
        rc = ckpt_read_network(checkpoint, comm, partseg_params(m), partseg_n_params(m), partseg_buffers(m),
                               partseg_n_buffers(m), &st, err);
        if (!rc) rc = segtest_eval(&ts, m, rec, NULL, comm, err);
        if (!rc && predictions && predictions[0]) rc = segtest_write_predictions(&ts, predictions, comm, err);
        rec->epoch = st.epoch;
        *n_test = ts.n;
    } else {
        rc = -1;
    }
    if (m) partseg_free(m);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    segtest_close(&ts);
    return rc;
}
