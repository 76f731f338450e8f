/* cli_extract.c -- `i2pmae extract`: options, checks, and the final JSON line; the work is in
 * extract_pipeline.c (see extract.h, docs/features.md). */
#include <mpi.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "dist.h"
#include "errors.h"
#include "paths.h"
#include "run_lock.h"
#include "extract.h"
#include "log.h"
#include "project.h"

typedef struct {
    char input[CLI_STR_LEN], vit[CLI_STR_LEN], output[CLI_STR_LEN], precision[CLI_STR_LEN];
    int views, stages, batch, flush, image, fp32, force;
    extract_result r; /* r.per_rank is freed by the summary */
    double seconds;
} extract_state;

static int options(void *state, cli_opt *opts)
{
    extract_state *a = state;
    *a = (extract_state){.views = 3, .stages = 1, .batch = 8, .flush = 64, .precision = "fp32"};
    const cli_opt own[] = {
        {"input", OPT_STRING, a->input, "FILE", "point-cloud dataset (canonical, ModelNet40 or ScanObjectNN h5)"},
        {"vit", OPT_STRING, a->vit, "SPEC", "2D model: clip-b16:FILE, timm-b16:FILE, random:tiny, random:base"},
        {"output", OPT_STRING, a->output, "FILE", "features file to write (FILE.partial until complete)"},
        {"views", OPT_INT, &a->views, "V", "views per sample (1..3, spec: 3)"},
        {"stages", OPT_INT, &a->stages, "S", "pipeline stages per replica (divides the world size)"},
        {"batch", OPT_INT, &a->batch, "B", "samples per micro-batch (B x V images)"},
        {"flush", OPT_INT, &a->flush, "K", "samples per replica between flushes to disk (restart granularity)"},
        {"image", OPT_INT, &a->image, "S", "depth-map resolution (0: the model's, 224)"},
        {"precision", OPT_STRING, a->precision, "P", "ViT arithmetic: fp32 or bf16"},
        {"fp32", OPT_FLAG, &a->fp32, NULL, "store /patch and /cls as float32 instead of IEEE half"},
        {"force", OPT_FLAG, &a->force, NULL, "replace an existing output (or partial) of another configuration"},
    };
    return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
}

static int check(void *state, char *err)
{
    const extract_state *a = state;
    if (!a->input[0]) return errf(err, "extract: --input FILE is required");
    if (!a->vit[0]) return errf(err, "extract: --vit SPEC is required (e.g. random:tiny, clip-b16:FILE)");
    if (!a->output[0]) return errf(err, "extract: -o FILE is required");
    if (path_is_input(a->output, "-o", a->input, "--input", err)) return -1;
    const char *weights = strchr(a->vit, ':'); /* the file of a MODEL:FILE spec */
    if (weights && path_is_input(a->output, "-o", weights + 1, "--vit", err)) return -1;
    if (a->views < 1 || a->views > PROJECT_MAX_VIEWS)
        return errf(err, "--views %d: must be 1..%d (the spec's axis-permutation views)", a->views,
                    PROJECT_MAX_VIEWS);
    if (a->stages < 1) return errf(err, "--stages %d: must be at least 1", a->stages);
    if (a->batch < 1) return errf(err, "--batch %d: must be at least 1", a->batch);
    if (a->flush < 1) return errf(err, "--flush %d: must be at least 1", a->flush);
    if (a->image < 0) return errf(err, "--image %d: must be positive (0 = the model's)", a->image);
    if (strcmp(a->precision, "fp32") && strcmp(a->precision, "bf16"))
        return errf(err, "--precision '%s': must be fp32 or bf16", a->precision);
    return 0;
}

/* per-rank seconds, and the shares of the ranks' summed streaming wall time in each kind */
static void add_rank_times(cJSON *s, const extract_result *r, int size, double wall_s)
{
    cJSON *arr = cJSON_AddArrayToObject(s, "per_rank");
    double comm = 0, io = 0, idle = 0, vit = 0;
    for (int i = 0; r->per_rank && i < size; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", i);
        cJSON_AddNumberToObject(o, "compute_s", r->per_rank[i].compute_s);
        cJSON_AddNumberToObject(o, "comm_s", r->per_rank[i].comm_s);
        cJSON_AddNumberToObject(o, "idle_s", r->per_rank[i].idle_s);
        cJSON_AddNumberToObject(o, "io_s", r->per_rank[i].io_s);
        cJSON_AddNumberToObject(o, "vit_s", r->per_rank[i].vit_s);
        cJSON_AddItemToArray(arr, o);
        vit += r->per_rank[i].vit_s;
        comm += r->per_rank[i].comm_s;
        io += r->per_rank[i].io_s;
        idle += r->per_rank[i].idle_s;
    }
    double total = wall_s * size;
    cJSON_AddNumberToObject(s, "comm_share", total > 0 ? comm / total : 0.0);
    cJSON_AddNumberToObject(s, "io_share", total > 0 ? io / total : 0.0);
    cJSON_AddNumberToObject(s, "idle_share", total > 0 ? idle / total : 0.0);
    cJSON_AddNumberToObject(s, "vit_share", total > 0 ? vit / total : 0.0);
}

static int run(void *state, const cmd_env *env, char *err)
{
    extract_state *a = state;
    double t0 = now_s();
    dist_grid g;
    int rc = dist_grid_create(&g, MPI_COMM_WORLD, a->stages, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) {
        dist_grid_free(&g);
        return -1;
    }
    cJSON *cfg = cli_values_json(env->cli);
    char *cfg_s = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    extract_options o = {.input = a->input, .vit = a->vit, .output = a->output, .views = a->views,
                         .image = a->image, .batch = a->batch, .flush = a->flush, .fp32 = a->fp32,
                         .force = a->force, .config_json = cfg_s,
                         .precision = strcmp(a->precision, "bf16") ? VIT_FP32 : VIT_BF16};
    log_info("extract: %s -> %s, %s, %d views, %d ranks = %d replicas x %d stages, batch %d, flush %d",
             a->input, a->output, a->vit, a->views, env->size, g.data, g.stages, a->batch, a->flush);
    run_lock lock = {.fd = -1}; /* one run at a time per output */
    char lock_path[I2P_PATH_LEN], what[I2P_PATH_LEN + 16];
    snprintf(lock_path, sizeof lock_path, "%s.lock", a->output);
    snprintf(what, sizeof what, "output %s", a->output);
    rc = env->rank == 0 ? run_lock_take(&lock, lock_path, what, err) : 0;
    if (!dist_any_error(MPI_COMM_WORLD, rc, err)) rc = extract_run(&o, &g, &a->r, err);
    run_lock_release(&lock);
    a->seconds = now_s() - t0;
    free(cfg_s);
    dist_grid_free(&g);
    if (rc) { /* -1, or PREEMPT_STOPPED: a signal stopped it with the .partial kept */
        free(a->r.per_rank);
        a->r.per_rank = NULL;
        return rc;
    }
    log_info("extract: wrote %s: %ld samples (%ld skipped as done)", a->output, a->r.samples,
             a->r.skipped);
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    extract_state *a = state;
    const extract_result *r = &a->r;
    double secs = a->seconds;
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddNumberToObject(s, "samples", (double)r->samples);
    cJSON_AddNumberToObject(s, "skipped", (double)r->skipped);
    cJSON_AddNumberToObject(s, "extracted", (double)r->extracted);
    cJSON_AddNumberToObject(s, "views", a->views);
    cJSON_AddNumberToObject(s, "stages", a->stages);
    cJSON_AddNumberToObject(s, "batch", a->batch);
    cJSON_AddNumberToObject(s, "seconds", secs);
    cJSON_AddNumberToObject(s, "samples_per_s", secs > 0 ? (double)r->extracted / secs : 0.0);
    cJSON_AddNumberToObject(s, "setup_s", r->setup_s);
    cJSON_AddNumberToObject(s, "stream_s", r->stream_s);
    cJSON_AddNumberToObject(s, "stream_samples_per_s", r->stream_s > 0 ? (double)r->extracted / r->stream_s : 0.0);
    cJSON_AddNumberToObject(s, "bytes_written", r->bytes_written);
    add_rank_times(s, r, env->size, r->stream_s);
    free(a->r.per_rank);
    a->r.per_rank = NULL;
}

const i2p_command cmd_extract = {
    .name = "extract",
    .summary = "precompute multi-view 2D features of a dataset (parallel HDF5)",
    .usage = "i2pmae extract --input DATA.h5 --vit SPEC -o FEATURES.h5 [--views V] [--stages S] [--batch B]\n"
             "       [--precision fp32|bf16] [--fp32] [--flush K] [--force]",
    .description =
        "Projects every cloud to V depth maps, runs the frozen 2D ViT and stores, per sample, the\n"
        "patch-feature and saliency grids, the pixel of every point and its view-averaged saliency.\n"
        "Ranks form a data x stage grid: samples are split over data replicas, the ViT blocks over\n"
        "the stages of a replica. Killed runs resume when re-run. Layout: docs/features.md.",
    .state_size = sizeof(extract_state),
    .preemptible = 1,
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
