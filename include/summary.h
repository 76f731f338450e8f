/* summary.h -- the one machine-readable JSON line every subcommand ends with.
 *
 * summary_begin makes an object {"i2pmae": VERSION, "command": name, "ranks": N, "threads": T};
 * the command adds its figures; summary_emit prints it on one line on rank 0 to stdout and frees it.
 */
#ifndef I2P_SUMMARY_H
#define I2P_SUMMARY_H

#include <cjson/cJSON.h>

cJSON *summary_begin(const char *command, int ranks);
void summary_emit(cJSON *obj, int rank);

#endif
