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

static void run_layout(model3d *m, m3_layout *L)
{
    const model3d_config *c = &m->cfg;
    const int *h = c->embed_hidden;
    m->embed[0] = m3_layout_group(L, 3, h[0], h[1], h[2], c->dims[0], "embed0");
    m->embed[1] = m3_layout_group(L, c->dims[0], c->dims[0], c->dims[0], c->dims[1], c->dims[1], "merge1");
    m->embed[2] = m3_layout_group(L, c->dims[1], c->dims[1], c->dims[1], c->dims[2], c->dims[2], "merge2");
    char n[96];
    for (int s = 0; s < 3; s++) {
        snprintf(n, sizeof n, "encoder.%d.pos", s);
        m->enc[s].pos = m3_layout_pos(L, c->dims[s], n);
        snprintf(n, sizeof n, "encoder.%d", s);
        m3_layout_blocks(L, &m->enc[s], c->dims[s], n);
        snprintf(n, sizeof n, "encoder.%d.norm", s);
        m->enc[s].norm = m3_layout_norm(L, c->dims[s], n);
    }
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
    m->rec2d = m3_layout_linear(L, D1, c->k[1] * c->views * c->feat_dim, 1, "rec_head_2d");
}

int m3_build_layout(model3d *m, char *err)
{
    const model3d_config *c = &m->cfg;
    for (int s = 0; s < 3; s++) {
        m->enc[s].depth = c->depths[s];
        m->enc[s].blocks = calloc((size_t)(c->depths[s] + 1), sizeof(m3_block));
        if (!m->enc[s].blocks) return errf(err, "model3d: out of memory");
    }
    for (int s = 0; s < 2; s++) {
        m->dec[s].depth = c->dec_depths[s];
        m->dec[s].blocks = calloc((size_t)(c->dec_depths[s] + 1), sizeof(m3_block));
        if (!m->dec[s].blocks) return errf(err, "model3d: out of memory");
    }
    m3_layout L = {0};
    run_layout(m, &L);
    m->tensors = calloc((size_t)L.n_tensors, sizeof *m->tensors);
    m->buffer_tensors = calloc((size_t)L.n_buffer_tensors, sizeof *m->buffer_tensors);
    if (!m->tensors || !m->buffer_tensors) return errf(err, "model3d: out of memory");
    L = (m3_layout){.tensors = m->tensors, .buffer_tensors = m->buffer_tensors};
    run_layout(m, &L);
    m->n_tensors = L.n_tensors;
    m->n_buffer_tensors = L.n_buffer_tensors;
    m->n_params = L.n_params;
    m->n_buffers = L.n_buffers;
    /* stochastic depth: rising linearly 0..drop_path over the encoder blocks, then the decoder's */
    int n_enc = c->depths[0] + c->depths[1] + c->depths[2], i = 0;
    for (int s = 0; s < 3; s++)
        for (int j = 0; j < c->depths[s]; j++, i++)
            m->enc[s].blocks[j].drop_rate = n_enc > 1 ? c->drop_path * i / (n_enc - 1) : 0;
    int n_dec = c->dec_depths[0] + c->dec_depths[1];
    i = 0;
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < c->dec_depths[s]; j++, i++)
            m->dec[s].blocks[j].drop_rate = n_dec > 1 ? c->drop_path * i / (n_dec - 1) : 0;
    return 0;
}

/* Xavier-uniform weights of rank >= 2, zero biases, unit norm scales, trunc-normal(0.02) token. */
static void init_params(model3d *m, uint64_t seed)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const model3d_tensor *T = &m->tensors[t];
        float *p = m->params + T->offset;
        rng_t r;
        rng_seed(&r, seed, (uint64_t)t);
        const char *suffix = strrchr(T->name, '.');
        if (strcmp(T->name, "decoder.mask_token") == 0) {
            for (long i = 0; i < T->count; i++) { /* timm trunc_normal_(std=.02): cut at +-2 */
                double v = 0.02 * rng_normal(&r);
                p[i] = (float)(v > 2.0 ? 2.0 : v < -2.0 ? -2.0 : v);
            }
        } else if (T->rank >= 2) {
            double bound = sqrt(6.0 / (T->shape[0] + T->shape[1]));
            for (long i = 0; i < T->count; i++) p[i] = (float)rng_range(&r, -bound, bound);
        } else {
            float v = suffix && strcmp(suffix, ".weight") == 0 ? 1.0f : 0.0f;
            for (long i = 0; i < T->count; i++) p[i] = v;
        }
    }
}

/* Running mean 0 and var 1; the buffers hold [running_mean (C), running_var (C)] per BatchNorm in
 * parameter-table order. */
static void init_running_stats(model3d *m)
{
    memset(m->buffers, 0, sizeof(float) * (size_t)m->n_buffers);
    m3_bn *bns[] = {&m->embed[0].bn1, &m->embed[0].bn2, &m->embed[1].bn1, &m->embed[1].bn2,
                    &m->embed[2].bn1, &m->embed[2].bn2, &m->interp.bn,    &m->interp.res_bn1,
                    &m->interp.res_bn2};
    for (size_t i = 0; i < sizeof bns / sizeof *bns; i++)
        for (int j = 0; j < bns[i]->C; j++) m->buffers[bns[i]->run_var + j] = 1.0f;
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
    m->max_batch = max_batch;
    m->ctx = ctx;
    arena_init(&m->step_arena, (size_t)64 << 20);
    arena_init(&m->eval_arena, (size_t)16 << 20);
    if (m3_build_layout(m, err) || nn_cache_init(&m->cache, ctx, 1024, err)) {
        model3d_free(m);
        return -1;
    }
    m->params = calloc((size_t)m->n_params, sizeof(float));
    m->grads = calloc((size_t)m->n_params, sizeof(float));
    m->buffers = calloc((size_t)m->n_buffers + 1, sizeof(float));
    if (!m->params || !m->grads || !m->buffers) {
        model3d_free(m);
        return errf(err, "model3d: out of memory (%ld parameters)", m->n_params);
    }
    init_params(m, seed);
    init_running_stats(m);
    *out = m;
    return 0;
}

void model3d_free(model3d *m)
{
    if (!m) return;
    for (int s = 0; s < 3; s++) free(m->enc[s].blocks);
    for (int s = 0; s < 2; s++) free(m->dec[s].blocks);
    nn_cache_free(&m->cache);
    arena_free(&m->step_arena);
    arena_free(&m->eval_arena);
    free(m->tensors);
    free(m->buffer_tensors);
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m);
}

const model3d_config *model3d_get_config(const model3d *m) { return &m->cfg; }
float *model3d_params(model3d *m) { return m->params; }
float *model3d_grads(model3d *m) { return m->grads; }
long model3d_n_params(const model3d *m) { return m->n_params; }
int model3d_n_tensors(const model3d *m) { return m->n_tensors; }
float *model3d_buffers(model3d *m) { return m->buffers; }
long model3d_n_buffers(const model3d *m) { return m->n_buffers; }
const model3d_tensor *model3d_get_tensor(const model3d *m, int i)
{
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}
int model3d_n_buffer_tensors(const model3d *m) { return m->n_buffer_tensors; }
const model3d_tensor *model3d_get_buffer_tensor(const model3d *m, int i)
{
    return i >= 0 && i < m->n_buffer_tensors ? &m->buffer_tensors[i] : NULL;
}

void model3d_alloc_stats(const model3d *m, model3d_alloc_info *info)
{
    info->arena_chunks = m->step_arena.n_mallocs + m->eval_arena.n_mallocs;
    info->primitives = m->cache.n_created;
    info->primitive_bytes = m->cache.bytes_allocated;
    info->matmul_flops = m->cache.matmul_flops;
    info->executions = m->cache.n_exec;
}
