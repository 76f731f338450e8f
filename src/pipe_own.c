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

void pipe_ranges_zero(float *x, const pipe_range_list *l)
{
    for (int k = 0; k < l->n; k++) memset(x + l->r[k].off, 0, sizeof(float) * (size_t)l->r[k].count);
}

void pipe_ranges_pack(double *packed, double *full, const pipe_range_list *l, int dir)
{
    for (int k = 0; k < l->n; k++) {
        double *a = full + l->r[k].off, *b = packed + l->r[k].at;
        size_t bytes = sizeof(double) * (size_t)l->r[k].count;
        if (dir) memcpy(a, b, bytes);
        else memcpy(b, a, bytes);
    }
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
