/* errors.c -- error message buffers (see errors.h). */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int errf(char *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, I2P_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(char *err, const char *prefix)
{
    if (!err || !prefix) return -1;
    char tmp[I2P_ERR_LEN];
    snprintf(tmp, sizeof tmp, "%s: %s", prefix, err);
    memcpy(err, tmp, I2P_ERR_LEN);
    return -1;
}
