/* pipe_split.h -- how a network is cut into pipeline stages (pretrain and finetune --stages).
 *
 * A network is a chain of units (a pipe_unit_table: names and FLOPs per sample); a stage holds a
 * contiguous range of them. The split is chosen to balance the units' FLOPs or given by hand as
 * units per stage (pipe_split_units). The 3D pre-training network has six units:
 *   0 embed0     mini-PointNet of the scale-0 neighbourhoods          (sends full0)
 *   1 encoder.0  encoder stage 0 on the visible scale-0 tokens        (sends full0)
 *   2 encoder.1  merge1 + encoder stage 1                             (sends full1, enc1 out)
 *   3 encoder.2  merge2 + encoder stage 2                             (sends enc1 out, enc2 out)
 *   4 decoder    mask tokens, decoder stage 0, upsampling, stage 1    (sends dec1 out)
 *   5 heads      3D and 2D reconstruction heads and their losses
 * The state crossing each boundary is the short list in parentheses (pipe_units.h); the
 * tokenizer and the mask are recomputed on every stage. Each parameter and BatchNorm buffer tensor
 * belongs to one unit (by its name). A split is chosen to balance the units' FLOPs (an analytic
 * count of the matmuls, forward and backward) or given by hand as units per stage.
 */
#ifndef I2P_PIPE_SPLIT_H
#define I2P_PIPE_SPLIT_H

#include <stddef.h>

#include "model3d.h"

#define PIPE_MAX_UNITS 8

/* The units of a network in order: their names and cost (FLOPs per sample, forward + backward). */
typedef struct {
    int n;
    const char *names[PIPE_MAX_UNITS];
    double flops[PIPE_MAX_UNITS];
} pipe_unit_table;

typedef struct {
    int stages;
    int first[PIPE_MAX_UNITS + 1]; /* stage s holds units [first[s], first[s + 1]) */
} pipe_split;

/* spec "" or NULL: the contiguous split of u's units into `stages` parts whose largest FLOP count
 * is smallest (ties: the earliest cut); else spec is the units per stage, comma-separated
 * ("2,3,1"), which must name `stages` positive counts summing to u->n. 0, or -1 with err. */
int pipe_split_units(pipe_split *sp, int stages, const char *spec, const pipe_unit_table *u, char *err);
/* "stage 0: embed0+encoder.0 (1.2 GFLOP/sample, 40%), stage 1: ..." into out (n bytes). */
void pipe_split_describe_units(const pipe_split *sp, const pipe_unit_table *u, char *out, size_t n);
/* The stage holding unit `unit`, or -1. */
int pipe_split_stage_of(const pipe_split *sp, int unit);

/* FLOPs per sample of a mini-PointNet over G groups of k points (widths cin -> a -> b, then
 * [max | b] 2b -> c -> cout), forward AND backward (m3_group.c: conv3 factorised over the concat,
 * conv1 recomputed in the backward); forward FLOPs per sample of a transformer stage of `depth`
 * blocks on T tokens of width C (positional MLP included). */
double pipe_flops_group(double G, double k, double cin, double a, double b, double c, double cout);
double pipe_flops_stage(double T, double C, int depth);

/* ---- the 3D pre-training network (model3d.h) ---- */
#define PIPE_UNITS 6
enum { PIPE_EMBED0, PIPE_ENC0, PIPE_ENC1, PIPE_ENC2, PIPE_DEC, PIPE_HEADS };

const char *pipe_unit_name(int unit);
/* The unit a parameter or buffer tensor belongs to, from its name (model3d.h table); -1 unknown. */
int pipe_unit_of_tensor(const char *name);
/* Matmul FLOPs per sample (forward + backward) of each unit, for the configuration c. */
void pipe_unit_flops(const model3d_config *c, double flops[PIPE_UNITS]);

/* The table of the six units with the given FLOPs (pipe_unit_flops). */
void pipe_unit_table_3d(const double flops[PIPE_UNITS], pipe_unit_table *u);
/* pipe_split_units over the six units with these FLOPs. */
int pipe_split_make(pipe_split *sp, int stages, const char *spec, const double flops[PIPE_UNITS], char *err);
/* pipe_split_describe_units over the six units. */
void pipe_split_describe(const pipe_split *sp, const double flops[PIPE_UNITS], char *out, size_t n);

#endif
