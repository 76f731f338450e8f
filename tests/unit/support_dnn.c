/* support_dnn.c -- the process's oneDNN context for the unit tests (support_dnn.h). */
#include <stdio.h>

#include "errors.h"
#include "support_dnn.h"

dnn_ctx g_dnn;
nn_cache g_cache;

int dnn_group_setup(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN];
    if (dnn_ctx_create(&g_dnn, err) == 0) return 0;
    printf("%s\n", err);
    return -1;
}

int dnn_group_teardown(void **state)
{
    (void)state;
    dnn_ctx_destroy(&g_dnn);
    return 0;
}

int dnn_cache_group_setup(void **state)
{
    char err[I2P_ERR_LEN];
    if (dnn_group_setup(state)) return -1;
    if (nn_cache_init(&g_cache, &g_dnn, 256, err) == 0) return 0;
    printf("%s\n", err);
    return -1;
}

int dnn_cache_group_teardown(void **state)
{
    nn_cache_free(&g_cache);
    return dnn_group_teardown(state);
}
