/* cli_synth.c -- `i2pmae synth`: a synthetic labelled point-cloud dataset (canonical layout).
 *
 * Ranks split the samples into contiguous blocks and write them collectively in rounds of --batch
 * samples (dataset_write_blocks). Sample i depends only on (seed, i), so the file is byte-identical
 * for any rank or thread count.
 */
#include <mpi.h>

#include "commands.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "log.h"
#include "synth.h"

typedef struct {
    long samples, points, seed, batch;
    int force, parts;
    char output[CLI_STR_LEN];
    double seconds;
} synth_state;

static int options(void *state, cli_opt *opts)
{
    synth_state *a = state;
    *a = (synth_state){.samples = 1000, .points = 1024, .seed = 1, .batch = 256, .force = 0};
    const cli_opt own[] = {
        {"samples", OPT_LONG, &a->samples, "N", "number of samples"},
        {"points", OPT_LONG, &a->points, "P", "points per sample"},
        {"seed", OPT_LONG, &a->seed, "S", "random seed (sample i depends only on seed and i)"},
        {"output", OPT_STRING, a->output, "FILE", "output HDF5 file (canonical point-cloud layout)"},
        {"force", OPT_FLAG, &a->force, NULL, "replace FILE if it exists"},
        {"batch", OPT_LONG, &a->batch, "B", "samples per rank per collective write"},
        {"parts", OPT_FLAG, &a->parts, NULL, "the parts-labelled set (6 categories, 14 parts, /seg)"},
    };
    return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
}

static int check(void *state, char *err)
{
    const synth_state *a = state;
    if (!a->output[0]) return errf(err, "synth: -o FILE is required");
    if (a->samples < 1) return errf(err, "--samples %ld: must be at least 1", a->samples);
    if (a->points < 1) return errf(err, "--points %ld: must be at least 1", a->points);
    if (a->batch < 1) return errf(err, "--batch %ld: must be at least 1", a->batch);
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    return 0;
}

static int synth_fill(void *user, long start, long count, float *points, int32_t *labels, char *err)
{
    const synth_state *a = user;
    (void)err;
#pragma omp parallel for schedule(dynamic)
    for (long j = 0; j < count; j++)
        synth_sample((uint64_t)a->seed, start + j, a->points, points + j * a->points * 3, &labels[j]);
    return 0;
}

static int synth_fill_parts(void *user, long start, long count, float *points, int32_t *labels,
                            int32_t *seg, char *err)
{
    const synth_state *a = user;
    (void)err;
#pragma omp parallel for schedule(dynamic)
    for (long j = 0; j < count; j++)
        synth_parts_sample((uint64_t)a->seed, start + j, a->points, points + j * a->points * 3, &labels[j],
                           seg + j * a->points);
    return 0;
}

/* The parts-labelled set: the canonical file with /seg and the part attributes. */
static int run_parts(synth_state *a, char *err)
{
    char names[1024], part_names[1024];
    int counts[SYNTH_PART_CATEGORIES];
    part_table t;
    synth_part_category_names(names, sizeof names);
    synth_part_names(part_names, sizeof part_names);
    synth_part_counts(counts);
    if (part_table_from_counts(&t, counts, SYNTH_PART_CATEGORIES, err)) return -1;
    dataset_writer w;
    int rc = dataset_writer_create(&w, a->output, MPI_COMM_WORLD, a->samples, a->points,
                                   SYNTH_PART_CATEGORIES, names, "synth-parts", a->force, err);
    if (!rc && dataset_writer_add_parts(&w, &t, part_names, err)) {
        dataset_writer_abort(&w);
        rc = -1;
    }
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) return -1;
    if (dataset_write_blocks_parts(&w, a->batch, "synth", synth_fill_parts, a, err)) {
        dataset_writer_abort(&w);
        return -1;
    }
    if (dataset_writer_commit(&w, err)) return -1;
    log_info("synth: wrote %s: %ld samples x %ld points, %d categories, %d parts", a->output, a->samples,
             a->points, SYNTH_PART_CATEGORIES, SYNTH_PARTS);
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    synth_state *a = state;
    (void)env;
    double t0 = now_s();
    if (a->parts) {
        if (run_parts(a, err)) return -1;
        a->seconds = now_s() - t0;
        return 0;
    }
    char names[1024];
    synth_class_names(names, sizeof names);
    dataset_writer w;
    int rc = dataset_writer_create(&w, a->output, MPI_COMM_WORLD, a->samples, a->points,
                                   SYNTH_N_CLASSES, names, "synth", a->force, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) return -1;
    if (dataset_write_blocks(&w, a->batch, "synth", synth_fill, a, err)) {
        dataset_writer_abort(&w);
        return -1;
    }
    if (dataset_writer_commit(&w, err)) return -1;
    a->seconds = now_s() - t0;
    log_info("synth: wrote %s: %ld samples x %ld points, %d classes", a->output, a->samples,
             a->points, SYNTH_N_CLASSES);
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const synth_state *a = state;
    (void)env;
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddNumberToObject(s, "samples", (double)a->samples);
    cJSON_AddNumberToObject(s, "points", (double)a->points);
    cJSON_AddNumberToObject(s, "classes", a->parts ? SYNTH_PART_CATEGORIES : SYNTH_N_CLASSES);
    if (a->parts) cJSON_AddNumberToObject(s, "parts", SYNTH_PARTS);
    cJSON_AddNumberToObject(s, "seed", (double)a->seed);
    cJSON_AddNumberToObject(s, "seconds", a->seconds);
    cJSON_AddNumberToObject(s, "samples_per_s", a->seconds > 0 ? (double)a->samples / a->seconds : 0.0);
    cJSON_AddNumberToObject(s, "bytes_points", (double)a->samples * (double)a->points * 12.0);
}

const i2p_command cmd_synth = {
    .name = "synth",
    .summary = "write a synthetic labelled point-cloud dataset",
    .usage = "i2pmae synth --samples N --points P --seed S -o FILE [--parts] [--force]",
    .description =
        "12 parametric shape classes (sphere, cube, cylinder, cone, torus, pyramid, plane, capsule,\n"
        "ellipsoid, helix, octahedron, annulus); sample i has class i % 12, a random per-axis scale,\n"
        "rotation and jitter, and is normalised into the unit sphere. The file is the same whatever\n"
        "the number of ranks. --parts writes the parts-labelled set instead: 6 upright categories\n"
        "(capsule, cone, cylinder, table, lamp, airplane) of 2-3 parts, 14 parts in all, with /seg\n"
        "(N,P) part labels for `i2pmae partseg`. Layout: docs/datasets.md.",
    .state_size = sizeof(synth_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
