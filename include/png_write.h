/* png_write.h -- writing an 8-bit RGB picture as PNG (libpng).
 *
 * The file is written as "<path>.partial" and renamed to path only when complete, so a failure
 * (unwritable directory, full disk) leaves nothing under the final name. Errors name the file.
 */
#ifndef I2P_PNG_WRITE_H
#define I2P_PNG_WRITE_H

#include <stdint.h>

/* rgb is (height, width, 3) row-major. Returns 0, or -1 with err = "<path>: <problem>". */
int png_write_rgb(const char *path, int width, int height, const uint8_t *rgb, char *err);

#endif
