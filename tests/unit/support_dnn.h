/* support_dnn.h -- the oneDNN context of a unit-test process (the tests that create networks):
 * created by the cmocka group setup dnn_group_setup, destroyed by dnn_group_teardown; the tests
 * that call the layers directly also want a primitive cache on it (dnn_cache_group_setup). */
#ifndef I2P_TEST_SUPPORT_DNN_H
#define I2P_TEST_SUPPORT_DNN_H

#include "dnn.h"
#include "nn.h"

extern dnn_ctx g_dnn;
/* the primitive cache (128 entries) on g_dnn, for dnn_cache_group_setup's tests */
extern nn_cache g_cache;

/* cmocka group setup: creates g_dnn; 0, or -1 with the error printed. */
int dnn_group_setup(void **state);

/* cmocka group teardown: destroys g_dnn; 0. */
int dnn_group_teardown(void **state);

/* cmocka group setup: creates g_dnn and g_cache on it; 0, or -1 with the error printed. */
int dnn_cache_group_setup(void **state);

/* cmocka group teardown: frees g_cache, destroys g_dnn; 0. */
int dnn_cache_group_teardown(void **state);

#endif
