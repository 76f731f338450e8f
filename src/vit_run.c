/* vit_run.c -- the 2D ViT over a file of images, rows written collectively (see vit_run.h). */
#include "vit_run.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "dnn.h"
#include "errors.h"
#include "h5io.h"
#include "log.h"

typedef struct {
    float *images, *tokens, *patch, *cls, *sal;
} vit_buffers;

static void buffers_free(vit_buffers *b)
{
    free(b->images);
    free(b->tokens);
    free(b->patch);
    free(b->cls);
    free(b->sal);
}

/* Checks /images against the model and creates the output datasets and attributes. */
static int open_files(const vit_run_options *a, vit_model *m, const char *sha, h5file *in, h5file *out,
                      long *n_images, char *err)
{
    const vit_config *c = vit_get_config(m);
    int rank = 0;
    hsize_t dims[H5IO_MAX_RANK];
    if (h5_open_read(in, a->input, MPI_COMM_WORLD, err)) return -1;
    if (h5_dims(in, "/images", &rank, dims, err)) return -1;
    if (rank != 4 || dims[1] != 3 || dims[2] != (hsize_t)c->image || dims[3] != (hsize_t)c->image)
        return errf(err, "%s: /images: shape must be (N, 3, %d, %d) for %s", a->input, c->image,
                    c->image, c->name);
    *n_images = (long)dims[0];
    if (h5_create(out, a->output, MPI_COMM_WORLD, a->force, err)) return -1;
    hsize_t g = (hsize_t)vit_grid(m), C = (hsize_t)c->out_dim, N = dims[0];
    hsize_t pd[3] = {N, g * g, C}, cd[2] = {N, C}, sd[3] = {N, g, g};
    if (h5_create_dataset(out, "/patch", H5T_IEEE_F32LE, 3, pd, NULL, 0, err) ||
        h5_create_dataset(out, "/cls", H5T_IEEE_F32LE, 2, cd, NULL, 0, err) ||
        h5_create_dataset(out, "/saliency", H5T_IEEE_F32LE, 3, sd, NULL, 0, err) ||
        h5_attr_write_str(out, "/", "model", c->name, err) ||
        h5_attr_write_str(out, "/", "spec", a->vit, err) ||
        h5_attr_write_str(out, "/", "weights_sha256", sha, err) ||
        h5_attr_write_str(out, "/", "precision", vit_get_precision(m) == VIT_BF16 ? "bf16" : "fp32", err))
        return -1;
    return 0;
}

/* The forward over this rank's block of images, in collective rounds of a->batch; adds this
 * rank's forward time to tm->forward_s and the steady figures (see vit_run_result). */
static int run_images(const vit_run_options *a, vit_model *m, h5file *in, h5file *out, long n_images,
                      vit_run_result *tm, char *err)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const vit_config *c = vit_get_config(m);
    const long B = a->batch, S = c->image, G = (long)vit_grid(m) * vit_grid(m), C = c->out_dim;
    long start, count, first_count, dummy;
    dist_block_range(n_images, size, rank, &start, &count);
    dist_block_range(n_images, size, 0, &dummy, &first_count);
    vit_buffers b = {malloc(sizeof(float) * (size_t)(B * 3 * S * S)),
                     malloc(sizeof(float) * (size_t)vit_token_floats(m, (int)B)),
                     malloc(sizeof(float) * (size_t)(B * G * C)), malloc(sizeof(float) * (size_t)(B * C)),
                     malloc(sizeof(float) * (size_t)(B * G))};
    int rc = b.images && b.tokens && b.patch && b.cls && b.sal ? 0
             : errf(err, "%s: out of memory for a batch of %ld images", a->output, B);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto done;
    progress pr;
    progress_start(&pr, "vit", "images", n_images);
    for (long off = 0; off < first_count; off += B) {
        long n = off >= count ? 0 : (count - off < B ? count - off : B);
        rc = h5_read_rows(in, "/images", H5T_NATIVE_FLOAT, start + off, n, b.images, err);
        if (!rc && n > 0) {
            double t0 = now_s();
            rc = vit_embed(m, (int)n, b.images, b.tokens, err);
            if (!rc) rc = vit_blocks(m, (int)n, 0, c->depth, b.tokens, b.sal, err);
            if (!rc) rc = vit_head(m, (int)n, b.tokens, b.patch, b.cls, err);
            double dt = now_s() - t0;
            tm->forward_s += dt;
            if (off > 0) {
                tm->steady_s += dt;
                tm->steady_n += n;
                if (n == B && (double)n / dt > tm->best_images_per_s) tm->best_images_per_s = (double)n / dt;
            }
        }
        if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto done;
        rc = h5_write_rows(out, "/patch", H5T_NATIVE_FLOAT, start + off, n, b.patch, err);
        if (!rc) rc = h5_write_rows(out, "/cls", H5T_NATIVE_FLOAT, start + off, n, b.cls, err);
        if (!rc) rc = h5_write_rows(out, "/saliency", H5T_NATIVE_FLOAT, start + off, n, b.sal, err);
        if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto done;
        progress_update(&pr, (long)((double)(off + n) / (double)(count ? count : 1) * (double)n_images));
    }
    pr.done = n_images;
    progress_finish(&pr);
done:
    buffers_free(&b);
    return rc ? -1 : 0;
}

int vit_run_images(const vit_run_options *a, vit_run_result *r, char *err)
{
    memset(r, 0, sizeof *r);
    double t0 = now_s();
    dnn_ctx ctx = {0};
    vit_model *m = NULL;
    h5file in = {.file = -1}, out = {.file = -1}; /* h5_close / h5_abort are safe on these */
    int rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = vit_load(&m, a->vit, a->precision, &ctx, r->weights_sha256, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;
    r->load_s = now_s() - t0;
    rc = open_files(a, m, r->weights_sha256, &in, &out, &r->images, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;
    double forward_s = 0;
    if (run_images(a, m, &in, &out, r->images, r, err)) goto fail;
    forward_s = r->forward_s;
    h5_close(&in);
    rc = h5_commit(&out, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;
    MPI_Reduce(&forward_s, &r->forward_s, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    const vit_config *c = vit_get_config(m);
    snprintf(r->model, sizeof r->model, "%s", c->name);
    r->precision = vit_get_precision(m) == VIT_BF16 ? "bf16" : "fp32";
    r->grid = vit_grid(m);
    r->out_dim = c->out_dim;
    vit_free(m);
    dnn_ctx_destroy(&ctx);
    r->seconds = now_s() - t0;
    return 0;
fail:
    h5_close(&in);
    h5_abort(&out);
    vit_free(m);
    dnn_ctx_destroy(&ctx);
    return -1;
}
