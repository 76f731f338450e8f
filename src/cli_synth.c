/* cli_synth.c -- `i2pmae synth`: a synthetic labelled point-cloud dataset (canonical layout).
 *
 * Ranks split the samples into contiguous blocks (dist_block_range) and write them collectively
 * in rounds of --batch samples. Sample i depends only on (seed, i), so the file is byte-identical
 * for any rank or thread count.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "log.h"
#include "summary.h"
#include "synth.h"

typedef struct {
    long samples, points, seed, batch;
    int force;
    char output[CLI_STR_LEN];
} synth_args;

static int check_args(const synth_args *a, char *err)
{
    if (!a->output[0]) return errf(err, "synth: -o FILE is required");
    if (a->samples < 1) return errf(err, "--samples %ld: must be at least 1", a->samples);
    if (a->points < 1) return errf(err, "--points %ld: must be at least 1", a->points);
    if (a->batch < 1) return errf(err, "--batch %ld: must be at least 1", a->batch);
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    return 0;
}

static int synth_write(const synth_args *a, int rank, int size, char *err)
{
    char names[1024];
    synth_class_names(names, sizeof names);
    dataset_writer w;
    int rc = dataset_writer_create(&w, a->output, MPI_COMM_WORLD, a->samples, a->points,
                                   SYNTH_N_CLASSES, names, "synth", a->force, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) return -1;

    long start, count, first_count, dummy;
    dist_block_range(a->samples, size, rank, &start, &count);
    dist_block_range(a->samples, size, 0, &dummy, &first_count); /* the largest block */
    long rounds = (first_count + a->batch - 1) / a->batch;
    float *pts = malloc(sizeof(float) * (size_t)(a->batch * a->points * 3));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)a->batch);
    rc = pts && lab ? 0 : errf(err, "%s: out of memory for a batch of %ld samples", a->output, a->batch);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;

    progress pr;
    progress_start(&pr, "synth", "samples", a->samples);
    for (long r = 0; r < rounds; r++) {
        long off = r * a->batch;
        long n = off >= count ? 0 : (count - off < a->batch ? count - off : a->batch);
#pragma omp parallel for schedule(dynamic)
        for (long j = 0; j < n; j++)
            synth_sample((uint64_t)a->seed, start + off + j, a->points, pts + j * a->points * 3, &lab[j]);
        rc = dataset_writer_write(&w, start + off, n, pts, lab, err);
        if (dist_any_error(MPI_COMM_WORLD, rc, err)) goto fail;
        /* rank 0 holds the largest block, so its share done scales to the whole */
        progress_update(&pr, (long)((double)(off + n) / (double)(count ? count : 1) * (double)a->samples));
    }
    pr.done = a->samples;
    progress_finish(&pr);
    free(pts);
    free(lab);
    return dataset_writer_commit(&w, err);
fail:
    free(pts);
    free(lab);
    dataset_writer_abort(&w);
    return -1;
}

int cmd_synth(int argc, char **argv)
{
    synth_args a = {.samples = 1000, .points = 1024, .seed = 1, .batch = 256, .force = 0};
    const cli_opt opts[] = {
        {"samples", OPT_LONG, &a.samples, "N", "number of samples"},
        {"points", OPT_LONG, &a.points, "P", "points per sample"},
        {"seed", OPT_LONG, &a.seed, "S", "random seed (sample i depends only on seed and i)"},
        {"output", OPT_STRING, a.output, "FILE", "output HDF5 file (canonical point-cloud layout)"},
        {"force", OPT_FLAG, &a.force, NULL, "replace FILE if it exists"},
        {"batch", OPT_LONG, &a.batch, "B", "samples per rank per collective write"},
    };
    const cli_cmd cmd = {
        "synth", "write a synthetic labelled point-cloud dataset",
        "i2pmae synth --samples N --points P --seed S -o FILE [--force]",
        "12 parametric shape classes (sphere, cube, cylinder, cone, torus, pyramid, plane, capsule,\n"
        "ellipsoid, helix, octahedron, annulus); sample i has class i % 12, a random per-axis scale,\n"
        "rotation and jitter, and is normalised into the unit sphere. The file is the same whatever\n"
        "the number of ranks. Layout: docs/datasets.md.",
        opts, (int)(sizeof opts / sizeof opts[0]), 0};
    int rank, size;
    cli_common common;
    int st = cmd_start(&cmd, argc, argv, &common, &rank, &size);
    if (st) return st > 0 ? 0 : 2;
    char err[I2P_ERR_LEN];
    if (check_args(&a, err)) {
        if (rank == 0) log_error("%s", err);
        return 2;
    }

    double t0 = now_s();
    if (synth_write(&a, rank, size, err)) {
        if (rank == 0) log_error("%s", err);
        return 1;
    }
    double secs = now_s() - t0;
    log_info("synth: wrote %s: %ld samples x %ld points, %d classes", a.output, a.samples,
             a.points, SYNTH_N_CLASSES);
    cJSON *s = summary_begin("synth", size);
    cJSON_AddStringToObject(s, "output", a.output);
    cJSON_AddNumberToObject(s, "samples", (double)a.samples);
    cJSON_AddNumberToObject(s, "points", (double)a.points);
    cJSON_AddNumberToObject(s, "classes", SYNTH_N_CLASSES);
    cJSON_AddNumberToObject(s, "seed", (double)a.seed);
    cJSON_AddNumberToObject(s, "seconds", secs);
    cJSON_AddNumberToObject(s, "samples_per_s", secs > 0 ? (double)a.samples / secs : 0.0);
    cJSON_AddNumberToObject(s, "bytes_points", (double)a.samples * (double)a.points * 12.0);
    summary_emit(s, rank);
    return 0;
}
