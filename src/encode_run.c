/* encode_run.c -- features of every cloud with the frozen encoder (see encode.h). */
#include "encode.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "interop.h"
#include "log.h"
#include "model3d.h"

/* The checkpoint's configuration; options given must agree with it, except points and
 * fps-skip-origin (no parameter depends on them). */
static int encode_config(const encode_options *o, model3d_config *cfg, char *err)
{
    if (interop_checkpoint_config(o->checkpoint, cfg, NULL, err)) return -1;
    model_opts arch = *o->model, free_opts = {0};
    model_opts_clear(&arch, "points");
    model_opts_clear(&arch, "fps-skip-origin");
    model_opts_clear(&arch, "mask-ratio");
    model_opts_clear(&arch, "drop-path");
    if (model_opts_check_against(&arch, cfg, o->checkpoint, err)) return -1;
    model_opts_set(&free_opts, "points", model_opts_get(o->model, "points"));
    model_opts_set(&free_opts, "fps-skip-origin", model_opts_get(o->model, "fps-skip-origin"));
    if (model_opts_apply(&free_opts, cfg, err)) return -1;
    return model3d_config_check(cfg, err);
}

/* The identity a partial file must share to be resumed: checkpoint, input, configuration, tokens. */
static void identity(const encode_options *o, const model3d_config *c, char *out, size_t n)
{
    cJSON *j = model3d_config_to_json(c);
    char *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    snprintf(out, n, "checkpoint=%s input=%s tokens=%d model=%s", o->checkpoint, o->input, o->tokens,
             json ? json : "?");
    free(json);
}

static int create_output(h5file *out, const encode_options *o, const model3d_config *c, long n,
                         const char *ident, int *opened, char *err)
{
    if (h5_create(out, o->output, MPI_COMM_WORLD, o->force, err)) return -1;
    *opened = 1;
    long C = c->dims[2], G = c->groups[2];
    hsize_t d2[2] = {(hsize_t)n, (hsize_t)C}, d1[1] = {(hsize_t)n};
    hsize_t ch2[2] = {(hsize_t)(n < 256 ? (n ? n : 1) : 256), (hsize_t)C}, ch1[1] = {ch2[0]};
    int rc = h5_create_dataset(out, "/global_max", H5T_IEEE_F32LE, 2, d2, ch2, 1, err) ||
             h5_create_dataset(out, "/global_mean", H5T_IEEE_F32LE, 2, d2, ch2, 1, err) ||
             h5_create_dataset(out, "/label", H5T_STD_I32LE, 1, d1, ch1, 1, err) ||
             h5_create_dataset(out, "/done", H5T_STD_U8LE, 1, d1, ch1, 1, err);
    if (!rc && o->tokens) {
        hsize_t dt[3] = {(hsize_t)n, (hsize_t)G, (hsize_t)C}, ct[3] = {ch2[0] < 16 ? ch2[0] : 16, (hsize_t)G, (hsize_t)C};
        hsize_t dc[3] = {(hsize_t)n, (hsize_t)G, 3}, cc[3] = {ct[0], (hsize_t)G, 3};
        rc = h5_create_dataset(out, "/tokens", H5T_IEEE_F32LE, 3, dt, ct, 1, err) ||
             h5_create_dataset(out, "/centres", H5T_IEEE_F32LE, 3, dc, cc, 1, err);
    }
    cJSON *j = model3d_config_to_json(c);
    char *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!rc) rc = h5_attr_write_str(out, "/", "checkpoint", o->checkpoint, err) ||
                  h5_attr_write_str(out, "/", "input", o->input, err) ||
                  h5_attr_write_long(out, "/", "points", c->points, err) ||
                  h5_attr_write_str(out, "/", "model", json ? json : "{}", err) ||
                  h5_attr_write_str(out, "/", "identity", ident, err);
    free(json);
    return rc ? -1 : 0;
}

/* Opens the output: a <out>.partial of the same identity is resumed (done receives its /done
 * flags), otherwise a new file is created. *opened = 1 when out is open. */
static int open_output(h5file *out, const encode_options *o, const model3d_config *c, long n, uint8_t *done,
                       int *opened, long *resumed, char *err)
{
    char ident[4096], have[4096];
    identity(o, c, ident, sizeof ident);
    memset(done, 0, (size_t)n);
    *opened = 0;
    *resumed = 0;
    if (!o->force) {
        int r = h5_open_partial(out, o->output, MPI_COMM_WORLD, err);
        if (r < 0) return -1;
        if (r == 1) {
            int rc = h5_attr_read_str(out, "/", "identity", have, sizeof have, err);
            if (!rc && strcmp(have, ident))
                rc = errf(err, "%s.partial: left by another run (%.300s); use --force to start over", o->output, have);
            if (!rc) rc = h5_read_all(out, "/done", H5T_NATIVE_UINT8, done, err);
            if (rc) { /* not ours to delete */
                h5_close(out);
                return -1;
            }
            *opened = 1;
            for (long i = 0; i < n; i++) *resumed += done[i] != 0;
            return 0;
        }
    }
    return create_output(out, o, c, n, ident, opened, err);
}

int encode_run(const encode_options *o, encode_result *r, char *err)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    memset(r, 0, sizeof *r);
    double t0 = MPI_Wtime();
    model3d_config cfg;
    if (encode_config(o, &cfg, err)) return -1;
    dataset d;
    if (dataset_open(&d, o->input, MPI_COMM_WORLD, err)) return -1;
    int rc = d.points < cfg.points
                 ? errf(err, "%s: %ld points per sample, the model takes %d", o->input, d.points, cfg.points)
                 : 0;
    dnn_ctx ctx = {0};
    model3d *m = NULL;
    if (!rc) rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = model3d_create(&m, &cfg, (int)o->batch, 1, &ctx, err);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc)
        rc = ckpt_read_network(o->checkpoint, MPI_COMM_WORLD, model3d_params(m), model3d_n_params(m),
                               model3d_buffers(m), model3d_n_buffers(m), NULL, err);
    h5file out;
    int opened = 0;
    uint8_t *done = malloc((size_t)(d.n ? d.n : 1));
    if (!rc && !done) rc = errf(err, "out of memory");
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc) rc = open_output(&out, o, &cfg, d.n, done, &opened, &r->resumed, err);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc && r->resumed) log_info("encode: resuming %s.partial: %ld of %ld samples done", o->output, r->resumed, d.n);
    long B = o->batch, P = d.points, Pm = cfg.points, C = cfg.dims[2], G = cfg.groups[2];
    long start, count, dummy, largest;
    dist_block_range(d.n, size, rank, &start, &count);
    dist_block_range(d.n, size, 0, &dummy, &largest);
    float *raw = NULL, *pts = NULL, *gmax = NULL, *gmean = NULL, *tok = NULL, *ctr = NULL;
    int32_t *lab = NULL;
    uint8_t *ones = NULL;
    if (!rc) {
        raw = malloc(sizeof(float) * (size_t)(B * P * 3));
        pts = malloc(sizeof(float) * (size_t)(B * Pm * 3));
        gmax = malloc(sizeof(float) * (size_t)(B * C));
        gmean = malloc(sizeof(float) * (size_t)(B * C));
        lab = malloc(sizeof(int32_t) * (size_t)B);
        ones = malloc((size_t)B);
        if (ones) memset(ones, 1, (size_t)B);
        if (o->tokens) {
            tok = malloc(sizeof(float) * (size_t)(B * G * C));
            ctr = malloc(sizeof(float) * (size_t)(B * G * 3));
        }
        if (!raw || !pts || !gmax || !gmean || !lab || !ones || (o->tokens && (!tok || !ctr)))
            rc = errf(err, "out of memory for a batch of %ld samples", B);
    }
    progress pr;
    progress_start(&pr, "encode", "samples", d.n);
    for (long off = 0; off < largest && !dist_any_error(MPI_COMM_WORLD, rc, err); off += B) {
        long nb = off >= count ? 0 : (count - off < B ? count - off : B);
        int all_done = 1; /* a batch done in an earlier run is skipped (a partly done one redone) */
        for (long i = 0; i < nb; i++) all_done &= done[start + off + i] != 0;
        if (all_done) nb = 0;
        rc = dataset_read(&d, start + off, nb, raw, lab, err);
        for (long b = 0; !rc && b < nb; b++) /* the first Pm points of each sample */
            memcpy(pts + b * Pm * 3, raw + b * P * 3, sizeof(float) * (size_t)(Pm * 3));
        if (!rc && nb) rc = model3d_encode(m, (int)nb, pts, gmax, gmean, tok, ctr, err);
        for (long i = 0; !rc && i < nb * C; i++)
            if (!isfinite(gmax[i]) || !isfinite(gmean[i]))
                rc = errf(err, "%s: sample %ld: the encoder gave a non-finite feature", o->input, start + off + i / C);
        if (dist_any_error(MPI_COMM_WORLD, rc, err)) break;
        rc = h5_write_rows(&out, "/global_max", H5T_NATIVE_FLOAT, start + off, nb, gmax, err) ||
             h5_write_rows(&out, "/global_mean", H5T_NATIVE_FLOAT, start + off, nb, gmean, err) ||
             h5_write_rows(&out, "/label", H5T_NATIVE_INT32, start + off, nb, lab, err);
        if (!rc && o->tokens)
            rc = h5_write_rows(&out, "/tokens", H5T_NATIVE_FLOAT, start + off, nb, tok, err) ||
                 h5_write_rows(&out, "/centres", H5T_NATIVE_FLOAT, start + off, nb, ctr, err);
        /* the rows are marked done after their features, and flushed: a kill keeps them */
        if (!rc) rc = h5_write_rows(&out, "/done", H5T_NATIVE_UINT8, start + off, nb, ones, err) ||
                      h5_flush(&out, err);
        long local = off + nb, all = 0;
        MPI_Allreduce(&local, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
        progress_update(&pr, all);
    }
    progress_finish(&pr);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (opened) {
        if (!rc) rc = h5_commit(&out, err);
        else h5_abort(&out);
    }
    free(raw);
    free(pts);
    free(gmax);
    free(gmean);
    free(lab);
    free(tok);
    free(ctr);
    free(ones);
    free(done);
    model3d_free(m);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    dataset_close(&d);
    r->samples = d.n;
    r->dim = (int)C;
    r->groups = (int)G;
    r->points = (int)Pm;
    r->seconds = MPI_Wtime() - t0;
    return rc;
}
