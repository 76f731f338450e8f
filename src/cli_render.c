/* cli_render.c -- `i2pmae render`: a PNG of one sample's depth maps (one row per view) and, given a
 * features file, its saliency overlaid, so users see what the 2D model sees.
 *
 * Rank 0 does the work (one sample is small); the other ranks only agree on the outcome.
 * --dump FILE.h5 also writes the exact arrays the ViT would get (/depth (V,S,S) raw depth sums,
 * /image (V,3,S,S) normalised, /pixel (V,P,2)); the projection tests compare it with numpy.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "bicubic.h"
#include "cli.h"
#include "commands.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "features_file.h"
#include "h5io.h"
#include "log.h"
#include "png_write.h"
#include "project.h"
#include "summary.h"

#define GAP_PX 4

typedef struct {
    char input[CLI_STR_LEN], output[CLI_STR_LEN], features[CLI_STR_LEN], dump[CLI_STR_LEN];
    long sample;
    int views, image, force;
} render_args;

typedef struct {
    long P;
    int V, S;
    float *points, *depth, *image, *saliency; /* saliency (V,g,g) or NULL */
    int16_t *pixel;
    int grid;
} render_data;

static void render_data_free(render_data *r)
{
    free(r->points);
    free(r->depth);
    free(r->image);
    free(r->saliency);
    free(r->pixel);
}

/* grey level of a depth-sum pixel: black where empty, 40..255 over the occupied range */
static uint8_t depth_grey(float d, float lo, float hi)
{
    if (d == 0.0f) return 0;
    float t = hi > lo ? (d - lo) / (hi - lo) : 1.0f;
    return (uint8_t)(40.0f + 215.0f * t + 0.5f);
}

/* "hot" colour ramp: black -> red -> yellow -> white */
static void hot(float t, float rgb[3])
{
    rgb[0] = fminf(1.0f, 3.0f * t);
    rgb[1] = fminf(1.0f, fmaxf(0.0f, 3.0f * t - 1.0f));
    rgb[2] = fminf(1.0f, fmaxf(0.0f, 3.0f * t - 2.0f));
}

static void draw_view(const render_data *r, int v, uint8_t *canvas, int width)
{
    const int S = r->S;
    const float *d = r->depth + (long)v * S * S;
    float lo = INFINITY, hi = -INFINITY;
    for (long i = 0; i < (long)S * S; i++)
        if (d[i] != 0.0f) {
            lo = fminf(lo, d[i]);
            hi = fmaxf(hi, d[i]);
        }
    float smax = 0.0f;
    const float *sal = r->saliency ? r->saliency + (long)v * r->grid * r->grid : NULL;
    for (int i = 0; sal && i < r->grid * r->grid; i++) smax = fmaxf(smax, sal[i]);
    int y0 = v * (S + GAP_PX);
    for (int y = 0; y < S; y++) {
        for (int x = 0; x < S; x++) {
            uint8_t gval = depth_grey(d[(long)y * S + x], lo, hi);
            uint8_t *px = canvas + ((long)(y0 + y) * width + x) * 3;
            px[0] = px[1] = px[2] = gval;
            if (!sal) continue;
            float t = smax > 0 ? bicubic_sample1(sal, r->grid, S, y, x) / smax : 0.0f;
            float c[3];
            hot(fminf(1.0f, fmaxf(0.0f, t)), c);
            uint8_t *q = px + (S + GAP_PX) * 3;
            for (int k = 0; k < 3; k++) q[k] = (uint8_t)(0.35f * gval + 0.65f * 255.0f * c[k] + 0.5f);
        }
    }
}

static int write_picture(const render_args *a, const render_data *r, char *err)
{
    int cols = r->saliency ? 2 : 1;
    int width = cols * r->S + (cols - 1) * GAP_PX, height = r->V * r->S + (r->V - 1) * GAP_PX;
    uint8_t *canvas = malloc((size_t)width * height * 3);
    if (!canvas) return errf(err, "%s: out of memory for a %dx%d picture", a->output, width, height);
    memset(canvas, 64, (size_t)width * height * 3); /* dark grey gaps */
    for (int v = 0; v < r->V; v++) draw_view(r, v, canvas, width);
    int rc = png_write_rgb(a->output, width, height, canvas, err);
    free(canvas);
    return rc;
}

static int write_dump(const render_args *a, const render_data *r, char *err)
{
    h5file f;
    if (h5_create(&f, a->dump, MPI_COMM_SELF, a->force, err)) return -1;
    hsize_t V = (hsize_t)r->V, S = (hsize_t)r->S;
    int rc = h5_write_small(&f, "/depth", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, (hsize_t[]){V, S, S},
                            r->depth, err) ||
             h5_write_small(&f, "/image", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4,
                            (hsize_t[]){V, 3, S, S}, r->image, err) ||
             h5_write_small(&f, "/pixel", H5T_STD_I16LE, H5T_NATIVE_INT16, 3,
                            (hsize_t[]){V, (hsize_t)r->P, 2}, r->pixel, err) ||
             h5_commit(&f, err);
    if (rc) h5_abort(&f);
    return rc ? -1 : 0;
}

static int load_saliency(const render_args *a, dataset *d, render_data *r, char *err)
{
    features_file ff;
    if (features_open(&ff, a->features, MPI_COMM_SELF, err)) return -1;
    int rc = features_check_dataset(&ff, d, 1, err);
    if (!rc && ff.m.image != r->S)
        rc = errf(err, "%s: made for %dx%d images, render uses %d", a->features, ff.m.image,
                  ff.m.image, r->S);
    if (!rc) {
        r->V = ff.m.views;
        r->grid = ff.m.grid;
        r->saliency = malloc(sizeof(float) * (size_t)r->V * r->grid * r->grid);
        rc = r->saliency ? features_read_saliency(&ff, &a->sample, 1, r->saliency, err)
                         : errf(err, "%s: out of memory", a->features);
    }
    features_close(&ff);
    return rc;
}

static int render_on_rank0(const render_args *a, char *err)
{
    dataset d;
    if (dataset_open(&d, a->input, MPI_COMM_SELF, err)) return -1;
    render_data r = {.P = d.points, .V = a->views, .S = a->image};
    int rc = 0;
    if (a->sample < 0 || a->sample >= d.n)
        rc = errf(err, "--sample %ld: %s has samples 0..%ld", a->sample, a->input, d.n - 1);
    if (!rc && a->features[0]) rc = load_saliency(a, &d, &r, err);
    if (!rc) {
        long SS = (long)r.S * r.S;
        r.points = malloc(sizeof(float) * (size_t)r.P * 3);
        r.depth = malloc(sizeof(float) * (size_t)(r.V * SS));
        r.image = malloc(sizeof(float) * (size_t)(r.V * 3 * SS));
        r.pixel = malloc(sizeof(int16_t) * (size_t)(r.V * r.P * 2));
        if (!r.points || !r.depth || !r.image || !r.pixel) rc = errf(err, "%s: out of memory", a->input);
    }
    if (!rc) rc = dataset_read(&d, a->sample, 1, r.points, NULL, err);
    dataset_close(&d);
    if (!rc) rc = project_batch(r.points, 1, r.P, r.V, r.S, r.image, r.pixel, r.depth, err);
    if (!rc && a->dump[0]) rc = write_dump(a, &r, err);
    if (!rc) rc = write_picture(a, &r, err);
    render_data_free(&r);
    return rc;
}

int cmd_render(int argc, char **argv)
{
    render_args a = {.sample = 0, .views = 3, .image = 224};
    const cli_opt opts[] = {
        {"input", OPT_STRING, a.input, "FILE", "point-cloud dataset (canonical, ModelNet40 or ScanObjectNN h5)"},
        {"sample", OPT_LONG, &a.sample, "I", "index of the sample to draw"},
        {"output", OPT_STRING, a.output, "PNG", "picture to write"},
        {"features", OPT_STRING, a.features, "FILE", "features file of this dataset: overlay its saliency"},
        {"views", OPT_INT, &a.views, "V", "views to draw (1..3; a features file sets its own)"},
        {"image", OPT_INT, &a.image, "S", "depth-map side in pixels"},
        {"dump", OPT_STRING, a.dump, "FILE", "also write /depth, /image (the ViT input) and /pixel to this HDF5 file"},
        {"force", OPT_FLAG, &a.force, NULL, "replace the --dump file if it exists"},
    };
    const cli_cmd cmd = {
        "render", "draw a sample's depth maps (and saliency) as a PNG",
        "i2pmae render --input DATA.h5 --sample I -o X.png [--features FEAT.h5]",
        "One row per view (views permute the axes: (x,y,z), (z,x,y), (y,z,x)). Left: the depth map\n"
        "(scatter-summed depth, black where empty). Right, with --features: the saliency of the 2D\n"
        "model (bicubic-upsampled CLS attention) over it, black-red-yellow-white.",
        opts, (int)(sizeof opts / sizeof opts[0]), 0};
    int rank = 0, size = 1;
    cli_common common;
    int started = cmd_start(&cmd, argc, argv, &common, &rank, &size);
    if (started) return started > 0 ? 0 : 2;
    char err[I2P_ERR_LEN];
    int rc = 0;
    if (!rc && !a.input[0]) rc = errf(err, "render: --input FILE is required");
    if (!rc && !a.output[0]) rc = errf(err, "render: -o PNG is required");
    if (!rc && (a.views < 1 || a.views > PROJECT_MAX_VIEWS))
        rc = errf(err, "--views %d: must be 1..%d", a.views, PROJECT_MAX_VIEWS);
    if (!rc && (a.image < PROJECT_MIN_IMAGE || a.image > 4096))
        rc = errf(err, "--image %d: must be %d..4096", a.image, PROJECT_MIN_IMAGE);
    if (rc) {
        if (rank == 0) log_error("%s", err);
        return 2;
    }
    log_set_verbose(common.verbose);
    double t0 = now_s();
    rc = rank == 0 ? render_on_rank0(&a, err) : 0;
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) {
        if (rank == 0) log_error("%s", err);
        return 1;
    }
    log_info("render: wrote %s (sample %ld)", a.output, a.sample);
    cJSON *s = summary_begin("render", size);
    cJSON_AddStringToObject(s, "output", a.output);
    cJSON_AddNumberToObject(s, "sample", (double)a.sample);
    cJSON_AddNumberToObject(s, "seconds", now_s() - t0);
    summary_emit(s, rank);
    return 0;
}
