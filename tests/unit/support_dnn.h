/* support_dnn.h -- the oneDNN context of a unit-test process (the tests that create networks):
 * created by the cmocka group setup dnn_group_setup, destroyed by dnn_group_teardown. */
#ifndef I2P_TEST_SUPPORT_DNN_H
#define I2P_TEST_SUPPORT_DNN_H

#include "dnn.h"

extern dnn_ctx g_dnn;

/* cmocka group setup: creates g_dnn; 0, or -1 with the error printed. */
int dnn_group_setup(void **state);

/* cmocka group teardown: destroys g_dnn; 0. */
int dnn_group_teardown(void **state);

#endif
