/* cli_svm.c -- `i2pmae svm`: linear-SVM evaluation of a frozen encoder (engine: svm_eval.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "log.h"
#include "model_opts.h"
#include "svm_eval.h"

#define SVM_DEFAULT_C 0.0093 /* spec section 8: ModelNet40 */

typedef struct {
    char data[CLI_STR_LEN], test[CLI_STR_LEN], checkpoint[CLI_STR_LEN], c[CLI_STR_LEN];
    char bn_stats[CLI_STR_LEN];
    int random_init, folds;
    long batch, seed;
    model_opts model;
    double c_value; /* --c as a number; 0 for auto */
    svm_eval_result r;
} svm_state;

static int options(void *state, cli_opt *opts)
{
    svm_state *a = state;
    *a = (svm_state){.folds = 5, .batch = 32, .seed = 1};
    snprintf(a->c, sizeof a->c, "%g", SVM_DEFAULT_C);
    snprintf(a->bn_stats, sizeof a->bn_stats, "checkpoint");
    const cli_opt own[] = {
        {"data", OPT_STRING, a->data, "FILE", "training split (point-cloud file, e.g. ModelNet40 train)"},
        {"test", OPT_STRING, a->test, "FILE", "test split"},
        {"checkpoint", OPT_STRING, a->checkpoint, "FILE", "pre-trained checkpoint (ckpt-*.h5)"},
        {"random-init", OPT_FLAG, &a->random_init, NULL, "evaluate a randomly initialised encoder instead"},
        {"c", OPT_STRING, a->c, "C", "SVM cost, or 'auto' (cross-validation on the training split)"},
        {"folds", OPT_INT, &a->folds, "K", "cross-validation folds for --c auto"},
        {"batch", OPT_LONG, &a->batch, "B", "samples per encoder batch (per rank)"},
        {"seed", OPT_LONG, &a->seed, "S", "seed of --random-init weights and of liblinear"},
        {"bn-stats", OPT_STRING, a->bn_stats, "checkpoint|data",
         "the encoder's BatchNorm statistics: the checkpoint's (the official protocol), or re-estimated on "
         "the training split in batches of --batch (a diagnostic)"},
    };
    return model_opts_append(&a->model, opts, cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0])));
}

static int check(void *state, char *err)
{
    svm_state *a = state;
    if (!a->data[0] || !a->test[0]) return errf(err, "svm: --data and --test are required");
    if (!a->random_init == !a->checkpoint[0])
        return errf(err, "svm: give exactly one of --checkpoint FILE and --random-init");
    if (strcmp(a->c, "auto")) {
        char *end;
        a->c_value = strtod(a->c, &end);
        if (end == a->c || *end || !(a->c_value > 0) || !isfinite(a->c_value))
            return errf(err, "--c %s: must be a positive number or 'auto'", a->c);
    }
    if (a->folds < 2) return errf(err, "--folds %d: must be at least 2", a->folds);
    if (a->batch < 1) return errf(err, "--batch %ld: must be at least 1", a->batch);
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    if (strcmp(a->bn_stats, "checkpoint") && strcmp(a->bn_stats, "data"))
        return errf(err, "--bn-stats %s: must be checkpoint or data", a->bn_stats);
    if (!strcmp(a->bn_stats, "data") && a->batch < 2)
        return errf(err, "--bn-stats data: --batch %ld, BatchNorm statistics need at least 2 samples", a->batch);
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    svm_state *a = state;
    (void)env;
    svm_eval_options o = {.data = a->data, .test = a->test, .checkpoint = a->checkpoint,
                          .random_init = a->random_init, .c = a->c_value, .folds = a->folds,
                          .batch = a->batch, .seed = a->seed, .model = &a->model,
                          .bn_stats = !strcmp(a->bn_stats, "data")};
    if (svm_eval_run(&o, &a->r, err)) return -1;
    const svm_eval_result *r = &a->r;
    log_info("svm: %s: test accuracy %.2f%% (mean class accuracy %.2f%%), C = %g%s, %ld train / %ld "
             "test samples, %d-d features%s", a->random_init ? "random-init encoder" : a->checkpoint,
             100 * r->accuracy, 100 * r->mean_class_accuracy, r->c,
             a->c_value ? "" : " (cross-validated)", r->train_samples, r->test_samples, r->feature_dim,
             strcmp(a->bn_stats, "data") ? "" : ", BatchNorm statistics re-estimated on the training split");
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    const svm_state *a = state;
    const svm_eval_result *r = &a->r;
    (void)env;
    cJSON_AddStringToObject(s, "encoder", a->random_init ? "random-init" : "checkpoint");
    if (!a->random_init) cJSON_AddStringToObject(s, "checkpoint", a->checkpoint);
    cJSON_AddStringToObject(s, "bn_stats", a->bn_stats);
    cJSON_AddStringToObject(s, "data", a->data);
    cJSON_AddStringToObject(s, "test", a->test);
    cJSON_AddNumberToObject(s, "accuracy", r->accuracy);
    cJSON_AddNumberToObject(s, "mean_class_accuracy", r->mean_class_accuracy);
    cJSON_AddNumberToObject(s, "c", r->c);
    cJSON_AddStringToObject(s, "c_selection", a->c_value ? "given" : "cross-validation");
    if (r->cv_accuracy >= 0) cJSON_AddNumberToObject(s, "cv_accuracy", r->cv_accuracy);
    cJSON_AddStringToObject(s, "solver", "liblinear L2R_L1LOSS_SVC_DUAL (one-vs-rest)");
    cJSON_AddNumberToObject(s, "train_samples", (double)r->train_samples);
    cJSON_AddNumberToObject(s, "test_samples", (double)r->test_samples);
    cJSON_AddNumberToObject(s, "points", r->points);
    cJSON_AddNumberToObject(s, "feature_dim", r->feature_dim);
    cJSON_AddNumberToObject(s, "seconds_encode", r->seconds_encode);
    cJSON_AddNumberToObject(s, "seconds_svm", r->seconds_svm);
    cJSON_AddNumberToObject(s, "encode_samples_per_s",
                            r->seconds_encode > 0
                                ? (double)(r->train_samples + r->test_samples) / r->seconds_encode
                                : 0);
}

const i2p_command cmd_svm = {
    .name = "svm",
    .summary = "linear-SVM evaluation of a frozen encoder",
    .usage = "i2pmae svm --data TRAIN.h5 --test TEST.h5 (--checkpoint CKPT | --random-init) [--c C|auto]",
    .description =
        "Encodes both splits with the frozen encoder on the official SVM path (BatchNorm in eval mode,\n"
        "every scale-2 token visible, scales 1 and 0 through the kNN propagation; feature =\n"
        "max-pool of the last stage's tokens after its LayerNorm, dims[2] wide), trains a linear SVM\n"
        "(liblinear, hinge loss, L2, one-vs-rest) on the training split and reports test accuracy,\n"
        "a per-class table and a JSON line. The architecture comes from the checkpoint; model\n"
        "options given must agree with it, except --points (the spec's protocol uses the first 1024\n"
        "points: jobs/svm-modelnet40.ini) and --fps-skip-origin. Layout and protocol: docs/svm.md.",
    .state_size = sizeof(svm_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
