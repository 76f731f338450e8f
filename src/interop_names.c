/* interop_names.c -- our tensor names -> the official I2P-MAE's (names, shapes, layouts) and the
 * moves of one tensor between the two layouts (see interop.h, docs/interop.md).
 */
#include "interop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"

/* Sub-layers of a token embedding / merging (official Token_Embed: first_conv and second_conv are
 * Sequential(Conv1d, BatchNorm1d, ReLU, Conv1d), hence the indices 0, 1, 3). */
static const char *const group_ours[6] = {"conv1", "bn1", "conv2", "conv3", "bn2", "conv4"};
static const char *const group_official[6] = {"first_conv.0", "first_conv.1", "first_conv.3",
                                              "second_conv.0", "second_conv.1", "second_conv.3"};

/* Token propagation (official PointNetFeaturePropagation: fuse = ConvBNReLU1D, extraction = one
 * ConvBNReLURes1D with net1 = (Conv1d, BN, GELU), net2 = (Conv1d, BN)). */
static const char *const prop_ours[6] = {"interp.conv", "interp.bn", "res.conv1", "res.bn1", "res.conv2",
                                         "res.bn2"};
static const char *const prop_official[6] = {"fuse.net.0", "fuse.net.1", "extraction.operation.0.net1.0",
                                              "extraction.operation.0.net1.1",
                                              "extraction.operation.0.net2.0",
                                              "extraction.operation.0.net2.1"};

/* The official name of our layer `layer` (a name without its last component), and whether it is a
 * Conv1d. 0, or -1 if the layer is unknown. */
static int official_layer(const char *layer, char *out, size_t n, int *conv)
{
    int s;
    char rest[128];
    *conv = 0;
    for (int g = 0; g < 3; g++) {
        static const char *const prefix[3] = {"embed0.", "merge1.", "merge2."};
        size_t pl = strlen(prefix[g]);
        if (strncmp(layer, prefix[g], pl)) continue;
        for (int i = 0; i < 6; i++)
            if (!strcmp(layer + pl, group_ours[i])) {
                *conv = 1;
                snprintf(out, n, "h_encoder.token_embed.%d.%s", g, group_official[i]);
                return 0;
            }
        return -1;
    }
    if (!strncmp(layer, "decoder.1.", 10))
        for (int i = 0; i < 6; i++)
            if (!strcmp(layer + 10, prop_ours[i])) {
                *conv = 1;
                snprintf(out, n, "token_prop.0.%s", prop_official[i]);
                return 0;
            }
    if (!strcmp(layer, "rec_head_3d") || !strcmp(layer, "rec_head_2d")) {
        *conv = 1;
        snprintf(out, n, "%s", layer);
        return 0;
    }
    if (!strcmp(layer, "decoder.1.norm")) {
        snprintf(out, n, "decoder_norm");
        return 0;
    }
    if (!strcmp(layer, "norm")) { /* the classifier's fresh LayerNorm */
        snprintf(out, n, "norm");
        return 0;
    }
    if (!strncmp(layer, "head.", 5)) { /* cls_head_finetune: Linear, BN, ReLU, Dropout, Linear, BN, ... */
        static const char *const ours[5] = {"fc1", "bn1", "fc2", "bn2", "fc3"};
        static const int index[5] = {0, 1, 4, 5, 8};
        for (int i = 0; i < 5; i++)
            if (!strcmp(layer + 5, ours[i])) {
                snprintf(out, n, "cls_head_finetune.%d", index[i]);
                return 0;
            }
        return -1;
    }
    int enc = !strncmp(layer, "encoder.", 8), dec = !strncmp(layer, "decoder.", 8);
    if (!enc && !dec) return -1;
    if (sscanf(layer + 8, "%d.%127s", &s, rest) != 2) return -1;
    if (!strcmp(rest, "pos.fc1") || !strcmp(rest, "pos.fc2")) {
        snprintf(out, n, "%s.%d.%d", enc ? "h_encoder.encoder_pos_embeds" : "decoder_pos_embeds", s,
                 rest[6] == '1' ? 0 : 2);
        return 0;
    }
    if (!strncmp(rest, "blocks.", 7)) {
        snprintf(out, n, "%s.%d.%s", enc ? "h_encoder.encoder_blocks" : "h_decoder", s, rest);
        return 0;
    }
    if (enc && !strcmp(rest, "norm")) {
        snprintf(out, n, "h_encoder.encoder_norms.%d", s);
        return 0;
    }
    return -1;
}

static int add_entry(interop_entry *e, const model3d_config *c, const model3d_tensor *t, float *base,
                     int buffer, char *err)
{
    memset(e, 0, sizeof *e);
    e->ours = t;
    e->data = base + t->offset;
    e->buffer = buffer;
    e->rank = t->rank;
    for (int i = 0; i < t->rank && i < 3; i++) e->shape[i] = t->shape[i];
    if (!strcmp(t->name, "decoder.mask_token")) {
        snprintf(e->official, sizeof e->official, "mask_token");
        e->layout = IO_MASK_TOKEN;
        e->rank = 2;
        e->shape[0] = 1;
        e->shape[1] = t->shape[2];
        return 0;
    }
    const char *dot = strrchr(t->name, '.');
    char layer[128], off[128];
    int conv;
    snprintf(layer, sizeof layer, "%.*s", (int)(dot - t->name), t->name);
    if (official_layer(layer, off, sizeof off, &conv))
        return errf(err, "interop: no official name for our tensor %s", t->name);
    snprintf(e->official, sizeof e->official, "%s%s", off, dot);
    if (conv && t->rank == 2 && !strcmp(dot, ".weight")) {
        e->layout = IO_CONV;
        e->rank = 3;
        e->shape[2] = 1;
        if (!strcmp(layer, "decoder.1.interp.conv")) {
            e->layout = IO_FUSE;
            e->fuse_interp = c->dec_dims[0];
            e->fuse_skip = c->dims[1];
            if (t->shape[1] != c->dec_dims[0] + c->dims[1])
                return errf(err, "interop: %s has %d input channels, expected %d", t->name, t->shape[1],
                            c->dec_dims[0] + c->dims[1]);
        }
    }
    return 0;
}

/* The tensors of a model: np parameter tensors and nb buffer tensors (get(i) for i < np, then
 * buffers), with their float arrays. */
typedef struct {
    const model3d_config *cfg;
    int np, nb;
    const model3d_tensor *(*param)(const void *model, int i);
    const model3d_tensor *(*buffer)(const void *model, int i);
    const void *model;
    float *params, *buffers;
} tensor_source;

static int build_table(const tensor_source *src, interop_entry **out, int *n, char *err)
{
    interop_entry *e = calloc((size_t)(src->np + src->nb + src->nb / 2 + 1), sizeof *e);
    if (!e) return errf(err, "interop: out of memory");
    int k = 0;
    for (int i = 0; i < src->np; i++)
        if (add_entry(&e[k++], src->cfg, src->param(src->model, i), src->params, 0, err)) goto fail;
    for (int i = 0; i < src->nb; i++) {
        interop_entry *v = &e[k++];
        if (add_entry(v, src->cfg, src->buffer(src->model, i), src->buffers, 1, err)) goto fail;
        const char *suffix = ".running_var";
        size_t ln = strlen(v->official), ls = strlen(suffix);
        if (ln > ls && !strcmp(v->official + ln - ls, suffix)) {
            interop_entry *b = &e[k++];
            char bn[sizeof b->official];
            snprintf(bn, sizeof bn, "%.*s", (int)(ln - ls), v->official);
            memset(b, 0, sizeof *b);
            snprintf(b->official, sizeof b->official, "%s.num_batches_tracked", bn);
            b->layout = IO_BN_COUNT;
        }
    }
    *out = e;
    *n = k;
    return 0;
fail:
    free(e);
    return -1;
}

static const model3d_tensor *m3_param(const void *m, int i) { return model3d_get_tensor(m, i); }
static const model3d_tensor *m3_buffer(const void *m, int i) { return model3d_get_buffer_tensor(m, i); }
static const model3d_tensor *cls_param(const void *c, int i) { return classifier_get_tensor(c, i); }
static const model3d_tensor *cls_buffer(const void *c, int i) { return classifier_get_buffer_tensor(c, i); }

int interop_table(model3d *m, interop_entry **out, int *n, char *err)
{
    tensor_source src = {model3d_get_config(m), model3d_n_tensors(m), model3d_n_buffer_tensors(m), m3_param,
                         m3_buffer, m, model3d_params(m), model3d_buffers(m)};
    return build_table(&src, out, n, err);
}

int interop_classifier_table(classifier *c, interop_entry **out, int *n, char *err)
{
    tensor_source src = {&classifier_get_config(c)->enc, classifier_n_tensors(c), classifier_n_buffer_tensors(c),
                         cls_param, cls_buffer, c, classifier_params(c), classifier_buffers(c)};
    return build_table(&src, out, n, err);
}

long interop_numel(const interop_entry *e)
{
    long n = 1;
    for (int i = 0; i < e->rank; i++) n *= (long)e->shape[i];
    return n;
}

/* The fusion conv: ours (rows, interp + skip) [interpolated | skip], official (rows, skip + interp)
 * [skip | interpolated]. to_official = 1: ours -> official. */
static void swap_fuse(const interop_entry *e, const float *src, float *dst, int to_official)
{
    long rows = e->shape[0], D0 = e->fuse_interp, C1 = e->fuse_skip, W = D0 + C1;
    for (long r = 0; r < rows; r++) {
        const float *s = src + r * W;
        float *d = dst + r * W;
        if (to_official) {
            memcpy(d, s + D0, sizeof(float) * (size_t)C1);
            memcpy(d + C1, s, sizeof(float) * (size_t)D0);
        } else {
            memcpy(d, s + C1, sizeof(float) * (size_t)D0);
            memcpy(d + D0, s, sizeof(float) * (size_t)C1);
        }
    }
}

void interop_to_official(const interop_entry *e, float *out)
{
    if (e->layout == IO_FUSE) swap_fuse(e, e->data, out, 1);
    else memcpy(out, e->data, sizeof(float) * (size_t)e->ours->count);
}

void interop_from_official(const interop_entry *e, const float *in)
{
    if (e->layout == IO_FUSE) swap_fuse(e, in, e->data, 0);
    else memcpy(e->data, in, sizeof(float) * (size_t)e->ours->count);
}
