/* fewshot_split.h -- one fold of an N-way K-shot few-shot split (user guide docs/fewshot.md).
 *
 * Protocol of Point-BERT / Point-MAE / I2P-MAE: from a training split, draw `way` classes, then per
 * class `shot` training clouds and `query` test clouds, all distinct. The draw depends on
 * (seed, way, shot, fold) only -- not on the rank count, the input's path or --query:
 *   classes: a partial Fisher-Yates shuffle of [0, n_classes) (rng.h stream
 *            (seed, fewshot_stream(way, shot, fold, 0))), the first `way` kept, sorted ascending;
 *            new label i = the i-th smallest chosen class;
 *   clouds:  for chosen class c, a partial Fisher-Yates shuffle of its clouds (in file order) on
 *            stream (seed, fewshot_stream(way, shot, fold, 1 + c)); the first `shot` are training
 *            clouds, the next `query` test clouds; each part sorted by index in the file.
 * So a larger --query keeps the training clouds and adds test clouds. Every class of the input must
 * have at least shot + query clouds (checked for all classes, whichever are drawn, so the error does
 * not depend on the fold); the error names the class.
 *
 * Output file (written as .partial and renamed, h5io.h): groups /train and /test, each in the
 * canonical point-cloud layout of dataset.h (points (n,P,3) float32 chunked per cloud, label (n)
 * int32 in [0, way)) with the attributes format, source ("fewshot-split"), class_names (the chosen
 * classes' original names in new-label order) and n_classes (= way), plus index (n) int64: the
 * cloud's row in the input. Root attributes: format = "i2pmae-fewshot-split", way, shot, query,
 * fold, seed, input_classes, input_source, class_ids (the original labels, "3,7,11"). The same
 * (input, seed, way, shot, fold, query) gives the same bytes for any rank count.
 * Read a group with dataset_open("SPLIT.h5:/train") (dataset.h); `finetune --data SPLIT.h5`
 * without --test reads both.
 */
#ifndef I2P_FEWSHOT_SPLIT_H
#define I2P_FEWSHOT_SPLIT_H

#include <mpi.h>
#include <stdint.h>

#include "cli.h"
#include "dataset.h"

typedef struct {
    char data[CLI_STR_LEN], output[CLI_STR_LEN];
    long way, shot, query, fold, seed;
    int force;
} fewshot_split_args;

/* Which clouds a fold takes: classes (way), original labels ascending; train (way*shot) and test
 * (way*query) input rows, grouped by new label, ascending within a class. */
typedef struct {
    long way, shot, query;
    int32_t *classes;
    long *train, *test;
} fewshot_plan;

typedef struct {
    int input_classes;
    long input_samples, points, n_train, n_test;
    char class_ids[DATASET_MAX_CLASSES * 6];
    double seconds;
} fewshot_split_result;

/* The rng.h stream of one draw of a fold: part 0 the classes, part 1 + c the clouds of class c. */
uint64_t fewshot_stream(long way, long shot, long fold, long part);

/* Fills plan (allocated here; fewshot_plan_free) from the input's labels (n of them, in
 * [0, n_classes)); class_names ('\n'-separated, may be empty) only name a short class in the error. */
int fewshot_plan_make(const int32_t *labels, long n, int n_classes, const char *class_names,
                      long way, long shot, long query, long fold, uint64_t seed, fewshot_plan *plan,
                      char *err);
void fewshot_plan_free(fewshot_plan *plan);

/* Reads a->data, draws the fold and writes a->output. Collective over comm (every rank draws the same
 * plan; ranks read and write contiguous blocks of rows); a failure is agreed on every rank. */
int fewshot_split_run(const fewshot_split_args *a, MPI_Comm comm, fewshot_split_result *r, char *err);

#endif
