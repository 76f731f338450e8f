/* cli_render.c -- `i2pmae render`: a PNG of one sample's depth maps and, given a features file, its
 * saliency (engine: render.c). Rank 0 does the work (one sample is small); the other ranks only
 * agree on the outcome.
 */
#include <mpi.h>

#include "commands.h"
#include "dist.h"
#include "errors.h"
#include "paths.h"
#include "log.h"
#include "project.h"
#include "render.h"
#include "render_rec.h"
#include "render_seg.h"

typedef struct {
    char input[CLI_STR_LEN], output[CLI_STR_LEN], features[CLI_STR_LEN], dump[CLI_STR_LEN];
    char checkpoint[CLI_STR_LEN], segmentation[CLI_STR_LEN];
    long sample, seed;
    render_rec_result rec;
    render_seg_result seg;
    int views, image, force;
    double seconds;
} render_state;

static int options(void *state, cli_opt *opts)
{
    render_state *a = state;
    *a = (render_state){.sample = 0, .views = 3, .image = 224};
    const cli_opt own[] = {
        {"input", OPT_STRING, a->input, "FILE", "point-cloud dataset (canonical, ModelNet40 or ScanObjectNN h5)"},
        {"sample", OPT_LONG, &a->sample, "I", "index of the sample to draw"},
        {"output", OPT_STRING, a->output, "PNG", "picture to write"},
        {"features", OPT_STRING, a->features, "FILE", "features file of this dataset: overlay its saliency"},
        {"views", OPT_INT, &a->views, "V", "views to draw (1..3; a features file sets its own)"},
        {"image", OPT_INT, &a->image, "S", "depth-map side in pixels"},
        {"dump", OPT_STRING, a->dump, "FILE", "also write /depth, /image (the ViT input) and /pixel to this HDF5 file"},
        {"force", OPT_FLAG, &a->force, NULL, "replace the --dump file if it exists"},
        {"checkpoint", OPT_STRING, a->checkpoint, "CKPT",
         "draw this pre-trained network's 3D reconstruction instead: visible tokens, reconstruction, "
         "masked ground truth (three views) and the sample's Chamfer distance"},
        {"seed", OPT_LONG, &a->seed, "S", "with --checkpoint: seed of the mask draw"},
        {"segmentation", OPT_STRING, a->segmentation, "FILE",
         "draw a part segmentation instead (no --input): the predictions file of partseg --eval-only; "
         "true and predicted parts side by side, three views"},
    };
    return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
}

static int check(void *state, char *err)
{
    const render_state *a = state;
    if (a->segmentation[0]) {
        if (a->input[0] || a->features[0] || a->checkpoint[0] || a->dump[0])
            return errf(err, "render --segmentation: takes no --input, --features, --checkpoint or --dump");
        if (!a->output[0]) return errf(err, "render: -o PNG is required");
        if (a->image < PROJECT_MIN_IMAGE || a->image > 4096)
            return errf(err, "--image %d: must be %d..4096", a->image, PROJECT_MIN_IMAGE);
        return path_is_input(a->output, "-o", a->segmentation, "--segmentation", err);
    }
    if (!a->input[0]) return errf(err, "render: --input FILE is required");
    if (!a->output[0]) return errf(err, "render: -o PNG is required");
    const char *outs[2][2] = {{a->output, "-o"}, {a->dump, "--dump"}};
    for (int i = 0; i < 2; i++)
        if (path_is_input(outs[i][0], outs[i][1], a->input, "--input", err) ||
            path_is_input(outs[i][0], outs[i][1], a->features, "--features", err) ||
            path_is_input(outs[i][0], outs[i][1], a->checkpoint, "--checkpoint", err))
            return -1;
    if (a->checkpoint[0] && a->dump[0]) return errf(err, "render: --dump draws depth maps, not with --checkpoint");
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    if (a->views < 1 || a->views > PROJECT_MAX_VIEWS)
        return errf(err, "--views %d: must be 1..%d", a->views, PROJECT_MAX_VIEWS);
    if (a->image < PROJECT_MIN_IMAGE || a->image > 4096)
        return errf(err, "--image %d: must be %d..4096", a->image, PROJECT_MIN_IMAGE);
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    render_state *a = state;
    double t0 = now_s();
    render_options o = {.input = a->input, .output = a->output, .features = a->features,
                        .dump = a->dump, .sample = a->sample, .views = a->views,
                        .image = a->image, .force = a->force};
    render_rec_options ro = {.checkpoint = a->checkpoint, .input = a->input, .features = a->features,
                             .output = a->output, .sample = a->sample, .seed = a->seed, .size = a->image};
    render_seg_options so = {.predictions = a->segmentation, .output = a->output, .sample = a->sample,
                             .size = a->image};
    int rc = env->rank != 0          ? 0
             : a->segmentation[0] ? render_segmentation(&so, &a->seg, err)
             : a->checkpoint[0]   ? render_reconstruction(&ro, &a->rec, err)
                                  : render_sample(&o, err);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) return -1;
    if (a->segmentation[0])
        log_info("render: sample %ld (category %d): %ld of %ld points predicted right", a->sample, a->seg.category,
                 a->seg.correct, a->seg.points);
    if (a->checkpoint[0])
        log_info("render: sample %ld: Chamfer distance %.6f (%ld visible points, %ld masked, %s masking)",
                 a->sample, a->rec.chamfer, a->rec.n_visible, a->rec.n_masked,
                 a->rec.guided ? "2D-guided" : "random");
    log_info("render: wrote %s (sample %ld)", a->output, a->sample);
    a->seconds = now_s() - t0;
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const render_state *a = state;
    (void)env;
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddNumberToObject(s, "sample", (double)a->sample);
    if (a->checkpoint[0]) {
        cJSON_AddStringToObject(s, "checkpoint", a->checkpoint);
        cJSON_AddNumberToObject(s, "chamfer", a->rec.chamfer);
        cJSON_AddStringToObject(s, "masking", a->rec.guided ? "2d-guided" : "random");
    }
    if (a->segmentation[0]) {
        cJSON_AddStringToObject(s, "segmentation", a->segmentation);
        cJSON_AddNumberToObject(s, "category", a->seg.category);
        cJSON_AddNumberToObject(s, "points", (double)a->seg.points);
        cJSON_AddNumberToObject(s, "correct", (double)a->seg.correct);
    }
    cJSON_AddNumberToObject(s, "seconds", a->seconds);
}

const i2p_command cmd_render = {
    .name = "render",
    .summary = "draw a sample's depth maps (and saliency), or a checkpoint's reconstruction, as a PNG",
    .usage = "i2pmae render --input DATA.h5 --sample I -o X.png [--features FEAT.h5] [--checkpoint CKPT.h5]\n"
             "       i2pmae render --segmentation PREDICTIONS.h5 --sample I -o X.png",
    .description =
        "One row per view (views permute the axes: (x,y,z), (z,x,y), (y,z,x)). Left: the depth map\n"
        "(scatter-summed depth, black where empty). Right, with --features: the saliency of the 2D\n"
        "model (bicubic-upsampled CLS attention) over it, black-red-yellow-white.\n"
        "With --checkpoint: the pre-trained network's reconstruction of the sample instead, one row per\n"
        "view, columns: visible tokens (grey); + reconstruction of the masked tokens (blue); + masked\n"
        "ground truth (red); the sample's Chamfer distance is printed. Masking as in pre-training\n"
        "(2D-guided needs --features, else random).\n"
        "With --segmentation (the predictions file of partseg --eval-only): the shape's true parts\n"
        "(left) and predicted parts (right), one row per view, a colour per part.",
    .state_size = sizeof(render_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
