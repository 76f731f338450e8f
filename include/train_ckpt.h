/* train_ckpt.h -- the checkpoints of finetune and partseg: what one holds, written at an epoch's
 * end or where a signal stopped the run (ckpt-<step>.h5, pruned to --keep), best.h5, and --resume
 * from the newest valid one (layout: docs/finetune.md, docs/partseg.md).
 *
 * A checkpoint's arrays, in this order: /params, /buffers, the command's best record (two arrays:
 * finetune's /best/confusion and /best/epoch, partseg's /best/epoch and /best/metrics_bits),
 * /adamw/m, /adamw/v, and /epoch/sums_bits (the stopped epoch's loss and correct sums, as IEEE bits,
 * only in a checkpoint written inside an epoch). best.h5 holds the first four. Every array is read
 * straight into the run's own storage, so a resume restores the best record with the network. */
#ifndef I2P_TRAIN_CKPT_H
#define I2P_TRAIN_CKPT_H

#include <mpi.h>
#include <stddef.h>

#include "checkpoint.h"
#include "optim.h"
#include "train_common.h"

#define TRAIN_CKPT_ARRAYS 7      /* a ckpt-<step>.h5 */
#define TRAIN_CKPT_BEST_ARRAYS 4 /* best.h5: no moments, no sums */

/* Where a run's checkpoint comes from and goes to (built by the command: its ckpt_of). */
typedef struct {
    const train_opts *o; /* cmd (messages), rundir, seed, keep */
    MPI_Comm comm;
    const step_layout *L;
    const char *config_json, *tensor_table; /* compared on resume; stored as provenance */
    ckpt_array params, buffers, best[2];    /* the run's storage; params.count: the moments' length */
    adamw_state *opt;                       /* its moments, and the step AdamW's bias correction resumes at */
    train_part_epoch *part;                 /* written: the stop kept inside an epoch; read: restored */
    /* NULL: every array whole on every rank; else the arrays' parts (TRAIN_CKPT_ARRAYS into out) for
     * writing (write 1) or reading, as ckpt_write_parts / ckpt_read_parts take them (--stages) */
    const ckpt_part *(*parts)(const void *ctx, int write, ckpt_part *out);
    const void *parts_ctx;
} train_ckpt;

/* best.h5-like: path holds the first TRAIN_CKPT_BEST_ARRAYS arrays, whole (under --stages after the
 * stages' sync), as the state after epochs_done epochs. The seconds are added to *seconds. Collective. */
int train_ckpt_write_best(const train_ckpt *c, const char *path, long epochs_done, double *seconds, char *err);

/* RUNDIR/ckpt-<step>.h5 after epochs_done epochs and c->part->steps steps of the next (0: at an
 * epoch's end), the older ones pruned to --keep; its name in last_checkpoint (I2P_PATH_LEN) and
 * logged; the seconds added to *seconds. Collective. */
int train_ckpt_save(const train_ckpt *c, long epochs_done, char *last_checkpoint, double *seconds, char *err);

/* --resume: the newest checkpoint of RUNDIR that loads (ckpt_resume_newest: its configuration must
 * match c->config_json; one whose step is neither an epoch's end of c->L nor a signal's stop inside
 * one is skipped), read into the run's storage; its name in last_checkpoint (len bytes), *epochs_done
 * the epochs it holds whole, c->part the stop inside the next one. Collective; 0 or -1. */
int train_ckpt_resume(const train_ckpt *c, char *last_checkpoint, size_t len, long *epochs_done, char *err);

#endif
