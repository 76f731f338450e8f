/* paths.c -- checks on file names given by the user (see paths.h). */
#include "paths.h"

#include <string.h>
#include <sys/stat.h>

#include "errors.h"

int path_is_input(const char *output, const char *output_opt, const char *input,
                  const char *input_opt, char *err)
{
    struct stat so, si;
    if (!output || !output[0] || !input || !input[0]) return 0;
    if (stat(output, &so) != 0 || stat(input, &si) != 0) return 0; /* a new output is no input */
    if (so.st_dev != si.st_dev || so.st_ino != si.st_ino) return 0;
    return errf(err, "%s: %s is the %s file (%s); refusing to replace an input, even with --force",
                output, output_opt, input_opt, input);
}
