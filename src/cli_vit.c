/* cli_vit.c -- `i2pmae vit`: run the 2D ViT on a file of images, to check weights and to feed the
 * reference tests (engine: vit_run.c).
 */
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "paths.h"
#include "log.h"
#include "vit_run.h"

typedef struct {
    char vit[CLI_STR_LEN], input[CLI_STR_LEN], output[CLI_STR_LEN], precision[CLI_STR_LEN];
    int batch, force;
    vit_run_result r;
} vit_state;

static int options(void *state, cli_opt *opts)
{
    vit_state *a = state;
    *a = (vit_state){.batch = 8, .precision = "fp32"};
    const cli_opt own[] = {
        {"vit", OPT_STRING, a->vit, "SPEC", "clip-b16:FILE, timm-b16:FILE, clip:FILE, timm:FILE, random:tiny, random:base"},
        {"input", OPT_STRING, a->input, "FILE", "HDF5 file with /images (N,3,S,S) float32, normalised"},
        {"output", OPT_STRING, a->output, "FILE", "output HDF5 file (/patch, /cls, /saliency)"},
        {"batch", OPT_INT, &a->batch, "B", "images per forward"},
        {"precision", OPT_STRING, a->precision, "P", "fp32 or bf16 (bf16 falls back to fp32 where unsupported)"},
        {"force", OPT_FLAG, &a->force, NULL, "replace the output file if it exists"},
    };
    return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
}

static int check(void *state, char *err)
{
    const vit_state *a = state;
    if (!a->vit[0]) return errf(err, "vit: --vit SPEC is required");
    if (!a->input[0]) return errf(err, "vit: --input FILE is required");
    if (!a->output[0]) return errf(err, "vit: -o FILE is required");
    if (path_is_input(a->output, "-o", a->input, "--input", err)) return -1;
    if (a->batch < 1) return errf(err, "--batch %d: must be at least 1", a->batch);
    if (strcmp(a->precision, "fp32") && strcmp(a->precision, "bf16"))
        return errf(err, "--precision '%s': must be fp32 or bf16", a->precision);
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    vit_state *a = state;
    (void)env;
    vit_run_options o = {.vit = a->vit, .input = a->input, .output = a->output, .batch = a->batch,
                         .force = a->force,
                         .precision = strcmp(a->precision, "bf16") ? VIT_FP32 : VIT_BF16};
    if (vit_run_images(&o, &a->r, err)) return -1;
    const vit_run_result *r = &a->r;
    log_info("vit: wrote %s: %ld images, patch (%ld, %d, %d), saliency %dx%d", a->output, r->images,
             r->images, r->grid * r->grid, r->out_dim, r->grid, r->grid);
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const vit_state *a = state;
    const vit_run_result *r = &a->r;
    (void)env;
    cJSON_AddStringToObject(s, "model", r->model);
    cJSON_AddStringToObject(s, "weights_sha256", r->weights_sha256);
    cJSON_AddStringToObject(s, "precision", r->precision);
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddNumberToObject(s, "images", (double)r->images);
    cJSON_AddNumberToObject(s, "batch", a->batch);
    cJSON_AddNumberToObject(s, "load_s", r->load_s);
    cJSON_AddNumberToObject(s, "forward_s", r->forward_s);
    cJSON_AddNumberToObject(s, "seconds", r->seconds);
    cJSON_AddNumberToObject(s, "images_per_s", r->forward_s > 0 ? (double)r->images / r->forward_s : 0.0);
    /* rank 0, batches after its first (null with a single batch) */
    if (r->steady_n > 0) {
        cJSON_AddNumberToObject(s, "steady_images_per_s", (double)r->steady_n / r->steady_s);
        cJSON_AddNumberToObject(s, "best_batch_images_per_s", r->best_images_per_s);
    } else {
        cJSON_AddNullToObject(s, "steady_images_per_s");
        cJSON_AddNullToObject(s, "best_batch_images_per_s");
    }
}

const i2p_command cmd_vit = {
    .name = "vit",
    .summary = "run the 2D ViT on images (check weights; patch features, CLS, saliency)",
    .usage = "i2pmae vit --vit SPEC --input IMAGES.h5 -o OUT.h5 [--batch B] [--precision fp32|bf16] [--force]",
    .description =
        "Runs the frozen 2D model on /images and writes /patch (N, grid*grid, C): the last block's\n"
        "tokens after the final norm (and CLIP's visual projection), /cls (N, C) and /saliency\n"
        "(N, grid, grid): the last block's CLS-row attention over the patches, averaged over heads.\n"
        "Weights: docs/vit.md.",
    .state_size = sizeof(vit_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
