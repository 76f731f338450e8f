/* tokenizer.h -- the multi-scale tokenizer of the 3D network (docs/model3d.md): FPS + kNN per scale,
 * centres carried with their original point index. The masking of the tokens is in mask.h.
 */
#ifndef I2P_TOKENIZER_H
#define I2P_TOKENIZER_H

#include <stdint.h>

#include "arena.h"
#include "model3d.h"

typedef struct {
    int32_t *knn[3];   /* (B,G_s,k_s) indices into the previous level (points, scale-0, scale-1 centres) */
    int32_t *orig[3];  /* (B,G_s) original point index of each centre */
    float *ctr[3];     /* (B,G_s,3) centre xyz */
    float *nb0;        /* (B,G0,k0,3) scale-0 neighbourhoods relative to their centre */
} m3_tokens;

/* points (B,P,3) -> tokens; buffers from the arena. 0 or -1 (out of memory). */
int tokenizer_run(const model3d_config *c, arena *a, const float *points, int B, m3_tokens *t);

#endif
