/* partseg_model.c -- the part-segmentation network's configuration (defaults, check, JSON), its
 * parameter table (encoder tensors under their pre-training names, then prop.*, label.*, head.*),
 * creation with its initialisation, the accessors of partseg.h and the copy of a pre-trained
 * encoder. The step is in partseg_step.c, the layers in seg_layers.c and seg_interp.c.
 */
#include "partseg_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "ft_encoder.h"
#include "m3_layout.h"
#include "model_opts.h"
#include "rng.h"

void partseg_config_default(partseg_config *c)
{
    memset(c, 0, sizeof *c);
    model3d_config_default(&c->enc);
    c->enc.points = 2048;
    c->enc.groups[0] = 512; c->enc.groups[1] = 256; c->enc.groups[2] = 64;
    c->enc.k[0] = 16; c->enc.k[1] = 8; c->enc.k[2] = 8;
    c->enc.drop_path = 0.1;
    c->radius[0] = 0.32; c->radius[1] = 0.64; c->radius[2] = 1.28;
    c->n_categories = 16;
    c->n_parts = 50;
    c->prop_hidden = 1536;
    c->prop_out = 1024;
    c->label_dim = 64;
    c->head[0] = 1024; c->head[1] = 512; c->head[2] = 256;
    c->dropout = 0.5;
}

int partseg_config_check(const partseg_config *c, char *err)
{
    const model3d_config *e = &c->enc;
    if (e->points < 3) return errf(err, "partseg config: points must be >= 3");
    int prev = e->points;
    for (int s = 0; s < 3; s++) {
        if (e->groups[s] < 3 || e->groups[s] > prev)
            return errf(err, "partseg config: groups[%d] = %d must be in [3, %d] (3 nearest centres)", s,
                        e->groups[s], prev);
        if (e->k[s] < 1 || e->k[s] > prev)
            return errf(err, "partseg config: k[%d] = %d must be in [1, %d]", s, e->k[s], prev);
        if (e->dims[s] < 1 || e->heads < 1 || e->dims[s] % e->heads)
            return errf(err, "partseg config: heads %d must divide dims[%d] = %d", e->heads, s, e->dims[s]);
        if (e->depths[s] < 0) return errf(err, "partseg config: depths[%d] < 0", s);
        if (e->embed_hidden[s] < 1) return errf(err, "partseg config: embed_hidden[%d] < 1", s);
        if (!(c->radius[s] >= 0)) return errf(err, "partseg config: radius[%d] must be >= 0", s);
        if (c->head[s] < 1) return errf(err, "partseg config: head[%d] must be >= 1", s);
        prev = e->groups[s];
    }
    if (!(e->drop_path >= 0 && e->drop_path < 1)) return errf(err, "partseg config: drop_path must be in [0,1)");
    if (c->n_categories < 1) return errf(err, "partseg config: n_categories must be >= 1");
    if (c->n_parts < 2) return errf(err, "partseg config: n_parts must be >= 2");
    if (c->prop_hidden < 1 || c->prop_out < 1 || c->label_dim < 1)
        return errf(err, "partseg config: prop_hidden, prop_out and label_dim must be >= 1");
    if (!(c->dropout >= 0 && c->dropout < 1)) return errf(err, "partseg config: dropout must be in [0,1)");
    return 0;
}

cJSON *partseg_config_to_json(const partseg_config *c)
{
    cJSON *o = cJSON_CreateObject(), *enc = model3d_config_to_json(&c->enc);
    cJSON *rad = cJSON_CreateDoubleArray(c->radius, 3), *head = cJSON_CreateIntArray(c->head, 3);
    if (!o || !enc || !rad || !head) {
        cJSON_Delete(o);
        cJSON_Delete(enc);
        cJSON_Delete(rad);
        cJSON_Delete(head);
        return NULL;
    }
    cJSON_AddStringToObject(o, "model", "partseg");
    cJSON_AddItemToObject(o, "encoder", enc);
    cJSON_AddItemToObject(o, "radius", rad);
    cJSON_AddNumberToObject(o, "n_categories", c->n_categories);
    cJSON_AddNumberToObject(o, "n_parts", c->n_parts);
    cJSON_AddNumberToObject(o, "prop_hidden", c->prop_hidden);
    cJSON_AddNumberToObject(o, "prop_out", c->prop_out);
    cJSON_AddNumberToObject(o, "label_dim", c->label_dim);
    cJSON_AddItemToObject(o, "head", head);
    cJSON_AddNumberToObject(o, "dropout", c->dropout);
    return o;
}

static int json_triple(const cJSON *j, const char *key, double *v, char *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
        return errf(err, "partseg configuration: '%s' must be 3 numbers", key);
    for (int s = 0; s < 3; s++) {
        const cJSON *x = cJSON_GetArrayItem(a, s);
        if (!cJSON_IsNumber(x)) return errf(err, "partseg configuration: '%s' must be 3 numbers", key);
        v[s] = x->valuedouble;
    }
    return 0;
}

static int json_int(const cJSON *j, const char *key, int *v, char *err)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || fabs(x->valuedouble) > 1e9)
        return errf(err, "partseg configuration: '%s' missing or not an integer", key);
    *v = (int)x->valuedouble;
    return 0;
}

int partseg_config_from_json(const cJSON *j, partseg_config *c, char *err)
{
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(j)) return errf(err, "partseg configuration: not a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!cJSON_IsString(model) || strcmp(model->valuestring, "partseg"))
        return errf(err, "partseg configuration: not a part-segmentation model (\"model\": \"partseg\" missing)");
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(j, "encoder");
    if (!cJSON_IsObject(enc)) return errf(err, "partseg configuration: 'encoder' missing");
    if (model3d_config_from_json(enc, &c->enc, err)) return -1;
    double head[3];
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(j, "dropout");
    if (json_triple(j, "radius", c->radius, err) || json_triple(j, "head", head, err) ||
        json_int(j, "n_categories", &c->n_categories, err) || json_int(j, "n_parts", &c->n_parts, err) ||
        json_int(j, "prop_hidden", &c->prop_hidden, err) || json_int(j, "prop_out", &c->prop_out, err) ||
        json_int(j, "label_dim", &c->label_dim, err))
        return -1;
    if (!cJSON_IsNumber(drop)) return errf(err, "partseg configuration: 'dropout' missing or not a number");
    c->dropout = drop->valuedouble;
    for (int s = 0; s < 3; s++) c->head[s] = (int)head[s];
    return partseg_config_check(c, err);
}

/* ---- parameter table ---- */

static void run_layout(void *model, m3_layout *L)
{
    partseg *m = model;
    const partseg_config *pc = &m->cfg;
    const model3d_config *c = &pc->enc;
    m3_layout_encoder(L, m->embed, m->enc, c, 1);
    char n[96];
    for (int s = 0; s < 3; s++) {
        snprintf(n, sizeof n, "prop.%d.conv1", s);
        m->prop[s].conv1 = m3_layout_linear(L, 3 + c->dims[s], pc->prop_hidden, 1, n);
        snprintf(n, sizeof n, "prop.%d.bn1", s);
        m->prop[s].bn1 = m3_layout_bn(L, pc->prop_hidden, n);
        snprintf(n, sizeof n, "prop.%d.conv2", s);
        m->prop[s].conv2 = m3_layout_linear(L, pc->prop_hidden, pc->prop_out, 1, n);
        snprintf(n, sizeof n, "prop.%d.bn2", s);
        m->prop[s].bn2 = m3_layout_bn(L, pc->prop_out, n);
    }
    m->label_conv = m3_layout_linear(L, pc->n_categories, pc->label_dim, 0, "label.conv");
    m->label_bn = m3_layout_bn(L, pc->label_dim, "label.bn");
    int in = 6 * pc->prop_out + pc->label_dim;
    for (int i = 0; i < 4; i++) {
        int out = i < 3 ? pc->head[i] : pc->n_parts;
        snprintf(n, sizeof n, "head.conv%d", i + 1);
        m->head.conv[i] = m3_layout_linear(L, in, out, 1, n);
        if (i < 3) {
            snprintf(n, sizeof n, "head.bn%d", i + 1);
            m->head.bn[i] = m3_layout_bn(L, out, n);
        }
        in = out;
    }
}

/* The new convolutions (prop.*, label.*, head.*) as PyTorch's Conv1d default: weight and bias
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the encoder as model3d_create and the BatchNorms (1, 0) by
 * m3_store_init_params' rule. */
static int init_fresh_conv(const m3_store *s, int t, rng_t *r, float *p)
{
    const model3d_tensor *T = &s->tensors[t];
    int fresh = strstr(T->name, ".conv") &&
                (!strncmp(T->name, "prop.", 5) || !strncmp(T->name, "label.", 6) || !strncmp(T->name, "head.", 5));
    if (!fresh) return 0;
    /* a bias follows its weight (out, in) in the table */
    int fan_in = T->rank >= 2 ? T->shape[1] : s->tensors[t - 1].shape[1];
    double bound = 1.0 / sqrt((double)fan_in);
    for (long i = 0; i < T->count; i++) p[i] = (float)rng_range(r, -bound, bound);
    return 1;
}

int partseg_create(partseg **out, const partseg_config *cfg, int max_batch, uint64_t seed, dnn_ctx *ctx,
                   char *err)
{
    *out = NULL;
    if (partseg_config_check(cfg, err)) return -1;
    if (max_batch < 1) return errf(err, "partseg: max_batch must be >= 1");
    partseg *m = calloc(1, sizeof *m);
    if (!m) return errf(err, "partseg: out of memory");
    m->cfg = *cfg;
    if (m3_stages_alloc(m->enc, 3, cfg->enc.depths)) {
        partseg_free(m);
        return errf(err, "partseg: out of memory");
    }
    if (m3_store_init(&m->st, run_layout, m, max_batch, ctx, "partseg", err)) {
        partseg_free(m);
        return -1;
    }
    m3_stages_drop_path(m->enc, 3, cfg->enc.drop_path);
    m3_store_init_params(&m->st, seed, init_fresh_conv);
    *out = m;
    return 0;
}

int partseg_set_precision(partseg *m, nn_precision p, char *err)
{
    return m3_store_set_precision(&m->st, p, err);
}

void partseg_free(partseg *m)
{
    if (!m) return;
    m3_stages_free(m->enc, 3);
    m3_store_free(&m->st);
    free(m);
}

const partseg_config *partseg_get_config(const partseg *m) { return &m->cfg; }
float *partseg_params(partseg *m) { return m3_store_params(&m->st); }
float *partseg_grads(partseg *m) { return m->st.grads; }
long partseg_n_params(const partseg *m) { return m->st.n_params; }
int partseg_n_tensors(const partseg *m) { return m->st.n_tensors; }
const model3d_tensor *partseg_get_tensor(const partseg *m, int i) { return m3_store_tensor(&m->st, i); }
float *partseg_buffers(partseg *m) { return m->st.buffers; }
long partseg_n_buffers(const partseg *m) { return m->st.n_buffers; }
int partseg_n_buffer_tensors(const partseg *m) { return m->st.n_buffer_tensors; }
const model3d_tensor *partseg_get_buffer_tensor(const partseg *m, int i)
{
    return m3_store_buffer_tensor(&m->st, i);
}

int partseg_load_encoder(partseg *m, const model3d *pre, char *err)
{
    int n = model3d_n_tensors(pre), nb = model3d_n_buffer_tensors(pre);
    const model3d_tensor *theirs = model3d_get_tensor(pre, 0), *their_bufs = model3d_get_buffer_tensor(pre, 0);
    model3d *mp = (model3d *)pre; /* the accessors of the buffers are not const; nothing is written */
    if (ft_encoder_copy("partseg", 1, "tensor", m->st.tensors, m->st.n_tensors, m3_store_params(&m->st),
                        theirs, n, model3d_params(mp), err) ||
        ft_encoder_copy("partseg", 1, "buffer", m->st.buffer_tensors, m->st.n_buffer_tensors, m->st.buffers,
                        their_bufs, nb, model3d_buffers(mp), err))
        return -1;
    return 0;
}
