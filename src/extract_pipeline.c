/* extract_pipeline.c -- `extract`'s data x stage pipeline (see extract.h).
 *
 * Messages between stage s and s+1 of a replica (replica_comm, tag TAG_TOKENS): a header of
 * HDR_FLOATS floats ([0] = 0 tokens follow, 1 = skip: an upstream error, no tokens) then the token
 * buffer (B*V, T, D). Three buffers rotate, so stage s computes micro-batch i while i-1 is in flight
 * to s+1 and i+1 is arriving from s-1; a buffer is reused only after its send completed.
 * Control (tag TAG_CONTROL): every stage s > 0 sends exactly one int to s-1, "abort" (1) as soon as
 * it fails or learns of a failure downstream, else "finished" (0) at its end. Upstream stages poll
 * for it between micro-batches and, once aborted, only pass skip headers on, so a failing last stage
 * (disk full) stops the whole replica quickly and no rank waits forever.
 * Only the rank where an error happened reports failure; dist_any_error then gives every rank its
 * message.
 */
#include "extract.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "errors.h"
#include "extract_output.h"
#include "log.h"
#include "preempt.h"
#include "project.h"

#define TAG_TOKENS 11
#define TAG_CONTROL 12
#define HDR_FLOATS 16 /* keeps the tokens 64-byte aligned */
#define NBUF 3

typedef struct {
    const extract_options *o;
    const dist_grid *g;
    vit_model *vit;
    dataset ds;
    int ds_open;
    int grid, V, S, B, first, last, blk_a, blk_b;
    long N, P, tok_floats;
    long *todo, n_todo, n_mb, mb_per_flush, n_flush;
    /* buffers */
    float *points, *images, *depth, *sal, *patch, *cls;
    int32_t *labels;
    int16_t *pixel;
    float *buf[NBUF];
    MPI_Request send_req[NBUF], recv_req[NBUF];
    /* control */
    int ctrl_out, ctrl_in, ctrl_sent, ctrl_recvd, aborted;
    MPI_Request ctrl_req;
    /* preemption (SIGTERM / SIGUSR1): a vote per flush, acted on one flush later */
    preempt_vote vote;
    int stopped;
    /* output (last stage) */
    MPI_Comm io;
    features_file ff;
    int ff_open;
    output_buffer out;
    double bytes;
    extract_times t;
} extract_ctx;

static double tick(double *acc, double t0)
{
    double t = now_s();
    *acc += t - t0;
    return t;
}

/* ---- setup ---- */

static int load_model_and_data(extract_ctx *c, dnn_ctx *dnn, char *sha, char *err)
{
    const extract_options *o = c->o;
    if (vit_load(&c->vit, o->vit, o->precision, dnn, sha, err)) return -1;
    const vit_config *vc = vit_get_config(c->vit);
    int image = o->image ? o->image : vc->image;
    if (image % vc->patch)
        return errf(err, "--image %d: the resolution is not a multiple of the patch size %d of %s",
                    image, vc->patch, vc->name);
    if (image != vc->image)
        return errf(err, "--image %d: %s takes %dx%d images", image, vc->name, vc->image, vc->image);
    if (c->g->stages > vc->depth)
        return errf(err, "--stages %d: more stages than the %d blocks of %s", c->g->stages,
                    vc->depth, vc->name);
    if (dataset_open(&c->ds, o->input, MPI_COMM_SELF, err)) return -1;
    c->ds_open = 1;
    if (c->ds.points > 32767)
        return errf(err, "%s: %ld points per sample (at most 32767: pixels are stored as int16)",
                    o->input, c->ds.points);
    c->grid = vit_grid(c->vit);
    c->S = image;
    c->N = c->ds.n;
    c->P = c->ds.points;
    /* A micro-batch is padded to B samples: never more than the dataset holds (bounded by N, not
     * by the samples per rank, so the shapes and thus the bits do not depend on the grid). */
    if (c->B > c->N) c->B = (int)(c->N > 0 ? c->N : 1);
    return 0;
}

static void fill_meta(extract_ctx *c, const char *sha, const char *fingerprint, features_meta *m)
{
    const vit_config *vc = vit_get_config(c->vit);
    memset(m, 0, sizeof *m);
    *m = (features_meta){.n = c->N, .points = c->P, .views = c->V, .image = c->S, .patch = vc->patch,
                         .grid = c->grid, .feat_dim = vc->out_dim, .block = vc->depth - 1,
                         .fp32 = c->o->fp32};
    snprintf(m->vit, sizeof m->vit, "%s", vc->name);
    snprintf(m->vit_spec, sizeof m->vit_spec, "%s", c->o->vit);
    snprintf(m->weights_sha256, sizeof m->weights_sha256, "%s", sha);
    /* the precision actually used (bf16 falls back to fp32 where the CPU lacks it) */
    snprintf(m->precision, sizeof m->precision, "%s", vit_get_precision(c->vit) == VIT_BF16 ? "bf16" : "fp32");
    snprintf(m->source, sizeof m->source, "%s", c->o->input);
    snprintf(m->source_fingerprint, sizeof m->source_fingerprint, "%s", fingerprint);
}

/* This replica's samples not yet done, its micro-batches, and the flush count of the busiest
 * replica (every last stage makes that many collective writes). */
static int plan_work(extract_ctx *c, const uint8_t *done, char *err)
{
    const dist_grid *g = c->g;
    c->mb_per_flush = (c->o->flush + c->B - 1) / c->B;
    c->n_flush = 0;
    for (int r = 0; r < g->data; r++) {
        long start, count, todo = 0;
        dist_block_range(c->N, g->data, r, &start, &count);
        for (long i = start; i < start + count; i++) todo += !done[i];
        long mb = (todo + c->B - 1) / c->B;
        long fl = (mb + c->mb_per_flush - 1) / c->mb_per_flush;
        if (fl > c->n_flush) c->n_flush = fl;
        if (r != g->replica) continue;
        c->todo = malloc(sizeof(long) * (size_t)(todo ? todo : 1));
        if (!c->todo) return errf(err, "out of memory for the sample list");
        c->n_todo = 0;
        for (long i = start; i < start + count; i++)
            if (!done[i]) c->todo[c->n_todo++] = i;
        c->n_mb = mb;
    }
    return 0;
}

static int alloc_buffers(extract_ctx *c, char *err)
{
    const vit_config *vc = vit_get_config(c->vit);
    long imgs = (long)c->B * c->V, gg = (long)c->grid * c->grid;
    c->tok_floats = vit_token_floats(c->vit, (int)imgs);
    int oom = 0;
#define ALLOC(p, n) do { (p) = malloc(sizeof *(p) * (size_t)(n)); oom |= !(p); } while (0)
    ALLOC(c->points, c->B * c->P * 3);
    ALLOC(c->labels, c->B);
    if (c->first) ALLOC(c->images, imgs * 3 * c->S * c->S);
    if (c->first) ALLOC(c->depth, imgs * c->S * c->S); /* the projection's scratch, made once */
    for (int k = 0; k < NBUF; k++) ALLOC(c->buf[k], HDR_FLOATS + c->tok_floats);
    if (c->last) {
        ALLOC(c->sal, imgs * gg);
        ALLOC(c->patch, imgs * gg * vc->out_dim);
        ALLOC(c->cls, imgs * vc->out_dim);
        ALLOC(c->pixel, imgs * c->P * 2);
    }
#undef ALLOC
    if (oom) return errf(err, "out of memory for micro-batches of %d samples x %d views", c->B, c->V);
    if (c->last)
        return output_buffer_alloc(&c->out, c->mb_per_flush * c->B, &c->ff.m, err);
    return 0;
}

static void free_buffers(extract_ctx *c)
{
    free(c->points), free(c->labels), free(c->images), free(c->depth), free(c->sal), free(c->patch);
    free(c->cls);
    free(c->pixel), free(c->todo);
    for (int k = 0; k < NBUF; k++) free(c->buf[k]);
    output_buffer_free(&c->out);
}

/* ---- one micro-batch ---- */

/* Reads samples todo[i*B ..] (runs of consecutive rows) and pads to B with copies of the last. */
static int read_micro_batch(extract_ctx *c, long mb, long *n_out, char *err)
{
    long lo = mb * c->B, n = c->n_todo - lo < c->B ? c->n_todo - lo : c->B;
    const long *rows = c->todo + lo;
    for (long k = 0; k < n;) {
        long j = k + 1;
        while (j < n && rows[j] == rows[j - 1] + 1) j++;
        if (dataset_read(&c->ds, rows[k], j - k, c->points + k * c->P * 3, c->labels + k, err)) return -1;
        k = j;
    }
    for (long k = n; k < c->B; k++) {
        memcpy(c->points + k * c->P * 3, c->points + (n - 1) * c->P * 3, sizeof(float) * (size_t)(c->P * 3));
        c->labels[k] = c->labels[n - 1];
    }
    *n_out = n;
    return 0;
}

/* A NaN or infinity from the ViT (e.g. a NaN in its weights) must not be written as features.
 * One parallel pass finds whether there is any; only then the first is looked for, to name it. */
static int check_features_finite(const extract_ctx *c, long n, const long *samples, char *err)
{
    long D = vit_get_config(c->vit)->out_dim, gg = (long)c->grid * c->grid, V = c->V;
    const struct { const char *name; const float *v; long per_sample; } out[3] = {
        {"/patch", c->patch, V * gg * D}, {"/cls", c->cls, V * D}, {"/saliency", c->sal, V * gg}};
    int bad = 0;
    for (int k = 0; k < 3; k++) {
        const float *v = out[k].v;
        long len = n * out[k].per_sample;
#pragma omp parallel for simd reduction(| : bad) schedule(static)
        for (long i = 0; i < len; i++) bad |= !isfinite(v[i]);
    }
    if (!bad) return 0;
    for (int k = 0; k < 3; k++)
        for (long i = 0; i < n * out[k].per_sample; i++)
            if (!isfinite(out[k].v[i]))
                return errf(err, "%s: sample %ld: the ViT gave a non-finite value (%g) for %s "
                            "(NaN or infinite weights?)", c->o->output, samples[i / out[k].per_sample],
                            out[k].v[i], out[k].name);
    return 0;
}

static int run_micro_batch(extract_ctx *c, long mb, float *tokens, char *err)
{
    double t = now_s(), tv;
    long n = 0;
    int imgs = c->B * c->V;
    if (c->first || c->last) {
        if (read_micro_batch(c, mb, &n, err)) return -1;
        t = tick(&c->t.io_s, t);
    }
    if (c->first) {
        if (project_batch(c->points, c->B, c->P, c->V, c->S, c->images, c->last ? c->pixel : NULL,
                          c->depth, err))
            return -1;
        tv = now_s();
        if (vit_embed(c->vit, imgs, c->images, tokens, err)) return -1;
    } else {
        if (c->last && project_batch(c->points, c->B, c->P, c->V, c->S, NULL, c->pixel, NULL, err))
            return -1;
        tv = now_s();
    }
    if (vit_blocks(c->vit, imgs, c->blk_a, c->blk_b, tokens, c->last ? c->sal : NULL, err)) return -1;
    if (c->last && vit_head(c->vit, imgs, tokens, c->patch, c->cls, err)) return -1;
    tick(&c->t.vit_s, tv);
    if (c->last) {
        if (check_features_finite(c, n, c->todo + mb * c->B, err)) return -1;
        output_buffer_add(&c->out, n, c->todo + mb * c->B, c->patch, c->cls, c->sal, c->pixel, c->labels);
    }
    tick(&c->t.compute_s, t);
    return 0;
}

/* ---- control messages ---- */

static void send_control(extract_ctx *c, int value)
{
    if (c->first || c->ctrl_sent) return;
    c->ctrl_out = value;
    MPI_Isend(&c->ctrl_out, 1, MPI_INT, c->g->stage - 1, TAG_CONTROL, c->g->replica_comm, &c->ctrl_req);
    c->ctrl_sent = 1;
}

static void poll_control(extract_ctx *c, int block)
{
    if (c->last || c->ctrl_recvd) return;
    int flag = 1;
    if (!block) MPI_Iprobe(c->g->stage + 1, TAG_CONTROL, c->g->replica_comm, &flag, MPI_STATUS_IGNORE);
    if (!flag) return;
    MPI_Recv(&c->ctrl_in, 1, MPI_INT, c->g->stage + 1, TAG_CONTROL, c->g->replica_comm, MPI_STATUS_IGNORE);
    c->ctrl_recvd = 1;
    if (c->ctrl_in) {
        c->aborted = 1;
        send_control(c, 1);
    }
}

/* ---- the stream ---- */

static void post_recv(extract_ctx *c, long mb)
{
    int k = (int)(mb % NBUF);
    double t = now_s();
    MPI_Wait(&c->send_req[k], MPI_STATUS_IGNORE); /* the buffer's previous send */
    MPI_Irecv(c->buf[k], (int)(HDR_FLOATS + c->tok_floats), MPI_FLOAT, c->g->stage - 1, TAG_TOKENS,
              c->g->replica_comm, &c->recv_req[k]);
    tick(&c->t.comm_s, t);
}

/* After flush f (mb: the next micro-batch): 1 when the ranks voted after flush f-1 that a signal
 * came, so every rank stops here with its flushes (and their /done marks) on disk; then the
 * receive already posted for mb, which no stage will send, is cancelled. Else the next vote. */
static int preempt_after_flush(extract_ctx *c, long f, long mb)
{
    int stop = preempt_vote_end(&c->vote) && f + 1 < c->n_flush;
    if (stop && !c->first && mb < c->n_mb) {
        MPI_Request *q = &c->recv_req[mb % NBUF];
        MPI_Cancel(q);
        MPI_Wait(q, MPI_STATUS_IGNORE);
    }
    if (!stop && f + 1 < c->n_flush) preempt_vote_start(&c->vote, c->g->world);
    return stop;
}

/* Runs every micro-batch of this rank's stage; returns this rank's own error (-1) or 0 (with
 * c->stopped set when a signal stopped it after a flush). */
static int stream(extract_ctx *c, progress *pr, long total_todo, char *err)
{
    int rc = 0, io_failed = 0;
    long mb = 0;
    if (!c->first && c->n_mb > 0) post_recv(c, 0);
    for (long f = 0; f < c->n_flush; f++) {
        long end = (f + 1) * c->mb_per_flush < c->n_mb ? (f + 1) * c->mb_per_flush : c->n_mb;
        for (; mb < end; mb++) {
            int k = (int)(mb % NBUF);
            float *msg = c->buf[k];
            int skip = rc || c->aborted || io_failed;
            if (!c->first) {
                double t = now_s();
                MPI_Wait(&c->recv_req[k], MPI_STATUS_IGNORE);
                tick(&c->t.idle_s, t);
                skip |= msg[0] != 0.0f;
                if (mb + 1 < c->n_mb) post_recv(c, mb + 1);
            } else {
                double t = now_s();
                MPI_Wait(&c->send_req[k], MPI_STATUS_IGNORE);
                tick(&c->t.comm_s, t);
            }
            poll_control(c, 0);
            skip |= c->aborted;
            if (!skip && run_micro_batch(c, mb, msg + HDR_FLOATS, err)) {
                rc = -1;
                skip = 1;
                send_control(c, 1);
            }
            if (!c->last) {
                double t = now_s();
                msg[0] = skip ? 1.0f : 0.0f;
                MPI_Isend(msg, skip ? HDR_FLOATS : (int)(HDR_FLOATS + c->tok_floats), MPI_FLOAT,
                          c->g->stage + 1, TAG_TOKENS, c->g->replica_comm, &c->send_req[k]);
                tick(&c->t.comm_s, t);
            }
            if (c->g->rank == 0 && c->n_mb)
                progress_update(pr, (long)((double)(mb + 1) / (double)c->n_mb * (double)total_todo));
        }
        if (c->last && !io_failed) {
            double t = now_s();
            MPI_Barrier(c->io); /* waiting for the other replicas is imbalance, not I/O */
            t = tick(&c->t.idle_s, t);
            int wrc = output_buffer_flush(&c->out, &c->ff, &c->bytes, err);
            t = tick(&c->t.io_s, t);
            if (wrc) rc = -1;
            char err2[I2P_ERR_LEN];
            memcpy(err2, err, I2P_ERR_LEN);
            if (dist_any_error(c->io, wrc, err2)) { /* every last stage stops writing together */
                io_failed = 1;
                send_control(c, 1);
            }
            tick(&c->t.comm_s, t);
        }
        if (preempt_after_flush(c, f, mb)) {
            c->stopped = 1;
            break;
        }
    }
    return rc;
}

/* Ends the control protocol and waits for every request (idle: waiting for downstream). */
static void finish_stream(extract_ctx *c, int failed)
{
    double t = now_s();
    for (int k = 0; k < NBUF; k++) MPI_Wait(&c->send_req[k], MPI_STATUS_IGNORE);
    send_control(c, failed);
    poll_control(c, 1);
    if (c->ctrl_sent) MPI_Wait(&c->ctrl_req, MPI_STATUS_IGNORE);
    tick(&c->t.idle_s, t);
}

/* ---- the whole run ---- */

static int gather_times(extract_ctx *c, extract_result *res)
{
    res->me = c->t;
    double mine[5] = {c->t.compute_s, c->t.comm_s, c->t.idle_s, c->t.io_s, c->t.vit_s};
    double *all = NULL;
    if (c->g->rank == 0) all = malloc(sizeof(double) * 5 * (size_t)c->g->size);
    MPI_Gather(mine, 5, MPI_DOUBLE, all, 5, MPI_DOUBLE, 0, c->g->world);
    if (c->g->rank == 0 && all) {
        res->per_rank = malloc(sizeof(extract_times) * (size_t)c->g->size);
        for (int r = 0; res->per_rank && r < c->g->size; r++) {
            const double *a = all + 5 * r;
            res->per_rank[r] = (extract_times){a[0], a[1], a[2], a[3], a[4]};
        }
    }
    free(all);
    double b = c->bytes;
    MPI_Allreduce(&b, &res->bytes_written, 1, MPI_DOUBLE, MPI_SUM, c->g->world);
    return 0;
}

static int open_output(extract_ctx *c, const char *sha, uint8_t *done, output_state *state, char *err)
{
    char fp[17] = "";
    int rc = 0;
    if (c->last) {
        double t = now_s();
        features_meta m;
        rc = features_fingerprint(&c->ds, fp, err);
        if (!rc) {
            fill_meta(c, sha, fp, &m);
            rc = extract_output_open(&c->ff, c->o->output, c->io, &m, c->o->config_json, c->o->force,
                                     state, done, err);
            c->ff_open = !rc && *state != OUTPUT_COMPLETE;
        }
        tick(&c->t.io_s, t);
    }
    if (dist_any_error(c->g->world, rc, err)) return -1;
    /* the last stage of replica 0 (world rank stages-1) tells everyone what is done */
    int st = (int)*state;
    MPI_Bcast(&st, 1, MPI_INT, c->g->stages - 1, c->g->world);
    *state = (output_state)st;
    MPI_Bcast(done, (int)c->N, MPI_UNSIGNED_CHAR, c->g->stages - 1, c->g->world);
    return 0;
}

static int run(extract_ctx *c, extract_result *res, char *err)
{
    const dist_grid *g = c->g;
    double t_setup = now_s();
    dnn_ctx dnn;
    char sha[65] = "";
    int rc = dnn_ctx_create(&dnn, err);
    if (!rc) rc = load_model_and_data(c, &dnn, sha, err);
    if (dist_any_error(g->world, rc, err)) goto out;
    long a, n;
    dist_block_range(vit_get_config(c->vit)->depth, g->stages, g->stage, &a, &n);
    c->blk_a = (int)a;
    c->blk_b = (int)(a + n);
    res->samples = c->N;

    uint8_t *done = calloc((size_t)c->N, 1);
    output_state state = OUTPUT_CREATED;
    rc = done ? 0 : errf(err, "out of memory");
    if (dist_any_error(g->world, rc, err)) goto out;
    rc = open_output(c, sha, done, &state, err);
    if (rc) {
        free(done);
        goto out;
    }
    long skipped = 0;
    for (long i = 0; i < c->N; i++) skipped += done[i];
    res->skipped = skipped;
    if (state == OUTPUT_COMPLETE) {
        log_info("extract: %s is complete with this configuration: %ld samples skipped, nothing to do",
                 c->o->output, skipped);
        free(done);
        goto out;
    }
    if (state == OUTPUT_RESUMED)
        log_info("extract: resuming %s.partial: %ld of %ld samples already done, skipped",
                 c->o->output, skipped, c->N);
    rc = plan_work(c, done, err);
    free(done);
    if (!rc) rc = alloc_buffers(c, err);
    if (dist_any_error(g->world, rc, err)) goto out;
    for (int k = 0; k < NBUF; k++) c->send_req[k] = c->recv_req[k] = MPI_REQUEST_NULL;
    c->ctrl_req = MPI_REQUEST_NULL;
    c->vote.req = MPI_REQUEST_NULL;

    double t_stream = now_s();
    res->setup_s = t_stream - t_setup;
    progress pr;
    progress_start(&pr, "extract", "samples", c->N - skipped);
    rc = stream(c, &pr, c->N - skipped, err);
    finish_stream(c, rc != 0 || c->aborted);
    progress_finish(&pr);
    int failed = dist_any_error(g->world, rc, err);
    if (!failed && c->stopped) { /* the same on every rank */
        rc = PREEMPT_STOPPED; /* the .partial is kept below, its /done mask on disk */
        log_info("extract: stopped by a signal; %s.partial holds what is done", c->o->output);
    } else if (!failed) {
        res->extracted = c->N - skipped;
        rc = 0;
        if (c->last) {
            double t = now_s();
            rc = features_commit(&c->ff, err);
            c->ff_open = 0;
            tick(&c->t.io_s, t);
        }
        rc = dist_any_error(g->world, rc, err);
        res->stream_s = now_s() - t_stream;
    } else {
        rc = -1;
    }
out:
    if (c->ff_open) {
        features_close_partial(&c->ff); /* kept: re-running the command resumes */
        c->ff_open = 0;
    }
    gather_times(c, res);
    free_buffers(c);
    if (c->ds_open) dataset_close(&c->ds);
    if (c->vit) vit_free(c->vit);
    dnn_ctx_destroy(&dnn);
    return rc == PREEMPT_STOPPED ? rc : rc ? -1 : 0;
}

int extract_run(const extract_options *o, const dist_grid *g, extract_result *res, char *err)
{
    memset(res, 0, sizeof *res);
    extract_ctx c = {.o = o, .g = g, .V = o->views, .B = o->batch, .first = g->stage == 0,
                     .last = g->stage == g->stages - 1, .io = g->stage_comm};
    preempt_install(); /* stream() stops after a flush, with the .partial kept */
    return run(&c, res, err);
}
