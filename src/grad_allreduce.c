/* grad_allreduce.c -- sums of the flat step buffer over the data ranks, blocking after the backward
 * or bucketed and overlapped with it (see grad_allreduce.h). */
#include "grad_allreduce.h"

#include <limits.h>
#include <stdlib.h>

#include "errors.h"
#include "log.h"

int grad_allreduce(double *buf, long n, MPI_Comm comm, double *seconds, char *err)
{
    double t0 = now_s();
    for (long off = 0; off < n; off += INT_MAX) {
        int count = (int)(n - off < INT_MAX ? n - off : INT_MAX);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, count, MPI_DOUBLE, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) return errf(err, "MPI_Allreduce of %d gradient doubles failed (code %d)",
                                           count, rc);
    }
    *seconds += now_s() - t0;
    return 0;
}

/* ---- overlapped ---- */

static void start(grad_overlap *o, MPI_Request *req, long lo, long hi)
{
    int rc = MPI_Iallreduce(MPI_IN_PLACE, o->acc + lo, (int)(hi - lo), MPI_DOUBLE, MPI_SUM, o->comm, req);
    if (rc != MPI_SUCCESS && o->mpi_rc == MPI_SUCCESS) o->mpi_rc = rc;
}

static long bucket_lo(const grad_overlap *o, int k)
{
    long lo = o->n_grads - (long)(k + 1) * o->bucket;
    return lo > 0 ? lo : 0;
}

/* Starts the buckets that lie wholly in [lo, n_grads), from the end, then lets those in flight
 * progress. */
static void start_complete(grad_overlap *o, long lo)
{
    double t0 = now_s();
    while (o->started < o->n_buckets && bucket_lo(o, o->started) >= lo) {
        int k = o->started++;
        start(o, &o->req[k], bucket_lo(o, k), o->n_grads - (long)k * o->bucket);
    }
    if (o->started > 0) {
        int flag;
        MPI_Testall(o->started, o->req, &flag, MPI_STATUSES_IGNORE);
    }
    o->comm_s += now_s() - t0;
}

int grad_overlap_init(grad_overlap *o, double *acc, long n_grads, long n_acc, double bucket_mb,
                      MPI_Comm comm, char *err)
{
    *o = (grad_overlap){.comm = comm, .acc = acc, .n_grads = n_grads, .n_acc = n_acc,
                        .mpi_rc = MPI_SUCCESS};
    double b = bucket_mb * 1048576.0 / sizeof(double);
    o->bucket = b < 1 ? 1 : b > INT_MAX ? INT_MAX : (long)b;
    o->n_buckets = n_grads > 0 ? (int)((n_grads + o->bucket - 1) / o->bucket) : 0;
    o->req = malloc(sizeof(MPI_Request) * (size_t)(o->n_buckets + 1));
    if (!o->req) return errf(err, "out of memory for %d reduction requests", o->n_buckets + 1);
    for (int k = 0; k <= o->n_buckets; k++) o->req[k] = MPI_REQUEST_NULL;
    return 0;
}

void grad_overlap_free(grad_overlap *o)
{
    free(o->req);
    o->req = NULL;
}

void grad_overlap_begin(grad_overlap *o, const float *grads, double inv, int last)
{
    o->grads = grads;
    o->inv = inv;
    o->last = last;
    o->added_lo = o->n_grads;
}

void grad_overlap_final(void *ctx, long lo)
{
    grad_overlap *o = ctx;
    if (!o->grads || lo >= o->added_lo) return;
    if (lo < 0) lo = 0;
    double *acc = o->acc, inv = o->inv;
    const float *g = o->grads;
    long hi = o->added_lo;
#pragma omp parallel for schedule(static)
    for (long i = lo; i < hi; i++) acc[i] += (double)g[i] * inv;
    o->added_lo = lo;
    if (o->last) start_complete(o, lo);
}

void grad_overlap_ready(grad_overlap *o, long lo)
{
    start_complete(o, lo < 0 ? 0 : lo);
}

void grad_overlap_end(grad_overlap *o)
{
    grad_overlap_final(o, 0);
    o->grads = NULL;
}

void grad_overlap_start_tail(grad_overlap *o, int abandon)
{
    if (abandon) {
        o->grads = NULL;
        start_complete(o, 0);
    }
    double t0 = now_s();
    if (o->n_acc > o->n_grads) start(o, &o->req[o->n_buckets], o->n_grads, o->n_acc);
    o->comm_s += now_s() - t0;
}

int grad_overlap_wait(grad_overlap *o, char *err)
{
    double t0 = now_s();
    int rc = MPI_Waitall(o->n_buckets + 1, o->req, MPI_STATUSES_IGNORE);
    o->comm_s += now_s() - t0;
    if (rc == MPI_SUCCESS) rc = o->mpi_rc;
    int started = o->started;
    o->started = 0;
    o->mpi_rc = MPI_SUCCESS;
    if (started != o->n_buckets && rc == MPI_SUCCESS)
        return errf(err, "gradient reduction: %d of %d buckets started (the backward's report stopped early)",
                    started, o->n_buckets);
    if (rc != MPI_SUCCESS) return errf(err, "MPI_Iallreduce of the gradients failed (code %d)", rc);
    return 0;
}
