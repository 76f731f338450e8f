/* interop_export.c -- our checkpoint -> a safetensors file in the official I2P-MAE names
 * (interop.h). Every rank reads the checkpoint (collective); rank 0 converts and writes.
 */
#include "interop.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "ckpt_kind.h"
#include "classifier.h"
#include "dist.h"
#include "safetensors.h"

int interop_checkpoint_config(const char *path, model3d_config *cfg, long *step, char *err)
{
    ckpt_state st;
    if (ckpt_pretrain_config(path, "--checkpoint", MPI_COMM_WORLD, cfg, &st, NULL, err)) return -1;
    if (step) *step = st.step;
    return 0;
}

/* Rank 0: the entries in the official layout, written to output with metadata kind, config (and
 * train: the fine-tuning settings, or NULL). */
static int write_entries(const interop_entry *e, int n, const char *output, long step, const char *kind,
                         const char *config, const char *train, interop_export_result *r, char *err)
{
    st_entry *w = calloc((size_t)n, sizeof *w);
    void **data = calloc((size_t)n, sizeof *data);
    int rc = w && data ? 0 : errf(err, "out of memory");
    int64_t count = step;
    for (int i = 0; i < n && !rc; i++) {
        w[i].name = e[i].official;
        w[i].rank = e[i].rank;
        for (int d = 0; d < e[i].rank; d++) w[i].shape[d] = e[i].shape[d];
        if (e[i].layout == IO_BN_COUNT) {
            w[i].dtype = "I64";
            w[i].data = &count;
            continue;
        }
        w[i].dtype = "F32";
        if (!(data[i] = malloc(sizeof(float) * (size_t)interop_numel(&e[i])))) {
            rc = errf(err, "out of memory");
            break;
        }
        interop_to_official(&e[i], data[i]);
        w[i].data = data[i];
        if (!e[i].buffer) r->params += interop_numel(&e[i]);
    }
    if (!rc) {
        char step_s[32];
        snprintf(step_s, sizeof step_s, "%ld", step);
        const char *meta[] = {"format", "pt", "i2pmae_kind", kind, "i2pmae_config", config ? config : "{}",
                              "i2pmae_step", step_s, "i2pmae_train", train};
        rc = st_write(output, w, n, meta, train ? 5 : 4, err);
        r->tensors = n;
    }
    for (int i = 0; data && i < n; i++) free(data[i]);
    free(data);
    free(w);
    return rc;
}

/* Rank 0: the tensors of m in the official layout, written to output. */
static int write_official(model3d *m, const char *output, long step, interop_export_result *r, char *err)
{
    interop_entry *e = NULL;
    int n = 0;
    if (interop_table(m, &e, &n, err)) return -1;
    cJSON *cj = model3d_config_to_json(model3d_get_config(m));
    char *cfg_json = cJSON_PrintUnformatted(cj);
    cJSON_Delete(cj);
    int rc = write_entries(e, n, output, step, "pretrain", cfg_json, NULL, r, err);
    free(cfg_json);
    free(e);
    return rc;
}

/* The configuration object of a checkpoint (caller deletes) and its step. */
static int read_root(const char *path, cJSON **root, long *step, char *err)
{
    ckpt_state st;
    if (ckpt_read_config(path, MPI_COMM_WORLD, &st, root, err)) return -1;
    *step = st.step;
    return 0;
}

/* A fine-tuning checkpoint (config "classifier", "train") in the official fine-tuning names. */
static int export_classifier(const char *checkpoint, const cJSON *root, const char *output, interop_export_result *r,
                             char *err)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    classifier_config cfg;
    if (classifier_config_from_json(cJSON_GetObjectItemCaseSensitive(root, "classifier"), &cfg, err))
        return err_prefix(err, checkpoint);
    dnn_ctx ctx = {0};
    classifier *c = NULL;
    int rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = classifier_create(&c, &cfg, 2, 0, &ctx, err);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc)
        rc = ckpt_read_network(checkpoint, MPI_COMM_WORLD, classifier_params(c), classifier_n_params(c),
                               classifier_buffers(c), classifier_n_buffers(c), NULL, err);
    if (!rc && rank == 0) {
        interop_entry *e = NULL;
        int n = 0;
        rc = interop_classifier_table(c, &e, &n, err);
        cJSON *cj = classifier_config_to_json(&cfg);
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "train");
        char *cfg_json = cJSON_PrintUnformatted(cj), *train = tr ? cJSON_PrintUnformatted(tr) : NULL;
        cJSON_Delete(cj);
        if (!rc) rc = write_entries(e, n, output, r->step, "finetune", cfg_json, train, r, err);
        free(cfg_json);
        free(train);
        free(e);
    }
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    classifier_free(c);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    return rc;
}

int interop_export(const char *checkpoint, const char *output, interop_export_result *r, char *err)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    memset(r, 0, sizeof *r);
    cJSON *root = NULL;
    if (read_root(checkpoint, &root, &r->step, err)) return -1;
    int rc = 0;
    const char *kind = ckpt_kind(root); /* a static string: outlives root */
    if (kind && !strcmp(kind, CKPT_KIND_FINETUNE)) {
        rc = export_classifier(checkpoint, root, output, r, err);
        r->kind = "finetune";
    }
    cJSON_Delete(root);
    if (r->kind) {
        if (!rc) {
            MPI_Bcast(&r->tensors, 1, MPI_INT, 0, MPI_COMM_WORLD);
            MPI_Bcast(&r->params, 1, MPI_LONG, 0, MPI_COMM_WORLD);
        }
        return rc;
    }
    if (kind && !strcmp(kind, CKPT_KIND_PARTSEG))
        return errf(err, "--checkpoint %s: is a part-segmentation checkpoint; export takes a pre-training or "
                    "fine-tuning one (the official code's layouts have no part-segmentation names)", checkpoint);
    r->kind = "pretrain";
    model3d_config cfg;
    if (interop_checkpoint_config(checkpoint, &cfg, &r->step, err)) return -1;
    dnn_ctx ctx = {0};
    model3d *m = NULL;
    rc = dnn_ctx_create(&ctx, err);
    if (!rc) rc = model3d_create(&m, &cfg, 1, 1, &ctx, err);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc)
        rc = ckpt_read_network(checkpoint, MPI_COMM_WORLD, model3d_params(m), model3d_n_params(m), model3d_buffers(m),
                               model3d_n_buffers(m), NULL, err);
    if (!rc && rank == 0) rc = write_official(m, output, r->step, r, err);
    rc = dist_any_error(MPI_COMM_WORLD, rc, err);
    if (!rc) {
        MPI_Bcast(&r->tensors, 1, MPI_INT, 0, MPI_COMM_WORLD);
        MPI_Bcast(&r->params, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    }
    model3d_free(m);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    return rc;
}
