/* train_summary.c -- the JSON finetune and partseg write alike (see train_summary.h). */
#include "train_summary.h"

/* A number field of the JSON. */
typedef struct {
    const char *key;
    double value;
} number_field;

static void add_numbers(cJSON *s, const number_field *f, int n)
{
    for (int i = 0; i < n; i++) cJSON_AddNumberToObject(s, f[i].key, f[i].value);
}

void train_config_json_add(cJSON *tr, const train_opts *o, const step_layout *L, const cosine_schedule *sched,
                           const char *precision)
{
    cJSON_AddStringToObject(tr, "init", o->scratch ? "scratch" : "pretrained");
    const number_field f[] = {
        {"seed", (double)o->seed}, {"batch", (double)L->batch}, {"micro_batch", (double)L->micro},
        {"sched_epochs", (double)sched->epochs}, {"warmup_epochs", (double)o->warmup_epochs},
        {"lr", o->lr}, {"min_lr", o->min_lr}, {"warmup_lr", o->warmup_lr},
        {"weight_decay", o->weight_decay}, {"clip_grad", o->clip_grad},
    };
    add_numbers(tr, f, (int)(sizeof f / sizeof f[0]));
    cJSON_AddStringToObject(tr, "precision", precision);
    cJSON_AddNumberToObject(tr, "eval_every", (double)o->eval_every);
}

double train_summary_samples(const train_result *r)
{
    return (double)(r->end_epoch - r->start_epoch) * (double)r->layout.steps_per_epoch * (double)r->layout.batch;
}

void train_summary_add_run(cJSON *s, const train_result *r, int scratch, const char *pretrained,
                           const char *precision)
{
    cJSON_AddStringToObject(s, "encoder", scratch ? "scratch" : "pretrained");
    cJSON_AddStringToObject(s, "precision", precision);
    if (!scratch) cJSON_AddStringToObject(s, "pretrained", pretrained);
    cJSON_AddBoolToObject(s, "resumed", r->resumed);
    const number_field f[] = {
        {"start_epoch", (double)r->start_epoch}, {"end_epoch", (double)r->end_epoch},
        {"batch", (double)r->layout.batch}, {"micro_batch", (double)r->layout.micro},
        {"train_samples", (double)r->layout.n}, {"test_samples", (double)r->n_test},
    };
    add_numbers(s, f, (int)(sizeof f / sizeof f[0]));
}

void train_summary_add_epoch(cJSON *s, const train_result *r, int points)
{
    const number_field f[] = {
        {"points", points}, {"parameters", (double)r->n_params}, {"train_loss", r->train_loss},
        {"train_acc", r->train_acc}, {"lr", r->lr},
    };
    add_numbers(s, f, (int)(sizeof f / sizeof f[0]));
}

void train_summary_add_files_times(cJSON *s, const train_result *r)
{
    cJSON_AddStringToObject(s, "best_checkpoint", r->best_path);
    cJSON_AddStringToObject(s, "checkpoint", r->last_checkpoint);
    const number_field f[] = {
        {"seconds", r->seconds_total}, {"seconds_train", r->seconds_train}, {"seconds_eval", r->seconds_eval},
        {"seconds_allreduce", r->seconds_allreduce},
    };
    add_numbers(s, f, (int)(sizeof f / sizeof f[0]));
}
