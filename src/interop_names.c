/* interop_names.c -- our tensor names -> the official I2P-MAE's (names, shapes, layouts) and the
 * moves of one tensor between the two layouts (see interop.h, docs/interop.md).
 */
#include "interop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int add_entry(interop_entry *e, const model3d_config *c, const model3d_tensor *t, int buffer,
                     char *err)
{
    memset(e, 0, sizeof *e);
    e->ours = t;
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
            if (t->shape[1] != c->dec_dims[0] + c->dims[1])
                return errf(err, "interop: %s has %d input channels, expected %d", t->name, t->shape[1],
                            c->dec_dims[0] + c->dims[1]);
        }
    }
    return 0;
}

int interop_table(model3d *m, interop_entry **out, int *n, char *err)
{
    const model3d_config *c = model3d_get_config(m);
    int np = model3d_n_tensors(m), nb = model3d_n_buffer_tensors(m);
    interop_entry *e = calloc((size_t)(np + nb + nb / 2 + 1), sizeof *e);
    if (!e) return errf(err, "interop: out of memory");
    int k = 0;
    for (int i = 0; i < np; i++)
        if (add_entry(&e[k++], c, model3d_get_tensor(m, i), 0, err)) goto fail;
    for (int i = 0; i < nb; i++) {
        const model3d_tensor *t = model3d_get_buffer_tensor(m, i);
        interop_entry *v = &e[k++];
        if (add_entry(v, c, t, 1, err)) goto fail;
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

long interop_numel(const interop_entry *e)
{
    long n = 1;
    for (int i = 0; i < e->rank; i++) n *= (long)e->shape[i];
    return n;
}

static float *ours_data(model3d *m, const interop_entry *e)
{
    return (e->buffer ? model3d_buffers(m) : model3d_params(m)) + e->ours->offset;
}

/* The fusion conv: ours (D1, D0 + C1) [interpolated | skip], official (D1, C1 + D0) [skip |
 * interpolated]. to_official = 1: ours -> official. */
static void swap_fuse(const model3d_config *c, const float *src, float *dst, int to_official)
{
    long rows = c->dec_dims[1], D0 = c->dec_dims[0], C1 = c->dims[1], W = D0 + C1;
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

void interop_to_official(model3d *m, const interop_entry *e, float *out)
{
    const float *src = ours_data(m, e);
    if (e->layout == IO_FUSE) swap_fuse(model3d_get_config(m), src, out, 1);
    else memcpy(out, src, sizeof(float) * (size_t)e->ours->count);
}

void interop_from_official(model3d *m, const interop_entry *e, const float *in)
{
    float *dst = ours_data(m, e);
    if (e->layout == IO_FUSE) swap_fuse(model3d_get_config(m), in, dst, 0);
    else memcpy(dst, in, sizeof(float) * (size_t)e->ours->count);
}
