/* npy.c -- .npy header parser and (P,3) point reader (see npy.h).
 *
 * File layout: "\x93NUMPY", major, minor, header length (uint16 LE for v1, uint32 LE for v2/v3),
 * then an ASCII Python dict {'descr': '<f4', 'fortran_order': False, 'shape': (P, 3), } padded
 * with spaces and a newline, then the raw data.
 */
#include "npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"

typedef struct {
    int itemsize;     /* 4 or 8 */
    long rows, cols;
    long data_offset;
} npy_header;

/* Finds the value text after 'key': in the header dict. */
static const char *dict_value(const char *h, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\"", key);
        p = strstr(h, pat);
    }
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

/* "(a, b" as two longs (what follows is not checked); -1 if malformed or out of range. */
static int parse_shape(const char *s, long *a, long *b)
{
    char *end;
    if (*s++ != '(') return -1;
    errno = 0;
    *a = strtol(s, &end, 10);
    if (end == s || errno) return -1;
    s = end;
    while (*s == ' ') s++;
    if (*s++ != ',') return -1;
    *b = strtol(s, &end, 10);
    return end == s || errno ? -1 : 0;
}

static int parse_header(FILE *fp, const char *path, npy_header *out, char *err)
{
    unsigned char pre[10];
    if (fread(pre, 1, 8, fp) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return errf(err, "%s: not a .npy file (bad magic)", path);
    int major = pre[6];
    long hlen, off;
    if (major == 1) {
        if (fread(pre + 8, 1, 2, fp) != 2) return errf(err, "%s: truncated .npy header", path);
        hlen = pre[8] | (long)pre[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        unsigned char l[4];
        if (fread(l, 1, 4, fp) != 4) return errf(err, "%s: truncated .npy header", path);
        hlen = l[0] | (long)l[1] << 8 | (long)l[2] << 16 | (long)l[3] << 24;
        off = 12;
    } else {
        return errf(err, "%s: unsupported .npy format version %d", path, major);
    }
    if (hlen <= 0 || hlen > 1 << 20) return errf(err, "%s: .npy header length %ld is invalid", path, hlen);
    char *h = malloc((size_t)hlen + 1);
    if (!h) return errf(err, "%s: out of memory", path);
    if (fread(h, 1, (size_t)hlen, fp) != (size_t)hlen) {
        free(h);
        return errf(err, "%s: truncated .npy header", path);
    }
    h[hlen] = 0;
    int rc = 0;
    const char *descr = dict_value(h, "descr"), *fo = dict_value(h, "fortran_order"),
               *shape = dict_value(h, "shape");
    if (!descr || !fo || !shape) {
        rc = errf(err, "%s: malformed .npy header (needs descr, fortran_order, shape): %.80s", path, h);
    } else if ((descr[0] == '\'' || descr[0] == '"') &&
               (!strncmp(descr + 1, "<f4", 3) || !strncmp(descr + 1, "<f8", 3))) {
        out->itemsize = descr[3] == '4' ? 4 : 8;
        if (strncmp(fo, "False", 5) != 0) {
            rc = errf(err, "%s: Fortran-order .npy arrays are not supported", path);
        } else {
            long a = -1, b = -1;
            if (parse_shape(shape, &a, &b) || a < 0 || b != 3)
                rc = errf(err, "%s: .npy shape %.*s is not (P, 3)", path,
                          (int)(strcspn(shape, ")") + 1), shape);
            out->rows = a;
            out->cols = b;
            /* the data must be in the file: checked before any size is computed or allocated */
            struct stat st;
            if (!rc && fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) &&
                a > ((long)st.st_size - off - hlen) / (3 * out->itemsize))
                rc = errf(err, "%s: .npy data truncated (header says (%ld, 3))", path, a);
        }
    } else {
        size_t n = strcspn(descr, ",}\r\n"); /* the value only: a header line is not a message */
        rc = errf(err, "%s: .npy dtype %.*s is not little-endian float32/float64", path,
                  (int)(n < 8 ? n : 8), descr);
    }
    free(h);
    out->data_offset = off + hlen;
    return rc;
}

int npy_points_count(const char *path, long *points, char *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return errf(err, "%s: %s", path, strerror(errno));
    npy_header h;
    int rc = parse_header(fp, path, &h, err);
    fclose(fp);
    if (!rc) *points = h.rows;
    return rc;
}

int npy_read_points(const char *path, float **pts, long *points, char *err)
{
    *pts = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return errf(err, "%s: %s", path, strerror(errno));
    npy_header h;
    if (parse_header(fp, path, &h, err)) { fclose(fp); return -1; }
    size_t n = (size_t)h.rows * 3;
    void *raw = malloc(n * (size_t)h.itemsize + 1);
    float *out = malloc(n * sizeof(float) + 1);
    int rc = 0;
    if (!raw || !out) rc = errf(err, "%s: out of memory for %ld points", path, h.rows);
    else if (fread(raw, (size_t)h.itemsize, n, fp) != n)
        rc = errf(err, "%s: .npy data truncated (header says (%ld, 3))", path, h.rows);
    fclose(fp);
    if (!rc) {
        if (h.itemsize == 4) memcpy(out, raw, n * sizeof(float));
        else for (size_t i = 0; i < n; i++) out[i] = (float)((double *)raw)[i];
        *pts = out;
        *points = h.rows;
    } else {
        free(out);
    }
    free(raw);
    return rc;
}
