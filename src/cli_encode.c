/* cli_encode.c -- `i2pmae encode`: the frozen encoder's features of every cloud (engine:
 * encode_run.c). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "encode.h"
#include "errors.h"
#include "log.h"
#include "model_opts.h"

typedef struct {
    char checkpoint[CLI_STR_LEN], input[CLI_STR_LEN], output[CLI_STR_LEN];
    long batch;
    int tokens, force;
    model_opts model;
    encode_result r;
} encode_state;

static int options(void *state, cli_opt *opts)
{
    encode_state *a = state;
    a->batch = 32;
    const cli_opt own[] = {
        {"checkpoint", OPT_STRING, a->checkpoint, "FILE", "our checkpoint (pretrain, or import of an official one)"},
        {"input", OPT_STRING, a->input, "FILE", "point-cloud file (canonical layout, e.g. from convert)"},
        {"output", OPT_STRING, a->output, "FILE", "features file to write"},
        {"tokens", OPT_FLAG, &a->tokens, NULL, "also write the last stage's tokens and centres"},
        {"batch", OPT_LONG, &a->batch, "B", "samples per encoder batch (per rank)"},
        {"force", OPT_FLAG, &a->force, NULL, "replace an existing output file"},
    };
    return model_opts_append(&a->model, opts, cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0])));
}

static int check(void *state, char *err)
{
    encode_state *a = state;
    if (!a->checkpoint[0] || !a->input[0] || !a->output[0])
        return errf(err, "encode: --checkpoint, --input and -o are required");
    if (a->batch < 1) return errf(err, "--batch %ld: must be at least 1", a->batch);
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    encode_state *a = state;
    (void)env;
    encode_options o = {.checkpoint = a->checkpoint, .input = a->input, .output = a->output,
                        .batch = a->batch, .tokens = a->tokens, .force = a->force, .model = &a->model};
    if (encode_run(&o, &a->r, err)) return -1;
    log_info("encode: %s: %ld samples -> %s (%d-d max and mean features%s)", a->input, a->r.samples,
             a->output, a->r.dim, a->tokens ? ", tokens and centres" : "");
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const encode_state *a = state;
    (void)env;
    cJSON_AddStringToObject(s, "checkpoint", a->checkpoint);
    cJSON_AddStringToObject(s, "input", a->input);
    cJSON_AddStringToObject(s, "output", a->output);
    cJSON_AddNumberToObject(s, "samples", (double)a->r.samples);
    cJSON_AddNumberToObject(s, "feature_dim", a->r.dim);
    cJSON_AddNumberToObject(s, "points", a->r.points);
    cJSON_AddBoolToObject(s, "tokens", a->tokens);
    cJSON_AddNumberToObject(s, "resumed_samples", (double)a->r.resumed);
    cJSON_AddNumberToObject(s, "seconds", a->r.seconds);
    cJSON_AddNumberToObject(s, "samples_per_s", a->r.seconds > 0 ? (double)a->r.samples / a->r.seconds : 0);
}

const i2p_command cmd_encode = {
    .name = "encode",
    .summary = "the frozen encoder's global features (and tokens) of every cloud",
    .usage = "i2pmae encode --checkpoint CKPT.h5 --input DATA.h5 -o FEATURES.h5 [--tokens]",
    .description =
        "Runs the encoder on the official SVM path (BatchNorm in eval mode, every scale-2 token\n"
        "visible, scales 1 and 0 through the kNN propagation) over every cloud and writes the\n"
        "max-pooled feature svm uses (/global_max), the mean-pooled one (/global_mean), the labels,\n"
        "and with --tokens the last stage's tokens and centres. Data-parallel over the ranks with\n"
        "collective writes; a killed run continues from FEATURES.h5.partial (--force starts over).\n"
        "Model options must agree with the checkpoint, except --points and\n"
        "--fps-skip-origin. docs/interop.md.",
    .state_size = sizeof(encode_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
