/* test_dist.c -- dist_block_range, dist_any_error and dist_grid_create, on any world size.
 * Run serially by the test driver and under mpirun -np 2/3/4 by tests/e2e/test_dist_mpi.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "dist.h"
#include "errors.h"

static int g_rank, g_size;

/* Blocks tile [0, n) in order, sizes differ by at most one, lower parts get the larger ones. */
static void test_block_range_properties(void **state)
{
    (void)state;
    for (long n = 0; n <= 40; n++) {
        for (int parts = 1; parts <= 7; parts++) {
            long next = 0, prev_count = -1;
            for (int i = 0; i < parts; i++) {
                long start, count;
                dist_block_range(n, parts, i, &start, &count);
                assert_int_equal(start, next);
                assert_true(count == n / parts || count == n / parts + 1);
                if (prev_count >= 0) assert_true(count <= prev_count);
                prev_count = count;
                next = start + count;
            }
            assert_int_equal(next, n);
        }
    }
    long s, c;
    dist_block_range(10, 4, 0, &s, &c); /* 3,3,2,2 */
    assert_int_equal(s, 0); assert_int_equal(c, 3);
    dist_block_range(10, 4, 3, &s, &c);
    assert_int_equal(s, 8); assert_int_equal(c, 2);
}

static void test_any_error_none(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN] = "untouched";
    assert_int_equal(dist_any_error(MPI_COMM_WORLD, 0, err), 0);
    assert_string_equal(err, "untouched");
}

/* The last rank fails alone: every rank gets -1 and its message. */
static void test_any_error_one_rank(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN] = "";
    int rc = 0;
    if (g_rank == g_size - 1) rc = errf(err, "x.h5: rank %d saw a NaN", g_rank);
    assert_int_equal(dist_any_error(MPI_COMM_WORLD, rc, err), -1);
    char want[64];
    snprintf(want, sizeof want, "x.h5: rank %d saw a NaN", g_size - 1);
    assert_string_equal(err, want);
}

/* Several ranks fail: the lowest failing rank's message wins everywhere. */
static void test_any_error_lowest_wins(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN] = "";
    int rc = 0;
    if (g_rank >= 1 || g_size == 1) rc = errf(err, "rank %d failed", g_rank);
    assert_int_equal(dist_any_error(MPI_COMM_WORLD, rc, err), -1);
    assert_string_equal(err, g_size == 1 ? "rank 0 failed" : "rank 1 failed");
}

static void test_grid_bad_stages(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN] = "";
    dist_grid g;
    /* size + 1 never divides size: every rank fails with the same message, without hanging */
    assert_int_equal(dist_grid_create(&g, MPI_COMM_WORLD, g_size + 1, err), -1);
    char want[128];
    snprintf(want, sizeof want, "world size %d is not a multiple of --stages %d", g_size, g_size + 1);
    assert_string_equal(err, want);
    assert_int_equal(dist_grid_create(&g, MPI_COMM_WORLD, 0, err), -1);
    assert_non_null(strstr(err, "--stages 0"));
}

static void test_grid_layout(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    for (int stages = 1; stages <= g_size; stages++) {
        if (g_size % stages) continue;
        dist_grid g;
        assert_int_equal(dist_grid_create(&g, MPI_COMM_WORLD, stages, err), 0);
        assert_int_equal(g.data, g_size / stages);
        assert_int_equal(g.stage, g_rank % stages);
        assert_int_equal(g.replica, g_rank / stages);
        int r, n;
        MPI_Comm_size(g.stage_comm, &n);
        MPI_Comm_rank(g.stage_comm, &r);
        assert_int_equal(n, g.data);
        assert_int_equal(r, g.replica);
        MPI_Comm_size(g.replica_comm, &n);
        MPI_Comm_rank(g.replica_comm, &r);
        assert_int_equal(n, stages);
        assert_int_equal(r, g.stage);
        /* stage_comm joins the same stage: the sum of world ranks there is known */
        int sum = 0;
        MPI_Allreduce(&g_rank, &sum, 1, MPI_INT, MPI_SUM, g.stage_comm);
        int want = 0;
        for (int rep = 0; rep < g.data; rep++) want += rep * stages + g.stage;
        assert_int_equal(sum, want);
        dist_grid_free(&g);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_range_properties), cmocka_unit_test(test_any_error_none),
        cmocka_unit_test(test_any_error_one_rank),     cmocka_unit_test(test_any_error_lowest_wins),
        cmocka_unit_test(test_grid_bad_stages),        cmocka_unit_test(test_grid_layout),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return failed ? 1 : 0;
}
