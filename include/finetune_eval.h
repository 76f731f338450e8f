/* finetune_eval.h -- evaluation of a fine-tuned classifier on a test split: accuracy, confusion,
 * voting (i2pmae-spec.md section 8; docs/finetune.md).
 *
 * The test split is cut into chunks of `chunk` consecutive samples (the forward batch); rank r of R
 * takes the chunks dist_block_range(n_chunks, R, r), so every sample is always evaluated in the
 * same batch whatever the rank count. Each rank reads and samples only its own samples once
 * (candidates of finetune_data.h, kept in memory). Test view: FPS to Pm points. Vote: the logits of
 * `views` training-like views (random Pm of the candidates + the protocol's augmentation, stream
 * (seed, repeat, view, sample)) summed; its argmax is the vote.
 */
#ifndef I2P_FINETUNE_EVAL_H
#define I2P_FINETUNE_EVAL_H

#include <mpi.h>
#include <stdint.h>

#include "classifier.h"
#include "dataset.h"
#include "finetune_data.h"
#include "metrics.h"
#include "paths.h"

/* One evaluation of the test split. */
typedef struct {
    long epoch;           /* 0-based epoch after which it was measured; -1: none yet */
    long correct, total;
    double acc, mean_class_acc;
} ft_record;

typedef struct {
    dataset d;
    int open;
    long n, chunk, first, count;  /* samples in the file; per forward; this rank's [first, +count) */
    long Pm;
    int n_classes;
    ft_sampler smp;
    float *cand;                  /* (count, n_fps, 3) */
    int32_t *labels;              /* (count) */
    float *pts, *logits, *sum;    /* one chunk */
    int32_t *pred;
} ft_testset;

/* Opens path (every rank, independent reads), checks it (at least Pm points per cloud, no label
 * outside [0, n_classes): the error names train_path, the split the classes come from) and samples
 * this rank's part (FPS candidates with the model's fps_skip_origin rule). Collective over comm
 * (errors agreed). */
int ft_testset_open(ft_testset *t, const char *path, long Pm, int skip_origin, int n_classes,
                    long chunk, const char *train_path, MPI_Comm comm, char *err);
void ft_testset_close(ft_testset *t);

/* cm <- the confusion matrix of the whole split (eval mode), on every rank. Collective. */
int ft_testset_eval(ft_testset *t, classifier *c, confusion *cm, MPI_Comm comm, char *err);

/* *correct <- the samples of the whole split the vote of `repeat` gets right. Collective. */
int ft_testset_vote(ft_testset *t, classifier *c, ft_protocol p, uint64_t seed, long views,
                    long repeat, long *correct, MPI_Comm comm, char *err);

/* --eval-only: a fine-tuning checkpoint (best.h5 or ckpt-*.h5) on a test split. */
typedef struct {
    char checkpoint[I2P_PATH_LEN], test[I2P_PATH_LEN];
    long micro;           /* forward batch; 0: the checkpoint's micro-batch */
    int vote;
    long vote_views, vote_repeats;
    long seed;            /* vote streams; < 0: the checkpoint's seed */
    int protocol_set;     /* 0: the checkpoint's protocol */
    ft_protocol protocol;
} ft_eval_args;

typedef struct {
    ft_record rec;
    long epoch;           /* epoch stored in the checkpoint (epochs done) */
    int n_classes;
    long points;
    ft_protocol protocol;
    long seed;
    double vote_mean, vote_std, vote_max, vote_min; /* over repetitions (population std) */
    double seconds_eval, seconds_vote, vote_clouds_per_s;
} ft_eval_result;

/* Evaluates; rank 0 prints the per-class table. cm (caller-initialised with 0 classes) receives
 * the confusion matrix. Collective. */
int finetune_eval_only(const ft_eval_args *a, MPI_Comm comm, ft_eval_result *r, confusion *cm,
                       char *err);

#endif
