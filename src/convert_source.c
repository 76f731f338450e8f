/* convert_source.c -- scanning the real dataset layouts into an ordered sample list
 * (see convert_source.h; loading is in convert_load.c). */
#include "convert_source.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "errors.h"
#include "npy.h"
#include "paths.h"

/* The longest line of a ShapeNet55 split list or a ScanObjectNN/ModelNet class list. */
#define LIST_LINE_LEN 1024

/* ScanObjectNN's 15 classes, in label order (its shape_names.txt). */
static const char scanobjectnn_names[] =
    "bag\nbin\nbox\ncabinet\nchair\ndesk\ndisplay\ndoor\nshelf\ntable\nbed\npillow\nsink\nsofa\ntoilet";

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir (files if want_dirs == 0, directories otherwise) ending in suffix. */
static int list_dir(const char *dir, const char *suffix, int want_dirs, char ***out, long *n, char *err)
{
    DIR *d = opendir(dir);
    if (!d) return errf(err, "%s: %s", dir, strerror(errno));
    long cap = 64, k = 0;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t l = strlen(e->d_name), ls = strlen(suffix);
        if (l < ls || strcmp(e->d_name + l - ls, suffix) != 0) continue;
        char *full = join(dir, e->d_name);
        int ok = want_dirs ? is_dir(full) : is_file(full);
        free(full);
        if (!ok) continue;
        if (k == cap) {
            cap *= 2;
            char **t = realloc(v, sizeof(char *) * (size_t)cap);
            if (!t) break;
            v = t;
        }
        v[k++] = strdup(e->d_name);
    }
    closedir(d);
    if (!v) return errf(err, "%s: out of memory", dir);
    qsort(v, (size_t)k, sizeof(char *), cmp_str);
    *out = v;
    *n = k;
    return 0;
}

static void free_list(char **v, long n)
{
    for (long i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static int add_item(convert_source *s, long *cap, char *path, int32_t label, char *err)
{
    if (s->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        char **it = realloc(s->items, sizeof(char *) * (size_t)*cap);
        if (it) s->items = it;
        int32_t *lb = realloc(s->labels, sizeof(int32_t) * (size_t)*cap);
        if (lb) s->labels = lb;
        if (!it || !lb) { free(path); return errf(err, "out of memory listing samples"); }
    }
    s->items[s->n] = path;
    s->labels[s->n++] = label;
    return 0;
}

/* ---- h5 releases ---- */

static int add_h5_file(convert_source *s, const char *path, char *err)
{
    dataset d;
    if (dataset_open(&d, path, MPI_COMM_SELF, err)) return -1;
    int rc = 0;
    if (s->n_files && d.points != s->points)
        rc = errf(err, "%s: clouds have %ld points but %s has %ld", path, d.points, s->files[0], s->points);
    if (!rc && !s->n_files && d.class_names[0])
        snprintf(s->class_names, sizeof s->class_names, "%s", d.class_names);
    if (!rc && d.n_classes > s->n_classes) s->n_classes = d.n_classes;
    if (!rc) {
        s->points = d.points;
        char **f = realloc(s->files, sizeof(char *) * (size_t)(s->n_files + 1));
        long *st = realloc(s->file_start, sizeof(long) * (size_t)(s->n_files + 2));
        if (f) s->files = f;
        if (st) s->file_start = st;
        if (!f || !st) rc = errf(err, "out of memory");
    }
    if (!rc) {
        s->files[s->n_files] = strdup(path);
        s->file_start[s->n_files] = s->n;
        s->n += d.n;
        s->file_start[++s->n_files] = s->n;
    }
    dataset_close(&d);
    return rc;
}

static int count_names(const char *names)
{
    if (!names[0]) return 0;
    int n = 1;
    for (const char *p = names; *p; p++) n += *p == '\n';
    return n;
}

static int open_modelnet40(convert_source *s, const char *dir, const char *split, char *err)
{
    if (!is_dir(dir)) return errf(err, "%s: not a directory (expected modelnet40_ply_hdf5_2048/)", dir);
    for (int k = 0;; k++) {
        char path[I2P_PATH_LEN];
        snprintf(path, sizeof path, "%s/ply_data_%s%d.h5", dir, split, k);
        if (!is_file(path)) break;
        if (add_h5_file(s, path, err)) return -1;
    }
    if (!s->n_files) return errf(err, "%s: no ply_data_%s0.h5 (expected the modelnet40_ply_hdf5_2048 directory)", dir, split);
    int names = count_names(s->class_names);
    if (names) {
        if (s->n_classes > names)
            return errf(err, "%s: labels go up to %d but shape_names.txt lists %d classes", dir,
                        s->n_classes - 1, names);
        s->n_classes = names;
    }
    return 0;
}

static int open_scanobjectnn(convert_source *s, const char *file, char *err)
{
    if (add_h5_file(s, file, err)) return -1;
    if (s->n_classes <= 15) {
        snprintf(s->class_names, sizeof s->class_names, "%s", scanobjectnn_names);
        s->n_classes = 15;
    }
    return 0;
}

/* ---- ShapeNet-55 npy ---- */

static char *find_list(const char *dir, const char *split)
{
    char name[64];
    snprintf(name, sizeof name, "%s.txt", split);
    char *p = join(dir, name);
    if (p && is_file(p)) return p;
    free(p);
    char sub[80];
    snprintf(sub, sizeof sub, "ShapeNet-55/%s", name);
    p = join(dir, sub);
    if (p && is_file(p)) return p;
    free(p);
    return NULL;
}

/* Reads the synset prefixes of a list file into names (unique, unsorted) */
static int collect_synsets(const char *list, char ***syn, long *n, long *cap, char *err)
{
    FILE *fp = fopen(list, "r");
    if (!fp) return errf(err, "%s: %s", list, strerror(errno));
    char line[LIST_LINE_LEN];
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = 0;
        char *dash = strchr(line, '-');
        if (!line[0] || !dash) continue;
        *dash = 0;
        long i = 0;
        while (i < *n && strcmp((*syn)[i], line) != 0) i++;
        if (i < *n) continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            char **t = realloc(*syn, sizeof(char *) * (size_t)*cap);
            if (!t) { fclose(fp); return errf(err, "out of memory"); }
            *syn = t;
        }
        (*syn)[(*n)++] = strdup(line);
    }
    fclose(fp);
    return 0;
}

static int open_shapenet55(convert_source *s, const char *dir, const char *split, char *err)
{
    if (!is_dir(dir)) return errf(err, "%s: not a directory (expected the ShapeNet55-34 directory)", dir);
    char *list = find_list(dir, split);
    if (!list) return errf(err, "%s: no %s.txt (nor ShapeNet-55/%s.txt)", dir, split, split);
    char tmp[I2P_PATH_LEN];
    snprintf(tmp, sizeof tmp, "%s", list);
    char *listdir = dirname(tmp);
    char *pc = join(dir, "shapenet_pc");
    if (pc && !is_dir(pc)) {
        free(pc);
        pc = join(listdir, "../shapenet_pc");
    }
    int rc = 0;
    if (!pc || !is_dir(pc)) rc = errf(err, "%s: no shapenet_pc/ directory with the .npy files", dir);
    /* class names: sorted synsets of train.txt and test.txt together */
    char **syn = NULL;
    long nsyn = 0, cap = 0;
    const char *splits[2] = {"train", "test"};
    for (int k = 0; k < 2 && !rc; k++) {
        char *l = find_list(dir, splits[k]);
        if (l) rc = collect_synsets(l, &syn, &nsyn, &cap, err);
        free(l);
    }
    if (!rc) {
        if (nsyn > 0) qsort(syn, (size_t)nsyn, sizeof(char *), cmp_str); /* syn is NULL when empty */
        size_t len = 0;
        for (long i = 0; i < nsyn && len < sizeof s->class_names; i++)
            len += (size_t)snprintf(s->class_names + len, sizeof s->class_names - len, "%s%s", i ? "\n" : "", syn[i]);
        s->n_classes = (int)nsyn;
        if (nsyn < 1 || nsyn > DATASET_MAX_CLASSES) rc = errf(err, "%s: %ld synsets listed", list, nsyn);
    }
    FILE *fp = rc ? NULL : fopen(list, "r");
    if (!rc && !fp) rc = errf(err, "%s: %s", list, strerror(errno));
    long icap = 0, lineno = 0;
    char line[LIST_LINE_LEN];
    while (fp && !rc && fgets(line, sizeof line, fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        char *dash = strchr(line, '-');
        if (!dash) { rc = errf(err, "%s:%ld: '%s' is not <synset>-<model>.npy", list, lineno, line); break; }
        *dash = 0;
        long c = 0;
        while (c < nsyn && strcmp(syn[c], line) != 0) c++;
        *dash = '-';
        rc = add_item(s, &icap, join(pc, line), (int32_t)c, err);
    }
    if (fp) fclose(fp);
    if (!rc && s->n == 0) rc = errf(err, "%s: lists no samples", list);
    if (!rc) rc = npy_points_count(s->items[0], &s->points, err); /* all files must match it */
    free_list(syn, nsyn);
    free(pc);
    free(list);
    return rc;
}

/* ---- OFF meshes ---- */

static int open_off(convert_source *s, const char *dir, const char *split, char *err)
{
    if (!is_dir(dir)) return errf(err, "%s: not a directory (expected ModelNet40/<class>/%s/*.off)", dir, split);
    char **classes;
    long nc;
    if (list_dir(dir, "", 1, &classes, &nc, err)) return -1;
    long icap = 0;
    int rc = 0, used = 0;
    size_t len = 0;
    for (long c = 0; c < nc && !rc; c++) {
        char sub[I2P_PATH_LEN];
        snprintf(sub, sizeof sub, "%s/%s/%s", dir, classes[c], split);
        if (!is_dir(sub)) continue;
        len += (size_t)snprintf(s->class_names + len, sizeof s->class_names - len, "%s%s", used ? "\n" : "", classes[c]);
        char **files;
        long nf;
        rc = list_dir(sub, ".off", 0, &files, &nf, err);
        for (long i = 0; !rc && i < nf; i++) rc = add_item(s, &icap, join(sub, files[i]), used, err);
        if (!rc) free_list(files, nf);
        used++;
    }
    free_list(classes, nc);
    s->n_classes = used;
    if (!rc && used > DATASET_MAX_CLASSES) rc = errf(err, "%s: %d classes, more than %d", dir, used, DATASET_MAX_CLASSES);
    if (!rc && s->n == 0) rc = errf(err, "%s: no <class>/%s/*.off meshes found", dir, split);
    return rc;
}

static const struct {
    const char *name, *source;
    convert_format format;
} formats[] = {{"modelnet40", "modelnet40-h5", FMT_MODELNET40},
               {"scanobjectnn", "scanobjectnn-h5", FMT_SCANOBJECTNN},
               {"shapenet55", "shapenet55-npy", FMT_SHAPENET55},
               {"off", "modelnet40-off", FMT_OFF}};

int convert_source_open(convert_source *s, const char *format, const char *input, const char *split,
                        char *err)
{
    memset(s, 0, sizeof *s);
    int k = 0, nf = (int)(sizeof formats / sizeof formats[0]);
    while (k < nf && strcmp(formats[k].name, format) != 0) k++;
    if (k == nf) return errf(err, "--format %s: unknown (modelnet40, scanobjectnn, shapenet55, off)", format);
    s->format = formats[k].format;
    s->source_name = formats[k].source;
    int rc = s->format == FMT_MODELNET40     ? open_modelnet40(s, input, split, err)
             : s->format == FMT_SCANOBJECTNN ? open_scanobjectnn(s, input, err)
             : s->format == FMT_SHAPENET55   ? open_shapenet55(s, input, split, err)
                                             : open_off(s, input, split, err);
    if (rc) convert_source_free(s);
    return rc;
}

void convert_source_free(convert_source *s)
{
    free_list(s->files, s->n_files);
    free(s->file_start);
    if (s->items) free_list(s->items, s->n);
    free(s->labels);
    s->files = s->items = NULL;
    s->file_start = NULL;
    s->labels = NULL;
}
