/* errors.h -- how i2pmae reports errors.
 *
 * Library functions never exit. They return 0 on success and -1 on failure, and on failure write
 * one line "<file or object>: <what is wrong>" into a caller-owned buffer of I2P_ERR_LEN bytes.
 * The top level (a cli_*.c command) prints it once as "i2pmae: error: <line>" and exits non-zero.
 */
#ifndef I2P_ERRORS_H
#define I2P_ERRORS_H

#define I2P_ERR_LEN 1024

/* Formats into err (I2P_ERR_LEN bytes) and returns -1, so call sites read `return errf(err, ...)`. */
int errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the message already in err with "<prefix>: " (used to add the file name at a higher level). */
int err_prefix(char *err, const char *prefix);

#endif
