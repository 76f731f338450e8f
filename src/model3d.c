/* model3d.c -- the 3D network's parameter table (names, shapes, offsets in the one parameter
 * buffer; docs/model3d.md gives the order), creation with the spec's initialisation, and the
 * accessors of model3d.h. The configuration is in model3d_config.c, the step in model3d_step.c.
 */
#include "model3d_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "m3_layout.h"
#include "rng.h"

/* ---- parameter table ---- */

static void run_layout(void *model, m3_layout *L)
{
    model3d *m = model;
    const model3d_config *c = &m->cfg;
    m3_layout_encoder(L, m->embed, m->enc, c, 1);
    int ts[3] = {1, 1, c->dec_dims[0]};
    m->mask_token = m3_layout_tensor(L, 0, 3, ts, "decoder.mask_token");
    m->dec[0].pos = m3_layout_pos(L, c->dec_dims[0], "decoder.0.pos");
    m3_layout_blocks(L, &m->dec[0], c->dec_dims[0], "decoder.0");
    int D0 = c->dec_dims[0], D1 = c->dec_dims[1];
    m->interp.conv = m3_layout_linear(L, D0 + c->dims[1], D1, 1, "decoder.1.interp.conv");
    m->interp.bn = m3_layout_bn(L, D1, "decoder.1.interp.bn");
    m->interp.res_conv1 = m3_layout_linear(L, D1, D1, 1, "decoder.1.res.conv1");
    m->interp.res_bn1 = m3_layout_bn(L, D1, "decoder.1.res.bn1");
    m->interp.res_conv2 = m3_layout_linear(L, D1, D1, 1, "decoder.1.res.conv2");
    m->interp.res_bn2 = m3_layout_bn(L, D1, "decoder.1.res.bn2");
    m->dec[1].pos = m3_layout_pos(L, D1, "decoder.1.pos");
    m3_layout_blocks(L, &m->dec[1], D1, "decoder.1");
    m->dec[1].norm = m3_layout_norm(L, D1, "decoder.1.norm");
    m->rec3d = m3_layout_linear(L, D1, 3 * c->k[1], 1, "rec_head_3d");
    if (c->feat_dim > 0) m->rec2d = m3_layout_linear(L, D1, c->k[1] * c->views * c->feat_dim, 1, "rec_head_2d");
}

/* The mask token: trunc-normal(0.02) (timm trunc_normal_(std=.02): cut at +-2); the other tensors
 * take m3_store_init_params' rule. */
static int init_mask_token(const m3_store *s, int t, rng_t *r, float *p)
{
    const model3d_tensor *T = &s->tensors[t];
    if (strcmp(T->name, "decoder.mask_token") != 0) return 0;
    for (long i = 0; i < T->count; i++) {
        double v = 0.02 * rng_normal(r);
        p[i] = (float)(v > 2.0 ? 2.0 : v < -2.0 ? -2.0 : v);
    }
    return 1;
}

int model3d_create(model3d **out, const model3d_config *cfg, int max_batch, uint64_t seed,
                   dnn_ctx *ctx, char *err)
{
    *out = NULL;
    if (model3d_config_check(cfg, err)) return -1;
    if (max_batch < 1) return errf(err, "model3d: max_batch must be >= 1");
    model3d *m = calloc(1, sizeof *m);
    if (!m) return errf(err, "model3d: out of memory");
    m->cfg = *cfg;
    if (m3_stages_alloc(m->enc, 3, cfg->depths) || m3_stages_alloc(m->dec, 2, cfg->dec_depths)) {
        model3d_free(m);
        return errf(err, "model3d: out of memory");
    }
    if (m3_store_init(&m->st, run_layout, m, max_batch, ctx, "model3d", err)) {
        model3d_free(m);
        return -1;
    }
    /* stochastic depth over the encoder blocks, then separately over the decoder's */
    m3_stages_drop_path(m->enc, 3, cfg->drop_path);
    m3_stages_drop_path(m->dec, 2, cfg->drop_path);
    m3_store_init_params(&m->st, seed, init_mask_token);
    m->loss_w3 = m->loss_w2 = 1.0;
    m->pad_multiple = MODEL3D_PAD_MULTIPLE;
    *out = m;
    return 0;
}

void model3d_free(model3d *m)
{
    if (!m) return;
    m3_stages_free(m->enc, 3);
    m3_stages_free(m->dec, 2);
    m3_store_free(&m->st);
    free(m);
}

int model3d_set_loss_weights(model3d *m, double w3, double w2, char *err)
{
    if (!(w3 >= 0) || !(w2 >= 0) || (w3 == 0 && w2 == 0))
        return errf(err, "model3d: loss weights %g (3D) and %g (2D) must be non-negative, not both 0", w3, w2);
    m->loss_w3 = w3;
    m->loss_w2 = w2;
    return 0;
}

int model3d_set_precision(model3d *m, nn_precision p, char *err) { return m3_store_set_precision(&m->st, p, err); }

int model3d_set_pad_multiple(model3d *m, int q, char *err)
{
    if (q < 0) return errf(err, "model3d: pad multiple %d must be >= 0", q);
    m->pad_multiple = q;
    return 0;
}

const model3d_config *model3d_get_config(const model3d *m) { return &m->cfg; }
float *model3d_params(model3d *m) { return m3_store_params(&m->st); }
float *model3d_grads(model3d *m) { return m->st.grads; }
long model3d_n_params(const model3d *m) { return m->st.n_params; }
int model3d_n_tensors(const model3d *m) { return m->st.n_tensors; }
float *model3d_buffers(model3d *m) { return m->st.buffers; }
long model3d_n_buffers(const model3d *m) { return m->st.n_buffers; }
const model3d_tensor *model3d_get_tensor(const model3d *m, int i)
{
    return m3_store_tensor(&m->st, i);
}
int model3d_n_buffer_tensors(const model3d *m) { return m->st.n_buffer_tensors; }
const model3d_tensor *model3d_get_buffer_tensor(const model3d *m, int i)
{
    return m3_store_buffer_tensor(&m->st, i);
}

void model3d_set_step_options(model3d *m, int recompute, void (*grads_final)(void *ctx, long lo), void *ctx)
{
    m->st.recompute = recompute;
    m->st.grads_final = grads_final;
    m->st.grads_final_ctx = ctx;
}

void model3d_alloc_stats(const model3d *m, model3d_alloc_info *info)
{
    info->arena_chunks = m->st.step_arena.n_mallocs + m->st.eval_arena.n_mallocs;
    info->step_arena_bytes = m3_store_step_arena_bytes(&m->st);
    info->primitives = m->st.cache.n_created;
    info->primitive_bytes = m->st.cache.bytes_allocated;
    info->matmul_flops = m->st.cache.matmul_flops;
    info->executions = m->st.cache.n_exec;
    info->bf16_weight_copies = m->st.bf16_copies;
}
