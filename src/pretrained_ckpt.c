/* pretrained_ckpt.c -- a pre-training checkpoint's network configuration, with one error line for
 * each kind of wrong file (see pretrained_ckpt.h). */
#include "pretrained_ckpt.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "model_opts.h"
#include "paths.h"

/* -1 with err when path is a directory: the same answer on every rank (rank 0 lists it). */
static int refuse_directory(const char *path, const char *opt, MPI_Comm comm, char *err)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    long steps[1];
    int n = ckpt_list(path, comm, steps, 1, err);
    char example[I2P_PATH_LEN] = "a ckpt-*.h5 file of a pre-training run";
    if (n > 0) ckpt_path(example, sizeof example, path, steps[0]);
    return errf(err, "%s %s: is a directory (a run directory?); %s takes a pre-training checkpoint file, e.g. %s", opt,
                path, opt, example);
}

const char *pretrained_ckpt_kind(const cJSON *config)
{
    if (cJSON_GetObjectItemCaseSensitive(config, "classifier")) return "fine-tuning";
    if (cJSON_GetObjectItemCaseSensitive(config, "partseg")) return "part-segmentation";
    if (cJSON_GetObjectItemCaseSensitive(config, "model")) return "pre-training";
    return NULL;
}

const char *pretrained_ckpt_uses(const char *kind)
{
    if (!kind) return "";
    if (!strcmp(kind, "pre-training"))
        return "finetune / partseg / svm / encode / export / render --checkpoint, pretrain --init (and pretrain "
               "--resume of its run directory)";
    if (!strcmp(kind, "fine-tuning"))
        return "finetune --eval-only --checkpoint, export --checkpoint (and finetune --resume of its run directory)";
    return "partseg --eval-only --checkpoint (and partseg --resume of its run directory)";
}

int pretrained_ckpt_config(const char *path, const char *opt, MPI_Comm comm, model3d_config *cfg, ckpt_state *st,
                           cJSON **root, char *err)
{
    if (root) *root = NULL;
    if (refuse_directory(path, opt, comm, err)) return -1;
    ckpt_state state;
    cJSON *j;
    if (ckpt_read_config(path, comm, &state, &j, err)) return err_prefix(err, opt);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    const char *kind = pretrained_ckpt_kind(j);
    int rc = 0;
    if (kind && strcmp(kind, "pre-training"))
        rc = errf(err, "%s %s: is a %s checkpoint; %s takes a pre-training one (pretrain's ckpt-*.h5 or one "
                  "written by import; a %s run continues with --resume, and --eval-only evaluates it)", opt, path,
                  kind, opt, kind);
    else if (!m)
        rc = errf(err, "%s %s: checkpoint has no 3D-network configuration (\"model\"): not a pre-training checkpoint",
                  opt, path);
    else if (model3d_config_from_json(m, cfg, err) || model3d_config_check(cfg, err)) {
        char where[I2P_PATH_LEN + 64];
        snprintf(where, sizeof where, "%s %s", opt, path);
        rc = err_prefix(err, where);
    }
    if (!rc && st) *st = state;
    if (!rc && root) *root = j;
    else cJSON_Delete(j);
    return rc;
}
