/* render_rec.c -- the picture of a checkpoint's 3D reconstruction of one sample (see render_rec.h). */
#include "render_rec.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckpt_kind.h"
#include "dataset.h"
#include "dnn.h"
#include "errors.h"
#include "features_file.h"
#include "model3d.h"
#include "model_opts.h"
#include "png_write.h"
#include "rng.h"

#define GAP_PX 4

typedef struct {
    const float *p;
    long n;
    uint8_t rgb[3];
} point_set;

/* Reads the checkpoint's network configuration and whether it was pre-trained with 2D-guided masking. */
static int read_config(const char *ckpt, model3d_config *cfg, int *guided, char *err)
{
    cJSON *root;
    if (ckpt_pretrain_config(ckpt, "--checkpoint", MPI_COMM_SELF, cfg, NULL, &root, err)) return -1;
    const cJSON *ob = cJSON_GetObjectItemCaseSensitive(root, "objective");
    const cJSON *mk = cJSON_GetObjectItemCaseSensitive(ob, "masking");
    *guided = !cJSON_IsString(mk) || strcmp(mk->valuestring, "random") != 0;
    cJSON_Delete(root);
    return 0;
}

static int read_saliency(const char *features, dataset *d, long sample, long P, float *sal, char *err)
{
    features_file ff;
    if (features_open(&ff, features, MPI_COMM_SELF, err)) return -1;
    float *all = malloc(sizeof(float) * (size_t)d->points);
    int rc = all ? features_check_dataset(&ff, d, ff.m.views, err) : errf(err, "out of memory");
    if (!rc) rc = features_read_point_saliency(&ff, &sample, 1, all, err);
    if (!rc) memcpy(sal, all, sizeof(float) * (size_t)P);
    free(all);
    features_close(&ff);
    return rc;
}

/* Panel (row v, column col) of the canvas: the point sets projected on axes (v+1)%3 (down) and v
 * (right), scaled by the sample's extent. */
static void draw_panel(uint8_t *canvas, int width, int S, int v, int col, const point_set *sets, int n_sets,
                       const float lo[3], float span)
{
    int ay = (v + 1) % 3, ax = v % 3, y0 = v * (S + GAP_PX), x0 = col * (S + GAP_PX);
    for (int y = 0; y < S; y++) memset(canvas + ((long)(y0 + y) * width + x0) * 3, 255, (size_t)S * 3);
    for (int s = 0; s < n_sets; s++)
        for (long i = 0; i < sets[s].n; i++) {
            const float *q = sets[s].p + i * 3;
            int py = (int)((q[ay] - lo[ay]) / span * (S - 8)) + 4, px = (int)((q[ax] - lo[ax]) / span * (S - 8)) + 4;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = py + dy, xx = px + dx;
                    if (yy < 0 || yy >= S || xx < 0 || xx >= S) continue;
                    memcpy(canvas + ((long)(y0 + yy) * width + x0 + xx) * 3, sets[s].rgb, 3);
                }
        }
}

static int write_picture(const char *path, int S, const float *vis, long nv, const float *gt, const float *rec,
                         long nm, char *err)
{
    float lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    const float *all[2] = {vis, gt};
    long cnt[2] = {nv, nm};
    for (int s = 0; s < 2; s++)
        for (long i = 0; i < cnt[s]; i++)
            for (int k = 0; k < 3; k++) {
                lo[k] = fminf(lo[k], all[s][i * 3 + k]);
                hi[k] = fmaxf(hi[k], all[s][i * 3 + k]);
            }
    float span = 1e-6f;
    for (int k = 0; k < 3; k++) span = fmaxf(span, hi[k] - lo[k]);
    for (int k = 0; k < 3; k++) lo[k] -= 0.5f * (span - (hi[k] - lo[k])); /* centre each axis */
    int width = 3 * S + 2 * GAP_PX, height = 3 * S + 2 * GAP_PX;
    uint8_t *canvas = malloc((size_t)width * height * 3);
    if (!canvas) return errf(err, "%s: out of memory", path);
    memset(canvas, 64, (size_t)width * height * 3);
    point_set v_set = {vis, nv, {110, 110, 110}}, g_set = {gt, nm, {220, 40, 40}}, r_set = {rec, nm, {40, 80, 220}};
    point_set c1[1] = {v_set}, c2[2] = {v_set, r_set}, c3[2] = {v_set, g_set};
    for (int v = 0; v < 3; v++) {
        draw_panel(canvas, width, S, v, 0, c1, 1, lo, span);
        draw_panel(canvas, width, S, v, 1, c2, 2, lo, span);
        draw_panel(canvas, width, S, v, 2, c3, 2, lo, span);
    }
    int rc = png_write_rgb(path, width, height, canvas, err);
    free(canvas);
    return rc;
}

int render_reconstruction(const render_rec_options *o, render_rec_result *res, char *err)
{
    memset(res, 0, sizeof *res);
    model3d_config cfg;
    int guided = 0;
    if (read_config(o->checkpoint, &cfg, &guided, err)) return -1;
    dataset d;
    if (dataset_open(&d, o->input, MPI_COMM_SELF, err)) return -1;
    int rc = 0;
    if (o->sample < 0 || o->sample >= d.n)
        rc = errf(err, "--sample %ld: %s has samples 0..%ld", o->sample, o->input, d.n - 1);
    else if (d.points < cfg.points)
        rc = errf(err, "%s: the checkpoint's network takes %d points per cloud, %s has %ld: the "
                  "architecture does not match the data", o->checkpoint, cfg.points, o->input, d.points);
    long P = cfg.points, G1 = cfg.groups[1], k1 = cfg.k[1];
    float *raw = malloc(sizeof(float) * (size_t)d.points * 3), *pts = malloc(sizeof(float) * (size_t)P * 3);
    float *sal = malloc(sizeof(float) * (size_t)P);
    float *vis = malloc(sizeof(float) * (size_t)(G1 * k1 * 3)), *gt = malloc(sizeof(float) * (size_t)(G1 * k1 * 3));
    float *rec = malloc(sizeof(float) * (size_t)(G1 * k1 * 3));
    if (!rc && (!raw || !pts || !sal || !vis || !gt || !rec)) rc = errf(err, "%s: out of memory", o->input);
    if (!rc) rc = dataset_read(&d, o->sample, 1, raw, NULL, err);
    if (!rc) memcpy(pts, raw, sizeof(float) * (size_t)P * 3);
    res->guided = guided && o->features && o->features[0];
    if (!rc && res->guided) rc = read_saliency(o->features, &d, o->sample, P, sal, err);
    dataset_close(&d);
    dnn_ctx ctx = {0};
    model3d *m = NULL;
    if (!rc) rc = dnn_ctx_create(&ctx, err);
    cfg.drop_path = 0; /* no stochastic depth in the picture (the parameters do not depend on it) */
    if (!rc) rc = model3d_create(&m, &cfg, 1, 0, &ctx, err);
    if (!rc)
        rc = ckpt_read_network(o->checkpoint, MPI_COMM_SELF, model3d_params(m), model3d_n_params(m), model3d_buffers(m),
                               model3d_n_buffers(m), NULL, err);
    if (!rc) rc = model3d_set_loss_weights(m, 1.0, 0.0, err); /* the 3D head only: no 2D targets read */
    if (!rc) {
        uint64_t key = rng_mix(rng_mix((uint64_t)o->seed, 0x72656e646572ull), (uint64_t)o->sample);
        model3d_batch b = {.B = 1, .points = pts, .point_saliency = res->guided ? sal : NULL, .mask_keys = &key};
        model3d_losses L;
        rc = model3d_train_step(m, &b, &L, err);
        if (!rc) res->chamfer = L.loss_3d;
    }
    if (!rc) rc = model3d_reconstruction(m, 0, vis, &res->n_visible, gt, rec, &res->n_masked, err);
    if (!rc) rc = write_picture(o->output, o->size, vis, res->n_visible, gt, rec, res->n_masked, err);
    model3d_free(m);
    if (ctx.engine) dnn_ctx_destroy(&ctx);
    free(raw);
    free(pts);
    free(sal);
    free(vis);
    free(gt);
    free(rec);
    return rc;
}
