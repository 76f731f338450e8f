/* test_atomic_file.c -- atomic_file.h: the name appears only on commit, with the bytes written;
 * every failure (cannot create, cannot rename, abort) leaves neither the name nor the partial and
 * the error names the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errors.h"
#include "paths.h"
#include "support_tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_make(dir, sizeof dir, "atomic");
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(dir);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void test_commit_writes_and_renames(void **state)
{
    (void)state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN], got[16] = "";
    snprintf(path, sizeof path, "%s/a.bin", dir);
    atomic_file a;
    assert_int_equal(atomic_file_open(&a, path, err), 0);
    assert_int_equal(atomic_file_write(&a, "hello ", 6, err), 0);
    assert_int_equal(atomic_file_write(&a, "world", 5, err), 0);
    assert_false(exists(path)); /* not under its name before commit */
    assert_true(exists(a.partial));
    assert_int_equal(atomic_file_commit(&a, err), 0);
    assert_false(exists(a.partial));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, sizeof got - 1, f), 11);
    fclose(f);
    assert_string_equal(got, "hello world");
}

static void test_abort_leaves_nothing(void **state)
{
    (void)state;
    char path[I2P_PATH_LEN], partial[I2P_PATH_LEN], err[I2P_ERR_LEN];
    snprintf(path, sizeof path, "%s/b.bin", dir);
    snprintf(partial, sizeof partial, "%s.partial", path);
    atomic_file a;
    assert_int_equal(atomic_file_open(&a, path, err), 0);
    assert_int_equal(atomic_file_write(&a, "x", 1, err), 0);
    atomic_file_abort(&a);
    atomic_file_abort(&a); /* twice is fine */
    assert_false(exists(path));
    assert_false(exists(partial));
}

static void test_cannot_create_names_file(void **state)
{
    (void)state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    snprintf(path, sizeof path, "%s/no/such/dir/c.bin", dir);
    atomic_file a;
    assert_int_equal(atomic_file_open(&a, path, err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot create"));
}

static void test_failed_rename_removes_partial(void **state)
{
    (void)state;
    char path[I2P_PATH_LEN], partial[I2P_PATH_LEN], inside[I2P_PATH_LEN], err[I2P_ERR_LEN];
    snprintf(path, sizeof path, "%s/d", dir); /* a non-empty directory: rename onto it fails */
    snprintf(inside, sizeof inside, "%s/d/keep", dir);
    snprintf(partial, sizeof partial, "%s.partial", path);
    assert_int_equal(mkdir(path, 0755), 0);
    FILE *k = fopen(inside, "w");
    assert_non_null(k);
    fclose(k);
    atomic_file a;
    assert_int_equal(atomic_file_open(&a, path, err), 0);
    assert_int_equal(atomic_file_write(&a, "y", 1, err), 0);
    assert_int_equal(atomic_file_commit(&a, err), -1);
    assert_non_null(strstr(err, "cannot rename"));
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_false(exists(partial));
    assert_true(exists(inside));
}

static void test_full_disk_is_an_error(void **state)
{
    (void)state;
    /* /dev/full as the partial: every write fails with ENOSPC (buffered: seen at commit) */
    char err[I2P_ERR_LEN];
    if (access("/dev/full", W_OK) != 0) {
        printf("SKIP: full_disk: /dev/full not writable here\n");
        skip();
    }
    atomic_file a;
    memset(&a, 0, sizeof a);
    snprintf(a.path, sizeof a.path, "%s/e.bin", dir);
    a.f = fopen("/dev/full", "wb");
    assert_non_null(a.f);
    static char big[1 << 16];
    int rc = atomic_file_write(&a, big, sizeof big, err);
    if (rc == 0) rc = atomic_file_commit(&a, err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "write failed"));
    assert_null(a.f);
    assert_false(exists(a.path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_writes_and_renames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_create_names_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_rename_removes_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_is_an_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
