/* cli_vit.c -- `i2pmae vit`: run the 2D ViT on a file of images, to check weights and to feed the
 * reference tests. Input /images (N,3,S,S) float32, already normalised. Output /patch (N,G,C),
 * /cls (N,C), /saliency (N,g,g) float32 with attributes model, weights_sha256, precision, spec.
 * Ranks take contiguous blocks of images and write their rows collectively, --batch at a time.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "dist.h"
#include "dnn.h"
#include "errors.h"
#include "h5io.h"
#include "log.h"
#include "summary.h"
#include "vit.h"

typedef struct {
    char vit[CLI_STR_LEN], input[CLI_STR_LEN], output[CLI_STR_LEN], precision[CLI_STR_LEN];
    int batch, force;
} vit_args;

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
static int open_files(const vit_args *a, vit_model *m, const char *sha, h5file *in, h5file *out,
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

/* The forward over this rank's block of images, in collective rounds of --batch. */
/* Forward timing of this rank: all batches, and the batches after the first (which builds the
 * primitives): their sum and the best images/s of one batch (robust on a shared machine). */
typedef struct {
    double forward_s, steady_s, best_images_per_s;
    long steady_n;
} vit_timing;

static int run_images(const vit_args *a, vit_model *m, h5file *in, h5file *out, long n_images,
                      vit_timing *tm, char *err)
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

int cmd_vit(int argc, char **argv)
{
    vit_args a = {.batch = 8};
    snprintf(a.precision, sizeof a.precision, "fp32");
    const cli_opt opts[] = {
        {"vit", OPT_STRING, a.vit, "SPEC", "clip-b16:FILE, timm-b16:FILE, clip:FILE, timm:FILE, random:tiny, random:base"},
        {"input", OPT_STRING, a.input, "FILE", "HDF5 file with /images (N,3,S,S) float32, normalised"},
        {"output", OPT_STRING, a.output, "FILE", "output HDF5 file (/patch, /cls, /saliency)"},
        {"batch", OPT_INT, &a.batch, "B", "images per forward"},
        {"precision", OPT_STRING, a.precision, "P", "fp32 or bf16 (bf16 falls back to fp32 where unsupported)"},
        {"force", OPT_FLAG, &a.force, NULL, "replace the output file if it exists"},
    };
    const cli_cmd cmd = {
        "vit", "run the 2D ViT on images (check weights; patch features, CLS, saliency)",
        "i2pmae vit --vit SPEC --input IMAGES.h5 -o OUT.h5 [--batch B] [--precision fp32|bf16] [--force]",
        "Runs the frozen 2D model on /images and writes /patch (N, grid*grid, C): the last block's\n"
        "tokens after the final norm (and CLIP's visual projection), /cls (N, C) and /saliency\n"
        "(N, grid, grid): the last block's CLS-row attention over the patches, averaged over heads.\n"
        "Weights: docs/vit.md.",
        opts, (int)(sizeof opts / sizeof opts[0]), 0};
    int rank = 0, size = 1;
    cli_common common;
    int started = cmd_start(&cmd, argc, argv, &common, &rank, &size);
    if (started) return started > 0 ? 0 : 2;
    char err[I2P_ERR_LEN];
    int rc = 0;
    if (!rc && !a.vit[0]) rc = errf(err, "vit: --vit SPEC is required");
    if (!rc && !a.input[0]) rc = errf(err, "vit: --input FILE is required");
    if (!rc && !a.output[0]) rc = errf(err, "vit: -o FILE is required");
    if (!rc && a.batch < 1) rc = errf(err, "--batch %d: must be at least 1", a.batch);
    if (!rc && strcmp(a.precision, "fp32") && strcmp(a.precision, "bf16"))
        rc = errf(err, "--precision '%s': must be fp32 or bf16", a.precision);
    if (rc) {
        if (rank == 0) log_error("%s", err);
        return 2;
    }
    log_set_verbose(common.verbose);

    double t0 = now_s();
    vit_timing tm = {0};
    dnn_ctx ctx = {0};
    vit_model *m = NULL;
    h5file in = {.file = -1}, out = {.file = -1}; /* h5_close / h5_abort are safe on these */
    long n_images = 0;
    char sha[65] = "";
    rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = vit_load(&m, a.vit, strcmp(a.precision, "bf16") ? VIT_FP32 : VIT_BF16, &ctx, sha, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;
    double load_s = now_s() - t0;
    rc = open_files(&a, m, sha, &in, &out, &n_images, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;
    if (run_images(&a, m, &in, &out, n_images, &tm, err)) goto fail;
    h5_close(&in);
    rc = h5_commit(&out, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;

    double total_forward_s = 0;
    MPI_Reduce(&tm.forward_s, &total_forward_s, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    const vit_config *c = vit_get_config(m);
    log_info("vit: wrote %s: %ld images, patch (%ld, %d, %d), saliency %dx%d", a.output, n_images,
             n_images, vit_grid(m) * vit_grid(m), c->out_dim, vit_grid(m), vit_grid(m));
    cJSON *s = summary_begin("vit", size);
    cJSON_AddStringToObject(s, "model", c->name);
    cJSON_AddStringToObject(s, "weights_sha256", sha);
    cJSON_AddStringToObject(s, "precision", vit_get_precision(m) == VIT_BF16 ? "bf16" : "fp32");
    cJSON_AddStringToObject(s, "output", a.output);
    cJSON_AddNumberToObject(s, "images", (double)n_images);
    cJSON_AddNumberToObject(s, "batch", a.batch);
    cJSON_AddNumberToObject(s, "load_s", load_s);
    cJSON_AddNumberToObject(s, "forward_s", total_forward_s);
    cJSON_AddNumberToObject(s, "seconds", now_s() - t0);
    cJSON_AddNumberToObject(s, "images_per_s", total_forward_s > 0 ? (double)n_images / total_forward_s : 0.0);
    /* rank 0, batches after its first (null with a single batch) */
    if (tm.steady_n > 0) {
        cJSON_AddNumberToObject(s, "steady_images_per_s", (double)tm.steady_n / tm.steady_s);
        cJSON_AddNumberToObject(s, "best_batch_images_per_s", tm.best_images_per_s);
    } else {
        cJSON_AddNullToObject(s, "steady_images_per_s");
        cJSON_AddNullToObject(s, "best_batch_images_per_s");
    }
    summary_emit(s, rank);
    vit_free(m);
    dnn_ctx_destroy(&ctx);
    return 0;
fail:
    if (rank == 0) log_error("%s", err);
    h5_close(&in);
    h5_abort(&out);
    vit_free(m);
    dnn_ctx_destroy(&ctx);
    return 1;
}
