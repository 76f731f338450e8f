/* off_mesh.c -- OFF parser and area-weighted surface sampling (see off_mesh.h). */
#include "off_mesh.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "rng.h"

/* The longest line of an .off file we read (a vertex or a face: a few numbers). */
#define OFF_LINE_LEN 4096

typedef struct {
    FILE *fp;
    long lineno;
    char line[OFF_LINE_LEN];
} line_reader;

/* Next line that is not empty and not a comment; 0 at end of file. */
static int next_line(line_reader *r)
{
    while (fgets(r->line, sizeof r->line, r->fp)) {
        r->lineno++;
        char *h = strchr(r->line, '#');
        if (h) *h = 0;
        char *p = r->line;
        while (isspace((unsigned char)*p)) p++;
        if (*p) return 1;
    }
    return 0;
}

static int parse_counts(const char *s, long *nv, long *nf)
{
    long ne;
    return sscanf(s, "%ld %ld %ld", nv, nf, &ne) >= 2 ? 0 : -1;
}

static char *skip_space(char *p)
{
    while (isspace((unsigned char)*p)) p++;
    return p;
}

/* The next token after p: the rest of this line, or the next line that has something. */
static int next_token(line_reader *r, char **p)
{
    *p = skip_space(*p);
    if (**p) return 1;
    if (!next_line(r)) return 0;
    *p = skip_space(r->line);
    return 1;
}

/* The header keyword [ST][C][N][4][n]OFF (Geomview's OFF). The prefixes announce per-vertex fields
 * after x y z (normal, colour, texture coordinates: read and ignored), a 4th coordinate (4) or a
 * dimension line (n). Leaves *p after "OFF" (counts may be glued to it: "OFF1234 567 0").
 * Refuses, naming the variant: 4-D vertices, nOFF of another dimension than 3, binary OFF, and
 * any other prefix. */
static int parse_header(line_reader *r, const char *path, char **p, char *err)
{
    char *tok = skip_space(r->line);
    size_t len = strcspn(tok, " \t\r\n\v\f");
    char *off = NULL;
    for (size_t i = 0; i + 3 <= len; i++)
        if (!strncmp(tok + i, "OFF", 3)) { off = tok + i; break; }
    if (!off) return errf(err, "%s: line %ld: no OFF header", path, r->lineno);
    int keyword_len = (int)(off - tok) + 3; /* the variant as written, for messages */
    if (keyword_len > 40) keyword_len = 40;
    /* Geomview's order is ST C N 4 n; any order is accepted, each prefix once. */
    static const char *const prefixes[] = {"ST", "C", "N", "4", "n"};
    enum { P_ST, P_C, P_N, P_4, P_N_DIM, P_COUNT };
    int seen[P_COUNT] = {0};
    for (char *c = tok; c < off;) {
        int k = 0;
        while (k < P_COUNT && strncmp(c, prefixes[k], strlen(prefixes[k]))) k++;
        if (k == P_COUNT || seen[k])
            return errf(err, "%s: line %ld: unknown OFF variant '%.*s' (read: OFF, COFF, NOFF, CNOFF, "
                        "STOFF and their combinations, nOFF of dimension 3)", path, r->lineno,
                        keyword_len, tok);
        seen[k] = 1;
        c += strlen(prefixes[k]);
    }
    if (seen[P_4])
        return errf(err, "%s: line %ld: OFF variant '%.*s' has 4-D vertices; only 3-D meshes are read",
                    path, r->lineno, keyword_len, tok);
    *p = off + 3;
    char *rest = skip_space(*p);
    if (!strncmp(rest, "BINARY", 6))
        return errf(err, "%s: line %ld: binary OFF ('%.*s BINARY') is not supported; write it as text",
                    path, r->lineno, keyword_len, tok);
    if (seen[P_N_DIM]) {
        char variant[48];
        snprintf(variant, sizeof variant, "%.*s", keyword_len, tok);
        if (!next_token(r, p)) return errf(err, "%s: no dimension after %s", path, variant);
        char *end;
        errno = 0;
        long dim = strtol(*p, &end, 10);
        if (end == *p || errno || (*end && !isspace((unsigned char)*end)))
            return errf(err, "%s: line %ld: malformed dimension after %s", path, r->lineno, variant);
        if (dim != 3)
            return errf(err, "%s: line %ld: OFF variant '%s' with dimension %ld; only dimension 3 is read",
                        path, r->lineno, variant, dim);
        *p = end;
    }
    return 0;
}

static int read_body(line_reader *r, const char *path, off_mesh *m, char *err)
{
    if (!next_line(r)) return errf(err, "%s: empty file, not an OFF mesh", path);
    char *p;
    if (parse_header(r, path, &p, err)) return -1;
    long nv = -1, nf = -1;
    if (!next_token(r, &p)) return errf(err, "%s: no vertex/face counts after OFF", path);
    if (parse_counts(p, &nv, &nf) || nv < 0 || nf < 0 || nv > 100000000L || nf > 100000000L)
        return errf(err, "%s: line %ld: malformed counts (want: vertices faces edges)", path, r->lineno);
    if (nv < 3 || nf < 1) return errf(err, "%s: mesh has %ld vertices and %ld faces: nothing to sample", path, nv, nf);
    /* The arrays grow with what the file holds: counts alone (a few bytes) allocate little. */
    long vcap = nv < 4096 ? nv : 4096;
    long cap = (nf < 4096 ? nf : 4096) + 16;
    m->vertices = malloc(sizeof(double) * 3 * (size_t)vcap);
    m->triangles = malloc(sizeof(int32_t) * 3 * (size_t)cap);
    if (!m->vertices || !m->triangles) return errf(err, "%s: out of memory", path);
    for (long i = 0; i < nv; i++) {
        if (!next_line(r)) return errf(err, "%s: file ends after %ld of %ld vertices", path, i, nv);
        if (i == vcap) {
            vcap = vcap * 2 < nv ? vcap * 2 : nv;
            double *v = realloc(m->vertices, sizeof(double) * 3 * (size_t)vcap);
            if (!v) return errf(err, "%s: out of memory", path);
            m->vertices = v;
        }
        double *v = m->vertices + 3 * i;
        m->n_vertices = i + 1;
        /* x y z first; what follows (normal, colour, texture) is ignored */
        if (sscanf(r->line, "%lf %lf %lf", &v[0], &v[1], &v[2]) != 3)
            return errf(err, "%s: line %ld: malformed vertex (want: x y z)", path, r->lineno);
        if (!isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2]))
            return errf(err, "%s: line %ld: vertex %ld has a NaN or Inf coordinate", path, r->lineno, i);
    }
    for (long f = 0; f < nf; f++) {
        if (!next_line(r)) return errf(err, "%s: file ends after %ld of %ld faces", path, f, nf);
        char *s = r->line, *end;
        long k = strtol(s, &end, 10);
        if (end == s || k < 3 || k > 1000)
            return errf(err, "%s: line %ld: malformed face (want: n i1 ... in, n >= 3)", path, r->lineno);
        long idx[1000];
        for (long j = 0; j < k; j++) {
            s = end;
            idx[j] = strtol(s, &end, 10);
            if (end == s) return errf(err, "%s: line %ld: face has fewer than %ld indices", path, r->lineno, k);
            if (idx[j] < 0 || idx[j] >= nv)
                return errf(err, "%s: line %ld: vertex index %ld outside [0, %ld)", path, r->lineno, idx[j], nv);
        }
        for (long j = 1; j + 1 < k; j++) { /* fan triangulation */
            if (m->n_triangles == cap) {
                cap *= 2;
                int32_t *t = realloc(m->triangles, sizeof(int32_t) * 3 * (size_t)cap);
                if (!t) return errf(err, "%s: out of memory", path);
                m->triangles = t;
            }
            int32_t *t = m->triangles + 3 * m->n_triangles++;
            t[0] = (int32_t)idx[0];
            t[1] = (int32_t)idx[j];
            t[2] = (int32_t)idx[j + 1];
        }
    }
    return 0;
}

int off_mesh_read(const char *path, off_mesh *m, char *err)
{
    memset(m, 0, sizeof *m);
    line_reader r = {fopen(path, "r"), 0, ""};
    if (!r.fp) return errf(err, "%s: %s", path, strerror(errno));
    int rc = read_body(&r, path, m, err);
    fclose(r.fp);
    if (rc) off_mesh_free(m);
    return rc;
}

void off_mesh_free(off_mesh *m)
{
    free(m->vertices);
    free(m->triangles);
    memset(m, 0, sizeof *m);
}

static double triangle_area(const double *a, const double *b, const double *c)
{
    double u[3], v[3];
    for (int d = 0; d < 3; d++) { u[d] = b[d] - a[d]; v[d] = c[d] - a[d]; }
    double x = u[1] * v[2] - u[2] * v[1], y = u[2] * v[0] - u[0] * v[2], z = u[0] * v[1] - u[1] * v[0];
    return 0.5 * sqrt(x * x + y * y + z * z);
}

int off_mesh_sample(const off_mesh *m, long P, uint64_t seed, uint64_t stream, float *out,
                    const char *path, char *err)
{
    double *cum = malloc(sizeof(double) * (size_t)(m->n_triangles ? m->n_triangles : 1));
    if (!cum) return errf(err, "%s: out of memory", path);
    double total = 0;
    for (long t = 0; t < m->n_triangles; t++) {
        const int32_t *f = m->triangles + 3 * t;
        total += triangle_area(m->vertices + 3 * f[0], m->vertices + 3 * f[1], m->vertices + 3 * f[2]);
        cum[t] = total;
    }
    if (!(total > 0)) {
        free(cum);
        return errf(err, "%s: mesh has zero surface area", path);
    }
    rng_t r;
    rng_seed(&r, seed, stream);
    for (long i = 0; i < P; i++) {
        double x = rng_uniform(&r) * total;
        long lo = 0, hi = m->n_triangles - 1; /* first t with cum[t] > x */
        while (lo < hi) {
            long mid = (lo + hi) / 2;
            if (cum[mid] > x) hi = mid;
            else lo = mid + 1;
        }
        const int32_t *f = m->triangles + 3 * lo;
        const double *a = m->vertices + 3 * f[0], *b = m->vertices + 3 * f[1], *c = m->vertices + 3 * f[2];
        double u = rng_uniform(&r), v = rng_uniform(&r);
        if (u + v > 1) { u = 1 - u; v = 1 - v; }
        for (int d = 0; d < 3; d++) out[3 * i + d] = (float)(a[d] + u * (b[d] - a[d]) + v * (c[d] - a[d]));
    }
    free(cum);
    return 0;
}
