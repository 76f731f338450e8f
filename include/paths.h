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

/* 0 if output is not the file input (same device and inode: hard links and symbolic links
 * included; an output that does not exist yet is never an input); -1 with err naming both
 * options otherwise. output_opt / input_opt: the options that named them ("-o", "--input"). */
int path_is_input(const char *output, const char *output_opt, const char *input,
                  const char *input_opt, char *err);

#endif
