/* test_features.c -- the features file: create, write rows in flushes (row lists with gaps), resume
 * with the same / another identity, read back in any order, half storage, commit. */
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
#include "features_file.h"
#include "half.h"
#include "support_tmpdir.h"

enum { N = 7, V = 2, G = 3, C = 4, P = 5 };
static char dir[256];

static features_meta meta(int fp32)
{
    features_meta m = {.n = N, .points = P, .views = V, .image = 48, .patch = 16, .grid = G,
                       .feat_dim = C, .block = 3, .fp32 = fp32};
    snprintf(m.vit, sizeof m.vit, "random:tiny");
    snprintf(m.vit_spec, sizeof m.vit_spec, "random:tiny");
    snprintf(m.weights_sha256, sizeof m.weights_sha256, "%064d", 0);
    snprintf(m.precision, sizeof m.precision, "fp32");
    snprintf(m.source, sizeof m.source, "data.h5");
    snprintf(m.source_fingerprint, sizeof m.source_fingerprint, "0123456789abcdef");
    return m;
}

static float value(long row, long i) { return (float)row + 0.001f * (float)i + 0.25f; }

/* writes rows[] with values derived from the row index */
static void write_rows(features_file *ff, const long *rows, long count, int fp32)
{
    long np = V * G * G * C, nc = V * C;
    float *pf = malloc(sizeof(float) * count * np), *cf = malloc(sizeof(float) * count * nc);
    uint16_t *ph = malloc(2 * count * np), *ch = malloc(2 * count * nc);
    float *sal = malloc(sizeof(float) * count * V * G * G), *ps = malloc(sizeof(float) * count * P);
    int16_t *pix = malloc(2 * count * V * P * 2);
    int32_t *lab = malloc(4 * count);
    for (long k = 0; k < count; k++) {
        for (long i = 0; i < np; i++) pf[k * np + i] = value(rows[k], i);
        for (long i = 0; i < nc; i++) cf[k * nc + i] = -value(rows[k], i);
        for (long i = 0; i < V * G * G; i++) sal[k * V * G * G + i] = value(rows[k], i) / 100;
        for (long i = 0; i < P; i++) ps[k * P + i] = (float)rows[k];
        for (long i = 0; i < V * P * 2; i++) pix[k * V * P * 2 + i] = (int16_t)((rows[k] * 10 + i) % 48); /* pixels of a 48 px view */
        lab[k] = (int32_t)(rows[k] % 3);
    }
    half_from_floats(pf, count * np, ph);
    half_from_floats(cf, count * nc, ch);
    features_rows r = {rows, count,
                       {[FEATURES_PATCH] = fp32 ? (void *)pf : (void *)ph,
                        [FEATURES_CLS] = fp32 ? (void *)cf : (void *)ch,
                        [FEATURES_SALIENCY] = sal, [FEATURES_PIXEL] = pix,
                        [FEATURES_POINT_SALIENCY] = ps, [FEATURES_LABEL] = lab}};
    char err[I2P_ERR_LEN];
    assert_int_equal(features_write_rows(ff, &r, err), 0);
    free(pf), free(cf), free(ph), free(ch), free(sal), free(ps), free(pix), free(lab);
}

static void roundtrip(int fp32)
{
    char path[512], err[I2P_ERR_LEN];
    snprintf(path, sizeof path, "%s/f%d.h5", dir, fp32);
    features_meta m = meta(fp32);
    features_file ff;
    assert_int_equal(features_create(&ff, path, MPI_COMM_SELF, &m, "{\"a\":1}", 0, err), 0);
    const long first[] = {0, 1, 4};
    write_rows(&ff, first, 3, fp32);
    features_close_partial(&ff);
    assert_int_equal(access(path, F_OK), -1); /* nothing under the final name yet */

    /* another identity is refused; the same one resumes with the done rows kept */
    features_meta other = m;
    other.views = 1;
    assert_int_equal(features_resume(&ff, path, MPI_COMM_SELF, &other, err), -1);
    assert_non_null(strstr(err, "another configuration"));
    assert_int_equal(features_resume(&ff, path, MPI_COMM_SELF, &m, err), 1);
    uint8_t done[N];
    assert_int_equal(features_read_done(&ff, done, err), 0);
    const uint8_t want[N] = {1, 1, 0, 0, 1, 0, 0};
    assert_memory_equal(done, want, N);
    const long rest[] = {2, 3, 5, 6};
    write_rows(&ff, rest, 4, fp32);
    assert_int_equal(features_commit(&ff, err), 0);
    assert_int_equal(access(path, F_OK), 0);

    features_file rd;
    assert_int_equal(features_open(&rd, path, MPI_COMM_SELF, err), 0);
    assert_int_equal(rd.m.fp32, fp32);
    assert_int_equal(rd.m.grid, G);
    long missing = -1;
    assert_int_equal(features_count_missing(&rd, &missing, err), 0);
    assert_int_equal(missing, 0);
    const long rows[] = {6, 0, 6, 3, 2}; /* any order, duplicates, a run of consecutive rows */
    enum { NR = 5 };
    long np = V * G * G * C;
    float *patch = malloc(sizeof(float) * NR * np);
    assert_int_equal(features_read_patch(&rd, rows, NR, patch, err), 0);
    for (int k = 0; k < NR; k++)
        for (long i = 0; i < np; i++) {
            float v = value(rows[k], i);
            float w = fp32 ? v : half_to_float(half_from_float(v));
            assert_true(patch[k * np + i] == w);
        }
    float ps[NR * P];
    int16_t pix[NR * V * P * 2];
    int32_t lab[NR];
    assert_int_equal(features_read_point_saliency(&rd, rows, NR, ps, err), 0);
    assert_int_equal(features_read_pixel(&rd, rows, NR, pix, err), 0);
    assert_int_equal(features_read_label(&rd, rows, NR, lab, err), 0);
    for (int k = 0; k < NR; k++) {
        assert_true(ps[k * P] == (float)rows[k]);
        assert_int_equal(pix[k * V * P * 2 + 3], (rows[k] * 10 + 3) % 48);
        assert_int_equal(lab[k], rows[k] % 3);
    }
    const long outside[] = {1, N}; /* the row-list read's own error */
    assert_int_equal(features_read_label(&rd, outside, 2, lab, err), -1);
    assert_non_null(strstr(err, "outside the"));
    features_close(&rd);
    free(patch);
}

static void test_roundtrip_half(void **state)
{
    (void)state;
    roundtrip(0);
}

static void test_roundtrip_fp32(void **state)
{
    (void)state;
    roundtrip(1);
}

static void test_open_rejects_other_files(void **state)
{
    (void)state;
    char path[512], err[I2P_ERR_LEN];
    snprintf(path, sizeof path, "%s/junk.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("not hdf5", f);
    fclose(f);
    features_file ff;
    assert_int_equal(features_open(&ff, path, MPI_COMM_SELF, err), -1);
    assert_non_null(strstr(err, "not an HDF5 file"));
}

/* The table's row sizes and dims against the layout written out by hand (docs/features.md). */
static void test_layout_table(void **state)
{
    (void)state;
    features_meta h = meta(0), f = meta(1);
    /* patch V*G*G*C, cls V*C (2 bytes half, 4 float), saliency V*G*G*4, pixel V*P*2*2,
     * point_saliency P*4, label 4, done 1 */
    assert_int_equal(features_sample_bytes(&h), 2 * 72 + 2 * 8 + 4 * 18 + 2 * 20 + 4 * 5 + 4 + 1);
    assert_int_equal(features_sample_bytes(&f), 4 * 72 + 4 * 8 + 4 * 18 + 2 * 20 + 4 * 5 + 4 + 1);
    assert_int_equal(features_row_elems(&h, FEATURES_PIXEL), V * P * 2);
    assert_int_equal(features_row_elems(&h, FEATURES_DONE), 1);
    features_dataset d = features_dataset_of(&h, FEATURES_PATCH);
    assert_string_equal(d.name, "/patch");
    assert_int_equal(d.rank, 5);
    const hsize_t want[5] = {N, V, G, G, C};
    assert_memory_equal(d.dims, want, sizeof want);
    assert_true(H5Tequal(d.file_type, h5_type_f16()) > 0);
    assert_true(H5Tequal(features_dataset_of(&f, FEATURES_PATCH).file_type, H5T_IEEE_F32LE) > 0);
    d = features_dataset_of(&h, FEATURES_POINT_SALIENCY);
    assert_string_equal(d.name, "/point_saliency");
    assert_int_equal(d.rank, 2);
    assert_int_equal(d.dims[1], P);
    assert_int_equal(d.per_sample_chunks, 1);
    assert_int_equal(features_dataset_of(&h, FEATURES_LABEL).per_sample_chunks, 0);
}

/* The identity JSON is what a restart compares with files already on disk: it must not change. */
static void test_identity_json_unchanged(void **state)
{
    (void)state;
    features_meta m = meta(0);
    char *s = features_identity_json(&m);
    assert_string_equal(s, "{\"source\":\"data.h5\",\"source_samples\":7,\"source_points\":5,"
                           "\"source_fingerprint\":\"0123456789abcdef\",\"vit_spec\":\"random:tiny\","
                           "\"weights_sha256\":\"0000000000000000000000000000000000000000000000000000"
                           "000000000000\",\"views\":2,\"image\":48,\"block\":3,\"precision\":"
                           "\"fp32\",\"storage\":\"fp16\"}");
    free(s);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (test_tmpdir_make(dir, sizeof dir, "features")) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_half),
        cmocka_unit_test(test_roundtrip_fp32),
        cmocka_unit_test(test_open_rejects_other_files),
        cmocka_unit_test(test_layout_table),
        cmocka_unit_test(test_identity_json_unchanged),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (test_tmpdir_remove(dir)) rc = rc ? rc : 1;
    MPI_Finalize();
    return rc;
}
