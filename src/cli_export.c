/* cli_export.c -- `i2pmae export`: our checkpoint in the official I2P-MAE tensor names (engine:
 * interop_export.c). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "interop.h"
#include "log.h"

typedef struct {
    char checkpoint[CLI_STR_LEN], format[CLI_STR_LEN], output[CLI_STR_LEN];
    interop_export_result r;
} export_state;

static int options(void *state, cli_opt *opts)
{
    export_state *a = state;
    snprintf(a->format, sizeof a->format, "official");
    const cli_opt own[] = {
        {"checkpoint", OPT_STRING, a->checkpoint, "FILE", "our checkpoint (ckpt-*.h5, or one written by import)"},
        {"format", OPT_STRING, a->format, "NAME", "'official': the PyTorch I2P-MAE's tensor names (the only one)"},
        {"output", OPT_STRING, a->output, "FILE", "the safetensors file to write"},
    };
    return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
}

static int check(void *state, char *err)
{
    export_state *a = state;
    if (!a->checkpoint[0] || !a->output[0]) return errf(err, "export: --checkpoint and -o are required");
    if (strcmp(a->format, "official")) return errf(err, "--format %s: only 'official' is known", a->format);
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    export_state *a = state;
    (void)env;
    if (interop_export(a->checkpoint, a->output, &a->r, err)) return -1;
    log_info("export: %s -> %s: %d tensors, %ld parameters, official I2P-MAE %s names", a->checkpoint,
             a->output, a->r.tensors, a->r.params, a->r.kind);
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const export_state *a = state;
    (void)env;
    cJSON_AddStringToObject(s, "checkpoint", a->checkpoint);
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddStringToObject(s, "format", a->format);
    cJSON_AddNumberToObject(s, "tensors", a->r.tensors);
    cJSON_AddNumberToObject(s, "params", (double)a->r.params);
    cJSON_AddNumberToObject(s, "step", (double)a->r.step);
    cJSON_AddStringToObject(s, "kind", a->r.kind ? a->r.kind : "");
}

const i2p_command cmd_export = {
    .name = "export",
    .summary = "write a checkpoint in the official PyTorch I2P-MAE's tensor names (safetensors)",
    .usage = "i2pmae export --checkpoint CKPT.h5 --format official -o FILE.safetensors",
    .description =
        "Writes the 3D network of a pre-training checkpoint, or the classifier of a fine-tuning one\n"
        "(finetune's best.h5, ckpt-*.h5), under the names, shapes and layouts of the official code's\n"
        "state dict (Conv1d weights [out, in, 1], mask_token [1, D], BatchNorm\n"
        "num_batches_tracked, the token-propagation fusion columns as [skip | interpolated]), with\n"
        "our configuration in the file's metadata. tools/safetensors2pth.py makes a .pth of it.\n"
        "Mapping and round trip: docs/interop.md.",
    .state_size = sizeof(export_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
