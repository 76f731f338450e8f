/* cli_info.c -- `i2pmae info FILE`: a readable summary of any HDF5 file this program writes.
 *
 * Prints the root attributes, every group and dataset (shape, type, chunking, filters, attributes),
 * then, where present: the label histogram with class names (/label), the extraction progress
 * (/done: samples marked done), and a checkpoint's kind, step and the commands that take it. Rank 0
 * reads the file alone (MPI_COMM_SELF); the other ranks only agree on the outcome.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt_kind.h"
#include "commands.h"
#include "dataset.h"
#include "dist.h"
#include "errors.h"
#include "h5io.h"

typedef struct {
    h5file *f;
    int n_datasets, n_groups;
    char *err;
} walk_state;

/* Prints an attribute value on one line: newlines shown as ", ", long values cut at 160 chars. */
static int print_attr(const char *name, const char *value, void *user)
{
    const char *indent = user;
    char line[200];
    size_t j = 0;
    for (size_t i = 0; value[i] && j < 160; i++) {
        if (value[i] == '\n') { line[j++] = ','; line[j++] = ' '; }
        else line[j++] = value[i];
    }
    line[j] = 0;
    size_t total = strlen(value);
    printf("%s@%s = %s%s\n", indent, name, line, total > j ? " ..." : "");
    return 0;
}

static void format_shape(int rank, const hsize_t *d, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "(");
    for (int i = 0; i < rank && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, i ? ",%llu" : "%llu", (unsigned long long)d[i]);
    if (len < n) snprintf(out + len, n - len, ")");
}

static int print_object(const h5_object *o, void *user)
{
    walk_state *w = user;
    if (!o->is_dataset) {
        w->n_groups++;
        printf("  %s/  (group)\n", o->name);
    } else {
        w->n_datasets++;
        char shape[160], chunk[160] = "contiguous";
        format_shape(o->rank, o->dims, shape, sizeof shape);
        if (o->chunked) {
            char c[150];
            format_shape(o->rank, o->chunk, c, sizeof c);
            snprintf(chunk, sizeof chunk, "chunks %s", c);
        }
        printf("  %-28s %-20s %-8s %s%s%s\n", o->name, shape, o->type, chunk,
               o->filters[0] ? ", " : "", o->filters);
    }
    return h5_attr_visit(w->f, o->name, print_attr, "      ", w->err) < 0 ? -1 : 0;
}

/* Label histogram with class names (from the class_names attribute or the dataset reader). */
static int print_labels(h5file *f, const char *path, cJSON *js, char *err)
{
    int rank;
    hsize_t dims[H5IO_MAX_RANK];
    if (h5_dims(f, "/label", &rank, dims, err)) return -1;
    if (h5_type_class(f, "/label", err) != H5T_INTEGER || rank > 2 || (rank == 2 && dims[1] != 1)) {
        printf("labels: /label is not a (N) integer dataset; no histogram\n");
        return 0;
    }
    long n = (long)dims[0];
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!lab) return errf(err, "%s: out of memory for %ld labels", path, n);
    if (h5_read_all(f, "/label", H5T_NATIVE_INT32, lab, err)) { free(lab); return -1; }
    char names_buf[8192] = "";
    if (h5_attr_exists(f, "/", "class_names")) {
        if (h5_attr_read_str(f, "/", "class_names", names_buf, sizeof names_buf, err)) { free(lab); return -1; }
    } else if (h5_exists(f, "/data")) { /* ModelNet40 h5: shape_names.txt next to the file */
        dataset d;
        char e2[I2P_ERR_LEN];
        if (!dataset_open(&d, path, MPI_COMM_SELF, e2)) {
            snprintf(names_buf, sizeof names_buf, "%s", d.class_names);
            dataset_close(&d);
        }
    }
    const char *names[DATASET_MAX_CLASSES];
    int n_names = 0;
    for (char *s = names_buf; *s && n_names < DATASET_MAX_CLASSES;) {
        names[n_names++] = s;
        char *nl = strchr(s, '\n');
        if (!nl) break;
        *nl = 0;
        s = nl + 1;
    }
    long hist[DATASET_MAX_CLASSES] = {0}, out_of_range = 0;
    int max_label = -1;
    for (long i = 0; i < n; i++) {
        if (lab[i] < 0 || lab[i] >= DATASET_MAX_CLASSES) { out_of_range++; continue; }
        hist[lab[i]]++;
        if (lab[i] > max_label) max_label = lab[i];
    }
    free(lab);
    int n_classes = max_label + 1 > n_names ? max_label + 1 : n_names;
    printf("labels: %ld samples, %d classes\n", n, n_classes);
    cJSON *h = cJSON_AddArrayToObject(js, "label_histogram");
    for (int c = 0; c < n_classes; c++) {
        printf("  %4d %-24s %8ld\n", c, c < n_names ? names[c] : "", hist[c]);
        cJSON_AddItemToArray(h, cJSON_CreateNumber((double)hist[c]));
    }
    if (out_of_range) printf("  %ld labels outside [0, %d)\n", out_of_range, DATASET_MAX_CLASSES);
    return 0;
}

static int print_done(h5file *f, cJSON *js, char *err)
{
    int rank;
    hsize_t dims[H5IO_MAX_RANK];
    if (h5_dims(f, "/done", &rank, dims, err)) return -1;
    long n = 1;
    for (int i = 0; i < rank; i++) n *= (long)dims[i];
    unsigned char *m = malloc((size_t)(n ? n : 1));
    if (!m) return errf(err, "%s: out of memory for /done", f->path);
    if (h5_read_all(f, "/done", H5T_NATIVE_UCHAR, m, err)) { free(m); return -1; }
    long done = 0;
    for (long i = 0; i < n; i++) done += m[i] != 0;
    free(m);
    printf("extraction progress: %ld/%ld samples done (%.1f%%)%s\n", done, n,
           n ? 100.0 * (double)done / (double)n : 100.0, done == n ? "" : ", resumable");
    cJSON_AddNumberToObject(js, "done", (double)done);
    cJSON_AddNumberToObject(js, "done_of", (double)n);
    return 0;
}

/* A checkpoint's kind, place and the commands that take it (ckpt_kind.h); nothing for a file
 * that is not a checkpoint. */
static void print_checkpoint(const char *path, cJSON *js)
{
    char e2[I2P_ERR_LEN];
    ckpt_state st;
    cJSON *root;
    if (ckpt_read_config(path, MPI_COMM_SELF, &st, &root, e2)) return;
    const char *kind = ckpt_kind(root);
    if (kind) {
        printf("checkpoint: %s, step %ld, epoch %ld%s; taken by %s\n", kind, st.step, st.epoch,
               st.epoch_pos ? " (stopped inside it)" : "", ckpt_kind_uses(kind));
        cJSON_AddStringToObject(js, "checkpoint_kind", kind);
        cJSON_AddNumberToObject(js, "checkpoint_step", (double)st.step);
    }
    cJSON_Delete(root);
}

static int info_file(const char *path, cJSON *js, char *err)
{
    h5file f;
    if (h5_open_read(&f, path, MPI_COMM_SELF, err)) return -1;
    struct stat st;
    double mb = stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
    printf("file: %s (%.2f MB)\n", path, mb);
    cJSON_AddNumberToObject(js, "bytes", mb * 1e6);
    walk_state w = {&f, 0, 0, err};
    int rc = h5_attr_visit(&f, "/", print_attr, "  ", err) < 0 ? -1 : 0;
    if (!rc) {
        printf("objects:\n");
        rc = h5_visit(&f, print_object, &w, err) < 0 ? -1 : 0;
    }
    cJSON_AddNumberToObject(js, "datasets", w.n_datasets);
    cJSON_AddNumberToObject(js, "groups", w.n_groups);
    if (!rc && h5_exists(&f, "/label")) rc = print_labels(&f, path, js, err);
    if (!rc && h5_exists(&f, "/done")) rc = print_done(&f, js, err);
    h5_close(&f);
    if (!rc) print_checkpoint(path, js);
    return rc;
}

/* The figures info_file found are kept for the summary, after "file". */
typedef struct {
    cJSON *figures;
} info_state;

static int run(void *state, const cmd_env *env, char *err)
{
    info_state *st = state;
    if (env->rank != 0) return 0;
    st->figures = cJSON_CreateObject();
    if (!st->figures) return errf(err, "out of memory");
    if (info_file(env->common->positional[0], st->figures, err)) {
        cJSON_Delete(st->figures);
        st->figures = NULL;
        return -1;
    }
    return 0;
}

static void summarise(void *state, const cmd_env *env, cJSON *s)
{
    info_state *st = state;
    cJSON_AddStringToObject(s, "file", env->common->positional[0]);
    cJSON *item;
    while (st->figures && (item = st->figures->child)) {
        cJSON_DetachItemViaPointer(st->figures, item);
        cJSON_AddItemToObject(s, item->string, item); /* copies the key before freeing the old */
    }
    cJSON_Delete(st->figures);
}

const i2p_command cmd_info = {
    .name = "info",
    .summary = "summarise any file this program wrote",
    .usage = "i2pmae info FILE",
    .description =
        "Prints root attributes, every dataset (shape, type, chunks, filters, attributes), the label\n"
        "histogram with class names where /label exists, extraction progress where /done exists, and\n"
        "for a checkpoint its kind (pre-training, fine-tuning, part segmentation), step and the commands\n"
        "that take it.",
    .n_positional = 1,
    .state_size = sizeof(info_state),
    .run = run,
    .summarise = summarise,
};
