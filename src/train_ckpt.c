/* train_ckpt.c -- finetune's and partseg's checkpoints: write, save with pruning, resume (see
 * train_ckpt.h). */
#include "train_ckpt.h"

#include <stdio.h>

#include "errors.h"
#include "log.h"
#include "paths.h"

/* The arrays of c in their stored order (TRAIN_CKPT_ARRAYS); the epoch's sums count only when
 * c->part says the run stopped inside an epoch. */
static void ckpt_arrays(const train_ckpt *c, ckpt_array *arr)
{
    arr[0] = c->params;
    arr[1] = c->buffers;
    arr[2] = c->best[0];
    arr[3] = c->best[1];
    arr[4] = (ckpt_array){"/adamw/m", CKPT_F32, c->opt->m, c->params.count};
    arr[5] = (ckpt_array){"/adamw/v", CKPT_F32, c->opt->v, c->params.count};
    arr[6] = (ckpt_array){"/epoch/sums_bits", CKPT_I64, c->part->sums, c->part->steps ? 2 : 0};
}

/* Writes the first n arrays (with parts, or NULL: whole) to path as the state after epochs_done
 * epochs and `steps` steps of the next. */
static int write_arrays(const train_ckpt *c, const char *path, long epochs_done, long steps, const ckpt_part *parts,
                        int n, double *seconds, char *err)
{
    double t0 = now_s();
    ckpt_array arr[TRAIN_CKPT_ARRAYS];
    ckpt_arrays(c, arr);
    ckpt_state st = {.step = epochs_done * c->L->steps_per_epoch + steps, .epoch = epochs_done,
                     .epoch_pos = steps * c->L->batch, .seed = c->o->seed};
    int rc = ckpt_write_parts(path, c->comm, &st, c->config_json, c->tensor_table, arr, parts, n, err);
    *seconds += now_s() - t0;
    return rc;
}

int train_ckpt_write_best(const train_ckpt *c, const char *path, long epochs_done, double *seconds, char *err)
{
    return write_arrays(c, path, epochs_done, 0, NULL, TRAIN_CKPT_BEST_ARRAYS, seconds, err);
}

int train_ckpt_save(const train_ckpt *c, long epochs_done, char *last_checkpoint, double *seconds, char *err)
{
    long steps = c->part->steps, spe = c->L->steps_per_epoch;
    ckpt_part parts[TRAIN_CKPT_ARRAYS];
    char path[I2P_PATH_LEN];
    ckpt_path(path, sizeof path, c->o->rundir, epochs_done * spe + steps);
    if (write_arrays(c, path, epochs_done, steps, c->parts ? c->parts(c->parts_ctx, 1, parts) : NULL,
                     TRAIN_CKPT_ARRAYS, seconds, err))
        return -1;
    if (ckpt_prune(c->o->rundir, c->comm, (int)c->o->keep, err)) return -1;
    snprintf(last_checkpoint, I2P_PATH_LEN, "%s", path);
    if (steps) log_info("%s: checkpoint %s (epoch %ld, step %ld of %ld)", c->o->cmd, path, epochs_done, steps, spe);
    else log_info("%s: checkpoint %s (epoch %ld done)", c->o->cmd, path, epochs_done);
    return 0;
}

typedef struct {
    const train_ckpt *c;
    long epochs_done;
} resume_ctx;

/* ckpt_load_fn: the arrays of path, which must end an epoch of c->L or, written when a signal
 * stopped the run, be a step inside one (with that epoch's sums so far, which are stored only then). */
static int resume_load(void *ctx, const char *path, const ckpt_state *hdr, char *err)
{
    resume_ctx *r = ctx;
    const train_ckpt *c = r->c;
    ckpt_state st = *hdr;
    long spe = c->L->steps_per_epoch, part = st.epoch_pos / c->L->batch;
    c->part->steps = st.epoch_pos != 0; /* lists the sums exactly when the file holds them */
    ckpt_array arr[TRAIN_CKPT_ARRAYS];
    ckpt_part parts[TRAIN_CKPT_ARRAYS];
    ckpt_arrays(c, arr);
    int rc = ckpt_read_parts(path, c->comm, &st, NULL, arr, c->parts ? c->parts(c->parts_ctx, 0, parts) : NULL,
                             TRAIN_CKPT_ARRAYS, err);
    if (!rc && (st.epoch_pos < 0 || st.epoch_pos % c->L->batch || part >= spe || st.step != st.epoch * spe + part))
        rc = errf(err, "%s: step %ld is not the end of epoch %ld of this configuration", path, st.step, st.epoch);
    c->part->steps = rc ? 0 : part;
    if (!rc) {
        r->epochs_done = st.epoch;
        c->opt->step = st.step; /* AdamW's bias correction continues from here */
    }
    return rc;
}

int train_ckpt_resume(const train_ckpt *c, char *last_checkpoint, size_t len, long *epochs_done, char *err)
{
    resume_ctx r = {c, 0};
    if (ckpt_resume_newest(c->o->rundir, c->comm, c->config_json, c->o->cmd, resume_load, &r, last_checkpoint, len,
                           err))
        return -1;
    *epochs_done = r.epochs_done;
    return 0;
}
