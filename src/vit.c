/* vit.c -- loading the 2D model: spec strings, weights from safetensors or the seeded generator,
 * the precision decision, and the one-time packing of the weights into oneDNN's formats (see vit.h). */
#include "vit.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "safetensors.h"
#include "vit_linear.h"
#include "vit_model.h"
#include "vit_plan.h"
#include "vit_weights.h"

#define VIT_RANDOM_SEED 0x49325041ull /* "I2PA" */

/* ---- weights from a spec ---- */

static void sha256_bytes(const void *p, size_t n, char *hex65)
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(hex65 + 2 * i, 3, "%02x", md[i]);
}

static int weights_from_spec(const char *spec, vit_weights *w, char *sha, char *err)
{
    const char *colon = strchr(spec, ':');
    if (!colon)
        return errf(err, "--vit '%s': expected clip-b16:FILE, timm-b16:FILE, clip:FILE, timm:FILE, "
                    "random:tiny or random:base", spec);
    size_t kl = (size_t)(colon - spec);
    const char *arg = colon + 1;
    vit_config cfg;
    if (kl == 6 && !strncmp(spec, "random", 6)) {
        if (vit_config_random(arg, &cfg))
            return errf(err, "--vit '%s': unknown random model (random:tiny or random:base)", spec);
        if (vit_weights_alloc(w, &cfg, err)) return -1;
        vit_weights_random(w, VIT_RANDOM_SEED);
        sha256_bytes(w->buf, w->n_floats * sizeof(float), sha);
        log_warn("*** %s: seeded RANDOM weights: the 2D guidance (features, saliency) is UNTRAINED; "
                 "use clip-b16:model.safetensors for real runs ***", cfg.name);
        return 0;
    }
    vit_naming naming;
    int fixed;
    if (kl == 8 && !strncmp(spec, "clip-b16", 8)) naming = VIT_NAMING_CLIP, fixed = 1;
    else if (kl == 8 && !strncmp(spec, "timm-b16", 8)) naming = VIT_NAMING_TIMM, fixed = 1;
    else if (kl == 4 && !strncmp(spec, "clip", 4)) naming = VIT_NAMING_CLIP, fixed = 0;
    else if (kl == 4 && !strncmp(spec, "timm", 4)) naming = VIT_NAMING_TIMM, fixed = 0;
    else
        return errf(err, "--vit '%s': unknown model '%.*s' (clip-b16, timm-b16, clip, timm, random)",
                    spec, (int)kl, spec);
    if (!*arg) return errf(err, "--vit '%s': missing the weights FILE after ':'", spec);
    st_file f;
    if (st_open(&f, arg, err)) return -1;
    int rc = 0;
    if (fixed) vit_config_b16(naming, &cfg);
    else rc = vit_config_infer(&f, naming, &cfg, err);
    if (!rc) rc = vit_weights_alloc(w, &cfg, err);
    if (!rc && (rc = vit_weights_read(w, &f, naming, err))) vit_weights_free(w);
    if (!rc) st_sha256_hex(&f, sha);
    st_close(&f);
    return rc;
}

/* ---- packing ---- */

/* A f32 vector (or (1,N) / (1,T,D) tensor) copied into a oneDNN-owned memory. */
static int vec_mem(vit_model *m, dnnl_memory_t *out, const float *src, int nd, const dnnl_dim_t *dims,
                   char *err)
{
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc};
    dnnl_memory_desc_t md;
    void *p = NULL;
    if (dnn_md_tag(&md, nd, dims, dnnl_f32, tags[nd], "weights memory", err) ||
        dnn_memory(m->ctx, out, &md, DNNL_MEMORY_ALLOCATE, "weights memory", err) ||
        dnn_handle(*out, &p, "weights memory", err))
        return -1;
    memcpy(p, src, dnnl_memory_desc_get_size(&md));
    return 0;
}

/* PyTorch weight (N, K) row-major -> the blocked (K, N) format of a probe matmul with M rows. */
static int pack_linear(vit_model *m, vit_packed *out, const float *w_nk, long M, long K, long N,
                       dnnl_data_type_t dt, dnnl_data_type_t dst_dt, int bias, vit_post post,
                       const char *what, char *err)
{
    dnnl_primitive_desc_t pd = NULL;
    if (vit_linear_pd(m, M, K, N, dt, dt, dst_dt, bias, post, &pd, err)) return err_prefix(err, what);
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (want) out->md = *want;
    dnnl_primitive_desc_destroy(pd);
    if (!want) return errf(err, "oneDNN: %s: no weights memory descriptor", what);
    char step[96];
    snprintf(step, sizeof step, "%s: pack weights", what);
    dnnl_memory_desc_t umd;
    dnnl_memory_t user = NULL;
    int rc = dnn_md_tag(&umd, 2, (dnnl_dim_t[]){K, N}, dnnl_f32, dnnl_ba, step, err) ||
             dnn_memory(m->ctx, &out->mem, &out->md, DNNL_MEMORY_ALLOCATE, step, err) ||
             dnn_memory(m->ctx, &user, &umd, (void *)w_nk, step, err) ||
             dnn_reorder_once(m->ctx, user, out->mem, step, err);
    if (user) dnnl_memory_destroy(user);
    return rc ? -1 : 0;
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

/* Decides the effective precision: bf16 needs avx512_bf16 or AMX and a non-reference matmul. */
static void choose_precision(vit_model *m, vit_precision want)
{
    m->prec = VIT_FP32;
    m->act_dt = dnnl_f32;
    if (want != VIT_BF16) return;
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const long D = m->cfg.width;
    char err[I2P_ERR_LEN];
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = "none";
    int ok = isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
    if (ok && vit_linear_pd(m, 256, D, 3 * D, dnnl_bf16, dnnl_bf16, dnnl_bf16, 1, VIT_POST_NONE, &pd, err) == 0) {
        impl = dnn_impl_name(pd);
        ok = strstr(impl, "ref") == NULL;
    } else {
        ok = 0;
    }
    if (ok) {
        m->prec = VIT_BF16;
        m->act_dt = dnnl_bf16;
        log_info("vit: precision bf16 (bf16 weights and matmul inputs, f32 accumulation, f32 residual "
                 "stream and norms): oneDNN picked %s", impl);
    } else {
        log_warn("vit: --precision bf16 is not supported here (needs avx512_bf16 or AMX; oneDNN's CPU ISA "
                 "is %s, bf16 matmul: %s): running in fp32", isa_name(isa), impl);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
}

static int pack_model(vit_model *m, vit_weights *w, char *err)
{
    const vit_config *c = &m->cfg;
    const long D = c->width, M = c->mlp, g = c->image / c->patch, T = 1 + g * g, K0 = 3L * c->patch * c->patch;
    const long probe = 8 * T; /* the weights format does not depend on the rows in practice; the plans
                               * re-pack for a batch that disagrees */
    const dnnl_data_type_t a = m->act_dt, f32 = dnnl_f32;
    m->blocks = calloc((size_t)c->depth, sizeof *m->blocks);
    m->cls = malloc(sizeof(float) * (size_t)D);
    if (!m->blocks || !m->cls) return errf(err, "%s: out of memory", c->name);
    memcpy(m->cls, w->cls, sizeof(float) * (size_t)D);
    if (pack_linear(m, &m->embed_w, w->patch_w, 8L * g * g, K0, D, a, f32, 1, VIT_POST_NONE, "patch embedding", err) ||
        vec_mem(m, &m->embed_b, w->patch_b, 2, (dnnl_dim_t[]){1, D}, err) ||
        vec_mem(m, &m->pos, w->pos, 3, (dnnl_dim_t[]){1, T, D}, err) ||
        vec_mem(m, &m->norm_w, w->norm_w, 1, (dnnl_dim_t[]){D}, err) ||
        vec_mem(m, &m->norm_b, w->norm_b, 1, (dnnl_dim_t[]){D}, err))
        return -1;
    if (c->pre_norm && (vec_mem(m, &m->pre_w, w->pre_w, 1, (dnnl_dim_t[]){D}, err) ||
                        vec_mem(m, &m->pre_b, w->pre_b, 1, (dnnl_dim_t[]){D}, err)))
        return -1;
    if (c->proj && pack_linear(m, &m->head_w, w->proj, probe, D, c->out_dim, f32, f32, 0, VIT_POST_NONE,
                               "visual projection", err))
        return -1;
    const float qscale = 1.0f / sqrtf((float)(D / c->heads));
    for (int l = 0; l < c->depth; l++) {
        vit_block_weights *b = &w->blocks[l];
        vit_block_mem *o = &m->blocks[l];
        for (long i = 0; i < D * D; i++) b->qkv_w[i] *= qscale; /* q rows: softmax(q k^T / sqrt(dh)) */
        for (long i = 0; i < D; i++) b->qkv_b[i] *= qscale;
        if (pack_linear(m, &o->qkv_w, b->qkv_w, probe, D, 3 * D, a, a, 1, VIT_POST_NONE, "qkv", err) ||
            pack_linear(m, &o->proj_w, b->proj_w, probe, D, D, a, f32, 1, VIT_POST_SUM, "out proj", err) ||
            pack_linear(m, &o->fc1_w, b->fc1_w, probe, D, M, a, a, 1, VIT_POST_GELU, "fc1", err) ||
            pack_linear(m, &o->fc2_w, b->fc2_w, probe, M, D, a, f32, 1, VIT_POST_SUM, "fc2", err) ||
            vec_mem(m, &o->qkv_b, b->qkv_b, 2, (dnnl_dim_t[]){1, 3 * D}, err) ||
            vec_mem(m, &o->proj_b, b->proj_b, 2, (dnnl_dim_t[]){1, D}, err) ||
            vec_mem(m, &o->fc1_b, b->fc1_b, 2, (dnnl_dim_t[]){1, M}, err) ||
            vec_mem(m, &o->fc2_b, b->fc2_b, 2, (dnnl_dim_t[]){1, D}, err) ||
            vec_mem(m, &o->ln1_w, b->ln1_w, 1, (dnnl_dim_t[]){D}, err) ||
            vec_mem(m, &o->ln1_b, b->ln1_b, 1, (dnnl_dim_t[]){D}, err) ||
            vec_mem(m, &o->ln2_w, b->ln2_w, 1, (dnnl_dim_t[]){D}, err) ||
            vec_mem(m, &o->ln2_b, b->ln2_b, 1, (dnnl_dim_t[]){D}, err))
            return -1;
    }
    return 0;
}

/* ---- public ---- */

int vit_load(vit_model **out, const char *spec, vit_precision prec, dnn_ctx *ctx, char *sha256_hex,
             char *err)
{
    *out = NULL;
    vit_weights w;
    if (weights_from_spec(spec, &w, sha256_hex, err)) return -1;
    vit_model *m = calloc(1, sizeof *m);
    if (!m) {
        vit_weights_free(&w);
        return errf(err, "%s: out of memory", spec);
    }
    m->cfg = w.cfg;
    m->ctx = ctx;
    const vit_config *c = &m->cfg;
    if (c->image % c->patch || c->width % c->heads) {
        errf(err, "%s: inconsistent configuration (image %d, patch %d, width %d, heads %d)", spec,
             c->image, c->patch, c->width, c->heads);
        vit_weights_free(&w);
        free(m);
        return -1;
    }
    choose_precision(m, prec);
    int rc = pack_model(m, &w, err);
    vit_weights_free(&w);
    if (rc) {
        vit_free(m);
        return -1;
    }
    log_info("vit: %s: %d blocks, width %d, %d heads, mlp %d, patch %d at %d px (%dx%d grid), "
             "features %d, %s", c->name, c->depth, c->width, c->heads, c->mlp, c->patch, c->image,
             c->image / c->patch, c->image / c->patch, c->out_dim, m->prec == VIT_BF16 ? "bf16" : "fp32");
    *out = m;
    return 0;
}

static void mem_free(dnnl_memory_t m)
{
    if (m) dnnl_memory_destroy(m);
}

void vit_free(vit_model *m)
{
    if (!m) return;
    vit_plans_free(m);
    if (m->blocks) {
        for (int l = 0; l < m->cfg.depth; l++) {
            vit_block_mem *b = &m->blocks[l];
            dnnl_memory_t all[] = {b->qkv_w.mem, b->proj_w.mem, b->fc1_w.mem, b->fc2_w.mem, b->qkv_b,
                                   b->proj_b, b->fc1_b, b->fc2_b, b->ln1_w, b->ln1_b, b->ln2_w, b->ln2_b};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mem_free(all[i]);
        }
    }
    dnnl_memory_t all[] = {m->embed_w.mem, m->embed_b, m->pos, m->pre_w, m->pre_b, m->norm_w,
                           m->norm_b, m->head_w.mem};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mem_free(all[i]);
    free(m->blocks);
    free(m->cls);
    free(m);
}

const vit_config *vit_get_config(const vit_model *m) { return &m->cfg; }

vit_precision vit_get_precision(const vit_model *m) { return m->prec; }

int vit_grid(const vit_model *m) { return m->cfg.image / m->cfg.patch; }

long vit_token_floats(const vit_model *m, int B)
{
    long g = vit_grid(m);
    return (long)B * (1 + g * g) * m->cfg.width;
}
