/* cli_fewshot_split.c -- `i2pmae fewshot-split`: one fold of an N-way K-shot split as one file
 * (engine: fewshot_split.c; protocol and layout: fewshot_split.h, docs/fewshot.md). */
#include <mpi.h>

#include "commands.h"
#include "errors.h"
#include "fewshot_split.h"
#include "log.h"

typedef struct {
    fewshot_split_args a;
    fewshot_split_result r;
} split_state;

static int options(void *state, cli_opt *opts)
{
    split_state *s = state;
    fewshot_split_args *a = &s->a;
    a->way = 5;
    a->shot = 10;
    a->query = 20;
    a->fold = 0;
    a->seed = 0;
    const cli_opt own[] = {
        {"data", OPT_STRING, a->data, "FILE", "training split to draw from (canonical, ModelNet40 or ScanObjectNN h5)"},
        {"way", OPT_LONG, &a->way, "N", "classes per fold"},
        {"shot", OPT_LONG, &a->shot, "K", "training clouds per class"},
        {"query", OPT_LONG, &a->query, "Q", "test clouds per class"},
        {"fold", OPT_LONG, &a->fold, "F", "fold number (0-based; the protocol uses 10 folds)"},
        {"seed", OPT_LONG, &a->seed, "S", "seed; the fold depends on (seed, way, shot, fold) only"},
        {"output", OPT_STRING, a->output, "FILE", "output split file (/train and /test groups)"},
        {"force", OPT_FLAG, &a->force, NULL, "replace FILE if it exists"},
    };
    return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));
}

static int check(void *state, char *err)
{
    const fewshot_split_args *a = &((split_state *)state)->a;
    if (!a->data[0] || !a->output[0]) return errf(err, "fewshot-split: --data FILE and -o FILE are required");
    if (a->way < 1) return errf(err, "--way %ld: must be at least 1", a->way);
    if (a->shot < 1) return errf(err, "--shot %ld: must be at least 1", a->shot);
    if (a->query < 1) return errf(err, "--query %ld: must be at least 1", a->query);
    if (a->fold < 0) return errf(err, "--fold %ld: must be non-negative", a->fold);
    if (a->seed < 0) return errf(err, "--seed %ld: must be non-negative", a->seed);
    return 0;
}

static int run(void *state, const cmd_env *env, char *err)
{
    split_state *s = state;
    (void)env;
    if (fewshot_split_run(&s->a, MPI_COMM_WORLD, &s->r, err)) return -1;
    log_info("fewshot-split: wrote %s: %ld-way %ld-shot fold %ld (seed %ld): classes %s, %ld train + "
             "%ld test clouds of %ld points", s->a.output, s->a.way, s->a.shot, s->a.fold, s->a.seed,
             s->r.class_ids, s->r.n_train, s->r.n_test, s->r.points);
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *j)
{
    const split_state *s = state;
    (void)env;
    cJSON_AddStringToObject(j, "output", s->a.output);
    cJSON_AddNumberToObject(j, "way", (double)s->a.way);
    cJSON_AddNumberToObject(j, "shot", (double)s->a.shot);
    cJSON_AddNumberToObject(j, "query", (double)s->a.query);
    cJSON_AddNumberToObject(j, "fold", (double)s->a.fold);
    cJSON_AddNumberToObject(j, "seed", (double)s->a.seed);
    cJSON_AddStringToObject(j, "class_ids", s->r.class_ids);
    cJSON_AddNumberToObject(j, "input_classes", s->r.input_classes);
    cJSON_AddNumberToObject(j, "input_samples", (double)s->r.input_samples);
    cJSON_AddNumberToObject(j, "train_samples", (double)s->r.n_train);
    cJSON_AddNumberToObject(j, "test_samples", (double)s->r.n_test);
    cJSON_AddNumberToObject(j, "points", (double)s->r.points);
    cJSON_AddNumberToObject(j, "seconds", s->r.seconds);
}

const i2p_command cmd_fewshot_split = {
    .name = "fewshot-split",
    .summary = "write one fold of an N-way K-shot few-shot split (/train and /test groups)",
    .usage = "i2pmae fewshot-split --data TRAIN.h5 --way N --shot K --fold F --seed S [--query 20] -o SPLIT.h5",
    .description =
        "Draws N classes of the input, then K training and Q test clouds per class (all distinct),\n"
        "from (seed, way, shot, fold) alone: every site and every rank count gets the same fold,\n"
        "byte for byte. Labels become 0..N-1 (class_names keeps the original names). A class with\n"
        "fewer than K + Q clouds is an error. `finetune --data SPLIT.h5` (no --test) trains on /train\n"
        "and evaluates /test; other commands read a group as SPLIT.h5:/train. Details: docs/fewshot.md.",
    .state_size = sizeof(split_state),
    .options = options,
    .check = check,
    .run = run,
    .summarise = summarise,
};
