/* m3_layout.c -- the parameter-table builder of m3_layout.h. */
#include "m3_layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long m3_layout_tensor(m3_layout *L, int decay, int rank, const int *shape, const char *fmt, ...)
{
    long count = 1;
    for (int i = 0; i < rank; i++) count *= shape[i];
    long off = L->n_params;
    if (L->tensors) {
        model3d_tensor *t = &L->tensors[L->n_tensors];
        memset(t, 0, sizeof *t);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof t->name, fmt, ap);
        va_end(ap);
        t->offset = off;
        t->count = count;
        t->rank = rank;
        for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
        t->decay = decay;
    }
    L->n_tensors++;
    L->n_params += count;
    return off;
}

m3_linear m3_layout_linear(m3_layout *L, int in, int out, int bias, const char *name)
{
    m3_linear l = {.in = in, .out = out, .b = -1};
    int ws[2] = {out, in}, bs[1] = {out};
    l.w = m3_layout_tensor(L, 1, 2, ws, "%s.weight", name);
    if (bias) l.b = m3_layout_tensor(L, 0, 1, bs, "%s.bias", name);
    return l;
}

m3_norm m3_layout_norm(m3_layout *L, int C, const char *name)
{
    m3_norm n = {.C = C};
    int s[1] = {C};
    n.w = m3_layout_tensor(L, 0, 1, s, "%s.weight", name);
    n.b = m3_layout_tensor(L, 0, 1, s, "%s.bias", name);
    return n;
}

m3_bn m3_layout_bn(m3_layout *L, int C, const char *name)
{
    m3_norm wb = m3_layout_norm(L, C, name);
    m3_bn n = {.w = wb.w, .b = wb.b, .C = C};
    n.run_mean = L->n_buffers;
    n.run_var = L->n_buffers + C;
    if (L->buffer_tensors)
        for (int i = 0; i < 2; i++) {
            model3d_tensor *t = &L->buffer_tensors[L->n_buffer_tensors + i];
            memset(t, 0, sizeof *t);
            snprintf(t->name, sizeof t->name, "%s.%s", name, i ? "running_var" : "running_mean");
            t->offset = L->n_buffers + i * C;
            t->count = C;
            t->rank = 1;
            t->shape[0] = C;
        }
    L->n_buffer_tensors += 2;
    L->n_buffers += 2 * C;
    return n;
}

m3_group m3_layout_group(m3_layout *L, int cin, int a, int b, int c, int cout, const char *name)
{
    char n[96];
    m3_group g;
    snprintf(n, sizeof n, "%s.conv1", name); g.conv1 = m3_layout_linear(L, cin, a, 1, n);
    snprintf(n, sizeof n, "%s.bn1", name);   g.bn1 = m3_layout_bn(L, a, n);
    snprintf(n, sizeof n, "%s.conv2", name); g.conv2 = m3_layout_linear(L, a, b, 1, n);
    snprintf(n, sizeof n, "%s.conv3", name); g.conv3 = m3_layout_linear(L, 2 * b, c, 1, n);
    snprintf(n, sizeof n, "%s.bn2", name);   g.bn2 = m3_layout_bn(L, c, n);
    snprintf(n, sizeof n, "%s.conv4", name); g.conv4 = m3_layout_linear(L, c, cout, 1, n);
    return g;
}

m3_pos m3_layout_pos(m3_layout *L, int C, const char *name)
{
    char n[96];
    m3_pos p;
    snprintf(n, sizeof n, "%s.fc1", name); p.fc1 = m3_layout_linear(L, 3, C, 1, n);
    snprintf(n, sizeof n, "%s.fc2", name); p.fc2 = m3_layout_linear(L, C, C, 1, n);
    return p;
}

void m3_layout_block(m3_layout *L, m3_block *b, int C, const char *name)
{
    char n[128];
    b->C = C;
    snprintf(n, sizeof n, "%s.norm1", name);     b->norm1 = m3_layout_norm(L, C, n);
    snprintf(n, sizeof n, "%s.attn.qkv", name);  b->qkv = m3_layout_linear(L, C, 3 * C, 0, n);
    snprintf(n, sizeof n, "%s.attn.proj", name); b->proj = m3_layout_linear(L, C, C, 1, n);
    snprintf(n, sizeof n, "%s.norm2", name);     b->norm2 = m3_layout_norm(L, C, n);
    snprintf(n, sizeof n, "%s.mlp.fc1", name);   b->fc1 = m3_layout_linear(L, C, 4 * C, 1, n);
    snprintf(n, sizeof n, "%s.mlp.fc2", name);   b->fc2 = m3_layout_linear(L, 4 * C, C, 1, n);
}

void m3_layout_blocks(m3_layout *L, m3_stage *st, int C, const char *prefix)
{
    char n[96];
    for (int i = 0; i < st->depth; i++) {
        snprintf(n, sizeof n, "%s.blocks.%d", prefix, i);
        m3_layout_block(L, &st->blocks[i], C, n);
    }
}

void m3_layout_encoder(m3_layout *L, m3_group embed[3], m3_stage enc[3], const model3d_config *c,
                       int stage_norms)
{
    const int *h = c->embed_hidden;
    embed[0] = m3_layout_group(L, 3, h[0], h[1], h[2], c->dims[0], "embed0");
    embed[1] = m3_layout_group(L, c->dims[0], c->dims[0], c->dims[0], c->dims[1], c->dims[1], "merge1");
    embed[2] = m3_layout_group(L, c->dims[1], c->dims[1], c->dims[1], c->dims[2], c->dims[2], "merge2");
    char n[96];
    for (int s = 0; s < 3; s++) {
        snprintf(n, sizeof n, "encoder.%d.pos", s);
        enc[s].pos = m3_layout_pos(L, c->dims[s], n);
        snprintf(n, sizeof n, "encoder.%d", s);
        m3_layout_blocks(L, &enc[s], c->dims[s], n);
        if (!stage_norms) continue;
        snprintf(n, sizeof n, "encoder.%d.norm", s);
        enc[s].norm = m3_layout_norm(L, c->dims[s], n);
    }
}

int m3_stages_alloc(m3_stage *st, int n, const int *depths)
{
    for (int s = 0; s < n; s++) {
        st[s].depth = depths[s];
        st[s].blocks = calloc((size_t)(depths[s] + 1), sizeof(m3_block));
        if (!st[s].blocks) return -1;
    }
    return 0;
}

void m3_stages_free(m3_stage *st, int n)
{
    for (int s = 0; s < n; s++) free(st[s].blocks);
}

void m3_stages_drop_path(m3_stage *st, int n, double drop_path)
{
    int total = 0, i = 0;
    for (int s = 0; s < n; s++) total += st[s].depth;
    for (int s = 0; s < n; s++)
        for (int j = 0; j < st[s].depth; j++, i++)
            st[s].blocks[j].drop_rate = total > 1 ? drop_path * i / (total - 1) : 0;
}
