/* model3d_config.c -- the 3D network's configurations: the spec's, the tiny one of the reference
 * tests (docs/model3d.md), and the consistency check every model creation runs.
 */
#include "model3d.h"

#include <string.h>

#include "errors.h"

void model3d_config_default(model3d_config *c)
{
    memset(c, 0, sizeof *c);
    c->points = 2048;
    c->groups[0] = 512; c->groups[1] = 256; c->groups[2] = 64;
    c->k[0] = 16; c->k[1] = 8; c->k[2] = 8;
    c->dims[0] = 96; c->dims[1] = 192; c->dims[2] = 384;
    c->depths[0] = 5; c->depths[1] = 5; c->depths[2] = 5;
    c->heads = 6;
    c->dec_dims[0] = 384; c->dec_dims[1] = 192;
    c->dec_depths[0] = 1; c->dec_depths[1] = 1;
    c->embed_hidden[0] = 128; c->embed_hidden[1] = 256; c->embed_hidden[2] = 512;
    c->mask_ratio = 0.8;
    c->drop_path = 0.1;
    c->views = 3;
    c->feat_dim = 512;
    c->grid = 14;
    c->image = 224;
    c->fps_skip_origin = 1;
}

void model3d_config_tiny(model3d_config *c)
{
    model3d_config_default(c);
    c->points = 64;
    c->groups[0] = 16; c->groups[1] = 8; c->groups[2] = 4;
    c->k[0] = 4; c->k[1] = 4; c->k[2] = 2;
    c->dims[0] = 12; c->dims[1] = 24; c->dims[2] = 48;
    c->depths[0] = 1; c->depths[1] = 1; c->depths[2] = 1;
    c->heads = 2;
    c->dec_dims[0] = 48; c->dec_dims[1] = 24;
    c->dec_depths[0] = 1; c->dec_depths[1] = 1;
    c->embed_hidden[0] = 8; c->embed_hidden[1] = 16; c->embed_hidden[2] = 32;
    c->mask_ratio = 0.5;
    c->drop_path = 0;
    c->views = 2;
    c->feat_dim = 6;
    c->grid = 4;
    c->image = 32;
}

int model3d_config_check(const model3d_config *c, char *err)
{
    if (c->points < 1) return errf(err, "model3d config: points must be >= 1");
    int prev = c->points;
    for (int s = 0; s < 3; s++) {
        if (c->groups[s] < 1 || c->groups[s] > prev)
            return errf(err, "model3d config: groups[%d] = %d must be in [1, %d]", s, c->groups[s], prev);
        if (c->k[s] < 1 || c->k[s] > prev)
            return errf(err, "model3d config: k[%d] = %d must be in [1, %d]", s, c->k[s], prev);
        if (c->dims[s] < 1 || c->heads < 1 || c->dims[s] % c->heads)
            return errf(err, "model3d config: heads %d must divide dims[%d] = %d", c->heads, s, c->dims[s]);
        if (c->depths[s] < 0) return errf(err, "model3d config: depths[%d] < 0", s);
        prev = c->groups[s];
    }
    if (c->groups[2] < 3) return errf(err, "model3d config: groups[2] must be >= 3 (3-NN upsampling)");
    if (c->dec_dims[0] != c->dims[2] || c->dec_dims[1] != c->dims[1])
        return errf(err, "model3d config: dec_dims must equal (dims[2], dims[1])");
    if (c->dec_dims[0] % c->heads || c->dec_dims[1] % c->heads)
        return errf(err, "model3d config: heads must divide dec_dims");
    if (c->dec_depths[0] < 0 || c->dec_depths[1] < 0) return errf(err, "model3d config: dec_depths < 0");
    for (int i = 0; i < 3; i++)
        if (c->embed_hidden[i] < 1) return errf(err, "model3d config: embed_hidden[%d] < 1", i);
    int n_mask = (int)(c->mask_ratio * c->groups[2]);
    if (c->mask_ratio < 0 || c->mask_ratio >= 1 || c->groups[2] - n_mask < 1)
        return errf(err, "model3d config: mask_ratio %g leaves no visible token", c->mask_ratio);
    if (c->visible < 0 || c->visible > c->groups[2])
        return errf(err, "model3d config: visible %d must be in [1, groups[2] = %d] (0: from mask_ratio)",
                    c->visible, c->groups[2]);
    if (c->drop_path < 0 || c->drop_path >= 1) return errf(err, "model3d config: drop_path must be in [0,1)");
    if (c->fps_skip_origin != 0 && c->fps_skip_origin != 1)
        return errf(err, "model3d config: fps_skip_origin must be 0 or 1");
    if (c->views == 0 && c->feat_dim == 0) { /* no 2D head: grid and image unused */
        if (c->grid < 0 || c->image < 0) return errf(err, "model3d config: grid and image must be >= 0");
    } else if (c->views < 1 || c->feat_dim < 1 || c->grid < 1 || c->image < 1) {
        return errf(err, "model3d config: views, feat_dim, grid and image must be >= 1 (or views = "
                    "feat_dim = 0: no 2D head)");
    }
    return 0;
}
