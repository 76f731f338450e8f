/* pretrain_data.c -- one micro-batch of pre-training input from the dataset and features files
 * (see pretrain_data.h). */
#include "pretrain_data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "errors.h"
#include "rng.h"

int pretrain_data_open(pretrain_data *pd, const char *data, const char *features, int views,
                       model3d_config *cfg, long micro, int need, char *err)
{
    memset(pd, 0, sizeof *pd);
    pd->need = need;
    if (dataset_open(&pd->d, data, MPI_COMM_SELF, err)) return -1;
    pd->d_open = 1;
    if (pd->d.points < cfg->points)
        return errf(err, "%s: samples have %ld points, the network takes %d (--points)", data,
                    pd->d.points, cfg->points);
    cfg->views = cfg->feat_dim = cfg->grid = cfg->image = 0; /* no 2D head unless targets are read */
    if (need) {
        if (!features || !features[0])
            return errf(err, "%s: a features file (--features) is needed for %s", data,
                        need & PD_TARGETS ? "the 2D targets" : "2D-guided masking (the saliency)");
        if (features_open(&pd->ff, features, MPI_COMM_SELF, err)) return -1;
        pd->ff_open = 1;
        const features_meta *m = &pd->ff.m;
        if (m->views != views)
            return errf(err, "%s: was extracted with %d views, this run needs %d (--views)", features,
                        m->views, views);
        if (features_check_dataset(&pd->ff, &pd->d, views, err)) return -1;
        if (need & PD_TARGETS) {
            cfg->views = m->views;
            cfg->feat_dim = m->feat_dim;
            cfg->grid = m->grid;
            cfg->image = m->image;
        }
    } else if (features_fingerprint(&pd->d, pd->fingerprint, err)) {
        return -1;
    }
    pd->cfg = *cfg;
    pd->micro = micro;
    pd->data_points = pd->d.points;
    long P = pd->data_points, Pm = cfg->points, V = views;
    pd->raw = malloc(sizeof(float) * (size_t)(P * 3));
    pd->points = malloc(sizeof(float) * (size_t)(micro * Pm * 3));
    pd->keys = malloc(sizeof(uint64_t) * (size_t)micro);
    pd->rows = malloc(sizeof(long) * (size_t)micro);
    int ok = pd->raw && pd->points && pd->keys && pd->rows;
    if (need & PD_SALIENCY) {
        pd->sal_all = malloc(sizeof(float) * (size_t)(micro * P));
        pd->sal = malloc(sizeof(float) * (size_t)(micro * Pm));
        ok = ok && pd->sal_all && pd->sal;
    }
    if (need & PD_TARGETS) {
        const features_meta *m = &pd->ff.m;
        size_t grid_floats = (size_t)(V * m->grid * m->grid * m->feat_dim);
        pd->grids = malloc(sizeof(float) * (size_t)micro * grid_floats);
        pd->pix_all = malloc(sizeof(int16_t) * (size_t)(micro * V * P * 2));
        pd->pix = malloc(sizeof(int16_t) * (size_t)(micro * V * Pm * 2));
        ok = ok && pd->grids && pd->pix_all && pd->pix;
    }
    if (!ok) return errf(err, "%s: out of memory for a micro-batch of %ld samples", data, micro);
    return 0;
}

cJSON *pretrain_data_identity(const pretrain_data *pd)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "samples", (double)pd->d.n);
    cJSON_AddNumberToObject(j, "data_points", (double)pd->data_points);
    if (!pd->ff_open) { /* 3D only: no 2D model involved */
        cJSON_AddStringToObject(j, "dataset_fingerprint", pd->fingerprint);
        return j;
    }
    const features_meta *m = &pd->ff.m;
    char fp[17];
    snprintf(fp, sizeof fp, "%s", m->source_fingerprint);
    cJSON_AddStringToObject(j, "dataset_fingerprint", fp);
    cJSON_AddStringToObject(j, "vit", m->vit);
    cJSON_AddStringToObject(j, "vit_weights_sha256", m->weights_sha256);
    cJSON_AddNumberToObject(j, "views", m->views);
    cJSON_AddNumberToObject(j, "grid", m->grid);
    cJSON_AddNumberToObject(j, "feat_dim", m->feat_dim);
    cJSON_AddNumberToObject(j, "image", m->image);
    cJSON_AddNumberToObject(j, "block", m->block);
    return j;
}

int pretrain_data_fill(pretrain_data *pd, const int64_t *ids, long count, uint64_t seed, long epoch,
                       long step, model3d_batch *b, char *err)
{
    long P = pd->data_points, Pm = pd->cfg.points, V = pd->ff_open ? pd->ff.m.views : 0;
    if (count > pd->micro) return errf(err, "micro-batch of %ld samples, room for %ld", count, pd->micro);
    for (long i = 0; i < count; i++) {
        pd->rows[i] = (long)ids[i];
        if (dataset_read(&pd->d, pd->rows[i], 1, pd->raw, NULL, err)) return -1;
        float *dst = pd->points + i * Pm * 3;
        memcpy(dst, pd->raw, sizeof(float) * (size_t)(Pm * 3));
        augment_scale_translate(dst, Pm, seed, epoch, pd->rows[i]);
        pd->keys[i] = rng_mix(rng_mix(seed, (uint64_t)step), (uint64_t)pd->rows[i]);
    }
    if ((pd->need & PD_TARGETS) && (features_read_patch(&pd->ff, pd->rows, count, pd->grids, err) ||
                                    features_read_pixel(&pd->ff, pd->rows, count, pd->pix_all, err)))
        return -1;
    if ((pd->need & PD_SALIENCY) && features_read_point_saliency(&pd->ff, pd->rows, count, pd->sal_all, err))
        return -1;
    /* the first Pm points of every view (pixels) and of the saliency */
    for (long i = 0; i < count; i++) {
        if (pd->need & PD_SALIENCY)
            memcpy(pd->sal + i * Pm, pd->sal_all + i * P, sizeof(float) * (size_t)Pm);
        if (pd->need & PD_TARGETS)
            for (long v = 0; v < V; v++)
                memcpy(pd->pix + (i * V + v) * Pm * 2, pd->pix_all + (i * V + v) * P * 2,
                       sizeof(int16_t) * (size_t)(Pm * 2));
    }
    memset(b, 0, sizeof *b);
    b->B = (int)count;
    b->points = pd->points;
    b->point_saliency = pd->sal; /* NULL: random masking */
    b->grids = pd->grids;
    b->pixels = pd->pix;
    b->mask_keys = pd->keys;
    return 0;
}

void pretrain_data_close(pretrain_data *pd)
{
    if (pd->ff_open) features_close(&pd->ff);
    if (pd->d_open) dataset_close(&pd->d);
    pd->ff_open = pd->d_open = 0;
    free(pd->raw);
    free(pd->points);
    free(pd->grids);
    free(pd->sal_all);
    free(pd->sal);
    free(pd->pix_all);
    free(pd->pix);
    free(pd->keys);
    free(pd->rows);
    pd->raw = pd->points = pd->grids = pd->sal_all = pd->sal = NULL;
    pd->pix_all = pd->pix = NULL;
    pd->keys = NULL;
    pd->rows = NULL;
}
