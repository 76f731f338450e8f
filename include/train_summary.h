/* train_summary.h -- the JSON that a training run of finetune and of partseg writes alike: the
 * "train" section of the run's configuration (kept in its checkpoints, which a resume must match)
 * and the fields of the summary line (cli_finetune.c, cli_partseg.c). Each group is in the order
 * both have always written it; the commands add their own fields around the groups. */
#ifndef I2P_TRAIN_SUMMARY_H
#define I2P_TRAIN_SUMMARY_H

#include <cjson/cJSON.h>

#include "train_common.h"

/* Adds to tr (the "train" object of a run's configuration) init, seed, batch, micro_batch,
 * sched_epochs, warmup_epochs, lr, min_lr, warmup_lr, weight_decay, clip_grad, precision and
 * eval_every, in that order: L's batches and sched's length, the rest o's. */
void train_config_json_add(cJSON *tr, const train_opts *o, const step_layout *L, const cosine_schedule *sched,
                           const char *precision);

/* The samples this run trained on: its epochs x steps per epoch x batch. */
double train_summary_samples(const train_result *r);

/* encoder ("scratch" or "pretrained"), precision, pretrained (unless scratch), resumed,
 * start_epoch, end_epoch, batch, micro_batch, train_samples, test_samples. */
void train_summary_add_run(cJSON *s, const train_result *r, int scratch, const char *pretrained,
                           const char *precision);

/* points (the network's), parameters, and the last epoch's train_loss, train_acc and lr. */
void train_summary_add_epoch(cJSON *s, const train_result *r, int points);

/* best_checkpoint, checkpoint (the last written), then seconds, seconds_train, seconds_eval and
 * seconds_allreduce. */
void train_summary_add_files_times(cJSON *s, const train_result *r);

#endif
