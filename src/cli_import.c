/* cli_import.c -- `i2pmae import`: a checkpoint in the official I2P-MAE tensor names into ours
 * (engine: interop_import.c). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "interop.h"
#include "log.h"
#include "model_opts.h"

typedef struct {
    char input[CLI_STR_LEN], output[CLI_STR_LEN];
    model_opts model;
    interop_import_result r;
} import_state;

static int options(void *state, cli_opt *opts)
{
    import_state *a = state;
    const cli_opt own[] = {
        {"input", OPT_STRING, a->input, "FILE", "safetensors file in the official names (tools/pth2safetensors.py)"},
        {"output", OPT_STRING, a->output, "FILE", "our checkpoint to write"},
    };
    return model_opts_append(&a->model, opts, cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0])));
}

static int check(void *state, char *err)
{
    import_state *a = state;
    if (!a->input[0] || !a->output[0]) return errf(err, "import: --input and -o are required");
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    import_state *a = state;
    (void)env;
    if (interop_import(a->input, a->output, &a->model, &a->r, err)) return -1;
    if (a->r.ignored_clip) log_info("import: ignored %d CLIP tensors (clip_model.*)", a->r.ignored_clip);
    log_info("import: %s -> %s: %d tensors, %ld parameters%s%s", a->input, a->output, a->r.tensors, a->r.params,
             a->r.module_prefix ? ", 'module.' prefix stripped" : "",
             a->r.config_from_metadata ? ", configuration from the file's metadata" : "");
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const import_state *a = state;
    (void)env;
    cJSON_AddStringToObject(s, "input", a->input);
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddStringToObject(s, "sha256", a->r.sha256);
    cJSON_AddNumberToObject(s, "tensors", a->r.tensors);
    cJSON_AddNumberToObject(s, "params", (double)a->r.params);
    cJSON_AddNumberToObject(s, "ignored_clip_tensors", a->r.ignored_clip);
    cJSON_AddBoolToObject(s, "module_prefix", a->r.module_prefix);
    cJSON_AddStringToObject(s, "config_from", a->r.config_from_metadata ? "metadata" : "shapes and defaults");
    cJSON_AddStringToObject(s, "kind", a->r.kind ? a->r.kind : "");
}

const i2p_command cmd_import = {
    .name = "import",
    .summary = "read a checkpoint in the official PyTorch I2P-MAE's tensor names (safetensors)",
    .usage = "i2pmae import --input FILE.safetensors -o CKPT.h5 [model options]",
    .description =
        "Reads the 3D network of an official pre-training checkpoint (converted with\n"
        "tools/pth2safetensors.py) or of our export, checks every tensor (a missing one, a wrong\n"
        "shape or one the model does not have is an error naming it; clip_model.* is ignored) and\n"
        "writes our checkpoint for svm, encode, finetune and pretrain --init; a fine-tuning state dict\n"
        "(cls_head_finetune.*) gives a checkpoint for finetune --eval-only. The configuration comes\n"
        "from the file's metadata\n"
        "when we wrote it, else from the shapes and the spec's defaults (points, groups, k[0], k[2]\n"
        "and heads are not in the weights: give them as model options if they differ). Refuses\n"
        "Point-MAE checkpoints. docs/interop.md.",
    .state_size = sizeof(import_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
