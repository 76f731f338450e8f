/* support_ref.c -- reading and comparing reference tensors for the *_ref unit tests (support_ref.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "ref_python.h"
#include "support_dnn.h"
#include "support_ref.h"

static char g_ref_path[256];
static int g_have_ref = -1; /* -1 not looked yet, 0 modules missing, 1 present */
static int g_ref_ok;

float *ref_read_floats(h5file *f, const char *name, long n)
{
    char err[I2P_ERR_LEN];
    int rank;
    hsize_t dims[H5IO_MAX_RANK];
    if (h5_dims(f, name, &rank, dims, err)) { printf("%s\n", err); return NULL; }
    long count = 1;
    for (int i = 0; i < rank; i++) count *= (long)dims[i];
    if (count != n) { printf("%s: %ld values, expected %ld\n", name, count, n); return NULL; }
    float *v = malloc(sizeof(float) * (size_t)n);
    if (h5_read_all(f, name, H5T_NATIVE_FLOAT, v, err)) { printf("%s\n", err); free(v); return NULL; }
    return v;
}

void ref_matmul(double *c, double *absum, const float *a, long sa0, long sa1, const float *b, long sb0, long sb1,
                long rows, long n, long cols)
{
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++) {
            double s = 0, as = 0;
            for (long k = 0; k < n; k++) {
                double x = a[i * sa0 + k * sa1], y = b[k * sb0 + j * sb1];
                s += x * y;
                as += fabs(x * y);
            }
            c[i * cols + j] = s;
            if (absum) absum[i * cols + j] = as;
        }
}

double ref_max_abs(const float *v, long n)
{
    double m = 0;
    for (long i = 0; i < n; i++) if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

int ref_compare(const char *what, const float *c, const float *r, long n, double rel, double abs_tol)
{
    double mr = ref_max_abs(r, n), md = 0;
    for (long i = 0; i < n; i++) if (fabs((double)c[i] - r[i]) > md) md = fabs((double)c[i] - r[i]);
    int bad = md > rel * mr + abs_tol;
    printf("%-48s max|r| %.3e  max|c-r| %.3e  %s\n", what, mr, md, bad ? "NOT OK" : "OK");
    return bad;
}

void ref_load_tensors(h5file *f, const char *group, const model3d_tensor *t, int n, float *base)
{
    char name[256];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s/%s", group, t[i].name);
        float *v = ref_read_floats(f, name, t[i].count);
        assert_non_null(v);
        memcpy(base + t[i].offset, v, sizeof(float) * (size_t)t[i].count);
        free(v);
    }
}

/* "<label> <name>", or "<name>" when label is empty */
static void tensor_label(char *what, size_t size, const char *label, const char *name)
{
    if (label[0]) snprintf(what, size, "%s %s", label, name);
    else snprintf(what, size, "%s", name);
}

int ref_compare_tensors(h5file *f, const char *group, const char *label, const model3d_tensor *t, int n,
                        const float *base, double rel, double abs_tol)
{
    char name[256], what[160];
    int bad = 0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s/%s", group, t[i].name);
        float *r = ref_read_floats(f, name, t[i].count);
        assert_non_null(r);
        tensor_label(what, sizeof what, label, t[i].name);
        bad += ref_compare(what, base + t[i].offset, r, t[i].count, rel, abs_tol);
        free(r);
    }
    return bad;
}

int ref_compare_grads(h5file *f, const char *group, const char *label, const model3d_tensor *t, int n,
                      const float *grads, double rel, double gmax_rel, int *n_zero)
{
    char name[256], what[160];
    float **ref = calloc((size_t)n, sizeof(float *));
    double gmax = 0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s/%s", group, t[i].name);
        assert_non_null(ref[i] = ref_read_floats(f, name, t[i].count));
        if (ref_max_abs(ref[i], t[i].count) > gmax) gmax = ref_max_abs(ref[i], t[i].count);
    }
    int bad = 0, zero = 0;
    for (int i = 0; i < n; i++) {
        tensor_label(what, sizeof what, label, t[i].name);
        bad += ref_compare(what, grads + t[i].offset, ref[i], t[i].count, rel, gmax_rel * gmax);
        zero += ref_max_abs(ref[i], t[i].count) == 0;
        free(ref[i]);
    }
    free(ref);
    if (n_zero) *n_zero = zero;
    return bad;
}

int ref_file_ready(const char *test, const char *script, const char *tag)
{
    if (g_have_ref < 0) {
        g_have_ref = python_has_modules(test, "torch, h5py, numpy");
        if (!g_have_ref) return 0;
        const char *root = getenv("ROOT") ? getenv("ROOT") : ".";
        snprintf(g_ref_path, sizeof g_ref_path, "/tmp/i2pmae-%s-%d.h5", tag, (int)getpid());
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/%s %s --double >/dev/null 2>&1", root, script,
                 g_ref_path);
        g_ref_ok = run_reference(cmd) == 0;
    }
    if (g_have_ref) assert_true(g_ref_ok);
    return g_have_ref;
}

const char *ref_file_path(void)
{
    return g_ref_path;
}

int ref_group_teardown(void **state)
{
    if (g_have_ref == 1) unlink(g_ref_path);
    return dnn_group_teardown(state);
}
