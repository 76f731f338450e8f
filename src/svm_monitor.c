/* svm_monitor.c -- the per-epoch linear-SVM monitor of pre-training (see svm_monitor.h). */
#include "svm_monitor.h"

#include <math.h>
#include <string.h>

#include "dist.h"
#include "errors.h"
#include "log.h"

#define SVM_MONITOR_ARRAY "/svm_monitor"

int svm_monitor_init(svm_monitor *s, long every, const char *data, const char *test, double c,
                     long steps_per_epoch, const model3d_config *cfg, dnn_ctx *ctx, MPI_Comm comm,
                     char *err)
{
    memset(s, 0, sizeof *s);
    s->every = every;
    s->steps_per_epoch = steps_per_epoch;
    s->last_acc = NAN;
    s->best_step = -1;
    if (every <= 0) return 0;
    int same;
    MPI_Comm_compare(comm, MPI_COMM_WORLD, &same);
    if (same != MPI_IDENT && same != MPI_CONGRUENT)
        return errf(err, "svm monitor: runs on MPI_COMM_WORLD only (svm_eval.h)");
    s->cfg = *cfg;
    s->o = (svm_eval_options){.data = data, .test = test, .c = c, .folds = 5,
                              .batch = SVM_MONITOR_BATCH, .seed = SVM_MONITOR_SEED, .quiet = 1};
    if (svm_eval_check_splits(&s->o, &s->cfg, err)) return err_prefix(err, "--svm-data/--svm-test");
    int rc = model3d_create(&s->m, &s->cfg, SVM_MONITOR_BATCH, SVM_MONITOR_SEED, ctx, err);
    return dist_any_error(MPI_COMM_WORLD, rc, err);
}

void svm_monitor_free(svm_monitor *s)
{
    model3d_free(s->m);
    s->m = NULL;
}

int svm_monitor_due(const svm_monitor *s, long done, int last)
{
    if (s->every <= 0) return 0;
    return last || (done % s->steps_per_epoch == 0 && (done / s->steps_per_epoch) % s->every == 0);
}

int svm_monitor_measure(svm_monitor *s, model3d *m, long done, double *acc, char *err)
{
    double t0 = now_s();
    if (model3d_n_params(m) != model3d_n_params(s->m) || model3d_n_buffers(m) != model3d_n_buffers(s->m))
        return errf(err, "svm monitor: the evaluation model does not match the trained one");
    memcpy(model3d_params(s->m), model3d_params(m), sizeof(float) * (size_t)model3d_n_params(m));
    memcpy(model3d_buffers(s->m), model3d_buffers(m), sizeof(float) * (size_t)model3d_n_buffers(m));
    svm_eval_result r;
    if (svm_eval_model(&s->o, s->m, &s->cfg, &r, err)) return err_prefix(err, "svm monitor");
    long counts[2] = {r.correct, r.test_samples}; /* valid on rank 0 */
    MPI_Bcast(counts, 2, MPI_LONG, 0, MPI_COMM_WORLD);
    *acc = (double)counts[0] / (double)counts[1];
    s->last_acc = *acc;
    s->measurements++;
    /* a better fraction: counts[0] / counts[1] > best_correct / test_samples, compared exactly */
    if (s->best_step < 0 || counts[0] * s->stored[2] > s->stored[1] * counts[1]) {
        s->best_step = done;
        s->stored[0] = done;
        s->stored[1] = counts[0];
        s->stored[2] = counts[1];
    }
    s->seconds += now_s() - t0;
    log_info("pretrain: step %ld (epoch %g): linear-SVM test accuracy %.2f%% (C = %g; best %.2f%% at "
             "epoch %g), %.1f s", done, (double)done / (double)s->steps_per_epoch, 100 * *acc,
             s->o.c, 100 * svm_monitor_best_acc(s), svm_monitor_best_epoch(s), now_s() - t0);
    return 0;
}

double svm_monitor_best_acc(const svm_monitor *s)
{
    return s->best_step < 0 ? NAN : (double)s->stored[1] / (double)s->stored[2];
}

double svm_monitor_best_epoch(const svm_monitor *s)
{
    return s->best_step < 0 ? NAN : (double)s->best_step / (double)s->steps_per_epoch;
}

int svm_monitor_ckpt_array(svm_monitor *s, ckpt_array *arr)
{
    if (s->best_step < 0) return 0;
    *arr = (ckpt_array){SVM_MONITOR_ARRAY, CKPT_I64, s->stored, 3};
    return 1;
}

int svm_monitor_restore(svm_monitor *s, const char *path, MPI_Comm comm, char *err)
{
    long count;
    if (ckpt_array_count(path, comm, SVM_MONITOR_ARRAY, &count, err)) return -1;
    s->best_step = -1;
    if (count == 0) return 0;
    if (count != 3)
        return errf(err, "%s: %s has %ld values, not 3", path, SVM_MONITOR_ARRAY, count);
    int64_t v[3];
    ckpt_array arr = {SVM_MONITOR_ARRAY, CKPT_I64, v, 3};
    ckpt_state st;
    if (ckpt_read(path, comm, &st, NULL, &arr, 1, err)) return -1;
    if (v[0] < 0 || v[1] < 0 || v[2] < 1 || v[1] > v[2])
        return errf(err, "%s: %s holds {%lld, %lld, %lld}: not a step and a fraction", path,
                    SVM_MONITOR_ARRAY, (long long)v[0], (long long)v[1], (long long)v[2]);
    memcpy(s->stored, v, sizeof v);
    s->best_step = (long)v[0];
    return 0;
}
