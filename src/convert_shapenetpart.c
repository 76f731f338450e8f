/* convert_shapenetpart.c -- the ShapeNetPart part-segmentation release (convert_shapenetpart.h). */
#include "convert_shapenetpart.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "paths.h"
#include "pointops.h"
#include "rng.h"

/* Point-M2AE's seg_classes: the categories (label order, as synsetoffset2category.txt lists them)
 * and their numbers of parts. */
static const struct {
    const char *name;
    int parts;
} categories[SHAPENETPART_CATEGORIES] = {
    {"Airplane", 4}, {"Bag", 2},   {"Cap", 2},   {"Car", 4},      {"Chair", 4},  {"Earphone", 3},
    {"Guitar", 3},   {"Knife", 2}, {"Lamp", 4},  {"Laptop", 2},   {"Motorbike", 6}, {"Mug", 2},
    {"Pistol", 3},   {"Rocket", 3}, {"Skateboard", 3}, {"Table", 3}};

static char *read_text(const char *path, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        fclose(f);
        errf(err, "%s: cannot read", path);
        return NULL;
    }
    s[n] = 0;
    fclose(f);
    return s;
}

/* synsets[16] from DIR/synsetoffset2category.txt, checked against the known categories. */
static int read_categories(const char *dir, char synsets[][16], char *err)
{
    char path[I2P_PATH_LEN];
    snprintf(path, sizeof path, "%s/synsetoffset2category.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return errf(err, "%s: %s (not the shapenetcore_partanno_segmentation_benchmark_v0_normal directory?)",
                        path, strerror(errno));
    char line[256], name[128], syn[64];
    int n = 0, lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (sscanf(line, "%127s %63s", name, syn) != 2) continue;
        if (n == SHAPENETPART_CATEGORIES) rc = errf(err, "%s:%d: more than %d categories", path, lineno, n);
        else if (strcmp(name, categories[n].name))
            rc = errf(err, "%s:%d: category '%s', expected '%s' (ShapeNetPart's 16 categories in order)", path,
                      lineno, name, categories[n].name);
        else if (strlen(syn) >= 16) rc = errf(err, "%s:%d: bad synset '%s'", path, lineno, syn);
        else snprintf(synsets[n++], 16, "%s", syn);
    }
    fclose(f);
    if (!rc && n != SHAPENETPART_CATEGORIES) rc = errf(err, "%s: %d categories, expected %d", path, n,
                                                       SHAPENETPART_CATEGORIES);
    return rc;
}

/* Appends the entries of one split list. */
static int read_list(shapenetpart_source *s, const char *dir, const char *which, char synsets[][16], char *err)
{
    char path[I2P_PATH_LEN];
    snprintf(path, sizeof path, "%s/train_test_split/shuffled_%s_file_list.json", dir, which);
    char *text = read_text(path, err);
    if (!text) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return errf(err, "%s: not a JSON array of \"shape_data/<synset>/<model>\"", path);
    }
    long add = cJSON_GetArraySize(j), at = s->n;
    char **files = realloc(s->files, sizeof(char *) * (size_t)(at + add + 1));
    int32_t *cat = realloc(s->category, sizeof(int32_t) * (size_t)(at + add + 1));
    if (files) s->files = files;
    if (cat) s->category = cat;
    if (!files || !cat) {
        cJSON_Delete(j);
        return errf(err, "%s: out of memory", path);
    }
    int rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        char syn[64], model[256];
        if (!cJSON_IsString(e) || sscanf(e->valuestring, "shape_data/%63[^/]/%255s", syn, model) != 2) {
            rc = errf(err, "%s: entry %ld is not \"shape_data/<synset>/<model>\"", path, s->n - at);
            break;
        }
        int c = -1;
        for (int k = 0; k < SHAPENETPART_CATEGORIES && c < 0; k++)
            if (!strcmp(synsets[k], syn)) c = k;
        if (c < 0) {
            rc = errf(err, "%s: entry %ld: synset %s is not in synsetoffset2category.txt", path, s->n - at, syn);
            break;
        }
        size_t len = strlen(dir) + strlen(syn) + strlen(model) + 8;
        char *file = malloc(len);
        if (!file) {
            rc = errf(err, "out of memory");
            break;
        }
        snprintf(file, len, "%s/%s/%s.txt", dir, syn, model);
        struct stat st;
        if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
            rc = errf(err, "%s: listed in %s (entry %ld) but missing", file, path, s->n - at);
            free(file);
            break;
        }
        s->files[s->n] = file;
        s->category[s->n++] = c;
    }
    cJSON_Delete(j);
    return rc;
}

int shapenetpart_open(shapenetpart_source *s, const char *dir, const char *split, char *err)
{
    memset(s, 0, sizeof *s);
    char synsets[SHAPENETPART_CATEGORIES][16];
    if (read_categories(dir, synsets, err)) return -1;
    int counts[SHAPENETPART_CATEGORIES];
    size_t cl = 0, pl = 0;
    for (int c = 0; c < SHAPENETPART_CATEGORIES; c++) {
        counts[c] = categories[c].parts;
        cl += (size_t)snprintf(s->class_names + cl, sizeof s->class_names - cl, "%s%s", c ? "\n" : "",
                               categories[c].name);
        for (int p = 0; p < counts[c]; p++)
            pl += (size_t)snprintf(s->part_names + pl, sizeof s->part_names - pl, "%s%s/%d", pl ? "\n" : "",
                                   categories[c].name, p);
    }
    if (part_table_from_counts(&s->parts, counts, SHAPENETPART_CATEGORIES, err)) return -1;
    int rc;
    if (!strcmp(split, "trainval")) rc = read_list(s, dir, "train", synsets, err) || read_list(s, dir, "val", synsets, err);
    else rc = read_list(s, dir, split, synsets, err);
    if (!rc && s->n == 0) rc = errf(err, "%s: the %s split lists no shapes", dir, split);
    if (rc) shapenetpart_free(s);
    return rc ? -1 : 0;
}

/* All rows of one shape: xyz (n,3), part (n). */
static int read_shape(const char *path, int c, const part_table *t, float **xyz, int32_t **part, long *n, char *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return errf(err, "%s: %s", path, strerror(errno));
    long cap = 4096, k = 0, lineno = 0;
    float *x = malloc(sizeof(float) * 3 * (size_t)cap);
    int32_t *p = malloc(sizeof(int32_t) * (size_t)cap);
    char line[1024];
    int rc = x && p ? 0 : errf(err, "%s: out of memory", path);
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        double v[7];
        char *s = line, *end;
        int got = 0;
        for (; got < 7; got++) {
            v[got] = strtod(s, &end);
            if (end == s) break;
            s = end;
        }
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
        if (got == 0 && !*s) continue; /* a blank line */
        if (got < 7) {
            rc = errf(err, "%s:%ld: %d numbers, expected 7 (x y z nx ny nz part)", path, lineno, got);
            break;
        }
        /* range first: converting a double outside int's range (1e20, NaN) is undefined */
        int lo = t->first[c], hi = t->first[c] + t->count[c];
        int id = v[6] >= lo && v[6] < hi ? (int)v[6] : -1;
        if (id < 0 || (double)id != v[6]) {
            rc = errf(err, "%s:%ld: part %g is not a part of %s (parts %d..%d)", path, lineno, v[6],
                      categories[c].name, t->first[c], t->first[c] + t->count[c] - 1);
            break;
        }
        if (k == cap) {
            cap *= 2;
            float *nx = realloc(x, sizeof(float) * 3 * (size_t)cap);
            int32_t *np = realloc(p, sizeof(int32_t) * (size_t)cap);
            if (nx) x = nx;
            if (np) p = np;
            if (!nx || !np) {
                rc = errf(err, "%s: out of memory", path);
                break;
            }
        }
        for (int d = 0; d < 3; d++) x[3 * k + d] = (float)v[d];
        p[k++] = id;
    }
    fclose(f);
    if (!rc && k == 0) rc = errf(err, "%s: an empty shape (no points)", path);
    if (!rc && !pc_all_finite(x, 3 * k)) rc = errf(err, "%s: a NaN or Inf coordinate", path);
    if (rc) {
        free(x);
        free(p);
        return -1;
    }
    *xyz = x;
    *part = p;
    *n = k;
    return 0;
}

int shapenetpart_load(const shapenetpart_source *s, long start, long count, long P_out, uint64_t seed,
                      float *points, int32_t *category, int32_t *seg, char *err)
{
    for (long i = 0; i < count; i++) {
        long id = start + i, n = 0;
        int c = s->category[id];
        float *xyz = NULL;
        int32_t *part = NULL;
        if (read_shape(s->files[id], c, &s->parts, &xyz, &part, &n, err)) return -1;
        pc_normalize_unit_sphere(xyz, n);
        rng_t r;
        rng_seed(&r, seed, (uint64_t)id);
        for (long k = 0; k < P_out; k++) {
            long j = (long)rng_below(&r, (uint64_t)n);
            memcpy(points + (i * P_out + k) * 3, xyz + 3 * j, sizeof(float) * 3);
            seg[i * P_out + k] = part[j];
        }
        category[i] = c;
        free(xyz);
        free(part);
    }
    return 0;
}

void shapenetpart_free(shapenetpart_source *s)
{
    for (long i = 0; i < s->n; i++) free(s->files[i]);
    free(s->files);
    free(s->category);
    memset(s, 0, sizeof *s);
}
