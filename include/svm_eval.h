/* svm_eval.h -- linear-SVM evaluation of a frozen 3D encoder (i2pmae-spec.md section 8; `i2pmae
 * svm`, docs/svm.md).
 *
 * The model comes from a checkpoint (its configuration; given architecture options must agree,
 * except points, mask-ratio and drop-path, which do not change the parameters; points is applied)
 * or is the spec's network with the options applied, randomly initialised. Every rank encodes a
 * contiguous block of each split (dist_block_range) in batches with model3d_encode_global (no
 * mask, BatchNorm in eval mode, max-pool of the last stage after its LayerNorm); rank 0 gathers the
 * features, trains liblinear (svm.h) on the training split, prints a per-class table of the test
 * split to stdout and fills the result.
 */
#ifndef I2P_SVM_EVAL_H
#define I2P_SVM_EVAL_H

#include "model_opts.h"

typedef struct {
    const char *data, *test;  /* training and test splits (point-cloud files) */
    const char *checkpoint;   /* pre-trained checkpoint; ignored with random_init */
    int random_init;          /* evaluate a randomly initialised encoder (seeded by seed) */
    double c;                 /* SVM cost; 0: choose it by folds-fold cross-validation */
    int folds;
    long batch, seed;         /* samples per encoder batch per rank; seed of weights and liblinear */
    const model_opts *model;  /* architecture options given */
    int quiet;                /* 1: no per-class table, no final progress line (svm_monitor.h) */
    int bn_stats;             /* 1: the encoder's BatchNorm statistics re-estimated on the training
                                 split before encoding (batches of `batch` samples on any number of
                                 ranks; docs/svm.md); 0: the checkpoint's (or initial) ones */
} svm_eval_options;

/* The figures; those of the SVM are valid on rank 0 only. */
typedef struct {
    double accuracy, mean_class_accuracy;
    long correct;             /* test samples classified right (accuracy = correct / test_samples) */
    double c;                 /* the cost used */
    double cv_accuracy;       /* cross-validation accuracy of that cost; -1 when c was given */
    long train_samples, test_samples;
    int points, feature_dim;  /* points per cloud the encoder took, feature width (dims[2]) */
    double seconds_encode, seconds_svm;
} svm_eval_result;

/* Collective over MPI_COMM_WORLD; a failure (including out of memory) is agreed on every rank. */
int svm_eval_run(const svm_eval_options *o, svm_eval_result *r, char *err);

/* The part of svm_eval_run after the model is built: m (configuration cfg, created for o->batch
 * samples, parameters and BatchNorm buffers loaded) encodes both splits and the SVM is trained and
 * tested; o->checkpoint and o->random_init are not used, nor o->model. Collective over
 * MPI_COMM_WORLD. */
int svm_eval_model(const svm_eval_options *o, model3d *m, const model3d_config *cfg,
                   svm_eval_result *r, char *err);

/* Opens both splits and checks them against cfg (points, classes) as svm_eval_run does first.
 * Collective over MPI_COMM_WORLD. */
int svm_eval_check_splits(const svm_eval_options *o, const model3d_config *cfg, char *err);

#endif
