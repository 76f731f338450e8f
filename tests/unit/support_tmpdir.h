/* support_tmpdir.h -- a scratch directory for the unit tests that write files (test_atomic_file,
 * test_checkpoint, test_features, test_finetune_data, test_h5io, test_train_log). */
#ifndef I2P_TEST_SUPPORT_TMPDIR_H
#define I2P_TEST_SUPPORT_TMPDIR_H

#include <stddef.h>

/* Creates a new directory /tmp/i2pmae-<name>-XXXXXX (mkdtemp) and writes its path into dir (len
 * bytes). Returns 0, or -1 (dir then holds no directory). */
int test_tmpdir_make(char *dir, size_t len, const char *name);
/* Removes dir and everything below it. Returns 0, or -1 if something could not be removed. */
int test_tmpdir_remove(const char *dir);

#endif
