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

static void run_layout(void *model, m3_layout *L)
{
    classifier *m = model;
    const model3d_config *c = &m->cfg.enc;
    m3_layout_encoder(L, m->embed, m->enc, c, 0);
    m->norm = m3_layout_norm(L, c->dims[2], "norm");
    int d = m->cfg.pooling == CLS_POOL_CONCAT ? 2 * c->dims[2] : c->dims[2], H = m->cfg.head_hidden;
    m->head.fc1 = m3_layout_linear(L, d, H, 1, "head.fc1");
    m->head.bn1 = m3_layout_bn(L, H, "head.bn1");
    m->head.fc2 = m3_layout_linear(L, H, H, 1, "head.fc2");
    m->head.bn2 = m3_layout_bn(L, H, "head.bn2");
    m->head.fc3 = m3_layout_linear(L, H, m->cfg.n_classes, 1, "head.fc3");
}

/* Head linears as PyTorch's nn.Linear default (weight and bias U(-1/sqrt(in), 1/sqrt(in))); the
 * encoder as model3d_create, the fresh norm and the head's BatchNorms (1, 0) by
 * m3_store_init_params' rule. */
static int init_head_linear(const m3_store *s, int t, rng_t *r, float *p)
{
    const model3d_tensor *T = &s->tensors[t];
    if (strncmp(T->name, "head.fc", 7) != 0) return 0;
    /* a bias follows its weight (out, in) in the table */
    int fan_in = T->rank >= 2 ? T->shape[1] : s->tensors[t - 1].shape[1];
    double bound = 1.0 / sqrt((double)fan_in);
    for (long i = 0; i < T->count; i++) p[i] = (float)rng_range(r, -bound, bound);
    return 1;
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
    if (m3_stages_alloc(m->enc, 3, cfg->enc.depths)) {
        classifier_free(m);
        return errf(err, "classifier: out of memory");
    }
    for (int s = 0; s < 3; s++) m->enc[s].norm = (m3_norm){.w = -1, .b = -1, .C = 0};
    if (m3_store_init(&m->st, run_layout, m, max_batch, ctx, "classifier", err)) {
        classifier_free(m);
        return -1;
    }
    m3_stages_drop_path(m->enc, 3, cfg->enc.drop_path);
    m3_store_init_params(&m->st, seed, init_head_linear);
    *out = m;
    return 0;
}

int classifier_set_precision(classifier *m, nn_precision p, char *err)
{
    return m3_store_set_precision(&m->st, p, err);
}

void classifier_set_step_options(classifier *c, int recompute, void (*grads_final)(void *ctx, long lo),
                                 void *ctx)
{
    c->st.recompute = recompute;
    c->st.grads_final = grads_final;
    c->st.grads_final_ctx = ctx;
}

void classifier_free(classifier *m)
{
    if (!m) return;
    m3_stages_free(m->enc, 3);
    m3_store_free(&m->st);
    free(m);
}

const classifier_config *classifier_get_config(const classifier *c) { return &c->cfg; }
float *classifier_params(classifier *c) { return m3_store_params(&c->st); }
float *classifier_grads(classifier *c) { return c->st.grads; }
long classifier_n_params(const classifier *c) { return c->st.n_params; }
int classifier_n_tensors(const classifier *c) { return c->st.n_tensors; }
const model3d_tensor *classifier_get_tensor(const classifier *c, int i)
{
    return m3_store_tensor(&c->st, i);
}
float *classifier_buffers(classifier *c) { return c->st.buffers; }
long classifier_n_buffers(const classifier *c) { return c->st.n_buffers; }
int classifier_n_buffer_tensors(const classifier *c) { return c->st.n_buffer_tensors; }
const model3d_tensor *classifier_get_buffer_tensor(const classifier *c, int i)
{
    return m3_store_buffer_tensor(&c->st, i);
}

/* ---- loading a pre-trained encoder ---- */

int classifier_load_encoder(classifier *c, const model3d *pre, char *err)
{
    int n = model3d_n_tensors(pre), nb = model3d_n_buffer_tensors(pre);
    /* the tables are arrays: model3d_get_tensor(pre, 0) points at the first of n */
    const model3d_tensor *theirs = model3d_get_tensor(pre, 0), *their_bufs = model3d_get_buffer_tensor(pre, 0);
    model3d *mp = (model3d *)pre; /* the accessors of the buffers are not const; nothing is written */
    if (ft_encoder_copy("classifier", 0, "tensor", c->st.tensors, c->st.n_tensors, m3_store_params(&c->st),
                        theirs, n, model3d_params(mp), err) ||
        ft_encoder_copy("classifier", 0, "buffer", c->st.buffer_tensors, c->st.n_buffer_tensors, c->st.buffers,
                        their_bufs, nb, model3d_buffers(mp), err))
        return -1;
    return 0;
}
