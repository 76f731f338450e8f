/* pipe_split.c -- the split of a unit table into pipeline stages, and the units of the 3D
 * pre-training network with their FLOP counts (see pipe_split.h). */
#include "pipe_split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "mask.h"

static const char *const unit_names[PIPE_UNITS] = {"embed0", "encoder.0", "encoder.1", "encoder.2", "decoder",
                                                   "heads"};

const char *pipe_unit_name(int unit)
{
    return unit >= 0 && unit < PIPE_UNITS ? unit_names[unit] : "?";
}

int pipe_unit_of_tensor(const char *name)
{
    static const struct { const char *prefix; int unit; } map[] = {
        {"embed0.", PIPE_EMBED0}, {"encoder.0.", PIPE_ENC0}, {"merge1.", PIPE_ENC1}, {"encoder.1.", PIPE_ENC1},
        {"merge2.", PIPE_ENC2}, {"encoder.2.", PIPE_ENC2}, {"decoder.", PIPE_DEC},   {"rec_head_", PIPE_HEADS},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strncmp(name, map[i].prefix, strlen(map[i].prefix))) return map[i].unit;
    return -1;
}

/* FLOPs per sample of a mini-PointNet over G groups of k points (m3_group.c), forward and backward:
 * conv3 is factorised over the concat, its per-point half on the G k rows, its global half on the G
 * groups; the backward is twice the forward plus conv1 recomputed from the input. */
double pipe_flops_group(double G, double k, double cin, double a, double b, double c, double cout)
{
    double fwd = 2 * G * k * (cin * a + a * b + b * c + c * cout) + 2 * G * b * c;
    return 3 * fwd + 2 * G * k * cin * a;
}

/* Forward FLOPs per sample of a transformer stage on T tokens of width C. */
double pipe_flops_stage(double T, double C, int depth)
{
    double pos = 2 * T * (3 * C + C * C);
    double block = 2 * T * 12 * C * C + 4 * T * T * C;
    return pos + depth * block;
}

void pipe_unit_flops(const model3d_config *c, double flops[PIPE_UNITS])
{
    /* visible rows per scale: the padded capacities of mask.c, scale 0's at its bound: with the
     * batch-maximum padding (model3d_set_pad_multiple, the default) a step runs fewer (~0.7x at the
     * spec sizes), so the estimate overweights encoder.0 somewhat */
    double nv = mask_n_visible(c);
    double cap1 = c->groups[1] < nv * c->k[2] ? c->groups[1] : nv * c->k[2];
    double cap0 = c->groups[0] < cap1 * c->k[1] ? c->groups[0] : cap1 * c->k[1];
    double cap[3] = {cap0, cap1, nv};
    const int *h = c->embed_hidden, *d = c->dims;
    double fwd[PIPE_UNITS], grp[PIPE_UNITS] = {0}; /* forward of the rest; the groups' forward + backward */
    grp[PIPE_EMBED0] = pipe_flops_group(c->groups[0], c->k[0], 3, h[0], h[1], h[2], d[0]);
    fwd[PIPE_EMBED0] = 0;
    fwd[PIPE_ENC0] = pipe_flops_stage(cap[0], d[0], c->depths[0]);
    grp[PIPE_ENC1] = pipe_flops_group(c->groups[1], c->k[1], d[0], d[0], d[0], d[1], d[1]);
    fwd[PIPE_ENC1] = pipe_flops_stage(cap[1], d[1], c->depths[1]);
    grp[PIPE_ENC2] = pipe_flops_group(c->groups[2], c->k[2], d[1], d[1], d[1], d[2], d[2]);
    fwd[PIPE_ENC2] = pipe_flops_stage(cap[2], d[2], c->depths[2]);
    double D0 = c->dec_dims[0], D1 = c->dec_dims[1], G1 = c->groups[1];
    fwd[PIPE_DEC] = pipe_flops_stage(c->groups[2], D0, c->dec_depths[0]) + 2 * G1 * ((D0 + d[1]) * D1 + 2 * D1 * D1) +
                    pipe_flops_stage(G1, D1, c->dec_depths[1]);
    fwd[PIPE_HEADS] = 2 * G1 * D1 * 3 * c->k[1] + 2 * cap1 * D1 * (double)c->k[1] * c->views * c->feat_dim;
    for (int u = 0; u < PIPE_UNITS; u++) flops[u] = 3 * fwd[u] + grp[u]; /* backward ~ twice the forward */
}

void pipe_unit_table_3d(const double flops[PIPE_UNITS], pipe_unit_table *u)
{
    memset(u, 0, sizeof *u);
    u->n = PIPE_UNITS;
    for (int i = 0; i < PIPE_UNITS; i++) {
        u->names[i] = unit_names[i];
        u->flops[i] = flops[i];
    }
}

int pipe_split_make(pipe_split *sp, int stages, const char *spec, const double flops[PIPE_UNITS], char *err)
{
    pipe_unit_table u;
    pipe_unit_table_3d(flops, &u);
    return pipe_split_units(sp, stages, spec, &u, err);
}

void pipe_split_describe(const pipe_split *sp, const double flops[PIPE_UNITS], char *out, size_t n)
{
    pipe_unit_table u;
    pipe_unit_table_3d(flops, &u);
    pipe_split_describe_units(sp, &u, out, n);
}

/* ---- any unit table ---- */

int pipe_split_stage_of(const pipe_split *sp, int unit)
{
    for (int s = 0; s < sp->stages; s++)
        if (unit >= sp->first[s] && unit < sp->first[s + 1]) return s;
    return -1;
}

/* The largest stage cost of the split. */
static double split_max(const pipe_split *sp, const pipe_unit_table *u)
{
    double worst = 0;
    for (int s = 0; s < sp->stages; s++) {
        double sum = 0;
        for (int i = sp->first[s]; i < sp->first[s + 1]; i++) sum += u->flops[i];
        if (sum > worst) worst = sum;
    }
    return worst;
}

/* Tries every placement of the cuts after stage s (first[0..s] fixed); keeps the best in *best. */
static void search(pipe_split *cur, int s, const pipe_unit_table *u, pipe_split *best, double *best_cost)
{
    if (s == cur->stages - 1) {
        cur->first[cur->stages] = u->n;
        double cost = split_max(cur, u);
        if (cost < *best_cost) {
            *best_cost = cost;
            *best = *cur;
        }
        return;
    }
    int left = cur->stages - s - 1; /* stages still to place after this one */
    for (int next = cur->first[s] + 1; next <= u->n - left; next++) {
        cur->first[s + 1] = next;
        search(cur, s + 1, u, best, best_cost);
    }
}

/* "embed0, encoder.0, ..." into out (n bytes). */
static void unit_list(const pipe_unit_table *u, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < u->n && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", u->names[i]);
}

int pipe_split_units(pipe_split *sp, int stages, const char *spec, const pipe_unit_table *u, char *err)
{
    memset(sp, 0, sizeof *sp);
    char list[256];
    unit_list(u, list, sizeof list);
    if (stages < 1) return errf(err, "--stages %d: must be at least 1", stages);
    if (stages > u->n)
        return errf(err, "--stages %d: the network has only %d pipeline units (%s)", stages, u->n, list);
    sp->stages = stages;
    if (spec && spec[0]) {
        const char *p = spec;
        int n = 0, total = 0;
        while (*p) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 1 || (*end && *end != ',') || (*end == ',' && !end[1]))
                return errf(err, "--stage-split %s: must be %d positive unit counts separated by commas", spec,
                            stages);
            if (n < stages) sp->first[n + 1] = sp->first[n] + (int)v;
            n++;
            total += (int)v;
            p = *end ? end + 1 : end;
        }
        if (n != stages || total != u->n)
            return errf(err, "--stage-split %s: %d stages holding %d units, but --stages is %d and the network "
                        "has %d units (%s); the counts must cover it exactly", spec, n, total, stages, u->n,
                        list);
        return 0;
    }
    pipe_split cur = *sp, best = *sp;
    double best_cost = 1e300;
    cur.first[0] = 0;
    search(&cur, 0, u, &best, &best_cost);
    *sp = best;
    return 0;
}

void pipe_split_describe_units(const pipe_split *sp, const pipe_unit_table *u, char *out, size_t n)
{
    double total = 0;
    for (int i = 0; i < u->n; i++) total += u->flops[i];
    size_t len = 0;
    out[0] = 0;
    for (int s = 0; s < sp->stages && len < n; s++) {
        double sum = 0;
        len += (size_t)snprintf(out + len, n - len, "%sstage %d: ", s ? ", " : "", s);
        for (int i = sp->first[s]; i < sp->first[s + 1] && len < n; i++) {
            sum += u->flops[i];
            len += (size_t)snprintf(out + len, n - len, "%s%s", i > sp->first[s] ? "+" : "", u->names[i]);
        }
        if (len < n)
            len += (size_t)snprintf(out + len, n - len, " (%.3g GFLOP/sample, %.0f%%)", sum / 1e9,
                                    total > 0 ? 100 * sum / total : 0);
    }
}
