/* cli_convert.c -- `i2pmae convert`: real dataset layouts -> the canonical point-cloud file.
 *
 * Every rank scans the input (convert_source_open), then ranks split the samples into contiguous
 * blocks, load and reduce them in rounds of --batch samples, and write each round collectively
 * (dataset_write_blocks). Errors of any rank are agreed on after every phase, so no rank waits.
 */
#include <mpi.h>
#include <string.h>

#include "commands.h"
#include "convert_shapenetpart.h"
#include "convert_source.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "paths.h"
#include "log.h"

typedef struct {
    char format[CLI_STR_LEN], input[CLI_STR_LEN], output[CLI_STR_LEN], split[CLI_STR_LEN];
    char subsample[CLI_STR_LEN];
    long points, seed, batch;
    int force;
    long n_out, points_out; /* what was written */
    double seconds;
} convert_state;

static int options(void *state, cli_opt *opts)
{
    convert_state *a = state;
    *a = (convert_state){.split = "train", .subsample = "auto", .points = 0, .seed = 1, .batch = 64};
    const cli_opt own[] = {
        {"format", OPT_STRING, a->format, "F", "input layout: modelnet40, scanobjectnn, shapenet55, off, shapenetpart"},
        {"input", OPT_STRING, a->input, "PATH", "input directory (modelnet40, shapenet55, off) or .h5 file (scanobjectnn)"},
        {"output", OPT_STRING, a->output, "FILE", "output HDF5 file (canonical point-cloud layout)"},
        {"points", OPT_LONG, &a->points, "N", "points per sample (0: all the source has; OFF: 2048)"},
        {"split", OPT_STRING, a->split, "S", "train or test (modelnet40, shapenet55, off); shapenetpart also val, trainval"},
        {"subsample", OPT_STRING, a->subsample, "M", "how to reduce to --points: first, fps, or auto (h5: first, npy: fps)"},
        {"seed", OPT_LONG, &a->seed, "S", "seed of the OFF surface sampling (mesh i uses stream i)"},
        {"force", OPT_FLAG, &a->force, NULL, "replace FILE if it exists"},
        {"batch", OPT_LONG, &a->batch, "B", "samples per rank per collective write"},
    };
    return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
}

static int check(void *state, char *err)
{
    convert_state *a = state;
    if (!a->format[0]) return errf(err, "convert: --format is required (modelnet40, scanobjectnn, shapenet55, off)");
    if (!a->input[0]) return errf(err, "convert: --input PATH is required");
    if (!a->output[0]) return errf(err, "convert: -o FILE is required");
    if (path_is_input(a->output, "-o", a->input, "--input", err)) return -1;
    int parts = !strcmp(a->format, "shapenetpart");
    if (parts && strcmp(a->split, "train") && strcmp(a->split, "test") && strcmp(a->split, "val") &&
        strcmp(a->split, "trainval"))
        return errf(err, "--split %s: must be train, val, test or trainval (shapenetpart)", a->split);
    if (!parts && strcmp(a->split, "train") && strcmp(a->split, "test"))
        return errf(err, "--split %s: must be train or test", a->split);
    if (a->points < 0) return errf(err, "--points %ld: must be >= 0", a->points);
    if (a->batch < 1) return errf(err, "--batch %ld: must be at least 1", a->batch);
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    if (!strcmp(a->subsample, "auto")) {
        /* The h5 releases are already uniform samples and the reference loaders take their first
         * N points (i2pmae-spec.md: SVM data); npy clouds are reduced by farthest point sampling. */
        snprintf(a->subsample, CLI_STR_LEN, "%s", strcmp(a->format, "shapenet55") ? "first" : "fps");
    }
    if (strcmp(a->subsample, "first") && strcmp(a->subsample, "fps"))
        return errf(err, "--subsample %s: must be auto, first or fps", a->subsample);
    return 0;
}

/* Output points per sample; errors if more are asked than the source has. */
static int output_points(const convert_source *s, const convert_state *a, long *P_out, char *err)
{
    if (s->format == FMT_OFF) {
        *P_out = a->points ? a->points : 2048;
        return 0;
    }
    if (s->points < 1) return errf(err, "%s: clouds have zero points", a->input);
    if (a->points > s->points)
        return errf(err, "--points %ld: the source clouds have only %ld points", a->points, s->points);
    *P_out = a->points ? a->points : s->points;
    return 0;
}

typedef struct {
    convert_source *src;
    const convert_state *a;
    long P;
} convert_fill_ctx;

static int convert_fill(void *user, long start, long count, float *points, int32_t *labels, char *err)
{
    const convert_fill_ctx *c = user;
    return convert_source_load(c->src, start, count, c->P, !strcmp(c->a->subsample, "fps"),
                               (uint64_t)c->a->seed, points, labels, err);
}

/* Creates the output with its provenance attributes, writes every sample, commits. */
static int convert_write(convert_source *s, const convert_state *a, long P, char *err)
{
    dataset_writer w;
    int rc = dataset_writer_create(&w, a->output, MPI_COMM_WORLD, s->n, P, s->n_classes,
                                   s->class_names, s->source_name, a->force, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) return -1;
    rc = h5_attr_write_str(&w.f, "/", "input", a->input, err) ||
         h5_attr_write_str(&w.f, "/", "split", a->split, err) ||
         h5_attr_write_str(&w.f, "/", "subsample", s->format == FMT_OFF ? "surface" : a->subsample, err) ||
         h5_attr_write_long(&w.f, "/", "seed", a->seed, err) ? -1 : 0;
    convert_fill_ctx ctx = {s, a, P};
    if (dist_any_error(MPI_COMM_WORLD, rc, err) ||
        dataset_write_blocks(&w, a->batch, "convert", convert_fill, &ctx, err)) {
        dataset_writer_abort(&w);
        return -1;
    }
    return dataset_writer_commit(&w, err);
}

typedef struct {
    const shapenetpart_source *src;
    const convert_state *a;
    long P;
} parts_fill_ctx;

static int parts_fill(void *user, long start, long count, float *points, int32_t *labels, int32_t *seg,
                      char *err)
{
    const parts_fill_ctx *c = user;
    return shapenetpart_load(c->src, start, count, c->P, (uint64_t)c->a->seed, points, labels, seg, err);
}

/* ShapeNetPart: the canonical file plus /seg and the part attributes (dataset.h). */
static int run_shapenetpart(convert_state *a, char *err)
{
    shapenetpart_source s;
    int rc = shapenetpart_open(&s, a->input, a->split, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) return -1;
    long P = a->points ? a->points : 2048;
    log_info("convert: shapenetpart %s (%s): %ld shapes, 16 categories, 50 parts -> %ld points (random, with "
             "replacement)", a->input, a->split, s.n, P);
    dataset_writer w;
    rc = dataset_writer_create(&w, a->output, MPI_COMM_WORLD, s.n, P, SHAPENETPART_CATEGORIES, s.class_names,
                               "shapenetpart", a->force, err);
    if (!rc && (dataset_writer_add_parts(&w, &s.parts, s.part_names, err) ||
                h5_attr_write_str(&w.f, "/", "input", a->input, err) ||
                h5_attr_write_str(&w.f, "/", "split", a->split, err) ||
                h5_attr_write_str(&w.f, "/", "subsample", "random-with-replacement", err) ||
                h5_attr_write_long(&w.f, "/", "seed", a->seed, err))) {
        dataset_writer_abort(&w);
        rc = -1;
    }
    parts_fill_ctx ctx = {&s, a, P};
    if (!dist_any_error(MPI_COMM_WORLD, rc, err)) {
        rc = dataset_write_blocks_parts(&w, a->batch, "convert", parts_fill, &ctx, err);
        if (rc) dataset_writer_abort(&w);
        else rc = dataset_writer_commit(&w, err);
    } else {
        rc = -1;
    }
    a->n_out = s.n;
    a->points_out = P;
    shapenetpart_free(&s);
    return rc;
}

static int run(void *state, const cmd_env *env, char *err)
{
    convert_state *a = state;
    (void)env;
    double t0 = now_s();
    if (!strcmp(a->format, "shapenetpart")) {
        if (run_shapenetpart(a, err)) return -1;
        a->seconds = now_s() - t0;
        log_info("convert: wrote %s: %ld samples x %ld points", a->output, a->n_out, a->points_out);
        return 0;
    }
    convert_source s;
    int rc = convert_source_open(&s, a->format, a->input, a->split, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) return -1;
    long P = 0;
    rc = output_points(&s, a, &P, err);
    if (!dist_any_error(MPI_COMM_WORLD, rc, err)) {
        log_info("convert: %s %s: %ld samples, %d classes, %ld -> %ld points (%s)", a->format,
                 a->input, s.n, s.n_classes, s.points, P,
                 s.format == FMT_OFF ? "surface sampling" : a->subsample);
        rc = convert_write(&s, a, P, err);
    } else {
        rc = -1;
    }
    a->n_out = s.n;
    a->points_out = P;
    convert_source_free(&s);
    if (rc) return -1;
    a->seconds = now_s() - t0;
    log_info("convert: wrote %s: %ld samples x %ld points", a->output, a->n_out, a->points_out);
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const convert_state *a = state;
    (void)env;
    cJSON_AddStringToObject(s, "format", a->format);
    cJSON_AddStringToObject(s, "input", a->input);
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddNumberToObject(s, "samples", (double)a->n_out);
    cJSON_AddNumberToObject(s, "points", (double)a->points_out);
    cJSON_AddNumberToObject(s, "seconds", a->seconds);
    cJSON_AddNumberToObject(s, "samples_per_s", a->seconds > 0 ? (double)a->n_out / a->seconds : 0.0);
}

const i2p_command cmd_convert = {
    .name = "convert",
    .summary = "convert ModelNet40 / ScanObjectNN / ShapeNet-55 / OFF into the canonical file",
    .usage = "i2pmae convert --format modelnet40|scanobjectnn|shapenet55|off|shapenetpart --input PATH -o FILE [options]",
    .description =
        "Reads the datasets in their released layouts (docs/datasets.md), reduces every cloud to\n"
        "--points points, centres it and scales it into the unit sphere, and writes /points (N,P,3)\n"
        "float32 and /label (N) int32 with the class names. shapenetpart adds /seg (N,P) part labels.",
    .state_size = sizeof(convert_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
