/* m3_run.c -- what the layers of m3_layers.h share beyond the run context: the allocation of a
 * layer's saved state from the run's arena, and the backward-progress report.
 */
#include "m3_layers.h"

int m3_alloc_floats(m3_run *r, const m3_buffer *list, int n)
{
    for (int i = 0; i < n; i++) NEED(*list[i].ptr = arena_floats(r->a, list[i].count));
    return 0;
}

void m3_grads_final(const m3_run *r, long lo)
{
    if (r->grads_final) r->grads_final(r->grads_final_ctx, lo);
}
