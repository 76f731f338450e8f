/* cls_units.c -- the classifier's units run one by one for a pipeline stage, and the messages
 * between them (see cls_units.h). */
#include "cls_units.h"

#include <string.h>

#include "losses.h"

static const char *const unit_names[CLS_UNITS] = {"embed0", "encoder.0", "encoder.1", "encoder.2", "head"};

void cls_units_table(const classifier *m, pipe_unit_table *u)
{
    const model3d_config *c = &m->cfg.enc;
    const int *h = c->embed_hidden, *d = c->dims;
    /* fwd: forward FLOPs of the transformer stages and the head; grp: the mini-PointNets' forward +
       backward (pipe_flops_group) */
    double H = m->cfg.head_hidden, fwd[CLS_UNITS] = {0}, grp[CLS_UNITS] = {0};
    grp[CLS_EMBED0] = pipe_flops_group(c->groups[0], c->k[0], 3, h[0], h[1], h[2], d[0]);
    fwd[CLS_ENC0] = pipe_flops_stage(c->groups[0], d[0], c->depths[0]);
    for (int s = 1; s < 3; s++) {
        grp[CLS_ENC0 + s] = pipe_flops_group(c->groups[s], c->k[s], d[s - 1], d[s - 1], d[s - 1], d[s], d[s]);
        fwd[CLS_ENC0 + s] = pipe_flops_stage(c->groups[s], d[s], c->depths[s]);
    }
    fwd[CLS_HEAD] = 2 * (m->head.fc1.in * H + H * H + H * m->cfg.n_classes);
    memset(u, 0, sizeof *u);
    u->n = CLS_UNITS;
    for (int i = 0; i < CLS_UNITS; i++) {
        u->names[i] = unit_names[i];
        u->flops[i] = 3 * fwd[i] + grp[i]; /* backward ~ twice the forward */
    }
}

void cls_units_names(pipe_unit_table *u)
{
    memset(u, 0, sizeof *u);
    u->n = CLS_UNITS;
    for (int i = 0; i < CLS_UNITS; i++) {
        u->names[i] = unit_names[i];
        u->flops[i] = 1;
    }
}

int cls_unit_of_tensor(const char *name)
{
    static const struct { const char *prefix; int unit; } map[] = {
        {"embed0.", CLS_EMBED0}, {"encoder.0.", CLS_ENC0}, {"merge1.", CLS_ENC1}, {"encoder.1.", CLS_ENC1},
        {"merge2.", CLS_ENC2},   {"encoder.2.", CLS_ENC2}, {"norm.", CLS_HEAD},   {"head.", CLS_HEAD},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strncmp(name, map[i].prefix, strlen(map[i].prefix))) return map[i].unit;
    return -1;
}

int cls_units_prepare(m3_run *r, classifier *m, cls_units *u, const classifier_batch *b)
{
    memset(u, 0, sizeof *u);
    ft_encoder e = cls_encoder_of(m);
    TRY(cls_make_masks(r, m, &u->f, b));
    return ft_encoder_tokenize(r, &e, &u->f.e, b->B, b->points);
}

int cls_units_forward(m3_run *r, classifier *m, cls_units *u, int unit, const classifier_batch *b)
{
    ft_encoder e = cls_encoder_of(m);
    switch (unit) {
    case CLS_EMBED0: return ft_encoder_embed_forward(r, &e, &u->f.e, 0);
    case CLS_ENC0: return ft_encoder_stage_forward(r, &e, &u->f.e, 0);
    case CLS_ENC1: case CLS_ENC2:
        TRY(ft_encoder_embed_forward(r, &e, &u->f.e, unit - CLS_ENC0));
        return ft_encoder_stage_forward(r, &e, &u->f.e, unit - CLS_ENC0);
    case CLS_HEAD:
        TRY(cls_top_forward(r, m, &u->f));
        u->loss = loss_xent_forward(u->f.logits, b->labels, b->B, m->cfg.n_classes, m->cfg.smoothing);
        return 0;
    default: return errf(r->err, "pipeline: no unit %d", unit);
    }
}

int cls_units_backward(m3_run *r, classifier *m, cls_units *u, int unit, const classifier_batch *b)
{
    ft_encoder e = cls_encoder_of(m);
    const ft_encoder_state *f = &u->f.e;
    float *dx0 = NULL;
    switch (unit) {
    case CLS_EMBED0: return ft_encoder_embed_backward(r, &e, f, 0, u->dx0, NULL);
    case CLS_ENC0: return ft_encoder_stage_backward(r, &e, f, 0, u->draw[0], NULL, &u->dx0);
    case CLS_ENC1: case CLS_ENC2: {
        int s = unit - CLS_ENC0;
        TRY(ft_encoder_stage_backward(r, &e, f, s, u->draw[s], NULL, &dx0));
        return ft_encoder_embed_backward(r, &e, f, s, dx0, &u->draw[s - 1]);
    }
    case CLS_HEAD: return cls_top_backward(r, m, &u->f, b->labels, &u->draw[2]);
    default: return errf(r->err, "pipeline: no unit %d", unit);
    }
}

long cls_msg_floats(const classifier *m, long B, int b)
{
    const model3d_config *c = &m->cfg.enc;
    int s = b <= 2 ? 0 : b - 2; /* the scale of the boundary's tensor */
    return b >= 1 && b < CLS_UNITS ? B * c->groups[s] * c->dims[s] : 0;
}

/* The address in u of boundary b's tensor. */
static float **msg_slot(cls_units *u, int b, int backward)
{
    if (b == 1) return backward ? &u->dx0 : &u->f.e.x0[0];
    return backward ? &u->draw[b - 2] : &u->f.e.es[b - 2].raw;
}

void cls_msg_pack(const classifier *m, cls_units *u, int b, int backward, float *msg)
{
    memcpy(msg, *msg_slot(u, b, backward), sizeof(float) * (size_t)cls_msg_floats(m, u->f.e.B, b));
}

void cls_msg_attach(cls_units *u, int b, int backward, float *msg)
{
    *msg_slot(u, b, backward) = msg;
}
