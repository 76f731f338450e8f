/* classifier.c -- the fine-tuning classifier's configuration (defaults, check, JSON), parameter
 * table (encoder tensors under their pre-training names, then "norm" and "head.*"), creation with
 * its initialisation, the accessors of classifier.h and the copy of a pre-trained encoder by name.
 * The step itself is in classifier_step.c.
 */
#include "classifier_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "ft_encoder.h"
#include "m3_layout.h"
#include "model_opts.h"
#include "rng.h"

void classifier_config_default(classifier_config *c)
{
    memset(c, 0, sizeof *c);
    model3d_config_default(&c->enc);
    c->enc.points = 1024;
    c->enc.k[0] = 48; c->enc.k[1] = 24; c->enc.k[2] = 24;
    c->enc.drop_path = 0.1;
    c->radius[0] = 0.24; c->radius[1] = 0.48; c->radius[2] = 0.96;
    c->pooling = CLS_POOL_MEAN_PLUS_MAX;
    c->n_classes = 40;
    c->head_hidden = 256;
    c->dropout = 0.5;
    c->smoothing = 0.2;
}

int classifier_config_check(const classifier_config *c, char *err)
{
    const model3d_config *e = &c->enc;
    if (e->points < 1) return errf(err, "classifier config: points must be >= 1");
    int prev = e->points;
    for (int s = 0; s < 3; s++) {
        if (e->groups[s] < 1 || e->groups[s] > prev)
            return errf(err, "classifier config: groups[%d] = %d must be in [1, %d]", s, e->groups[s], prev);
        if (e->k[s] < 1 || e->k[s] > prev)
            return errf(err, "classifier config: k[%d] = %d must be in [1, %d]", s, e->k[s], prev);
        if (e->dims[s] < 1 || e->heads < 1 || e->dims[s] % e->heads)
            return errf(err, "classifier config: heads %d must divide dims[%d] = %d", e->heads, s, e->dims[s]);
        if (e->depths[s] < 0) return errf(err, "classifier config: depths[%d] < 0", s);
        if (e->embed_hidden[s] < 1) return errf(err, "classifier config: embed_hidden[%d] < 1", s);
        if (!(c->radius[s] >= 0)) return errf(err, "classifier config: radius[%d] must be >= 0", s);
        prev = e->groups[s];
    }
    if (!(e->drop_path >= 0 && e->drop_path < 1)) return errf(err, "classifier config: drop_path must be in [0,1)");
    if (c->pooling != CLS_POOL_MEAN_PLUS_MAX && c->pooling != CLS_POOL_CONCAT)
        return errf(err, "classifier config: unknown pooling %d", (int)c->pooling);
    if (c->n_classes < 2) return errf(err, "classifier config: n_classes must be >= 2");
    if (c->head_hidden < 1) return errf(err, "classifier config: head_hidden must be >= 1");
    if (!(c->dropout >= 0 && c->dropout < 1)) return errf(err, "classifier config: dropout must be in [0,1)");
    if (!(c->smoothing >= 0 && c->smoothing < 1))
        return errf(err, "classifier config: smoothing must be in [0,1)");
    return 0;
}

/* ---- JSON ---- */

static const char *pooling_name(cls_pooling p) { return p == CLS_POOL_CONCAT ? "concat" : "mean+max"; }

cJSON *classifier_config_to_json(const classifier_config *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON *enc = model3d_config_to_json(&c->enc);
    cJSON *rad = cJSON_CreateDoubleArray(c->radius, 3);
    if (!enc || !rad) {
        cJSON_Delete(enc);
        cJSON_Delete(rad);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToObject(o, "encoder", enc);
    cJSON_AddItemToObject(o, "radius", rad);
    cJSON_AddStringToObject(o, "pooling", pooling_name(c->pooling));
    cJSON_AddNumberToObject(o, "n_classes", c->n_classes);
    cJSON_AddNumberToObject(o, "head_hidden", c->head_hidden);
    cJSON_AddNumberToObject(o, "dropout", c->dropout);
    cJSON_AddNumberToObject(o, "smoothing", c->smoothing);
    return o;
}

static int json_number(const cJSON *j, const char *key, double *v, char *err)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(x)) return errf(err, "classifier configuration: '%s' missing or not a number", key);
    *v = x->valuedouble;
    return 0;
}

static int json_int(const cJSON *j, const char *key, int *v, char *err)
{
    double d = 0;
    if (json_number(j, key, &d, err)) return -1;
    if (d != floor(d) || fabs(d) > 1e9) return errf(err, "classifier configuration: '%s' must be an integer", key);
    *v = (int)d;
    return 0;
}

int classifier_config_from_json(const cJSON *j, classifier_config *c, char *err)
{
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(j)) return errf(err, "classifier configuration: not a JSON object");
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(j, "encoder");
    if (!cJSON_IsObject(enc)) return errf(err, "classifier configuration: 'encoder' missing");
    if (model3d_config_from_json(enc, &c->enc, err)) return -1;
    const cJSON *rad = cJSON_GetObjectItemCaseSensitive(j, "radius");
    if (!cJSON_IsArray(rad) || cJSON_GetArraySize(rad) != 3)
        return errf(err, "classifier configuration: 'radius' must be 3 numbers");
    for (int s = 0; s < 3; s++) {
        const cJSON *v = cJSON_GetArrayItem(rad, s);
        if (!cJSON_IsNumber(v)) return errf(err, "classifier configuration: 'radius' must be 3 numbers");
        c->radius[s] = v->valuedouble;
    }
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(j, "pooling");
    if (!cJSON_IsString(pool)) return errf(err, "classifier configuration: 'pooling' missing");
    if (!strcmp(pool->valuestring, "mean+max")) c->pooling = CLS_POOL_MEAN_PLUS_MAX;
    else if (!strcmp(pool->valuestring, "concat")) c->pooling = CLS_POOL_CONCAT;
    else return errf(err, "classifier configuration: 'pooling' must be \"mean+max\" or \"concat\"");
    if (json_int(j, "n_classes", &c->n_classes, err) || json_int(j, "head_hidden", &c->head_hidden, err) ||
        json_number(j, "dropout", &c->dropout, err) || json_number(j, "smoothing", &c->smoothing, err))
        return -1;
    return classifier_config_check(c, err);
}

/* ---- parameter table ---- */

static void run_layout(classifier *m, m3_layout *L)
{
    const model3d_config *c = &m->cfg.enc;
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
    }
    m->norm = m3_layout_norm(L, c->dims[2], "norm");
    int d = m->cfg.pooling == CLS_POOL_CONCAT ? 2 * c->dims[2] : c->dims[2], H = m->cfg.head_hidden;
    m->head.fc1 = m3_layout_linear(L, d, H, 1, "head.fc1");
    m->head.bn1 = m3_layout_bn(L, H, "head.bn1");
    m->head.fc2 = m3_layout_linear(L, H, H, 1, "head.fc2");
    m->head.bn2 = m3_layout_bn(L, H, "head.bn2");
    m->head.fc3 = m3_layout_linear(L, H, m->cfg.n_classes, 1, "head.fc3");
}

static int build_layout(classifier *m, char *err)
{
    const model3d_config *c = &m->cfg.enc;
    for (int s = 0; s < 3; s++) {
        m->enc[s].depth = c->depths[s];
        m->enc[s].norm = (m3_norm){.w = -1, .b = -1, .C = 0};
        m->enc[s].blocks = calloc((size_t)(c->depths[s] + 1), sizeof(m3_block));
        if (!m->enc[s].blocks) return errf(err, "classifier: out of memory");
    }
    m3_layout L = {0};
    run_layout(m, &L);
    m->tensors = calloc((size_t)L.n_tensors, sizeof *m->tensors);
    m->buffer_tensors = calloc((size_t)L.n_buffer_tensors, sizeof *m->buffer_tensors);
    if (!m->tensors || !m->buffer_tensors) return errf(err, "classifier: out of memory");
    L = (m3_layout){.tensors = m->tensors, .buffer_tensors = m->buffer_tensors};
    run_layout(m, &L);
    m->n_tensors = L.n_tensors;
    m->n_buffer_tensors = L.n_buffer_tensors;
    m->n_params = L.n_params;
    m->n_buffers = L.n_buffers;
    /* stochastic depth rising linearly 0..drop_path over the encoder blocks (torch.linspace) */
    int n_enc = c->depths[0] + c->depths[1] + c->depths[2], i = 0;
    for (int s = 0; s < 3; s++)
        for (int j = 0; j < c->depths[s]; j++, i++)
            m->enc[s].blocks[j].drop_rate = n_enc > 1 ? c->drop_path * i / (n_enc - 1) : 0;
    return 0;
}

/* Encoder as model3d_create (Xavier-uniform weights, zero biases, unit norm scales); head linears
 * as PyTorch's nn.Linear default (weight and bias U(-1/sqrt(in), 1/sqrt(in))); the fresh norm and
 * the head's BatchNorms (1, 0). One rng stream per tensor index. */
static void init_params(classifier *m, uint64_t seed)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const model3d_tensor *T = &m->tensors[t];
        float *p = m->params + T->offset;
        rng_t r;
        rng_seed(&r, seed, (uint64_t)t);
        const char *suffix = strrchr(T->name, '.');
        int weight = suffix && !strcmp(suffix, ".weight");
        if (!strncmp(T->name, "head.fc", 7)) {
            /* a bias follows its weight (out, in) in the table */
            int fan_in = T->rank >= 2 ? T->shape[1] : m->tensors[t - 1].shape[1];
            double bound = 1.0 / sqrt((double)fan_in);
            for (long i = 0; i < T->count; i++) p[i] = (float)rng_range(&r, -bound, bound);
        } else if (T->rank >= 2) {
            double bound = sqrt(6.0 / (T->shape[0] + T->shape[1]));
            for (long i = 0; i < T->count; i++) p[i] = (float)rng_range(&r, -bound, bound);
        } else {
            for (long i = 0; i < T->count; i++) p[i] = weight ? 1.0f : 0.0f;
        }
    }
    /* running mean 0, running var 1 */
    for (int i = 0; i < m->n_buffer_tensors; i++) {
        const model3d_tensor *T = &m->buffer_tensors[i];
        float v = strstr(T->name, "running_var") ? 1.0f : 0.0f;
        for (long j = 0; j < T->count; j++) m->buffers[T->offset + j] = v;
    }
}

int classifier_create(classifier **out, const classifier_config *cfg, int max_batch, uint64_t seed,
                      dnn_ctx *ctx, char *err)
{
    *out = NULL;
    if (classifier_config_check(cfg, err)) return -1;
    if (max_batch < 1) return errf(err, "classifier: max_batch must be >= 1");
    classifier *m = calloc(1, sizeof *m);
    if (!m) return errf(err, "classifier: out of memory");
    m->cfg = *cfg;
    m->max_batch = max_batch;
    m->ctx = ctx;
    arena_init(&m->step_arena, (size_t)64 << 20);
    arena_init(&m->eval_arena, (size_t)16 << 20);
    if (build_layout(m, err) || nn_cache_init(&m->cache, ctx, 1024, err)) {
        classifier_free(m);
        return -1;
    }
    m->params = calloc((size_t)m->n_params, sizeof(float));
    m->grads = calloc((size_t)m->n_params, sizeof(float));
    m->buffers = calloc((size_t)m->n_buffers + 1, sizeof(float));
    if (!m->params || !m->grads || !m->buffers) {
        classifier_free(m);
        return errf(err, "classifier: out of memory (%ld parameters)", m->n_params);
    }
    init_params(m, seed);
    *out = m;
    return 0;
}

void classifier_free(classifier *m)
{
    if (!m) return;
    for (int s = 0; s < 3; s++) free(m->enc[s].blocks);
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

const classifier_config *classifier_get_config(const classifier *c) { return &c->cfg; }
float *classifier_params(classifier *c) { return c->params; }
float *classifier_grads(classifier *c) { return c->grads; }
long classifier_n_params(const classifier *c) { return c->n_params; }
int classifier_n_tensors(const classifier *c) { return c->n_tensors; }
const model3d_tensor *classifier_get_tensor(const classifier *c, int i)
{
    return i >= 0 && i < c->n_tensors ? &c->tensors[i] : NULL;
}
float *classifier_buffers(classifier *c) { return c->buffers; }
long classifier_n_buffers(const classifier *c) { return c->n_buffers; }
int classifier_n_buffer_tensors(const classifier *c) { return c->n_buffer_tensors; }
const model3d_tensor *classifier_get_buffer_tensor(const classifier *c, int i)
{
    return i >= 0 && i < c->n_buffer_tensors ? &c->buffer_tensors[i] : NULL;
}

/* ---- loading a pre-trained encoder ---- */

int classifier_load_encoder(classifier *c, const model3d *pre, char *err)
{
    int n = model3d_n_tensors(pre), nb = model3d_n_buffer_tensors(pre);
    /* the tables are arrays: model3d_get_tensor(pre, 0) points at the first of n */
    const model3d_tensor *theirs = model3d_get_tensor(pre, 0), *their_bufs = model3d_get_buffer_tensor(pre, 0);
    model3d *mp = (model3d *)pre; /* the accessors of the buffers are not const; nothing is written */
    if (ft_encoder_copy("classifier", 0, "tensor", c->tensors, c->n_tensors, c->params, theirs, n,
                        model3d_params(mp), err) ||
        ft_encoder_copy("classifier", 0, "buffer", c->buffer_tensors, c->n_buffer_tensors, c->buffers,
                        their_bufs, nb, model3d_buffers(mp), err))
        return -1;
    return 0;
}
