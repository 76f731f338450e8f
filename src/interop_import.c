/* interop_import.c -- a safetensors file in the official I2P-MAE names -> our checkpoint
 * (interop.h). Every rank opens the file (a read-only mapping) and checks it the same way, so all
 * agree on any error; the checkpoint is written collectively.
 */
#include "interop.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "classifier.h"
#include "dist.h"
#include "log.h"
#include "safetensors.h"

#define MODULE_PREFIX "module."
#define CLIP_PREFIX "clip_model."

/* Tensor `name` of f, with the DataParallel prefix if the file has one. */
static const st_tensor *find(const st_file *f, int prefixed, const char *name)
{
    if (!prefixed) return st_find(f, name);
    char full[256];
    snprintf(full, sizeof full, MODULE_PREFIX "%s", name);
    return st_find(f, full);
}

static const char *strip(const char *name, int prefixed)
{
    return prefixed ? name + strlen(MODULE_PREFIX) : name;
}

static int starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* What the file is, from its names (*finetune: 1 for a fine-tuning state dict): refuses the
 * checkpoints of other models. */
static int classify(const st_file *f, int prefixed, int *is_finetune, char *err)
{
    int mae = 0, finetune = 0, ours = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const char *n = strip(f->tensors[i].name, prefixed);
        mae += starts(n, "MAE_encoder.") || starts(n, "MAE_decoder.");
        finetune += starts(n, "cls_head_finetune.");
        ours += starts(n, "h_encoder.");
    }
    if (mae)
        return errf(err, "%s: this is a Point-MAE (non-hierarchical, MAE_encoder.*) checkpoint; import "
                    "takes the hierarchical I2P-MAE model (h_encoder.*, h_decoder.*)", f->path);
    *is_finetune = finetune > 0;
    if (!ours)
        return errf(err, "%s: no h_encoder.* tensors: not an I2P-MAE checkpoint", f->path);
    return 0;
}

/* Dimension d of tensor name (0 if absent or too short). */
static int dim_of(const st_file *f, int prefixed, const char *name, int d)
{
    const st_tensor *t = find(f, prefixed, name);
    return t && t->rank > d ? (int)t->shape[d] : 0;
}

/* Blocks of a stage: the count of <prefix>.I.norm1.weight present. */
static int count_blocks(const st_file *f, int prefixed, const char *prefix)
{
    char n[200];
    int i = 0;
    for (;; i++) {
        snprintf(n, sizeof n, "%s.%d.norm1.weight", prefix, i);
        if (!find(f, prefixed, n)) return i;
    }
}

/* The widths, depths and hidden sizes of the encoder (and decoder) that the shapes give. */
static void encoder_from_shapes(const st_file *f, int prefixed, model3d_config *c)
{
    {
        char n[200];
        for (int s = 0; s < 3; s++) {
            snprintf(n, sizeof n, "h_encoder.token_embed.%d.second_conv.3.weight", s);
            if (dim_of(f, prefixed, n, 0)) c->dims[s] = dim_of(f, prefixed, n, 0);
            snprintf(n, sizeof n, "h_encoder.encoder_blocks.%d.blocks", s);
            c->depths[s] = count_blocks(f, prefixed, n);
        }
        static const char *const hidden[3] = {"first_conv.0", "first_conv.3", "second_conv.0"};
        for (int i = 0; i < 3; i++) {
            snprintf(n, sizeof n, "h_encoder.token_embed.0.%s.weight", hidden[i]);
            if (dim_of(f, prefixed, n, 0)) c->embed_hidden[i] = dim_of(f, prefixed, n, 0);
        }
        c->dec_dims[0] = c->dims[2];
        c->dec_dims[1] = c->dims[1];
        for (int s = 0; s < 2; s++) {
            snprintf(n, sizeof n, "h_decoder.%d.blocks", s);
            c->dec_depths[s] = count_blocks(f, prefixed, n);
        }
    }
}

/* The configuration: the file's metadata (our exports) or the spec's defaults with the widths,
 * depths and head sizes the shapes give; then the options given. */
static int import_config(const st_file *f, int prefixed, const model_opts *o, model3d_config *c,
                         int *from_meta, char *err)
{
    const char *meta = st_metadata(f, "i2pmae_config");
    *from_meta = meta != NULL;
    if (meta) {
        char why[I2P_ERR_LEN];
        cJSON *j = cJSON_Parse(meta);
        int rc = j ? model3d_config_from_json(j, c, why) : errf(why, "not JSON");
        cJSON_Delete(j);
        if (rc) return errf(err, "%s: metadata i2pmae_config: %.200s", f->path, why);
    } else {
        model3d_config_default(c);
        encoder_from_shapes(f, prefixed, c);
        int out3d = dim_of(f, prefixed, "rec_head_3d.weight", 0);
        if (out3d >= 3) c->k[1] = out3d / 3;
        int out2d = dim_of(f, prefixed, "rec_head_2d.weight", 0);
        if (out2d && out2d % (c->k[1] * c->views) == 0) c->feat_dim = out2d / (c->k[1] * c->views);
    }
    if (model_opts_apply(o, c, err)) return -1;
    if (model3d_config_check(c, err)) return err_prefix(err, f->path);
    return 0;
}

static void shape_str(char *out, size_t n, int rank, const int64_t *shape)
{
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < rank && k < n; i++) k += (size_t)snprintf(out + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(out + k, n - k, "]");
}

/* Every entry of the table from f into m; every tensor of f is one of them or a CLIP tensor. */
static int take_tensors(const st_file *f, int prefixed, const interop_entry *e, int n, interop_import_result *r,
                        char *err)
{
    int rc = 0;
    float *buf = NULL;
    /* unexpected names first: a file of another configuration says so by name */
    for (int i = 0; i < f->n_tensors && !rc; i++) {
        const char *name = strip(f->tensors[i].name, prefixed);
        if (starts(name, CLIP_PREFIX)) {
            r->ignored_clip++;
            continue;
        }
        int known = 0;
        for (int k = 0; k < n && !known; k++) known = !strcmp(e[k].official, name);
        if (!known)
            rc = errf(err, "%s: unexpected tensor %s (not in the I2P-MAE model of this configuration)",
                      f->path, f->tensors[i].name);
    }
    for (int k = 0; k < n && !rc; k++) {
        const st_tensor *t = find(f, prefixed, e[k].official);
        char want[96], have[96];
        if (!t) {
            rc = errf(err, "%s: tensor %s is missing", f->path, e[k].official);
            break;
        }
        int same = t->rank == e[k].rank;
        for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == e[k].shape[d];
        if (!same) {
            shape_str(want, sizeof want, e[k].rank, e[k].shape);
            shape_str(have, sizeof have, t->rank, t->shape);
            rc = errf(err, "%s: tensor %s has shape %s, expected %s", f->path, t->name, have, want);
            break;
        }
        if (e[k].layout == IO_BN_COUNT) {
            if (strcmp(t->dtype, "I64"))
                rc = errf(err, "%s: tensor %s has dtype %s, expected I64", f->path, t->name, t->dtype);
            continue;
        }
        float *nb = realloc(buf, sizeof(float) * (size_t)interop_numel(&e[k]));
        if (!nb) {
            rc = errf(err, "out of memory");
            break;
        }
        buf = nb;
        rc = st_read_f32(f, t->name, e[k].rank, e[k].shape, buf, err);
        if (!rc) {
            interop_from_official(&e[k], buf);
            r->tensors++;
            if (!e[k].buffer) r->params += interop_numel(&e[k]);
        }
    }
    free(buf);
    return rc;
}

/* "name offset count (shape) decay=D" per parameter tensor (as pretrain's checkpoints), then a line
 * "# buffers" and the BatchNorm buffers the same way (offsets into /buffers): for h5py users. */
static char *tensor_table(const interop_entry *e, int n)
{
    size_t cap = 200 * (size_t)(n + 2), len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass) len += (size_t)snprintf(s + len, cap - len, "# buffers\n");
        for (int i = 0; i < n; i++) {
            const model3d_tensor *t = e[i].ours;
            if (!t || e[i].buffer != pass) continue;
            len += (size_t)snprintf(s + len, cap - len, "%s %ld %ld (", t->name, t->offset, t->count);
            for (int k = 0; k < t->rank; k++) len += (size_t)snprintf(s + len, cap - len, k ? ",%d" : "%d", t->shape[k]);
            len += (size_t)snprintf(s + len, cap - len, ") decay=%d\n", t->decay);
        }
    }
    return s;
}

/* The fine-tuning configuration: the file's metadata (our exports: i2pmae_kind finetune), else the
 * spec's ModelNet40 one with the encoder's widths and depths, the head's hidden width, the classes
 * and the pooling (the head's input width: dims[2] mean + max, 2 dims[2] concat) that the shapes
 * give; then the model options given. *train: the metadata's i2pmae_train (or NULL). */
static int classifier_import_config(const st_file *f, int prefixed, const model_opts *o, classifier_config *c,
                                    cJSON **train, int *from_meta, char *err)
{
    const char *kind = st_metadata(f, "i2pmae_kind"), *meta = st_metadata(f, "i2pmae_config");
    const char *tr = st_metadata(f, "i2pmae_train");
    *from_meta = kind && !strcmp(kind, "finetune") && meta;
    *train = NULL;
    if (*from_meta) {
        char why[I2P_ERR_LEN];
        cJSON *j = cJSON_Parse(meta);
        int rc = j ? classifier_config_from_json(j, c, why) : errf(why, "not JSON");
        cJSON_Delete(j);
        if (rc) return errf(err, "%s: metadata i2pmae_config: %.200s", f->path, why);
        if (tr) *train = cJSON_Parse(tr);
    } else {
        classifier_config_default(c);
        encoder_from_shapes(f, prefixed, &c->enc);
        c->enc.dec_dims[0] = c->enc.dims[2];
        c->enc.dec_dims[1] = c->enc.dims[1];
        int hidden = dim_of(f, prefixed, "cls_head_finetune.0.weight", 0);
        int in = dim_of(f, prefixed, "cls_head_finetune.0.weight", 1);
        int classes = dim_of(f, prefixed, "cls_head_finetune.8.weight", 0);
        if (hidden) c->head_hidden = hidden;
        if (classes) c->n_classes = classes;
        if (in == 2 * c->enc.dims[2]) c->pooling = CLS_POOL_CONCAT;
    }
    if (model_opts_apply(o, &c->enc, err)) return -1;
    if (classifier_config_check(c, err)) return err_prefix(err, f->path);
    return 0;
}

/* Writes the imported checkpoint: configuration j (taken over and freed) with an "import" record of
 * where the weights came from, the tensor table of e, and /params, /buffers. Collective. */
static int write_imported(cJSON *j, const char *input, const char *format, const interop_import_result *r,
                          const interop_entry *e, int n, float *params, long n_params, float *buffers,
                          long n_buffers, const char *output, char *err)
{
    cJSON *im = cJSON_AddObjectToObject(j, "import");
    cJSON_AddStringToObject(im, "source", input);
    cJSON_AddStringToObject(im, "sha256", r->sha256);
    cJSON_AddStringToObject(im, "format", format);
    char *json = cJSON_PrintUnformatted(j), *table = tensor_table(e, n);
    cJSON_Delete(j);
    ckpt_array arrays[2] = {
        {"/params", CKPT_F32, params, n_params},
        {"/buffers", CKPT_F32, buffers, n_buffers},
    };
    ckpt_state st = {0};
    int rc = json && table ? ckpt_write(output, MPI_COMM_WORLD, &st, json, table, arrays, 2, err)
                           : errf(err, "out of memory");
    free(json);
    free(table);
    return rc;
}

/* A fine-tuning state dict -> a checkpoint that finetune --eval-only takes ("classifier", "train",
 * "import" in its configuration; /params, /buffers). Collective. */
static int import_classifier(const st_file *f, int prefixed, const char *input, const char *output,
                             const model_opts *o, interop_import_result *r, char *err)
{
    classifier_config cfg;
    cJSON *train = NULL;
    dnn_ctx ctx = {0};
    classifier *c = NULL;
    interop_entry *e = NULL;
    int n = 0;
    int rc = classifier_import_config(f, prefixed, o, &cfg, &train, &r->config_from_metadata, err);
    if (!rc) rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = classifier_create(&c, &cfg, 2, 0, &ctx, err);
    if (!rc) rc = interop_classifier_table(c, &e, &n, err);
    if (!rc) rc = take_tensors(f, prefixed, e, n, r, err);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "classifier", classifier_config_to_json(&cfg));
        if (train) {
            cJSON_AddItemToObject(j, "train", train);
            train = NULL;
        }
        rc = write_imported(j, input, "official I2P-MAE fine-tuning names (safetensors)", r, e, n,
                            classifier_params(c), classifier_n_params(c), classifier_buffers(c),
                            classifier_n_buffers(c), output, err);
    }
    cJSON_Delete(train);
    free(e);
    classifier_free(c);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    return rc;
}

int interop_import(const char *input, const char *output, const model_opts *o, interop_import_result *r,
                   char *err)
{
    memset(r, 0, sizeof *r);
    st_file f;
    int rc = st_open(&f, input, err), opened = !rc;
    model3d_config cfg;
    dnn_ctx ctx = {0};
    model3d *m = NULL;
    interop_entry *e = NULL;
    int n = 0, finetune = 0;
    if (!rc) {
        int all = f.n_tensors > 0;
        for (int i = 0; i < f.n_tensors && all; i++) all = starts(f.tensors[i].name, MODULE_PREFIX);
        r->module_prefix = all;
        st_sha256_hex(&f, r->sha256);
        rc = classify(&f, all, &finetune, err);
        r->kind = finetune ? "finetune" : "pretrain";
        if (!rc && finetune) {
            rc = import_classifier(&f, all, input, output, o, r, err);
            st_close(&f);
            return rc;
        }
        if (!rc) rc = import_config(&f, all, o, &cfg, &r->config_from_metadata, err);
        if (!rc) rc = dnn_ctx_create(&ctx, err);
        if (!rc) rc = model3d_create(&m, &cfg, 1, 1, &ctx, err);
        if (!rc) rc = interop_table(m, &e, &n, err);
        if (!rc) rc = take_tensors(&f, all, e, n, r, err);
    }
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "model", model3d_config_to_json(&cfg));
        rc = write_imported(j, input, "official I2P-MAE names (safetensors)", r, e, n, model3d_params(m),
                            model3d_n_params(m), model3d_buffers(m), model3d_n_buffers(m), output, err);
    }
    free(e);
    model3d_free(m);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    if (opened) st_close(&f);
    return rc;
}
