/* checkpoint.c -- training checkpoints: Fletcher32-checked flat arrays, written collectively,
 * committed by rename, verified and compared on load (see checkpoint.h). */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h"
#include "errors.h"
#include "h5io.h"
#include "log.h"
#include "paths.h"

#define CKPT_FORMAT "i2pmae-checkpoint"
#define CKPT_CHUNK 65536L /* elements per chunk: one Fletcher32 checksum per 256 KiB of floats */

static hid_t file_type(ckpt_type t) { return t == CKPT_F32 ? H5T_IEEE_F32LE : H5T_STD_I64LE; }
static hid_t mem_type(ckpt_type t) { return t == CKPT_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64; }
static size_t elem_size(ckpt_type t) { return t == CKPT_F32 ? sizeof(float) : sizeof(int64_t); }

/* The most slices any rank of comm holds (the collective calls each rank makes). */
static int max_slices(MPI_Comm comm, const ckpt_part *part)
{
    int n = part->n, most = 0;
    MPI_Allreduce(&n, &most, 1, MPI_INT, MPI_MAX, comm);
    return most;
}

/* Elements per collective write of a slice: HDF5 holds the chunks of one filtered write in memory
 * on the ranks that write them, so a stage writing most of the parameters in one call would add a
 * copy of them to its peak memory. */
#define CKPT_PIECE (16 * CKPT_CHUNK)

/* Slice s cut at the multiples of CKPT_PIECE: the number of pieces, and piece i's range. */
static long n_pieces(const ckpt_slice *s)
{
    return s->count > 0 ? (s->off + s->count - 1) / CKPT_PIECE - s->off / CKPT_PIECE + 1 : 0;
}

static void piece(const ckpt_slice *s, long i, long *off, long *count)
{
    long lo = i == 0 ? s->off : (s->off / CKPT_PIECE + i) * CKPT_PIECE;
    long hi = (s->off / CKPT_PIECE + i + 1) * CKPT_PIECE;
    if (hi > s->off + s->count) hi = s->off + s->count;
    *off = lo;
    *count = hi - lo;
}

/* This rank's slices of a sliced array, cut in pieces, in as many collective calls as the most
 * pieces of a rank (a rank out of pieces takes part with none). */
static int write_slices(h5file *f, const ckpt_array *a, const ckpt_part *part, char *err)
{
    hsize_t dims[1] = {(hsize_t)a->count};
    hsize_t chunk[1] = {(hsize_t)(a->count < CKPT_CHUNK ? a->count : CKPT_CHUNK)};
    if (h5_create_dataset(f, a->name, file_type(a->type), 1, dims, chunk, 1, err)) return -1;
    long mine = 0, most = 0;
    for (int k = 0; k < part->n; k++) mine += n_pieces(&part->s[k]);
    MPI_Allreduce(&mine, &most, 1, MPI_LONG, MPI_MAX, f->comm);
    int k = 0;
    long i = 0;
    for (long call = 0; call < most; call++) {
        while (k < part->n && i >= n_pieces(&part->s[k])) {
            k++;
            i = 0;
        }
        long off = 0, count = 0;
        const char *p = a->data;
        if (k < part->n) {
            piece(&part->s[k], i++, &off, &count);
            p = (const char *)a->data + (size_t)(part->s[k].at + off - part->s[k].off) * elem_size(a->type);
        }
        if (h5_write_rows(f, a->name, mem_type(a->type), off, count, p, err)) return -1;
    }
    return 0;
}

/* A replicated array: each rank writes its dist_block_range share, cut in pieces as a slice (one
 * filtered write of the whole share would hold a copy of it in HDF5's chunk buffers). */
static int write_array(h5file *f, const ckpt_array *a, char *err)
{
    int size;
    MPI_Comm_size(f->comm, &size);
    ckpt_slice s;
    dist_block_range(a->count, size, f->rank, &s.off, &s.count);
    s.at = s.off;
    ckpt_part part = {&s, 1};
    return write_slices(f, a, &part, err);
}

static int write_attrs(h5file *f, const ckpt_state *st, const char *config_json,
                       const char *provenance, char *err)
{
    if (h5_attr_write_str(f, "/", "format", CKPT_FORMAT, err)) return -1;
    if (h5_attr_write_long(f, "/", "step", st->step, err)) return -1;
    if (h5_attr_write_long(f, "/", "epoch", st->epoch, err)) return -1;
    if (h5_attr_write_long(f, "/", "epoch_pos", st->epoch_pos, err)) return -1;
    if (h5_attr_write_long(f, "/", "seed", st->seed, err)) return -1;
    if (h5_attr_write_str(f, "/", "config", config_json ? config_json : "{}", err)) return -1;
    if (provenance && h5_attr_write_str(f, "/", "provenance", provenance, err)) return -1;
    return 0;
}

int ckpt_write(const char *path, MPI_Comm comm, const ckpt_state *st, const char *config_json,
               const char *provenance, const ckpt_array *arrays, int n_arrays, char *err)
{
    return ckpt_write_parts(path, comm, st, config_json, provenance, arrays, NULL, n_arrays, err);
}

int ckpt_write_parts(const char *path, MPI_Comm comm, const ckpt_state *st, const char *config_json,
                     const char *provenance, const ckpt_array *arrays, const ckpt_part *parts, int n_arrays,
                     char *err)
{
    h5file f;
    int rc = h5_create(&f, path, comm, 1, err);
    if (dist_any_error(comm, rc, err)) return -1;
    rc = write_attrs(&f, st, config_json, provenance, err);
    for (int i = 0; !rc && i < n_arrays; i++) {
        if (arrays[i].count <= 0) continue;
        if (parts && parts[i].s) rc = write_slices(&f, &arrays[i], &parts[i], err);
        else rc = write_array(&f, &arrays[i], err);
    }
    if (dist_any_error(comm, rc, err)) {
        h5_abort(&f);
        return -1;
    }
    return h5_commit(&f, err);
}

/* Opens a checkpoint and checks its format attribute. */
static int open_checkpoint(h5file *f, const char *path, MPI_Comm comm, char *err)
{
    int rc = h5_open_read(f, path, comm, err);
    if (rc) {
        if (strstr(err, "cannot open HDF5 file"))
            errf(err, "%s: checkpoint is corrupt or truncated (HDF5 cannot open it)", path);
        return -1;
    }
    char fmt[64] = "";
    if (h5_attr_read_str(f, "/", "format", fmt, sizeof fmt, err) && !strstr(err, "is missing")) {
        char cause[I2P_ERR_LEN]; /* e.g. HDF5's "incorrect metadata checksum" */
        snprintf(cause, sizeof cause, "%s", err);
        h5_close(f);
        return errf(err, "%s: checkpoint is corrupt: %s", path, cause);
    }
    if (strcmp(fmt, CKPT_FORMAT)) {
        h5_close(f);
        return errf(err, "%s: not an i2pmae checkpoint (format attribute is '%s')", path, fmt);
    }
    return 0;
}

static int read_state(h5file *f, ckpt_state *st, char *config_json, char *err)
{
    if (h5_attr_read_long(f, "/", "step", &st->step, err)) return -1;
    if (h5_attr_read_long(f, "/", "epoch", &st->epoch, err)) return -1;
    if (h5_attr_read_long(f, "/", "epoch_pos", &st->epoch_pos, err)) return -1;
    if (h5_attr_read_long(f, "/", "seed", &st->seed, err)) return -1;
    if (config_json && h5_attr_read_str(f, "/", "config", config_json, CKPT_CONFIG_LEN, err))
        return -1;
    return 0;
}

static int check_array(h5file *f, const ckpt_array *a, char *err);

static int read_array(h5file *f, const ckpt_array *a, char *err)
{
    if (check_array(f, a, err)) return -1;
    if (h5_read_all(f, a->name, mem_type(a->type), a->data, err))
        return errf(err, "%s: checkpoint is corrupt: %s fails its Fletcher32 checksum (or its "
                    "chunks cannot be read)", f->path, a->name);
    return 0;
}

/* The dataset a->name must exist with a->count elements. */
static int check_array(h5file *f, const ckpt_array *a, char *err)
{
    int rank;
    hsize_t dims[H5IO_MAX_RANK];
    if (!h5_exists(f, a->name))
        return errf(err, "%s: checkpoint has no %s (written by another configuration?)", f->path,
                    a->name);
    if (h5_dims(f, a->name, &rank, dims, err)) return -1;
    if (rank != 1 || (long)dims[0] != a->count)
        return errf(err, "%s: %s has %llu elements, this run needs %ld (another configuration?)",
                    f->path, a->name, (unsigned long long)dims[0], a->count);
    return 0;
}

/* This rank's slices of a sliced array, in collective calls as write_slices; every rank learns
 * any rank's failure (the ranks' calls stay matched). */
static int read_slices(h5file *f, const ckpt_array *a, const ckpt_part *part, char *err)
{
    if (dist_any_error(f->comm, check_array(f, a, err), err)) return -1;
    int most = max_slices(f->comm, part), rc = 0;
    for (int k = 0; k < most && !rc; k++) {
        const ckpt_slice *s = k < part->n ? &part->s[k] : NULL;
        char *p = s ? (char *)a->data + (size_t)s->at * elem_size(a->type) : a->data;
        rc = h5_read_rows(f, a->name, mem_type(a->type), s ? s->off : 0, s ? s->count : 0, p, err);
        if (rc) errf(err, "%s: checkpoint is corrupt: %s fails its Fletcher32 checksum (or its chunks cannot "
                     "be read)", f->path, a->name);
        rc = dist_any_error(f->comm, rc, err);
    }
    if (rc || a->type != CKPT_F32) return rc;
    for (int k = 0; k < part->n; k++) { /* a diverged run is no state */
        const float *v = (const float *)a->data + part->s[k].at;
        for (long i = 0; i < part->s[k].count; i++)
            if (!isfinite(v[i]))
                rc = errf(err, "%s: %s[%ld] is not finite (%g): the run had diverged", f->path, a->name,
                          part->s[k].off + i, v[i]);
    }
    return dist_any_error(f->comm, rc, err);
}

int ckpt_read(const char *path, MPI_Comm comm, ckpt_state *st, const char *expect_config_json,
              const ckpt_array *arrays, int n_arrays, char *err)
{
    return ckpt_read_parts(path, comm, st, expect_config_json, arrays, NULL, n_arrays, err);
}

int ckpt_read_parts(const char *path, MPI_Comm comm, ckpt_state *st, const char *expect_config_json,
                    const ckpt_array *arrays, const ckpt_part *parts, int n_arrays, char *err)
{
    h5file f;
    if (dist_any_error(comm, open_checkpoint(&f, path, comm, err), err)) return -1;
    char *cfg = calloc(CKPT_CONFIG_LEN, 1);
    int rc = cfg ? read_state(&f, st, cfg, err) : errf(err, "%s: out of memory", path);
    if (!rc && expect_config_json) rc = ckpt_config_compare(cfg, expect_config_json, path, err);
    /* the replicated arrays first (independent reads: a rank may stop at its own error), then,
     * once the ranks agree, the sliced ones (collective) */
    for (int i = 0; !rc && i < n_arrays; i++)
        if (arrays[i].count > 0 && !(parts && parts[i].s)) rc = read_array(&f, &arrays[i], err);
    for (int i = 0; !rc && i < n_arrays; i++) /* a diverged run is no state */
        if (!(parts && parts[i].s)) rc = ckpt_check_finite(path, &arrays[i], 1, err);
    rc = dist_any_error(comm, rc, err);
    for (int i = 0; !rc && parts && i < n_arrays; i++)
        if (arrays[i].count > 0 && parts[i].s) rc = read_slices(&f, &arrays[i], &parts[i], err);
    free(cfg);
    h5_close(&f);
    return dist_any_error(comm, rc, err);
}

int ckpt_read_header(const char *path, MPI_Comm comm, ckpt_state *st, char *config_json, char *err)
{
    h5file f;
    if (dist_any_error(comm, open_checkpoint(&f, path, comm, err), err)) return -1;
    int rc = read_state(&f, st, config_json, err);
    h5_close(&f);
    return dist_any_error(comm, rc, err);
}

int ckpt_read_network(const char *path, MPI_Comm comm, float *params, long n_params, float *buffers, long n_buffers,
                      ckpt_state *st, char *err)
{
    ckpt_array arr[2] = {{"/params", CKPT_F32, params, n_params}, {"/buffers", CKPT_F32, buffers, n_buffers}};
    ckpt_state own;
    return ckpt_read(path, comm, st ? st : &own, NULL, arr, 2, err);
}

int ckpt_read_config(const char *path, MPI_Comm comm, ckpt_state *st, cJSON **root, char *err)
{
    *root = NULL;
    char *json = malloc(CKPT_CONFIG_LEN);
    if (!json) return errf(err, "%s: out of memory for the checkpoint's configuration", path);
    int rc = ckpt_read_header(path, comm, st, json, err);
    if (!rc) {
        *root = cJSON_Parse(json);
        if (!*root) rc = errf(err, "%s: configuration is not JSON", path);
    }
    free(json);
    return rc;
}

int ckpt_array_count(const char *path, MPI_Comm comm, const char *name, long *count, char *err)
{
    h5file f;
    if (dist_any_error(comm, open_checkpoint(&f, path, comm, err), err)) return -1;
    int rc = 0, rank;
    hsize_t dims[H5IO_MAX_RANK];
    *count = 0;
    if (h5_exists(&f, name)) {
        rc = h5_dims(&f, name, &rank, dims, err);
        if (!rc) *count = (long)dims[0];
    }
    h5_close(&f);
    return dist_any_error(comm, rc, err);
}

int ckpt_check_finite(const char *path, const ckpt_array *arrays, int n_arrays, char *err)
{
    for (int i = 0; i < n_arrays; i++) {
        if (arrays[i].type != CKPT_F32) continue;
        const float *v = arrays[i].data;
        for (long k = 0; k < arrays[i].count; k++)
            if (!isfinite(v[k]))
                return errf(err, "%s: %s[%ld] is not finite (%g): the run had diverged", path,
                            arrays[i].name, k, v[k]);
    }
    return 0;
}

/* ---- configuration comparison ---- */

/* Keys added to run configurations after checkpoints were first written, with the value a
 * checkpoint without the key was trained with: such a checkpoint resumes when the run asks for
 * that value, and is refused (key missing) otherwise. */
static const struct {
    const char *path, *value_json;
} added_later[] = {
    {"train.precision", "\"fp32\""},
};

static int missing_means_default(const char *path, const cJSON *w)
{
    for (size_t i = 0; i < sizeof added_later / sizeof added_later[0]; i++) {
        if (strcmp(path, added_later[i].path)) continue;
        cJSON *d = cJSON_Parse(added_later[i].value_json);
        int same = d && cJSON_Compare(d, w, 1);
        cJSON_Delete(d);
        return same;
    }
    return 0;
}

/* The first key of want (depth first, nested objects entered) whose value differs in have:
 * returns -1 with err naming its dotted path ("model.dims") and the two values, else 0. */
static int first_difference(const cJSON *have, const cJSON *want, const char *prefix,
                            const char *what, char *err)
{
    for (const cJSON *w = want->child; w; w = w->next) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", w->string);
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, w->string);
        if (!h && missing_means_default(path, w)) continue;
        if (!h)
            return errf(err, "%s: configuration differs: '%s' is missing in the checkpoint", what, path);
        if (cJSON_Compare(h, w, 1)) continue;
        if (cJSON_IsObject(h) && cJSON_IsObject(w)) {
            if (first_difference(h, w, path, what, err)) return -1;
            continue; /* only keys of have beyond want's: accepted */
        }
        char *hs = cJSON_PrintUnformatted(h), *ws = cJSON_PrintUnformatted(w);
        errf(err, "%s: configuration differs: '%s' is %s in the checkpoint but %s here", what, path,
             hs ? hs : "?", ws ? ws : "?");
        free(hs);
        free(ws);
        return -1;
    }
    return 0;
}

int ckpt_config_compare(const char *have_json, const char *want_json, const char *what, char *err)
{
    cJSON *have = cJSON_Parse(have_json), *want = cJSON_Parse(want_json);
    int rc = 0;
    if (!have || !cJSON_IsObject(have)) rc = errf(err, "%s: stored configuration is not JSON", what);
    else if (!want || !cJSON_IsObject(want)) rc = errf(err, "%s: configuration to compare is not JSON", what);
    else rc = first_difference(have, want, "", what, err);
    cJSON_Delete(have);
    cJSON_Delete(want);
    return rc;
}

/* ---- run directory ---- */

void ckpt_path(char *out, size_t out_len, const char *rundir, long step)
{
    snprintf(out, out_len, "%s/ckpt-%08ld.h5", rundir, step);
}

/* 1 and *step if name is "ckpt-<digits>.h5" (suffix "" ) or "ckpt-<digits>.h5.partial". */
static int parse_name(const char *name, const char *suffix, long *step)
{
    if (strncmp(name, "ckpt-", 5)) return 0;
    char *end;
    errno = 0;
    long s = strtol(name + 5, &end, 10);
    if (end == name + 5 || errno || s < 0) return 0;
    if (strncmp(end, ".h5", 3) || strcmp(end + 3, suffix)) return 0;
    *step = s;
    return 1;
}

static int cmp_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

/* Rank 0 only: lists steps of files with the suffix, newest first. */
static int list_local(const char *rundir, const char *suffix, long *steps, int max, char *err)
{
    DIR *d = opendir(rundir);
    if (!d) return errf(err, "%s: cannot read the run directory: %s", rundir, strerror(errno));
    int n = 0;
    struct dirent *e;
    long s;
    while ((e = readdir(d)))
        if (parse_name(e->d_name, suffix, &s)) {
            if (n < max) {
                steps[n++] = s;
                continue;
            }
            int low = 0; /* more than max: keep the max newest, whatever order readdir gives */
            for (int i = 1; i < n; i++)
                if (steps[i] < steps[low]) low = i;
            if (s > steps[low]) steps[low] = s;
        }
    closedir(d);
    if (n > 0) qsort(steps, (size_t)n, sizeof(long), cmp_desc);
    return n;
}

int ckpt_list(const char *rundir, MPI_Comm comm, long *steps, int max, char *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    int n = rank == 0 ? list_local(rundir, "", steps, max, err) : 0;
    if (dist_any_error(comm, n < 0 ? -1 : 0, err)) return -1;
    MPI_Bcast(&n, 1, MPI_INT, 0, comm);
    if (n > 0) MPI_Bcast(steps, n, MPI_LONG, 0, comm);
    return n;
}

int ckpt_resume_newest(const char *rundir, MPI_Comm comm, const char *config_json, const char *who,
                       ckpt_load_fn load, void *ctx, char *path_out, size_t path_len, char *err)
{
    long *steps = malloc(sizeof(long) * CKPT_LIST_MAX);
    char *stored = malloc(CKPT_CONFIG_LEN);
    int n = steps && stored ? ckpt_list(rundir, comm, steps, CKPT_LIST_MAX, err) : errf(err, "out of memory");
    int rc = n < 0 ? -1 : 1; /* 1: nothing valid found yet */
    char first_err[I2P_ERR_LEN] = "";
    for (int i = 0; i < n && rc == 1; i++) {
        char path[I2P_PATH_LEN];
        ckpt_path(path, sizeof path, rundir, steps[i]);
        ckpt_state st;
        if (ckpt_read_header(path, comm, &st, stored, err) == 0) {
            if (ckpt_config_compare(stored, config_json, path, err)) {
                rc = -1; /* same on every rank: the stored text was read by all */
                break;
            }
            if (load(ctx, path, &st, err) == 0) {
                snprintf(path_out, path_len, "%s", path);
                rc = 0;
                break;
            }
        }
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", err);
        log_warn("%s: skipping %s: %s", who, path, err);
    }
    if (rc == 1) rc = errf(err, "%s: no valid checkpoint to resume from (newest: %s)", rundir, first_err);
    free(steps);
    free(stored);
    return rc;
}

int ckpt_prune(const char *rundir, MPI_Comm comm, int keep, char *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    int rc = 0;
    if (rank == 0) {
        long *steps = malloc(sizeof(long) * CKPT_LIST_MAX);
        char path[I2P_PATH_LEN];
        int n = steps ? list_local(rundir, ".partial", steps, CKPT_LIST_MAX, err) : errf(err, "out of memory");
        for (int i = 0; i < n; i++) {
            ckpt_path(path, sizeof path, rundir, steps[i]);
            strcat(path, ".partial");
            unlink(path);
        }
        if (n >= 0 && keep > 0) n = list_local(rundir, "", steps, CKPT_LIST_MAX, err);
        for (int i = keep; keep > 0 && i < n; i++) {
            ckpt_path(path, sizeof path, rundir, steps[i]);
            if (unlink(path) != 0) rc = errf(err, "%s: cannot delete old checkpoint: %s", path,
                                             strerror(errno));
        }
        if (n < 0) rc = -1;
        free(steps);
    }
    return dist_any_error(comm, rc, err);
}

int ckpt_prepare_rundir(const char *rundir, int resume, MPI_Comm comm, char *err)
{
    int rc = 0, rank;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) {
        struct stat st;
        if (stat(rundir, &st) != 0) {
            if (resume)
                rc = errf(err, "%s: --resume, but the run directory does not exist", rundir);
            else if (mkdir(rundir, 0777) != 0)
                rc = errf(err, "%s: cannot create the run directory: %s", rundir, strerror(errno));
        } else if (!S_ISDIR(st.st_mode)) {
            rc = errf(err, "%s: exists and is not a directory", rundir);
        }
        if (!rc && access(rundir, W_OK | X_OK) != 0)
            rc = errf(err, "%s: the run directory is not writable", rundir);
    }
    if (dist_any_error(comm, rc, err)) return -1;
    long steps[1];
    int n = ckpt_list(rundir, comm, steps, 1, err);
    if (n < 0) return -1;
    if (!resume && n > 0)
        return errf(err, "%s: holds checkpoints of an earlier run (newest: step %ld); add --resume to "
                    "continue it or choose another run directory", rundir, steps[0]);
    if (resume && n == 0)
        return errf(err, "%s: --resume, but the run directory holds no checkpoint (ckpt-*.h5)", rundir);
    return 0;
}

char *ckpt_tensor_table(const model3d_tensor *tensors, int n)
{
    size_t cap = 160 * (size_t)(n + 1), len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = 0;
    for (int i = 0; i < n; i++) {
        const model3d_tensor *t = &tensors[i];
        len += (size_t)snprintf(s + len, cap - len, "%s %ld %ld (", t->name, t->offset, t->count);
        for (int k = 0; k < t->rank; k++)
            len += (size_t)snprintf(s + len, cap - len, k ? ",%d" : "%d", t->shape[k]);
        len += (size_t)snprintf(s + len, cap - len, ") decay=%d\n", t->decay);
    }
    return s;
}
