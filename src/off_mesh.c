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

static int read_body(line_reader *r, const char *path, off_mesh *m, char *err)
{
    if (!next_line(r)) return errf(err, "%s: empty file, not an OFF mesh", path);
    char *p = r->line;
    while (isspace((unsigned char)*p)) p++;
    if (strncmp(p, "OFF", 3) != 0) return errf(err, "%s: line %ld: no OFF header", path, r->lineno);
    p += 3;
    while (isspace((unsigned char)*p)) p++;
    long nv = -1, nf = -1;
    if (!*p) {
        if (!next_line(r)) return errf(err, "%s: no vertex/face counts after OFF", path);
        p = r->line;
    }
    if (parse_counts(p, &nv, &nf) || nv < 0 || nf < 0 || nv > 100000000L || nf > 100000000L)
        return errf(err, "%s: line %ld: malformed counts (want: vertices faces edges)", path, r->lineno);
    if (nv < 3 || nf < 1) return errf(err, "%s: mesh has %ld vertices and %ld faces: nothing to sample", path, nv, nf);
    m->n_vertices = nv;
    m->vertices = malloc(sizeof(double) * 3 * (size_t)nv);
    long cap = nf + 16;
    m->triangles = malloc(sizeof(int32_t) * 3 * (size_t)cap);
    if (!m->vertices || !m->triangles) return errf(err, "%s: out of memory", path);
    for (long i = 0; i < nv; i++) {
        if (!next_line(r)) return errf(err, "%s: file ends after %ld of %ld vertices", path, i, nv);
        double *v = m->vertices + 3 * i;
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
