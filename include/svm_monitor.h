/* svm_monitor.h -- the per-epoch linear-SVM monitor of pre-training (`pretrain --svm-every N
 * --svm-data TRAIN.h5 --svm-test TEST.h5 [--svm-c C]`; docs/pretrain.md).
 *
 * Every N epochs (at the step that ends the epoch) and at the last step of the run, the encoder
 * being trained is evaluated as `i2pmae svm --checkpoint <that step's checkpoint> --c C` does
 * (svm_eval.h, with its defaults: 32 samples per encoder batch, liblinear seed 1): an evaluation
 * model of the same configuration, created once, receives a copy of the parameters and BatchNorm
 * buffers (exactly what the checkpoint stores) and encodes both splits; liblinear runs on rank 0 and
 * the result is broadcast. Training is not changed: the trained model is only read, and nothing
 * random of training is drawn from a shared generator (liblinear's rand() is used only here).
 *
 * The best accuracy so far and its step are kept in checkpoints as the int64 array
 * "/svm_monitor" = {best_step, best_correct, test_samples} (absent while there is none), so a
 * resumed run goes on from the same best; a checkpoint without it (older, or written without the
 * monitor) starts with none. Ties keep the earlier step.
 * Collective over MPI_COMM_WORLD (the communicator of svm_eval.h): pretrain must run on it.
 */
#ifndef I2P_SVM_MONITOR_H
#define I2P_SVM_MONITOR_H

#include <mpi.h>
#include <stdint.h>

#include "checkpoint.h"
#include "dnn.h"
#include "model3d.h"
#include "svm_eval.h"

#define SVM_MONITOR_BATCH 32 /* samples per encoder batch per rank: `i2pmae svm`'s default */
#define SVM_MONITOR_SEED 1   /* liblinear's seed: `i2pmae svm`'s default */

typedef struct {
    long every;              /* epochs between measurements; 0: off */
    long steps_per_epoch;
    model3d *m;              /* the evaluation model (NULL while off) */
    model3d_config cfg;
    svm_eval_options o;
    long measurements;       /* done by this process */
    double last_acc;         /* of the latest measurement (NAN: none) */
    long best_step;          /* -1: no measurement yet (nor restored) */
    int64_t stored[3];       /* best_step, best_correct, test_samples: the checkpoint array */
    double seconds;          /* spent measuring */
} svm_monitor;

/* Sets s up; every 0 leaves it off (nothing is opened, the checkpoint array is still restored and
 * kept). Otherwise checks both splits against cfg (svm_eval_check_splits) and creates the evaluation
 * model with ctx. data, test: kept as pointers. comm: the trainer's, which must be MPI_COMM_WORLD
 * (or congruent to it). Collective. */
int svm_monitor_init(svm_monitor *s, long every, const char *data, const char *test, double c,
                     long steps_per_epoch, const model3d_config *cfg, dnn_ctx *ctx, MPI_Comm comm,
                     char *err);
void svm_monitor_free(svm_monitor *s);

/* 1 if the step `done` (optimiser steps done) is measured: an epoch boundary that is a multiple of
 * `every` epochs, or the run's last step (last); 0 when off. */
int svm_monitor_due(const svm_monitor *s, long done, int last);

/* Measures the trained model m after step `done`; *acc: the test accuracy (the same on every rank).
 * Updates the best. Collective. */
int svm_monitor_measure(svm_monitor *s, model3d *m, long done, double *acc, char *err);

/* The best so far: accuracy (NAN if none) and the epochs done at its step (steps / steps_per_epoch). */
double svm_monitor_best_acc(const svm_monitor *s);
double svm_monitor_best_epoch(const svm_monitor *s);

/* Adds the checkpoint array to arr (if there is a best): returns how many arrays were added (0 or 1). */
int svm_monitor_ckpt_array(svm_monitor *s, ckpt_array *arr);

/* Restores the best from checkpoint path (none if the file has no "/svm_monitor"). Collective over comm. */
int svm_monitor_restore(svm_monitor *s, const char *path, MPI_Comm comm, char *err);

#endif
