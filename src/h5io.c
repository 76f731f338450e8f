/* h5io.c -- the only file that calls HDF5 (see h5io.h for the promises). */
#include "h5io.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "dist.h"
#include "errors.h"

/* An HDF5 object path we build or split ("/features/global", "/expected/activations/enc0_out"). */
#define H5_NAME_LEN 1024
/* An attribute shown as text (h5_attr_visit); the longest we write is class_names, 8192 bytes. */
#define H5_ATTR_TEXT_LEN 8192
/* HDF5's innermost error message, or a formatted shape "(2048, 3)". */
#define H5_SHORT_TEXT_LEN 256

static hid_t g_f16 = -1;

void h5io_init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t h5_type_f16(void)
{
    if (g_f16 < 0) {
        g_f16 = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(g_f16, 15, 10, 5, 0, 10);
        H5Tset_size(g_f16, 2);
        H5Tset_ebias(g_f16, 15);
    }
    return g_f16;
}

/* The innermost (first pushed) message of HDF5's current error stack. */
static herr_t walk_first(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc) snprintf((char *)data, H5_SHORT_TEXT_LEN, "%s", e->desc);
    return 0;
}

static const char *h5_cause(char *buf) /* buf: H5_SHORT_TEXT_LEN bytes */
{
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_first, buf); /* upward: innermost first */
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

static int h5_fail(h5file *f, const char *obj, const char *what, char *err)
{
    char cause[H5_SHORT_TEXT_LEN];
    h5_cause(cause);
    if (cause[0])
        return errf(err, "%s: %s%s%s (%s)", f->path, obj ? obj : "", obj ? ": " : "", what, cause);
    return errf(err, "%s: %s%s%s", f->path, obj ? obj : "", obj ? ": " : "", what);
}

static hid_t make_fapl(MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "cb_buffer_size", "4194304");
    H5Pset_fapl_mpio(fapl, comm, info);
    MPI_Info_free(&info);
    /* The file format of HDF5 >= 1.8 checksums every object header, attribute and index, so a
     * flipped metadata byte is an error on read instead of a crash or a silently wrong value
     * (Fletcher32 covers only chunked data). docs/reliability.md says which versions read it. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    return fapl;
}

/* Agrees on a result decided on rank 0: broadcasts rc and the message. */
static int bcast_result(MPI_Comm comm, int rc, char *err)
{
    int r = rc;
    MPI_Bcast(&r, 1, MPI_INT, 0, comm);
    if (r) MPI_Bcast(err, I2P_ERR_LEN, MPI_CHAR, 0, comm);
    return r;
}

static void init_handle(h5file *f, const char *path, MPI_Comm comm)
{
    memset(f, 0, sizeof *f);
    f->file = -1;
    f->comm = comm;
    MPI_Comm_rank(comm, &f->rank);
    int size = 1;
    MPI_Comm_size(comm, &size);
    f->solo = size == 1;
    snprintf(f->path, sizeof f->path, "%s", path);
}

int h5_open_read(h5file *f, const char *path, MPI_Comm comm, char *err)
{
    init_handle(f, path, comm);
    int rc = 0;
    if (f->rank == 0) {
        struct stat st;
        if (stat(path, &st) != 0) rc = errf(err, "%s: %s", path, strerror(errno));
        else if (S_ISDIR(st.st_mode)) rc = errf(err, "%s: is a directory", path);
        else if (H5Fis_hdf5(path) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            rc = errf(err, "%s: not an HDF5 file", path);
        }
    }
    if (bcast_result(comm, rc, err)) return -1;
    hid_t fapl = make_fapl(comm);
    f->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f->file < 0) return h5_fail(f, NULL, "cannot open HDF5 file", err);
    return 0;
}

static int check_dir_writable(const char *path, char *err)
{
    char tmp[I2P_PATH_LEN];
    snprintf(tmp, sizeof tmp, "%s", path);
    const char *dir = dirname(tmp);
    struct stat st;
    if (stat(dir, &st) != 0) return errf(err, "%s: directory %s does not exist", path, dir);
    if (!S_ISDIR(st.st_mode)) return errf(err, "%s: %s is not a directory", path, dir);
    if (access(dir, W_OK) != 0) return errf(err, "%s: directory %s is not writable", path, dir);
    return 0;
}

int h5_create(h5file *f, const char *final_path, MPI_Comm comm, int force, char *err)
{
    char partial[I2P_PATH_LEN];
    snprintf(partial, sizeof partial, "%s.partial", final_path);
    init_handle(f, partial, comm);
    snprintf(f->final_path, sizeof f->final_path, "%s", final_path);
    int rc = 0;
    if (f->rank == 0) {
        if (access(final_path, F_OK) == 0 && !force)
            rc = errf(err, "%s: exists (use --force to replace it)", final_path);
        else
            rc = check_dir_writable(final_path, err);
    }
    if (bcast_result(comm, rc, err)) return -1;
    hid_t fapl = make_fapl(comm);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0); /* the root group's header holds no times either */
    f->file = H5Fcreate(partial, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (f->file < 0) return h5_fail(f, NULL, "cannot create file", err);
    f->writable = 1;
    return 0;
}

int h5_open_partial(h5file *f, const char *final_path, MPI_Comm comm, char *err)
{
    char partial[I2P_PATH_LEN];
    snprintf(partial, sizeof partial, "%s.partial", final_path);
    init_handle(f, partial, comm);
    snprintf(f->final_path, sizeof f->final_path, "%s", final_path);
    int exists = access(partial, F_OK) == 0;
    int any = exists;
    MPI_Allreduce(&exists, &any, 1, MPI_INT, MPI_MAX, comm);
    if (!any) return 0;
    hid_t fapl = make_fapl(comm);
    f->file = H5Fopen(partial, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f->file < 0) return h5_fail(f, NULL, "cannot reopen partial file for restart", err);
    f->writable = 1;
    return 1;
}

int h5_flush(h5file *f, char *err)
{
    if (H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0) return h5_fail(f, NULL, "flush failed", err);
    return 0;
}

int h5_commit(h5file *f, char *err)
{
    /* The flush writes what the close would; its failure (a full disk) is agreed, and the file is
     * then closed by h5_abort, which makes room for the close first. */
    int rc = H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0 ? h5_fail(f, NULL, "flush failed (disk full?)", err) : 0;
    if (dist_any_error(f->comm, rc, err)) {
        h5_abort(f);
        return -1;
    }
    if (H5Fclose(f->file) < 0) rc = h5_fail(f, NULL, "close failed (disk full?)", err);
    f->file = -1;
    int any = rc ? 1 : 0, all = 0;
    MPI_Allreduce(&any, &all, 1, MPI_INT, MPI_MAX, f->comm);
    if (all) {
        if (f->rank == 0) unlink(f->path);
        if (!rc) errf(err, "%s: close failed on another rank", f->path);
        return -1;
    }
    if (f->rank == 0 && rename(f->path, f->final_path) != 0)
        rc = errf(err, "%s: cannot rename to %s: %s", f->path, f->final_path, strerror(errno));
    if (bcast_result(f->comm, rc, err)) return -1;
    snprintf(f->path, sizeof f->path, "%s", f->final_path);
    f->writable = 0;
    return 0;
}

/* The datasets a read-only file of one process keeps open for its row reads (dataset_for_rows). */
static void close_open_datasets(h5file *f)
{
    for (int i = 0; i < f->n_open; i++) H5Dclose(f->open_ds[i].id);
    f->n_open = 0;
}

void h5_abort(h5file *f)
{
    if (f->writable && f->file >= 0) {
        /* Empty the file first: on a full disk its freed blocks give the close room for the
         * metadata it still writes (a close that fails leaves the file open inside HDF5, which
         * then crashes in MPI_Finalize). */
        MPI_Barrier(f->comm);
        if (f->rank == 0 && truncate(f->path, 0) != 0) H5Eclear2(H5E_DEFAULT); /* the close may fail */
        MPI_Barrier(f->comm);
    }
    close_open_datasets(f);
    if (f->file >= 0 && H5Fclose(f->file) < 0) H5Eclear2(H5E_DEFAULT);
    f->file = -1;
    if (f->writable) {
        MPI_Barrier(f->comm);
        if (f->rank == 0) unlink(f->path);
    }
    f->writable = 0;
}

void h5_close(h5file *f)
{
    close_open_datasets(f);
    if (f->file >= 0) H5Fclose(f->file);
    f->file = -1;
}

int h5_exists(h5file *f, const char *name)
{
    if (!strcmp(name, "/")) return 1;
    /* Check each path component so a missing group is not an error. */
    char buf[H5_NAME_LEN];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            htri_t e = H5Lexists(f->file, buf, H5P_DEFAULT);
            if (e <= 0) { H5Eclear2(H5E_DEFAULT); return 0; }
            *p = c;
            if (!c) break;
        }
    }
    return 1;
}

static hid_t open_dataset(h5file *f, const char *name, char *err)
{
    if (!h5_exists(f, name)) {
        errf(err, "%s: dataset %s is missing", f->path, name);
        return -1;
    }
    hid_t d = H5Dopen2(f->file, name, H5P_DEFAULT);
    if (d < 0) h5_fail(f, name, "cannot open dataset", err);
    return d;
}

int h5_dims(h5file *f, const char *name, int *rank, hsize_t *dims, char *err)
{
    hid_t d = open_dataset(f, name, err);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(s);
    if (r < 0 || r > H5IO_MAX_RANK) {
        H5Sclose(s);
        H5Dclose(d);
        return errf(err, "%s: %s: unsupported dataspace", f->path, name);
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    *rank = r;
    H5Sclose(s);
    H5Dclose(d);
    return 0;
}

static void format_dims(int rank, const hsize_t *dims, char *out, size_t n)
{
    size_t len = 0;
    len += (size_t)snprintf(out + len, n - len, "(");
    for (int i = 0; i < rank && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, i ? ",%llu" : "%llu", (unsigned long long)dims[i]);
    if (len < n) snprintf(out + len, n - len, ")");
}

int h5_check_shape(h5file *f, const char *name, int rank, const hsize_t *want, char *err)
{
    int r;
    hsize_t d[H5IO_MAX_RANK];
    if (h5_dims(f, name, &r, d, err)) return -1;
    int ok = r == rank;
    for (int i = 0; ok && i < rank; i++)
        if (want[i] && want[i] != d[i]) ok = 0;
    if (ok) return 0;
    char got[H5_SHORT_TEXT_LEN], exp[H5_SHORT_TEXT_LEN];
    format_dims(r, d, got, sizeof got);
    format_dims(rank, want, exp, sizeof exp);
    return errf(err, "%s: %s has shape %s, expected %s (0 = any)", f->path, name, got, exp);
}

int h5_type_class(h5file *f, const char *name, char *err)
{
    hid_t d = open_dataset(f, name, err);
    if (d < 0) return -1;
    hid_t t = H5Dget_type(d);
    int c = (int)H5Tget_class(t);
    H5Tclose(t);
    H5Dclose(d);
    return c;
}

static int ensure_parent_groups(h5file *f, const char *name, char *err)
{
    char buf[H5_NAME_LEN];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (!h5_exists(f, buf)) {
            hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
            H5Pset_obj_track_times(gcpl, 0);
            hid_t g = H5Gcreate2(f->file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            H5Pclose(gcpl);
            if (g < 0) return h5_fail(f, buf, "cannot create group", err);
            H5Gclose(g);
        }
        *p = '/';
    }
    return 0;
}

static int create_dataset(h5file *f, const char *name, hid_t type, int rank, const hsize_t *dims,
                          const hsize_t *chunk, int fletcher32, int fill, char *err);

int h5_create_dataset(h5file *f, const char *name, hid_t type, int rank, const hsize_t *dims,
                      const hsize_t *chunk, int fletcher32, char *err)
{
    return create_dataset(f, name, type, rank, dims, chunk, fletcher32, 1, err);
}

int h5_create_dataset_unfilled(h5file *f, const char *name, hid_t type, int rank,
                               const hsize_t *dims, const hsize_t *chunk, char *err)
{
    return create_dataset(f, name, type, rank, dims, chunk, 0, 0, err);
}

/* Bytes a dataset takes on disk: its data, or its whole chunks when chunked (an edge chunk is
 * stored full size), plus 4 KiB for its object header and chunk index; -1 if the count overflows
 * or passes H5IO_MAX_DATASET_BYTES. */
static int dataset_bytes(hid_t type, int rank, const hsize_t *dims, const hsize_t *chunk,
                         unsigned long long *bytes)
{
    unsigned long long n = H5Tget_size(type);
    for (int i = 0; i < rank; i++) {
        unsigned long long d = dims[i];
        if (chunk && chunk[i]) d = (d + chunk[i] - 1) / chunk[i] * chunk[i];
        if (d && n > H5IO_MAX_DATASET_BYTES / d) return -1;
        n *= d;
    }
    if (n > H5IO_MAX_DATASET_BYTES) return -1;
    *bytes = n + (4ULL << 10) + (chunk ? n / 1024 : 0);
    return 0;
}

/* Bytes for metadata (object headers, chunk indexes, the superblock) beyond the declared data. */
#define H5_METADATA_MARGIN_BYTES (64ULL << 10)

/* Rank 0: does the file, once it holds `total` declared data bytes, fit on its file system? */
static int check_free_space(h5file *f, const char *name, unsigned long long total, char *err)
{
    char tmp[I2P_PATH_LEN];
    snprintf(tmp, sizeof tmp, "%s", f->path);
    struct statvfs vfs;
    struct stat st;
    if (statvfs(dirname(tmp), &vfs) != 0 || stat(f->path, &st) != 0) return 0; /* cannot tell */
    unsigned long long have = (unsigned long long)vfs.f_bavail * vfs.f_frsize +
                              (unsigned long long)st.st_blocks * 512;
    unsigned long long need = total + H5_METADATA_MARGIN_BYTES;
    if (need <= have) return 0;
    return errf(err, "%s: %s: disk full: the file needs %llu bytes, %llu available", f->path, name,
                need, have);
}

static int create_dataset(h5file *f, const char *name, hid_t type, int rank, const hsize_t *dims,
                          const hsize_t *chunk, int fletcher32, int fill, char *err)
{
    /* Every error that can be known before HDF5's collective calls is agreed here. */
    unsigned long long bytes = 0;
    int rc = 0;
    if (rank < 1 || rank > H5IO_MAX_RANK) rc = errf(err, "%s: %s: rank %d", f->path, name, rank);
    else if (dataset_bytes(type, rank, dims, chunk, &bytes))
        rc = errf(err, "%s: %s: declared size is absurd (more than %llu bytes)", f->path, name,
                  H5IO_MAX_DATASET_BYTES);
    else if (f->rank == 0)
        rc = check_free_space(f, name, f->declared_bytes + bytes, err);
    if (dist_any_error(f->comm, rc, err)) return -1;
    /* Groups are created only once every rank knows it goes on: metadata changed on some ranks
     * only would hang the close. */
    if (dist_any_error(f->comm, ensure_parent_groups(f, name, err), err)) return -1;
    f->declared_bytes += bytes;
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0); /* no timestamps: same content, same bytes */
    if (chunk) {
        H5Pset_chunk(dcpl, rank, chunk);
        if (fletcher32) H5Pset_fletcher32(dcpl);
    }
    /* Parallel HDF5 needs early allocation for collective writes of chunked datasets. */
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, fill ? H5D_FILL_TIME_ALLOC : H5D_FILL_TIME_NEVER);
    hid_t d = H5Dcreate2(f->file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (d < 0) return h5_fail(f, name, "cannot create dataset (disk full?)", err);
    H5Dclose(d);
    return 0;
}

/* Selects rows of dimension 0 in fspace: [start, start+count) when rows == NULL, otherwise the
 * strictly increasing list rows[0..count) (consecutive rows merged into one hyperslab each). */
static int select_rows(h5file *f, const char *name, hid_t fspace, const long *rows, long start,
                       long count, char *err)
{
    int rank = H5Sget_simple_extent_ndims(fspace);
    hsize_t dims[H5IO_MAX_RANK], off[H5IO_MAX_RANK] = {0}, cnt[H5IO_MAX_RANK];
    H5Sget_simple_extent_dims(fspace, dims, NULL);
    for (int i = 0; i < rank; i++) cnt[i] = dims[i];
    if (count == 0) {
        H5Sselect_none(fspace);
        return 0;
    }
    if (!rows) {
        if (start < 0 || (hsize_t)(start + count) > dims[0])
            return errf(err, "%s: %s: rows [%ld, %ld) outside the %llu rows", f->path, name, start,
                        start + count, (unsigned long long)dims[0]);
        off[0] = (hsize_t)start;
        cnt[0] = (hsize_t)count;
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, off, NULL, cnt, NULL);
        return 0;
    }
    H5Sselect_none(fspace);
    for (long i = 0; i < count;) {
        long j = i + 1;
        while (j < count && rows[j] == rows[j - 1] + 1) j++;
        if (rows[i] < 0 || (hsize_t)rows[j - 1] >= dims[0] || (i > 0 && rows[i] <= rows[i - 1]))
            return errf(err, "%s: %s: row list not increasing or outside the %llu rows (row %ld)",
                        f->path, name, (unsigned long long)dims[0], rows[i]);
        off[0] = (hsize_t)rows[i];
        cnt[0] = (hsize_t)(j - i);
        H5Sselect_hyperslab(fspace, H5S_SELECT_OR, off, NULL, cnt, NULL);
        i = j;
    }
    return 0;
}

/* Stored elements of at most this many bytes are read (ours are 1-8 bytes). */
#define H5IO_MAX_ELEM_BYTES 16

/* A corrupt datatype message can claim gigabytes per element, and HDF5 allocates its conversion
 * buffer from that before reading (found by tests/fuzz/fuzz_h5_features). */
static int check_elem_size(h5file *f, hid_t d, const char *name, char *err)
{
    hid_t t = H5Dget_type(d);
    size_t size = t < 0 ? 0 : H5Tget_size(t);
    if (t >= 0) H5Tclose(t);
    if (size == 0 || size > H5IO_MAX_ELEM_BYTES)
        return errf(err, "%s: %s: stored elements of %zu bytes (a corrupt datatype?)", f->path, name,
                    size);
    return 0;
}

/* The dataset `name` for a row transfer. On a read-only file of one process it comes from the
 * handle's open datasets (opened on first use, closed by h5_close) and *owned is 0; else it is
 * opened for this call and *owned is 1: the caller closes it. */
static hid_t dataset_for_rows(h5file *f, const char *name, int write, int *owned, char *err)
{
    int keep = f->solo && !f->writable && !write && strlen(name) < sizeof f->open_ds[0].name;
    *owned = 1;
    if (keep)
        for (int i = 0; i < f->n_open; i++)
            if (!strcmp(f->open_ds[i].name, name)) {
                *owned = 0;
                return f->open_ds[i].id;
            }
    hid_t d = open_dataset(f, name, err);
    if (d < 0 || !keep || f->n_open == H5IO_OPEN_DATASETS) return d;
    snprintf(f->open_ds[f->n_open].name, sizeof f->open_ds[0].name, "%s", name);
    f->open_ds[f->n_open++].id = d;
    *owned = 0;
    return d;
}

static int rows_io(h5file *f, const char *name, hid_t memtype, const long *rows, long start,
                   long count, void *buf, int write, char *err)
{
    /* A rank that cannot take part must not leave the others in the collective transfer: the
     * ranks agree on the checks first. */
    int owned = 1;
    hid_t d = count < 0 ? errf(err, "%s: %s: negative row count %ld", f->path, name, count)
                        : dataset_for_rows(f, name, write, &owned, err);
    hid_t fspace = d < 0 ? -1 : H5Dget_space(d);
    hsize_t cnt[H5IO_MAX_RANK];
    int rank = d < 0 ? 0 : H5Sget_simple_extent_ndims(fspace);
    if (d >= 0) H5Sget_simple_extent_dims(fspace, cnt, NULL);
    int rc = d < 0 ? -1 : select_rows(f, name, fspace, rows, start, count, err);
    if (!rc && !write) rc = check_elem_size(f, d, name, err);
    if (dist_any_error(f->comm, rc, err)) {
        if (fspace >= 0) H5Sclose(fspace);
        if (d >= 0 && owned) H5Dclose(d);
        return -1;
    }
    cnt[0] = (hsize_t)count;
    hid_t mspace = H5Screate_simple(rank, cnt, NULL);
    if (count == 0) H5Sselect_none(mspace);
    /* One process reading has no one to be collective with: the default transfer (independent)
     * skips MPI-IO's collective set-up and a property list, which cost more than a row's read. */
    int indep = f->solo && !write;
    hid_t dxpl = indep ? H5P_DEFAULT : H5Pcreate(H5P_DATASET_XFER);
    if (!indep) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    herr_t s = write ? H5Dwrite(d, memtype, mspace, fspace, dxpl, buf)
                     : H5Dread(d, memtype, mspace, fspace, dxpl, buf);
    if (!indep) H5Pclose(dxpl);
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (owned) H5Dclose(d);
    if (s < 0) return h5_fail(f, name, write ? "write failed (disk full?)" : "read failed", err);
    return 0;
}

int h5_write_rows(h5file *f, const char *name, hid_t memtype, long start, long count,
                  const void *buf, char *err)
{
    return rows_io(f, name, memtype, NULL, start, count, (void *)buf, 1, err);
}

int h5_read_rows(h5file *f, const char *name, hid_t memtype, long start, long count, void *buf,
                 char *err)
{
    return rows_io(f, name, memtype, NULL, start, count, buf, 0, err);
}

int h5_write_row_list(h5file *f, const char *name, hid_t memtype, const long *rows, long count,
                      const void *buf, char *err)
{
    return rows_io(f, name, memtype, rows, 0, count, (void *)buf, 1, err);
}

int h5_read_row_list(h5file *f, const char *name, hid_t memtype, const long *rows, long count,
                     void *buf, char *err)
{
    return rows_io(f, name, memtype, rows, 0, count, buf, 0, err);
}

int h5_read_all(h5file *f, const char *name, hid_t memtype, void *buf, char *err)
{
    hid_t d = open_dataset(f, name, err);
    if (d < 0) return -1;
    if (check_elem_size(f, d, name, err)) {
        H5Dclose(d);
        return -1;
    }
    herr_t s = H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    if (s < 0) return h5_fail(f, name, "read failed", err);
    return 0;
}

int h5_write_small(h5file *f, const char *name, hid_t type, hid_t memtype, int rank,
                   const hsize_t *dims, const void *buf, char *err)
{
    if (h5_create_dataset(f, name, type, rank, dims, NULL, 0, err)) return -1;
    return h5_write_rows(f, name, memtype, 0, f->rank == 0 ? (long)dims[0] : 0, buf, err) ? -1 : 0;
}

/* ---- attributes ---- */

static hid_t open_obj(h5file *f, const char *obj, char *err)
{
    hid_t o = H5Oopen(f->file, obj, H5P_DEFAULT);
    if (o < 0) h5_fail(f, obj, "cannot open object", err);
    return o;
}

static int attr_write(h5file *f, const char *obj, const char *name, hid_t type, const void *val,
                      char *err)
{
    hid_t o = open_obj(f, obj, err);
    if (o < 0) return -1;
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t s = a < 0 ? -1 : H5Awrite(a, type, val);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    H5Oclose(o);
    if (s < 0) return h5_fail(f, obj, "cannot write attribute", err);
    return 0;
}

int h5_attr_write_str(h5file *f, const char *obj, const char *name, const char *value, char *err)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = attr_write(f, obj, name, t, &value, err);
    H5Tclose(t);
    return rc;
}

int h5_attr_write_long(h5file *f, const char *obj, const char *name, long value, char *err)
{
    long long v = value;
    return attr_write(f, obj, name, H5T_NATIVE_LLONG, &v, err);
}

int h5_attr_exists(h5file *f, const char *obj, const char *name)
{
    if (!h5_exists(f, obj)) return 0;
    htri_t e = H5Aexists_by_name(f->file, obj, name, H5P_DEFAULT);
    if (e < 0) H5Eclear2(H5E_DEFAULT);
    return e > 0;
}

static hid_t open_attr(h5file *f, const char *obj, const char *name, char *err)
{
    if (h5_exists(f, obj) && H5Aexists_by_name(f->file, obj, name, H5P_DEFAULT) < 0) {
        h5_fail(f, obj, "cannot read the attributes", err); /* e.g. a metadata checksum error */
        return -1;
    }
    if (!h5_attr_exists(f, obj, name)) {
        errf(err, "%s: %s: attribute '%s' is missing", f->path, obj, name);
        return -1;
    }
    hid_t a = H5Aopen_by_name(f->file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) {
        h5_fail(f, obj, "cannot open attribute", err);
        return -1;
    }
    /* Exactly one value: the readers below read into one scalar, which an array attribute of a
     * hostile file would overflow (reproduced with tests/fuzz/fuzz_h5_checkpoint). */
    hid_t sp = H5Aget_space(a);
    hssize_t count = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (sp >= 0) H5Sclose(sp);
    if (count != 1) {
        H5Aclose(a);
        H5Eclear2(H5E_DEFAULT);
        errf(err, "%s: %s: attribute '%s' holds %lld values, expected one", f->path, obj, name,
             (long long)count);
        return -1;
    }
    return a;
}

int h5_attr_read_str(h5file *f, const char *obj, const char *name, char *out, size_t out_len,
                     char *err)
{
    hid_t a = open_attr(f, obj, name, err);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a);
    int rc = 0;
    if (H5Tget_class(ft) != H5T_STRING) {
        rc = errf(err, "%s: %s: attribute '%s' is not a string", f->path, obj, name);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *s = NULL;
        if (H5Aread(a, mt, &s) < 0) rc = h5_fail(f, obj, "cannot read attribute", err);
        else snprintf(out, out_len, "%s", s ? s : "");
        if (s) {
            hid_t space = H5Aget_space(a);
            H5Dvlen_reclaim(mt, space, H5P_DEFAULT, &s);
            H5Sclose(space);
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(ft);
        char *s = calloc(n + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1); /* room for the terminator of a null-padded string */
        if (H5Aread(a, mt, s) < 0) rc = h5_fail(f, obj, "cannot read attribute", err);
        else snprintf(out, out_len, "%s", s);
        H5Tclose(mt);
        free(s);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5_attr_read_long(h5file *f, const char *obj, const char *name, long *value, char *err)
{
    hid_t a = open_attr(f, obj, name, err);
    if (a < 0) return -1;
    long long v = 0;
    herr_t s = H5Aread(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    if (s < 0) return h5_fail(f, obj, "cannot read attribute", err);
    *value = (long)v;
    return 0;
}

/* ---- walking a file ---- */

static void describe_type(hid_t t, char *out, size_t n)
{
    size_t size = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_FLOAT: snprintf(out, n, "float%zu", 8 * size); break;
    case H5T_INTEGER:
        snprintf(out, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", 8 * size);
        break;
    case H5T_STRING: snprintf(out, n, "string"); break;
    case H5T_COMPOUND: snprintf(out, n, "compound"); break;
    case H5T_ENUM: snprintf(out, n, "enum"); break;
    default: snprintf(out, n, "other"); break;
    }
}

static void describe_filters(hid_t dcpl, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    int nf = H5Pget_nfilters(dcpl);
    for (int i = 0; i < nf && len < n; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, NULL);
        const char *s = id == H5Z_FILTER_FLETCHER32 ? "fletcher32"
                        : id == H5Z_FILTER_DEFLATE  ? "deflate"
                        : id == H5Z_FILTER_SHUFFLE  ? "shuffle"
                                                    : name;
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? "," : "", s);
    }
}

typedef struct {
    h5file *f;
    int (*fn)(const h5_object *, void *);
    void *user;
    int stop;
} visit_ctx;

static herr_t visit_link(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    visit_ctx *c = data;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) { H5Eclear2(H5E_DEFAULT); return 0; }
    H5I_type_t t = H5Iget_type(o);
    char full[H5_NAME_LEN + 1]; /* "/" + the link name */
    snprintf(full, sizeof full, "/%s", name);
    h5_object ob;
    memset(&ob, 0, sizeof ob);
    ob.name = full;
    if (t == H5I_DATASET) {
        ob.is_dataset = 1;
        hid_t s = H5Dget_space(o), ty = H5Dget_type(o), dcpl = H5Dget_create_plist(o);
        int r = H5Sget_simple_extent_ndims(s);
        ob.rank = r < 0 || r > H5IO_MAX_RANK ? 0 : r;
        H5Sget_simple_extent_dims(s, ob.dims, NULL);
        describe_type(ty, ob.type, sizeof ob.type);
        if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
            ob.chunked = 1;
            H5Pget_chunk(dcpl, H5IO_MAX_RANK, ob.chunk);
        }
        describe_filters(dcpl, ob.filters, sizeof ob.filters);
        H5Pclose(dcpl);
        H5Tclose(ty);
        H5Sclose(s);
    } else if (t != H5I_GROUP) {
        H5Oclose(o);
        return 0;
    }
    H5Oclose(o);
    c->stop = c->fn(&ob, c->user);
    return c->stop ? 1 : 0;
}

int h5_visit(h5file *f, int (*fn)(const h5_object *o, void *user), void *user, char *err)
{
    visit_ctx c = {f, fn, user, 0};
    herr_t s = H5Lvisit(f->file, H5_INDEX_NAME, H5_ITER_INC, visit_link, &c);
    if (s < 0) return h5_fail(f, "/", "cannot walk the file", err);
    return c.stop;
}

typedef struct {
    h5file *f;
    int (*fn)(const char *, const char *, void *);
    void *user;
    int stop;
} attr_ctx;

/* Renders attribute a as text into out. */
static void attr_text(hid_t a, char *out, size_t n)
{
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t count = H5Sget_simple_extent_npoints(sp);
    H5T_class_t cls = H5Tget_class(ft);
    out[0] = 0;
    if (cls == H5T_STRING && count == 1) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(ft));
            char *s = NULL;
            if (H5Aread(a, mt, &s) >= 0 && s) snprintf(out, n, "%s", s);
            if (s) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &s);
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(ft);
            char *s = calloc(sz + 1, 1);
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, sz + 1);
            H5Tset_cset(mt, H5Tget_cset(ft));
            if (s && H5Aread(a, mt, s) >= 0) snprintf(out, n, "%s", s);
            H5Tclose(mt);
            free(s);
        }
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && count >= 1 && count <= (1 << 20)) {
        int isint = cls == H5T_INTEGER;
        void *buf = malloc((size_t)count * 8);
        if (buf && H5Aread(a, isint ? H5T_NATIVE_LLONG : H5T_NATIVE_DOUBLE, buf) >= 0) {
            size_t len = 0;
            if (count > 1) len += (size_t)snprintf(out, n, "[");
            for (hssize_t i = 0; i < count && i < 16 && len < n; i++)
                len += (size_t)(isint ? snprintf(out + len, n - len, "%s%lld", i ? ", " : "", ((long long *)buf)[i])
                                      : snprintf(out + len, n - len, "%s%g", i ? ", " : "", ((double *)buf)[i]));
            if (count > 16 && len < n) len += (size_t)snprintf(out + len, n - len, ", ... (%lld values)", (long long)count);
            if (count > 1 && len < n) snprintf(out + len, n - len, "]");
        }
        free(buf);
    } else {
        char ty[32];
        describe_type(ft, ty, sizeof ty);
        snprintf(out, n, "(%s, %lld values)", ty, (long long)count);
    }
    H5Sclose(sp);
    H5Tclose(ft);
}

static herr_t visit_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    attr_ctx *c = data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) { H5Eclear2(H5E_DEFAULT); return 0; }
    char text[H5_ATTR_TEXT_LEN];
    attr_text(a, text, sizeof text);
    H5Aclose(a);
    c->stop = c->fn(name, text, c->user);
    return c->stop ? 1 : 0;
}

int h5_attr_visit(h5file *f, const char *obj,
                  int (*fn)(const char *name, const char *value, void *user), void *user, char *err)
{
    hid_t o = open_obj(f, obj, err);
    if (o < 0) return -1;
    attr_ctx c = {f, fn, user, 0};
    herr_t s = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, NULL, visit_attr, &c);
    H5Oclose(o);
    if (s < 0) return h5_fail(f, obj, "cannot list attributes", err);
    return c.stop;
}
