/* vit_weights.c -- ViT parameter arrays: layout in one buffer, the CLIP and timm tensor names, and
 * shape inference for files of any ViT size (see vit_weights.h). */
#include "vit_weights.h"

/* Sanity limits on a configuration read from a weights file. */
#define VIT_MAX_DIM 65536
#define VIT_MAX_PATCH 1024
#define VIT_MAX_IMAGE 16384

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "rng.h"

/* ---- layout ---- */

/* One array of the layout: where its pointer goes, its length, and its kind (used by the random
 * generator: 'w' linear/conv weight with fan-in `fan_in`, 'b' bias, 'g' norm gain, 'n' norm
 * bias, 'e' embedding). */
typedef struct {
    float **slot;
    size_t n;
    char kind;
    int fan_in;
} vit_param;

/* Fills table (if non-NULL) with every array of w->cfg, in buffer order; returns the count. */
static int param_table(vit_weights *w, vit_param *t)
{
    const vit_config *c = &w->cfg;
    size_t D = (size_t)c->width, M = (size_t)c->mlp, g = (size_t)(c->image / c->patch);
    size_t T = 1 + g * g, pp3 = 3 * (size_t)c->patch * (size_t)c->patch;
    int n = 0;
#define P(ptr, len, k, fan)                                                                        \
    do {                                                                                           \
        if (t) t[n] = (vit_param){&(ptr), (len), (k), (fan)};                                      \
        n++;                                                                                       \
    } while (0)
    P(w->patch_w, D * pp3, 'w', (int)pp3);
    P(w->patch_b, D, 'b', 0);
    P(w->cls, D, 'e', 0);
    P(w->pos, T * D, 'e', 0);
    if (c->pre_norm) {
        P(w->pre_w, D, 'g', 0);
        P(w->pre_b, D, 'n', 0);
    }
    for (int l = 0; l < c->depth; l++) {
        vit_block_weights *b = &w->blocks[l];
        P(b->ln1_w, D, 'g', 0);
        P(b->ln1_b, D, 'n', 0);
        P(b->qkv_w, 3 * D * D, 'w', (int)D);
        P(b->qkv_b, 3 * D, 'b', 0);
        P(b->proj_w, D * D, 'w', (int)D);
        P(b->proj_b, D, 'b', 0);
        P(b->ln2_w, D, 'g', 0);
        P(b->ln2_b, D, 'n', 0);
        P(b->fc1_w, M * D, 'w', (int)D);
        P(b->fc1_b, M, 'b', 0);
        P(b->fc2_w, D * M, 'w', (int)M);
        P(b->fc2_b, D, 'b', 0);
    }
    P(w->norm_w, D, 'g', 0);
    P(w->norm_b, D, 'n', 0);
    if (c->proj) P(w->proj, (size_t)c->out_dim * D, 'w', (int)D);
#undef P
    return n;
}

int vit_weights_alloc(vit_weights *w, const vit_config *cfg, char *err)
{
    memset(w, 0, sizeof *w);
    w->cfg = *cfg;
    w->blocks = calloc((size_t)cfg->depth, sizeof *w->blocks);
    int n = param_table(w, NULL);
    vit_param *t = calloc((size_t)n, sizeof *t);
    if (!w->blocks || !t) {
        free(t);
        vit_weights_free(w);
        return errf(err, "%s: out of memory for the weights table", cfg->name);
    }
    param_table(w, t);
    for (int i = 0; i < n; i++) w->n_floats += t[i].n;
    w->buf = calloc(w->n_floats, sizeof(float));
    if (!w->buf) {
        free(t);
        vit_weights_free(w);
        return errf(err, "%s: out of memory for %zu weights", cfg->name, w->n_floats);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *t[i].slot = w->buf + off;
        off += t[i].n;
    }
    free(t);
    return 0;
}

void vit_weights_free(vit_weights *w)
{
    free(w->blocks);
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* ---- seeded random weights ---- */

int vit_config_random(const char *which, vit_config *c)
{
    memset(c, 0, sizeof *c);
    c->image = 224;
    c->patch = 16;
    c->quick_gelu = 1;
    c->pre_norm = 1;
    c->proj = 1;
    c->ln_eps = 1e-5f;
    if (!strcmp(which, "base")) { /* CLIP ViT-B/16 shapes */
        c->width = 768, c->depth = 12, c->heads = 12, c->mlp = 3072, c->out_dim = 512;
    } else if (!strcmp(which, "tiny")) {
        c->width = 64, c->depth = 2, c->heads = 4, c->mlp = 256, c->out_dim = 32;
    } else {
        return -1;
    }
    snprintf(c->name, sizeof c->name, "random:%s", which);
    return 0;
}

void vit_weights_random(vit_weights *w, uint64_t seed)
{
    int n = param_table(w, NULL);
    vit_param *t = malloc((size_t)n * sizeof *t);
    if (!t) return; /* unreachable in practice; the weights stay zero */
    param_table(w, t);
    for (int i = 0; i < n; i++) {
        rng_t r;
        rng_seed(&r, seed, (uint64_t)i);
        /* x is uniform in [-1, 1): an exact float from 24 random bits, so every machine agrees */
        float a = t[i].kind == 'w' ? 1.0f / sqrtf((float)t[i].fan_in)
                  : t[i].kind == 'e' ? 0.1f : t[i].kind == 'g' ? 0.1f : 0.02f;
        float base = t[i].kind == 'g' ? 1.0f : 0.0f;
        float *p = *t[i].slot;
        for (size_t k = 0; k < t[i].n; k++) {
            float x = (float)((int32_t)(rng_u64(&r) >> 40) - (1 << 23)) * 0x1.0p-23f;
            p[k] = base + a * x;
        }
    }
    free(t);
}

/* ---- safetensors names ---- */

void vit_config_b16(vit_naming naming, vit_config *c)
{
    memset(c, 0, sizeof *c);
    c->image = 224, c->patch = 16, c->width = 768, c->depth = 12, c->heads = 12, c->mlp = 3072;
    if (naming == VIT_NAMING_CLIP) {
        snprintf(c->name, sizeof c->name, "clip-b16");
        c->out_dim = 512, c->proj = 1, c->quick_gelu = 1, c->pre_norm = 1, c->ln_eps = 1e-5f;
    } else {
        snprintf(c->name, sizeof c->name, "timm-b16");
        c->out_dim = 768, c->quick_gelu = 0, c->pre_norm = 0, c->ln_eps = 1e-6f;
    }
}

static const st_tensor *need(const st_file *f, const char *name, int rank, char *err)
{
    const st_tensor *t = st_find(f, name);
    if (!t) {
        errf(err, "%s: tensor %s: missing", f->path, name);
        return NULL;
    }
    if (t->rank != rank) {
        errf(err, "%s: tensor %s: wrong shape (rank %d, expected %d)", f->path, name, t->rank, rank);
        return NULL;
    }
    return t;
}

int vit_config_infer(const st_file *f, vit_naming naming, vit_config *c, char *err)
{
    int clip = naming == VIT_NAMING_CLIP;
    memset(c, 0, sizeof *c);
    const st_tensor *pw = need(f, clip ? "vision_model.embeddings.patch_embedding.weight"
                                       : "patch_embed.proj.weight", 4, err);
    if (!pw) return -1;
    const st_tensor *pos = need(f, clip ? "vision_model.embeddings.position_embedding.weight"
                                        : "pos_embed", clip ? 2 : 3, err);
    if (!pos) return -1;
    const st_tensor *fc1 = need(f, clip ? "vision_model.encoder.layers.0.mlp.fc1.weight"
                                        : "blocks.0.mlp.fc1.weight", 2, err);
    if (!fc1) return -1;
    c->width = (int)pw->shape[0];
    c->patch = (int)pw->shape[2];
    c->mlp = (int)fc1->shape[0];
    /* Sizes from outside bytes: a zero patch would divide by zero, a huge one overflow. */
    if (pw->shape[0] < 1 || pw->shape[0] > VIT_MAX_DIM || pw->shape[1] != 3 || pw->shape[2] < 1 ||
        pw->shape[2] > VIT_MAX_PATCH || pw->shape[3] != pw->shape[2] || fc1->shape[0] < 1 ||
        fc1->shape[0] > VIT_MAX_DIM)
        return errf(err, "%s: tensor %s: shape [%lld, %lld, %lld, %lld] is not a patch embedding "
                    "[width, 3, patch, patch] of sane sizes (or %s has %lld rows)", f->path,
                    pw->name, (long long)pw->shape[0], (long long)pw->shape[1],
                    (long long)pw->shape[2], (long long)pw->shape[3], fc1->name,
                    (long long)fc1->shape[0]);
    long T = (long)pos->shape[pos->rank - 2], g = lround(sqrt((double)(T - 1)));
    if (T < 2 || g * g != T - 1 || g * c->patch > VIT_MAX_IMAGE)
        return errf(err, "%s: tensor %s: %ld positions is not 1 + a square grid (of at most %d px)",
                    f->path, pos->name, T, VIT_MAX_IMAGE);
    c->image = (int)g * c->patch;
    char name[256];
    while (1) {
        snprintf(name, sizeof name, clip ? "vision_model.encoder.layers.%d.layer_norm1.weight"
                                         : "blocks.%d.norm1.weight", c->depth);
        if (!st_find(f, name)) break;
        c->depth++;
    }
    const char *h = st_metadata(f, "heads");
    c->heads = h ? atoi(h) : c->width / 64;
    if (c->heads < 1 || c->width % c->heads)
        return errf(err, "%s: cannot tell the number of attention heads of width %d (set \"heads\" "
                    "in __metadata__)", f->path, c->width);
    if (clip) {
        if (!st_find(f, "visual_projection.weight"))
            return errf(err, "%s: tensor visual_projection.weight: missing (the CLIP feature projection; "
                        "use the full CLIP model file, not the vision tower alone)", f->path);
        const st_tensor *proj = need(f, "visual_projection.weight", 2, err);
        if (!proj) return -1;
        c->out_dim = (int)proj->shape[0];
        c->proj = 1, c->quick_gelu = 1, c->pre_norm = 1, c->ln_eps = 1e-5f;
    } else {
        c->out_dim = c->width, c->ln_eps = 1e-6f;
    }
    snprintf(c->name, sizeof c->name, "%s-d%d-w%d-p%d-%d", clip ? "clip" : "timm", c->depth,
             c->width, c->patch, c->image);
    return 0;
}

/* Reads one tensor with the expected shape (up to 4 dims; trailing zeros end the shape). */
static int rd(const st_file *f, const char *name, float *out, int64_t d0, int64_t d1, int64_t d2,
              int64_t d3, char *err)
{
    int64_t s[4] = {d0, d1, d2, d3};
    int rank = 0;
    while (rank < 4 && s[rank]) rank++;
    return st_read_f32(f, name, rank, s, out, err);
}

/* One block's tensors; the names differ by naming, the arrays and shapes do not. CLIP keeps q, k, v
 * as three (D, D) projections, which are stacked into the (3D, D) qkv rows here. */
static int read_block(const st_file *f, vit_naming naming, int l, const vit_config *c,
                      vit_block_weights *b, char *err)
{
    const int clip = naming == VIT_NAMING_CLIP;
    const int64_t D = c->width, M = c->mlp;
    const struct {
        const char *clip, *timm;
        float *dst;
        int64_t d0, d1;
    } t[] = {
        {"layer_norm1.weight", "norm1.weight", b->ln1_w, D, 0},
        {"layer_norm1.bias", "norm1.bias", b->ln1_b, D, 0},
        {NULL, "attn.qkv.weight", b->qkv_w, 3 * D, D},
        {NULL, "attn.qkv.bias", b->qkv_b, 3 * D, 0},
        {"self_attn.out_proj.weight", "attn.proj.weight", b->proj_w, D, D},
        {"self_attn.out_proj.bias", "attn.proj.bias", b->proj_b, D, 0},
        {"layer_norm2.weight", "norm2.weight", b->ln2_w, D, 0},
        {"layer_norm2.bias", "norm2.bias", b->ln2_b, D, 0},
        {"mlp.fc1.weight", "mlp.fc1.weight", b->fc1_w, M, D},
        {"mlp.fc1.bias", "mlp.fc1.bias", b->fc1_b, M, 0},
        {"mlp.fc2.weight", "mlp.fc2.weight", b->fc2_w, D, M},
        {"mlp.fc2.bias", "mlp.fc2.bias", b->fc2_b, D, 0},
    };
    const char *prefix = clip ? "vision_model.encoder.layers" : "blocks";
    char n[256];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *suffix = clip ? t[i].clip : t[i].timm;
        if (!suffix) continue;
        snprintf(n, sizeof n, "%s.%d.%s", prefix, l, suffix);
        if (rd(f, n, t[i].dst, t[i].d0, t[i].d1, 0, 0, err)) return -1;
    }
    for (int k = 0; clip && k < 3; k++) {
        const char qkv = "qkv"[k];
        snprintf(n, sizeof n, "%s.%d.self_attn.%c_proj.weight", prefix, l, qkv);
        if (rd(f, n, b->qkv_w + k * D * D, D, D, 0, 0, err)) return -1;
        snprintf(n, sizeof n, "%s.%d.self_attn.%c_proj.bias", prefix, l, qkv);
        if (rd(f, n, b->qkv_b + k * D, D, 0, 0, 0, err)) return -1;
    }
    return 0;
}

int vit_weights_read(vit_weights *w, const st_file *f, vit_naming naming, char *err)
{
    const vit_config *c = &w->cfg;
    int64_t D = c->width, p = c->patch, g = c->image / c->patch, T = 1 + g * g;
    if (naming == VIT_NAMING_CLIP) {
        if (rd(f, "vision_model.embeddings.patch_embedding.weight", w->patch_w, D, 3, p, p, err) ||
            rd(f, "vision_model.embeddings.class_embedding", w->cls, D, 0, 0, 0, err) ||
            rd(f, "vision_model.embeddings.position_embedding.weight", w->pos, T, D, 0, 0, err) ||
            rd(f, "vision_model.pre_layrnorm.weight", w->pre_w, D, 0, 0, 0, err) ||
            rd(f, "vision_model.pre_layrnorm.bias", w->pre_b, D, 0, 0, 0, err))
            return -1;
        for (int l = 0; l < c->depth; l++)
            if (read_block(f, naming, l, c, &w->blocks[l], err)) return -1;
        if (rd(f, "vision_model.post_layernorm.weight", w->norm_w, D, 0, 0, 0, err) ||
            rd(f, "vision_model.post_layernorm.bias", w->norm_b, D, 0, 0, 0, err) ||
            rd(f, "visual_projection.weight", w->proj, c->out_dim, D, 0, 0, err))
            return -1;
        return 0;
    }
    if (rd(f, "patch_embed.proj.weight", w->patch_w, D, 3, p, p, err) ||
        rd(f, "patch_embed.proj.bias", w->patch_b, D, 0, 0, 0, err) ||
        rd(f, "cls_token", w->cls, 1, 1, D, 0, err) || rd(f, "pos_embed", w->pos, 1, T, D, 0, err))
        return -1;
    for (int l = 0; l < c->depth; l++)
        if (read_block(f, naming, l, c, &w->blocks[l], err)) return -1;
    if (rd(f, "norm.weight", w->norm_w, D, 0, 0, 0, err) || rd(f, "norm.bias", w->norm_b, D, 0, 0, 0, err))
        return -1;
    return 0;
}
