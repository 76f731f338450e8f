/* train_common.c -- the parts of a data-parallel supervised training loop shared by finetune.c
 * and partseg_train.c (see train_common.h). */
#include "train_common.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "ckpt_kind.h"
#include "commands.h"
#include "data_order.h"
#include "dist.h"
#include "errors.h"
#include "grad_allreduce.h"
#include "log.h"
#include "mem_peak.h"
#include "paths.h"
#include "pipe_schedule.h"
#include "preempt.h"
#include "rng.h"
#include "train_log.h"

#define DROP_STREAM 0x64726f70ull /* "drop": the stream of the micro-batches' drop keys */

int train_opts_check(const train_opts *o, char *err)
{
    if (!o->data[0] || !o->test[0] || !o->rundir[0])
        return errf(err, "%s: --data, --test and -o RUNDIR are required", o->cmd);
    if (!o->scratch == !o->pretrained[0])
        return errf(err, "%s: give exactly one of --checkpoint PRETRAIN.h5 (a pre-training checkpoint) "
                    "and --scratch", o->cmd);
    if (o->batch < 1) return errf(err, "--batch %ld: must be at least 1", o->batch);
    if (o->micro < 0) return errf(err, "--micro-batch %ld: must be 0 (batch / ranks) or positive", o->micro);
    if (o->epochs < 1) return errf(err, "--epochs %ld: must be at least 1", o->epochs);
    if (o->sched_epochs < 0) return errf(err, "--sched-epochs %ld: must be non-negative", o->sched_epochs);
    if (o->warmup_epochs < 0) return errf(err, "--warmup-epochs %ld: must be non-negative", o->warmup_epochs);
    if (o->ckpt_every < 1) return errf(err, "--checkpoint-every %ld: must be at least 1", o->ckpt_every);
    if (o->keep < 1) return errf(err, "--keep %ld: must be at least 1", o->keep);
    if (o->log_every < 1) return errf(err, "--log-every %ld: must be at least 1", o->log_every);
    if (o->eval_every < 1) return errf(err, "--eval-every %ld: must be at least 1", o->eval_every);
    if (!(o->lr > 0)) return errf(err, "--lr %g: must be positive", o->lr);
    if (o->weight_decay < 0) return errf(err, "--weight-decay %g: must be non-negative", o->weight_decay);
    if (o->clip_grad < 0) return errf(err, "--clip-grad %g: must be non-negative (0: off)", o->clip_grad);
    if (o->seed < 0) return errf(err, "--seed %ld: must be non-negative", o->seed);
    return 0;
}

int train_step_opts_check(int overlap_allreduce, double bucket_mb, char *err)
{
    if (overlap_allreduce != 0 && overlap_allreduce != 1)
        return errf(err, "--overlap-allreduce %d: must be 0 or 1", overlap_allreduce);
    if (!(bucket_mb > 0) || !isfinite(bucket_mb)) return errf(err, "--bucket-mb %g: must be positive", bucket_mb);
    return 0;
}

int train_step_opts_add(cli_opt *opts, int n, int *overlap_allreduce, double *bucket_mb, int *recompute)
{
    const cli_opt step[] = {
        {"overlap-allreduce", OPT_INT, overlap_allreduce, "0|1",
         "1: sum the gradients over the ranks in buckets while the backward runs; 0: one all-reduce "
         "after it (same results)"},
        {"bucket-mb", OPT_DOUBLE, bucket_mb, "MB", "size of a gradient bucket (MiB of doubles)"},
        {"recompute", OPT_FLAG, recompute, NULL,
         "activation checkpointing: keep only each transformer block's input and recompute the rest "
         "in the backward (less memory, same results)"},
    };
    return cmd_opts_add(opts, n, step, (int)(sizeof step / sizeof step[0]));
}

int train_stage_opts_add(cli_opt *opts, int n, int *stages, char *stage_split, char *pipe_schedule,
                         const char *split_help)
{
    const cli_opt pipe[] = {
        {"stages", OPT_INT, stages, "S",
         "pipeline stages per replica: the ranks form (ranks / S) data replicas x S stages, each stage "
         "holding a contiguous part of the network (1: data parallel only); results are those of "
         "ranks / S data-parallel ranks"},
        {"stage-split", OPT_STRING, stage_split, "N,N,..", split_help},
        {"pipe-schedule", OPT_STRING, pipe_schedule, "1f1b|gpipe",
         "order of the micro-batches' forward and backward passes on a stage"},
    };
    return cmd_opts_add(opts, n, pipe, (int)(sizeof pipe / sizeof pipe[0]));
}

int train_stage_opts_check(int stages, const char *stage_split, const char *pipe_schedule,
                           const pipe_unit_table *units, char *err)
{
    if (pipe_schedule_parse(pipe_schedule) < 0) return errf(err, "--pipe-schedule %s: must be gpipe or 1f1b", pipe_schedule);
    if (stage_split[0] && stages == 1) return errf(err, "--stage-split %s: needs --stages 2 or more", stage_split);
    pipe_split sp;
    return pipe_split_units(&sp, stages, stage_split, units, err);
}

int train_run_opts_add(cli_opt *opts, int n, const train_cli_fields *f)
{
    const cli_opt run[] = {
        {"scratch", OPT_FLAG, f->scratch, NULL, "train from a random initialisation instead"},
        {"resume", OPT_FLAG, f->resume, NULL, "continue from the newest valid checkpoint in RUNDIR"},
        {"eval-only", OPT_FLAG, f->eval_only, NULL, "only evaluate --checkpoint on --test"},
    };
    return cmd_opts_add(opts, n, run, (int)(sizeof run / sizeof run[0]));
}

int train_loop_opts_add(cli_opt *opts, int n, const train_cli_fields *f)
{
    const cli_opt loop[] = {
        {"min-lr", OPT_DOUBLE, f->min_lr, "LR", "cosine floor"},
        {"warmup-lr", OPT_DOUBLE, f->warmup_lr, "LR", "learning rate of epoch 0"},
        {"weight-decay", OPT_DOUBLE, f->weight_decay, "WD", "AdamW weight decay (not on biases, norms, tokens)"},
        {"precision", OPT_STRING, f->precision, "fp32|bf16",
         "matmul precision of training: fp32 (default) or bf16 mixed precision (bf16 matmul inputs, "
         "f32 accumulation, f32 weights, optimiser and loss; needs avx512_bf16 or AMX)"},
        {"clip-grad", OPT_DOUBLE, f->clip_grad, "N", "clip the gradient's global L2 norm to N (0: off)"},
        {"checkpoint-every", OPT_LONG, f->ckpt_every, "E", "write a checkpoint every E epochs (and at the end)"},
        {"keep", OPT_LONG, f->keep, "K", "keep the newest K checkpoints (best.h5 is kept apart)"},
        {"log-every", OPT_LONG, f->log_every, "N", "progress line every N steps"},
        {"eval-every", OPT_LONG, f->eval_every, "E", "evaluate the test split every E epochs (and at the end)"},
    };
    return cmd_opts_add(opts, n, loop, (int)(sizeof loop / sizeof loop[0]));
}

void train_sched_init(const train_opts *o, cosine_schedule *sched, adamw_config *oc)
{
    adamw_config_default(oc);
    oc->weight_decay = o->weight_decay;
    *sched = (cosine_schedule){.base_lr = o->lr, .epochs = (int)(o->sched_epochs > 0 ? o->sched_epochs : o->epochs),
                               .warmup_epochs = (int)o->warmup_epochs, .lr_min = o->min_lr,
                               .warmup_lr_init = o->warmup_lr};
}

int train_run_start(const train_opts *o, MPI_Comm comm, int (*resume)(void *ctx, long *start, char *err),
                    int (*load_pretrained)(void *ctx, char *err), void *ctx, long *start, int *resumed,
                    char *err)
{
    *start = 0;
    int rc = ckpt_prepare_rundir(o->rundir, o->resume, comm, err);
    if (!rc && o->resume) {
        rc = resume(ctx, start, err);
        *resumed = !rc;
    } else if (!rc && !o->scratch) {
        rc = load_pretrained(ctx, err);
    }
    if (!rc && *start > o->epochs)
        rc = errf(err, "%s: the run is complete (epoch %ld of %ld); raise --epochs to go on", o->rundir,
                  *start, o->epochs);
    return rc;
}

void train_perm_ensure(int64_t *perm, long *perm_epoch, long seed, long epoch, long n)
{
    if (*perm_epoch == epoch) return;
    data_order_epoch((uint64_t)seed, epoch, n, perm);
    *perm_epoch = epoch;
}

/* The pre-training network of the checkpoint at path (pcfg: its configuration), built on dnn with
 * its /params and /buffers read: *pre (the caller frees it) and *step, the checkpoint's step.
 * Returns 0; or -1 with err naming path and *pre NULL when the network could not be built (every
 * rank learns any rank's error), or -1 with *pre set when the read failed. Collective. */
static int pretrained_read(const char *path, MPI_Comm comm, const model3d_config *pcfg, dnn_ctx *dnn,
                           model3d **pre, long *step, char *err)
{
    *pre = NULL;
    int rc = model3d_create(pre, pcfg, 1, 0, dnn, err);
    if (rc) err_prefix(err, path);
    if (dist_any_error(comm, rc, err)) {
        if (*pre) model3d_free(*pre);
        *pre = NULL;
        return -1;
    }
    ckpt_state st;
    if (ckpt_read_network(path, comm, model3d_params(*pre), model3d_n_params(*pre), model3d_buffers(*pre),
                          model3d_n_buffers(*pre), &st, err))
        return -1;
    *step = st.step;
    return 0;
}

int train_load_encoder(const char *cmd, const char *path, MPI_Comm comm, dnn_ctx *dnn, train_encoder_load_fn load,
                       void *net, char *err)
{
    model3d_config pcfg;
    if (ckpt_pretrain_config(path, "--checkpoint", comm, &pcfg, NULL, NULL, err)) return -1;
    model3d *pre;
    long step = 0;
    int rc = pretrained_read(path, comm, &pcfg, dnn, &pre, &step, err);
    if (!pre) return -1;
    if (!rc && load(net, pre, err)) {
        err_prefix(err, path);
        size_t len = strlen(err);
        snprintf(err + len, I2P_ERR_LEN - len, " (the checkpoint's network: dims %d,%d,%d depths %d,%d,%d heads %d "
                 "embed-hidden %d,%d,%d; give the same architecture options)", pcfg.dims[0], pcfg.dims[1],
                 pcfg.dims[2], pcfg.depths[0], pcfg.depths[1], pcfg.depths[2], pcfg.heads, pcfg.embed_hidden[0],
                 pcfg.embed_hidden[1], pcfg.embed_hidden[2]);
        rc = -1;
    }
    model3d_free(pre);
    if (!rc) log_info("%s: encoder from %s (pre-training step %ld)", cmd, path, step);
    return dist_any_error(comm, rc, err);
}

train_step_samples train_step_samples_of(const step_layout *L, int64_t *perm, long *perm_epoch, long seed,
                                         long step)
{
    train_step_samples s = {.L = L, .perm = perm, .seed = seed, .step = step};
    step_position(L, step, &s.epoch, &s.pos);
    train_perm_ensure(perm, perm_epoch, seed, s.epoch, L->n);
    return s;
}

train_micro train_micro_at(const train_step_samples *s, int rank, long j)
{
    long k = step_micro_index(s->L, rank, j);
    uint64_t key = rng_mix(rng_mix((uint64_t)s->seed ^ DROP_STREAM, (uint64_t)s->step), (uint64_t)k);
    return (train_micro){.k = k, .ids = s->perm + s->pos + k * s->L->micro, .drop_key = key};
}

void train_accumulate(double *acc, const train_net *net, double inv)
{
    const float *g = net->grads;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < net->n_params; i++) acc[i] += (double)g[i] * inv;
    train_accumulate_buffers(acc, net, inv);
}

void train_accumulate_buffers(double *acc, const train_net *net, double inv)
{
    const float *bufs = net->buffers;
    double *bacc = acc + net->n_params;
    for (long i = 0; i < net->n_buffers; i++) bacc[i] += (double)bufs[i] * inv;
}

int train_micro_batches_done(grad_overlap *ov, int rc, MPI_Comm comm, double *idle_s, char *err)
{
    if (ov) grad_overlap_start_tail(ov, rc != 0);
    double t0 = now_s();
    int bad = dist_any_error(comm, rc, err);
    *idle_s += now_s() - t0;
    if (!bad) return 0;
    char werr[I2P_ERR_LEN];
    if (ov) grad_overlap_wait(ov, werr); /* the error is err's */
    return -1;
}

int train_loss_check(double loss, long step, long epoch, double lr, const char *last_checkpoint, char *err)
{
    if (!isfinite(loss))
        return errf(err, "step %ld (epoch %ld): the loss is not finite (loss %g, lr %g); stopped "
                    "before the update; last good checkpoint: %s", step + 1, epoch, loss, lr,
                    last_checkpoint[0] ? last_checkpoint : "none yet");
    return 0;
}

int train_update(const train_net *net, double *acc, adamw_state *opt, const adamw_config *oc,
                 double lr, double clip_grad, MPI_Comm comm, grad_overlap *ov, long step, long epoch,
                 const char *last_checkpoint, double *seconds_allreduce, double *gnorm, char *err)
{
    long np = net->n_params, nb = net->n_buffers;
    if (ov) {
        double c0 = ov->comm_s;
        int rc = grad_overlap_wait(ov, err);
        *seconds_allreduce += ov->comm_s - c0;
        if (rc) return -1;
    } else if (grad_allreduce(acc, np + nb + 2, comm, seconds_allreduce, err)) {
        return -1;
    }
    if (train_loss_check(acc[np + nb], step, epoch, lr, last_checkpoint, err)) return -1;
    for (long i = 0; i < np; i++) net->grads[i] = (float)acc[i];
    for (long i = 0; i < nb; i++) net->buffers[i] = (float)acc[np + i];
    *gnorm = clip_grad_norm(net->grads, np, clip_grad);
    adamw_step(opt, oc, lr, net->params, net->grads, net->tensors, net->n_tensors);
    return 0;
}

int train_metrics_open(FILE **f, char *path, const char *rundir, const char *header,
                       long resume_epochs, char *err)
{
    snprintf(path, I2P_PATH_LEN, "%s/metrics.csv", rundir);
    int exists = 0;
    if (resume_epochs >= 0) {
        if (csv_truncate_rows(path, resume_epochs - 1, err)) return -1;
        FILE *old = fopen(path, "r");
        exists = old != NULL;
        if (old) fclose(old);
    }
    *f = fopen(path, resume_epochs >= 0 ? "a" : "w");
    if (!*f) return errf(err, "%s: cannot write: %s", path, strerror(errno));
    if (!exists) fputs(header, *f);
    fflush(*f);
    return 0;
}

int train_metrics_row(FILE *f, const char *path, long epoch, double lr, double loss, double acc,
                      const double *test, int n_test, char *err)
{
    fprintf(f, "%ld,%.9g,%.9g,%.9g", epoch, lr, loss, acc);
    for (int i = 0; i < n_test; i++) {
        if (test) fprintf(f, ",%.9g", test[i]);
        else fputs(",nan", f);
    }
    fputc('\n', f);
    if (fflush(f) != 0 || ferror(f)) return errf(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

long train_part_take(train_part_epoch *p, double *sum0, double *sum1)
{
    long s0 = p->steps;
    *sum0 = 0;
    *sum1 = 0;
    if (s0) {
        memcpy(sum0, &p->sums[0], sizeof *sum0);
        memcpy(sum1, &p->sums[1], sizeof *sum1);
        p->steps = 0;
    }
    return s0;
}

void train_part_keep(train_part_epoch *p, long steps, double sum0, double sum1)
{
    p->steps = steps;
    memcpy(&p->sums[0], &sum0, sizeof sum0);
    memcpy(&p->sums[1], &sum1, sizeof sum1);
}

int train_step_end(const char *cmd, long epoch, long end, long s, long spe, double loss, double correct,
                   double gnorm, double lr, long log_every, long batch, double *t_last, double *sum_loss,
                   double *sum_correct, train_part_epoch *part, MPI_Comm comm, train_save_fn save, void *ctx,
                   char *err)
{
    *sum_loss += loss;
    *sum_correct += correct;
    if ((s + 1) % log_every == 0) {
        double now = now_s();
        log_info("%s: epoch %ld/%ld step %ld/%ld loss %.5f grad-norm %.3g lr %.3e %.1f samples/s peak RSS %.2f "
                 "GiB (rank 0)", cmd, epoch, end, s + 1, spe, loss, gnorm, lr,
                 (double)(log_every * batch) / (now - *t_last), mem_gib(mem_peak_bytes()));
        *t_last = now;
    }
    if (s + 1 < spe && preempt_pending(comm)) { /* SIGTERM / SIGUSR1: save this step, stop */
        train_part_keep(part, s + 1, *sum_loss, *sum_correct);
        return save(ctx, epoch, err) ? -1 : PREEMPT_STOPPED;
    }
    return 0;
}

int train_epoch_end(long epoch, long end, long ckpt_every, MPI_Comm comm, train_save_fn save, void *ctx,
                    long *end_epoch, char *err)
{
    int last = epoch + 1 == end;
    if ((epoch + 1) % ckpt_every == 0 || last)
        if (save(ctx, epoch + 1, err)) return -1;
    *end_epoch = epoch + 1;
    if (!last && preempt_pending(comm)) { /* a signal in the epoch's last step */
        if ((epoch + 1) % ckpt_every && save(ctx, epoch + 1, err)) return -1;
        return PREEMPT_STOPPED;
    }
    return 0;
}
