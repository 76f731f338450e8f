/* paths.h -- the size of every buffer that holds a file name.
 *
 * I2P_PATH_LEN is Linux's PATH_MAX (4096, with the NUL) plus room for what we append to a name we
 * are given ("/loss.csv", "/ckpt-00000020.h5", ".partial", both). A name that still does not fit is
 * cut by snprintf to at least PATH_MAX characters, which the system refuses (ENAMETOOLONG): a
 * name that is too long fails with an error, it never silently opens another file.
 */
#ifndef I2P_PATHS_H
#define I2P_PATHS_H

#define I2P_PATH_LEN (4096 + 128)

#endif
