/* pipe_units.c -- the 3D network's units run one by one for a pipeline stage, and the messages
 * between them (see pipe_units.h). */
#include "pipe_units.h"

#include <string.h>

#include "mask.h"

/* The padded visible rows per sample of scale s (mask.c's capacities in training). */
static long cap_of(const model3d_config *c, int s)
{
    long nv = mask_n_visible(c);
    long cap1 = c->groups[1] < nv * c->k[2] ? c->groups[1] : nv * c->k[2];
    long cap0 = c->groups[0] < cap1 * c->k[1] ? c->groups[0] : cap1 * c->k[1];
    return s == 0 ? cap0 : s == 1 ? cap1 : nv;
}

/* The (at most two) tensors of boundary b's message: their float counts. */
static int msg_parts(const model3d_config *c, long B, int b, int backward, long count[2])
{
    (void)backward; /* a backward message carries the gradients of the forward one's tensors */
    long G0 = c->groups[0], G1 = c->groups[1], C0 = c->dims[0], C1 = c->dims[1], C2 = c->dims[2];
    switch (b) {
    case 1: case 2: count[0] = B * G0 * C0; return 1;
    case 3: count[0] = B * G1 * C1; count[1] = B * cap_of(c, 1) * C1; return 2;
    case 4: count[0] = B * cap_of(c, 1) * C1; count[1] = B * cap_of(c, 2) * C2; return 2;
    case 5: count[0] = B * G1 * c->dec_dims[1]; return 1;
    default: return 0;
    }
}

static long pad16(long n)
{
    return (n + 15) / 16 * 16;
}

long pipe_msg_floats(const model3d_config *c, long B, int b, int backward)
{
    long count[2];
    int n = msg_parts(c, B, b, backward, count);
    long total = 0;
    for (int i = 0; i < n; i++) total += pad16(count[i]);
    return total;
}

/* The addresses in u of boundary b's tensors. */
static int msg_slots(pipe_units *u, int b, int backward, float **slot[2])
{
    switch (b) {
    case 1: case 2: slot[0] = backward ? &u->dfull[0] : &u->e.full[0]; return 1;
    case 3:
        slot[0] = backward ? &u->dfull[1] : &u->e.full[1];
        slot[1] = backward ? &u->dnormed[1] : &u->e.es[1].normed;
        return 2;
    case 4:
        slot[0] = backward ? &u->dnormed[1] : &u->e.es[1].normed;
        slot[1] = backward ? &u->dnormed[2] : &u->e.es[2].normed;
        return 2;
    case 5: slot[0] = backward ? &u->ddec1 : &u->d.ds1.normed; return 1;
    default: return 0;
    }
}

void pipe_msg_pack(const model3d_config *c, const pipe_units *u, int b, int backward, float *msg)
{
    long count[2];
    float **slot[2];
    int n = msg_parts(c, u->e.B, b, backward, count);
    msg_slots((pipe_units *)u, b, backward, slot);
    for (int i = 0; i < n; i++) {
        memcpy(msg, *slot[i], sizeof(float) * (size_t)count[i]);
        msg += pad16(count[i]);
    }
}

void pipe_msg_attach(const model3d_config *c, pipe_units *u, int b, int backward, float *msg)
{
    long count[2];
    float **slot[2];
    int n = msg_parts(c, u->e.B, b, backward, count);
    msg_slots(u, b, backward, slot);
    for (int i = 0; i < n; i++) {
        *slot[i] = msg;
        msg += pad16(count[i]);
    }
}

int pipe_units_prepare(m3_run *r, const model3d *m, pipe_units *u, const model3d_batch *b)
{
    memset(u, 0, sizeof *u);
    u->drop_key = b->drop_key;
    TRY(m3_encoder_prepare(r, m, &u->e, b->B, b->points, MASK_DRAWN, b));
    for (int s = 1; s < 3; s++) /* scale 0's capacity may be lower (mask.h); no message carries it */
        if (u->e.mk.cap[s] != cap_of(&m->cfg, s))
            return errf(r->err, "pipeline: scale %d holds %d visible rows per sample, the messages %ld", s,
                        u->e.mk.cap[s], cap_of(&m->cfg, s));
    return 0;
}

int pipe_units_forward(m3_run *r, const model3d *m, pipe_units *u, int unit, const model3d_batch *b)
{
    switch (unit) {
    case PIPE_EMBED0: return m3_encoder_embed_forward(r, m, &u->e, 0);
    case PIPE_ENC0: return m3_encoder_stage_forward(r, m, &u->e, 0, u->drop_key);
    case PIPE_ENC1: case PIPE_ENC2:
        return m3_encoder_scale_forward(r, m, &u->e, unit - PIPE_ENC0, u->drop_key);
    case PIPE_DEC: return m3_decoder_forward(r, m, &u->d, &u->e, u->drop_key);
    case PIPE_HEADS: return m3_heads_forward(r, m, &u->h, &u->e, &u->d, b, &u->loss);
    default: return errf(r->err, "pipeline: no unit %d", unit);
    }
}

int pipe_units_backward_begin(m3_run *r, const model3d *m, pipe_units *u, int lo, int hi)
{
    const model3d_config *c = &m->cfg;
    long B = u->e.B;
#define HOLDS(unit) (lo <= (unit) && (unit) < hi)
    /* each buffer where the unit that writes it runs here (model3d_step.c's zeroed buffers) */
    if (HOLDS(PIPE_HEADS)) NEED(u->ddec1 = arena_zeros(r->a, B * c->groups[1] * c->dec_dims[1]));
    if (HOLDS(PIPE_DEC))
        for (int s = 1; s < 3; s++) NEED(u->dnormed[s] = arena_zeros(r->a, B * u->e.mk.cap[s] * c->dims[s]));
    for (int s = 0; s < 3; s++)
        if (s < 2 ? HOLDS(PIPE_ENC0 + s + 1) : HOLDS(PIPE_ENC2))
            NEED(u->dfull[s] = arena_zeros(r->a, B * c->groups[s] * c->dims[s]));
#undef HOLDS
    return 0;
}

int pipe_units_backward(m3_run *r, const model3d *m, pipe_units *u, int unit)
{
    switch (unit) {
    case PIPE_EMBED0: return m3_encoder_embed_backward(r, m, &u->e, 0, u->dfull);
    case PIPE_ENC0: return m3_encoder_stage_backward(r, m, &u->e, 0, u->dfull, u->dnormed);
    case PIPE_ENC1: case PIPE_ENC2:
        return m3_encoder_scale_backward(r, m, &u->e, unit - PIPE_ENC0, u->dfull, u->dnormed);
    case PIPE_DEC: return m3_decoder_backward(r, m, &u->d, &u->e, u->ddec1, u->dnormed);
    case PIPE_HEADS: return m3_heads_backward(r, m, &u->h, &u->d, u->e.B, u->ddec1);
    default: return errf(r->err, "pipeline: no unit %d", unit);
    }
}
