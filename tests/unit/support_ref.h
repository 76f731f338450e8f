/* support_ref.h -- shared by the unit tests that compare a C network with a PyTorch reference file
 * (test_model3d_ref, test_classifier_ref, test_partseg_ref): reading float datasets of a known
 * size, the max-difference check that prints one OK / NOT OK line per tensor, and loading or
 * comparing a whole table of model3d_tensor (params, buffers, gradients) by name; and a strided
 * matrix product in double (ref_matmul), the reference of the layer tests.
 * The tolerances stay with the callers; the functions that read fail the calling cmocka test
 * (assert) when a dataset is missing or has the wrong size. Each of these tests reads one reference
 * file, written once per process by ref_file_ready and removed by ref_group_teardown. */
#ifndef I2P_TEST_SUPPORT_REF_H
#define I2P_TEST_SUPPORT_REF_H

#include "h5io.h"
#include "model3d.h"

/* The n floats of dataset `name` (malloc'ed, caller frees); NULL (message printed) if it is missing
 * or does not hold exactly n values. */
float *ref_read_floats(h5file *f, const char *name, long n);

/* c (rows,cols) = sum_k A(i,k) B(k,j) in double, with A(i,k) = a[i*sa0 + k*sa1] and B(k,j) =
 * b[k*sb0 + j*sb1] (strides give transposed views); absum (or NULL) gets sum_k |A(i,k) B(k,j)|, the
 * scale of the rounding error of a float sum of the same terms. The independent reference of the
 * layer tests (test_nn_layers, test_nn_bf16). */
void ref_matmul(double *c, double *absum, const float *a, long sa0, long sa1, const float *b, long sb0, long sb1,
                long rows, long n, long cols);

/* max |v[i]| over n values. */
double ref_max_abs(const float *v, long n);

/* Prints "<what> max|r| .. max|c-r| .. OK|NOT OK" and returns 1 if max|c - r| > rel * max|r| + abs_tol,
 * else 0. */
int ref_compare(const char *what, const float *c, const float *r, long n, double rel, double abs_tol);

/* Reads each of the n tensors of the table t (an array, as model3d_get_tensor(m, 0) returns) from
 * <group>/<name> into base + t[i].offset. Asserts that every one is there with its size. */
void ref_load_tensors(h5file *f, const char *group, const model3d_tensor *t, int n, float *base);

/* Compares base + t[i].offset with <group>/<name> for each of the n tensors, rel and abs_tol as in
 * ref_compare, labelled "<label> <name>" ("<name>" when label is empty). Returns the count NOT OK. */
int ref_compare_tensors(h5file *f, const char *group, const char *label, const model3d_tensor *t, int n,
                        const float *base, double rel, double abs_tol);

/* The gradient check: as ref_compare_tensors with abs_tol = gmax_rel * (largest |r| over all n
 * reference tensors). *n_zero (if not NULL) gets the count of reference tensors that are all 0. */
int ref_compare_grads(h5file *f, const char *group, const char *label, const model3d_tensor *t, int n,
                      const float *grads, double rel, double gmax_rel, int *n_zero);

/* 1 when the reference file ref_file_path() is written: the first call runs
 * `/usr/bin/python3 ROOT/tests/ref/<script> /tmp/i2pmae-<tag>-<pid>.h5 --double` (ROOT from the
 * environment, else "."). 0 (a SKIP line for `test` printed once) when python3 lacks torch, h5py or
 * numpy. A script that is there but fails fails the calling test, at every call. */
int ref_file_ready(const char *test, const char *script, const char *tag);

/* The reference file's path ("" before ref_file_ready wrote it). */
const char *ref_file_path(void);

/* cmocka group teardown: removes the reference file (if written), then dnn_group_teardown. */
int ref_group_teardown(void **state);

#endif
