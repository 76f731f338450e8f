/* ckpt_kind.c -- a checkpoint's kind, the one refusal line for the wrong kind, and a pre-training
 * checkpoint's network configuration (see ckpt_kind.h). */
#include "ckpt_kind.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "model_opts.h"
#include "paths.h"

const char *ckpt_kind(const cJSON *config)
{
    if (cJSON_GetObjectItemCaseSensitive(config, "classifier")) return CKPT_KIND_FINETUNE;
    if (cJSON_GetObjectItemCaseSensitive(config, "partseg")) return CKPT_KIND_PARTSEG;
    if (cJSON_GetObjectItemCaseSensitive(config, "model")) return CKPT_KIND_PRETRAIN;
    return NULL;
}

const char *ckpt_kind_uses(const char *kind)
{
    if (!kind) return "";
    if (!strcmp(kind, CKPT_KIND_PRETRAIN))
        return "finetune, partseg, svm, encode, export and render --checkpoint, pretrain --init, and pretrain --resume "
               "of its run directory";
    if (!strcmp(kind, CKPT_KIND_FINETUNE))
        return "finetune --eval-only, export --checkpoint, and finetune --resume of its run directory";
    return "partseg --eval-only, and partseg --resume of its run directory";
}

/* What a checkpoint of each kind is, for the refusal's hint. */
static const char *kind_files(const char *kind)
{
    if (!strcmp(kind, CKPT_KIND_PRETRAIN)) return "pretrain's ckpt-*.h5 or one written by import";
    if (!strcmp(kind, CKPT_KIND_FINETUNE)) return "RUNDIR/best.h5 or RUNDIR/ckpt-*.h5 of i2pmae finetune";
    return "RUNDIR/best.h5 or RUNDIR/ckpt-*.h5 of i2pmae partseg";
}

int ckpt_kind_require(const cJSON *config, const char *path, const char *opt, const char *who, const char *want,
                      char *err)
{
    const char *kind = ckpt_kind(config);
    if (kind && !strcmp(kind, want)) return 0;
    if (!kind)
        return errf(err, "%s %s: has no configuration of any kind (\"model\", \"classifier\" or \"partseg\"); %s takes "
                    "a %s checkpoint (%s)", opt, path, who, want, kind_files(want));
    return errf(err, "%s %s: is a %s checkpoint; %s takes a %s one (%s); a %s checkpoint is for %s", opt, path, kind,
                who, want, kind_files(want), kind, ckpt_kind_uses(kind));
}

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

int ckpt_pretrain_config(const char *path, const char *opt, MPI_Comm comm, model3d_config *cfg, ckpt_state *st,
                         cJSON **root, char *err)
{
    if (root) *root = NULL;
    if (refuse_directory(path, opt, comm, err)) return -1;
    ckpt_state state;
    cJSON *j;
    if (ckpt_read_config(path, comm, &state, &j, err)) return err_prefix(err, opt);
    int rc = ckpt_kind_require(j, path, opt, opt, CKPT_KIND_PRETRAIN, err);
    if (!rc && (model3d_config_from_json(cJSON_GetObjectItemCaseSensitive(j, "model"), cfg, err) ||
                model3d_config_check(cfg, err))) {
        char where[I2P_PATH_LEN + 64];
        snprintf(where, sizeof where, "%s %s", opt, path);
        rc = err_prefix(err, where);
    }
    if (!rc && st) *st = state;
    if (!rc && root) *root = j;
    else cJSON_Delete(j);
    return rc;
}
