/* pipe_own.c -- a pipeline stage's tensors as ranges of the flat tables (see pipe_own.h). */
#include "pipe_own.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "pipe_schedule.h"

int pipe_range_add(pipe_range_list *l, long off, long count)
{
    l->total += count;
    if (l->n && l->r[l->n - 1].off + l->r[l->n - 1].count == off) {
        l->r[l->n - 1].count += count;
        return 0;
    }
    pipe_range *r = realloc(l->r, sizeof *r * (size_t)(l->n + 1));
    if (!r) return -1;
    l->r = r;
    l->r[l->n++] = (pipe_range){off, count, l->total - count};
    return 0;
}

void pipe_range_list_free(pipe_range_list *l)
{
    free(l->r);
    *l = (pipe_range_list){0};
}

int pipe_own_tensor(pipe_range_list *per_stage, const pipe_split *sp, int unit, const model3d_tensor *T,
                    const char *what, char *err)
{
    int s = pipe_split_stage_of(sp, unit);
    if (s < 0) return errf(err, "pipeline: %s %s belongs to no unit", what, T->name);
    if (pipe_range_add(&per_stage[s], T->offset, T->count)) return errf(err, "out of memory");
    return s;
}

int pipe_own_tensors_alloc(pipe_own_tensors *o, int n_tensors, char *err)
{
    o->t = calloc((size_t)n_tensors + 1, sizeof *o->t);
    o->range_t = calloc((size_t)n_tensors + 1, sizeof *o->range_t);
    o->n = 0;
    return o->t && o->range_t ? 0 : errf(err, "out of memory");
}

void pipe_own_tensors_note(pipe_own_tensors *o, const pipe_range_list *own, int n_before, const model3d_tensor *T)
{
    if (own->n > n_before) o->range_t[own->n - 1] = o->n; /* a new range starts here */
    model3d_tensor t = *T;
    t.offset -= own->r[own->n - 1].off;
    o->t[o->n++] = t;
}

void pipe_own_tensors_end(pipe_own_tensors *o, const pipe_range_list *own)
{
    o->range_t[own->n] = o->n;
}

void pipe_own_tensors_free(pipe_own_tensors *o)
{
    free(o->t);
    free(o->range_t);
    *o = (pipe_own_tensors){0};
}

void pipe_own_adamw(adamw_state *opt, const adamw_config *c, double lr, float *params, const float *grads,
                    const pipe_range_list *own, const pipe_own_tensors *o)
{
    long step = opt->step;
    for (int k = 0; k < own->n; k++) {
        adamw_state view = {.m = opt->m + own->r[k].at, .v = opt->v + own->r[k].at, .n = own->r[k].count,
                            .step = step};
        adamw_step(&view, c, lr, params + own->r[k].off, grads + own->r[k].off, o->t + o->range_t[k],
                   o->range_t[k + 1] - o->range_t[k]);
    }
    opt->step = step + 1;
}

int pipe_own_slices_make(pipe_own_slices *sl, const pipe_range *rp, int np, const pipe_range *rb, int nb, char *err)
{
    sl->np = np;
    sl->nb = nb;
    sl->s = malloc(sizeof *sl->s * (size_t)(2 * np + nb + 1));
    if (!sl->s) return errf(err, "out of memory");
    ckpt_slice *at_off = sl->s, *packed = at_off + np, *buf = packed + np;
    for (int k = 0; k < np; k++) {
        at_off[k] = (ckpt_slice){rp[k].off, rp[k].count, rp[k].off};
        packed[k] = (ckpt_slice){rp[k].off, rp[k].count, rp[k].at};
    }
    for (int k = 0; k < nb; k++) buf[k] = (ckpt_slice){rb[k].off, rb[k].count, rb[k].off};
    return 0;
}

void pipe_own_slices_free(pipe_own_slices *sl)
{
    free(sl->s);
    *sl = (pipe_own_slices){0};
}

void pipe_own_parts(const pipe_own_slices *sl, int write, int writer, ckpt_part out[3])
{
    const ckpt_slice *at_off = sl->s, *packed = at_off + sl->np, *buf = packed + sl->np;
    if (!write) {
        out[0] = out[2] = (ckpt_part){NULL, 0};
        out[1] = (ckpt_part){packed, sl->np};
        return;
    }
    out[0] = (ckpt_part){at_off, writer ? sl->np : 0};
    out[1] = (ckpt_part){packed, writer ? sl->np : 0};
    out[2] = (ckpt_part){buf, writer ? sl->nb : 0};
}

void pipe_ranges_unpack(float *full, const double *packed, const pipe_range_list *l)
{
    for (int k = 0; k < l->n; k++)
        for (long i = 0; i < l->r[k].count; i++) full[l->r[k].off + i] = (float)packed[l->r[k].at + i];
}

void pipe_ranges_zero(float *x, const pipe_range_list *l)
{
    for (int k = 0; k < l->n; k++) memset(x + l->r[k].off, 0, sizeof(float) * (size_t)l->r[k].count);
}

int pipe_own_bcast(float *x, const pipe_range_list *per_stage, int stages, MPI_Comm replica_comm)
{
    int rc = 0;
    for (int s = 0; s < stages && !rc; s++)
        for (int k = 0; k < per_stage[s].n && !rc; k++)
            rc = MPI_Bcast(x + per_stage[s].r[k].off, (int)per_stage[s].r[k].count, MPI_FLOAT, s, replica_comm);
    return rc;
}

int pipe_own_open_grid(dist_grid *g, int *kind, char *split_spec, size_t spec_n, MPI_Comm world, int stages,
                       const char *split, const char *schedule, int rc, char *err)
{
    *kind = pipe_schedule_parse(schedule);
    if (!rc && *kind < 0) rc = errf(err, "--pipe-schedule %s: must be gpipe or 1f1b", schedule);
    if (!rc && split && strlen(split) >= spec_n) rc = errf(err, "--stage-split: too long");
    snprintf(split_spec, spec_n, "%s", split ? split : "");
    /* the checks above give every rank the same answer; the grid checks the world size */
    if (!rc) rc = dist_grid_create(g, world, stages, err);
    return dist_any_error(world, rc, err) ? -1 : 0;
}
