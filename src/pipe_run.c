/* pipe_run.c -- one pipeline stage's step: the schedule with non-blocking messages around the
 * network's forward / backward callbacks (see pipe_run.h). */
#include "pipe_run.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "pipe_schedule.h"

typedef struct {
    float *fin, *fout, *bin, *bout; /* messages: forward in (from stage-1), out; backward in, out */
    MPI_Request rq_fin, rq_fout, rq_bin, rq_bout;
} slot;

struct pipe_run {
    MPI_Comm comm;
    int stages, stage;
    long M, nslots, in_n, out_n;
    pipe_op *ops;
    slot *slots;
};

static float *msg_alloc(long n)
{
    return n > 0 ? aligned_alloc(64, sizeof(float) * (size_t)((n + 15) / 16 * 16)) : NULL;
}

int pipe_run_open(pipe_run **out, MPI_Comm comm, int stages, int stage, int kind, long M, long in_n, long out_n,
                  char *err)
{
    pipe_run *p = calloc(1, sizeof *p);
    *out = p;
    if (!p) return errf(err, "out of memory");
    p->comm = comm;
    p->stages = stages;
    p->stage = stage;
    p->M = M;
    p->in_n = stage > 0 ? in_n : 0;
    p->out_n = stage < stages - 1 ? out_n : 0;
    p->ops = calloc((size_t)(2 * M), sizeof *p->ops);
    if (!p->ops) return errf(err, "out of memory");
    p->nslots = pipe_schedule_make(kind, stages, stage, M, p->ops);
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    if (!p->slots) return errf(err, "out of memory");
    for (long i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        s->rq_fin = s->rq_fout = s->rq_bin = s->rq_bout = MPI_REQUEST_NULL;
        s->fin = msg_alloc(p->in_n);
        s->bout = msg_alloc(p->in_n);
        s->fout = msg_alloc(p->out_n);
        s->bin = msg_alloc(p->out_n);
        if ((p->in_n && (!s->fin || !s->bout)) || (p->out_n && (!s->fout || !s->bin)))
            return errf(err, "out of memory for pipeline messages");
    }
    return 0;
}

long pipe_run_slots(const pipe_run *p)
{
    return p->nslots;
}

void pipe_run_free(pipe_run *p)
{
    if (!p) return;
    for (long i = 0; p->slots && i < p->nslots; i++) {
        slot *s = &p->slots[i];
        MPI_Request rq[4] = {s->rq_fin, s->rq_fout, s->rq_bin, s->rq_bout};
        for (int k = 0; k < 4; k++)
            if (rq[k] != MPI_REQUEST_NULL) {
                MPI_Cancel(&rq[k]);
                MPI_Request_free(&rq[k]);
            }
        free(s->fin);
        free(s->fout);
        free(s->bin);
        free(s->bout);
    }
    free(p->slots);
    free(p->ops);
    free(p);
}

static double wait_timed(MPI_Request *rq)
{
    double t0 = MPI_Wtime();
    MPI_Wait(rq, MPI_STATUS_IGNORE);
    return MPI_Wtime() - t0;
}

/* Forward of micro-batch j; *ok cleared on a failure (the message still goes out). */
static void forward(pipe_run *p, long j, const pipe_run_fns *fns, void *ctx, pipe_run_times *tm, int *ok,
                    char *err)
{
    slot *s = &p->slots[j % p->nslots];
    double t0 = MPI_Wtime(), waited = 0;
    if (*ok && fns->prepare) *ok = !fns->prepare(ctx, j, j % p->nslots, err);
    if (p->in_n) waited += wait_timed(&s->rq_fin);
    if (p->out_n) waited += wait_timed(&s->rq_fout); /* its buffer's previous send */
    if (*ok) *ok = !fns->forward(ctx, j, j % p->nslots, p->in_n ? s->fin : NULL, p->out_n ? s->fout : NULL, err);
    if (p->out_n) {
        if (!*ok) memset(s->fout, 0, sizeof(float) * (size_t)p->out_n);
        MPI_Isend(s->fout, (int)p->out_n, MPI_FLOAT, p->stage + 1, (int)(2 * j), p->comm, &s->rq_fout);
        MPI_Irecv(s->bin, (int)p->out_n, MPI_FLOAT, p->stage + 1, (int)(2 * j + 1), p->comm, &s->rq_bin);
    }
    tm->wait += waited;
    tm->compute += MPI_Wtime() - t0 - waited;
}

/* Backward of micro-batch j; then its slot takes micro-batch j + slots's forward message. */
static void backward(pipe_run *p, long j, const pipe_run_fns *fns, void *ctx, pipe_run_times *tm, int *ok,
                     char *err)
{
    slot *s = &p->slots[j % p->nslots];
    double t0 = MPI_Wtime(), waited = 0;
    if (p->out_n) waited += wait_timed(&s->rq_bin);
    if (p->in_n) waited += wait_timed(&s->rq_bout);
    if (*ok) *ok = !fns->backward(ctx, j, j % p->nslots, p->out_n ? s->bin : NULL, p->in_n ? s->bout : NULL, err);
    if (p->in_n) {
        if (!*ok) memset(s->bout, 0, sizeof(float) * (size_t)p->in_n);
        MPI_Isend(s->bout, (int)p->in_n, MPI_FLOAT, p->stage - 1, (int)(2 * j + 1), p->comm, &s->rq_bout);
        long next = j + p->nslots;
        if (next < p->M)
            MPI_Irecv(s->fin, (int)p->in_n, MPI_FLOAT, p->stage - 1, (int)(2 * next), p->comm, &s->rq_fin);
    }
    tm->wait += waited;
    tm->compute += MPI_Wtime() - t0 - waited;
}

int pipe_run_step(pipe_run *p, const pipe_run_fns *fns, void *ctx, pipe_run_times *tm, char *err)
{
    if (p->in_n)
        for (long j = 0; j < p->nslots && j < p->M; j++)
            MPI_Irecv(p->slots[j].fin, (int)p->in_n, MPI_FLOAT, p->stage - 1, (int)(2 * j), p->comm,
                      &p->slots[j].rq_fin);
    int ok = 1;
    char first_err[I2P_ERR_LEN] = "";
    for (long i = 0; i < 2 * p->M; i++) {
        int was_ok = ok;
        if (p->ops[i].op == 'F') forward(p, p->ops[i].micro, fns, ctx, tm, &ok, err);
        else backward(p, p->ops[i].micro, fns, ctx, tm, &ok, err);
        if (was_ok && !ok) memcpy(first_err, err, I2P_ERR_LEN);
    }
    for (long i = 0; i < p->nslots; i++) {
        tm->wait += wait_timed(&p->slots[i].rq_fout);
        tm->wait += wait_timed(&p->slots[i].rq_bout);
    }
    if (!ok) {
        memcpy(err, first_err, I2P_ERR_LEN);
        return -1;
    }
    return 0;
}
