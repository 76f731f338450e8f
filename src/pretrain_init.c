/* pretrain_init.c -- a pre-training run started from a checkpoint's parameters (pretrain_init.h). */
#include "pretrain_init.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckpt_kind.h"
#include "dist.h"
#include "errors.h"
#include "model_opts.h"
#include "paths.h"

/* "--init PATH: " before err; -1. */
static int init_prefix(char *err, const char *path)
{
    char p[I2P_PATH_LEN + 16];
    snprintf(p, sizeof p, "--init %s", path);
    return err_prefix(err, p);
}

static void shape_str(const model3d_tensor *t, char *out, size_t n)
{
    size_t k = (size_t)snprintf(out, n, "(");
    for (int i = 0; i < t->rank && k < n; i++) k += (size_t)snprintf(out + k, n - k, i ? ",%d" : "%d", t->shape[i]);
    if (k < n) snprintf(out + k, n - k, ")");
}

/* Tensor i of m's parameters (i < np) then buffers, and its floats. */
static const model3d_tensor *tensor_at(model3d *m, int i, float **data)
{
    int np = model3d_n_tensors(m);
    const model3d_tensor *t = i < np ? model3d_get_tensor(m, i) : model3d_get_buffer_tensor(m, i - np);
    *data = (i < np ? model3d_params(m) : model3d_buffers(m)) + t->offset;
    return t;
}

static int n_all(const model3d *m) { return model3d_n_tensors(m) + model3d_n_buffer_tensors(m); }

static int find(model3d *m, const char *name)
{
    float *d;
    for (int i = 0; i < n_all(m); i++)
        if (!strcmp(tensor_at(m, i, &d)->name, name)) return i;
    return -1;
}

/* Every tensor of `run` in `ck` with the same shape and none other; then the copy. Not collective
 * (both models are the same on every rank). */
static int copy_by_name(model3d *run, model3d *ck, const char *path, char *err)
{
    float *d, *s;
    for (int i = 0; i < n_all(run); i++) {
        const model3d_tensor *t = tensor_at(run, i, &d);
        int j = find(ck, t->name);
        if (j < 0) return errf(err, "--init %s: architecture differs: tensor %s of this run's network is not in the checkpoint", path, t->name);
        const model3d_tensor *u = tensor_at(ck, j, &s);
        char want[64], have[64];
        shape_str(t, want, sizeof want);
        shape_str(u, have, sizeof have);
        if (strcmp(want, have))
            return errf(err, "--init %s: architecture differs: tensor %s is %s in the checkpoint but %s here", path,
                        t->name, have, want);
    }
    for (int j = 0; j < n_all(ck); j++)
        if (find(run, tensor_at(ck, j, &s)->name) < 0)
            return errf(err, "--init %s: architecture differs: the checkpoint's tensor %s is not in this run's network",
                        path, tensor_at(ck, j, &s)->name);
    for (int i = 0; i < n_all(run); i++) {
        const model3d_tensor *t = tensor_at(run, i, &d);
        tensor_at(ck, find(ck, t->name), &s);
        memcpy(d, s, sizeof(float) * (size_t)t->count);
    }
    return 0;
}

/* The checkpoint's network configuration and its "import" object (NULL if none). */
static int read_config(const char *path, MPI_Comm comm, model3d_config *c, long *step, cJSON **import, char *err)
{
    ckpt_state st;
    cJSON *root;
    *import = NULL;
    if (ckpt_pretrain_config(path, "--init", comm, c, &st, &root, err)) return -1;
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(root, "import");
    *import = im ? cJSON_Duplicate(im, 1) : NULL;
    *step = st.step;
    cJSON_Delete(root);
    return 0;
}

int pretrain_init_load(model3d *m, const char *path, MPI_Comm comm, dnn_ctx *ctx, cJSON **record, char *err)
{
    *record = NULL;
    model3d_config cc;
    long step = 0;
    cJSON *import = NULL;
    if (read_config(path, comm, &cc, &step, &import, err)) return -1;
    const model3d_config *rcfg = model3d_get_config(m);
    int rc = 0;
    if (cc.heads != rcfg->heads)
        rc = errf(err, "--init %s: architecture differs: heads is %d in the checkpoint but %d here", path, cc.heads,
                  rcfg->heads);
    model3d *ck = NULL;
    if (!rc) {
        rc = model3d_create(&ck, &cc, 1, 0, ctx, err);
        if (rc) init_prefix(err, path);
    }
    if (dist_any_error(comm, rc, err)) {
        cJSON_Delete(import);
        model3d_free(ck);
        return -1;
    }
    rc = ckpt_read_network(path, comm, model3d_params(ck), model3d_n_params(ck), model3d_buffers(ck),
                           model3d_n_buffers(ck), NULL, err);
    if (!rc) rc = copy_by_name(m, ck, path, err);
    model3d_free(ck);
    rc = dist_any_error(comm, rc, err);
    if (rc) {
        cJSON_Delete(import);
        return -1;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "checkpoint", path);
    cJSON_AddNumberToObject(r, "step", (double)step);
    if (import) cJSON_AddItemToObject(r, "import", import);
    *record = r;
    return 0;
}

int pretrain_init_record(char **config_json, cJSON *record, char *err)
{
    cJSON *j = cJSON_Parse(*config_json);
    if (!j) return errf(err, "out of memory");
    cJSON_AddItemReferenceToObject(j, "init", record);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return errf(err, "out of memory");
    free(*config_json);
    *config_json = s;
    return 0;
}
