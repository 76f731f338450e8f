/* test_h5io.c -- row reads of a read-only file of one process (MPI_COMM_SELF): the datasets read stay
 * open (up to H5IO_OPEN_DATASETS; the rest are opened per read and closed), the values are the ones
 * written, a missing dataset is an error that keeps nothing, h5_close leaves no HDF5 object open, and a
 * writable file keeps nothing open. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "h5io.h"
#include "support_tmpdir.h"

enum { ROWS = 6, COLS = 3, SETS = H5IO_OPEN_DATASETS + 3 };
static char dir[256];

static float value(int set, long row, long col) { return (float)(100 * set + 10 * row + col) + 0.5f; }

static void set_name(char *name, size_t len, int set) { snprintf(name, len, "/d%02d", set); }

/* SETS datasets of ROWS x COLS floats, committed under path */
static void make_file(const char *path)
{
    char err[I2P_ERR_LEN], name[16];
    h5file f;
    assert_int_equal(h5_create(&f, path, MPI_COMM_SELF, 1, err), 0);
    hsize_t dims[2] = {ROWS, COLS}, chunk[2] = {1, COLS};
    float buf[ROWS * COLS];
    for (int s = 0; s < SETS; s++) {
        for (long r = 0; r < ROWS; r++)
            for (long c = 0; c < COLS; c++) buf[r * COLS + c] = value(s, r, c);
        set_name(name, sizeof name, s);
        assert_int_equal(h5_create_dataset(&f, name, H5T_IEEE_F32LE, 2, dims, chunk, 0, err), 0);
        assert_int_equal(h5_write_rows(&f, name, H5T_NATIVE_FLOAT, 0, ROWS, buf, err), 0);
    }
    assert_int_equal(h5_commit(&f, err), 0);
}

/* rows [start, start + count) of set s read through f equal what make_file wrote */
static void expect_rows(h5file *f, int s, long start, long count)
{
    char err[I2P_ERR_LEN], name[16];
    float buf[ROWS * COLS];
    set_name(name, sizeof name, s);
    memset(buf, 0xff, sizeof buf);
    if (h5_read_rows(f, name, H5T_NATIVE_FLOAT, start, count, buf, err)) fail_msg("%s", err);
    for (long r = 0; r < count; r++)
        for (long c = 0; c < COLS; c++)
            if (buf[r * COLS + c] != value(s, start + r, c))
                fail_msg("%s row %ld col %ld: %g, want %g", name, start + r, c, buf[r * COLS + c],
                         value(s, start + r, c));
}

static void test_solo_reads_keep_datasets(void **state)
{
    (void)state;
    char path[300], err[I2P_ERR_LEN];
    snprintf(path, sizeof path, "%s/rows.h5", dir);
    make_file(path);
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    h5file f;
    assert_int_equal(h5_open_read(&f, path, MPI_COMM_SELF, err), 0);
    assert_int_equal(f.solo, 1);
    for (int pass = 0; pass < 3; pass++) /* every set several times, in both orders */
        for (int i = 0; i < SETS; i++) {
            int s = pass == 1 ? SETS - 1 - i : i;
            expect_rows(&f, s, (s + pass) % ROWS, 1);
            expect_rows(&f, s, 0, ROWS);
            expect_rows(&f, s, 2, 3);
        }
    /* the first H5IO_OPEN_DATASETS sets stay open, the others were closed after each read */
    assert_int_equal(f.n_open, H5IO_OPEN_DATASETS);
    assert_int_equal(H5Fget_obj_count(f.file, H5F_OBJ_DATASET), H5IO_OPEN_DATASETS);
    float buf[2 * COLS]; /* room for the 2 rows asked, should the range check fail */
    assert_int_equal(h5_read_rows(&f, "/nope", H5T_NATIVE_FLOAT, 0, 1, buf, err), -1);
    assert_non_null(strstr(err, "dataset /nope is missing"));
    assert_int_equal(h5_read_rows(&f, "/d00", H5T_NATIVE_FLOAT, ROWS - 1, 2, buf, err), -1);
    assert_int_equal(f.n_open, H5IO_OPEN_DATASETS);
    h5_close(&f);
    assert_int_equal(f.n_open, 0);
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0); /* nothing left open */
    /* opened again: the handles of the first open are gone, the values the same */
    assert_int_equal(h5_open_read(&f, path, MPI_COMM_SELF, err), 0);
    expect_rows(&f, SETS - 1, 1, 4);
    expect_rows(&f, 0, 0, ROWS);
    assert_int_equal(f.n_open, 2);
    h5_close(&f);
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

/* A file being written keeps nothing open: its datasets may still be created or extended. */
static void test_writable_keeps_nothing(void **state)
{
    (void)state;
    char path[300], err[I2P_ERR_LEN];
    snprintf(path, sizeof path, "%s/w.h5", dir);
    h5file f;
    assert_int_equal(h5_create(&f, path, MPI_COMM_SELF, 1, err), 0);
    hsize_t dims[2] = {ROWS, COLS};
    float buf[ROWS * COLS];
    for (long i = 0; i < ROWS * COLS; i++) buf[i] = (float)i;
    assert_int_equal(h5_create_dataset(&f, "/x", H5T_IEEE_F32LE, 2, dims, NULL, 0, err), 0);
    assert_int_equal(h5_write_rows(&f, "/x", H5T_NATIVE_FLOAT, 0, ROWS, buf, err), 0);
    float back[ROWS * COLS];
    assert_int_equal(h5_read_rows(&f, "/x", H5T_NATIVE_FLOAT, 0, ROWS, back, err), 0);
    assert_memory_equal(back, buf, sizeof buf);
    assert_int_equal(f.n_open, 0);
    assert_int_equal(h5_commit(&f, err), 0);
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    h5io_init();
    if (test_tmpdir_make(dir, sizeof dir, "h5io")) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_solo_reads_keep_datasets),
        cmocka_unit_test(test_writable_keeps_nothing),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (test_tmpdir_remove(dir)) rc = rc ? rc : 1;
    MPI_Finalize();
    return rc;
}
