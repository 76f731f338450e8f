/* train_loop.c -- the epoch loop finetune and partseg share (see train_loop.h). */
#include "train_loop.h"

#include <math.h>

#include "dist.h"
#include "log.h"

/* One epoch from step lp->part->steps (a run resumed inside it, with its sums) to its end; or, when
 * a signal arrives, to the end of the current step, then a checkpoint there and PREEMPT_STOPPED. */
static int train_epoch(const train_loop *lp, long epoch, long end, double *loss_out, double *acc_out, char *err)
{
    double lr = cosine_lr(lp->sched, (int)epoch), sum_loss = 0, correct = 0, t_last = now_s();
    long spe = lp->L->steps_per_epoch, s0 = train_part_take(lp->part, &sum_loss, &correct);
    for (long s = s0; s < spe; s++) {
        double loss = 0, right = 0, gnorm = 0;
        if (lp->step(lp->ctx, epoch * spe + s, epoch, lr, &loss, &right, &gnorm, err)) return -1;
        int src = train_step_end(lp->cmd, epoch, end, s, spe, loss, right, gnorm, lr, lp->log_every, lp->L->batch,
                                 &t_last, &sum_loss, &correct, lp->part, lp->comm, lp->save, lp->ctx, err);
        if (src) return src;
    }
    *loss_out = sum_loss / (double)spe;
    *acc_out = correct / ((double)spe * (double)lp->L->batch * lp->units_per_sample);
    lp->run->lr = lr;
    return 0;
}

int train_loop_run(const train_loop *lp, long start, long end, char *err)
{
    for (long epoch = start; epoch < end; epoch++) {
        double loss = 0, acc = 0;
        int erc = train_epoch(lp, epoch, end, &loss, &acc, err);
        if (erc) return erc;
        int last = epoch + 1 == end, evaluated = (epoch + 1) % lp->eval_every == 0 || last;
        if (evaluated && lp->evaluate(lp->ctx, epoch, err)) return -1;
        lp->run->train_loss = loss;
        lp->run->train_acc = acc;
        int rc = lp->report(lp->ctx, epoch, end, loss, acc, evaluated, err);
        if (dist_any_error(lp->comm, rc, err)) return -1;
        int end_rc = train_epoch_end(epoch, end, lp->ckpt_every, lp->comm, lp->save, lp->ctx, &lp->run->end_epoch,
                                     err);
        if (end_rc) return end_rc;
    }
    return 0;
}

void train_result_start(train_result *r, const step_layout *L, long start, long n_params, long n_test)
{
    r->layout = *L;
    r->start_epoch = r->end_epoch = start;
    r->n_params = n_params;
    r->n_test = n_test;
}

void train_result_complete(train_result *r, const cosine_schedule *sched, long epochs)
{
    r->train_loss = r->train_acc = NAN;
    r->lr = cosine_lr(sched, (int)(epochs - 1));
    r->end_epoch = epochs;
}
