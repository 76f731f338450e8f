/* test_checkpoint.c -- checkpoint round trip on synthetic buffers, corruption detection (bytes
 * flipped inside a dataset's data, truncation), configuration and size mismatches, listing and
 * pruning of a run directory, a network's two arrays alone (ckpt_read_network) and the parsed
 * configuration (ckpt_read_config). Runs as one MPI process (MPI_COMM_SELF); the multi-rank write path is
 * exercised by tests/e2e/test_pretrain.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "errors.h"
#include "h5io.h"
#include "paths.h"
#include "support_tmpdir.h"

enum { NP = 70001, NB = 37, NPERM = 100 }; /* NP spans two chunks */

typedef struct {
    float *p, *m, *v, *b;
    int64_t *perm;
    char dir[256];
} fixture;

static const char *CONFIG = "{\"model\":{\"dims\":[12,24,48],\"points\":64},\"batch\":8,\"lr\":0.001}";

static void fill(fixture *fx, float shift)
{
    for (long i = 0; i < NP; i++) {
        fx->p[i] = 1000.25f + (float)i * 0.5f + shift; /* distinctive bytes to find in the file */
        fx->m[i] = -(float)i * 1e-3f + shift;
        fx->v[i] = (float)i * 1e-6f + shift;
    }
    for (long i = 0; i < NB; i++) fx->b[i] = (float)i + shift;
    for (long i = 0; i < NPERM; i++) fx->perm[i] = (NPERM - 1 - i) * 7 % NPERM;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx->p = malloc(sizeof(float) * NP);
    fx->m = malloc(sizeof(float) * NP);
    fx->v = malloc(sizeof(float) * NP);
    fx->b = malloc(sizeof(float) * NB);
    fx->perm = malloc(sizeof(int64_t) * NPERM);
    assert_int_equal(test_tmpdir_make(fx->dir, sizeof fx->dir, "ckpt"), 0);
    fill(fx, 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    assert_int_equal(test_tmpdir_remove(fx->dir), 0);
    free(fx->p); free(fx->m); free(fx->v); free(fx->b); free(fx->perm);
    free(fx);
    return 0;
}

static int arrays_of(fixture *fx, ckpt_array *a)
{
    a[0] = (ckpt_array){"/params", CKPT_F32, fx->p, NP};
    a[1] = (ckpt_array){"/adamw/m", CKPT_F32, fx->m, NP};
    a[2] = (ckpt_array){"/adamw/v", CKPT_F32, fx->v, NP};
    a[3] = (ckpt_array){"/buffers", CKPT_F32, fx->b, NB};
    a[4] = (ckpt_array){"/data_order/perm", CKPT_I64, fx->perm, NPERM};
    return 5;
}

static void write_ckpt(fixture *fx, long step, char *path) /* path: I2P_PATH_LEN bytes */
{
    char err[I2P_ERR_LEN];
    ckpt_array a[5];
    int n = arrays_of(fx, a);
    ckpt_state st = {.step = step, .epoch = 3, .epoch_pos = 16, .seed = 42};
    ckpt_path(path, I2P_PATH_LEN, fx->dir, step);
    int rc = ckpt_write(path, MPI_COMM_SELF, &st, CONFIG, "test", a, n, err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

static void test_round_trip(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    write_ckpt(fx, 20, path);
    char partial[I2P_PATH_LEN];
    snprintf(partial, sizeof partial, "%s.partial", path);
    assert_int_equal(access(partial, F_OK), -1);

    fixture got = *fx;
    got.p = calloc(NP, sizeof(float)); got.m = calloc(NP, sizeof(float));
    got.v = calloc(NP, sizeof(float)); got.b = calloc(NB, sizeof(float));
    got.perm = calloc(NPERM, sizeof(int64_t));
    ckpt_array a[5];
    int n = arrays_of(&got, a);
    ckpt_state st = {0};
    int rc = ckpt_read(path, MPI_COMM_SELF, &st, CONFIG, a, n, err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(st.step, 20);
    assert_int_equal(st.epoch, 3);
    assert_int_equal(st.epoch_pos, 16);
    assert_int_equal(st.seed, 42);
    assert_memory_equal(got.p, fx->p, sizeof(float) * NP);
    assert_memory_equal(got.m, fx->m, sizeof(float) * NP);
    assert_memory_equal(got.v, fx->v, sizeof(float) * NP);
    assert_memory_equal(got.b, fx->b, sizeof(float) * NB);
    assert_memory_equal(got.perm, fx->perm, sizeof(int64_t) * NPERM);

    char cfg[CKPT_CONFIG_LEN];
    assert_int_equal(ckpt_read_header(path, MPI_COMM_SELF, &st, cfg, err), 0);
    assert_string_equal(cfg, CONFIG);
    long count = -1;
    assert_int_equal(ckpt_array_count(path, MPI_COMM_SELF, "/buffers", &count, err), 0);
    assert_int_equal(count, NB);
    assert_int_equal(ckpt_array_count(path, MPI_COMM_SELF, "/nothing", &count, err), 0);
    assert_int_equal(count, 0);
    free(got.p); free(got.m); free(got.v); free(got.b); free(got.perm);
}

/* Flips one byte in the middle of the stored /params data (found by its distinctive bytes). */
static void flip_param_byte(const char *path, long elem)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *buf = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    float needle[4];
    for (int i = 0; i < 4; i++) needle[i] = 1000.25f + (float)(elem + i) * 0.5f;
    long at = -1;
    for (long o = 0; o + 16 <= size; o++)
        if (!memcmp(buf + o, needle, 16)) { at = o; break; }
    assert_true(at >= 0);
    fseek(f, at + 5, SEEK_SET);
    fputc(buf[at + 5] ^ 0x5a, f);
    fclose(f);
    free(buf);
}

static void test_corruption_detected(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    write_ckpt(fx, 30, path);
    flip_param_byte(path, 68000); /* inside the second chunk */
    ckpt_array a[5];
    int n = arrays_of(fx, a);
    ckpt_state st;
    assert_int_equal(ckpt_read(path, MPI_COMM_SELF, &st, CONFIG, a, n, err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "corrupt"));
    assert_non_null(strstr(err, "/params"));
}

static void test_truncated_detected(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    write_ckpt(fx, 31, path);
    struct stat st0;
    assert_int_equal(stat(path, &st0), 0);
    assert_int_equal(truncate(path, st0.st_size / 2), 0);
    ckpt_array a[5];
    int n = arrays_of(fx, a);
    ckpt_state st;
    assert_int_equal(ckpt_read(path, MPI_COMM_SELF, &st, CONFIG, a, n, err), -1);
    assert_non_null(strstr(err, "corrupt"));
}

static void test_config_mismatch(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    write_ckpt(fx, 40, path);
    ckpt_array a[5];
    int n = arrays_of(fx, a);
    ckpt_state st;
    const char *other = "{\"model\":{\"dims\":[12,24,64],\"points\":64},\"batch\":8}";
    assert_int_equal(ckpt_read(path, MPI_COMM_SELF, &st, other, a, n, err), -1);
    /* only the differing key, not the whole object (issue 18, 13) */
    assert_non_null(strstr(err, "configuration differs: 'model.dims' is [12,24,48] in the checkpoint "
                                "but [12,24,64] here"));
    assert_null(strstr(err, "points"));
    const char *extra = "{\"batch\":8,\"warmup\":3}";
    assert_int_equal(ckpt_read(path, MPI_COMM_SELF, &st, extra, a, n, err), -1);
    assert_non_null(strstr(err, "'warmup' is missing"));
    /* a subset of the stored keys with equal values is accepted */
    assert_int_equal(ckpt_read(path, MPI_COMM_SELF, &st, "{\"batch\":8}", a, n, err), 0);
}

/* A key added after checkpoints were first written (train.precision): a checkpoint without it was
 * trained in fp32, so an fp32 run resumes from it and a bf16 run is refused. */
static void test_config_key_added_later(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    const char *old = "{\"train\":{\"seed\":1}}";
    assert_int_equal(ckpt_config_compare(old, "{\"train\":{\"seed\":1,\"precision\":\"fp32\"}}", "c.h5", err), 0);
    assert_int_equal(ckpt_config_compare(old, "{\"train\":{\"seed\":1,\"precision\":\"bf16\"}}", "c.h5", err), -1);
    assert_non_null(strstr(err, "'train.precision' is missing in the checkpoint"));
    /* only that path: another missing key is still refused */
    assert_int_equal(ckpt_config_compare(old, "{\"train\":{\"seed\":1,\"lr\":0.1}}", "c.h5", err), -1);
    assert_int_equal(ckpt_config_compare("{}", "{\"precision\":\"fp32\"}", "c.h5", err), -1);
}

static void test_size_mismatch(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    write_ckpt(fx, 50, path);
    ckpt_array a[5];
    int n = arrays_of(fx, a);
    a[0].count = NP - 1;
    ckpt_state st;
    assert_int_equal(ckpt_read(path, MPI_COMM_SELF, &st, NULL, a, n, err), -1);
    assert_non_null(strstr(err, "/params has 70001 elements, this run needs 70000"));
}

/* ckpt_read_network: the two network arrays and the state from a checkpoint that holds more (the
 * moments and the order are not read); a /buffers of another size is an error naming it. And
 * ckpt_read_config: the stored configuration parsed, the same object as CONFIG. */
static void test_read_network_and_config(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    write_ckpt(fx, 30, path);
    float *p = calloc(NP, sizeof(float)), *b = calloc(NB + 1, sizeof(float));
    ckpt_state st = {0};
    int rc = ckpt_read_network(path, MPI_COMM_SELF, p, NP, b, NB, &st, err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(st.step, 30);
    assert_int_equal(st.epoch, 3);
    assert_memory_equal(p, fx->p, sizeof(float) * NP);
    assert_memory_equal(b, fx->b, sizeof(float) * NB);
    assert_int_equal(ckpt_read_network(path, MPI_COMM_SELF, p, NP, b, NB, NULL, err), 0); /* no state wanted */
    assert_int_equal(ckpt_read_network(path, MPI_COMM_SELF, p, NP, b, NB + 1, NULL, err), -1);
    assert_non_null(strstr(err, "/buffers has 37 elements, this run needs 38"));

    cJSON *root = NULL;
    assert_int_equal(ckpt_read_config(path, MPI_COMM_SELF, &st, &root, err), 0);
    cJSON *want = cJSON_Parse(CONFIG);
    assert_true(cJSON_Compare(root, want, 1));
    assert_int_equal(st.step, 30);
    cJSON_Delete(want);
    cJSON_Delete(root);
    assert_int_equal(ckpt_read_config("/nonexistent/ckpt-00000001.h5", MPI_COMM_SELF, &st, &root, err), -1);
    assert_null(root);
    char bad[I2P_PATH_LEN];
    snprintf(bad, sizeof bad, "%s/notjson.h5", fx->dir);
    ckpt_array a[5];
    int n = arrays_of(fx, a);
    assert_int_equal(ckpt_write(bad, MPI_COMM_SELF, &st, "{\"model\": [1,", NULL, a, n, err), 0);
    assert_int_equal(ckpt_read_config(bad, MPI_COMM_SELF, &st, &root, err), -1);
    assert_null(root);
    assert_non_null(strstr(err, "notjson.h5: configuration is not JSON"));
    free(p);
    free(b);
}

static void test_list_and_prune(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    for (long s = 1; s <= 5; s++) write_ckpt(fx, s * 100, path);
    char stale[I2P_PATH_LEN];
    ckpt_path(path, sizeof path, fx->dir, 600);
    snprintf(stale, sizeof stale, "%s.partial", path);
    FILE *f = fopen(stale, "w");
    assert_non_null(f);
    fclose(f);
    long steps[16];
    int n = ckpt_list(fx->dir, MPI_COMM_SELF, steps, 16, err);
    assert_true(n >= 5);
    assert_int_equal(steps[0], 500);
    assert_int_equal(ckpt_prune(fx->dir, MPI_COMM_SELF, 2, err), 0);
    n = ckpt_list(fx->dir, MPI_COMM_SELF, steps, 16, err);
    assert_int_equal(n, 2);
    assert_int_equal(steps[0], 500);
    assert_int_equal(steps[1], 400);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(ckpt_list("/nonexistent/dir", MPI_COMM_SELF, steps, 16, err), -1);
    assert_non_null(strstr(err, "/nonexistent/dir"));
}

/* ckpt_list with fewer places than files keeps the newest, whatever order the directory lists
 * them in (40 names, created in a scrambled order). */
static void test_list_keeps_newest(void **state)
{
    fixture *fx = *state;
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    for (int i = 0; i < 40; i++) {
        ckpt_path(path, sizeof path, fx->dir, 1 + (i * 17) % 40); /* 17 is prime to 40: each once */
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
    }
    long steps[3];
    assert_int_equal(ckpt_list(fx->dir, MPI_COMM_SELF, steps, 1, err), 1);
    assert_int_equal(steps[0], 40);
    assert_int_equal(ckpt_list(fx->dir, MPI_COMM_SELF, steps, 3, err), 3);
    assert_int_equal(steps[0], 40);
    assert_int_equal(steps[1], 39);
    assert_int_equal(steps[2], 38);
}

static void test_unwritable_dir(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    float x = 1;
    ckpt_array a = {"/params", CKPT_F32, &x, 1};
    ckpt_state st = {0};
    assert_int_equal(ckpt_write("/nonexistent/dir/ckpt-00000001.h5", MPI_COMM_SELF, &st, "{}", NULL,
                                &a, 1, err), -1);
    assert_non_null(strstr(err, "/nonexistent/dir"));
}

/* An array written in slices (ckpt_write_parts: a pipeline stage's packed moments), cut in several
 * collective pieces and held out of order in memory, reads back whole (ckpt_read) and as the same
 * slices (ckpt_read_parts) with the same bits. */
static void test_sliced_round_trip(void **state)
{
    fixture *fx = *state;
    enum { N = 2500007 }; /* beyond two write pieces of 16 chunks */
    float *packed = malloc(sizeof(float) * N), *whole = calloc(N, sizeof(float)),
          *again = calloc(N, sizeof(float));
    assert_true(packed && whole && again);
    const ckpt_slice sl[3] = {{700001, N - 700001, 0}, {0, 300000, N - 700001}, {300000, 400001, N - 400001}};
    for (int k = 0; k < 3; k++)
        for (long i = 0; i < sl[k].count; i++) packed[sl[k].at + i] = 1.0f + (float)(sl[k].off + i) * 0.25f;
    ckpt_array a[2] = {{"/adamw/m", CKPT_F32, packed, N}, {"/buffers", CKPT_F32, fx->b, NB}};
    ckpt_part parts[2] = {{sl, 3}, {NULL, 0}};
    ckpt_state st = {.step = 5, .epoch = 1, .epoch_pos = 0, .seed = 42};
    char path[I2P_PATH_LEN], err[I2P_ERR_LEN];
    ckpt_path(path, sizeof path, fx->dir, 5);
    int rc = ckpt_write_parts(path, MPI_COMM_SELF, &st, CONFIG, NULL, a, parts, 2, err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    ckpt_array w[1] = {{"/adamw/m", CKPT_F32, whole, N}};
    assert_int_equal(ckpt_read(path, MPI_COMM_SELF, &st, CONFIG, w, 1, err), 0);
    for (long i = 0; i < N; i++)
        if (whole[i] != 1.0f + (float)i * 0.25f) fail_msg("element %ld: %g", i, whole[i]);
    ckpt_array r[1] = {{"/adamw/m", CKPT_F32, again, N}};
    assert_int_equal(ckpt_read_parts(path, MPI_COMM_SELF, &st, CONFIG, r, parts, 1, err), 0);
    assert_memory_equal(packed, again, sizeof(float) * N);
    free(packed);
    free(whole);
    free(again);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    h5io_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sliced_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_mismatch, setup, teardown),
        cmocka_unit_test(test_config_key_added_later),
        cmocka_unit_test_setup_teardown(test_size_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_network_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_keeps_newest, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
